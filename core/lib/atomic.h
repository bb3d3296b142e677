// Atomic<T>: every atomic operation in core/ goes through this wrapper, so the simulator sees
// each one as a scheduling point (hal::sched_point compiles to nothing on hardware).
#pragma once

#include <hal.h>

#include "core/lib/types.h"

namespace tandem {

enum class MemoryOrder : int {
  Relaxed = __ATOMIC_RELAXED,
  Acquire = __ATOMIC_ACQUIRE,
  Release = __ATOMIC_RELEASE,
  AcqRel = __ATOMIC_ACQ_REL,
  SeqCst = __ATOMIC_SEQ_CST,
};

template <typename T>
class Atomic {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);

 public:
  constexpr Atomic() : m_value() {}
  constexpr explicit Atomic(T value) : m_value(value) {}
  TANDEM_NONCOPYABLE(Atomic);

  T load(MemoryOrder order = MemoryOrder::SeqCst) const {
    hal::sched_point(hal::Point::Atomic);
    return __atomic_load_n(&m_value, static_cast<int>(order));
  }
  void store(T value, MemoryOrder order = MemoryOrder::SeqCst) {
    hal::sched_point(hal::Point::Atomic);
    __atomic_store_n(&m_value, value, static_cast<int>(order));
  }
  T exchange(T value, MemoryOrder order = MemoryOrder::SeqCst) {
    hal::sched_point(hal::Point::Atomic);
    return __atomic_exchange_n(&m_value, value, static_cast<int>(order));
  }
  bool compare_exchange(T& expected, T desired, MemoryOrder order = MemoryOrder::SeqCst) {
    hal::sched_point(hal::Point::Atomic);
    return __atomic_compare_exchange_n(&m_value, &expected, desired, false,
                                       static_cast<int>(order), __ATOMIC_RELAXED);
  }
  T fetch_add(T delta, MemoryOrder order = MemoryOrder::SeqCst) {
    hal::sched_point(hal::Point::Atomic);
    return __atomic_fetch_add(&m_value, delta, static_cast<int>(order));
  }
  T fetch_sub(T delta, MemoryOrder order = MemoryOrder::SeqCst) {
    hal::sched_point(hal::Point::Atomic);
    return __atomic_fetch_sub(&m_value, delta, static_cast<int>(order));
  }
  T fetch_or(T bits, MemoryOrder order = MemoryOrder::SeqCst) {
    hal::sched_point(hal::Point::Atomic);
    return __atomic_fetch_or(&m_value, bits, static_cast<int>(order));
  }
  T fetch_and(T bits, MemoryOrder order = MemoryOrder::SeqCst) {
    hal::sched_point(hal::Point::Atomic);
    return __atomic_fetch_and(&m_value, bits, static_cast<int>(order));
  }

  // A load that belongs to the same step as the operation just before it (see
  // SpinLock::wait_for_turn for when that is sound).
  T load_in_same_step(MemoryOrder order = MemoryOrder::SeqCst) const {
    return __atomic_load_n(&m_value, static_cast<int>(order));
  }

  // Access without a scheduling point, for assertions, statistics and bookkeeping that no
  // other CPU decides anything on.
  T peek() const { return __atomic_load_n(&m_value, __ATOMIC_RELAXED); }
  void poke(T value) { __atomic_store_n(&m_value, value, __ATOMIC_RELAXED); }

 private:
  T m_value;
};

}  // namespace tandem
