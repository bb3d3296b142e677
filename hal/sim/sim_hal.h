// What the simulator's harness needs from hal/sim beyond the HAL contract.
#pragma once

#include <cstdint>

namespace sim {

class Machine;

// Prepares hal/sim for a run on `machine` (call before Machine::run).
void install_hal(Machine& machine);
// The machine's interrupt hook: delivers `bit` (an InterruptBit) to the kernel.
void deliver_interrupt(uint32_t bit);

}  // namespace sim
