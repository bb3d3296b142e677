// hal/real/src/pci.cpp: device access for the booted kernel: PCI configuration space through
// configuration mechanism #1 (ports 0xcf8/0xcfc), MMIO mappings of BARs, and MSI messages
// aimed at a CPU's local APIC.
//
// Why mechanism #1 and not ECAM: every register a driver of ours reads (the header and the
// capability list) lies in the first 256 bytes, which the ports reach on any PC, with no ACPI
// MCFG parsing and no extra mapping.
#include "arch.h"

namespace hal::real {
namespace {

constexpr u16 kConfigAddress = 0xcf8;
constexpr u16 kConfigData = 0xcfc;

// The address/data pair is one shared register: two CPUs must not interleave.
SpinLock g_config_lock;

// MMIO mappings outside the uncached direct-map window come from a bump cursor in their own
// region; they are never unmapped.
SpinLock g_mmio_lock;
u64 g_mmio_next = kMmioRegionBase;

u32 g_msi_next = 0;  // MSI irqs handed out so far
SpinLock g_msi_lock;

bool valid(PciAddress a, u32 offset, u32 size) {
  return a.device < 32 && a.function < 8 && offset < 256 && (size == 1 || size == 2 || size == 4) &&
         (offset & (size - 1)) == 0;
}

u32 config_address(PciAddress a, u32 offset) {
  return (1u << 31) | (u32(a.bus) << 16) | (u32(a.device) << 11) | (u32(a.function) << 8) | (offset & 0xfc);
}

}  // namespace
}  // namespace hal::real

namespace hal {

using namespace hal::real;

u32 pci_config_read(PciAddress address, u32 offset, u32 size) {
  if (!valid(address, offset, size)) return ~0u;
  IrqFlags flags = g_config_lock.lock();
  outl(kConfigAddress, config_address(address, offset));
  const u32 dword = inl(kConfigData);
  g_config_lock.unlock(flags);
  const u32 shift = (offset & 3) * 8;
  if (size == 4) return dword;
  return (dword >> shift) & (size == 1 ? 0xffu : 0xffffu);
}

void pci_config_write(PciAddress address, u32 offset, u32 size, u32 value) {
  if (!valid(address, offset, size)) return;
  IrqFlags flags = g_config_lock.lock();
  outl(kConfigAddress, config_address(address, offset));
  const u16 port = u16(kConfigData + (offset & 3));
  if (size == 4) {
    outl(port, value);
  } else if (size == 2) {
    outw(port, u16(value));
  } else {
    outb(port, u8(value));
  }
  g_config_lock.unlock(flags);
}

u64 mmio_map(u64 phys, u64 length) {
  if (length == 0 || phys + length < phys) return 0;
  // The direct map's 3-4 GiB window is already uncached (memory.cpp): q35 puts the LAPIC, the
  // IOAPIC and 32-bit BARs there.
  if (phys >= (3ull << 30) && phys + length <= (4ull << 30)) return kDirectMapBase + phys;
  const u64 first = phys & ~(kPageSize - 1);
  const u64 end = (phys + length + kPageSize - 1) & ~(kPageSize - 1);
  if (end >= (1ull << 52)) return 0;
  IrqFlags flags = g_mmio_lock.lock();
  const u64 base = g_mmio_next;
  if (end - first > kMmioRegionBase + kMmioRegionSize - base) {
    g_mmio_lock.unlock(flags);
    return 0;
  }
  g_mmio_next += end - first;
  g_mmio_lock.unlock(flags);
  for (u64 p = first; p < end; p += kPageSize) {
    if (!kernel_map_mmio_page(base + (p - first), p)) return 0;
  }
  return base + (phys - first);
}

u64 mmio_read(u64 address, u32 size) {
  switch (size) {
    case 1: return *reinterpret_cast<volatile u8*>(address);
    case 2: return *reinterpret_cast<volatile u16*>(address);
    case 4: return *reinterpret_cast<volatile u32*>(address);
    default: return *reinterpret_cast<volatile u64*>(address);
  }
}

void mmio_write(u64 address, u32 size, u64 value) {
  // Stores to DMA memory before this one (a ring's index) must reach memory first; x86 keeps
  // stores in order, so a compiler barrier suffices.
  asm volatile("" ::: "memory");
  switch (size) {
    case 1: *reinterpret_cast<volatile u8*>(address) = u8(value); break;
    case 2: *reinterpret_cast<volatile u16*>(address) = u16(value); break;
    case 4: *reinterpret_cast<volatile u32*>(address) = u32(value); break;
    default: *reinterpret_cast<volatile u64*>(address) = value; break;
  }
}

bool msi_allocate(u32 cpu, MsiMessage* message, u32* irq) {
  if (cpu >= g_cpu_count || message == nullptr || irq == nullptr) return false;
  IrqFlags flags = g_msi_lock.lock();
  if (g_msi_next == kMaxMsi) {
    g_msi_lock.unlock(flags);
    return false;
  }
  const u32 n = g_msi_next++;
  g_msi_lock.unlock(flags);
  *irq = kMaxGsi + n;
  // Intel SDM 11.11: address 0xfee00000 | destination APIC id << 12 (physical mode, no
  // redirection hint); data = vector, fixed delivery, edge.
  message->address = 0xfee0'0000ull | (u64(g_cpus[cpu].apic_id & 0xff) << 12);
  message->data = u32(kVecDeviceBase + *irq);
  return true;
}

}  // namespace hal
