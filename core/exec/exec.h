// execve and execveat (core/exec/exec.cpp).
#pragma once

#include <hal.h>

#include "core/lib/result.h"

namespace tandem {

class Kernel;

// Replaces the calling process's program with the ELF file at `path` (relative to `dirfd`,
// AT_FDCWD for the current directory) with the user argv and envp arrays. On success `frame`
// enters the new program (or its interpreter) and the old program is gone.
Result<void> exec_program(Kernel& kernel, hal::UserFrame& frame, int dirfd, const char* path, u64 argv, u64 envp,
                          bool follow);

}  // namespace tandem
