#include "core/lib/spinlock.h"

namespace tandem {

void SpinLock::wait_for_turn() {
  DEBUG_ASSERT(!hal::irq_enabled());
  // The uncontended case is one atomic step. A waiter spins on plain loads (the line stays
  // shared in its cache) and tries again only once it sees the lock free.
  if (m_locked.exchange(1, MemoryOrder::Acquire) == 0) return;
  m_contended.poke(m_contended.peek() + 1);
  CpuLockState* state = cpu_lock_state();
  const u32 slot = static_cast<u32>(m_rank);
  u64 spins = 0;
  for (;;) {
    while (m_locked.load(MemoryOrder::Relaxed) != 0) {
      hal::cpu_relax();
      ++spins;
    }
    if (m_locked.exchange(1, MemoryOrder::Acquire) == 0) break;
  }
  if (state != nullptr && slot < CpuLockState::kRankSlots) {
    ++state->contended[slot];
    state->spins[slot] += spins;
  }
}

const char* lock_rank_name(LockRank rank) {
  switch (rank) {
    case LockRank::None: return "unranked";
    case LockRank::FilePosition: return "file-position";
    case LockRank::ProcessTree: return "process-tree";
    case LockRank::Process: return "process";
    case LockRank::NetStack: return "net-stack";
    case LockRank::Wait: return "wait";
    case LockRank::AddressSpace: return "address-space";
    case LockRank::VmObject: return "vm-object";
    case LockRank::Timer: return "timer";
    case LockRank::Thread: return "thread";
    case LockRank::RunQueue: return "run-queue";
    case LockRank::NetDevice: return "net-device";
    case LockRank::Heap: return "heap";
    case LockRank::PhysicalMemory: return "physical-memory";
    case LockRank::Console: return "console";
  }
  return "?";
}

void SpinLock::acquire() {
  wait_for_turn();
  note_acquired();
}

void SpinLock::acquire_nested() {
  wait_for_turn();
  note_acquired(false);
}

bool SpinLock::try_acquire() {
  if (m_locked.load(MemoryOrder::Relaxed) != 0 || m_locked.exchange(1, MemoryOrder::Acquire) != 0) return false;
  note_acquired();
  return true;
}

void SpinLock::release() {
  VERIFY(m_owner_cpu.peek() == hal::cpu_id());
  CpuLockState* state = note_released();
  m_locked.store(0, MemoryOrder::Release);
  if (state != nullptr && state->depth == 0 && state->deferred_ipis != 0) {
    u64 pending = state->deferred_ipis;
    state->deferred_ipis = 0;
    for (u32 cpu = 0; pending != 0; ++cpu, pending >>= 1) {
      if ((pending & 1) != 0) hal::send_ipi(cpu, hal::Ipi::Reschedule);
    }
  }
}

void send_reschedule_ipi(u32 cpu) {
  CpuLockState* state = cpu_lock_state();
  if (state != nullptr && state->depth > 0) {
    state->deferred_ipis |= u64{1} << cpu;
    return;
  }
  hal::send_ipi(cpu, hal::Ipi::Reschedule);
}

void SpinLock::note_acquired(bool check_rank) {
  m_owner_cpu.poke(hal::cpu_id());
  CpuLockState* state = cpu_lock_state();
  if (state == nullptr) return;
  VERIFY(state->depth < CpuLockState::kMaxDepth);
  if constexpr (hal::kDebugAsserts) {
    // Why the order matters: two CPUs taking the same two locks in opposite orders deadlock.
    if (check_rank && m_rank != LockRank::None) {
      for (u32 i = 0; i < state->depth; ++i) {
        if (state->ranks[i] != LockRank::None && state->ranks[i] >= m_rank)
          verify_failed("lock rank order violated", __FILE__, __LINE__);
      }
    }
  }
  state->ranks[state->depth++] = m_rank;
}

CpuLockState* SpinLock::note_released() {
  m_owner_cpu.poke(kNoOwner);
  CpuLockState* state = cpu_lock_state();
  if (state == nullptr) return nullptr;
  VERIFY(state->depth > 0);
  // Locks are usually released in reverse order; tolerate any order by removing this rank.
  for (u32 i = state->depth; i-- > 0;) {
    if (state->ranks[i] == m_rank) {
      for (u32 j = i; j + 1 < state->depth; ++j) state->ranks[j] = state->ranks[j + 1];
      --state->depth;
      return state;
    }
  }
  VERIFY_NOT_REACHED();
}

}  // namespace tandem
