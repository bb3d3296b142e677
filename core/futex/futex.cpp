#include "core/futex/futex.h"

#include "core/kernel.h"

namespace tandem {

namespace {

AddressSpace* current_space() {
  Thread* self = Kernel::current_thread();
  return self->process != nullptr ? self->process->address_space : nullptr;
}

// Holds two buckets' locks (the same bucket once). They are taken in address order; the rank
// check cannot order two locks of one rank, so the second is taken as a nested lock.
class BucketPairGuard {
 public:
  BucketPairGuard(FutexBucket& a, FutexBucket& b)
      : m_first(&a < &b ? &a : &b), m_second(&a < &b ? &b : &a), m_flags(hal::irq_save()) {
    m_first->lock.acquire();
    if (m_second != m_first) m_second->lock.acquire_nested();
  }
  ~BucketPairGuard() { unlock(); }
  TANDEM_NONCOPYABLE(BucketPairGuard);
  void unlock() {
    if (m_first == nullptr) return;
    if (m_second != m_first) m_second->lock.release();
    m_first->lock.release();
    m_first = nullptr;
    hal::irq_restore(m_flags);
  }

 private:
  FutexBucket* m_first;
  FutexBucket* m_second;
  hal::IrqFlags m_flags;
};

bool key_matches(Thread* waiter, const FutexKey& key, u32 bitset) {
  return waiter->futex_key == key && (waiter->futex_bitset & bitset) != 0;
}

}  // namespace

FutexBucket& FutexTable::bucket_for(const FutexKey& key) {
  u64 h = key.space_or_object * 0x9e3779b97f4a7c15ull ^ key.address_or_offset * 0xc2b2ae3d27d4eb4full ^ key.kind;
  h ^= h >> 29;
  return m_buckets[h % kBuckets];
}

Result<i64> FutexTable::wait(u64 uaddr, bool shared, u32 expected, u32 bitset, Deadline deadline) {
  AddressSpace* space = current_space();
  if (space == nullptr) return Errno::kEFAULT;
  if (bitset == 0) return Errno::kEINVAL;
  const FutexKey key = TRY(space->futex_key(uaddr, shared));
  Thread* self = Kernel::current_thread();

  // The deadline in monotonic time. A realtime deadline is converted once; a later change of
  // the wall clock does not move it (the simulator and this kernel never step the clock).
  u64 mono_deadline = 0;
  if (!deadline.infinite) {
    const u64 now_mono = hal::monotonic_ns();
    if (deadline.realtime) {
      const u64 now_real = hal::realtime_ns();
      if (deadline.ns <= now_real) return Errno::kETIMEDOUT;
      mono_deadline = now_mono + (deadline.ns - now_real);
    } else {
      if (deadline.ns <= now_mono) return Errno::kETIMEDOUT;
      mono_deadline = deadline.ns;
    }
  }

  FutexBucket& bucket = bucket_for(key);
  u32 value = 0;
  if (hal::planted(hal::Plant::FutexCheckUnlocked)) {
    // Planted bug: compare without the bucket lock. A waker can change the word and find no
    // waiter between this check and the enqueue below, and the wake-up is lost.
    if (!hal::copy_from_user(&value, uaddr, sizeof(value))) return Errno::kEFAULT;
    if (value != expected) return Errno::kEAGAIN;
    if (m_mode == FutexMode::SpinYield) return 0;
    SpinLockGuard guard(bucket.lock);
    m_kernel.prepare_to_sleep();
    self->futex_key = key;
    self->futex_bitset = bitset;
    self->futex_bucket = &bucket;
    bucket.waiters.push_back(self);
    bucket.waiter_count.store(static_cast<u32>(bucket.waiters.size()));
  } else {
    SpinLockGuard guard(bucket.lock);
    if (!hal::copy_from_user(&value, uaddr, sizeof(value))) return Errno::kEFAULT;
    if (value != expected) return Errno::kEAGAIN;
    if (m_mode == FutexMode::SpinYield) return 0;
    m_kernel.prepare_to_sleep();
    self->futex_key = key;
    self->futex_bitset = bitset;
    self->futex_bucket = &bucket;
    bucket.waiters.push_back(self);
    bucket.waiter_count.store(static_cast<u32>(bucket.waiters.size()));
  }
  if (mono_deadline != 0) m_kernel.arm_timer(mono_deadline);
  // A signal that arrived before prepare_to_sleep() found the thread running and woke nothing:
  // cancel the sleep ourselves so the loop below reports it.
  if (signal_pending(self)) m_kernel.wake(self, kWakeKill);

  for (;;) {
    m_kernel.block();
    // Still queued means nobody woke us through the futex: a timeout, a kill, or a spurious
    // wake-up (retried). A requeue may have moved us to another bucket; follow it.
    for (;;) {
      FutexBucket* current = self->futex_bucket;
      SpinLockGuard guard(current->lock);
      if (self->futex_bucket != current) continue;
      if (!self->wait_node.linked()) {
        m_kernel.cancel_timer(self);
        return 0;
      }
      const u8 reason = self->wake_reason.load(MemoryOrder::Relaxed);
      const bool timed_out = mono_deadline != 0 && hal::monotonic_ns() >= mono_deadline;
      if (reason == kWakeKill || signal_pending(self) || timed_out) {
        current->waiters.remove(self);
        current->waiter_count.store(static_cast<u32>(current->waiters.size()));
        guard.unlock();
        m_kernel.cancel_timer(self);
        if (self->kill_pending.load()) return Errno::kEINTR;  // exiting: the value is never seen
        if (timed_out && reason != kWakeKill) return Errno::kETIMEDOUT;
        // A signal: restarted after a handler with SA_RESTART or when no handler runs, EINTR
        // otherwise (core/proc/signal.cpp), as Linux's futex_wait returns -ERESTARTSYS.
        return Errno::kERESTARTSYS;
      }
      m_kernel.prepare_to_sleep();
      break;
    }
  }
}

i64 FutexTable::wake_locked(FutexBucket& bucket, const FutexKey& key, i32 count, u32 bitset) {
  // Linux wakes at least one waiter even when asked for zero.
  i64 woken = 0;
  bucket.waiters.for_each([&](Thread* waiter) {
    if (woken > 0 && woken >= count) return;
    if (!key_matches(waiter, key, bitset)) return;
    bucket.waiters.remove(waiter);
    // Woken under the bucket lock: the waiter cannot return, exit and be reused until we let go.
    m_kernel.wake(waiter, kWakeNormal);
    ++woken;
  });
  bucket.waiter_count.store(static_cast<u32>(bucket.waiters.size()));
  return woken;
}

i64 FutexTable::wake_key(const FutexKey& key, i32 count, u32 bitset) {
  FutexBucket& bucket = bucket_for(key);
  SpinLockGuard guard(bucket.lock);
  return wake_locked(bucket, key, count, bitset);
}

Result<i64> FutexTable::wake(u64 uaddr, bool shared, i32 count, u32 bitset) {
  AddressSpace* space = current_space();
  if (space == nullptr) return Errno::kEFAULT;
  if (bitset == 0) return Errno::kEINVAL;
  const FutexKey key = TRY(space->futex_key(uaddr, shared));
  FutexBucket& bucket = bucket_for(key);
  if (hal::planted(hal::Plant::FutexWakeNoLock)) {
    // Planted bug: "no waiters" decided without the lock, racing a waiter that has compared
    // the old value under the lock but not yet queued itself.
    if (bucket.waiter_count.load() == 0) return 0;
  }
  SpinLockGuard guard(bucket.lock);
  return wake_locked(bucket, key, count, bitset);
}

Result<i64> FutexTable::requeue(u64 uaddr, bool shared, i32 wake_count, i32 requeue_count, u64 uaddr2,
                                const u32* compare_value) {
  AddressSpace* space = current_space();
  if (space == nullptr) return Errno::kEFAULT;
  if (wake_count < 0 || requeue_count < 0) return Errno::kEINVAL;
  const FutexKey key1 = TRY(space->futex_key(uaddr, shared));
  const FutexKey key2 = TRY(space->futex_key(uaddr2, shared));
  FutexBucket& bucket1 = bucket_for(key1);
  FutexBucket& bucket2 = bucket_for(key2);
  BucketPairGuard guard(bucket1, bucket2);
  if (compare_value != nullptr) {
    u32 value = 0;
    if (!hal::copy_from_user(&value, uaddr, sizeof(value))) {
      return Errno::kEFAULT;
    }
    if (value != *compare_value) {
      return Errno::kEAGAIN;
    }
  }
  i64 woken = 0;
  i64 moved = 0;
  bucket1.waiters.for_each([&](Thread* waiter) {
    if (!(waiter->futex_key == key1)) return;
    if (woken < wake_count) {
      bucket1.waiters.remove(waiter);
      m_kernel.wake(waiter, kWakeNormal);
      ++woken;
    } else if (moved < requeue_count) {
      // A waiter changes lists only when the buckets differ: moved to the tail of the list
      // being walked, it would be met again and again (as Linux's requeue_futex, which only
      // rewrites the key when both keys hash to one chain).
      if (&bucket2 != &bucket1) {
        bucket1.waiters.remove(waiter);
        bucket2.waiters.push_back(waiter);
        waiter->futex_bucket = &bucket2;
      }
      waiter->futex_key = key2;
      ++moved;
    }
  });
  bucket1.waiter_count.store(static_cast<u32>(bucket1.waiters.size()));
  bucket2.waiter_count.store(static_cast<u32>(bucket2.waiters.size()));
  // Linux's futex_requeue returns woken + requeued for both FUTEX_REQUEUE and CMP_REQUEUE.
  return woken + moved;
}

Result<i64> FutexTable::wake_op(u64 uaddr, bool shared, i32 count, u64 uaddr2, i32 count2, u32 encoded_op) {
  AddressSpace* space = current_space();
  if (space == nullptr) return Errno::kEFAULT;
  const FutexKey key1 = TRY(space->futex_key(uaddr, shared));
  const FutexKey key2 = TRY(space->futex_key(uaddr2, shared));

  // Decode (op << 28) | (cmp << 24) | (oparg << 12) | cmparg, with sign-extended 12-bit fields.
  u32 op = (encoded_op >> 28) & 0xf;
  const u32 cmp = (encoded_op >> 24) & 0xf;
  i32 oparg = static_cast<i32>(encoded_op << 8) >> 20;
  const i32 cmparg = static_cast<i32>(encoded_op << 20) >> 20;
  if (op & 8) {
    // FUTEX_OP_OPARG_SHIFT: Linux masks an out-of-range shift to 0..31.
    oparg = static_cast<i32>(1u << (static_cast<u32>(oparg) & 31));
    op &= 7;
  }
  if (op > 4 || cmp > 5) return Errno::kENOSYS;

  FutexBucket& bucket1 = bucket_for(key1);
  FutexBucket& bucket2 = bucket_for(key2);
  BucketPairGuard guard(bucket1, bucket2);

  u32 old_value = 0;
  if (!hal::copy_from_user(&old_value, uaddr2, sizeof(old_value))) {
    return Errno::kEFAULT;
  }
  for (;;) {
    u32 new_value = 0;
    switch (op) {
      case 0: new_value = static_cast<u32>(oparg); break;                 // SET
      case 1: new_value = old_value + static_cast<u32>(oparg); break;     // ADD
      case 2: new_value = old_value | static_cast<u32>(oparg); break;     // OR
      case 3: new_value = old_value & ~static_cast<u32>(oparg); break;    // ANDN
      case 4: new_value = old_value ^ static_cast<u32>(oparg); break;     // XOR
    }
    u32 seen = 0;
    if (!hal::user_cmpxchg32(uaddr2, old_value, new_value, &seen)) {
      return Errno::kEFAULT;
    }
    if (seen == old_value) break;
    old_value = seen;
  }
  i64 woken = wake_locked(bucket1, key1, count, futex_op::kBitsetMatchAny);
  const i32 old_signed = static_cast<i32>(old_value);
  bool condition = false;
  switch (cmp) {
    case 0: condition = old_signed == cmparg; break;
    case 1: condition = old_signed != cmparg; break;
    case 2: condition = old_signed < cmparg; break;
    case 3: condition = old_signed <= cmparg; break;
    case 4: condition = old_signed > cmparg; break;
    case 5: condition = old_signed >= cmparg; break;
  }
  if (condition) woken += wake_locked(bucket2, key2, count2, futex_op::kBitsetMatchAny);
  return woken;
}

usize FutexTable::queued_waiters() {
  usize n = 0;
  for (auto& bucket : m_buckets) n += bucket.waiters.size();
  return n;
}

}  // namespace tandem
