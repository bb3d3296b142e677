// hal/real/src/apic.cpp: ACPI MADT, the legacy PIC, the local APIC (xAPIC, MMIO), the IOAPIC,
// inter-processor interrupts and the start of secondary CPUs.
#include "arch.h"

extern "C" char ap_trampoline_start[], ap_trampoline_end[], ap_trampoline_data[];
extern "C" char ap_entry64[];
extern "C" char boot_pml4[];
// Read by ap_entry64 (trampoline.S) while one AP starts; smp.cpp starts them one at a time.
extern "C" hal::u64 g_ap_kernel_cr3, g_ap_stack_top;
hal::u64 g_ap_kernel_cr3 = 0, g_ap_stack_top = 0;

namespace hal::real {

MadtInfo g_madt;

namespace {

constexpr u64 kTrampolinePhys = 0x8000;

// Local APIC register offsets.
constexpr u32 kLapicId = 0x20, kLapicTpr = 0x80, kLapicEoi = 0xb0, kLapicSvr = 0xf0;
constexpr u32 kLapicIcrLow = 0x300, kLapicIcrHigh = 0x310, kLapicLvtTimer = 0x320;
constexpr u32 kLapicLvtLint0 = 0x350, kLapicLvtLint1 = 0x360, kLapicLvtError = 0x370;
constexpr u32 kLapicEsr = 0x280;
constexpr u32 kLvtMasked = 1u << 16;

volatile u32* g_lapic = nullptr;
volatile u32* g_ioapic = nullptr;
u32 g_ioapic_entries = 0;
void* g_kernel = nullptr;

u32 lapic_read(u32 reg) { return g_lapic[reg / 4]; }
void lapic_write(u32 reg, u32 v) { g_lapic[reg / 4] = v; }

u32 ioapic_read(u32 reg) {
  g_ioapic[0] = reg;
  return g_ioapic[4];
}
void ioapic_write(u32 reg, u32 v) {
  g_ioapic[0] = reg;
  g_ioapic[4] = v;
}

bool checksum_ok(const void* p, u64 length) {
  u8 sum = 0;
  for (u64 i = 0; i < length; ++i) sum = u8(sum + static_cast<const u8*>(p)[i]);
  return sum == 0;
}

bool sig_is(const void* p, const char* sig, u32 n) {
  for (u32 i = 0; i < n; ++i) {
    if (static_cast<const char*>(p)[i] != sig[i]) return false;
  }
  return true;
}

struct __attribute__((packed)) Rsdp {
  char signature[8];
  u8 checksum;
  char oem[6];
  u8 revision;
  u32 rsdt;
  u32 length;
  u64 xsdt;
  u8 extended_checksum;
  u8 reserved[3];
};

struct __attribute__((packed)) SdtHeader {
  char signature[4];
  u32 length;
  u8 revision, checksum;
  char oem[6], oem_table[8];
  u32 oem_revision, creator, creator_revision;
};

u64 find_rsdp_in(u64 start, u64 end) {
  for (u64 p = start; p + sizeof(Rsdp) <= end; p += 16) {
    if (sig_is(phys_ptr<void>(p), "RSD PTR ", 8) && checksum_ok(phys_ptr<void>(p), 20)) return p;
  }
  return 0;
}

// The table must lie in the part of physical memory the direct map covers, and be sane, before
// any byte past its header is read: bad firmware data gives a message, not a fault.
const SdtHeader* map_table(u64 phys) {
  if (!phys || phys >= (1ull << 39)) return nullptr;
  auto* h = phys_ptr<SdtHeader>(phys);
  if (h->length < sizeof(SdtHeader) || h->length > (1u << 20)) return nullptr;
  if (!checksum_ok(h, h->length)) return nullptr;
  return h;
}

const SdtHeader* find_table(const Rsdp* rsdp, const char* sig) {
  bool use_xsdt = rsdp->revision >= 2 && rsdp->xsdt && checksum_ok(rsdp, 36);
  const SdtHeader* root = map_table(use_xsdt ? rsdp->xsdt : rsdp->rsdt);
  if (!root) return nullptr;
  u32 entry_size = use_xsdt ? 8 : 4;
  u32 count = (root->length - sizeof(SdtHeader)) / entry_size;
  auto* entries = reinterpret_cast<const u8*>(root) + sizeof(SdtHeader);
  for (u32 i = 0; i < count; ++i) {
    u64 phys = 0;
    for (u32 b = 0; b < entry_size; ++b) phys |= u64(entries[i * entry_size + b]) << (8 * b);
    const SdtHeader* t = map_table(phys);
    if (t && sig_is(t->signature, sig, 4)) return t;
  }
  return nullptr;
}

void parse_madt(const SdtHeader* madt, u32 bsp_apic_id) {
  auto* bytes = reinterpret_cast<const u8*>(madt);
  g_madt.lapic_phys = *reinterpret_cast<const u32*>(bytes + sizeof(SdtHeader));
  // The boot CPU is CPU 0 whatever its place in the table.
  g_madt.apic_ids[0] = bsp_apic_id;
  g_madt.cpu_count = 1;
  for (u32 off = sizeof(SdtHeader) + 8; off + 2 <= madt->length;) {
    u8 type = bytes[off], length = bytes[off + 1];
    if (length < 2 || off + length > madt->length) break;
    const u8* e = bytes + off;
    u32 apic_id = ~0u;
    bool enabled = false;
    if (type == 0 && length >= 8) {  // processor local APIC
      apic_id = e[3];
      enabled = *reinterpret_cast<const u32*>(e + 4) & 1;
    } else if (type == 9 && length >= 16) {  // processor local x2APIC
      apic_id = *reinterpret_cast<const u32*>(e + 4);
      enabled = *reinterpret_cast<const u32*>(e + 8) & 1;
    } else if (type == 1 && length >= 12 && !g_madt.ioapic_phys) {  // the first IOAPIC
      g_madt.ioapic_phys = *reinterpret_cast<const u32*>(e + 4);
      g_madt.ioapic_gsi_base = *reinterpret_cast<const u32*>(e + 8);
    } else if (type == 2 && length >= 10) {  // interrupt source override
      u8 irq = e[3];
      if (irq < 16) {
        g_madt.isa_gsi[irq] = *reinterpret_cast<const u32*>(e + 4);
        g_madt.isa_flags[irq] = *reinterpret_cast<const u16*>(e + 8);
      }
    }
    if (enabled && apic_id != bsp_apic_id) {
      if (apic_id > 0xff) {
        klog("cpu with APIC id %u skipped: xAPIC mode reaches ids up to 255", apic_id);
      } else if (g_madt.cpu_count == kMaxCpus) {
        klog("cpu with APIC id %u skipped: more than %u CPUs", apic_id, kMaxCpus);
      } else {
        g_madt.apic_ids[g_madt.cpu_count++] = apic_id;
      }
    }
    off += length;
  }
  g_madt.found = true;
}

void icr_wait() {
  for (u32 i = 0; i < 1'000'000 && (lapic_read(kLapicIcrLow) & (1u << 12)); ++i) cpu_relax();
}

void icr_send(u32 apic_id, u32 low) {
  IrqFlags flags = irq_save();
  icr_wait();
  lapic_write(kLapicIcrHigh, apic_id << 24);
  lapic_write(kLapicIcrLow, low);
  icr_wait();
  irq_restore(flags);
}

}  // namespace

void acpi_init(u64 rsdp_phys) {
  for (u32 i = 0; i < 16; ++i) g_madt.isa_gsi[i] = i;
  u32 bsp_apic_id = cpuid(1).ebx >> 24;
  g_madt.cpu_count = 1;
  g_madt.apic_ids[0] = bsp_apic_id;
  g_madt.lapic_phys = rdmsr(kMsrApicBase) & ~0xfffull;
  g_madt.ioapic_phys = 0;

  if (!rsdp_phys || !sig_is(phys_ptr<void>(rsdp_phys), "RSD PTR ", 8)) {
    // PVH start info without an RSDP: look where PC firmware puts it (the first KiB of the EBDA,
    // then the BIOS area 0xe0000-0xfffff).
    u64 ebda = u64(*phys_ptr<u16>(0x40e)) << 4;
    rsdp_phys = (ebda >= 0x80000 && ebda < 0xa0000) ? find_rsdp_in(ebda, ebda + 1024) : 0;
    if (!rsdp_phys) rsdp_phys = find_rsdp_in(0xe0000, 0x100000);
  }
  const SdtHeader* madt = nullptr;
  if (rsdp_phys) madt = find_table(phys_ptr<Rsdp>(rsdp_phys), "APIC");
  if (madt) {
    parse_madt(madt, bsp_apic_id);
  } else {
    klog("warning: no valid ACPI MADT (RSDP %lx); running on the boot CPU only", rsdp_phys);
  }
  if (!g_madt.ioapic_phys) g_madt.ioapic_phys = 0xfec00000;
  if (!g_madt.lapic_phys) g_madt.lapic_phys = 0xfee00000;
  g_cpu_count = g_madt.cpu_count;
  for (u32 i = 0; i < g_cpu_count; ++i) g_cpus[i].apic_id = g_madt.apic_ids[i];
  klog("acpi: %u cpus, lapic %lx, ioapic %lx (gsi base %u)", g_madt.cpu_count, g_madt.lapic_phys,
       g_madt.ioapic_phys, g_madt.ioapic_gsi_base);
}

void pic_disable() {
  // Remap the 8259s to vectors 0x20-0x2f (away from the exceptions) and mask every line: a
  // spurious IRQ 7 or 15 then shows up as a stray interrupt, never as a fake exception.
  outb(0x20, 0x11);
  outb(0xa0, 0x11);
  outb(0x21, 0x20);
  outb(0xa1, 0x28);
  outb(0x21, 0x04);
  outb(0xa1, 0x02);
  outb(0x21, 0x01);
  outb(0xa1, 0x01);
  outb(0x21, 0xff);
  outb(0xa1, 0xff);
}

void lapic_init_this_cpu() {
  if (g_madt.lapic_phys >= (4ull << 30)) panic("local APIC above 4 GiB");
  g_lapic = phys_ptr<u32>(g_madt.lapic_phys);
  wrmsr(kMsrApicBase, rdmsr(kMsrApicBase) | (1u << 11));  // global enable, xAPIC mode
  lapic_write(kLapicTpr, 0);
  lapic_write(kLapicLvtLint0, kLvtMasked);
  // LINT1 delivers NMIs, as on every PC: QEMU's monitor `nmi` (run-kernel sends one to every
  // CPU before a timeout) arrives there and prints each CPU's backtrace.
  constexpr u32 kLvtDeliveryNmi = 4u << 8;
  lapic_write(kLapicLvtLint1, kLvtDeliveryNmi);
  lapic_write(kLapicLvtError, kLvtMasked);
  lapic_write(kLapicLvtTimer, kLvtMasked | kVecTimer);
  lapic_write(kLapicEsr, 0);
  lapic_write(kLapicSvr, 0x100 | kVecSpurious);  // software enable, spurious vector
  lapic_write(kLapicEoi, 0);
}

void lapic_eoi() { lapic_write(kLapicEoi, 0); }
u32 lapic_id() { return lapic_read(kLapicId) >> 24; }

// Used by time.cpp for the timer; the register offsets stay private to this file.
u32 lapic_timer_read(u32 reg) { return lapic_read(reg); }
void lapic_timer_write(u32 reg, u32 v) { lapic_write(reg, v); }

void ioapic_init() {
  if (g_madt.ioapic_phys >= (4ull << 30)) panic("IOAPIC above 4 GiB");
  g_ioapic = phys_ptr<u32>(g_madt.ioapic_phys);
  g_ioapic_entries = ((ioapic_read(1) >> 16) & 0xff) + 1;
  // Every input masked; a driver routes and unmasks the ones it owns.
  for (u32 i = 0; i < g_ioapic_entries; ++i) {
    ioapic_write(0x10 + 2 * i, kLvtMasked | (kVecDeviceBase + i));
    ioapic_write(0x11 + 2 * i, 0);
  }
  // The one input the HAL owns itself: the serial console's receive interrupt (serial.cpp).
  serial_input_init();
}

void ioapic_route(u32 gsi, bool unmask) {
  u32 pin = gsi - g_madt.ioapic_gsi_base;
  if (gsi < g_madt.ioapic_gsi_base || pin >= g_ioapic_entries || gsi >= kMaxGsi) {
    klog("ioapic_route: GSI %u is not on the IOAPIC", gsi);
    return;
  }
  // ISA interrupts are edge/active-high unless an override says otherwise; PCI ones are
  // level/active-low.
  bool level = true, active_low = true;
  for (u32 irq = 0; irq < 16; ++irq) {
    if (g_madt.isa_gsi[irq] != gsi) continue;
    u16 f = g_madt.isa_flags[irq];
    active_low = (f & 3) == 3;
    level = ((f >> 2) & 3) == 3;
  }
  u32 low = (kVecDeviceBase + gsi) | (active_low ? 1u << 13 : 0) | (level ? 1u << 15 : 0) |
            (unmask ? 0 : kLvtMasked);
  ioapic_write(0x11 + 2 * pin, g_cpus[0].apic_id << 24);
  ioapic_write(0x10 + 2 * pin, low);
}

void smp_prepare() {
  u64 size = u64(ap_trampoline_end - ap_trampoline_start);
  u8* dst = phys_ptr<u8>(kTrampolinePhys);
  for (u64 i = 0; i < size; ++i) dst[i] = u8(ap_trampoline_start[i]);
}

}  // namespace hal::real

using namespace hal;
using namespace hal::real;

extern "C" [[noreturn]] void hal_real_ap_main(u32 id) {
  cpu_init(id, g_cpus[id].apic_id, g_ap_stack_top);
  lapic_init_this_cpu();
  // The log line comes before `online` is published: CPU 0 may go on to finish the whole boot
  // (and power off) as soon as it sees the flag, and a vCPU thread that a busy host deschedules
  // right after the store would otherwise never print it (the qemu.kernel.smp2 flake).
  klog("cpu %u online (apic id %u)", id, lapic_id());
  __atomic_store_n(&g_cpus[id].online, 1u, __ATOMIC_RELEASE);
  if (g_watchdog_test) watchdog_test_cpu();
  kentry::cpu_main(g_kernel, id);
}

namespace hal {

void send_ipi(u32 cpu, Ipi kind) {
  if (cpu >= g_cpu_count) {
    klog("send_ipi to cpu %u of %u", cpu, g_cpu_count);
    panic("send_ipi to a CPU that does not exist");
  }
  u32 low = 0;
  switch (kind) {
    case Ipi::Reschedule: low = kVecReschedule; break;
    case Ipi::TlbShootdown: low = kVecTlbShootdown; break;
    case Ipi::Backtrace: low = 4u << 8; break;  // NMI delivery mode: arrives even with IF = 0
  }
  icr_send(g_cpus[cpu].apic_id, low);
}

void start_secondary_cpus(void* kernel) {
  g_kernel = kernel;
  auto* data = reinterpret_cast<u64*>(phys_ptr<u8>(kTrampolinePhys) +
                                      (ap_trampoline_data - ap_trampoline_start));
  // INIT to every AP first and one 10 ms wait for all of them, as the MP specification asks
  // between INIT and STARTUP; then, one CPU at a time (they share the trampoline's data), up to
  // two STARTUPs (the second only if the first was not seen). An INITed CPU just waits for its
  // STARTUP, so the wait is paid once instead of once per CPU (70 ms less at 8 CPUs).
  for (u32 id = 1; id < g_cpu_count; ++id) icr_send(g_cpus[id].apic_id, 0x4500);
  if (g_cpu_count > 1) delay_us(10'000);
  for (u32 id = 1; id < g_cpu_count; ++id) {
    g_ap_stack_top = slot_alloc_stack_top();
    g_cpus[id].boot_stack_top = g_ap_stack_top;
    g_ap_kernel_cr3 = kernel_pml4_phys();
    data[0] = u64(boot_pml4);  // linked at its physical address, below 4 GiB
    data[1] = 0x100 | (g_features.nx ? 0x800 : 0);
    data[2] = u64(ap_entry64);
    data[3] = id;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    u32 apic_id = g_cpus[id].apic_id;
    // Vector 0x08 starts the CPU at 0x8000.
    bool up = false;
    for (u32 attempt = 0; attempt < 2 && !up; ++attempt) {
      icr_send(apic_id, 0x4600 | u32(kTrampolinePhys >> 12));
      // TCG may take a while to schedule a new vCPU thread, all the more on a host busy with
      // other QEMUs (ctest -j8): wait up to ten seconds before calling the CPU dead.
      u64 limit = attempt == 0 ? 200 : 10'000'000;
      for (u64 us = 0; us < limit && !up; us += 100) {
        up = __atomic_load_n(&g_cpus[id].online, __ATOMIC_ACQUIRE);
        if (!up) delay_us(100);
      }
    }
    if (!up) {
      klog("cpu %u (apic id %u) did not come up", id, apic_id);
      panic("secondary CPU start failed");
    }
  }
  watchdog_arm();
}

}  // namespace hal
