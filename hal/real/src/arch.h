// hal/real/src/arch.h: x86-64 building blocks shared by the files of hal/real.
//
// This header is private to hal/real; core/ never sees it. It holds the instruction wrappers,
// the memory layout constants, the per-CPU block that GS points at, and the functions one
// part of the HAL calls in another.
#pragma once

#include <hal.h>
#include <stddef.h>
#include <stdint.h>

namespace hal::real {

// ---------------------------------------------------------------------------------------------
// Memory layout. The kernel is linked at kKernelBase + physical address; all of physical memory
// is mapped at kDirectMapBase; kernel stacks live in their own region with unmapped guard pages.
// ---------------------------------------------------------------------------------------------
inline constexpr u64 kKernelBase = 0xffff'ffff'8000'0000ull;
inline constexpr u64 kDirectMapBase = 0xffff'8000'0000'0000ull;
inline constexpr u64 kStackRegionBase = 0xffff'ff00'0000'0000ull;  // PML4 slot 510
// Device MMIO outside the direct map's uncached 3-4 GiB window (64-bit BARs above 4 GiB): the
// upper half of PML4 slot 510, far above any stack slot, so every address space shares it.
inline constexpr u64 kMmioRegionBase = kStackRegionBase + (256ull << 30);
inline constexpr u64 kMmioRegionSize = 256ull << 30;

// A stack slot: one unmapped guard page, then the stack, then the pages that hold the Context
// and its XSAVE area. Slots are never unmapped once populated (see context.cpp for why).
inline constexpr u64 kSlotSize = 64 * 1024;
inline constexpr u64 kStackSize = 32 * 1024;

// Segment selectors, with the values Linux x86-64 uses (user CS 0x33, SS 0x2b), so that programs
// and signal frames see the selectors they would see on Linux. The order (kernel code, kernel
// data, user code32, user data, user code64) is the one SYSCALL/SYSRET require:
// STAR[47:32] = 0x10 gives kernel CS 0x10 / SS 0x18, and STAR[63:48] = 0x20 gives user
// SS 0x20+8 = 0x28 and user CS 0x20+16 = 0x30 (RPL 3 added). Entry 1 is unused.
inline constexpr u16 kKernelCs = 0x10;
inline constexpr u16 kKernelDs = 0x18;
inline constexpr u16 kUserCs32 = 0x20 | 3;
inline constexpr u16 kUserDs = 0x28 | 3;
inline constexpr u16 kUserCs = 0x30 | 3;
inline constexpr u16 kTssSel = 0x38;

// Interrupt vectors.
inline constexpr u8 kVecNmi = 2;
inline constexpr u8 kVecDeviceBase = 0x30;  // IOAPIC GSI n arrives on vector 0x30 + n
inline constexpr u32 kMaxGsi = 32;
// MSI(-X) irqs follow the GSIs: irq kMaxGsi + n arrives on vector kVecDeviceBase + kMaxGsi + n
// (pci.cpp), so one range of vectors 0x30-0x6f is kentry::Vector::Device with irq = vector - 0x30.
inline constexpr u32 kMaxMsi = 32;
inline constexpr u32 kMaxDeviceIrq = kMaxGsi + kMaxMsi;
inline constexpr u8 kVecTimer = 0xe0;
inline constexpr u8 kVecReschedule = 0xf0;
inline constexpr u8 kVecTlbShootdown = 0xf1;
inline constexpr u8 kVecSpurious = 0xff;

// isa-debug-exit codes (QEMU exits with status (code << 1) | 1); see hal/real/README.md.
inline constexpr u32 kExitPanic = 62;  // status 125

// ---------------------------------------------------------------------------------------------
// Instruction wrappers.
// ---------------------------------------------------------------------------------------------
inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
inline void outw(u16 port, u16 v) { asm volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
inline u8 inb(u16 port) {
  u8 v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline u32 inl(u16 port) {
  u32 v;
  asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline u64 rdmsr(u32 msr) {
  u32 lo, hi;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return (u64(hi) << 32) | lo;
}
inline void wrmsr(u32 msr, u64 v) {
  asm volatile("wrmsr" ::"c"(msr), "a"(u32(v)), "d"(u32(v >> 32)) : "memory");
}
struct CpuidResult {
  u32 eax, ebx, ecx, edx;
};
inline CpuidResult cpuid(u32 leaf, u32 sub = 0) {
  CpuidResult r;
  asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(sub));
  return r;
}
inline u64 rdtsc() {
  u32 lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (u64(hi) << 32) | lo;
}
inline u64 read_cr0() { u64 v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
inline u64 read_cr2() { u64 v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
inline u64 read_cr3() { u64 v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
inline u64 read_cr4() { u64 v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
inline void write_cr0(u64 v) { asm volatile("mov %0, %%cr0" ::"r"(v) : "memory"); }
inline void write_cr3(u64 v) { asm volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
inline void write_cr4(u64 v) { asm volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }
inline u64 read_rflags() {
  u64 v;
  asm volatile("pushfq; popq %0" : "=r"(v));
  return v;
}

inline constexpr u32 kMsrEfer = 0xc0000080;
inline constexpr u32 kMsrStar = 0xc0000081;
inline constexpr u32 kMsrLstar = 0xc0000082;
inline constexpr u32 kMsrFmask = 0xc0000084;
inline constexpr u32 kMsrFsBase = 0xc0000100;
inline constexpr u32 kMsrGsBase = 0xc0000101;
inline constexpr u32 kMsrKernelGsBase = 0xc0000102;
inline constexpr u32 kMsrApicBase = 0x1b;

inline constexpr u64 kRflagsIf = 1ull << 9;

// ---------------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------------
template <typename T>
inline T* phys_ptr(u64 phys) {
  return reinterpret_cast<T*>(kDirectMapBase + phys);
}
inline u64 virt_to_phys_direct(const void* p) { return u64(p) - kDirectMapBase; }
inline u64 kernel_virt_to_phys(const void* p) { return u64(p) - kKernelBase; }

// A spinlock for the HAL's own data. It disables interrupts while held, so an interrupt
// handler on the same CPU can never spin on a lock its own CPU holds.
class SpinLock {
 public:
  IrqFlags lock();
  void unlock(IrqFlags flags);
  bool try_lock_for(u64 spins, IrqFlags* flags);
  bool held_by_me() const;

 private:
  volatile u32 m_locked = 0;
  volatile u32 m_owner = ~0u;
};

// ---------------------------------------------------------------------------------------------
// CPU features, found once on the boot CPU.
// ---------------------------------------------------------------------------------------------
struct Features {
  bool nx, pdpe1gb, smep, smap, rdrand, xsave, avx, pge, invariant_tsc;
  u32 xsave_size;  // bytes of the XSAVE area for the features enabled in XCR0
  u64 xcr0;
};
extern Features g_features;

// ---------------------------------------------------------------------------------------------
// Per-CPU block. GS base points at it while the CPU runs kernel code. Assembly reaches the first
// fields through fixed offsets (static_asserted in cpu.cpp).
// ---------------------------------------------------------------------------------------------

struct Tss {
  u32 reserved0;
  u64 rsp[3];
  u64 reserved1;
  u64 ist[7];
  u64 reserved2;
  u16 reserved3;
  u16 iomap_base;
} __attribute__((packed));

struct PerCpu {
  PerCpu* self;          // 0: for reading the block's address through %gs:0
  u64 kernel_rsp;        // 8: top of the running context's kernel stack (SYSCALL entry)
  u64 user_rsp;          // 16: scratch for the user RSP during SYSCALL entry
  u32 id;                // 24: hal::cpu_id()
  u32 apic_id;           // 28
  void* core_local;      // 32: hal::cpu_local()
  Context* current;      // 40: the running context
  // Not reached from assembly.
  u64 gdt[9];
  Tss tss;
  u64 timer_deadline;  // monotonic ns, 0 = disarmed
  // What the LAPIC timer is counting down to (monotonic ns, 0: stopped or fired), and whether
  // its LVT entry is already one-shot and unmasked: arm() skips the register writes that would
  // change nothing (each is an exit to the emulator, which takes QEMU's global lock).
  u64 timer_programmed;
  u32 timer_lvt_armed;
  u64 boot_stack_top;
  u64 fault_address;  // the last user-copy fault, for the retry logic
  u32 fault_access;
  u32 exception_depth;  // nested fatal exceptions, to stop a dump that faults
  volatile u32 online;
  volatile u32 nmi_count;  // NMIs handled, so a panicking CPU knows a backtrace was printed
  volatile u32 tlb_pending;   // a shootdown asks this CPU to flush (tlb.cpp)
  volatile u64 active_pml4;   // physical address of the loaded user page table, 0 for none
  volatile u64 last_tick_ns;  // the watchdog's heartbeat: last timer interrupt (watchdog.cpp)
  // Bumped by this CPU at context switches, system calls and idle halts; the watchdog's timer
  // check remembers when it last changed (soft lockups).
  volatile u32 progress;
  u32 progress_seen;
  u64 progress_seen_ns;
  // Set while the CPU sits in `sti; hlt` (cpu_idle_wait): interrupts are on there, so a missing
  // timer tick means the machine (an emulator the host did not run) is late, not that the CPU
  // is stuck with interrupts off; the watchdog does not accuse it.
  volatile u32 halted;
};
extern PerCpu g_cpus[kMaxCpus];
extern u32 g_cpu_count;

inline PerCpu* this_cpu() {
  PerCpu* p;
  asm volatile("mov %%gs:0, %0" : "=r"(p));
  return p;
}

// ---------------------------------------------------------------------------------------------
// Console and log (serial.cpp).
// ---------------------------------------------------------------------------------------------
void serial_init();
// Console input (serial.cpp): routes the UART's receive interrupt (ISA IRQ 4, through the MADT's
// override if any) to CPU 0 and turns it on. Called by ioapic_init, once the IOAPIC is mapped.
void serial_input_init();
// Whether `vector` is the console input's (false until serial_input_init routed it).
bool serial_input_vector(u8 vector);
// The handler: moves the UART's bytes into the input ring, sends the EOI, and calls
// kentry::console_input(). Interrupts disabled.
void serial_input_interrupt();
// Kernel log: "[tandem] " + a printf subset (%s %c %d %u %x %p with the l and ll modifiers, and a
// zero-padded width such as %016lx), one line per call with the newline added.
void klog(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// The same without the prefix and without a trailing newline.
void kprint(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Raw serial output that bypasses the console lock (panic path, NMI on a CPU holding the lock).
void serial_write_raw(const char* s, size_t n);
// Lets a panicking CPU print even while another CPU holds the console lock.
void console_break_lock();

// ---------------------------------------------------------------------------------------------
// Boot (main.cpp) and power (power.cpp).
// ---------------------------------------------------------------------------------------------
struct HvmStartInfo;
[[noreturn]] void power_off_code(u32 code);
bool panicking();  // some CPU is in hal::panic
[[noreturn]] void halt_forever();

// ---------------------------------------------------------------------------------------------
// Memory (memory.cpp).
// ---------------------------------------------------------------------------------------------
struct MemRange {
  u64 base, end;
};
// Sets up the physical allocator from the PVH memory map, excluding `reserved` ranges.
void phys_init(const MemRange* ram, u32 ram_count, const MemRange* reserved, u32 reserved_count);
u64 phys_alloc_zeroed();
// Builds the final kernel page tables (direct map, kernel image, stack region) and loads them.
void paging_init(u64 top_of_ram);
u64 kernel_pml4_phys();
// Maps one 4 KiB kernel page in the shared kernel half (stack region); false when out of memory.
bool kernel_map_page(u64 virt, u64 phys, bool writable);
// Maps one 4 KiB page of device memory, uncached, in the shared kernel half (pci.cpp's MMIO
// window); false when out of memory.
bool kernel_map_mmio_page(u64 virt, u64 phys);
// True when `virt` is mapped in the active page tables (for the stack walker).
bool kernel_address_mapped(u64 virt);

// ---------------------------------------------------------------------------------------------
// CPU setup (cpu.cpp) and traps (traps.cpp).
// ---------------------------------------------------------------------------------------------
void features_init();
void cpu_init(u32 id, u32 apic_id, u64 boot_stack_top);  // GDT, TSS, IDT, GS, FPU, SYSCALL
void idt_build();
// Prints the frame-pointer chain starting at rbp.
void print_backtrace(u64 rip, u64 rbp);

// ---------------------------------------------------------------------------------------------
// APIC, timer, time (apic.cpp, time.cpp).
// ---------------------------------------------------------------------------------------------
struct MadtInfo {
  u32 cpu_count;
  u32 apic_ids[kMaxCpus];
  u64 lapic_phys;
  u64 ioapic_phys;
  u32 ioapic_gsi_base;
  u32 isa_gsi[16];        // ISA IRQ -> GSI after interrupt source overrides
  u16 isa_flags[16];      // MPS INTI flags of the override (polarity, trigger)
  bool found;
};
extern MadtInfo g_madt;
void acpi_init(u64 rsdp_phys);
void pic_disable();
void lapic_init_this_cpu();
void lapic_eoi();
u32 lapic_id();
void lapic_send_init_sipi(u32 apic_id, u8 vector_page);
void ioapic_init();
// Routes a GSI to a vector on CPU 0 (edge/level and polarity from the ACPI override when it is an
// ISA IRQ); the IRQ stays masked until unmasked.
void ioapic_route(u32 gsi, bool unmask);
void time_init();  // calibrates TSC and LAPIC timer against the PIT, reads the RTC
void timer_interrupt();
void delay_us(u64 us);
void smp_prepare();  // copies the AP trampoline below 1 MiB

// TLB shootdowns (tlb.cpp) and the watchdog (watchdog.cpp).
// Flushes this CPU's TLB when a shootdown asked it to and acknowledges; cheap when none did.
void tlb_service();
// Records the user page table this CPU is about to load (pt_activate), before the CR3 write.
void note_active_table(u64 pml4_phys);
// Work every spin loop that may run with interrupts disabled does: answer shootdowns, so a CPU
// waiting for a lock never blocks the lock holder's shootdown, and check the watchdog.
void spin_hook();
// The watchdog: each CPU's timer interrupt is its heartbeat, and the HAL keeps every CPU's timer
// firing at least every kWatchdogTickNs. A CPU that sees another's (or its own, in a spin loop)
// heartbeat older than the timeout stops the machine with every CPU's backtrace.
inline constexpr u64 kWatchdogTickNs = 500'000'000;
void watchdog_init(const char* cmdline);  // reads watchdog=SECONDS (0 disables; default 10)
void watchdog_arm();                      // every CPU is online: start checking
void watchdog_heartbeat();                // from the timer interrupt
void watchdog_check();                    // from the timer interrupt and spin loops
// From the timer interrupt: a CPU that ticks but stays in the kernel without a context switch,
// a system call, user mode or an idle halt for twice the timeout is in a soft lockup.
void watchdog_soft_check(bool from_user, u64 rip, u64 rbp);
inline void note_progress() {
  PerCpu* cpu = this_cpu();
  cpu->progress = cpu->progress + 1;  // only this CPU writes it
}
u64 watchdog_clamp_deadline(u64 deadline_ns);  // the LAPIC deadline, at most one tick ahead
// `watchdog-test` on the command line: no kernel runs; the last CPU spins with interrupts off
// (raw pause, or cpu_relax on a single CPU, which must then notice itself) and the others idle.
extern bool g_watchdog_test;
extern bool g_watchdog_test_soft;  // `watchdog-test=soft`: the CPU spins with interrupts enabled
[[noreturn]] void watchdog_test_cpu();

// Context internals (context.cpp) that traps.cpp and cpu.cpp need.
u64 context_fs_base(Context* c);
const char* context_name(Context* c);  // "unnamed" when core gave none
void context_set_fs_base(Context* c, u64 fs);
u64 slot_alloc_stack_top();  // a guarded kernel stack for IST or AP boot, never freed

}  // namespace hal::real
