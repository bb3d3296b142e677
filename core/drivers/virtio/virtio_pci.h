// The virtio 1.x PCI transport, driver side (virtio spec 4.1): the vendor capabilities that
// locate the common configuration, notification, ISR and device configuration structures in
// the BARs, feature negotiation, queue setup and MSI-X, all through hal/hal.h's device calls.
//
// Everything read from the device (capabilities, BARs, queue sizes, notify offsets) is checked
// before use; a device that does not follow the protocol gets a clear reason (VirtioPci::error)
// and no access outside what it declared.
#pragma once

#include <hal.h>

#include "core/lib/types.h"

namespace tandem {

class Virtqueue;

inline constexpr u16 kVirtioVendor = 0x1af4;
inline constexpr u16 kVirtioModernDeviceBase = 0x1040;  // + virtio device id (1 = network)

// Feature bits (virtio spec 6 and 5.1.3).
inline constexpr u64 kVirtioNetFMac = 1ull << 5;
inline constexpr u64 kVirtioNetFStatus = 1ull << 16;
inline constexpr u64 kVirtioFVersion1 = 1ull << 32;

// Device status bits (2.1).
inline constexpr u8 kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4, kStatusFeaturesOk = 8,
                    kStatusNeedsReset = 64, kStatusFailed = 128;

inline constexpr u16 kNoMsixVector = 0xffff;

class VirtioPci {
 public:
  // Reads the capability list of `address` and maps the structures. false (error() says why)
  // when the function is not a usable modern virtio device.
  bool open(hal::PciAddress address);
  const char* error() const { return m_error; }
  hal::PciAddress address() const { return m_address; }

  // 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, negotiate `wanted` & the device's features
  // (VERSION_1 is required), FEATURES_OK and its check. Returns the negotiated features, or
  // nothing (false) with the device marked FAILED.
  bool negotiate(u64 wanted, u64* negotiated);
  // Sets up queue `index` with `queue` (created with a size at most the device's maximum;
  // max_queue_size() tells it) and MSI-X vector `msix_vector` (kNoMsixVector for none), then
  // enables it.
  u16 max_queue_size(u16 index);
  bool setup_queue(u16 index, const Virtqueue& queue, u16 msix_vector);
  void notify(u16 index);
  void driver_ok();
  void reset();
  void fail();  // sets FAILED (the driver gave up on the device)
  u8 status();

  // The device-specific configuration (5.x.4), read with the generation check of 4.1.4.3.
  bool read_device_config(u32 offset, void* out, u32 length);

  // MSI-X: table entry `entry` gets `message`; the function's MSI-X is enabled; the device's
  // configuration-change interrupt uses `config_vector`. false when the device has no MSI-X
  // capability, or the entry does not exist, or the device refuses the vector.
  bool enable_msix(u16 entry, const hal::MsiMessage& message, u16 config_vector);
  bool has_msix() const { return m_msix_cap != 0; }

 private:
  bool fail_open(const char* why) {
    m_error = why;
    return false;
  }
  bool map_bar_range(u8 bar, u32 offset, u32 length, u64* handle);
  u32 cfg32(u32 offset) { return hal::pci_config_read(m_address, offset, 4); }
  u64 common_read(u32 offset, u32 size) { return hal::mmio_read(m_common + offset, size); }
  void common_write(u32 offset, u32 size, u64 value) { hal::mmio_write(m_common + offset, size, value); }

  hal::PciAddress m_address{};
  const char* m_error = nullptr;
  u64 m_bar_phys[6] = {};
  u64 m_bar_size[6] = {};
  u64 m_common = 0, m_notify = 0, m_isr = 0, m_device = 0;  // mmio handles
  u32 m_notify_length = 0, m_device_length = 0;
  u32 m_notify_multiplier = 0;
  static constexpr u16 kMaxQueues = 4;
  u16 m_notify_off[kMaxQueues] = {};  // of the queues set up
  u8 m_msix_cap = 0;
  u16 m_msix_entries = 0;
  u64 m_msix_table = 0;
};

}  // namespace tandem
