// hal/sim/include/hal_target.h: the per-target inline hooks that hal/hal.h includes, for the
// simulator. A scheduling point hands control to the simulated machine, which lets its
// strategy decide which CPU runs next; a planted bug is on when the run selected it.
#pragma once

namespace sim {
void point(hal::Point kind);
extern thread_local hal::u8 g_planted;
}  // namespace sim

namespace hal {

inline constexpr bool kDebugAsserts = true;

inline void sched_point(Point kind) { ::sim::point(kind); }
inline bool planted(Plant bug) { return ::sim::g_planted == static_cast<u8>(bug); }

}  // namespace hal
