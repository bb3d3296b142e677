// The simulated machine's PCI bus: bus 0 with up to 32 single-function devices that sim code
// (sim/virtio) plugs in. hal/sim routes the HAL's configuration-space and MMIO calls here, and a
// device raises an interrupt by writing its MSI message (msi_write), which becomes a pending
// kIrqDevice on the target CPU, delivered at a scheduling point like every other interrupt.
//
// Everything runs on the simulation's host thread and fiber: a device reacts to a register
// write synchronously, inside the HAL call that made it, so a run stays a pure function of
// (scenario, seed, strategy).
#pragma once

#include <cstdint>

namespace sim {

// One function on the bus. The device fills `config` (vendor, device, class, capabilities) and
// declares its BARs; the bus owns the BAR registers' semantics (sizing with all ones, 64-bit
// pairs, the command register's memory-space enable) and routes MMIO to bar_read/bar_write.
class PciFunction {
 public:
  virtual ~PciFunction() = default;

  uint8_t config[256] = {};
  // BAR n: size (a power of two, at least 16; 0 = none) and whether it is a 64-bit BAR (which
  // then also uses register n + 1).
  uint64_t bar_size[6] = {};
  bool bar_64[6] = {};

  // Device registers: `offset` within BAR `bar`, size 1, 2, 4 or 8 bytes.
  virtual uint64_t bar_read(int bar, uint64_t offset, uint32_t size) = 0;
  virtual void bar_write(int bar, uint64_t offset, uint32_t size, uint64_t value) = 0;
  // After the driver wrote configuration space (already stored in `config`).
  virtual void config_written(uint32_t offset, uint32_t size) {}

  // Helpers for filling `config`.
  void set8(uint32_t offset, uint8_t v) { config[offset] = v; }
  void set16(uint32_t offset, uint16_t v) { set8(offset, uint8_t(v)), set8(offset + 1, uint8_t(v >> 8)); }
  void set32(uint32_t offset, uint32_t v) { set16(offset, uint16_t(v)), set16(offset + 2, uint16_t(v >> 16)); }
  uint16_t get16(uint32_t offset) const { return uint16_t(config[offset] | config[offset + 1] << 8); }
  uint32_t get32(uint32_t offset) const { return uint32_t(get16(offset)) | uint32_t(get16(offset + 2)) << 16; }
};

// Plugs `function` in at bus 0 device `slot` (< 32) and assigns its BARs addresses, as firmware
// would: 32-bit BARs from 0xe0000000, 64-bit BARs above 4 GiB (from 0x800000000). The bus does
// not own the device. Plugged devices stay until unplugged (across runs on this host thread).
void pci_plug(uint32_t slot, PciFunction* function);
void pci_unplug(uint32_t slot);
void pci_unplug_all();

// The bus side of the HAL calls (hal/sim). Absent functions read as all ones.
uint32_t pci_config_read(uint32_t bus, uint32_t device, uint32_t function, uint32_t offset, uint32_t size);
void pci_config_write(uint32_t bus, uint32_t device, uint32_t function, uint32_t offset, uint32_t size,
                      uint32_t value);
// false when no enabled BAR decodes `phys` (hal/sim then fails the run: a stray MMIO access).
bool pci_mmio_read(uint64_t phys, uint32_t size, uint64_t* value);
bool pci_mmio_write(uint64_t phys, uint32_t size, uint64_t value);

// The simulated MSI address for `cpu`, as on x86: 0xfee00000 | cpu << 12; the data is the irq.
inline constexpr uint64_t kMsiAddressBase = 0xfee00000;
// What a device does to interrupt: writes `data` to `address`. A message that names no CPU of the
// running machine, or an irq of 64 or more, is ignored (a misprogrammed device).
void msi_write(uint64_t address, uint32_t data);

}  // namespace sim
