#pragma once

#include <hal.h>

#include "core/lib/result.h"

namespace tandem {

class Kernel;

struct SyscallArgs {
  Kernel& kernel;
  hal::UserFrame& frame;
  u64 arg[6];
};

using SyscallHandler = Result<i64> (*)(SyscallArgs& args);

inline constexpr u32 kSyscallCount = 512;

// Runs the system call in frame.rax with its arguments and stores the result (or -errno) back
// into frame.rax.
void dispatch_syscall(Kernel& kernel, hal::UserFrame& frame);

// The name of a system call tandem implements, or null.
const char* syscall_name(u64 number);

#define TANDEM_DECLARE_SYSCALL(number, name) Result<i64> sys_##name(SyscallArgs& args);
#include "core/syscalls/table.h"
TANDEM_SYSCALLS(TANDEM_DECLARE_SYSCALL)
#undef TANDEM_DECLARE_SYSCALL

}  // namespace tandem
