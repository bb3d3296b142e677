// The user FPU hooks of hal/hal.h for signal frames. A simulated CPU has no FPU state: a frame
// carries zeros and restoring ignores them.
#include <hal.h>

#include <cstring>

namespace hal {

void user_fpu_save(void* area) { std::memset(area, 0, kUserFpuStateSize); }
void user_fpu_restore(void*) {}

}  // namespace hal
