// hal/real/src/cpu.cpp: CPU features, the per-CPU block, GDT/TSS/IDT, FPU and SYSCALL set-up,
// and the small CPU functions of the HAL contract.
#include "arch.h"

extern "C" char isr_stubs[];
extern "C" char syscall_entry[];
extern "C" bool g_smap_enabled;
bool g_smap_enabled = false;  // read by the STAC/CLAC macros in entry.S

namespace hal::real {

Features g_features;
PerCpu g_cpus[kMaxCpus];
u32 g_cpu_count = 1;

static_assert(offsetof(PerCpu, self) == 0);
static_assert(offsetof(PerCpu, kernel_rsp) == 8, "entry.S PERCPU_KERNEL_RSP");
static_assert(offsetof(PerCpu, user_rsp) == 16, "entry.S PERCPU_USER_RSP");
static_assert(offsetof(PerCpu, id) == 24);
static_assert(offsetof(PerCpu, core_local) == 32);
static_assert(sizeof(Tss) == 104);

namespace {

struct IdtEntry {
  u16 offset_low;
  u16 selector;
  u8 ist;
  u8 type_attr;
  u16 offset_mid;
  u32 offset_high;
  u32 zero;
} __attribute__((packed));

IdtEntry g_idt[256];

struct __attribute__((packed)) TablePointer {
  u16 limit;
  u64 base;
};

// IST slots: 1 = NMI, 2 = double fault, 3 = machine check. Each has its own stack so that these
// arrive on a good stack even when the kernel stack is broken (overflow into the guard page).
constexpr u8 kIstNmi = 1, kIstDoubleFault = 2, kIstMachineCheck = 3;

}  // namespace

void features_init() {
  Features& f = g_features;
  CpuidResult l1 = cpuid(1);
  CpuidResult l7 = cpuid(0, 0).eax >= 7 ? cpuid(7, 0) : CpuidResult{};
  u32 max_ext = cpuid(0x80000000).eax;
  CpuidResult e1 = max_ext >= 0x80000001 ? cpuid(0x80000001) : CpuidResult{};
  CpuidResult e7 = max_ext >= 0x80000007 ? cpuid(0x80000007) : CpuidResult{};
  f.nx = e1.edx & (1u << 20);
  f.pdpe1gb = e1.edx & (1u << 26);
  f.pge = l1.edx & (1u << 13);
  f.rdrand = l1.ecx & (1u << 30);
  f.xsave = l1.ecx & (1u << 26);
  f.smep = l7.ebx & (1u << 7);
  f.smap = l7.ebx & (1u << 20);
  f.invariant_tsc = e7.edx & (1u << 8);
  if (!(l1.edx & (1u << 25)) || !(l1.edx & (1u << 24))) {
    klog("PANIC: the CPU lacks SSE/FXSR, which the user ABI needs");
    power_off_code(kExitPanic);
  }
  f.xsave_size = 512;  // FXSAVE area
  f.xcr0 = 0;
  if (f.xsave) {
    // Only x87, SSE and AVX state are enabled: that is what Linux x86-64 programs of the target
    // (busybox, beam.smp) use; AVX-512 or AMX would grow every context's save area.
    u64 supported = cpuid(0xd, 0).eax;
    f.xcr0 = supported & 0x7;
    f.avx = (f.xcr0 & 0x4) && (l1.ecx & (1u << 28));
    if (!f.avx) f.xcr0 &= 0x3;
    f.xsave_size = 576;  // legacy area + XSAVE header
    if (f.avx) {
      CpuidResult c = cpuid(0xd, 2);
      if (c.ebx + c.eax > f.xsave_size) f.xsave_size = c.ebx + c.eax;
    }
  }
}

// Enables the FPU, SSE and (when present) XSAVE with AVX on the calling CPU. The kernel itself is
// built without SSE, so the user's vector state stays in the registers while in the kernel and is
// saved only at a context switch.
static void fpu_init_this_cpu() {
  u64 cr0 = read_cr0();
  cr0 &= ~((1ull << 2) | (1ull << 3));  // EM, TS off: no lazy FPU traps
  cr0 |= (1ull << 1) | (1ull << 5);     // MP, NE: native x87 error reporting
  write_cr0(cr0);
  u64 cr4 = read_cr4();
  cr4 |= (1ull << 9) | (1ull << 10);  // OSFXSR, OSXMMEXCPT
  if (g_features.xsave) cr4 |= 1ull << 18;  // OSXSAVE
  if (g_features.pge) cr4 |= 1ull << 7;
  if (g_features.smep) cr4 |= 1ull << 20;
  if (g_features.smap) cr4 |= 1ull << 21;
  write_cr4(cr4);
  if (g_features.xsave) {
    asm volatile("xsetbv" ::"c"(0), "a"(u32(g_features.xcr0)), "d"(u32(g_features.xcr0 >> 32)));
  }
  asm volatile("fninit");
  u32 mxcsr = 0x1f80;
  asm volatile("ldmxcsr %0" ::"m"(mxcsr));
}

void idt_build() {
  for (u32 v = 0; v < 256; ++v) {
    u64 addr = u64(isr_stubs) + 16 * v;
    IdtEntry& e = g_idt[v];
    e.offset_low = u16(addr);
    e.selector = kKernelCs;
    e.ist = 0;
    // Interrupt gates (interrupts off on entry). int3 and into may be used by user code.
    e.type_attr = (v == 3 || v == 4) ? 0xee : 0x8e;
    e.offset_mid = u16(addr >> 16);
    e.offset_high = u32(addr >> 32);
    e.zero = 0;
  }
  // No IST yet: until cpu_init loads a TSS, an IST gate would itself fault. The early IDT only
  // has to turn a boot-time exception into a readable report instead of a triple fault.
  TablePointer idtr{u16(sizeof(g_idt) - 1), u64(g_idt)};
  asm volatile("lidt %0" ::"m"(idtr));
}

void cpu_init(u32 id, u32 apic_id, u64 boot_stack_top) {
  PerCpu& c = g_cpus[id];
  c.self = &c;
  c.id = id;
  c.apic_id = apic_id;
  c.boot_stack_top = boot_stack_top;
  c.kernel_rsp = boot_stack_top;

  // GS first: everything after (locks, the log) asks for cpu_id(). Loading a selector into GS
  // clears its base, so the selector goes in before the MSR write.
  asm volatile("mov %0, %%gs" ::"r"(u32(0)));
  wrmsr(kMsrGsBase, u64(&c));
  wrmsr(kMsrKernelGsBase, 0);

  c.gdt[0] = 0;
  c.gdt[1] = 0;                      // unused, so the selectors match Linux's
  c.gdt[2] = 0x00af9a000000ffffull;  // 0x10 kernel code, 64-bit
  c.gdt[3] = 0x00cf92000000ffffull;  // 0x18 kernel data
  c.gdt[4] = 0x00cffa000000ffffull;  // 0x23 user code, 32-bit (only as the SYSRET base)
  c.gdt[5] = 0x00cff2000000ffffull;  // 0x2b user data
  c.gdt[6] = 0x00affa000000ffffull;  // 0x33 user code, 64-bit
  u64 base = u64(&c.tss);
  u64 limit = sizeof(Tss) - 1;
  c.gdt[7] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
             (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  c.gdt[8] = base >> 32;

  c.tss = Tss{};
  c.tss.rsp[0] = boot_stack_top;
  c.tss.iomap_base = sizeof(Tss);  // no I/O permission bitmap: user port access faults
  // IST stacks carry the per-CPU pointer in their top word, for handlers that cannot trust GS.
  for (u32 i = 1; i <= 3; ++i) {
    u64 top = slot_alloc_stack_top();
    *reinterpret_cast<PerCpu**>(top - 8) = &c;
    c.tss.ist[i - 1] = top - 16;
  }

  TablePointer gdtr{u16(sizeof(c.gdt) - 1), u64(c.gdt)};
  asm volatile("lgdt %0" ::"m"(gdtr));
  asm volatile(
      "pushq %[cs]\n"
      "leaq 1f(%%rip), %%rax\n"
      "pushq %%rax\n"
      "lretq\n"
      "1:\n"
      "mov %[null], %%ds\n"
      "mov %[null], %%es\n"
      "mov %[ds], %%ss\n" ::[cs] "i"(kKernelCs),
      [ds] "r"(u32(kKernelDs)), [null] "r"(u32(0))
      : "rax", "memory");
  asm volatile("ltr %0" ::"r"(u16(kTssSel)));
  g_idt[2].ist = kIstNmi;
  g_idt[8].ist = kIstDoubleFault;
  g_idt[18].ist = kIstMachineCheck;
  TablePointer idtr{u16(sizeof(g_idt) - 1), u64(g_idt)};
  asm volatile("lidt %0" ::"m"(idtr));

  fpu_init_this_cpu();
  g_smap_enabled = g_features.smap;

  // SYSCALL: EFER.SCE; kernel CS/SS from STAR[47:32], SYSRET's user base from STAR[63:48].
  wrmsr(kMsrEfer, rdmsr(kMsrEfer) | 1 | (g_features.nx ? (1ull << 11) : 0));
  wrmsr(kMsrStar, (u64(kUserCs32 & ~3) << 48) | (u64(kKernelCs) << 32));
  wrmsr(kMsrLstar, u64(syscall_entry));
  // Cleared on entry: TF, IF, DF, NT, AC. Interrupts stay off until the frame is built.
  wrmsr(kMsrFmask, 0x47700);
  wrmsr(kMsrFsBase, 0);
}

}  // namespace hal::real

namespace hal {

u32 cpu_id() {
  u32 id;
  asm volatile("mov %%gs:24, %0" : "=r"(id));
  return id;
}

u32 cpu_count() { return hal::real::g_cpu_count; }

IrqFlags irq_save() {
  u64 flags = real::read_rflags();
  asm volatile("cli" ::: "memory");
  return flags & real::kRflagsIf;
}

void irq_restore(IrqFlags flags) {
  if (flags & real::kRflagsIf) asm volatile("sti" ::: "memory");
}

void irq_enable() { asm volatile("sti" ::: "memory"); }
void irq_disable() { asm volatile("cli" ::: "memory"); }
bool irq_enabled() { return real::read_rflags() & real::kRflagsIf; }

// `sti` delays interrupt recognition by one instruction, so no interrupt can be taken between
// it and `hlt`: one that is pending wakes the hlt at once, and none can slip in unseen.
void cpu_idle_wait() {
  real::note_progress();
  real::PerCpu* cpu = real::this_cpu();
  cpu->halted = 1;
  asm volatile("sti; hlt; cli" ::: "memory");
  cpu->halted = 0;
}

void cpu_relax() {
  asm volatile("pause" ::: "memory");
  // Core's lock loops spin here with interrupts disabled: answer TLB shootdowns meanwhile
  // (the lock holder may be waiting for this CPU's answer) and check the watchdog.
  real::spin_hook();
}

void cpu_local_set(void* p) { asm volatile("mov %0, %%gs:32" ::"r"(p) : "memory"); }

void* cpu_local() {
  void* p;
  asm volatile("mov %%gs:32, %0" : "=r"(p));
  return p;
}

}  // namespace hal
