#include "core/drivers/virtio/virtio_pci.h"

#include "core/drivers/virtio/virtqueue.h"

namespace tandem {

namespace {

// PCI configuration space (PCI local bus 3.0, 6.1).
constexpr u32 kPciCommand = 0x04, kPciStatus = 0x06, kPciBar0 = 0x10, kPciCapPtr = 0x34;
constexpr u16 kCommandMemory = 1u << 1, kCommandBusMaster = 1u << 2, kCommandIntxDisable = 1u << 10;
constexpr u16 kStatusCapList = 1u << 4;
constexpr u8 kCapVendor = 0x09, kCapMsix = 0x11;

// virtio_pci_cap (4.1.4): cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2], offset,
// length; the notify capability adds notify_off_multiplier.
constexpr u8 kCfgCommon = 1, kCfgNotify = 2, kCfgIsr = 3, kCfgDevice = 4;

// virtio_pci_common_cfg (4.1.4.3).
constexpr u32 kDeviceFeatureSelect = 0, kDeviceFeature = 4, kDriverFeatureSelect = 8, kDriverFeature = 12,
              kMsixConfig = 16, kNumQueues = 18, kDeviceStatus = 20, kConfigGeneration = 21, kQueueSelect = 22,
              kQueueSize = 24, kQueueMsixVector = 26, kQueueEnable = 28, kQueueNotifyOff = 30, kQueueDesc = 32,
              kQueueDriver = 40, kQueueDevice = 48;
constexpr u32 kCommonLength = 56;

// A reset completes when the status reads 0 (4.1.4.3.2); a device that never gets there is dead.
constexpr u32 kResetPolls = 100'000;

}  // namespace

bool VirtioPci::open(hal::PciAddress address) {
  m_address = address;
  m_error = nullptr;
  if ((hal::pci_config_read(address, kPciStatus, 2) & kStatusCapList) == 0) return fail_open("no capability list");

  // Size the BARs with memory decoding off, as firmware does, then turn decoding and bus
  // mastering on (the device DMAs into our rings) and INTx off (MSI-X or polling).
  const u32 command = hal::pci_config_read(address, kPciCommand, 2);
  hal::pci_config_write(address, kPciCommand, 2, command & ~u32(kCommandMemory));
  for (u32 bar = 0; bar < 6; ++bar) {
    const u32 reg = kPciBar0 + 4 * bar;
    const u32 low = cfg32(reg);
    if (low & 1) continue;  // an I/O BAR: not for the modern transport
    const bool is64 = ((low >> 1) & 3) == 2;
    if (is64 && bar == 5) break;
    hal::pci_config_write(address, reg, 4, ~0u);
    const u32 low_mask = cfg32(reg);
    hal::pci_config_write(address, reg, 4, low);
    u64 mask = low_mask & ~0xfull;
    u64 base = low & ~0xfull;
    if (is64) {
      const u32 high = cfg32(reg + 4);
      hal::pci_config_write(address, reg + 4, 4, ~0u);
      const u32 high_mask = cfg32(reg + 4);
      hal::pci_config_write(address, reg + 4, 4, high);
      mask |= u64(high_mask) << 32;
      base |= u64(high) << 32;
    } else {
      mask |= 0xffff'ffff'0000'0000ull;
    }
    const u64 size = mask == 0 ? 0 : (~mask + 1);
    m_bar_phys[bar] = base;
    m_bar_size[bar] = (size & (size - 1)) == 0 ? size : 0;  // a size is a power of two
    if (is64) ++bar;
  }
  hal::pci_config_write(address, kPciCommand, 2,
                        (command | kCommandMemory | kCommandBusMaster | kCommandIntxDisable) & 0xffff);

  // The capability list: at most 48 entries (256 bytes, 4 each, from 0x40) so a cycle ends.
  u32 ptr = hal::pci_config_read(address, kPciCapPtr, 1) & 0xfc;
  bool have_common = false, have_notify = false, have_isr = false, have_device = false;
  for (u32 n = 0; n < 48 && ptr >= 0x40 && ptr <= 0xfc; ++n) {
    const u8 id = u8(hal::pci_config_read(address, ptr, 1));
    const u32 next = hal::pci_config_read(address, ptr + 1, 1) & 0xfc;
    if (id == kCapMsix && m_msix_cap == 0 && ptr + 12 <= 256) {
      m_msix_cap = u8(ptr);
      m_msix_entries = u16((hal::pci_config_read(address, ptr + 2, 2) & 0x7ff) + 1);
      const u32 table = cfg32(ptr + 4);
      const u64 length = u64(m_msix_entries) * 16;
      if (!map_bar_range(u8(table & 7), table & ~7u, u32(length), &m_msix_table)) m_msix_cap = 0;
    } else if (id == kCapVendor && ptr + 16 <= 256) {
      const u32 cap_len = hal::pci_config_read(address, ptr + 2, 1);
      const u8 type = u8(hal::pci_config_read(address, ptr + 3, 1));
      const u8 bar = u8(hal::pci_config_read(address, ptr + 4, 1));
      const u32 offset = cfg32(ptr + 8);
      const u32 length = cfg32(ptr + 12);
      // The first structure of each type that maps is the one to use (4.1.4.1); later ones
      // (alternatives, or the PCI configuration access capability) are skipped.
      // Register accesses must be naturally aligned: the common configuration is accessed 32
      // bits at a time (64-bit fields as two halves, 4.1.3.1), notifications 16 bits at a time
      // with an even multiplier (4.1.4.4); a device that says otherwise is not used.
      if (type == kCfgCommon && !have_common && length >= kCommonLength && (offset & 3) == 0) {
        have_common = map_bar_range(bar, offset, kCommonLength, &m_common);
      } else if (type == kCfgNotify && !have_notify && cap_len >= 20 && ptr + 20 <= 256 && length >= 2 &&
                 (offset & 1) == 0) {
        m_notify_multiplier = cfg32(ptr + 16);
        m_notify_length = length;
        have_notify = (m_notify_multiplier & 1) == 0 && map_bar_range(bar, offset, length, &m_notify);
      } else if (type == kCfgIsr && !have_isr && length >= 1) {
        have_isr = map_bar_range(bar, offset, 1, &m_isr);
      } else if (type == kCfgDevice && !have_device && length >= 1) {
        m_device_length = length;
        have_device = map_bar_range(bar, offset, length, &m_device);
      }
    }
    ptr = next;
  }
  if (!have_common) return fail_open("no usable common configuration capability");
  if (!have_notify) return fail_open("no usable notification capability");
  if (!have_isr) return fail_open("no usable ISR capability");
  if (!have_device) m_device_length = 0;
  return true;
}

bool VirtioPci::map_bar_range(u8 bar, u32 offset, u32 length, u64* handle) {
  if (bar >= 6 || m_bar_size[bar] == 0 || m_bar_phys[bar] == 0 || length == 0) return false;
  if (u64(offset) + length > m_bar_size[bar]) return false;
  const u64 mapped = hal::mmio_map(m_bar_phys[bar] + offset, length);
  if (mapped == 0) return false;
  *handle = mapped;
  return true;
}

u8 VirtioPci::status() { return u8(common_read(kDeviceStatus, 1)); }

void VirtioPci::reset() {
  common_write(kDeviceStatus, 1, 0);
  for (u32 i = 0; i < kResetPolls && status() != 0; ++i) hal::cpu_relax();
}

void VirtioPci::fail() { common_write(kDeviceStatus, 1, status() | kStatusFailed); }

bool VirtioPci::negotiate(u64 wanted, u64* negotiated) {
  reset();
  if (status() != 0) {
    m_error = "the device does not finish its reset";
    return false;
  }
  common_write(kDeviceStatus, 1, kStatusAcknowledge);
  common_write(kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver);
  common_write(kDeviceFeatureSelect, 4, 0);
  u64 offered = common_read(kDeviceFeature, 4);
  common_write(kDeviceFeatureSelect, 4, 1);
  offered |= common_read(kDeviceFeature, 4) << 32;
  if ((offered & kVirtioFVersion1) == 0) {
    m_error = "the device does not offer VIRTIO_F_VERSION_1";
    fail();
    return false;
  }
  const u64 chosen = offered & wanted;
  common_write(kDriverFeatureSelect, 4, 0);
  common_write(kDriverFeature, 4, u32(chosen));
  common_write(kDriverFeatureSelect, 4, 1);
  common_write(kDriverFeature, 4, u32(chosen >> 32));
  common_write(kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  if ((status() & kStatusFeaturesOk) == 0) {
    m_error = "the device refused the features (FEATURES_OK cleared)";
    fail();
    return false;
  }
  *negotiated = chosen;
  return true;
}

u16 VirtioPci::max_queue_size(u16 index) {
  if (index >= kMaxQueues || index >= common_read(kNumQueues, 2)) return 0;
  common_write(kQueueSelect, 2, index);
  return u16(common_read(kQueueSize, 2));
}

bool VirtioPci::setup_queue(u16 index, const Virtqueue& queue, u16 msix_vector) {
  if (index >= kMaxQueues) return false;
  common_write(kQueueSelect, 2, index);
  const u16 max = u16(common_read(kQueueSize, 2));
  if (max == 0 || queue.size() > max) {
    m_error = "a queue is unavailable or smaller than asked";
    return false;
  }
  common_write(kQueueSize, 2, queue.size());
  // 64-bit fields as two 32-bit writes, low half first (4.1.3.1).
  const u64 addresses[3][2] = {{kQueueDesc, queue.desc_phys()},
                               {kQueueDriver, queue.avail_phys()},
                               {kQueueDevice, queue.used_phys()}};
  for (const auto& a : addresses) {
    common_write(u32(a[0]), 4, u32(a[1]));
    common_write(u32(a[0]) + 4, 4, u32(a[1] >> 32));
  }
  if (msix_vector != kNoMsixVector) {
    common_write(kQueueMsixVector, 2, msix_vector);
    if (common_read(kQueueMsixVector, 2) != msix_vector) {
      m_error = "the device refused a queue's MSI-X vector";
      return false;
    }
  }
  // The queue's notification address must lie inside the notify structure (4.1.4.4).
  const u64 off = common_read(kQueueNotifyOff, 2);
  if (off * m_notify_multiplier + 2 > m_notify_length) {
    m_error = "a queue's notification address is outside the notify structure";
    return false;
  }
  m_notify_off[index] = u16(off);
  common_write(kQueueEnable, 2, 1);
  return true;
}

void VirtioPci::notify(u16 index) {
  if (index >= kMaxQueues) return;
  hal::mmio_write(m_notify + u64(m_notify_off[index]) * m_notify_multiplier, 2, index);
}

void VirtioPci::driver_ok() { common_write(kDeviceStatus, 1, status() | kStatusDriverOk); }

bool VirtioPci::read_device_config(u32 offset, void* out, u32 length) {
  if (u64(offset) + length > m_device_length) return false;
  auto* bytes = static_cast<u8*>(out);
  // A multi-byte configuration may change between reads: retry until the generation holds.
  for (u32 attempt = 0; attempt < 16; ++attempt) {
    const u64 before = common_read(kConfigGeneration, 1);
    for (u32 i = 0; i < length; ++i) bytes[i] = u8(hal::mmio_read(m_device + offset + i, 1));
    if (common_read(kConfigGeneration, 1) == before) return true;
  }
  return false;
}

bool VirtioPci::enable_msix(u16 entry, const hal::MsiMessage& message, u16 config_vector) {
  if (m_msix_cap == 0 || entry >= m_msix_entries) return false;
  const u64 e = m_msix_table + u64(entry) * 16;
  hal::mmio_write(e + 0, 4, u32(message.address));
  hal::mmio_write(e + 4, 4, u32(message.address >> 32));
  hal::mmio_write(e + 8, 4, message.data);
  hal::mmio_write(e + 12, 4, 0);  // vector control: unmasked
  // Message control: enable, function mask off.
  const u32 control = hal::pci_config_read(m_address, m_msix_cap + 2, 2);
  hal::pci_config_write(m_address, m_msix_cap + 2, 2, (control | 0x8000u) & ~0x4000u);
  if (config_vector != kNoMsixVector) {
    common_write(kMsixConfig, 2, config_vector);
    if (common_read(kMsixConfig, 2) != config_vector) return false;
  }
  return true;
}

}  // namespace tandem
