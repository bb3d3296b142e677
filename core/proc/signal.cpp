// Signal generation, the pending sets, delivery with Linux's x86-64 signal frame, and
// rt_sigreturn (see core/proc/signals.h).
//
// Generation sets a pending bit and its siginfo record under the target process's lock, then
// wakes a thread that does not block the signal. Delivery happens in that thread on its way
// back to user mode: a default action runs in the kernel; a handler gets a frame on the user
// stack (or the alternate stack) laid out exactly as Linux's struct rt_sigframe, so C
// libraries' restorers (rt_sigreturn) and unwinders find what they expect.
#include "core/kernel.h"
#include "core/lib/print.h"
#include "core/mm/user.h"
#include "core/proc/signals.h"

namespace tandem {

namespace {

using namespace sig;

enum class Default : u8 { Terminate, Core, Ignore, Stop, Continue };

Default default_action(u32 signal) {
  switch (signal) {
    case kSigquit: case kSigill: case kSigtrap: case kSigabrt: case kSigbus: case kSigfpe:
    case kSigsegv: case kSigxcpu: case kSigxfsz: case kSigsys:
      return Default::Core;
    case kSigchld: case kSigurg: case kSigwinch:
      return Default::Ignore;
    case kSigstop: case kSigtstp: case kSigttin: case kSigttou:
      return Default::Stop;
    case kSigcont:
      return Default::Continue;
    default:
      return Default::Terminate;
  }
}

// Discarded when generated: ignored explicitly, or ignored by default. Stop and continue are
// minimal: job control is not implemented, so their default action does nothing.
bool discarded(u32 signal, const KernelSigaction& action) {
  if (signal == kSigkill) return false;
  if (action.handler == kSigIgn) return true;
  if (action.handler != kSigDfl) return false;
  const Default d = default_action(signal);
  return d == Default::Ignore || d == Default::Stop || d == Default::Continue;
}

// Linux's x86-64 user structures (arch/x86/include/uapi/asm/sigcontext.h, ucontext.h).
struct SigContext {
  u64 r8, r9, r10, r11, r12, r13, r14, r15;
  u64 rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  u16 cs, gs, fs, ss;
  u64 err, trapno, oldmask, cr2;
  u64 fpstate;
  u64 reserved[8];
};
static_assert(sizeof(SigContext) == 256);

struct UserStack {
  u64 sp;
  i32 flags;
  i32 pad;
  u64 size;
};
static_assert(sizeof(UserStack) == 24);

struct UContext {
  u64 flags;
  u64 link;
  UserStack stack;
  SigContext mcontext;
  u64 sigmask;
};
static_assert(sizeof(UContext) == 304);

struct UserSiginfo {
  i32 signo;
  i32 errno_value;
  i32 code;
  i32 pad;
  union {
    struct {
      i32 pid;
      u32 uid;
      i32 status;  // SIGCHLD
      i32 pad2;
      i64 utime;
      i64 stime;
    } child;
    u64 address;  // fault signals
    u8 bytes[112];
  } fields;
};
static_assert(sizeof(UserSiginfo) == 128);

struct RtSigframe {
  u64 pretcode;  // the restorer: the handler's return address
  UContext uc;
  UserSiginfo info;
};
static_assert(sizeof(RtSigframe) == 440);

constexpr u64 kRedZone = 128;
constexpr i32 kSsOnstack = 1, kSsDisable = 2;
constexpr u64 kUserCs = 0x33, kUserSs = 0x2b;
constexpr u64 kFlagsTf = 1u << 8, kFlagsDf = 1u << 10;
constexpr u64 kFlagsRestorable = 0x40dd5;  // CF PF AF ZF SF TF DF OF RF AC: what sigreturn may set

u32 lowest_signal(u64 set) { return static_cast<u32>(__builtin_ctzll(set)) + 1; }

void wake_for_signal(Kernel& kernel, Thread* t) {
  if (!kernel.wake(t, kWakeKill) && t->on_cpu.load() && t->cpu != Kernel::this_cpu().id) {
    // Running elsewhere: make it pass through return_to_user soon.
    send_reschedule_ipi(t->cpu);
    ++Kernel::this_cpu().stats.ipis_sent;
  }
}

bool on_altstack(const ThreadSignals& s, u64 sp) {
  return s.altstack_size != 0 && sp > s.altstack_sp && sp - s.altstack_sp <= s.altstack_size;
}

UserSiginfo make_siginfo(u32 signal, const SignalInfo& info) {
  UserSiginfo out;
  fill_bytes(&out, 0, sizeof(out));
  out.signo = static_cast<i32>(signal);
  out.code = info.code;
  switch (signal) {
    case kSigsegv: case kSigbus: case kSigill: case kSigfpe: case kSigtrap:
      if (info.code > 0) {
        out.fields.address = info.address;
        break;
      }
      [[fallthrough]];
    default:
      out.fields.child.pid = static_cast<i32>(info.pid);
      out.fields.child.uid = 0;
      if (signal == kSigchld) out.fields.child.status = info.status;
      break;
  }
  return out;
}

// Builds the frame and points `frame` at the handler. EFAULT when the stack is unusable.
Result<void> setup_frame(Thread* self, u32 signal, const SignalInfo& info, const KernelSigaction& action,
                         hal::UserFrame& frame, u64 old_mask) {
  if ((action.flags & kSaRestorer) == 0 || action.restorer == 0) return Errno::kEFAULT;
  ThreadSignals& s = self->signals;
  u64 sp = frame.rsp - kRedZone;
  const bool was_on_altstack = on_altstack(s, frame.rsp);
  if ((action.flags & kSaOnstack) && s.altstack_flags != static_cast<u32>(kSsDisable) && s.altstack_size != 0 &&
      !was_on_altstack) {
    sp = s.altstack_sp + s.altstack_size;
  }
  // The FPU state goes first, 64-byte aligned, as Linux places it above the frame.
  alignas(64) u8 fpu[hal::kUserFpuStateSize];
  hal::user_fpu_save(fpu);
  sp = align_down(sp - hal::kUserFpuStateSize, 64);
  const u64 fpstate = sp;
  sp = align_down(sp - sizeof(RtSigframe), 16) - 8;  // as after a call: (rsp + 8) % 16 == 0

  RtSigframe f;
  fill_bytes(&f, 0, sizeof(f));
  f.pretcode = action.restorer;
  f.uc.stack.sp = s.altstack_sp;
  f.uc.stack.size = s.altstack_size;
  f.uc.stack.flags = s.altstack_size == 0 ? kSsDisable : (was_on_altstack ? kSsOnstack : static_cast<i32>(s.altstack_flags));
  SigContext& c = f.uc.mcontext;
  c.r8 = frame.r8, c.r9 = frame.r9, c.r10 = frame.r10, c.r11 = frame.r11;
  c.r12 = frame.r12, c.r13 = frame.r13, c.r14 = frame.r14, c.r15 = frame.r15;
  c.rdi = frame.rdi, c.rsi = frame.rsi, c.rbp = frame.rbp, c.rbx = frame.rbx;
  c.rdx = frame.rdx, c.rax = frame.rax, c.rcx = frame.rcx, c.rsp = frame.rsp;
  c.rip = frame.rip, c.eflags = frame.rflags;
  c.cs = kUserCs, c.ss = kUserSs;
  c.oldmask = old_mask;
  c.cr2 = info.address;
  c.fpstate = fpstate;
  f.uc.sigmask = old_mask;
  f.info = make_siginfo(signal, info);

  if (!hal::copy_to_user(fpstate, fpu, sizeof(fpu))) return Errno::kEFAULT;
  if (!hal::copy_to_user(sp, &f, sizeof(f))) return Errno::kEFAULT;

  frame.rsp = sp;
  frame.rip = action.handler;
  frame.rdi = signal;
  frame.rsi = sp + offsetof(RtSigframe, info);
  frame.rdx = sp + offsetof(RtSigframe, uc);
  frame.rax = 0;
  frame.rflags &= ~(kFlagsTf | kFlagsDf);
  return {};
}

// A system call the signal interrupted: restart it or make it fail with EINTR.
void resolve_restart(Thread* self, hal::UserFrame& frame, bool handler_runs, u64 flags) {
  if (self->signals.syscall_nr < 0) return;
  if (static_cast<i64>(frame.rax) != -static_cast<i64>(Errno::kERESTARTSYS)) return;
  if (!handler_runs || (flags & kSaRestart)) {
    frame.rax = static_cast<u64>(self->signals.syscall_nr);
    frame.rip -= 2;  // the SYSCALL instruction is two bytes: run it again
  } else {
    frame.rax = static_cast<u64>(-static_cast<i64>(Errno::kEINTR));
  }
  self->signals.syscall_nr = -1;
}

}  // namespace

bool signal_pending(Thread* thread) {
  if (thread->kill_pending.load(MemoryOrder::Relaxed)) return true;
  u64 pending = thread->signals.pending.load(MemoryOrder::Relaxed);
  if (thread->process != nullptr) pending |= thread->process->signal_actions.pending.load(MemoryOrder::Relaxed);
  return (pending & ~thread->signal_mask) != 0;
}

i32 signal_wait_status(u32 signal) {
  return static_cast<i32>(signal) | (default_action(signal) == Default::Core ? 0x80 : 0);
}

void send_signal_to_process(Process* process, u32 signal, const SignalInfo& info) {
  if (signal == 0 || signal > kSignalCount) return;
  Kernel& kernel = *process->kernel;
  SpinLockGuard guard(process->lock);
  if (process->exiting || process->live_threads == 0) return;
  SignalActions& sa = process->signal_actions;
  if (signal == kSigkill) {
    // Not deliverable to a handler: the whole group exits now, as exit_group does.
    process->exiting = true;
    process->exit_status = static_cast<i32>(kSigkill);
    process->threads.for_each([&](Thread* t) {
      t->kill_pending.store(true);
      wake_for_signal(kernel, t);
    });
    return;
  }
  if (discarded(signal, sa.actions[signal - 1])) return;
  const u64 b = bit(signal);
  if ((sa.pending.load() & b) == 0) {
    sa.info[signal - 1] = info;
    sa.pending.fetch_or(b);
  }
  // Wake one thread that can take it; when all block it, it waits in the shared set.
  Thread* target = nullptr;
  process->threads.for_each([&](Thread* t) {
    if (target == nullptr && (t->signal_mask & b) == 0) target = t;
  });
  if (target != nullptr) wake_for_signal(kernel, target);
}

void send_signal_to_thread(Thread* thread, u32 signal, const SignalInfo& info) {
  Process* process = thread->process;
  if (signal == 0 || signal > kSignalCount || process == nullptr) return;
  if (signal == kSigkill) return send_signal_to_process(process, signal, info);
  Kernel& kernel = *process->kernel;
  SpinLockGuard guard(process->lock);
  if (process->exiting || thread->exited) return;
  if (discarded(signal, process->signal_actions.actions[signal - 1])) return;
  const u64 b = bit(signal);
  if ((thread->signals.pending.load() & b) == 0) {
    thread->signals.info[signal - 1] = info;
    thread->signals.pending.fetch_or(b);
  }
  if ((thread->signal_mask & b) == 0) wake_for_signal(kernel, thread);
}

namespace {
// A signal the calling thread raises against itself as a system call fails (SIGPIPE, SIGXFSZ).
void signal_self(u32 signal) {
  Thread* self = Kernel::current_thread();
  if (self == nullptr || self->process == nullptr) return;
  SignalInfo info;
  info.code = kSiUser;
  info.pid = self->process->pid;
  send_signal_to_thread(self, signal, info);
}
}  // namespace

void deliver_sigpipe() { signal_self(kSigpipe); }

u64 file_size_limit() {
  Thread* self = Kernel::current_thread();
  if (self == nullptr || self->process == nullptr) return ~0ull;
  Process* process = self->process;
  SpinLockGuard guard(process->lock);
  return process->rlimits[1].cur;  // RLIMIT_FSIZE
}

void deliver_sigxfsz() { signal_self(kSigxfsz); }

void deliver_pending_signals(Kernel& kernel, hal::UserFrame& frame) {
  Thread* self = Kernel::current_thread();
  Process* process = self->process;
  if (process == nullptr) return;
  for (;;) {
    if (!signal_pending(self)) break;
    u32 signal = 0;
    SignalInfo info;
    KernelSigaction action;
    {
      SpinLockGuard guard(process->lock);
      const u64 mine = self->signals.pending.load() & ~self->signal_mask;
      const u64 shared = process->signal_actions.pending.load() & ~self->signal_mask;
      // Thread-directed first (synchronous faults), then the lowest-numbered shared one.
      if (mine != 0) {
        signal = lowest_signal(mine);
        info = self->signals.info[signal - 1];
        self->signals.pending.fetch_and(~bit(signal));
      } else if (shared != 0) {
        signal = lowest_signal(shared);
        info = process->signal_actions.info[signal - 1];
        process->signal_actions.pending.fetch_and(~bit(signal));
      } else {
        break;  // only kill_pending: handled by the caller
      }
      KernelSigaction& slot = process->signal_actions.actions[signal - 1];
      action = slot;
      if (action.handler > kSigIgn && (action.flags & kSaResethand)) slot = KernelSigaction{};
    }
    if (action.handler == kSigIgn) continue;
    if (action.handler == kSigDfl) {
      const Default d = default_action(signal);
      if (d == Default::Ignore || d == Default::Stop || d == Default::Continue) continue;
      if (d == Default::Core) {
        klog("pid %u: fatal signal %u at ip %lx (address %lx)", process->pid, signal,
             static_cast<unsigned long>(frame.rip), static_cast<unsigned long>(info.address));
      }
      hal::irq_enable();
      kernel.exit_group(signal_wait_status(signal));
    }
    resolve_restart(self, frame, true, action.flags);
    const u64 old_mask = self->signals.restore_mask ? self->signals.saved_mask : self->signal_mask;
    self->signals.restore_mask = false;
    if (setup_frame(self, signal, info, action, frame, old_mask).is_error()) {
      // No room for the frame: Linux forces SIGSEGV, which kills the process here.
      klog("pid %u: cannot build the frame for signal %u; killed by SIGSEGV", process->pid, signal);
      hal::irq_enable();
      kernel.exit_group(signal_wait_status(kSigsegv));
    }
    {
      SpinLockGuard guard(process->lock);
      u64 mask = self->signal_mask | action.mask;
      if ((action.flags & kSaNodefer) == 0) mask |= bit(signal);
      self->signal_mask = mask & ~kUnblockable;
    }
    self->signals.syscall_nr = -1;
    return;  // one frame per return to user mode; the next signal comes at the next return
  }
  resolve_restart(self, frame, false, 0);
  if (self->signals.restore_mask) {
    self->signals.restore_mask = false;
    self->signal_mask = self->signals.saved_mask;
  }
  self->signals.syscall_nr = -1;
}

void force_fault_signal(Kernel& kernel, u32 signal, i32 code, u64 address, hal::UserFrame& frame) {
  Thread* self = Kernel::current_thread();
  Process* process = self->process;
  VERIFY(process != nullptr);
  const u64 b = bit(signal);
  {
    SpinLockGuard guard(process->lock);
    KernelSigaction& slot = process->signal_actions.actions[signal - 1];
    // A fault signal the thread blocks or ignores would re-fault for ever: Linux resets it to
    // the default action and unblocks it (force_sig_info_to_task).
    if ((self->signal_mask & b) || slot.handler == kSigIgn) {
      slot = KernelSigaction{};
      self->signal_mask &= ~b;
    }
    SignalInfo& info = self->signals.info[signal - 1];
    info = SignalInfo{};
    info.code = code;
    info.address = address;
    self->signals.pending.fetch_or(b);
  }
  self->signals.syscall_nr = -1;
  deliver_pending_signals(kernel, frame);
}

Result<void> signal_return(hal::UserFrame& frame) {
  Thread* self = Kernel::current_thread();
  // The handler's `ret` popped pretcode: the frame starts 8 bytes below the stack pointer.
  const u64 address = frame.rsp - 8;
  RtSigframe f;
  if (!hal::copy_from_user(&f, address, sizeof(f))) return Errno::kEFAULT;
  const SigContext& c = f.uc.mcontext;
  if (c.fpstate != 0) {
    alignas(64) u8 fpu[hal::kUserFpuStateSize];
    if (!hal::copy_from_user(fpu, c.fpstate, sizeof(fpu))) return Errno::kEFAULT;
    hal::user_fpu_restore(fpu);
  }
  frame.r8 = c.r8, frame.r9 = c.r9, frame.r10 = c.r10, frame.r11 = c.r11;
  frame.r12 = c.r12, frame.r13 = c.r13, frame.r14 = c.r14, frame.r15 = c.r15;
  frame.rdi = c.rdi, frame.rsi = c.rsi, frame.rbp = c.rbp, frame.rbx = c.rbx;
  frame.rdx = c.rdx, frame.rax = c.rax, frame.rcx = c.rcx, frame.rsp = c.rsp;
  frame.rip = c.rip;
  frame.rflags = (frame.rflags & ~kFlagsRestorable) | (c.eflags & kFlagsRestorable);
  Process* process = self->process;
  SpinLockGuard guard(process->lock);
  self->signal_mask = f.uc.sigmask & ~kUnblockable;
  return {};
}

void reset_signals_for_exec(Process* process, Thread* thread) {
  SpinLockGuard guard(process->lock);
  for (u32 i = 0; i < kSignalCount; ++i) {
    KernelSigaction& a = process->signal_actions.actions[i];
    if (a.handler != kSigIgn) a = KernelSigaction{};
    else a.flags = 0, a.mask = 0, a.restorer = 0;
  }
  thread->signals.altstack_sp = 0;
  thread->signals.altstack_size = 0;
  thread->signals.altstack_flags = static_cast<u32>(kSsDisable);
}

}  // namespace tandem
