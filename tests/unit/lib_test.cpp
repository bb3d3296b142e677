// core/lib on the host: Result and TRY, the intrusive list, formatting.
#include <gtest/gtest.h>

#include "core/lib/list.h"
#include "core/lib/print.h"
#include "core/lib/result.h"

namespace tandem {
namespace {

Result<int> half(int v) {
  if (v % 2 != 0) return Errno::kEINVAL;
  return v / 2;
}

Result<int> quarter(int v) {
  const int h = TRY(half(v));
  return TRY(half(h));
}

TEST(Result, TryPropagatesTheFirstError) {
  EXPECT_EQ(quarter(8).value(), 2);
  EXPECT_EQ(quarter(6).error(), Errno::kEINVAL);
  EXPECT_EQ(quarter(7).error(), Errno::kEINVAL);
  EXPECT_STREQ(errno_name(Errno::kEAGAIN), "EAGAIN");
}

struct Item {
  int value;
  ListNode node;
};

TEST(IntrusiveList, KeepsOrderAndUnlinks) {
  IntrusiveList<Item, &Item::node> list;
  Item a{1, {}}, b{2, {}}, c{3, {}};
  list.push_back(&a);
  list.push_back(&c);
  list.insert_before(&c, &b);
  std::vector<int> seen;
  list.for_each([&](Item* i) { seen.push_back(i->value); });
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
  list.remove(&b);
  EXPECT_FALSE(b.node.linked());
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.pop_front(), &a);
  EXPECT_EQ(list.front(), &c);
}

TEST(Format, PrintfSubset) {
  char buffer[64];
  format(buffer, sizeof(buffer), "%d %u %x %s %c %05d %lx", -12, 7u, 255u, "ok", 'z', 42, 0xdeadbeefcafeull);
  EXPECT_STREQ(buffer, "-12 7 ff ok z 00042 deadbeefcafe");
  char tiny[4];
  EXPECT_EQ(format(tiny, sizeof(tiny), "%s", "truncated"), 9u);
  EXPECT_STREQ(tiny, "tru");
}

}  // namespace
}  // namespace tandem
