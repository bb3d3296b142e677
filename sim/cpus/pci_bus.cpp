#include "sim/cpus/pci_bus.h"

#include <cstdio>

#include "sim/cpus/machine.h"

namespace sim {

namespace {

constexpr uint32_t kSlots = 32;
constexpr uint32_t kCommand = 0x04;
constexpr uint32_t kBar0 = 0x10;
constexpr uint16_t kCommandMemory = 1u << 1;

struct Bus {
  PciFunction* slots[kSlots] = {};
};
thread_local Bus t_bus;

// The value a BAR register holds: the assigned address bits and the read-only type bits (bit 2
// set for a 64-bit memory BAR). The upper register of a 64-bit pair holds address bits 32-63.
uint64_t bar_base(const PciFunction& f, int bar) {
  uint64_t base = f.get32(kBar0 + 4 * bar) & ~0xfull;
  if (f.bar_64[bar] && bar < 5) base |= uint64_t(f.get32(kBar0 + 4 * (bar + 1))) << 32;
  return base;
}

PciFunction* find(uint32_t bus, uint32_t device, uint32_t function) {
  if (bus != 0 || device >= kSlots || function != 0) return nullptr;
  return t_bus.slots[device];
}

// Which BAR register (0-5) `offset` falls in, or -1; *upper when it is a 64-bit BAR's high half.
int bar_register(const PciFunction& f, uint32_t offset, bool* upper) {
  if (offset < kBar0 || offset >= kBar0 + 24) return -1;
  const int reg = int((offset - kBar0) / 4);
  *upper = reg > 0 && f.bar_64[reg - 1] && f.bar_size[reg - 1] != 0;
  return *upper ? reg - 1 : reg;
}

bool decode(uint64_t phys, uint32_t size, PciFunction** out, int* bar, uint64_t* offset) {
  for (PciFunction* f : t_bus.slots) {
    if (f == nullptr || (f->get16(kCommand) & kCommandMemory) == 0) continue;
    for (int b = 0; b < 6; ++b) {
      if (f->bar_size[b] == 0) continue;
      const uint64_t base = bar_base(*f, b);
      if (base == 0 || phys < base || phys - base >= f->bar_size[b] || phys - base + size > f->bar_size[b]) continue;
      *out = f;
      *bar = b;
      *offset = phys - base;
      return true;
    }
  }
  return false;
}

}  // namespace

void pci_plug(uint32_t slot, PciFunction* function) {
  if (slot >= kSlots) return;
  t_bus.slots[slot] = function;
  // Firmware's job: give every BAR an address, naturally aligned, 32-bit ones below 4 GiB.
  uint64_t next32 = 0xe0000000ull + uint64_t(slot) * 0x100000;
  uint64_t next64 = 0x800000000ull + uint64_t(slot) * 0x1000000;
  for (int b = 0; b < 6; ++b) {
    const uint64_t size = function->bar_size[b];
    if (size == 0) continue;
    uint64_t& next = function->bar_64[b] ? next64 : next32;
    next = (next + size - 1) & ~(size - 1);
    const uint32_t type = function->bar_64[b] ? 0x4 : 0x0;
    function->set32(kBar0 + 4 * b, uint32_t(next) | type);
    if (function->bar_64[b] && b < 5) function->set32(kBar0 + 4 * (b + 1), uint32_t(next >> 32));
    next += size;
    if (function->bar_64[b]) ++b;
  }
}

void pci_unplug(uint32_t slot) {
  if (slot < kSlots) t_bus.slots[slot] = nullptr;
}

void pci_unplug_all() {
  for (PciFunction*& f : t_bus.slots) f = nullptr;
}

uint32_t pci_config_read(uint32_t bus, uint32_t device, uint32_t function, uint32_t offset, uint32_t size) {
  PciFunction* f = find(bus, device, function);
  if (f == nullptr || offset + size > 256) return size == 4 ? ~0u : size == 2 ? 0xffffu : 0xffu;
  uint32_t value = 0;
  for (uint32_t i = 0; i < size; ++i) value |= uint32_t(f->config[offset + i]) << (8 * i);
  return value;
}

void pci_config_write(uint32_t bus, uint32_t device, uint32_t function, uint32_t offset, uint32_t size,
                      uint32_t value) {
  PciFunction* f = find(bus, device, function);
  if (f == nullptr || offset + size > 256) return;
  for (uint32_t i = 0; i < size; ++i) {
    const uint32_t at = offset + i;
    const uint8_t byte = uint8_t(value >> (8 * i));
    bool upper = false;
    const int bar = bar_register(*f, at & ~3u, &upper);
    if (bar >= 0) {
      // Address bits below the BAR's size read back as zero (that is how sizing works), and the
      // type bits of the low register are read-only.
      const uint64_t size_mask = f->bar_size[bar] == 0 ? ~0ull : ~(f->bar_size[bar] - 1);
      const uint32_t shift = 8 * (at & 3) + (upper ? 32 : 0);
      uint8_t keep = uint8_t((size_mask >> shift) & 0xff);
      if (!upper && (at & 3) == 0) keep &= 0xf0;
      f->config[at] = uint8_t((f->config[at] & ~keep) | (byte & keep));
    } else if (at == kCommand || at == kCommand + 1 || at == 0x3c || at >= 0x40) {
      f->config[at] = byte;
    }
  }
  f->config_written(offset, size);
}

bool pci_mmio_read(uint64_t phys, uint32_t size, uint64_t* value) {
  PciFunction* f;
  int bar;
  uint64_t offset;
  if (!decode(phys, size, &f, &bar, &offset)) return false;
  *value = f->bar_read(bar, offset, size);
  return true;
}

bool pci_mmio_write(uint64_t phys, uint32_t size, uint64_t value) {
  PciFunction* f;
  int bar;
  uint64_t offset;
  if (!decode(phys, size, &f, &bar, &offset)) return false;
  f->bar_write(bar, offset, size, value);
  return true;
}

void msi_write(uint64_t address, uint32_t data) {
  Machine* m = Machine::current();
  if (m == nullptr || (address & ~0xff000ull) != kMsiAddressBase || data >= 64) return;
  const uint32_t cpu = uint32_t((address >> 12) & 0xff);
  if (cpu >= m->config().cpus) return;
  m->cpu(cpu).device_irqs |= 1ull << data;
  m->raise(cpu, kIrqDevice);
}

}  // namespace sim
