// Signals: per-process dispositions (rt_sigaction), per-thread and per-process pending sets,
// delivery on the way back to user mode with Linux's x86-64 signal frame, default actions.
//
// Locking: a process's dispositions, its shared pending set and the pending sets and masks of
// its threads are written under the process lock. The pending words are atomics so that
// blocking code can ask signal_pending() without taking any lock.
#pragma once

#include <hal.h>

#include "core/lib/atomic.h"
#include "core/lib/result.h"
#include "core/lib/types.h"

namespace tandem {

class Kernel;
struct Thread;
struct Process;

inline constexpr u32 kSignalCount = 64;  // signals 1..64

namespace sig {
inline constexpr u32 kSighup = 1, kSigint = 2, kSigquit = 3, kSigill = 4, kSigtrap = 5, kSigabrt = 6,
                     kSigbus = 7, kSigfpe = 8, kSigkill = 9, kSigusr1 = 10, kSigsegv = 11, kSigusr2 = 12,
                     kSigpipe = 13, kSigalrm = 14, kSigterm = 15, kSigstkflt = 16, kSigchld = 17,
                     kSigcont = 18, kSigstop = 19, kSigtstp = 20, kSigttin = 21, kSigttou = 22,
                     kSigurg = 23, kSigxcpu = 24, kSigxfsz = 25, kSigvtalrm = 26, kSigprof = 27,
                     kSigwinch = 28, kSigio = 29, kSigpwr = 30, kSigsys = 31;
inline constexpr u64 kSigDfl = 0, kSigIgn = 1;
// sa_flags.
inline constexpr u64 kSaNocldstop = 1, kSaNocldwait = 2, kSaSiginfo = 4, kSaRestorer = 0x04000000,
                     kSaOnstack = 0x08000000, kSaRestart = 0x10000000, kSaNodefer = 0x40000000,
                     kSaResethand = 0x80000000ull;
// si_code values.
inline constexpr i32 kSiUser = 0, kSiKernel = 0x80, kSiTkill = -6;
inline constexpr i32 kSegvMaperr = 1, kSegvAccerr = 2, kBusAdrerr = 2, kIllIllopn = 2, kFpeIntdiv = 1,
                     kTrapBrkpt = 1;
inline constexpr i32 kCldExited = 1, kCldKilled = 2, kCldDumped = 3, kCldStopped = 5, kCldContinued = 6;
constexpr u64 bit(u32 signal) { return 1ull << (signal - 1); }
inline constexpr u64 kUnblockable = bit(kSigkill) | bit(kSigstop);
}  // namespace sig

// Linux's struct sigaction as the rt_sigaction system call sees it on x86-64.
struct KernelSigaction {
  u64 handler = 0;  // SIG_DFL = 0, SIG_IGN = 1, else a user function
  u64 flags = 0;
  u64 restorer = 0;
  u64 mask = 0;
};

// What a pending signal carries into siginfo_t. One record per standard signal: like Linux,
// a second instance of a pending standard signal is merged into the first.
struct SignalInfo {
  i32 code = 0;
  u32 pid = 0;     // sender (kill) or child (SIGCHLD)
  i32 status = 0;  // SIGCHLD: exit code or signal number
  u64 address = 0; // fault signals: si_addr
};

// Per process (shared by its threads, as Linux's sighand and shared_pending). The name is kept
// from the first version, which recorded only the dispositions.
struct SignalActions {
  KernelSigaction actions[kSignalCount];  // index: signal - 1
  Atomic<u64> pending{0};                 // process-directed (kill)
  SignalInfo info[kSignalCount];
};

// Per thread.
struct ThreadSignals {
  Atomic<u64> pending{0};  // thread-directed (tgkill, faults)
  SignalInfo info[kSignalCount];
  // sigaltstack.
  u64 altstack_sp = 0;
  u64 altstack_size = 0;
  u32 altstack_flags = 2;  // SS_DISABLE when none
  // rt_sigsuspend/ppoll: the mask to restore after the handler ran (valid when set).
  bool restore_mask = false;
  u64 saved_mask = 0;
  // The number of the system call being handled (for restarts), -1 outside one.
  i64 syscall_nr = -1;
  // vfork: set (under the process tree lock) when the child execed or exited.
  bool vfork_done = false;
  // CLONE_CHILD_SETTID of a forked child: written in the child's memory at its first entry.
  u64 set_child_tid = 0;
};

// True when the thread should stop blocking: it was killed, or a signal it does not block is
// pending. Blocking code (futex waits, sleeps, pipe waits) returns EINTR (or ERESTARTSYS) then.
bool signal_pending(Thread* thread);

// A write to a pipe or socket without readers: SIGPIPE to the calling thread (the caller still
// returns EPIPE). Called by core/fs and core/ipc.
void deliver_sigpipe();

// RLIMIT_FSIZE for a file about to grow to `end` bytes: the calling process's soft limit
// (~0: none, and none for kernel threads). A caller that cannot stay under it calls
// deliver_sigxfsz() and fails with EFBIG, as Linux does (setrlimit(2)).
u64 file_size_limit();
void deliver_sigxfsz();

// Sends `signal` to a process (kill) or to one thread (tgkill, faults). Signal 0 only checks.
void send_signal_to_process(Process* process, u32 signal, const SignalInfo& info);
void send_signal_to_thread(Thread* thread, u32 signal, const SignalInfo& info);

// On the way back to user mode (Kernel::return_to_user): runs default actions and builds the
// user signal frame for the first deliverable signal. `frame` is the user register file; when a
// system call was interrupted, frame.rax holds its -errno result (ERESTARTSYS is resolved here).
void deliver_pending_signals(Kernel& kernel, hal::UserFrame& frame);

// A synchronous fault in user mode (kentry::user_fault): the signal is forced (unblocked and,
// when ignored, reset to the default action), as Linux's force_sig_fault does.
void force_fault_signal(Kernel& kernel, u32 signal, i32 code, u64 address, hal::UserFrame& frame);

// rt_sigreturn: restores the frame saved by delivery from the user stack.
Result<void> signal_return(hal::UserFrame& frame);

// The wait status of a process killed by `signal` (with 0x80 when the default action dumps core).
i32 signal_wait_status(u32 signal);

// execve: handled signals go back to SIG_DFL; ignored ones stay ignored; the alternate stack goes.
void reset_signals_for_exec(Process* process, Thread* thread);

}  // namespace tandem
