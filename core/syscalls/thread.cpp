// Thread and process system calls: clone (thread form), exit, exit_group, getpid, gettid,
// set_tid_address, sched_yield.
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/proc/process.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

namespace {
constexpr u64 kCloneVm = 0x100, kCloneFs = 0x200, kCloneFiles = 0x400, kCloneSighand = 0x800,
              kClonePidfd = 0x1000, kClonePtrace = 0x2000, kCloneVfork = 0x4000,
              kCloneParent = 0x8000, kCloneThread = 0x10000, kCloneNewns = 0x20000,
              kCloneSysvsem = 0x40000, kCloneSettls = 0x80000, kCloneParentSettid = 0x100000,
              kCloneChildCleartid = 0x200000, kCloneDetached = 0x400000, kCloneUntraced = 0x800000,
              kCloneChildSettid = 0x1000000, kCloneIo = 0x80000000ull;
constexpr u64 kCloneNamespaces = 0x7e020000ull;  // NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
constexpr u64 kCloneSupported = kCloneVm | kCloneFs | kCloneFiles | kCloneSighand | kCloneThread |
                                kCloneSysvsem | kCloneSettls | kCloneParentSettid |
                                kCloneChildCleartid | kCloneDetached | kCloneChildSettid | 0xff;
}  // namespace

Result<i64> sys_clone(SyscallArgs& args) {
  const u64 flags = args.arg[0];
  const u64 new_stack = args.arg[1];
  const UserPtr<u32> parent_tid(args.arg[2]);
  const UserPtr<u32> child_tid(args.arg[3]);
  const u64 tls = args.arg[4];
  // Linux's checks, in its order (kernel/fork.c, copy_process).
  if ((flags & (kCloneNewns | kCloneFs)) == (kCloneNewns | kCloneFs)) return Errno::kEINVAL;
  if ((flags & kCloneThread) && !(flags & kCloneSighand)) return Errno::kEINVAL;
  if ((flags & kCloneSighand) && !(flags & kCloneVm)) return Errno::kEINVAL;
  if (flags & (kClonePidfd | kCloneNamespaces)) return Errno::kEINVAL;
  (void)kClonePtrace, (void)kCloneVfork, (void)kCloneParent, (void)kCloneUntraced, (void)kCloneIo;
  // Without CLONE_THREAD: a new process (fork, vfork, glibc's clone for fork), core/proc/fork.cpp.
  if (!(flags & kCloneThread)) {
    ForkRequest request;
    request.flags = flags;
    request.child_stack = new_stack;
    request.tls = tls;
    request.parent_tid = parent_tid;
    request.child_tid = child_tid;
    return fork_process(args.kernel, args.frame, request);
  }
  if ((flags & ~kCloneSupported) != 0) return Errno::kENOSYS;

  Kernel& kernel = args.kernel;
  Thread* self = Kernel::current_thread();
  Process* process = self->process;
  if (self->kill_pending.load()) return Errno::kEINTR;
  hal::UserFrame frame = args.frame;
  frame.rax = 0;
  if (new_stack != 0) frame.rsp = new_stack;
  frame.fs_base = (flags & kCloneSettls) ? tls : hal::get_fs_base();
  Thread* child = TRY(kernel.create_user_thread(process, frame));
  const u32 tid = child->tid;
  // Faults on these addresses are ignored, as Linux ignores them.
  if (flags & kCloneParentSettid) (void)copy_to_user(parent_tid, tid);
  if (flags & kCloneChildSettid) (void)copy_to_user(child_tid, tid);
  if (flags & kCloneChildCleartid) child->clear_child_tid = child_tid.address();
  kernel.make_runnable(child);
  return static_cast<i64>(tid);
}

Result<i64> sys_exit(SyscallArgs& args) { args.kernel.exit_thread(static_cast<i32>(args.arg[0] & 0xff)); }

Result<i64> sys_exit_group(SyscallArgs& args) {
  args.kernel.exit_group(static_cast<i32>((args.arg[0] & 0xff) << 8));
}

Result<i64> sys_getpid(SyscallArgs&) { return static_cast<i64>(Kernel::current_thread()->process->pid); }

Result<i64> sys_gettid(SyscallArgs&) { return static_cast<i64>(Kernel::current_thread()->tid); }

Result<i64> sys_set_tid_address(SyscallArgs& args) {
  Thread* self = Kernel::current_thread();
  self->clear_child_tid = args.arg[0];
  return static_cast<i64>(self->tid);
}

Result<i64> sys_sched_yield(SyscallArgs& args) {
  // A thread that yields is waiting for someone else: tell the CPU (and a priority-based
  // exploration strategy, which must then let other CPUs run) that this is a spin.
  hal::cpu_relax();
  args.kernel.yield();
  return 0;
}

}  // namespace tandem
