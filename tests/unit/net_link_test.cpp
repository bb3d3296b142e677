// sim/virtio/link.h: the simulated wire with seeded faults. Faults off: every frame arrives once,
// intact, in order, after its delay. Each fault alone does what it says, at about its rate, and
// the same seed gives the same wire.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sim/virtio/link.h"

namespace sim {
namespace {

std::vector<uint8_t> frame(uint32_t n) {
  std::vector<uint8_t> f(60 + n % 40);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<uint8_t>(n * 7 + i);
  f[0] = static_cast<uint8_t>(n), f[1] = static_cast<uint8_t>(n >> 8);
  return f;
}

uint32_t id_of(const std::vector<uint8_t>& f) { return f[0] | f[1] << 8; }

// Sends `count` frames 10 us apart and collects everything, in arrival order.
std::vector<std::vector<uint8_t>> run_wire(const LinkFaults& faults, uint64_t seed, uint32_t count,
                                           Link::Stats* stats = nullptr) {
  Link link(faults, seed);
  std::vector<std::vector<uint8_t>> got;
  uint64_t now = 0;
  for (uint32_t i = 0; i < count; ++i, now += 10'000) {
    link.send(frame(i), now);
    for (auto& f : link.receive(now)) got.push_back(std::move(f));
  }
  while (link.next_arrival() != 0) {
    now = link.next_arrival();
    for (auto& f : link.receive(now)) got.push_back(std::move(f));
  }
  if (stats != nullptr) *stats = link.stats();
  return got;
}

TEST(NetLink, NoFaultsDeliversEverythingInOrderAfterTheDelay) {
  LinkFaults faults;
  faults.delay_ns = 25'000;
  Link link(faults, 1);
  link.send(frame(1), 1000);
  EXPECT_TRUE(link.receive(25'999).empty());
  EXPECT_EQ(link.next_arrival(), 26'000u);
  const auto got = link.receive(26'000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], frame(1));

  const auto all = run_wire(faults, 2, 500);
  ASSERT_EQ(all.size(), 500u);
  for (uint32_t i = 0; i < 500; ++i) EXPECT_EQ(all[i], frame(i));
}

TEST(NetLink, DropAll) {
  LinkFaults faults;
  faults.drop = 1;
  Link::Stats stats;
  EXPECT_TRUE(run_wire(faults, 3, 100, &stats).empty());
  EXPECT_EQ(stats.dropped, 100u);
}

TEST(NetLink, DuplicateAllArrivesTwiceBackToBack) {
  LinkFaults faults;
  faults.dup = 1;
  const auto got = run_wire(faults, 4, 50);
  ASSERT_EQ(got.size(), 100u);
  for (uint32_t i = 0; i < 50; ++i) {
    EXPECT_EQ(got[2 * i], frame(i));
    EXPECT_EQ(got[2 * i + 1], frame(i));
  }
}

TEST(NetLink, CorruptFlipsExactlyOneBit) {
  LinkFaults faults;
  faults.corrupt = 1;
  const auto got = run_wire(faults, 5, 200);
  ASSERT_EQ(got.size(), 200u);
  for (uint32_t i = 0; i < 200; ++i) {
    const auto want = frame(i);
    ASSERT_EQ(got[i].size(), want.size());
    int bits = 0;
    for (size_t b = 0; b < want.size(); ++b) bits += __builtin_popcount(got[i][b] ^ want[b]);
    EXPECT_EQ(bits, 1) << "frame " << i;
  }
}

TEST(NetLink, ReorderLetsLaterFramesOvertake) {
  LinkFaults faults;
  faults.reorder = 0.2;
  Link::Stats stats;
  const auto got = run_wire(faults, 6, 1000, &stats);
  ASSERT_EQ(got.size(), 1000u);  // nothing lost or added
  std::vector<uint32_t> ids;
  for (const auto& f : got) ids.push_back(id_of(f));
  EXPECT_FALSE(std::is_sorted(ids.begin(), ids.end()));
  std::sort(ids.begin(), ids.end());
  for (uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(ids[i], i);
  EXPECT_GT(stats.reordered, 150u);
  EXPECT_LT(stats.reordered, 250u);
}

TEST(NetLink, RatesAndDeterminism) {
  LinkFaults faults;
  faults.drop = 0.05;
  faults.dup = 0.02;
  faults.reorder = 0.05;
  faults.corrupt = 0.01;
  faults.jitter_ns = 30'000;
  Link::Stats a, b, c;
  const auto first = run_wire(faults, 7, 20'000, &a);
  const auto again = run_wire(faults, 7, 20'000, &b);
  const auto other = run_wire(faults, 8, 20'000, &c);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  EXPECT_NEAR(double(a.dropped), 1000, 150);
  EXPECT_NEAR(double(a.duplicated), 400, 100);
  EXPECT_NEAR(double(a.corrupted), 200, 70);
  EXPECT_EQ(a.delivered, a.sent - a.dropped + a.duplicated);
}

TEST(NetLink, ParsesFaultSpecifications) {
  LinkFaults f;
  EXPECT_EQ(parse_link_faults("drop=0.05,dup=0.02,reorder=0.05", &f), "");
  EXPECT_DOUBLE_EQ(f.drop, 0.05);
  EXPECT_DOUBLE_EQ(f.dup, 0.02);
  EXPECT_DOUBLE_EQ(f.reorder, 0.05);
  EXPECT_EQ(parse_link_faults("corrupt=1,delay=200us,jitter=1.5ms", &f), "");
  EXPECT_DOUBLE_EQ(f.corrupt, 1);
  EXPECT_EQ(f.delay_ns, 200'000u);
  EXPECT_EQ(f.jitter_ns, 1'500'000u);
  const LinkFaults before = f;
  EXPECT_NE(parse_link_faults("drop=1.5", &f), "");
  EXPECT_NE(parse_link_faults("drop", &f), "");
  EXPECT_NE(parse_link_faults("lose=0.1", &f), "");
  EXPECT_NE(parse_link_faults("delay=5 parsecs", &f), "");
  EXPECT_NE(parse_link_faults("dup=0.1,drop=x", &f), "");
  EXPECT_DOUBLE_EQ(f.drop, before.drop);  // untouched on error
  EXPECT_DOUBLE_EQ(f.dup, before.dup);
}

}  // namespace
}  // namespace sim
