// What the simulator's harness needs from hal/sim beyond the HAL contract.
#pragma once

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

}  // namespace sim
