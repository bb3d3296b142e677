// execve and execveat (core/exec/exec.cpp).
#pragma once

#include <hal.h>

#include "core/lib/result.h"

namespace tandem {

class AddressSpace;
class ExecArgs;
class Kernel;
struct Thread;
struct ExecImage;

// Replaces the calling process's program with the ELF file at `path` (relative to `dirfd`,
// AT_FDCWD for the current directory) with the user argv and envp arrays. On success `frame`
// enters the new program (or its interpreter) and the old program is gone.
// The part of exec that can fail, with nothing changed: finds the ELF file at `path` (and its
// interpreter), reads `args` (ExecArgs::prepare), builds a new address space with the program
// mapped and Linux's initial stack, and returns it with the first frame in *image and the
// program's canonical path in `canonical` (a PathBuffer). PID 1 is started this way too.
Result<AddressSpace*> exec_build(Kernel& kernel, int dirfd, const char* path, bool follow, ExecArgs& args,
                                 ExecImage* image, char* canonical);

// Sets the task name (prctl PR_GET_NAME) to the base name of `path`, as execve does.
void set_comm_from_path(Thread* thread, const char* path);

Result<void> exec_program(Kernel& kernel, hal::UserFrame& frame, int dirfd, const char* path, u64 argv, u64 envp,
                          bool follow);

}  // namespace tandem
