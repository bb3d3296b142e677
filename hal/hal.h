// hal/hal.h: the contract between tandem's kernel core and the machine under it.
//
// core/ includes this header and nothing else outside core/. Two libraries implement it:
// hal/real (x86-64 under QEMU) and hal/sim (the deterministic SMP simulator). The choice is
// made by the build, never by an #ifdef in core/. Everything here is plain functions and
// plain types; the few per-target inline hooks come from <hal_target.h>, which each target
// puts on the include path.
//
// Calls go both ways: the functions in namespace hal are implemented by the target and called
// by core/; the functions in namespace kentry are implemented by core/ and called by the
// target when something happens (a system call, an interrupt, a fault, a CPU coming up).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hal {

using u8 = uint8_t;
using u16 = uint16_t;
using u32 = uint32_t;
using u64 = uint64_t;
using i32 = int32_t;
using i64 = int64_t;

// Bugs that the simulator can plant into core/ for its explorer to find. In the booted kernel
// `planted()` is a constexpr false, so every planted branch compiles to nothing.
enum class Plant : u8 {
  None = 0,
  FutexCheckUnlocked,  // futex wait compares and enqueues without the bucket lock
  FutexWakeNoLock,     // futex wake decides "no waiters" without the bucket lock
  LostIpi,             // the idle loop checks for work with interrupts on, then halts
  MissingShootdown,    // munmap flushes only the calling CPU's TLB, not the other CPUs'
  Count,
};

// What a scheduling point is, for the simulator's traces. Ignored by the booted kernel.
enum class Point : u8 {
  Atomic,      // an atomic operation in core/lib
  Lock,        // a spinlock acquire or release step
  Relax,       // a spin-wait iteration
  Hal,         // any other HAL call
  SyscallIn,   // entry into the kernel from user mode
  SyscallOut,  // return to user mode
  User,        // a user-mode memory access (simulator user programs)
  Switch,      // a kernel context switch
};

}  // namespace hal

#include <hal_target.h>  // sched_point(), planted(): inline per target

namespace hal {

// ---------------------------------------------------------------------------------------------
// CPUs
// ---------------------------------------------------------------------------------------------

inline constexpr u32 kMaxCpus = 64;

u32 cpu_id();     // the CPU running the caller
u32 cpu_count();  // CPUs online; ids are 0..cpu_count()-1

using IrqFlags = u64;
IrqFlags irq_save();  // disables interrupts, returns the previous state
void irq_restore(IrqFlags flags);
void irq_enable();
void irq_disable();
bool irq_enabled();

// Precondition: interrupts disabled. Atomically enables interrupts and halts this CPU until
// an interrupt arrives (x86 `sti; hlt`); returns with interrupts disabled again, after the
// interrupt's handler ran. An interrupt that became pending before the call makes it return
// at once: a wake-up cannot be lost between the caller's last check and the halt.
void cpu_idle_wait();

// A spin-wait hint (x86 `pause`).
void cpu_relax();

// Per-CPU pointer owned by core/ (GS base on hardware).
void cpu_local_set(void* p);
void* cpu_local();

enum class Ipi : u8 {
  Reschedule,    // the target has new work on its run queue
  TlbShootdown,  // the target must flush its TLB entries of an address space
  Backtrace,     // the watchdog asks every CPU for its backtrace (NMI on hardware)
};
void send_ipi(u32 cpu, Ipi kind);

// Stops the machine (hardware) or fails the current run (simulator). Never returns.
[[noreturn]] void panic(const char* message);

// Boot information the target hands to core/ on hardware (the simulator builds its kernels
// itself). initrd_phys/initrd_size describe the -initrd module; 0 when there is none.
struct BootInfo {
  const char* cmdline;
  u64 initrd_phys;
  u64 initrd_size;
  u64 memory_bytes;
};
// Starts every other CPU; each enters kentry::cpu_main(kernel, id). Called once by CPU 0.
void start_secondary_cpus(void* kernel);

// The first program (PID 1) exited: the machine stops. On hardware this prints the fixed
// status line the runner reads and powers off; in the simulator it ends the run once every
// CPU is quiescent. `status` is a wait(2) status word (exit code << 8, or the signal number).
void shutdown(int wait_status);

// Raw console output (serial port on hardware, a buffer in the simulator).
void console_write(const char* bytes, size_t length);
// Console input: returns the number of bytes read, 0 when none are available now. Never blocks.
// Input is interrupt-driven: the target keeps what arrives until core takes it here, and calls
// kentry::console_input() each time more has arrived, so core never needs to look again by
// itself. Callable from any CPU, with kernel locks held and interrupts disabled.
size_t console_read(char* bytes, size_t capacity);

// Entropy for AT_RANDOM and getrandom (RDRAND on hardware, the seeded PRNG in the simulator).
void random_bytes(void* out, size_t length);

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

u64 monotonic_ns();  // since boot, never goes backwards, the same on every CPU
u64 realtime_ns();   // wall clock, nanoseconds since the Unix epoch
// Arms this CPU's one-shot timer to fire when monotonic_ns() >= deadline; 0 disarms it.
// The interrupt arrives as kentry::interrupt(Vector::Timer, ...).
void timer_set_deadline(u64 deadline_ns);

// ---------------------------------------------------------------------------------------------
// Kernel contexts: each kernel thread has a stack and a saved register set (a fiber in the
// simulator). FS base and the FPU/SSE state travel with the context.
// ---------------------------------------------------------------------------------------------

struct Context;

// Creates a context that starts by calling entry(arg) on a fresh kernel stack. entry must never
// return. Returns nullptr when out of memory.
Context* context_create(void (*entry)(void* arg), void* arg);
// Wraps the stack the caller is running on (a CPU's boot stack) so it can be switched away
// from; a CPU's idle thread uses it.
Context* context_adopt_current();
// Names a context for traces and backtraces (e.g. "tid 7"); the name must outlive it.
void context_set_name(Context* context, const char* name);
// Frees a context; it must not be running on any CPU.
void context_destroy(Context* context);
// Saves the running context into `from` and resumes `to` on this CPU.
void context_switch(Context* from, Context* to);

// The user FS base (TLS pointer) of the running context: arch_prctl(ARCH_SET_FS/GET_FS).
void set_fs_base(u64 value);
u64 get_fs_base();

// ---------------------------------------------------------------------------------------------
// User mode
// ---------------------------------------------------------------------------------------------

// The user register file at a system call, an interrupt or a fault taken in user mode.
// x86-64 names; the simulator uses the same meaning (rip names a registered entry point).
struct UserFrame {
  u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
  u64 r8, r9, r10, r11, r12, r13, r14, r15;
  u64 rip, rflags, fs_base;
};

// Starts user execution with `frame` on the current kernel context (iretq on hardware; on the
// simulator, calls the entry point that frame.rip names). Does not return: the thread comes
// back into the kernel only through kentry::syscall, interrupts and faults.
[[noreturn]] void enter_user(const UserFrame& frame);

// The user FPU/SSE state of the running thread, saved into and restored from a signal frame, in
// FXSAVE format (x87 and SSE; 16-byte aligned area). The simulator has no FPU: it writes zeros.
inline constexpr size_t kUserFpuStateSize = 512;
void user_fpu_save(void* area);
// Loads `area` (from user memory: reserved MXCSR bits are cleared first, so it cannot fault).
void user_fpu_restore(void* area);

// ---------------------------------------------------------------------------------------------
// Memory: physical pages, page tables, user copies
// ---------------------------------------------------------------------------------------------

inline constexpr u64 kPageSize = 4096;
inline constexpr u64 kUserTop = 0x0000'8000'0000'0000ull;  // user addresses are below this

// Physical pages. Returns 0 when none is left. The page's contents are undefined.
u64 phys_alloc_page();
void phys_free_page(u64 phys);
// The kernel's view of a physical page.
void* phys_to_virt(u64 phys);
// Physical memory for /proc/meminfo and sysinfo: the pages the allocator manages, and how
// many of them are free now.
struct PhysStats {
  u64 total_pages;
  u64 free_pages;
};
PhysStats phys_stats();

enum PageFlags : u32 {
  kPageRead = 1u << 0,
  kPageWrite = 1u << 1,
  kPageExec = 1u << 2,
};

struct PageTable;  // one per address space; the kernel half is shared by all
PageTable* pt_create();
void pt_destroy(PageTable* table);  // frees the table pages, not the mapped pages
// Maps one user page. Returns false when a table page cannot be allocated.
bool pt_map(PageTable* table, u64 virt, u64 phys, u32 flags);
// Unmaps one user page and returns its physical address, or 0 when it was not mapped.
u64 pt_unmap(PageTable* table, u64 virt);
// Changes the flags of a mapped page; false when it was not mapped.
bool pt_protect(PageTable* table, u64 virt, u32 flags);
// Looks a page up; false when not mapped.
bool pt_query(PageTable* table, u64 virt, u64* phys, u32* flags);
// Makes `table` this CPU's active address space; null leaves only the kernel mapped.
void pt_activate(PageTable* table);
// Invalidates this CPU's TLB entries for [virt, virt + length) of the active table.
void tlb_flush_local(u64 virt, u64 length);
// Invalidates the TLB entries for [virt, virt + length) of `table` on every CPU that may have
// it active, this one included, and returns only once each of them has done so (an IPI and
// its acknowledgement on hardware). Core calls it after pt_unmap/pt_protect and before the
// unmapped pages go back to the allocator, so no CPU can reach a freed page through a stale
// entry. Callable with interrupts disabled and kernel locks held: a CPU that waits for one,
// or spins in cpu_relax(), still answers shootdowns. Not from NMI context.
void tlb_shootdown(PageTable* table, u64 virt, u64 length);
// Shootdowns so far, machine-wide (`stats` prints them): requests that had other CPUs to ask,
// the IPIs they sent, and how long their initiators waited for the acknowledgements (in all,
// and the longest). The simulator asks no CPU by IPI: it counts every request, nothing else.
struct ShootdownStats {
  u64 requests;
  u64 ipis;
  u64 wait_ns;
  u64 longest_wait_ns;
};
ShootdownStats tlb_shootdown_stats();

// Copies to and from user memory of the active address space. A missing page is first offered
// to kentry::page_fault (demand paging, copy-on-write); a fault it cannot resolve makes the copy
// return false, which core/ turns into EFAULT. They never crash on a bad user pointer.
bool copy_from_user(void* dst, u64 user_src, size_t length);
bool copy_to_user(u64 user_dst, const void* src, size_t length);
// Atomic compare-exchange on a user word (futex WAKE_OP, robust lists). Returns false on a fault;
// otherwise stores the value seen into *seen.
bool user_cmpxchg32(u64 user_addr, u32 expected, u32 desired, u32* seen);

// ---------------------------------------------------------------------------------------------
// Devices: PCI configuration space, MMIO through BARs, MSI(-X) interrupts. core/ reaches devices
// only through these calls, so hal/sim can route them to the fake devices of sim/ (and the
// booted kernel to QEMU's). DMA memory is phys_alloc_page()/phys_to_virt(): devices see
// physical addresses.
// ---------------------------------------------------------------------------------------------

// PCI configuration space of bus/device/function (device < 32, function < 8), offset < 256;
// `size` is 1, 2 or 4 bytes and offset is aligned to it. A function that does not exist reads
// as all ones (vendor id 0xffff), and writes to it are ignored.
struct PciAddress {
  u8 bus, device, function;
};
u32 pci_config_read(PciAddress address, u32 offset, u32 size);
void pci_config_write(PciAddress address, u32 offset, u32 size, u32 value);

// Maps the physical MMIO range [phys, phys + length) (a BAR, or part of one) uncached, once, and
// returns a handle for mmio_read/mmio_write: handle + offset addresses byte `offset` of the
// range. 0 when it cannot be mapped. Mappings are never undone (devices are found at boot).
u64 mmio_map(u64 phys, u64 length);
// Device register access; `size` is 1, 2, 4 or 8 bytes, `address` is aligned to it. Each access
// is a single uncached load or store, in program order with the others and with DMA memory.
u64 mmio_read(u64 address, u32 size);
void mmio_write(u64 address, u32 size, u64 value);

// The MSI/MSI-X message (written by the device to `address`, with `data`) that makes `cpu` take
// kentry::interrupt(Vector::Device, irq, ...). Allocates a fresh irq each call; false when
// none is left. Irqs of MSI messages never collide with the IOAPIC's (GSIs).
struct MsiMessage {
  u64 address;
  u32 data;
};
bool msi_allocate(u32 cpu, MsiMessage* message, u32* irq);

}  // namespace hal

// -------------------------------------------------------------------------------------------------
// Upcalls: implemented by core/, called by the target.
// -------------------------------------------------------------------------------------------------
namespace kentry {

enum class Vector : hal::u8 {
  Timer,
  IpiReschedule,
  IpiTlbShootdown,
  IpiBacktrace,
  Device,  // external device interrupt; `irq` names it
};

// Hardware only: CPU 0 calls this once the machine is set up (memory, console, interrupts).
// Core builds its kernel instance, starts the other CPUs and becomes CPU 0's idle thread.
[[noreturn]] void boot(const hal::BootInfo& info);

// A CPU comes up: CPU 0 first with the boot configuration; the others after CPU 0 asked for
// them. Never returns: the CPU becomes its idle thread.
[[noreturn]] void cpu_main(void* kernel, hal::u32 cpu);

// A system call from user mode. The number is in frame.rax, arguments in rdi, rsi, rdx, r10,
// r8, r9; the result goes back into frame.rax. Core may change the frame (signal delivery).
void syscall(hal::UserFrame& frame);

// An interrupt. `user` is the interrupted user frame when it came from user mode, else null.
// Core may switch threads before returning when it came from user mode.
void interrupt(Vector vector, hal::u32 irq, hal::UserFrame* user);

// Console input arrived: hal::console_read() now returns at least one byte (until someone takes
// it). Called in interrupt context, with interrupts disabled and no core lock held, on any CPU
// and possibly before core has set up that CPU (hal::cpu_local() still null): core then ignores
// it, and the bytes wait for the first read. Core only wakes waiters here; it never switches
// threads, so the target returns to the interrupted code as from any other device interrupt.
void console_input();

// The machine is stuck and about to stop (a panic, after every CPU's backtrace): core prints
// what it knows of its state, reading without locks (their holders may be the stuck ones).
void dump_state();

// A page fault on a user address, from user mode or from a user copy in the kernel. Returns
// true when resolved (the access is retried).
enum FaultAccess : hal::u32 { kFaultRead = 0, kFaultWrite = 1, kFaultExec = 2 };
bool page_fault(hal::u64 address, hal::u32 access);

// A fault in user mode that is not a resolvable page fault (bad address, invalid opcode,
// divide error...). Core delivers the signal or kills the process; when it returns, the
// thread continues with the possibly changed frame.
enum class UserFault : hal::u8 { Segv, Bus, Ill, Fpe, Trap };
void user_fault(UserFault fault, hal::u64 address, hal::UserFrame& frame);

}  // namespace kentry
