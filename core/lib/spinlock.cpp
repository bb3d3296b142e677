#include "core/lib/spinlock.h"

namespace tandem {

void SpinLock::wait_for_turn() {
  DEBUG_ASSERT(!hal::irq_enabled());
  const u32 ticket = m_next_ticket.fetch_add(1, MemoryOrder::Acquire);
  // Why the first check needs no scheduling point of its own: if our ticket is being served
  // when we take it, nobody holds the lock and nobody can change now_serving before we release,
  // so reading it in the same step as the fetch_add is one of the interleavings that exist and
  // stands for all of them. Only a real wait is explored step by step.
  if (m_now_serving.load_in_same_step(MemoryOrder::Acquire) == ticket) return;
  while (m_now_serving.load(MemoryOrder::Acquire) != ticket) hal::cpu_relax();
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
  u32 serving = m_now_serving.load(MemoryOrder::Relaxed);
  u32 expected = serving;
  if (!m_next_ticket.compare_exchange(expected, serving + 1, MemoryOrder::Acquire)) return false;
  note_acquired();
  return true;
}

void SpinLock::release() {
  VERIFY(m_owner_cpu.peek() == hal::cpu_id());
  note_released();
  m_now_serving.store(m_now_serving.peek() + 1, MemoryOrder::Release);
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

void SpinLock::note_released() {
  m_owner_cpu.poke(kNoOwner);
  CpuLockState* state = cpu_lock_state();
  if (state == nullptr) return;
  VERIFY(state->depth > 0);
  // Locks are usually released in reverse order; tolerate any order by removing this rank.
  for (u32 i = state->depth; i-- > 0;) {
    if (state->ranks[i] == m_rank) {
      for (u32 j = i; j + 1 < state->depth; ++j) state->ranks[j] = state->ranks[j + 1];
      --state->depth;
      return;
    }
  }
  VERIFY_NOT_REACHED();
}

}  // namespace tandem
