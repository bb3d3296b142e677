// What the simulator's harness needs from hal/sim beyond the HAL contract.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sim {

class Machine;

// Prepares hal/sim for a run on `machine` (call before Machine::run).
void install_hal(Machine& machine);
// Translates a user address of the running CPU's address space through its TLB and page
// table; null when not mapped with `need` (hal::PageFlags). Fails the run on a stale TLB hit.
void* user_translate(uint64_t virt, uint32_t need);
// The machine's interrupt hook: delivers `bit` (an InterruptBit) to the kernel.
void deliver_interrupt(uint32_t bit);

// Console input, as if typed at the serial console: the bytes wait for hal::console_read, and
// CPU 0 takes an interrupt that calls kentry::console_input() (the irq is kConsoleIrq, ISA IRQ 4
// as on a PC; MSI irqs start at 32, so it never collides). Call from a running fiber (a
// scenario's user code or a kernel thread) during a run.
inline constexpr uint32_t kConsoleIrq = 4;
void console_input(const char* bytes, size_t length);

}  // namespace sim
