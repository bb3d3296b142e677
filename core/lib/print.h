// Kernel formatting and logging. klog lines go to the console with the "[tandem] " prefix so
// the runner and tests can tell them from program output.
#pragma once

#include <stdarg.h>

#include "core/lib/types.h"

namespace tandem {

// printf-style formatting into a fixed buffer: %s %c %d %i %u %x %p, with l/ll/z length
// modifiers and a width with optional 0 padding. Always NUL-terminates; returns the length the
// full output would have had.
usize format(char* buffer, usize capacity, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
usize vformat(char* buffer, usize capacity, const char* fmt, va_list args);

void klog(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace tandem
