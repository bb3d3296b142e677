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

// Replaces the calling process's program with the file at `path` (relative to `dirfd`,
// AT_FDCWD for the current directory) with the user argv and envp arrays: an ELF file, or a
// `#!` script run by the interpreter it names (core/exec/script.h). On success `frame` enters
// the new program (or its ELF interpreter) and the old program is gone.
// The part of exec that can fail, with nothing changed: finds the file at `path` (through any
// scripts to the ELF program, and its PT_INTERP interpreter), reads `args` (ExecArgs::prepare),
// builds a new address space with the program mapped and Linux's initial stack, and returns it
// with the first frame in *image and the canonical path of the ELF program loaded (a script's
// interpreter, which /proc/self/exe names) in `canonical` (a PathBuffer). PID 1 is started this
// way too.
Result<AddressSpace*> exec_build(Kernel& kernel, int dirfd, const char* path, bool follow, ExecArgs& args,
                                 ExecImage* image, char* canonical);

// Sets the task name (prctl PR_GET_NAME) to the base name of `path`, as execve does.
void set_comm_from_path(Thread* thread, const char* path);

Result<void> exec_program(Kernel& kernel, hal::UserFrame& frame, int dirfd, const char* path, u64 argv, u64 envp,
                          bool follow);

}  // namespace tandem
