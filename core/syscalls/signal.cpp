// Signal system calls: rt_sigaction, rt_sigprocmask, rt_sigreturn, rt_sigpending,
// rt_sigsuspend, pause and sigaltstack. They decode and validate; core/proc/signal.cpp does the
// work.
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/proc/signals.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

namespace {

struct UserStackT {
  u64 sp;
  i32 flags;
  i32 pad;
  u64 size;
};
static_assert(sizeof(UserStackT) == 24);

constexpr i32 kSsOnstack = 1, kSsDisable = 2;
constexpr u32 kSsAutodisarm = 1u << 31;
constexpr u64 kMinSigstksz = 2048;

}  // namespace

Result<i64> sys_rt_sigprocmask(SyscallArgs& args) {
  constexpr u64 kSigBlock = 0, kSigUnblock = 1, kSigSetmask = 2;
  const u64 how = args.arg[0];
  const UserPtr<u64> set(args.arg[1]);
  const UserPtr<u64> old_set(args.arg[2]);
  if (args.arg[3] != sizeof(u64)) return Errno::kEINVAL;
  Thread* self = Kernel::current_thread();
  u64 value = 0;
  if (!set.is_null()) {
    if (how != kSigBlock && how != kSigUnblock && how != kSigSetmask) return Errno::kEINVAL;
    value = TRY(copy_from_user(set));
  }
  const u64 old_mask = self->signal_mask;
  if (!old_set.is_null()) TRY(copy_to_user(old_set, old_mask));
  if (!set.is_null()) {
    u64 mask = old_mask;
    if (how == kSigBlock) mask |= value;
    else if (how == kSigUnblock) mask &= ~value;
    else mask = value;
    SpinLockGuard guard(self->process->lock);
    self->signal_mask = mask & ~sig::kUnblockable;
  }
  // A signal just unblocked is delivered on the way out (Kernel::return_to_user).
  return 0;
}

Result<i64> sys_rt_sigaction(SyscallArgs& args) {
  const u64 signal = args.arg[0];
  const UserPtr<KernelSigaction> action(args.arg[1]);
  const UserPtr<KernelSigaction> old_action(args.arg[2]);
  if (args.arg[3] != sizeof(u64)) return Errno::kEINVAL;
  if (signal < 1 || signal > kSignalCount) return Errno::kEINVAL;
  if (!action.is_null() && (signal == sig::kSigkill || signal == sig::kSigstop)) return Errno::kEINVAL;
  KernelSigaction incoming;
  if (!action.is_null()) {
    incoming = TRY(copy_from_user(action));
    incoming.mask &= ~sig::kUnblockable;
  }
  Process* process = Kernel::current_thread()->process;
  KernelSigaction previous;
  {
    SpinLockGuard guard(process->lock);
    previous = process->signal_actions.actions[signal - 1];
  }
  if (!old_action.is_null()) TRY(copy_to_user(old_action, previous));
  if (!action.is_null()) {
    SpinLockGuard guard(process->lock);
    process->signal_actions.actions[signal - 1] = incoming;
    // POSIX: setting a pending signal to be ignored discards it.
    const u64 b = sig::bit(static_cast<u32>(signal));
    if (incoming.handler == sig::kSigIgn ||
        (incoming.handler == sig::kSigDfl && (signal == sig::kSigchld || signal == sig::kSigurg ||
                                              signal == sig::kSigwinch))) {
      process->signal_actions.pending.fetch_and(~b);
      process->threads.for_each([&](Thread* t) { t->signals.pending.fetch_and(~b); });
    }
  }
  return 0;
}

Result<i64> sys_rt_sigreturn(SyscallArgs& args) {
  // The restored registers are the interrupted code's: nothing to restart.
  Kernel::current_thread()->signals.syscall_nr = -1;
  auto restored = signal_return(args.frame);
  if (restored.is_error()) {
    // A corrupt frame: Linux sends SIGSEGV (force_sig), which ends the process here.
    force_fault_signal(args.kernel, sig::kSigsegv, sig::kSiKernel, 0, args.frame);
    return Errno::kEFAULT;
  }
  // The dispatcher stores the result in rax: hand back the interrupted code's rax.
  return static_cast<i64>(args.frame.rax);
}

Result<i64> sys_rt_sigpending(SyscallArgs& args) {
  const UserPtr<u64> set(args.arg[0]);
  if (args.arg[1] > sizeof(u64)) return Errno::kEINVAL;
  Thread* self = Kernel::current_thread();
  const u64 pending = (self->signals.pending.load() | self->process->signal_actions.pending.load()) & self->signal_mask;
  if (!hal::copy_to_user(set.address(), &pending, args.arg[1])) return Errno::kEFAULT;
  return 0;
}

namespace {

// Sleeps until a signal is pending; the caller set the mask to wait with.
Result<i64> wait_for_signal(Kernel& kernel) {
  Thread* self = Kernel::current_thread();
  while (!signal_pending(self)) {
    kernel.prepare_to_sleep();
    if (signal_pending(self)) kernel.wake(self, kWakeKill);
    kernel.block();
  }
  return Errno::kEINTR;  // Linux: ERESTARTNOHAND, which a handler turns into EINTR
}

}  // namespace

Result<i64> sys_rt_sigsuspend(SyscallArgs& args) {
  const UserPtr<u64> set(args.arg[0]);
  if (args.arg[1] != sizeof(u64)) return Errno::kEINVAL;
  const u64 mask = TRY(copy_from_user(set));
  Thread* self = Kernel::current_thread();
  {
    SpinLockGuard guard(self->process->lock);
    // Delivery puts the old mask in the handler's frame, so sigreturn restores it.
    self->signals.saved_mask = self->signal_mask;
    self->signals.restore_mask = true;
    self->signal_mask = mask & ~sig::kUnblockable;
  }
  return wait_for_signal(args.kernel);
}

Result<i64> sys_pause(SyscallArgs& args) { return wait_for_signal(args.kernel); }

Result<i64> sys_sigaltstack(SyscallArgs& args) {
  const UserPtr<UserStackT> incoming(args.arg[0]);
  const UserPtr<UserStackT> old(args.arg[1]);
  Thread* self = Kernel::current_thread();
  ThreadSignals& s = self->signals;
  const u64 sp = args.frame.rsp;
  const bool on_stack = s.altstack_size != 0 && sp > s.altstack_sp && sp - s.altstack_sp <= s.altstack_size;
  UserStackT current{};
  current.sp = s.altstack_sp;
  current.size = s.altstack_size;
  current.flags = s.altstack_size == 0 ? kSsDisable : (on_stack ? kSsOnstack : static_cast<i32>(s.altstack_flags));
  UserStackT next{};
  if (!incoming.is_null()) {
    next = TRY(copy_from_user(incoming));
    if (on_stack) return Errno::kEPERM;
    const u32 mode = static_cast<u32>(next.flags) & ~kSsAutodisarm;
    if (mode != 0 && mode != static_cast<u32>(kSsDisable) && mode != static_cast<u32>(kSsOnstack)) return Errno::kEINVAL;
    if (mode != static_cast<u32>(kSsDisable) && next.size < kMinSigstksz) return Errno::kENOMEM;
  }
  if (!old.is_null()) TRY(copy_to_user(old, current));
  if (!incoming.is_null()) {
    if ((static_cast<u32>(next.flags) & ~kSsAutodisarm) == static_cast<u32>(kSsDisable)) {
      s.altstack_sp = 0;
      s.altstack_size = 0;
      s.altstack_flags = static_cast<u32>(kSsDisable);
    } else {
      s.altstack_sp = next.sp;
      s.altstack_size = next.size;
      s.altstack_flags = 0;
    }
  }
  return 0;
}

}  // namespace tandem
