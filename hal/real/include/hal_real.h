// hal/real/include/hal_real.h: functions only the booted kernel has, beyond hal/hal.h.
//
// core/ does not include this header (it would tie core/ to one target); the HAL's own selftest
// and hal/real code do.
#pragma once

#include <hal.h>

namespace hal::real {

// Stops QEMU through isa-debug-exit after logging "[tandem] shutdown: exit status N".
// qemu/run-kernel exits with N, read from that line; the debug-exit code itself is N modulo 128
// (62, the panic code, becomes 63). hal::shutdown(wait_status) ends here too.
[[noreturn]] void power_off(int status);

// Like hal::panic, for callers that have already printed the registers and the backtrace.
[[noreturn]] void panic_after_dump(const char* message);

// Routes IOAPIC input `gsi` to CPU 0; it arrives as kentry::interrupt(Vector::Device, gsi, ...).
void ioapic_route(u32 gsi, bool unmask);

}  // namespace hal::real
