// Basic integer types and small freestanding utilities shared by all of core/.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <type_traits>

namespace tandem {

using u8 = uint8_t;
using u16 = uint16_t;
using u32 = uint32_t;
using u64 = uint64_t;
using i8 = int8_t;
using i16 = int16_t;
using i32 = int32_t;
using i64 = int64_t;
using usize = size_t;
using uptr = uintptr_t;

template <typename T>
constexpr std::remove_reference_t<T>&& move(T&& value) {
  return static_cast<std::remove_reference_t<T>&&>(value);
}

template <typename T>
constexpr T&& forward(std::remove_reference_t<T>& value) {
  return static_cast<T&&>(value);
}

template <typename T>
constexpr const T& min(const T& a, const T& b) {
  return b < a ? b : a;
}
template <typename T>
constexpr const T& max(const T& a, const T& b) {
  return a < b ? b : a;
}

constexpr u64 align_up(u64 value, u64 alignment) { return (value + alignment - 1) & ~(alignment - 1); }
constexpr u64 align_down(u64 value, u64 alignment) { return value & ~(alignment - 1); }

inline void copy_bytes(void* dst, const void* src, usize n) { __builtin_memcpy(dst, src, n); }
inline void move_bytes(void* dst, const void* src, usize n) { __builtin_memmove(dst, src, n); }
inline void fill_bytes(void* dst, int byte, usize n) { __builtin_memset(dst, byte, n); }
inline int compare_bytes(const void* a, const void* b, usize n) { return __builtin_memcmp(a, b, n); }
inline usize string_length(const char* s) {
  usize n = 0;
  while (s[n] != 0) ++n;
  return n;
}

#define TANDEM_NONCOPYABLE(T) \
  T(const T&) = delete;       \
  T& operator=(const T&) = delete

}  // namespace tandem
