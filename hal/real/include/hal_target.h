// hal/real/include/hal_target.h: the per-target inline hooks that hal/hal.h includes, for the
// booted kernel.
//
// On hardware there is no scheduler to hand control to at a scheduling point and no bug to
// plant, so both hooks compile to nothing: every `if (hal::planted(...))` branch in core/ is
// removed by the compiler, and sched_point() calls vanish.
#pragma once

namespace hal {

// DEBUG_ASSERT checks are for the simulator and tests; VERIFY stays on everywhere.
inline constexpr bool kDebugAsserts = false;

inline void sched_point(Point) {}
constexpr bool planted(Plant) { return false; }

}  // namespace hal
