// Assertions stay on in every build: VERIFY checks an invariant and panics with the place it
// failed. DEBUG_ASSERT is for checks too costly for the booted kernel's hot paths; it is on in
// simulator builds and off in the booted kernel (hal::kDebugAsserts).
#pragma once

#include <hal.h>

namespace tandem {
[[noreturn]] void verify_failed(const char* expression, const char* file, int line);
}

#define VERIFY(expr)                                                      \
  do {                                                                    \
    if (__builtin_expect(!(expr), 0)) ::tandem::verify_failed(#expr, __FILE__, __LINE__); \
  } while (0)

#define VERIFY_NOT_REACHED() ::tandem::verify_failed("not reached", __FILE__, __LINE__)

// hal::kDebugAsserts comes from the target's hal_target.h.
#define DEBUG_ASSERT(expr)                         \
  do {                                             \
    if constexpr (::hal::kDebugAsserts) VERIFY(expr); \
  } while (0)
