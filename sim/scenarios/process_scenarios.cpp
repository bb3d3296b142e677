// Process and signal scenarios: fork with copy-on-write while sibling threads write on other
// CPUs, and a signal that interrupts a futex wait while another CPU wakes it.
//
// Data region layout (base kDataBase): shared words first, thread slots from kSlots.
#include <cstdint>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {

namespace {

using namespace ulib;

namespace pnr {
constexpr uint64_t kRtSigaction = 13, kRtSigprocmask = 14, kMmap = 9, kFork = 57, kWait4 = 61, kKill = 62,
                   kGetppid = 110, kTgkill = 234;
}
constexpr uint32_t kSigusr1 = 10, kSigchld = 17;
constexpr uint64_t kSaSiginfo = 4, kSaRestorer = 0x04000000, kSaRestart = 0x10000000;
constexpr int64_t kSiTkill = -6;

constexpr uint64_t kSlots = 16384;
constexpr uint64_t kWords = 64;  // offset of the scenario's words
uint64_t word(unsigned i) { return kDataBase + kWords + 8ull * i; }
uint64_t thread_word(unsigned i) { return kDataBase + 4096 + 8ull * i; }  // one page of per-thread words

const char* validate(uint32_t threads, uint32_t iterations) {
  if (threads < 1 || threads > 64) return "threads must be between 1 and 64";
  if (iterations < 1 || iterations > 100000) return "iterations must be between 1 and 100000";
  return nullptr;
}

// ------------------------------------------------------------------------------------------------
// fork-cow: threads-1 sibling threads keep writing their own words while the main thread
// forks. The child must see the memory of the moment of fork, frozen (the siblings do not exist
// in it), and its writes must not reach the parent; the parent's writes after fork must not
// reach the child. A MAP_SHARED page stays shared between them.
// words: 0 marker (parent writes 1 after fork, child writes 2), 1 the shared page's address,
//        2 siblings started, 3 the value the child saw in the marker
// ------------------------------------------------------------------------------------------------
void cow_sibling(User& u) {
  const uint32_t index = static_cast<uint32_t>(thread_arg(u));
  const uint64_t iterations = u.load64(word(4));
  u.fetch_add32(word(2), 1);
  for (uint64_t i = 1; i <= iterations; ++i) {
    u.store64(thread_word(index), i);
    if (i % 4 == 0) yield(u);
  }
}
const uint64_t kCowSibling = register_entry("fork-cow.sibling", cow_sibling);

void cow_child(User& u) {
  if (u.start().rax != 0) u.fail("fork-cow: the child's fork returned %llu", static_cast<unsigned long long>(u.start().rax));
  const uint32_t siblings = static_cast<uint32_t>(u.load64(word(5)));
  // The marker: the parent's write after fork must not be visible here.
  const uint64_t marker = u.load64(word(0));
  if (marker != 0) u.fail("fork-cow: the child sees the parent's post-fork write (%llu)", static_cast<unsigned long long>(marker));
  // The siblings' words are frozen in the child.
  uint64_t seen[64];
  for (uint32_t i = 0; i < siblings; ++i) seen[i] = u.load64(thread_word(i));
  yield(u);
  yield(u);
  for (uint32_t i = 0; i < siblings; ++i) {
    if (u.load64(thread_word(i)) != seen[i]) u.fail("fork-cow: sibling %u's word changed in the child", i);
    u.store64(thread_word(i), 1'000'000'000ull);  // must not reach the parent
  }
  u.store64(word(0), 2);
  // The shared mapping is the same memory in both.
  const uint64_t shared = u.load64(word(1));
  u.store64(shared, 0xc0ffee);
  const int64_t ppid = u.syscall(pnr::kGetppid);
  if (ppid != 1) u.fail("fork-cow: getppid in the child is %lld, not 1", static_cast<long long>(ppid));
  exit_group(u, 42);
}
const uint64_t kCowChild = register_entry("fork-cow.child", cow_child);

void cow_main(User& u) {
  const uint32_t threads = static_cast<uint32_t>(u.start().rdi);
  const uint32_t siblings = threads > 1 ? threads - 1 : 1;
  u.store64(word(4), static_cast<uint32_t>(u.start().rsi));
  u.store64(word(5), siblings);
  const int64_t shared = u.syscall(pnr::kMmap, 0, 4096, 3, 0x21 /* MAP_SHARED|MAP_ANONYMOUS */, ~0ull, 0);
  if (shared < 0) u.fail("fork-cow: mmap MAP_SHARED failed with %lld", static_cast<long long>(shared));
  u.store64(word(1), static_cast<uint64_t>(shared));
  u.store64(static_cast<uint64_t>(shared), 1);
  for (uint32_t i = 0; i < siblings; ++i) {
    if (spawn(u, kCowSibling, i, slot_at(kDataBase + kSlots, i)) < 0) u.fail("fork-cow: clone failed");
  }
  // Fork once at least one sibling runs, so the copy races with their writes.
  while (u.load32(word(2)) == 0) yield(u);
  const int64_t pid = u.syscall_at(kCowChild, pnr::kFork);
  if (pid <= 1) u.fail("fork-cow: fork returned %lld", static_cast<long long>(pid));
  u.store64(word(0), 1);
  const uint64_t status_word = kDataBase + 8;
  const int64_t waited = u.syscall(pnr::kWait4, static_cast<uint64_t>(pid), status_word, 0, 0);
  if (waited != pid) u.fail("fork-cow: wait4 returned %lld, expected %lld", static_cast<long long>(waited), static_cast<long long>(pid));
  const uint32_t status = u.load32(status_word);
  if (status != (42u << 8)) u.fail("fork-cow: wait status 0x%x, expected 0x2a00", status);
  if (u.load64(word(0)) != 1) u.fail("fork-cow: the child's write reached the parent's marker");
  if (u.load64(static_cast<uint64_t>(shared)) != 0xc0ffee) u.fail("fork-cow: the shared mapping was not shared");
  // Nothing is left to wait for.
  if (u.syscall(pnr::kWait4, ~0ull, 0, 1 /* WNOHANG */, 0) != -10) u.fail("fork-cow: a second wait4 did not say ECHILD");
  for (uint32_t i = 0; i < siblings; ++i) join(u, slot_at(kDataBase + kSlots, i));
  const uint64_t iterations = u.load64(word(4));
  for (uint32_t i = 0; i < siblings; ++i) {
    if (u.load64(thread_word(i)) != iterations)
      u.fail("fork-cow: sibling %u's word is %llu in the parent, expected %llu", i,
             static_cast<unsigned long long>(u.load64(thread_word(i))), static_cast<unsigned long long>(iterations));
  }
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// signal-futex: each round the main thread sends SIGUSR1 to a waiter blocked (or about to
// block) in FUTEX_WAIT and, at once, wakes it through the futex. Whatever wins, the handler runs
// exactly once per round with the right siginfo, the wait ends with 0, EAGAIN or (only without
// SA_RESTART) EINTR, and the signal mask is back after the handler.
// words: 10 futex word (round), 11 handler runs, 12 SA_RESTART this round, 13 main's pid,
//        14 waiter's tid, 15 EINTR results, 16 waiter ready, 17 runs of a handler without SA_RESTART
// ------------------------------------------------------------------------------------------------
void sigfutex_handler(User& h) {
  const uint64_t signo = h.start().rdi;
  if (signo != kSigusr1) h.fail("signal-futex: the handler got signal %llu", static_cast<unsigned long long>(signo));
  const uint64_t info = h.start().rsi;
  if (h.load32(info) != kSigusr1) h.fail("signal-futex: si_signo is %u", h.load32(info));
  if (static_cast<int32_t>(h.load32(info + 8)) != kSiTkill) h.fail("signal-futex: si_code is %d", static_cast<int32_t>(h.load32(info + 8)));
  if (h.load32(info + 16) != h.load64(word(13))) h.fail("signal-futex: si_pid is %u", h.load32(info + 16));
  // Runs of a handler without SA_RESTART: only those may turn a wait into EINTR.
  if (h.load32(word(12)) == 0) h.fetch_add32(word(17), 1);
  h.fetch_add32(word(11), 1);
}
const uint64_t kSigfutexHandler = register_entry("signal-futex.handler", sigfutex_handler);
const uint64_t kRestorer = register_entry("signal-futex.restorer", [](User& u) { u.fail("the restorer ran as a thread"); });

void sigfutex_waiter(User& u) {
  const uint64_t iterations = u.load64(word(4));
  u.store64(word(14), static_cast<uint64_t>(u.syscall(nr::kGettid)));
  u.store32(word(16), 1);
  for (uint64_t round = 1; round <= iterations; ++round) {
    for (;;) {
      const uint32_t value = u.load32(word(10));
      if (value >= round) break;
      const uint32_t plain_runs = u.load32(word(17));
      const int64_t r = futex_wait(u, word(10), value);
      if (r == -4) {
        if (u.load32(word(17)) == plain_runs) u.fail("signal-futex: EINTR although every handler that ran has SA_RESTART");
        u.fetch_add32(word(15), 1);
      } else if (r != 0 && r != -11) {
        u.fail("signal-futex: FUTEX_WAIT returned %lld", static_cast<long long>(r));
      }
    }
    // The mask is back: SIGUSR1 is not blocked outside the handler.
    const uint64_t old_mask = kDataBase + 16;
    if (u.syscall(pnr::kRtSigprocmask, 0, 0, old_mask, 8) != 0) u.fail("signal-futex: rt_sigprocmask failed");
    if (u.load64(old_mask) & (1ull << (kSigusr1 - 1))) u.fail("signal-futex: SIGUSR1 still blocked after the handler");
  }
}

const uint64_t kSigfutexWaiter = register_entry("signal-futex.waiter", sigfutex_waiter);

void sigfutex_main(User& u) {
  const uint64_t iterations = u.start().rsi;
  u.store64(word(4), iterations);
  u.store64(word(13), static_cast<uint64_t>(u.syscall(nr::kGetpid)));
  const uint64_t act = kDataBase + 512;
  const ThreadSlot slot = slot_at(kDataBase + kSlots, 0);
  if (spawn(u, kSigfutexWaiter, 0, slot) < 0) u.fail("signal-futex: clone failed");
  while (u.load32(word(16)) == 0) yield(u);
  const uint32_t tid = static_cast<uint32_t>(u.load64(word(14)));
  for (uint64_t round = 1; round <= iterations; ++round) {
    const bool restart = round % 2 == 0;
    u.store64(act, kSigfutexHandler);
    u.store64(act + 8, kSaSiginfo | kSaRestorer | (restart ? kSaRestart : 0));
    u.store64(act + 16, kRestorer);
    u.store64(act + 24, 0);
    u.store32(word(12), restart ? 1 : 0);
    if (u.syscall(pnr::kRtSigaction, kSigusr1, act, 0, 8) != 0) u.fail("signal-futex: rt_sigaction failed");
    if (u.syscall(pnr::kTgkill, u.load64(word(13)), tid, kSigusr1) != 0) u.fail("signal-futex: tgkill failed");
    u.store32(word(10), static_cast<uint32_t>(round));
    futex_wake(u, word(10), 1);
    // The next round's signal must not merge with this one: wait for the handler.
    while (u.load32(word(11)) < round) yield(u);
  }
  join(u, slot);
  if (u.load32(word(11)) != iterations) u.fail("signal-futex: the handler ran %u times for %llu signals", u.load32(word(11)),
                                               static_cast<unsigned long long>(iterations));
  exit_group(u, 0);
}

struct Registrar {
  Registrar() {
    register_scenario({"fork-cow", "fork while sibling threads write: the child sees a frozen copy, writes stay private, MAP_SHARED stays shared",
                       register_entry("fork-cow.main", cow_main), validate});
    register_scenario({"signal-futex", "SIGUSR1 interrupts FUTEX_WAIT while another CPU wakes it: one handler run per signal, EINTR only without SA_RESTART",
                       register_entry("signal-futex.main", sigfutex_main), validate});
  }
} registrar;

}  // namespace

}  // namespace sim
