// Process system calls: fork, vfork, execve, execveat, wait4, waitid, getppid, the process group and session
// calls, and kill/tkill/tgkill. Each decodes its arguments and calls core/proc.
#include "core/exec/exec.h"
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/proc/process.h"
#include "core/syscalls/dispatch.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

constexpr u64 kWnohang = 1, kWuntraced = 2, kWstopped = 2, kWexited = 4, kWcontinued = 8,
              kWnowait = 0x01000000, kWnothread = 0x20000000, kWall = 0x40000000, kWclone = 0x80000000ull;
constexpr u64 kPAll = 0, kPPid = 1, kPPgid = 2;

Process* current_process() { return Kernel::current_thread()->process; }

// Linux's siginfo_t for waitid (SIGCHLD fields).
struct WaitSiginfo {
  i32 signo;
  i32 errno_value;
  i32 code;
  i32 pad;
  i32 pid;
  u32 uid;
  i32 status;
  u8 rest[100];
};
static_assert(sizeof(WaitSiginfo) == 128);

struct Rusage {
  u64 words[18];
};
static_assert(sizeof(Rusage) == 144);

}  // namespace

Result<i64> sys_fork(SyscallArgs& args) {
  ForkRequest request;
  request.flags = sig::kSigchld;
  return fork_process(args.kernel, args.frame, request);
}

Result<i64> sys_vfork(SyscallArgs& args) {
  ForkRequest request;
  request.flags = 0x4000 /* CLONE_VFORK */ | 0x100 /* CLONE_VM */ | sig::kSigchld;
  return fork_process(args.kernel, args.frame, request);
}

Result<i64> sys_wait4(SyscallArgs& args) {
  const i64 pid = static_cast<i32>(args.arg[0]);
  const UserPtr<i32> status(args.arg[1]);
  const u64 options = args.arg[2];
  const UserPtr<Rusage> usage(args.arg[3]);
  if (options & ~(kWnohang | kWuntraced | kWcontinued | kWnothread | kWall | kWclone)) return Errno::kEINVAL;
  if (pid == -2147483648ll) return Errno::kESRCH;  // INT_MIN: Linux refuses to negate it
  WaitSpec spec;
  spec.no_hang = (options & kWnohang) != 0;
  if (pid > 0) {
    spec.kind = WaitSpec::Pid;
    spec.id = static_cast<u32>(pid);
  } else if (pid == 0) {
    spec.kind = WaitSpec::Group;
    spec.id = process_group(current_process());
  } else if (pid < -1) {
    spec.kind = WaitSpec::Group;
    spec.id = static_cast<u32>(-pid);
  }
  const WaitResult result = TRY(wait_for_child(args.kernel, spec));
  // The child is reaped already; like Linux, a fault on these pointers is still reported.
  if (result.pid != 0 && !status.is_null()) TRY(copy_to_user(status, result.status));
  if (!usage.is_null()) {
    Rusage zero;
    fill_bytes(&zero, 0, sizeof(zero));
    TRY(copy_to_user(usage, zero));
  }
  return static_cast<i64>(result.pid);
}

Result<i64> sys_waitid(SyscallArgs& args) {
  const u64 idtype = args.arg[0];
  const i64 id = static_cast<i32>(args.arg[1]);
  const UserPtr<WaitSiginfo> info(args.arg[2]);
  const u64 options = args.arg[3];
  const UserPtr<Rusage> usage(args.arg[4]);
  if (options & ~(kWnohang | kWnowait | kWexited | kWstopped | kWcontinued | kWnothread | kWall | kWclone))
    return Errno::kEINVAL;
  if ((options & (kWexited | kWstopped | kWcontinued)) == 0) return Errno::kEINVAL;
  WaitSpec spec;
  spec.no_hang = (options & kWnohang) != 0;
  spec.no_reap = (options & kWnowait) != 0;
  switch (idtype) {
    case kPAll: spec.kind = WaitSpec::Any; break;
    case kPPid:
      if (id <= 0) return Errno::kEINVAL;
      spec.kind = WaitSpec::Pid;
      spec.id = static_cast<u32>(id);
      break;
    case kPPgid:
      if (id < 0) return Errno::kEINVAL;
      spec.kind = WaitSpec::Group;
      spec.id = id == 0 ? process_group(current_process()) : static_cast<u32>(id);
      break;
    default: return Errno::kEINVAL;
  }
  // Only exits are reported (stops are not implemented): without WEXITED nothing ever comes.
  if ((options & kWexited) == 0) spec.no_reap = true;
  const WaitResult result = TRY(wait_for_child(args.kernel, spec));
  WaitSiginfo out;
  fill_bytes(&out, 0, sizeof(out));
  if (result.pid != 0) {
    out.signo = static_cast<i32>(sig::kSigchld);
    out.pid = static_cast<i32>(result.pid);
    if ((result.status & 0x7f) == 0) {
      out.code = sig::kCldExited;
      out.status = (result.status >> 8) & 0xff;
    } else {
      out.code = (result.status & 0x80) ? sig::kCldDumped : sig::kCldKilled;
      out.status = result.status & 0x7f;
    }
  }
  if (!info.is_null()) TRY(copy_to_user(info, out));
  if (!usage.is_null()) {
    Rusage zero;
    fill_bytes(&zero, 0, sizeof(zero));
    TRY(copy_to_user(usage, zero));
  }
  return 0;
}

Result<i64> sys_getppid(SyscallArgs& args) {
  SpinLockGuard guard(args.kernel.process_tree_lock());
  Process* parent = current_process()->parent;
  return static_cast<i64>(parent != nullptr ? parent->pid : 0);
}

Result<i64> sys_getpgid(SyscallArgs& args) {
  const i64 pid = static_cast<i32>(args.arg[0]);
  if (pid < 0) return Errno::kESRCH;
  SpinLockGuard guard(args.kernel.process_tree_lock());
  Process* p = pid == 0 ? current_process() : args.kernel.process_by_pid(static_cast<u32>(pid));
  if (p == nullptr) return Errno::kESRCH;
  return static_cast<i64>(process_group(p));
}

Result<i64> sys_getpgrp(SyscallArgs& args) {
  SpinLockGuard guard(args.kernel.process_tree_lock());
  return static_cast<i64>(process_group(current_process()));
}

Result<i64> sys_getsid(SyscallArgs& args) {
  const i64 pid = static_cast<i32>(args.arg[0]);
  if (pid < 0) return Errno::kESRCH;
  SpinLockGuard guard(args.kernel.process_tree_lock());
  Process* p = pid == 0 ? current_process() : args.kernel.process_by_pid(static_cast<u32>(pid));
  if (p == nullptr) return Errno::kESRCH;
  return static_cast<i64>(process_session(p));
}

Result<i64> sys_setsid(SyscallArgs& args) {
  Process* self = current_process();
  SpinLockGuard guard(args.kernel.process_tree_lock());
  // A group leader cannot start a session, nor can anyone whose pid names an existing group.
  bool group_taken = false;
  args.kernel.for_each_process([&](Process* p) { group_taken |= process_group(p) == self->pid; });
  if (group_taken) return Errno::kEPERM;
  self->sid = self->pgid = self->pid;
  return static_cast<i64>(self->sid);
}

Result<i64> sys_setpgid(SyscallArgs& args) {
  const i64 pid_arg = static_cast<i32>(args.arg[0]);
  const i64 pgid_arg = static_cast<i32>(args.arg[1]);
  if (pgid_arg < 0) return Errno::kEINVAL;
  Process* self = current_process();
  Kernel& kernel = args.kernel;
  SpinLockGuard guard(kernel.process_tree_lock());
  Process* target = pid_arg == 0 ? self : kernel.process_by_pid(static_cast<u32>(pid_arg));
  if (target == nullptr || target->zombie) return Errno::kESRCH;
  // Linux's rules (kernel/sys.c): the caller or one of its children, in the same session, not a
  // session leader; the group must exist in the same session unless it is the target's own pid.
  if (target != self && target->parent != self) return Errno::kESRCH;
  if (process_session(target) != process_session(self)) return Errno::kEPERM;
  if (process_session(target) == target->pid) return Errno::kEPERM;
  const u32 pgid = pgid_arg == 0 ? target->pid : static_cast<u32>(pgid_arg);
  if (pgid != target->pid) {
    bool exists = false;
    kernel.for_each_process([&](Process* p) { exists |= process_group(p) == pgid && process_session(p) == process_session(self) && !p->zombie; });
    if (!exists) return Errno::kEPERM;
  }
  target->pgid = pgid;
  return 0;
}

Result<i64> sys_kill(SyscallArgs& args) {
  const i64 pid = static_cast<i32>(args.arg[0]);
  const u64 signal = args.arg[1];
  if (signal > kSignalCount) return Errno::kEINVAL;
  Process* self = current_process();
  SignalInfo info;
  info.code = sig::kSiUser;
  info.pid = self->pid;
  Kernel& kernel = args.kernel;
  SpinLockGuard guard(kernel.process_tree_lock());
  if (pid > 0) {
    Process* target = kernel.process_by_pid(static_cast<u32>(pid));
    if (target == nullptr) return Errno::kESRCH;
    // A zombie still exists for kill (signal 0 succeeds), it just never sees the signal.
    send_signal_to_process(target, static_cast<u32>(signal), info);
    return 0;
  }
  if (pid == -2147483648ll) return Errno::kESRCH;
  // Groups (0: the caller's, < -1: -pid) and -1: every process but init and the caller.
  const u32 group = pid == 0 ? process_group(self) : static_cast<u32>(-pid);
  u32 count = 0;
  kernel.for_each_process([&](Process* p) {
    if (p->zombie) return;
    const bool match = pid == -1 ? (p->pid != 1 && p != self) : process_group(p) == group;
    if (!match) return;
    ++count;
    send_signal_to_process(p, static_cast<u32>(signal), info);
  });
  if (count == 0) return Errno::kESRCH;
  return 0;
}

namespace {

Result<i64> thread_kill(Kernel& kernel, i64 tgid, i64 tid, u64 signal) {
  if (tid <= 0 || tgid == 0 || tgid < -1) return Errno::kEINVAL;
  if (signal > kSignalCount) return Errno::kEINVAL;
  Process* self = current_process();
  SignalInfo info;
  info.code = sig::kSiTkill;
  info.pid = self->pid;
  SpinLockGuard guard(kernel.process_tree_lock());
  Thread* target = kernel.thread_by_tid(static_cast<u32>(tid));
  if (target == nullptr || target->process == nullptr) return Errno::kESRCH;
  if (tgid > 0 && target->process->pid != static_cast<u32>(tgid)) return Errno::kESRCH;
  send_signal_to_thread(target, static_cast<u32>(signal), info);
  return 0;
}

}  // namespace

Result<i64> sys_tgkill(SyscallArgs& args) {
  return thread_kill(args.kernel, static_cast<i32>(args.arg[0]), static_cast<i32>(args.arg[1]), args.arg[2]);
}

Result<i64> sys_tkill(SyscallArgs& args) {
  return thread_kill(args.kernel, -1, static_cast<i32>(args.arg[0]), args.arg[1]);
}

}  // namespace tandem

namespace tandem {

Result<i64> sys_execve(SyscallArgs& args) {
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(args.arg[0], path.data()));
  TRY(exec_program(args.kernel, args.frame, kAtFdCwd, path.data(), args.arg[1], args.arg[2], true));
  return 0;
}

Result<i64> sys_execveat(SyscallArgs& args) {
  constexpr u64 kAtSymlinkNofollow = 0x100, kAtEmptyPath = 0x1000;
  const i32 dirfd = static_cast<i32>(args.arg[0]);
  const u64 flags = args.arg[4];
  if (flags & ~(kAtSymlinkNofollow | kAtEmptyPath)) return Errno::kEINVAL;
  if (flags & kAtEmptyPath) return Errno::kENOSYS;  // fexecve: not yet
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(args.arg[1], path.data()));
  TRY(exec_program(args.kernel, args.frame, dirfd, path.data(), args.arg[2], args.arg[3],
                   (flags & kAtSymlinkNofollow) == 0));
  return 0;
}

}  // namespace tandem
