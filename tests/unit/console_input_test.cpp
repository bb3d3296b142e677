// Console input is interrupt-driven: the HAL calls kentry::console_input() when bytes arrive,
// which wakes blocked readers and pollers. In the simulator a test types with
// sim::console_input(), which raises the console's interrupt on CPU 0 as the UART does.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>

#include "hal/sim/sim_hal.h"
#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

namespace sys {
constexpr uint64_t kRead = 0, kOpen = 2, kClose = 3, kPoll = 7, kRtSigaction = 13, kTgkill = 234;
}
constexpr uint64_t kONonblock = 04000, kORdwr = 2, kPollIn = 1;
constexpr uint64_t kSigusr1 = 10, kSaSiginfo = 4, kSaRestorer = 0x04000000;

constexpr uint64_t kBuf = kDataBase + 0x3000;
constexpr uint64_t kSpec = kDataBase + 0x4000;
constexpr uint64_t kPollFds = kDataBase + 0x5000;
constexpr uint64_t kStr = kDataBase + 0x6100;
// Words shared with the reader: 0 phase, 4 handler runs, 8 reader tid, 16.. results (8 bytes each).
constexpr uint64_t kShared = kDataBase + 0x7000;
constexpr uint64_t kSlots = kDataBase + 0x10000;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

uint8_t byte_at(User& u, uint64_t address) {
  return static_cast<uint8_t>(u.load32(address & ~3ull) >> (8 * (address & 3)));
}

void check_bytes(User& u, const char* what, uint64_t address, const char* want, uint64_t length) {
  for (uint64_t i = 0; i < length; ++i) {
    if (byte_at(u, address + i) != static_cast<uint8_t>(want[i])) u.fail("%s: byte %llu is wrong", what, static_cast<unsigned long long>(i));
  }
}

void sleep_ms(User& u, uint64_t ms) {
  u.store64(kSpec + 256, 0);
  u.store64(kSpec + 264, ms * 1'000'000);
  u.syscall(nr::kNanosleep, kSpec + 256, 0);
}

uint64_t now_ns(User& u) {
  u.syscall(nr::kClockGettime, 1, kSpec + 512);
  return u.load64(kSpec + 512) * 1'000'000'000ull + u.load64(kSpec + 520);
}

// poll(2) on one descriptor for POLLIN; returns poll's result, revents at *revents.
int64_t poll_in(User& u, uint64_t pollfd, uint32_t fd, int64_t timeout_ms, uint32_t* revents) {
  u.store32(pollfd, fd);
  u.store32(pollfd + 4, kPollIn);  // events POLLIN, revents 0
  const int64_t n = u.syscall(sys::kPoll, pollfd, 1, static_cast<uint64_t>(timeout_ms));
  if (revents != nullptr) *revents = u.load32(pollfd + 4) >> 16;
  return n;
}

void counting_handler(User& h) { h.fetch_add32(kShared + 4, 1); }
const uint64_t kCountingHandler = register_entry("test.console.handler", counting_handler);
const uint64_t kRestorer = register_entry("test.console.restorer", [](User& u) { u.fail("the restorer ran as a thread"); });

// The reader: blocks in read(0), in poll(0) with no timeout, then in read(0) again until a signal.
void console_reader(User& u) {
  u.store64(kShared + 8, static_cast<uint64_t>(u.syscall(nr::kGettid)));
  u.store32(kShared, 1);
  u.store64(kShared + 16, static_cast<uint64_t>(u.syscall(sys::kRead, 0, kBuf + 512, 16)));
  u.store32(kShared, 2);
  uint32_t revents = 0;
  u.store64(kShared + 24, static_cast<uint64_t>(poll_in(u, kPollFds + 512, 0, -1, &revents)));
  u.store64(kShared + 32, revents);
  u.store64(kShared + 40, static_cast<uint64_t>(u.syscall(sys::kRead, 0, kBuf + 768, 16)));
  u.store32(kShared, 3);
  u.store64(kShared + 48, static_cast<uint64_t>(u.syscall(sys::kRead, 0, kBuf + 1024, 16)));
  u.store32(kShared, 4);
}
const uint64_t kConsoleReader = register_entry("test.console.reader", console_reader);

void console_table(User& u) {
  uint32_t revents = 0;
  // Nothing typed yet: not readable, and a non-blocking read is EAGAIN.
  check(u, "poll without input", poll_in(u, kPollFds, 0, 0, nullptr), 0);
  u.store64(kStr, 0x6e6f632f7665642full);  // "/dev/con"
  u.store64(kStr + 8, 0x656c6f73);          // "sole"
  const int64_t nb = u.syscall(sys::kOpen, kStr, kORdwr | kONonblock, 0);
  check(u, "open /dev/console non-blocking", nb, 3);
  check(u, "a non-blocking read without input", u.syscall(sys::kRead, 3, kBuf, 16), -EAGAIN);

  // A poll with a long timeout and no input sleeps the whole timeout in one wait: no rescans.
  const uint64_t t0 = now_ns(u);
  check(u, "a 2 s poll without input", poll_in(u, kPollFds, 0, 2000, nullptr), 0);
  if (now_ns(u) - t0 < 2'000'000'000ull) u.fail("poll returned before its timeout");

  // Input typed while nobody waits stays until it is read.
  console_input("ab", 2);
  check(u, "poll once typed", poll_in(u, kPollFds, 3, 1000, &revents), 1);
  check(u, "POLLIN", revents, kPollIn);
  check(u, "the non-blocking read", u.syscall(sys::kRead, 3, kBuf, 16), 2);
  check_bytes(u, "the non-blocking read", kBuf, "ab", 2);
  check(u, "empty again", u.syscall(sys::kRead, 3, kBuf, 16), -EAGAIN);
  check(u, "close", u.syscall(sys::kClose, 3), 0);

  // A blocked reader and a blocked poller wake when input arrives, and not before.
  const uint64_t act = kSpec + 128;
  u.store64(act, kCountingHandler);
  u.store64(act + 8, kSaSiginfo | kSaRestorer);  // no SA_RESTART: a blocked read returns EINTR
  u.store64(act + 16, kRestorer);
  u.store64(act + 24, 0);
  check(u, "rt_sigaction", u.syscall(sys::kRtSigaction, kSigusr1, act, 0, 8), 0);
  u.store32(kShared, 0);
  u.store32(kShared + 4, 0);
  spawn(u, kConsoleReader, 0, slot_at(kSlots, 0));
  while (u.load32(kShared) != 1) yield(u);
  sleep_ms(u, 30);
  check(u, "the reader is still blocked", u.load32(kShared), 1);
  console_input("hi\n", 3);
  while (u.load32(kShared) != 2) yield(u);
  check(u, "the blocked read got the line", static_cast<int64_t>(u.load64(kShared + 16)), 3);
  check_bytes(u, "the blocked read", kBuf + 512, "hi\n", 3);
  sleep_ms(u, 30);
  check(u, "the poll is still blocked", u.load32(kShared), 2);
  console_input("x", 1);
  while (u.load32(kShared) != 3) yield(u);
  check(u, "the poll woke", static_cast<int64_t>(u.load64(kShared + 24)), 1);
  check(u, "with POLLIN", static_cast<int64_t>(u.load64(kShared + 32)), kPollIn);
  check(u, "the read after it", static_cast<int64_t>(u.load64(kShared + 40)), 1);
  check_bytes(u, "the read after the poll", kBuf + 768, "x", 1);
  // A signal ends a blocked console read with EINTR (no SA_RESTART).
  sleep_ms(u, 30);
  check(u, "the last read is blocked", u.load32(kShared), 3);
  const uint64_t pid = static_cast<uint64_t>(u.syscall(nr::kGetpid));
  check(u, "tgkill the reader", u.syscall(sys::kTgkill, pid, u.load64(kShared + 8), kSigusr1), 0);
  while (u.load32(kShared) != 4) yield(u);
  check(u, "the interrupted read", static_cast<int64_t>(u.load64(kShared + 48)), -EINTR);
  check(u, "one handler run", u.load32(kShared + 4), 1);
  join(u, slot_at(kSlots, 0));
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-console-input", "console input wakes blocked readers and pollers; EAGAIN, EINTR",
                       register_entry("test.console.table", console_table), any});
  }
} const kRegistrar;

TEST(ConsoleInput, WakesReadersAndPollers) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    for (StrategyKind kind : {StrategyKind::Random, StrategyKind::Pct}) {
      RunSpec spec;
      spec.scenario = "test-console-input";
      spec.cpus = 1 + static_cast<uint32_t>(seed % 4);
      spec.seed = seed;
      spec.strategy.kind = kind;
      // Waiting for input costs no scheduling points: the 2 s poll, the 30 ms sleeps with
      // blocked waiters and the rest fit in far fewer than a tick-driven rescan would take.
      spec.max_steps = 2'000'000;
      const RunResult r = run_one(spec);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

}  // namespace
}  // namespace sim
