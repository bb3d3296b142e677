// hal/real/src/main.cpp: the boot CPU's path from the PVH entry to kentry::boot, and the ways the
// machine stops (panic, power off).
#include "arch.h"
#include "hal_real.h"

extern "C" char __kernel_phys_start[], __kernel_phys_end[];
extern "C" char boot_stack_top[];
extern "C" void (*__init_array_start[])();
extern "C" void (*__init_array_end[])();

namespace hal::real {

// The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h).
struct HvmStartInfo {
  u32 magic, version, flags, nr_modules;
  u64 modlist_paddr, cmdline_paddr, rsdp_paddr;
  u64 memmap_paddr;  // version 1 and later
  u32 memmap_entries, reserved;
};
struct HvmModule {
  u64 paddr, size, cmdline_paddr, reserved;
};
struct HvmMemmapEntry {
  u64 addr, size;
  u32 type, reserved;
};
constexpr u32 kHvmMagic = 0x336ec578;
constexpr u32 kMemRam = 1;

namespace {

// Before paging_init only the first GiB is mapped (by the boot tables).
constexpr u64 kEarlyMapped = 1ull << 30;

char g_cmdline[4096];
volatile u32 g_panic_cpu = ~0u;

[[noreturn]] void boot_fail(const char* why) {
  klog("PANIC: bad boot information: %s", why);
  power_off_code(kExitPanic);
}

bool has_word(const char* line, const char* word) {
  for (const char* p = line; *p; ++p) {
    if (p != line && p[-1] != ' ') continue;
    u32 i = 0;
    while (word[i] && p[i] == word[i]) ++i;
    if (!word[i] && (p[i] == 0 || p[i] == ' ')) return true;
  }
  return false;
}

bool early_range_ok(u64 phys, u64 size) {
  return phys && size <= kEarlyMapped && phys <= kEarlyMapped - size;
}

}  // namespace

void power_off_code(u32 code) {
  irq_disable();
  outl(0xf4, code);
  // Only reached without the isa-debug-exit device.
  serial_write_raw("[tandem] no isa-debug-exit device; halting\n", 43);
  halt_forever();
}

void halt_forever() {
  for (;;) asm volatile("cli; hlt");
}

void power_off(int status) {
  // The runner (qemu/run-kernel) reads this line for the exact status; the isa-debug-exit code
  // only carries 7 bits of it.
  klog("shutdown: exit status %d", status);
  u32 code = u32(status) & 0x7f;
  if (code == kExitPanic) code = kExitPanic + 1;  // keep the panic status unambiguous
  power_off_code(code);
}

[[noreturn]] static void panic_impl(const char* message, bool trace) {
  irq_disable();
  u32 me = cpu_id();
  u32 expected = ~0u;
  if (!__atomic_compare_exchange_n(&g_panic_cpu, &expected, me, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    if (expected == me) {
      serial_write_raw("[tandem] PANIC: recursive panic\n", 32);
      power_off_code(kExitPanic);
    }
    halt_forever();  // another CPU is reporting; it will stop the machine
  }
  console_break_lock();
  klog("PANIC: cpu %u: %s", me, message);
  klog("context %s", context_name(this_cpu()->current));
  if (trace) {
    auto* frame = static_cast<u64*>(__builtin_frame_address(0));
    print_backtrace(u64(__builtin_return_address(0)), frame[0]);
  }
  // The other CPUs' backtraces, one CPU at a time so their lines do not interleave (the console
  // lock is broken now). A CPU that does not answer within the spin budget is skipped.
  for (u32 i = 0; i < g_cpu_count; ++i) {
    if (i == me || !g_cpus[i].online) continue;
    u32 before = __atomic_load_n(&g_cpus[i].nmi_count, __ATOMIC_ACQUIRE);
    send_ipi(i, Ipi::Backtrace);
    for (u32 spin = 0; spin < 20'000'000; ++spin) {
      if (__atomic_load_n(&g_cpus[i].nmi_count, __ATOMIC_ACQUIRE) != before) break;
      asm volatile("pause");
    }
  }
  // Who waits for what (threads, their system calls, lock owners); only once core is running.
  if (this_cpu()->current != nullptr) kentry::dump_state();
  power_off_code(kExitPanic);
}

bool panicking() { return __atomic_load_n(&g_panic_cpu, __ATOMIC_ACQUIRE) != ~0u; }

void panic_after_dump(const char* message) { panic_impl(message, false); }

}  // namespace hal::real

using namespace hal;
using namespace hal::real;

void hal::panic(const char* message) { panic_impl(message, true); }

void hal::shutdown(int wait_status) {
  // A wait(2) status: the exit code in bits 8-15, or a signal number in bits 0-6. The machine's
  // status follows the shell's convention: the exit code, or 128 + the signal.
  int signal = wait_status & 0x7f;
  int status = signal ? 128 + signal : (wait_status >> 8) & 0xff;
  if (signal) klog("pid 1 was killed by signal %d", signal);
  power_off(status);
}

extern "C" [[noreturn]] void hal_real_main(u32 start_info_phys) {
  // GS first, even before the console: the console lock asks for cpu_id().
  g_cpus[0].self = &g_cpus[0];
  wrmsr(kMsrGsBase, u64(&g_cpus[0]));
  serial_init();
  idt_build();  // from here on an exception is reported on the console, not a triple fault
  klog("hal/real: PVH entry, start info at %x", start_info_phys);

  if (!early_range_ok(start_info_phys, sizeof(HvmStartInfo))) boot_fail("start info address");
  const auto* si = phys_ptr<HvmStartInfo>(start_info_phys);
  if (si->magic != kHvmMagic) boot_fail("start info magic is not 0x336ec578 (not a PVH boot?)");
  if (si->version < 1 || !si->memmap_entries) boot_fail("no memory map (start info version 0)");
  if (!early_range_ok(si->memmap_paddr, u64(si->memmap_entries) * sizeof(HvmMemmapEntry))) {
    boot_fail("memory map address");
  }
  features_init();

  // The command line, copied: its page is not reserved from the allocator.
  if (si->cmdline_paddr && early_range_ok(si->cmdline_paddr, 1)) {
    const char* src = phys_ptr<const char>(si->cmdline_paddr);
    for (u32 i = 0; i + 1 < sizeof(g_cmdline) && src[i]; ++i) g_cmdline[i] = src[i];
  }
  u64 initrd_phys = 0, initrd_size = 0;
  if (si->nr_modules) {
    if (!early_range_ok(si->modlist_paddr, sizeof(HvmModule))) boot_fail("module list address");
    const auto* mod = phys_ptr<HvmModule>(si->modlist_paddr);
    initrd_phys = mod->paddr;
    initrd_size = mod->size;
  }

  constexpr u32 kMaxRam = 64;
  MemRange ram[kMaxRam];
  u32 ram_count = 0;
  u64 memory_bytes = 0, top_of_ram = 0;
  const auto* map = phys_ptr<HvmMemmapEntry>(si->memmap_paddr);
  for (u32 i = 0; i < si->memmap_entries; ++i) {
    if (map[i].type != kMemRam || !map[i].size) continue;
    memory_bytes += map[i].size;
    u64 end = map[i].addr + map[i].size;
    if (end > top_of_ram) top_of_ram = end;
    if (ram_count < kMaxRam) ram[ram_count++] = {map[i].addr, end};
  }
  if (!memory_bytes) boot_fail("the memory map has no RAM");
  MemRange reserved[] = {
      {u64(__kernel_phys_start), u64(__kernel_phys_end)},
      {initrd_phys, initrd_phys + initrd_size},
  };
  phys_init(ram, ram_count, reserved, initrd_size ? 2 : 1);
  paging_init(top_of_ram);

  cpu_init(0, cpuid(1).ebx >> 24, u64(boot_stack_top));

  acpi_init(si->rsdp_paddr);
  pic_disable();
  lapic_init_this_cpu();
  g_cpus[0].apic_id = lapic_id();
  ioapic_init();
  time_init();
  smp_prepare();

  klog("cpu: %s%s%s%s%s, xsave area %u bytes", g_features.xsave ? "xsave " : "fxsave ",
       g_features.avx ? "avx " : "", g_features.smap ? "smap " : "",
       g_features.rdrand ? "rdrand " : "", g_features.pdpe1gb ? "1g-pages" : "2m-pages",
       g_features.xsave_size);
  klog("boot: %lu MiB RAM, initrd %lx+%lu, cmdline \"%s\"", memory_bytes >> 20, initrd_phys,
       initrd_size, g_cmdline);
  g_cpus[0].online = 1;
  klog("cpu 0 online (apic id %u)", g_cpus[0].apic_id);

  // Static constructors (core's, if it has any) run last, so they may use any HAL function.
  for (auto** ctor = __init_array_start; ctor != __init_array_end; ++ctor) (*ctor)();
  watchdog_init(g_cmdline);
  g_watchdog_test_soft = has_word(g_cmdline, "watchdog-test=soft");
  if (has_word(g_cmdline, "watchdog-test") || g_watchdog_test_soft) {
    g_watchdog_test = true;
    start_secondary_cpus(nullptr);
    watchdog_test_cpu();
  }
  BootInfo info{g_cmdline, initrd_phys, initrd_size, memory_bytes};
  kentry::boot(info);
}
