// "A user cannot break the kernel", in the simulator: one user thread calls every system call
// number from 0 to 460 with hostile arguments (zero/NULL, a kernel address, -1, huge lengths,
// unaligned pointers into its own memory). The run must finish: no kernel crash, no sanitizer
// report, no deadlock, and the harness's after-run checks (locks, run queues, leaks of threads,
// heap objects and pages) must pass. tests/userspace/hostile.c does the same on hardware.
#include <gtest/gtest.h>

#include <cerrno>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

constexpr uint64_t kLast = 460;
constexpr uint64_t kKernel = 0xffff800000000000ull;
constexpr uint64_t kUnaligned = kDataBase + 0x1001;
constexpr uint64_t kCounters = kDataBase + 0x100;  // calls made, ENOSYS answers

// Numbers skipped, and why: they end the caller (exit, exit_group, rt_sigreturn with a garbage
// frame), create processes or threads (clone, fork, vfork, clone3), send signals that may kill
// the caller (the kill family), or wait forever by design when given zero arguments (pause,
// rt_sigsuspend, wait4/waitid, read of descriptor 0, select/pselect6/poll/ppoll/epoll_wait with
// no timeout, sleeps, futex waits). Those that may block are still called with every argument -1,
// which fails before anything could block. (A kernel address truncates to descriptor 0 for an
// int fd, and tandem's read(0, kernel address) waits for console input before it checks the
// buffer, where Linux answers EFAULT at once: so read gets only the -1 set.)
bool fully_skipped(uint64_t n) {
  switch (n) {
    case 15: case 56: case 57: case 58: case 60: case 231: case 435:
    case 62: case 200: case 234: case 129: case 297: case 424: case 169: case 34:
      return true;
    default:
      return false;
  }
}
bool may_block(uint64_t n) {
  switch (n) {
    case 0: case 7: case 23: case 34: case 61: case 130: case 232: case 247: case 270: case 271: case 281:
    case 35: case 230: case 202: case 19: case 17:
      return true;
    default:
      return false;
  }
}

void hostile(User& u) {
  const uint64_t sets[6][6] = {
      {0, 0, 0, 0, 0, 0},
      {kUnaligned, 1ull << 40, kUnaligned, 1ull << 40, kUnaligned, 1ull << 40},
      {3, kKernel, 1ull << 62, kKernel + 1, 0, ~0ull},
      {kUnaligned, kUnaligned, 0, kUnaligned, kUnaligned, 0},
      {kKernel, kKernel, kKernel, kKernel, kKernel, kKernel},
      {~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull},
  };
  for (uint64_t n = 0; n <= kLast; ++n) {
    if (fully_skipped(n)) continue;
    for (int s = may_block(n) ? 5 : 0; s < 6; ++s) {
      const int64_t r = u.syscall(n, sets[s][0], sets[s][1], sets[s][2], sets[s][3], sets[s][4], sets[s][5]);
      u.store64(kCounters, u.load64(kCounters) + 1);
      if (s == 4 && r == -ENOSYS) u.store64(kCounters + 8, u.load64(kCounters + 8) + 1);
    }
  }
  // 446 numbers are called, 15 of them with one set only: 431 * 6 + 15 calls.
  if (u.load64(kCounters) != 431 * 6 + 15) u.fail("%llu calls", static_cast<unsigned long long>(u.load64(kCounters)));
  if (u.load64(kCounters + 8) < 300) u.fail("only %llu numbers answered ENOSYS", static_cast<unsigned long long>(u.load64(kCounters + 8)));
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-hostile-syscalls", "every system call number 0..460 with hostile arguments",
                       register_entry("test.hostile.syscalls", hostile), any});
  }
} const kRegistrar;

TEST(HostileSyscalls, EveryNumberWithHostileArgumentsLeavesTheKernelWhole) {
  for (uint32_t cpus : {1u, 2u}) {
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      RunSpec spec;
      spec.scenario = "test-hostile-syscalls";
      spec.cpus = cpus;
      spec.seed = seed;
      spec.strategy.kind = StrategyKind::Random;
      const RunResult r = run_one(spec);
      EXPECT_EQ(r.outcome, Outcome::Finished) << cpus << " CPUs, seed " << seed << ": " << r.message;
    }
  }
}

}  // namespace
}  // namespace sim
