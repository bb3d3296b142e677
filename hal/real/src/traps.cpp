// hal/real/src/traps.cpp: interrupt and exception dispatch, the system call path, entry to user
// mode, and the user copies with their exception-table fixups.
#include "arch.h"
#include "hal_real.h"

extern "C" char user_copy_insn[], user_copy_fixup[];
extern "C" char user_cmpxchg_insn[], user_cmpxchg_fixup[];
extern "C" hal::u64 user_copy_asm(void* dst, const void* src, hal::u64 length);
extern "C" int user_cmpxchg_asm(hal::u32* user, hal::u32 expected, hal::u32 desired,
                                hal::u32* seen);
extern "C" [[noreturn]] void user_return_iret(const hal::UserFrame* frame);

namespace hal::real {

// The register file entry.S saves, lowest address first.
struct TrapFrame {
  u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  u64 vector, error;
  u64 rip, cs, rflags, rsp, ss;  // pushed by the CPU
};
static_assert(sizeof(TrapFrame) == 22 * 8);
static_assert(sizeof(UserFrame) == 19 * 8, "entry.S syscall_entry builds this layout");
static_assert(offsetof(UserFrame, rsp) == 56 && offsetof(UserFrame, rip) == 128 &&
                  offsetof(UserFrame, rflags) == 136,
              "entry.S offsets");

namespace {

// RFLAGS bits a user frame may carry back: CF PF AF ZF SF TF DF OF AC ID. IF is forced on and
// IOPL, NT, RF, VM and VIF/VIP off, whatever core put in the frame.
constexpr u64 kUserFlagsMask = 0x240dd5;
constexpr u64 kUserFlagsForced = 0x202;

// The highest RIP SYSRET may return to. Above it (non-canonical or the top page) the return goes
// through IRETQ, which reports a bad RIP as an ordinary fault in user context rather than the
// kernel-mode #GP that SYSRET would raise on Intel CPUs.
constexpr u64 kSysretMaxRip = kUserTop - kPageSize;

const char* const kExceptionNames[32] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range", "invalid opcode",
    "device not available", "double fault", "coprocessor overrun", "invalid TSS",
    "segment not present", "stack fault", "general protection", "page fault", "reserved",
    "x87 error", "alignment check", "machine check", "SIMD error", "virtualization",
    "control protection", "reserved", "reserved", "reserved", "reserved", "reserved",
    "reserved", "hypervisor injection", "VMM communication", "security", "reserved"};

struct FixupEntry {
  const char* insn;
  const char* fixup;
};
const FixupEntry kFixups[] = {
    {user_copy_insn, user_copy_fixup},
    {user_cmpxchg_insn, user_cmpxchg_fixup},
};

u32 fault_access(u64 error) {
  if (error & (1u << 4)) return kentry::kFaultExec;
  if (error & (1u << 1)) return kentry::kFaultWrite;
  return kentry::kFaultRead;
}

void to_user_frame(const TrapFrame& t, UserFrame& u) {
  u.rax = t.rax, u.rbx = t.rbx, u.rcx = t.rcx, u.rdx = t.rdx, u.rsi = t.rsi, u.rdi = t.rdi;
  u.rbp = t.rbp, u.rsp = t.rsp, u.r8 = t.r8, u.r9 = t.r9, u.r10 = t.r10, u.r11 = t.r11;
  u.r12 = t.r12, u.r13 = t.r13, u.r14 = t.r14, u.r15 = t.r15, u.rip = t.rip;
  u.rflags = t.rflags;
  u.fs_base = get_fs_base();
}

// Applies a frame core may have changed. A FS base core changed in the frame wins; otherwise a
// set_fs_base() made during the call (arch_prctl) stays.
void apply_fs_base(UserFrame& u, u64 fs_at_entry) {
  if (u.fs_base != fs_at_entry) set_fs_base(u.fs_base);
  u.fs_base = get_fs_base();
}

// A frame core hands back must name a user RIP: IRETQ to a non-canonical one would fault in
// kernel mode. Core gets the chance to deliver SIGSEGV for it; if the frame is still bad, RIP 0
// makes the thread fault in user mode instead, where core handles it like any bad jump.
void ensure_user_rip(UserFrame& u) {
  for (u32 i = 0; i < 3 && u.rip >= kUserTop; ++i) {
    kentry::user_fault(kentry::UserFault::Segv, u.rip, u);
  }
  if (u.rip >= kUserTop) {
    klog("user rip %lx is not a user address after SIGSEGV; resuming at 0", u.rip);
    u.rip = 0;
  }
}

void from_user_frame(UserFrame& u, TrapFrame& t) {
  ensure_user_rip(u);
  t.rax = u.rax, t.rbx = u.rbx, t.rcx = u.rcx, t.rdx = u.rdx, t.rsi = u.rsi, t.rdi = u.rdi;
  t.rbp = u.rbp, t.rsp = u.rsp, t.r8 = u.r8, t.r9 = u.r9, t.r10 = u.r10, t.r11 = u.r11;
  t.r12 = u.r12, t.r13 = u.r13, t.r14 = u.r14, t.r15 = u.r15, t.rip = u.rip;
  t.rflags = (u.rflags & kUserFlagsMask) | kUserFlagsForced;
  t.cs = kUserCs;
  t.ss = kUserDs;
}

void dump_frame(const TrapFrame& f) {
  kprint("  rip %016lx cs %lx rflags %016lx rsp %016lx ss %lx\n", f.rip, f.cs, f.rflags, f.rsp,
         f.ss);
  kprint("  rax %016lx rbx %016lx rcx %016lx rdx %016lx\n", f.rax, f.rbx, f.rcx, f.rdx);
  kprint("  rsi %016lx rdi %016lx rbp %016lx r8  %016lx\n", f.rsi, f.rdi, f.rbp, f.r8);
  kprint("  r9  %016lx r10 %016lx r11 %016lx r12 %016lx\n", f.r9, f.r10, f.r11, f.r12);
  kprint("  r13 %016lx r14 %016lx r15 %016lx\n", f.r13, f.r14, f.r15);
  kprint("  cr2 %016lx cr3 %016lx cr0 %lx cr4 %lx\n", read_cr2(), read_cr3(), read_cr0(),
         read_cr4());
}

[[noreturn]] void fatal_exception(TrapFrame& f) {
  PerCpu* cpu = this_cpu();
  if (++cpu->exception_depth > 1) {
    // The dump itself faulted: say the least possible and stop.
    serial_write_raw("[tandem] PANIC: fault while reporting a fault\n", 46);
    power_off_code(kExitPanic);
  }
  const char* name = f.vector < 32 ? kExceptionNames[f.vector] : "interrupt";
  klog("PANIC: cpu %u: %s (vector %lu, error %lx) in %s mode, context %s", cpu->id, name,
       f.vector, f.error, (f.cs & 3) ? "user" : "kernel", context_name(cpu->current));
  if (f.vector == 14) {
    u64 cr2 = read_cr2();
    klog("page fault at %lx (%s, %s)%s", cr2, (f.error & 2) ? "write" : "read",
         (f.error & 1) ? "protection" : "not present",
         (f.vector == 14 && cr2 >= kStackRegionBase && cr2 < kStackRegionBase + (1ull << 39) &&
          ((cr2 - kStackRegionBase) % kSlotSize) < kPageSize)
             ? ": kernel stack overflow into a guard page"
             : "");
  }
  if (f.vector == 8) {
    u64 cr2 = read_cr2();
    if (cr2 >= kStackRegionBase && ((cr2 - kStackRegionBase) % kSlotSize) < kPageSize) {
      klog("double fault with cr2 %lx in a guard page: kernel stack overflow", cr2);
    }
  }
  dump_frame(f);
  print_backtrace(f.rip, f.rbp);
  panic_after_dump(name);
}

// A page fault in kernel mode. Only the user-copy instructions may fault, and only on user
// addresses; anything else is a kernel bug.
void kernel_page_fault(TrapFrame& f) {
  u64 address = read_cr2();
  if (address < kUserTop) {
    for (const FixupEntry& e : kFixups) {
      if (f.rip == u64(e.insn)) {
        PerCpu* cpu = this_cpu();
        cpu->fault_address = address;
        cpu->fault_access = fault_access(f.error);
        f.rip = u64(e.fixup);
        return;
      }
    }
  }
  fatal_exception(f);
}

kentry::UserFault user_fault_kind(u64 vector) {
  switch (vector) {
    case 0: case 16: case 19: return kentry::UserFault::Fpe;
    case 1: case 3: return kentry::UserFault::Trap;
    case 6: case 7: return kentry::UserFault::Ill;
    case 10: case 11: case 12: case 17: return kentry::UserFault::Bus;
    default: return kentry::UserFault::Segv;
  }
}

// An exception taken in user mode: a page fault is offered to core's page-fault handler first;
// the rest, and unresolved page faults, become a user fault (a signal).
void user_exception(TrapFrame& f) {
  u64 address = f.vector == 14 ? read_cr2() : 0;
  UserFrame u;
  to_user_frame(f, u);
  u64 fs_at_entry = u.fs_base;
  // Core may sleep to resolve a fault (read a page, wait for a lock): interrupts go back on, as
  // they were in user mode. The frame lives on this thread's kernel stack, so it survives a
  // switch to another thread and back.
  irq_enable();
  bool resolved = f.vector == 14 && kentry::page_fault(address, fault_access(f.error));
  if (!resolved) {
    kentry::UserFault kind = user_fault_kind(f.vector);
    kentry::user_fault(kind, f.vector == 14 ? address : f.rip, u);
  }
  irq_disable();
  if (!resolved) {
    apply_fs_base(u, fs_at_entry);
    from_user_frame(u, f);
  }
}

void device_or_ipi(TrapFrame& f, bool from_user) {
  // Out of the halt (if it was in one): a handler stuck with interrupts off is the watchdog's
  // business again.
  this_cpu()->halted = 0;
  kentry::Vector kind;
  u32 irq = 0;
  u8 v = u8(f.vector);
  if (v == kVecTimer) {
    // The LAPIC one-shot may fire early when the deadline was beyond its range, or for the
    // watchdog's sake; then it is re-armed and core hears nothing.
    lapic_eoi();
    watchdog_heartbeat();
    watchdog_check();
    watchdog_soft_check(from_user, f.rip, f.rbp);
    PerCpu* cpu = this_cpu();
    cpu->timer_programmed = 0;  // a one-shot count that fired has stopped
    if (!cpu->timer_deadline || monotonic_ns() < cpu->timer_deadline) {
      timer_interrupt();
      return;
    }
    cpu->timer_deadline = 0;
    kind = kentry::Vector::Timer;
  } else if (v == kVecReschedule) {
    lapic_eoi();
    kind = kentry::Vector::IpiReschedule;
  } else if (v == kVecTlbShootdown) {
    lapic_eoi();
    tlb_service();
    kind = kentry::Vector::IpiTlbShootdown;
  } else if (serial_input_vector(v)) {
    // Console input is the HAL's own interrupt: it reaches core as kentry::console_input(), not
    // as a device irq, and core switches no threads in it (like an early timer interrupt).
    serial_input_interrupt();
    return;
  } else if (v >= kVecDeviceBase && v < kVecDeviceBase + kMaxDeviceIrq) {
    lapic_eoi();
    kind = kentry::Vector::Device;
    irq = v - kVecDeviceBase;
  } else if (v == kVecSpurious) {
    return;  // a spurious LAPIC interrupt needs no EOI
  } else {
    klog("stray interrupt: vector %u on cpu %u (rip %lx); ignored", unsigned(v), cpu_id(), f.rip);
    lapic_eoi();
    return;
  }
  // The EOI went out first: core may switch threads before this returns, and the LAPIC must not
  // hold back interrupts of this priority until the thread comes back.
  if (from_user) {
    UserFrame u;
    to_user_frame(f, u);
    u64 fs_at_entry = u.fs_base;
    kentry::interrupt(kind, irq, &u);
    irq_disable();
    apply_fs_base(u, fs_at_entry);
    from_user_frame(u, f);
  } else {
    kentry::interrupt(kind, irq, nullptr);
    irq_disable();
  }
}

void nmi(TrapFrame& f) {
  // NMIs carry the Backtrace IPI (the only NMI source the kernel sets up). The handler may run
  // while this CPU holds the console lock; the log then prints without it.
  PerCpu* cpu = this_cpu();
  klog("cpu %u: backtrace (NMI) in %s mode, context %s, rip %lx", cpu->id,
       (f.cs & 3) ? "user" : "kernel", context_name(cpu->current), f.rip);
  if (!(f.cs & 3)) print_backtrace(f.rip, f.rbp);
  __atomic_add_fetch(&cpu->nmi_count, 1u, __ATOMIC_RELEASE);
  // A panicking CPU asked for this backtrace; core's state is suspect, so it is not called and
  // this CPU stops here until the panicking one ends the machine.
  if (panicking()) halt_forever();
  kentry::interrupt(kentry::Vector::IpiBacktrace, 0, nullptr);
}

}  // namespace

void print_backtrace(u64 rip, u64 rbp) {
  kprint("  backtrace (llvm-addr2line -e tandem.elf):\n    %016lx\n", rip);
  // Follows the saved-RBP chain (the kernel is built with frame pointers). Each link is checked
  // to be a mapped, aligned kernel address first, so a corrupt chain ends the walk, not the CPU.
  for (u32 depth = 0; depth < 32 && rbp; ++depth) {
    if ((rbp & 7) || rbp < kDirectMapBase || !kernel_address_mapped(rbp) ||
        !kernel_address_mapped(rbp + 8)) {
      break;
    }
    u64 ret = reinterpret_cast<u64*>(rbp)[1];
    if (ret < kKernelBase) break;
    kprint("    %016lx\n", ret - 1);  // the call instruction, not the one after it
    u64 next = reinterpret_cast<u64*>(rbp)[0];
    if (next <= rbp) break;  // stacks grow down: the chain must go up
    rbp = next;
  }
}

}  // namespace hal::real

using namespace hal;
using namespace hal::real;

extern "C" void trap_dispatch(TrapFrame* frame) {
  TrapFrame& f = *frame;
  bool from_user = f.cs & 3;
  if (f.vector == kVecNmi) {
    nmi(f);
  } else if (f.vector < 32) {
    if (f.vector == 8 || f.vector == 18) fatal_exception(f);
    if (from_user) {
      user_exception(f);
    } else if (f.vector == 14) {
      kernel_page_fault(f);
    } else {
      fatal_exception(f);
    }
  } else {
    device_or_ipi(f, from_user);
  }
}

// Called by syscall_entry with the frame at the top of the thread's kernel stack. Returns 0 to
// leave with SYSRET, 1 to leave with IRETQ; either way with interrupts disabled.
extern "C" int syscall_dispatch(UserFrame* frame) {
  note_progress();
  UserFrame& u = *frame;
  u.fs_base = get_fs_base();
  u64 fs_at_entry = u.fs_base;
  irq_enable();
  kentry::syscall(u);
  ensure_user_rip(u);
  irq_disable();
  apply_fs_base(u, fs_at_entry);
  u.rflags = (u.rflags & kUserFlagsMask) | kUserFlagsForced;
  // SYSRET returns to RCX with RFLAGS from R11 and cannot report a bad RIP safely. It also
  // loses RCX and R11, which rt_sigreturn must give back exactly: IRETQ then.
  return u.rip <= kSysretMaxRip && u.rcx == u.rip && u.r11 == u.rflags ? 0 : 1;
}

namespace hal {

// The first entry to user mode on this machine is PID 1's first instruction (nothing else runs
// user code before it); its time is the boot benchmark's kernel-side figure (tools/bench).
static volatile u32 g_entered_user = 0;

void enter_user(const UserFrame& frame) {
  UserFrame u = frame;
  ensure_user_rip(u);
  if (__atomic_exchange_n(&g_entered_user, 1u, __ATOMIC_RELAXED) == 0) {
    const u64 ns = monotonic_ns();
    klog("user: first entry to user mode at %lu.%06lu ms (monotonic)", static_cast<unsigned long>(ns / 1000000),
         static_cast<unsigned long>(ns % 1000000));
  }
  irq_disable();
  set_fs_base(u.fs_base);
  u.rflags = (u.rflags & kUserFlagsMask) | kUserFlagsForced;
  user_return_iret(&u);
}

// Copies with retries: a fault stops the copy where it happened, core's page-fault handler gets
// the address, and the copy resumes from that byte when the fault was resolved. A handler that
// claims success without making the page accessible cannot loop for ever: the same address
// faulting again after a "resolved" counts down a retry budget.
static bool user_range_ok(u64 user, size_t length) {
  return length <= kUserTop && user <= kUserTop - length;
}

static bool resolve_copy_fault(u64* last, u32* retries) {
  PerCpu* cpu = this_cpu();
  u64 address = cpu->fault_address;
  u32 access = cpu->fault_access;
  if (address == *last) {
    if (++*retries > 4) return false;
  } else {
    *last = address;
    *retries = 0;
  }
  return kentry::page_fault(address, access);
}

bool copy_from_user(void* dst, u64 user_src, size_t length) {
  if (!user_range_ok(user_src, length)) return false;
  u64 done = 0, last = ~0ull;
  u32 retries = 0;
  while (done < length) {
    u64 left = user_copy_asm(static_cast<u8*>(dst) + done,
                             reinterpret_cast<const void*>(user_src + done), length - done);
    if (!left) return true;
    done = length - left;
    if (!resolve_copy_fault(&last, &retries)) return false;
  }
  return true;
}

bool copy_to_user(u64 user_dst, const void* src, size_t length) {
  if (!user_range_ok(user_dst, length)) return false;
  u64 done = 0, last = ~0ull;
  u32 retries = 0;
  while (done < length) {
    u64 left = user_copy_asm(reinterpret_cast<void*>(user_dst + done),
                             static_cast<const u8*>(src) + done, length - done);
    if (!left) return true;
    done = length - left;
    if (!resolve_copy_fault(&last, &retries)) return false;
  }
  return true;
}

bool user_cmpxchg32(u64 user_addr, u32 expected, u32 desired, u32* seen) {
  if ((user_addr & 3) || !user_range_ok(user_addr, 4)) return false;
  u64 last = ~0ull;
  u32 retries = 0;
  for (;;) {
    u32 value = 0;
    if (!user_cmpxchg_asm(reinterpret_cast<u32*>(user_addr), expected, desired, &value)) {
      *seen = value;
      return true;
    }
    if (!resolve_copy_fault(&last, &retries)) return false;
  }
}

}  // namespace hal
