// A tiny user-space library for simulator scenarios: system call wrappers, thread creation
// through clone, and join through the CLONE_CHILD_CLEARTID futex wake, as glibc does them.
#pragma once

#include <cstdint>

#include "hal/sim/user.h"

namespace sim::ulib {

namespace nr {
inline constexpr uint64_t kSchedYield = 24, kNanosleep = 35, kGetpid = 39, kClone = 56, kExit = 60,
                          kGettid = 186, kFutex = 202, kSetTidAddress = 218, kClockGettime = 228,
                          kClockNanosleep = 230, kExitGroup = 231;
}
inline constexpr uint32_t kFutexWait = 0, kFutexWake = 1, kFutexRequeue = 3, kFutexCmpRequeue = 4,
                          kFutexWakeOp = 5, kFutexWaitBitset = 9, kFutexWakeBitset = 10, kFutexPrivate = 128;
inline constexpr uint64_t kThreadFlags = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x80000 |
                                         0x100000 | 0x200000;  // as glibc's pthread_create

inline int64_t futex_wait(User& u, uint64_t addr, uint32_t expected, bool is_private = true) {
  return u.syscall(nr::kFutex, addr, kFutexWait | (is_private ? kFutexPrivate : 0), expected, 0, 0, 0);
}
inline int64_t futex_wake(User& u, uint64_t addr, uint32_t count, bool is_private = true) {
  return u.syscall(nr::kFutex, addr, kFutexWake | (is_private ? kFutexPrivate : 0), count, 0, 0, 0);
}
inline int64_t futex_cmp_requeue(User& u, uint64_t addr, uint32_t wake, uint32_t requeue, uint64_t addr2,
                                 uint32_t expected) {
  return u.syscall(nr::kFutex, addr, kFutexCmpRequeue | kFutexPrivate, wake, requeue, addr2, expected);
}
inline void yield(User& u) { u.syscall(nr::kSchedYield); }
[[noreturn]] inline void exit_group(User& u, int code) {
  u.syscall(nr::kExitGroup, static_cast<uint64_t>(code));
  u.fail("exit_group returned");
}

// Drepper's mutex 3 ("Futexes Are Tricky", 2011): 0 unlocked, 1 locked, 2 locked with waiters.
inline void mutex_lock(User& u, uint64_t m) {
  uint32_t c = 0;
  if (u.cas32(m, c, 1)) return;
  if (c != 2) c = u.exchange32(m, 2);
  while (c != 0) {
    futex_wait(u, m, 2);
    c = u.exchange32(m, 2);
  }
}
inline void mutex_unlock(User& u, uint64_t m) {
  if (u.fetch_add32(m, static_cast<uint32_t>(-1)) != 1) {
    u.store32(m, 0);
    futex_wake(u, m, 1);
  }
}

// Thread creation. Each thread gets a slot: a small stack whose top holds the argument, the
// word CLONE_PARENT_SETTID / CHILD_CLEARTID use, and a TLS block whose first word points to
// itself (as x86-64 TLS does).
struct ThreadSlot {
  uint64_t stack_top;
  uint64_t tid_word;
  uint64_t tls;
};
inline constexpr uint64_t kSlotBytes = 4096;

inline ThreadSlot slot_at(uint64_t area, uint32_t index) {
  const uint64_t base = area + static_cast<uint64_t>(index) * kSlotBytes;
  return ThreadSlot{base + kSlotBytes - 64, base + 64, base + 128};
}

// Starts a thread at `entry` with `arg`; returns its tid (or -errno).
inline int64_t spawn(User& u, uint64_t entry, uint64_t arg, const ThreadSlot& slot) {
  u.store64(slot.stack_top, arg);
  u.store64(slot.tls, slot.tls);
  return u.syscall_at(entry, nr::kClone, kThreadFlags, slot.stack_top, slot.tid_word, slot.tid_word, slot.tls);
}
// The argument spawn() passed, read from the new thread's stack.
inline uint64_t thread_arg(User& u) { return u.load64(u.start().rsp); }

// Waits until the thread's tid word is cleared by the kernel at its exit (pthread_join).
inline void join(User& u, const ThreadSlot& slot) {
  for (;;) {
    const uint32_t tid = u.load32(slot.tid_word);
    if (tid == 0) return;
    // The kernel wakes this word as a shared futex: wait the same way.
    futex_wait(u, slot.tid_word, tid, false);
  }
}

}  // namespace sim::ulib
