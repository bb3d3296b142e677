// Process and signal system calls, table-driven against Linux's documented behaviour
// (wait4(2), waitid(2), kill(2), tgkill(2), sigaction(2), sigprocmask(2), sigaltstack(2),
// setpgid(2), setsid(2)), run by a user program on the simulated kernel.
#include <gtest/gtest.h>

#include <cerrno>
#include <climits>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

namespace pnr {
constexpr uint64_t kRtSigaction = 13, kRtSigprocmask = 14, kFork = 57, kWait4 = 61, kKill = 62, kGetppid = 110,
                   kSetpgid = 109, kGetpgid = 121, kSetsid = 112, kGetsid = 124, kRtSigpending = 127,
                   kSigaltstack = 131, kTkill = 200, kTgkill = 234, kWaitid = 247;
}
constexpr uint64_t kBuf = kDataBase + 0x100;  // scratch structures
constexpr uint64_t kMode = kDataBase + 0x800;  // what the forked child does
constexpr uint64_t kCowWord = kDataBase + 0xc00;  // written by a child after its mprotect
constexpr uint64_t kUnmapped = 0x50000000;
constexpr uint64_t kSigusr1 = 10, kSigusr2 = 12, kSigterm = 15, kSigkill = 9, kSigsegv = 11;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

void child(User& u) {
  if (u.start().rax != 0) u.fail("the child's fork returned %llu", static_cast<unsigned long long>(u.start().rax));
  const int64_t pid = u.syscall(nr::kGetpid);
  switch (u.load32(kMode)) {
    case 0: exit_group(u, 3);
    case 1: u.syscall(pnr::kKill, static_cast<uint64_t>(pid), kSigterm); break;
    case 2: u.syscall(pnr::kKill, static_cast<uint64_t>(pid), kSigusr2); break;
    case 3: u.load32(kUnmapped); break;  // SIGSEGV: killed with the core bit
    case 4: {
      // mprotect(PROT_READ|PROT_WRITE) of a page still shared copy-on-write with the parent must
      // not make the shared frame writable: the write below gets the child its own copy.
      if (u.syscall(10, kDataBase, 4096, 3) != 0) u.fail("the child's mprotect failed");
      u.store32(kCowWord, 0x22);
      exit_group(u, static_cast<int>(u.load32(kCowWord)));
    }
    case 5: {
      // Touches a private anonymous mapping twice the simulated machine's RAM: once no frame is
      // left, the process is killed with SIGKILL (Linux's out-of-memory killer), not SIGSEGV.
      constexpr uint64_t kLength = 512ull << 20;
      const int64_t base = u.syscall(9, 0, kLength, 3, 0x22, ~0ull, 0);
      if (base < 0) u.fail("mmap of 512 MiB: %lld", static_cast<long long>(base));
      for (uint64_t offset = 0; offset < kLength; offset += 4096) u.store32(static_cast<uint64_t>(base) + offset, 1);
      exit_group(u, 0);
    }
  }
  u.fail("the child survived its mode %u", u.load32(kMode));
}
const uint64_t kChild = register_entry("test.process.child", child);

int64_t fork_and_wait(User& u, uint32_t mode, uint32_t* status) {
  u.store32(kMode, mode);
  const int64_t pid = u.syscall_at(kChild, pnr::kFork);
  if (pid <= 0) u.fail("fork returned %lld", static_cast<long long>(pid));
  const int64_t waited = u.syscall(pnr::kWait4, static_cast<uint64_t>(pid), kBuf, 0, 0);
  *status = u.load32(kBuf);
  return waited == pid ? 0 : waited;
}

void process_table(User& u) {
  const uint64_t self = static_cast<uint64_t>(u.syscall(nr::kGetpid));
  const uint64_t tid = static_cast<uint64_t>(u.syscall(nr::kGettid));

  // wait4 and waitid.
  check(u, "wait4 without children", u.syscall(pnr::kWait4, ~0ull, 0, 1, 0), -ECHILD);
  check(u, "wait4 with an unknown option", u.syscall(pnr::kWait4, ~0ull, 0, 0x100, 0), -EINVAL);
  check(u, "wait4(INT_MIN)", u.syscall(pnr::kWait4, static_cast<uint64_t>(static_cast<int64_t>(INT_MIN)), 0, 0, 0), -ESRCH);
  check(u, "waitid with a bad idtype", u.syscall(pnr::kWaitid, 7, 0, kBuf, 4, 0), -EINVAL);
  check(u, "waitid without WEXITED/WSTOPPED/WCONTINUED", u.syscall(pnr::kWaitid, 0, 0, kBuf, 0, 0), -EINVAL);
  check(u, "waitid(P_PID, 0)", u.syscall(pnr::kWaitid, 1, 0, kBuf, 4, 0), -EINVAL);
  check(u, "waitid(P_ALL) without children", u.syscall(pnr::kWaitid, 0, 0, kBuf, 4 | 1, 0), -ECHILD);

  // kill, tkill, tgkill.
  check(u, "kill with signal 65", u.syscall(pnr::kKill, self, 65), -EINVAL);
  check(u, "kill(self, 0)", u.syscall(pnr::kKill, self, 0), 0);
  check(u, "kill of no such pid", u.syscall(pnr::kKill, 99999, 0), -ESRCH);
  check(u, "kill of no such group", u.syscall(pnr::kKill, static_cast<uint64_t>(-99999ll), kSigusr1), -ESRCH);
  check(u, "tgkill with tgid 0", u.syscall(pnr::kTgkill, 0, tid, kSigusr1), -EINVAL);
  check(u, "tgkill with tid 0", u.syscall(pnr::kTgkill, self, 0, kSigusr1), -EINVAL);
  check(u, "tgkill of no such thread", u.syscall(pnr::kTgkill, self, 99999, kSigusr1), -ESRCH);
  check(u, "tgkill with a wrong tgid", u.syscall(pnr::kTgkill, self + 1000, tid, 0), -ESRCH);
  check(u, "tkill with a negative tid", u.syscall(pnr::kTkill, static_cast<uint64_t>(-1ll), kSigusr1), -EINVAL);
  check(u, "tkill(self, 0)", u.syscall(pnr::kTkill, tid, 0), 0);

  // rt_sigaction.
  const uint64_t act = kBuf + 0x100, old = kBuf + 0x200;
  u.store64(act, 1);  // SIG_IGN
  u.store64(act + 8, 0);
  u.store64(act + 16, 0);
  u.store64(act + 24, 0);
  check(u, "rt_sigaction(0)", u.syscall(pnr::kRtSigaction, 0, act, 0, 8), -EINVAL);
  check(u, "rt_sigaction(65)", u.syscall(pnr::kRtSigaction, 65, act, 0, 8), -EINVAL);
  check(u, "rt_sigaction(SIGKILL, act)", u.syscall(pnr::kRtSigaction, kSigkill, act, 0, 8), -EINVAL);
  check(u, "rt_sigaction(SIGKILL, null, old)", u.syscall(pnr::kRtSigaction, kSigkill, 0, old, 8), 0);
  check(u, "rt_sigaction with sigsetsize 4", u.syscall(pnr::kRtSigaction, kSigusr1, act, 0, 4), -EINVAL);
  check(u, "rt_sigaction with a bad act", u.syscall(pnr::kRtSigaction, kSigusr1, kUnmapped, 0, 8), -EFAULT);
  check(u, "rt_sigaction with a bad oldact", u.syscall(pnr::kRtSigaction, kSigusr1, 0, kUnmapped, 8), -EFAULT);
  check(u, "ignore SIGUSR1", u.syscall(pnr::kRtSigaction, kSigusr1, act, 0, 8), 0);
  check(u, "an ignored signal is discarded", u.syscall(pnr::kKill, self, kSigusr1), 0);
  check(u, "read back SIG_IGN", u.syscall(pnr::kRtSigaction, kSigusr1, 0, old, 8), 0);
  check(u, "the old handler is SIG_IGN", static_cast<int64_t>(u.load64(old)), 1);

  // rt_sigprocmask, rt_sigpending.
  const uint64_t set = kBuf + 0x300, oldset = kBuf + 0x308;
  u.store64(set, ~0ull);
  check(u, "rt_sigprocmask with how 3", u.syscall(pnr::kRtSigprocmask, 3, set, 0, 8), -EINVAL);
  check(u, "rt_sigprocmask with sigsetsize 4", u.syscall(pnr::kRtSigprocmask, 0, set, 0, 4), -EINVAL);
  check(u, "block everything", u.syscall(pnr::kRtSigprocmask, 0, set, 0, 8), 0);
  check(u, "read the mask", u.syscall(pnr::kRtSigprocmask, 0, 0, oldset, 8), 0);
  check(u, "SIGKILL and SIGSTOP cannot be blocked", static_cast<int64_t>(u.load64(oldset) & ((1ull << 8) | (1ull << 18))), 0);
  check(u, "SIGUSR2 while blocked", u.syscall(pnr::kKill, self, kSigusr2), 0);
  check(u, "rt_sigpending", u.syscall(pnr::kRtSigpending, set, 8), 0);
  check(u, "SIGUSR2 is pending", static_cast<int64_t>(u.load64(set) & (1ull << 11)), static_cast<int64_t>(1ull << 11));
  check(u, "rt_sigpending with sigsetsize 16", u.syscall(pnr::kRtSigpending, set, 16), -EINVAL);
  // Ignoring a pending signal discards it, so unblocking below does not kill us.
  u.store64(act, 1);
  check(u, "ignore SIGUSR2", u.syscall(pnr::kRtSigaction, kSigusr2, act, 0, 8), 0);
  check(u, "rt_sigpending after SIG_IGN", u.syscall(pnr::kRtSigpending, set, 8), 0);
  check(u, "SIGUSR2 is no longer pending", static_cast<int64_t>(u.load64(set) & (1ull << 11)), 0);
  u.store64(act, 0);
  check(u, "SIGUSR2 back to SIG_DFL", u.syscall(pnr::kRtSigaction, kSigusr2, act, 0, 8), 0);
  u.store64(set, 0);
  check(u, "unblock everything", u.syscall(pnr::kRtSigprocmask, 2, set, 0, 8), 0);

  // sigaltstack.
  const uint64_t ss = kBuf + 0x400;
  check(u, "sigaltstack query", u.syscall(pnr::kSigaltstack, 0, ss), 0);
  check(u, "no alternate stack: SS_DISABLE", u.load32(ss + 8), 2);
  u.store64(ss, kDataBase + 0x10000);
  u.store32(ss + 8, 0);
  u.store64(ss + 16, 100);
  check(u, "sigaltstack smaller than MINSIGSTKSZ", u.syscall(pnr::kSigaltstack, ss, 0), -ENOMEM);
  u.store32(ss + 8, 5);
  u.store64(ss + 16, 8192);
  check(u, "sigaltstack with bad flags", u.syscall(pnr::kSigaltstack, ss, 0), -EINVAL);
  check(u, "sigaltstack with a bad pointer", u.syscall(pnr::kSigaltstack, kUnmapped, 0), -EFAULT);

  // Groups and sessions.
  check(u, "getpgid(0) of PID 1", u.syscall(pnr::kGetpgid, 0), 1);
  check(u, "getsid(0) of PID 1", u.syscall(pnr::kGetsid, 0), 1);
  check(u, "getpgid of no such pid", u.syscall(pnr::kGetpgid, 99999), -ESRCH);
  check(u, "setpgid with a negative pgid", u.syscall(pnr::kSetpgid, 0, static_cast<uint64_t>(-1ll)), -EINVAL);
  check(u, "setpgid of no such pid", u.syscall(pnr::kSetpgid, 99999, 0), -ESRCH);
  check(u, "setsid in a session leader", u.syscall(pnr::kSetsid), -EPERM);
  check(u, "getppid of PID 1", u.syscall(pnr::kGetppid), 0);

  // Children: exit codes and signals as wait statuses.
  uint32_t status = 0;
  check(u, "fork, exit(3), wait4", fork_and_wait(u, 0, &status), 0);
  check(u, "exit status 3", status, 3 << 8);
  check(u, "fork, SIGTERM to itself, wait4", fork_and_wait(u, 1, &status), 0);
  check(u, "killed by SIGTERM", status, kSigterm);
  check(u, "fork, SIGUSR2 to itself, wait4", fork_and_wait(u, 2, &status), 0);
  check(u, "killed by SIGUSR2", status, kSigusr2);
  check(u, "fork, fault, wait4", fork_and_wait(u, 3, &status), 0);
  check(u, "killed by SIGSEGV with the core bit", status, kSigsegv | 0x80);
  u.store32(kCowWord, 0x11);
  check(u, "fork, mprotect, write, wait4", fork_and_wait(u, 4, &status), 0);
  check(u, "the child saw its own write", status, 0x22 << 8);
  check(u, "fork, run out of memory, wait4", fork_and_wait(u, 5, &status), 0);
  check(u, "killed by SIGKILL", status, 9);
  check(u, "the parent's copy is untouched", u.load32(kCowWord), 0x11);
  check(u, "no child left", u.syscall(pnr::kWait4, ~0ull, 0, 1, 0), -ECHILD);
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-process-table", "process and signal system call semantics, one thread",
                       register_entry("test.process.table", process_table), any});
  }
} const kRegistrar;

TEST(ProcessSemantics, TableMatchesLinux) {
  for (uint32_t cpus : {1u, 2u, 4u}) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      RunSpec spec;
      spec.scenario = "test-process-table";
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
