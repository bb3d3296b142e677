// hal/real/src/rt.cpp: the few runtime symbols a freestanding C++ kernel still needs.
//
// Clang emits calls to memcpy/memset/memmove/memcmp for structure copies and large
// initialisations even with -ffreestanding, and C++ needs a handful of ABI hooks. They are weak
// so that core/ may bring its own (for example optimised versions) without a duplicate-symbol
// error; whichever is strong wins.
#include "arch.h"

extern "C" {

__attribute__((weak)) void* memcpy(void* dst, const void* src, size_t n) {
  void* ret = dst;
  asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n)::"memory");
  return ret;
}

__attribute__((weak)) void* memset(void* dst, int c, size_t n) {
  void* ret = dst;
  asm volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
  return ret;
}

__attribute__((weak)) void* memmove(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  auto* s = static_cast<const unsigned char*>(src);
  if (d <= s || d >= s + n) return memcpy(dst, src, n);
  // Overlapping with dst above src: copy backwards, from the last byte down.
  unsigned char* d_last = d + n - 1;
  const unsigned char* s_last = s + n - 1;
  asm volatile("std; rep movsb; cld" : "+D"(d_last), "+S"(s_last), "+c"(n)::"memory");
  return dst;
}

__attribute__((weak)) int memcmp(const void* a, const void* b, size_t n) {
  auto* x = static_cast<const unsigned char*>(a);
  auto* y = static_cast<const unsigned char*>(b);
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

__attribute__((weak)) size_t strlen(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  return n;
}

// lwIP's core (core/net/lwip) also calls these two.
__attribute__((weak)) int strncmp(const char* a, const char* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x != y) return x < y ? -1 : 1;
    if (x == 0) return 0;
  }
  return 0;
}

// Decimal, with optional leading spaces and sign, as C's atoi; no overflow detection (C leaves
// it undefined; lwIP parses interface numbers of a few digits).
__attribute__((weak)) int atoi(const char* s) {
  while (*s == ' ' || (*s >= '\t' && *s <= '\r')) ++s;
  bool negative = *s == '-';
  if (*s == '-' || *s == '+') ++s;
  unsigned value = 0;
  while (*s >= '0' && *s <= '9') value = value * 10 + unsigned(*s++ - '0');
  return negative ? -int(value) : int(value);
}

// The kernel never exits, so destructors of static objects never need to run.
__attribute__((weak)) int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
__attribute__((weak)) void* __dso_handle = nullptr;

__attribute__((weak)) void __cxa_pure_virtual() { hal::panic("pure virtual function called"); }

// Function-local statics: the kernel may initialise them on several CPUs at once, so the guard
// is a real lock (byte 0 = done, byte 1 = in progress), as the Itanium C++ ABI describes.
__attribute__((weak)) int __cxa_guard_acquire(uint64_t* guard) {
  auto* bytes = reinterpret_cast<volatile uint8_t*>(guard);
  for (;;) {
    if (__atomic_load_n(&bytes[0], __ATOMIC_ACQUIRE)) return 0;
    uint8_t expected = 0;
    if (__atomic_compare_exchange_n(&bytes[1], &expected, uint8_t(1), false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
      if (__atomic_load_n(&bytes[0], __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&bytes[1], uint8_t(0), __ATOMIC_RELEASE);
        return 0;
      }
      return 1;
    }
    asm volatile("pause");
  }
}
__attribute__((weak)) void __cxa_guard_release(uint64_t* guard) {
  auto* bytes = reinterpret_cast<volatile uint8_t*>(guard);
  __atomic_store_n(&bytes[0], uint8_t(1), __ATOMIC_RELEASE);
  __atomic_store_n(&bytes[1], uint8_t(0), __ATOMIC_RELEASE);
}
__attribute__((weak)) void __cxa_guard_abort(uint64_t* guard) {
  auto* bytes = reinterpret_cast<volatile uint8_t*>(guard);
  __atomic_store_n(&bytes[1], uint8_t(0), __ATOMIC_RELEASE);
}

}  // extern "C"
