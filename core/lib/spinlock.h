// Test-and-test-and-set spinlock with an interrupt-saving guard, lock ranks and per-CPU
// bookkeeping.
//
// Why not a fair (ticket or queued) lock: tandem's CPUs are often emulated ones, host threads
// that the host deschedules at will (8 CPUs under TCG on a 2-core host). A fair lock hands the
// lock to the next waiter whether or not that CPU is running, so one descheduled waiter stalls
// every CPU queued behind it for a host time slice; on an 8-CPU Erlang start that was most of
// the machine's time. Here whichever CPU is running when the lock is freed takes it. Linux makes
// the same choice for guests without paravirtual spinlocks (virt_spin_lock). Our lock hold
// times are short, so the unfairness costs little.
//
// Every kernel spinlock disables interrupts while held: a lock taken by an interrupt handler
// can then never deadlock against the code it interrupted, and there is one rule to remember.
// Locks have a rank; a CPU must take them in increasing rank order. The order is checked in
// debug and simulator builds, so a lock-order inversion shows up as a failing schedule
// instead of a rare deadlock.
#pragma once

#include "core/lib/assert.h"
#include "core/lib/atomic.h"
#include "core/lib/types.h"

namespace tandem {

enum class LockRank : u8 {
  None = 0,        // not checked
  FilePosition = 3,  // an open file's offset, held across a whole read or write of a regular file
  ProcessTree = 5,  // parents, children, groups (core/proc/process.cpp)
  Process = 10,
  NetStack = 15,      // lwIP (core/net/stack.h): asked by poll under the epoll lock (Process)
  Wait = 20,          // futex buckets and wait queues
  AddressSpace = 22,  // a futex wait reads user memory, which may fault, under its bucket lock
  VmObject = 23,      // a memory object's pages: the fault path takes it under AddressSpace
  Timer = 25,         // timer expiry wakes threads while holding the timer queue
  Thread = 30,
  RunQueue = 40,
  NetDevice = 50,     // a NIC driver's rings (core/drivers/virtio/net.cpp): taken by transmit under NetStack
  Heap = 60,
  PhysicalMemory = 65,
  Console = 70,
};

// A lock rank's name, for reports ("?" for an unnamed value).
const char* lock_rank_name(LockRank rank);

// What one CPU holds, and how long it waited for locks of each rank. core/ keeps one per CPU;
// see cpu_lock_state().
struct CpuLockState {
  static constexpr u32 kMaxDepth = 16;
  static constexpr u32 kRankSlots = static_cast<u32>(LockRank::Console) + 1;
  u32 depth = 0;
  LockRank ranks[kMaxDepth] = {};
  // Statistics (`stats` on the boot command line prints them): acquisitions that found the lock
  // taken, and the spin iterations they waited, by rank.
  u64 contended[kRankSlots] = {};
  u64 spins[kRankSlots] = {};
  // CPUs owed a reschedule IPI, sent when this CPU lets go of its last lock (send_reschedule_ipi).
  u64 deferred_ipis = 0;
};
static_assert(hal::kMaxCpus <= 64, "deferred_ipis is a mask of CPUs");
// The running CPU's lock state, or null before the CPU is set up.
CpuLockState* cpu_lock_state();

// Interrupts CPU `cpu` to reschedule: at once when this CPU holds no lock, otherwise when it
// releases its last one. Sending an IPI is slow on an emulated machine (a write to the local
// APIC leaves the guest), and a wake-up under a futex bucket's or the readiness lock would
// otherwise hold that lock, and every CPU spinning on it, for the whole send.
void send_reschedule_ipi(u32 cpu);

class SpinLock {
 public:
  constexpr explicit SpinLock(LockRank rank = LockRank::None) : m_rank(rank) {}
  TANDEM_NONCOPYABLE(SpinLock);

  // Raw operations: the caller has disabled interrupts. Prefer SpinLockGuard.
  void acquire();
  // For a second lock of the same rank taken in a fixed (address) order: skips the rank check.
  void acquire_nested();
  void release();
  bool try_acquire();
  bool is_locked() const { return m_locked.peek() != 0; }
  bool held_by_current_cpu() const { return m_owner_cpu.peek() == hal::cpu_id(); }
  LockRank rank() const { return m_rank; }
  // For state dumps of a stuck machine: the owning CPU (-1: free) and how often a CPU found the
  // lock taken and had to spin for it, read racily.
  i32 debug_owner_cpu() const { return m_locked.peek() != 0 ? static_cast<i32>(m_owner_cpu.peek()) : -1; }
  u32 debug_contended() const { return m_contended.peek(); }
  // Only for a lock in static storage whose holder and waiters are gone for good (a simulated
  // machine stopped in the middle of a run): free again, as at program load.
  void forget_holders() {
    m_owner_cpu.store(kNoOwner);
    m_locked.store(0);
  }

 private:
  static constexpr u32 kNoOwner = ~0u;
  void wait_for_turn();
  void note_acquired(bool check_rank = true);
  CpuLockState* note_released();

  Atomic<u32> m_locked{0};
  Atomic<u32> m_owner_cpu{kNoOwner};
  Atomic<u32> m_contended{0};  // statistics only (relaxed)
  LockRank m_rank;
};

class [[nodiscard]] SpinLockGuard {
 public:
  explicit SpinLockGuard(SpinLock& lock) : m_lock(&lock), m_flags(hal::irq_save()) { lock.acquire(); }
  ~SpinLockGuard() { unlock(); }
  TANDEM_NONCOPYABLE(SpinLockGuard);

  void unlock() {
    if (m_lock == nullptr) return;
    m_lock->release();
    m_lock = nullptr;
    hal::irq_restore(m_flags);
  }

 private:
  SpinLock* m_lock;
  hal::IrqFlags m_flags;
};

// Data reachable only while its lock is held.
template <typename T>
class SpinLockProtected {
 public:
  template <typename... Args>
  explicit SpinLockProtected(LockRank rank, Args&&... args) : m_lock(rank), m_value(forward<Args>(args)...) {}

  template <typename F>
  decltype(auto) with(F&& f) {
    SpinLockGuard guard(m_lock);
    return f(m_value);
  }
  SpinLock& lock() { return m_lock; }
  // For invariant checks when the system is quiescent.
  T& unsafe_get() { return m_value; }

 private:
  SpinLock m_lock;
  T m_value;
};

}  // namespace tandem
