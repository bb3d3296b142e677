// Futexes: 64 hashed buckets, each with its own lock. Waiters queue on the bucket of their key;
// wakers find them there. The invariant that makes blocking correct: a waiter compares the
// user word and enqueues itself under the bucket lock, and a waker changes the word before it
// takes the same lock, so a waker either sees the waiter queued or the waiter sees the new
// value. (The simulator's planted bugs break exactly this.)
#pragma once

#include "core/lib/atomic.h"
#include "core/lib/list.h"
#include "core/lib/result.h"
#include "core/lib/spinlock.h"
#include "core/mm/address_space.h"
#include "core/proc/thread.h"

namespace tandem {

// Linux's futex operation numbers and flags.
namespace futex_op {
inline constexpr u32 kWait = 0, kWake = 1, kFd = 2, kRequeue = 3, kCmpRequeue = 4, kWakeOp = 5,
                     kLockPi = 6, kUnlockPi = 7, kTrylockPi = 8, kWaitBitset = 9,
                     kWakeBitset = 10, kWaitRequeuePi = 11, kCmpRequeuePi = 12, kLockPi2 = 13;
inline constexpr u32 kPrivateFlag = 128, kClockRealtime = 256;
inline constexpr u32 kCommandMask = ~(kPrivateFlag | kClockRealtime);
inline constexpr u32 kBitsetMatchAny = 0xffffffffu;
}  // namespace futex_op

// At boot the kernel picks how futex waits behave, as the seed did: Blocking is the real
// thing; SpinYield makes a wait whose value matches return 0 at once, so callers spin.
enum class FutexMode : u8 { Blocking, SpinYield };

struct FutexBucket {
  SpinLock lock{LockRank::Wait};
  IntrusiveList<Thread, &Thread::wait_node> waiters;  // guarded by lock
  Atomic<u32> waiter_count{0};                         // written under lock
};

// An absolute deadline on one clock, or none.
struct Deadline {
  bool infinite = true;
  bool realtime = false;
  u64 ns = 0;
};

class FutexTable {
 public:
  static constexpr u32 kBuckets = 64;

  explicit FutexTable(Kernel& kernel) : m_kernel(kernel) {}
  TANDEM_NONCOPYABLE(FutexTable);

  void set_mode(FutexMode mode) { m_mode = mode; }
  FutexMode mode() const { return m_mode; }

  Result<i64> wait(u64 uaddr, bool shared, u32 expected, u32 bitset, Deadline deadline);
  Result<i64> wake(u64 uaddr, bool shared, i32 count, u32 bitset);
  Result<i64> requeue(u64 uaddr, bool shared, i32 wake_count, i32 requeue_count, u64 uaddr2,
                      const u32* compare_value);
  Result<i64> wake_op(u64 uaddr, bool shared, i32 count, u64 uaddr2, i32 count2, u32 encoded_op);

  // Wakes up to `count` waiters on a key already computed (thread exit's CLEARTID wake).
  i64 wake_key(const FutexKey& key, i32 count, u32 bitset);

  // For invariant checks: waiters queued in all buckets.
  usize queued_waiters();

 private:
  FutexBucket& bucket_for(const FutexKey& key);
  // Removes and wakes up to `count` matching waiters; caller holds the bucket lock.
  i64 wake_locked(FutexBucket& bucket, const FutexKey& key, i32 count, u32 bitset);

  Kernel& m_kernel;
  FutexMode m_mode = FutexMode::Blocking;
  FutexBucket m_buckets[kBuckets];
};

}  // namespace tandem
