// User pointers are not pointers: a UserPtr<T> is an address in the current user address
// space that can only be read or written through copy_from_user / copy_to_user, which report a
// bad address as EFAULT instead of crashing.
#pragma once

#include <hal.h>

#include "core/lib/result.h"

namespace tandem {

template <typename T>
class UserPtr {
 public:
  constexpr UserPtr() = default;
  constexpr explicit UserPtr(u64 address) : m_address(address) {}
  u64 address() const { return m_address; }
  bool is_null() const { return m_address == 0; }
  UserPtr offset(usize elements) const { return UserPtr(m_address + elements * sizeof(T)); }

 private:
  u64 m_address = 0;
};

template <typename T>
Result<T> copy_from_user(UserPtr<T> source) {
  static_assert(std::is_trivially_copyable_v<T>);
  T value;
  if (!hal::copy_from_user(&value, source.address(), sizeof(T))) return Errno::kEFAULT;
  return value;
}

template <typename T>
Result<void> copy_to_user(UserPtr<T> destination, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (!hal::copy_to_user(destination.address(), &value, sizeof(T))) return Errno::kEFAULT;
  return {};
}

// Linux's struct timespec and struct timeval on x86-64.
struct KernelTimespec {
  i64 tv_sec;
  i64 tv_nsec;
};
struct KernelTimeval {
  i64 tv_sec;
  i64 tv_usec;
};

}  // namespace tandem
