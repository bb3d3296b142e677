// Processes: the process tree, waiting for children, fork and vfork (core/proc/process.cpp,
// core/proc/fork.cpp).
#pragma once

#include <hal.h>

#include "core/lib/result.h"
#include "core/mm/user.h"
#include "core/proc/thread.h"

namespace tandem {

class Kernel;
struct Process;

// The process group and session of `p` (a process built without a parent, PID 1, leads both).
inline u32 process_group(const Process* p) { return p->pgid != 0 ? p->pgid : p->pid; }
inline u32 process_session(const Process* p) { return p->sid != 0 ? p->sid : p->pid; }

// Which children a wait accepts: wait4's pid argument and waitid's idtype/id.
struct WaitSpec {
  enum Kind : u8 { Any, Pid, Group } kind = Any;
  u32 id = 0;
  bool no_hang = false;  // WNOHANG: 0 when no child has exited yet
  bool no_reap = false;  // WNOWAIT: leave the zombie
};

struct WaitResult {
  u32 pid;     // 0: WNOHANG and nothing to report
  i32 status;  // wait(2) status word
};

// Waits for a child that matches `spec` to exit and reaps it. ECHILD when no child matches;
// ERESTARTSYS when a signal interrupts the wait.
Result<WaitResult> wait_for_child(Kernel& kernel, const WaitSpec& spec);

// Wakes the parent of a vfork child (at execve or exit).
void release_vfork_parent(Kernel& kernel, Process* child);

// fork, vfork and clone without CLONE_THREAD: a new process with a copy-on-write copy of the
// caller's memory, whose first thread returns 0 from the call at `frame`. Returns the pid.
struct ForkRequest {
  u64 flags = 0;         // clone flags; the low byte is the exit signal
  u64 child_stack = 0;   // 0: the caller's stack pointer
  u64 tls = 0;           // CLONE_SETTLS
  UserPtr<u32> parent_tid;
  UserPtr<u32> child_tid;
};
Result<i64> fork_process(Kernel& kernel, const hal::UserFrame& frame, const ForkRequest& request);

}  // namespace tandem
