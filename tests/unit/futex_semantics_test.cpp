// futex(2) and the other syscalls of the simulator issue, table-driven against Linux's
// documented behaviour (futex(2), clock_gettime(2), nanosleep(2), clone(2)), run by a user
// program on the simulated kernel, exactly as a program would call them.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

constexpr uint64_t kWord = kDataBase + 0x100;   // a futex word
constexpr uint64_t kWord2 = kDataBase + 0x200;  // a second one
constexpr uint64_t kTs = kDataBase + 0x300;     // a struct timespec
constexpr uint64_t kUnmapped = 0x50000000;
constexpr uint64_t kKernel = 0xffff800000001000ull;
constexpr uint32_t kClockRealtimeFlag = 256;
constexpr int64_t kOpLockPi = 6, kOpUnlockPi = 7, kOpTrylockPi = 8, kOpWaitRequeuePi = 11, kOpCmpRequeuePi = 12,
                  kOpLockPi2 = 13, kOpFd = 2;

struct Check {
  const char* what;
  int64_t got;
  int64_t want;
};

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

int64_t futex(User& u, uint64_t addr, uint64_t op, uint64_t val, uint64_t timeout = 0, uint64_t addr2 = 0, uint64_t val3 = 0) {
  return u.syscall(nr::kFutex, addr, op, val, timeout, addr2, val3);
}

void set_ts(User& u, int64_t sec, int64_t nsec) {
  u.store64(kTs, static_cast<uint64_t>(sec));
  u.store64(kTs + 8, static_cast<uint64_t>(nsec));
}

uint64_t now_ns(User& u, int clock) {
  u.syscall(nr::kClockGettime, static_cast<uint64_t>(clock), kTs + 64);
  return u.load64(kTs + 64) * 1'000'000'000ull + u.load64(kTs + 72);
}

void single_thread_table(User& u) {
  const uint64_t P = kFutexPrivate;
  u.store32(kWord, 5);
  check(u, "WAIT with a different value", futex(u, kWord, kFutexWait | P, 4), -EAGAIN);
  check(u, "WAIT on an unaligned address", futex(u, kWord + 1, kFutexWait | P, 5), -EINVAL);
  check(u, "WAIT on an unmapped address", futex(u, kUnmapped, kFutexWait | P, 0), -EFAULT);
  check(u, "WAIT on a kernel address", futex(u, kKernel, kFutexWait | P, 0), -EFAULT);
  check(u, "shared WAIT on an unmapped address", futex(u, kUnmapped, kFutexWait, 0), -EFAULT);
  set_ts(u, 0, 1'000'000'000);
  check(u, "WAIT with tv_nsec = 1e9", futex(u, kWord, kFutexWait | P, 5, kTs), -EINVAL);
  set_ts(u, -1, 0);
  check(u, "WAIT with a negative tv_sec", futex(u, kWord, kFutexWait | P, 5, kTs), -EINVAL);
  check(u, "WAIT with an unmapped timeout", futex(u, kWord, kFutexWait | P, 5, kUnmapped), -EFAULT);
  set_ts(u, 0, 1'000'000);
  const uint64_t before = now_ns(u, 1);
  check(u, "WAIT with a 1 ms relative timeout", futex(u, kWord, kFutexWait | P, 5, kTs), -ETIMEDOUT);
  if (now_ns(u, 1) - before < 1'000'000) u.fail("WAIT timed out before 1 ms had passed");
  set_ts(u, 0, 0);
  check(u, "WAIT_BITSET with an absolute deadline in the past", futex(u, kWord, kFutexWaitBitset | P, 5, kTs, 0, ~0u), -ETIMEDOUT);
  check(u, "WAIT_BITSET with bitset 0", futex(u, kWord, kFutexWaitBitset | P, 5, 0, 0, 0), -EINVAL);
  check(u, "WAKE_BITSET with bitset 0", futex(u, kWord, kFutexWakeBitset | P, 1, 0, 0, 0), -EINVAL);
  check(u, "WAKE with no waiters", futex(u, kWord, kFutexWake | P, 1), 0);
  check(u, "WAIT with FUTEX_CLOCK_REALTIME", futex(u, kWord, kFutexWait | P | kClockRealtimeFlag, 5), -ENOSYS);
  check(u, "WAKE with FUTEX_CLOCK_REALTIME", futex(u, kWord, kFutexWake | P | kClockRealtimeFlag, 1), -ENOSYS);
  set_ts(u, 1'000'000'000, 0);  // 2001: long past on the realtime clock
  check(u, "WAIT_BITSET|CLOCK_REALTIME with a past deadline",
        futex(u, kWord, kFutexWaitBitset | P | kClockRealtimeFlag, 5, kTs, 0, ~0u), -ETIMEDOUT);
  const uint64_t deadline = now_ns(u, 0) + 2'000'000;
  set_ts(u, static_cast<int64_t>(deadline / 1'000'000'000), static_cast<int64_t>(deadline % 1'000'000'000));
  check(u, "WAIT_BITSET|CLOCK_REALTIME 2 ms ahead", futex(u, kWord, kFutexWaitBitset | P | kClockRealtimeFlag, 5, kTs, 0, ~0u), -ETIMEDOUT);
  if (now_ns(u, 0) < deadline) u.fail("realtime WAIT_BITSET returned before its deadline");
  for (int64_t op : {kOpLockPi, kOpUnlockPi, kOpTrylockPi, kOpWaitRequeuePi, kOpCmpRequeuePi, kOpLockPi2, kOpFd, int64_t{99}}) {
    if (futex(u, kWord, static_cast<uint64_t>(op) | P, 0) != -ENOSYS) u.fail("futex op %lld is not ENOSYS", static_cast<long long>(op));
  }
  check(u, "CMP_REQUEUE with a different val3", futex(u, kWord, kFutexCmpRequeue | P, 1, 1, kWord2, 4), -EAGAIN);
  check(u, "CMP_REQUEUE with matching val3 and no waiters", futex(u, kWord, kFutexCmpRequeue | P, 1, 1, kWord2, 5), 0);
  check(u, "REQUEUE with a negative count", futex(u, kWord, kFutexRequeue | P, static_cast<uint64_t>(-1), 1, kWord2), -EINVAL);
  // WAKE_OP: (op << 28) | (cmp << 24) | (oparg << 12) | cmparg.
  u.store32(kWord2, 10);
  check(u, "WAKE_OP ADD 3, no waiters", futex(u, kWord, kFutexWakeOp | P, 1, 1, kWord2, (1u << 28) | (0u << 24) | (3u << 12) | 0), 0);
  check(u, "WAKE_OP ADD updated the word", u.load32(kWord2), 13);
  check(u, "WAKE_OP SET with OPARG_SHIFT", futex(u, kWord, kFutexWakeOp | P, 1, 1, kWord2, (8u << 28) | (4u << 12)), 0);
  check(u, "WAKE_OP SET 1<<4 updated the word", u.load32(kWord2), 16);
  check(u, "WAKE_OP ANDN", futex(u, kWord, kFutexWakeOp | P, 1, 1, kWord2, (3u << 28) | (16u << 12)), 0);
  check(u, "WAKE_OP ANDN updated the word", u.load32(kWord2), 0);
  check(u, "WAKE_OP with an unknown op", futex(u, kWord, kFutexWakeOp | P, 1, 1, kWord2, 6u << 28), -ENOSYS);
  check(u, "WAKE_OP with an unknown comparison", futex(u, kWord, kFutexWakeOp | P, 1, 1, kWord2, 9u << 24), -ENOSYS);
  check(u, "WAKE_OP on an unmapped second word", futex(u, kWord, kFutexWakeOp | P, 1, 1, kUnmapped, 1u << 28), -EFAULT);

  // The rest of the simulator issue's syscalls.
  check(u, "an unknown syscall number", u.syscall(400), -ENOSYS);
  check(u, "a syscall number past the table", u.syscall(100000), -ENOSYS);
  check(u, "gettid of the main thread is its pid", u.syscall(nr::kGettid), u.syscall(nr::kGetpid));
  check(u, "the first program is PID 1", u.syscall(nr::kGetpid), 1);
  check(u, "clock_gettime of an unknown clock", u.syscall(nr::kClockGettime, 99, kTs), -EINVAL);
  check(u, "clock_gettime to an unmapped buffer", u.syscall(nr::kClockGettime, 1, kUnmapped), -EFAULT);
  set_ts(u, 0, -1);
  check(u, "nanosleep with a negative tv_nsec", u.syscall(nr::kNanosleep, kTs, 0), -EINVAL);
  check(u, "nanosleep from an unmapped request", u.syscall(nr::kNanosleep, kUnmapped, 0), -EFAULT);
  set_ts(u, 0, 3'000'000);
  const uint64_t t0 = now_ns(u, 1);
  check(u, "nanosleep 3 ms", u.syscall(nr::kNanosleep, kTs, 0), 0);
  if (now_ns(u, 1) - t0 < 3'000'000) u.fail("nanosleep returned early");
  // Linux 6.1 answers EOPNOTSUPP (measured by tests/conformance/programs/time.c); the EINVAL in
  // clock_nanosleep(3) is the C library's.
  check(u, "clock_nanosleep on the thread CPU clock", u.syscall(nr::kClockNanosleep, 3, 0, kTs, 0), -EOPNOTSUPP);
  set_ts(u, 0, 0);
  check(u, "clock_nanosleep TIMER_ABSTIME in the past", u.syscall(nr::kClockNanosleep, 1, 1, kTs, 0), 0);
  check(u, "clone with CLONE_THREAD but not CLONE_SIGHAND", u.syscall(nr::kClone, 0x10000 | 0x100, 0, 0, 0, 0), -EINVAL);
  check(u, "clone with CLONE_SIGHAND but not CLONE_VM", u.syscall(nr::kClone, 0x800, 0, 0, 0, 0), -EINVAL);
  check(u, "set_tid_address returns the tid", u.syscall(nr::kSetTidAddress, 0), 1);
  exit_group(u, 0);
}

// Two threads: the waiter blocks, the main thread checks what each wake-up variant does.
// words: kWord the futex, kWord2 a second futex, +0x400 the waiter's phase
constexpr uint64_t kPhase = kDataBase + 0x400;

void waiter(User& u) {
  const uint64_t bitset = thread_arg(u);
  u.store32(kPhase, 1);
  const int64_t r = u.syscall(nr::kFutex, kWord, kFutexWaitBitset | kFutexPrivate, 0, 0, 0, bitset);
  u.store32(kPhase + 4, static_cast<uint32_t>(r));
  u.store32(kPhase, 2);
}
const uint64_t kWaiter = register_entry("test.futex.waiter", waiter);

void wait_until_queued(User& u) {
  // The waiter announced itself; give it time to block (virtual time: sleeps are cheap).
  while (u.load32(kPhase) != 1) yield(u);
  set_ts(u, 0, 5'000'000);
  u.syscall(nr::kNanosleep, kTs, 0);
}

void two_thread_table(User& u) {
  const uint64_t slots = kDataBase + 0x10000;
  // 1. A wake with a disjoint bitset does not wake; a matching one does, once.
  u.store32(kWord, 0);
  u.store32(kPhase, 0);
  spawn(u, kWaiter, 0x1, slot_at(slots, 0));
  wait_until_queued(u);
  check(u, "WAKE_BITSET with a disjoint bitset", futex(u, kWord, kFutexWakeBitset | kFutexPrivate, 1, 0, 0, 0x2), 0);
  check(u, "a shared WAKE does not match a private waiter", futex(u, kWord, kFutexWake, 1), 0);
  check(u, "WAKE_BITSET with a matching bitset", futex(u, kWord, kFutexWakeBitset | kFutexPrivate, 1, 0, 0, 0x3), 1);
  join(u, slot_at(slots, 0));
  check(u, "the woken waiter's futex result", u.load32(kPhase + 4), 0);
  // 2. CMP_REQUEUE moves the waiter to the second word; a wake there reaches it.
  u.store32(kPhase, 0);
  spawn(u, kWaiter, ~0u, slot_at(slots, 1));
  wait_until_queued(u);
  check(u, "CMP_REQUEUE of one waiter (wake 0, requeue 1)", futex(u, kWord, kFutexCmpRequeue | kFutexPrivate, 0, 1, kWord2, 0), 1);
  check(u, "a wake on the old word finds nobody", futex(u, kWord, kFutexWake | kFutexPrivate, 1), 0);
  check(u, "a wake on the new word finds the waiter", futex(u, kWord2, kFutexWake | kFutexPrivate, 1), 1);
  join(u, slot_at(slots, 1));
  // 2b. Requeue onto the same word: the waiter is counted once and stays queued there.
  u.store32(kPhase, 0);
  spawn(u, kWaiter, ~0u, slot_at(slots, 4));
  wait_until_queued(u);
  check(u, "CMP_REQUEUE onto the same word (requeue up to INT_MAX)",
        futex(u, kWord, kFutexCmpRequeue | kFutexPrivate, 0, 0x7fffffff, kWord, 0), 1);
  check(u, "the requeued waiter is still woken by the word", futex(u, kWord, kFutexWake | kFutexPrivate, 1), 1);
  join(u, slot_at(slots, 4));
  // 3. FUTEX_WAKE with count 0 still wakes one waiter, as Linux does.
  u.store32(kPhase, 0);
  spawn(u, kWaiter, ~0u, slot_at(slots, 2));
  wait_until_queued(u);
  check(u, "WAKE with count 0 wakes one", futex(u, kWord, kFutexWake | kFutexPrivate, 0), 1);
  join(u, slot_at(slots, 2));
  // 4. WAKE_OP wakes the first word's waiter, and the second's when the comparison holds.
  u.store32(kPhase, 0);
  u.store32(kWord2, 1);
  spawn(u, kWaiter, ~0u, slot_at(slots, 3));
  wait_until_queued(u);
  check(u, "WAKE_OP wakes the waiter on the first word",
        futex(u, kWord, kFutexWakeOp | kFutexPrivate, 1, 1, kWord2, (0u << 28) | (0u << 24) | (7u << 12) | 1), 1);
  check(u, "WAKE_OP stored into the second word", u.load32(kWord2), 7);
  join(u, slot_at(slots, 3));
  exit_group(u, 0);
}

void table_limit(User& u) {
  // With a 32-slot thread table (the seed's size) clone fails with EAGAIN, not a crash.
  const uint64_t slots = kDataBase + 0x10000;
  int64_t last = 0;
  uint32_t made = 0;
  u.store32(kPhase, 0);
  for (uint32_t i = 0; i < 40 && last >= 0; ++i) {
    last = spawn(u, kWaiter, ~0u, slot_at(slots, i));
    if (last >= 0) ++made;
  }
  check(u, "clone past the thread table", last, -EAGAIN);
  if (made == 0) u.fail("no thread could be created");
  u.store32(kWord, 1);
  futex(u, kWord, kFutexWake | kFutexPrivate, 0x7fffffff);
  for (uint32_t i = 0; i < made; ++i) join(u, slot_at(slots, i));
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-futex-single", "futex semantics, one thread", register_entry("test.single", single_thread_table), any});
    register_scenario({"test-futex-two", "futex wake-up semantics, two threads", register_entry("test.two", two_thread_table), any});
    register_scenario({"test-table-limit", "clone against a full thread table", register_entry("test.limit", table_limit), any});
  }
} const kRegistrar;

RunResult run(const char* scenario, uint32_t cpus, uint64_t seed, StrategyKind strategy, uint32_t max_threads = 0) {
  RunSpec spec;
  spec.scenario = scenario;
  spec.cpus = cpus;
  spec.seed = seed;
  spec.strategy.kind = strategy;
  spec.max_threads = max_threads;
  return run_one(spec);
}

TEST(FutexSemantics, SingleThreadTableMatchesLinux) {
  for (uint32_t cpus : {1u, 2u, 4u}) {
    const RunResult r = run("test-futex-single", cpus, 7, StrategyKind::Random);
    EXPECT_EQ(r.outcome, Outcome::Finished) << cpus << " CPUs: " << r.message;
  }
}

TEST(FutexSemantics, WakeVariantsWithABlockedWaiter) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-futex-two", 1 + static_cast<uint32_t>(seed % 4), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

TEST(Scheduler, TheSeedsThirtyTwoThreadTableWorksAndFailsCleanly) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const RunResult r = run("test-table-limit", 4, seed, StrategyKind::Random, 32);
    EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
  }
}

TEST(Scheduler, OneCpuRunsEveryScenario) {
  for (const char* scenario : {"mutex", "condvar", "semaphore", "barrier", "rwlock", "join"}) {
    RunSpec spec;
    spec.scenario = scenario;
    spec.cpus = 1;
    spec.threads = 6;
    spec.seed = 3;
    spec.strategy.kind = StrategyKind::Random;
    const RunResult r = run_one(spec);
    EXPECT_EQ(r.outcome, Outcome::Finished) << scenario << ": " << r.message;
  }
}

TEST(Scheduler, SixtyFourCpusBootAndFinish) {
  RunSpec spec;
  spec.scenario = "barrier";
  spec.cpus = 64;
  spec.threads = 64;
  spec.iterations = 2;
  spec.seed = 11;
  spec.strategy.kind = StrategyKind::Random;
  const RunResult r = run_one(spec);
  EXPECT_EQ(r.outcome, Outcome::Finished) << r.message;
}

}  // namespace
}  // namespace sim
