// A virtio-net device (virtio spec 5.1) on the simulated PCI bus, modern transport only, laid
// out as QEMU's virtio-net-pci with disable-legacy=on: vendor 0x1af4, device 0x1041; BAR 1
// (32-bit) holds the MSI-X table and PBA; BAR 4 (64-bit, placed above 4 GiB) holds the common
// configuration (0x0000), ISR (0x1000), device configuration (0x2000) and notifications
// (0x3000, multiplier 4). Queue 0 receives, queue 1 transmits.
//
// The peer side is a test hook: frames the driver transmits collect in transmitted(); inject()
// hands the driver a received frame. Hostile behaviour for tests and fuzzing: a fault armed
// with corrupt_next() replaces the device's next used entry by a bad one.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "sim/cpus/pci_bus.h"
#include "sim/virtio/virtqueue_device.h"

namespace sim {

class VirtioNetDevice final : public PciFunction {
 public:
  static constexpr uint32_t kHeaderLength = 12;
  static constexpr uint16_t kQueues = 2;
  static constexpr uint16_t kMsixEntries = 3;

  explicit VirtioNetDevice(const uint8_t mac[6], uint16_t queue_size = 256);

  uint64_t bar_read(int bar, uint64_t offset, uint32_t size) override;
  void bar_write(int bar, uint64_t offset, uint32_t size, uint64_t value) override;
  void config_written(uint32_t offset, uint32_t size) override;

  // --- the peer ---
  // Frames the driver sent (virtio-net header stripped), oldest first.
  std::deque<std::vector<uint8_t>>& transmitted() { return m_transmitted; }
  // Delivers a frame to the driver (header prepended) and interrupts; false when the driver has
  // no receive buffer available (or is not running, or the buffer is too small).
  bool inject(const void* frame, size_t length);
  void set_link(bool up);  // changes the status and signals a configuration change
  // Also completes any transmissions the driver queued without notifying. Transmit normally
  // completes synchronously at the notification.
  void process_tx();
  // Called (synchronously, inside the driver's notification) each time a frame joins
  // transmitted(): the simulated wire (sim/netpeer/wire.h) uses it to take the frame at once.
  void set_on_transmit(void (*callback)(void*), void* arg) { m_on_transmit = callback, m_on_transmit_arg = arg; }

  // --- hostile behaviour ---
  enum class Fault : uint8_t {
    None,
    UsedIdxJump,   // the used index advances by the queue size + 1
    IdOutOfRange,  // the used entry names descriptor size + 7
    IdNotInFlight, // the used entry names the next descriptor (not in flight when only one is)
    DuplicateId,   // a correct used entry, then a second one naming the same descriptor again
    LengthTooBig,  // the written length exceeds any buffer (2,148 bytes more than written)
  };
  void corrupt_next(Fault fault) { m_fault = fault; }
  // Hostile set-up (the fuzzer): what the device offers and accepts. Set before the driver runs.
  struct Quirks {
    uint64_t offered = (1ull << 32) | (1ull << 5) | (1ull << 16);  // VERSION_1, MAC, STATUS
    bool refuse_features_ok = false;  // clears FEATURES_OK whatever the driver chose
    bool refuse_msix = false;         // reads back NO_VECTOR for every MSI-X vector
    uint16_t notify_off_bias = 0;     // added to each queue's notify offset (out of range when large)
    uint16_t num_queues = kQueues;    // what num_queues reads
    bool flap_generation = false;     // config_generation changes at every read
  };
  Quirks quirks;
  // Raw control for the fuzzer: a used entry written as is on queue `queue`, and an interrupt.
  void put_raw(uint16_t queue, uint32_t id, uint32_t written, uint16_t advance);
  DeviceQueue& queue(uint16_t index) { return m_queues[index]; }

  uint8_t status() const { return m_status; }
  uint64_t driver_features() const { return m_driver_features; }
  bool driver_ok() const { return (m_status & 4) != 0; }
  // Protocol errors the driver made (bad rings, bad notifications), for tests to assert on.
  const std::string& driver_error() const;
  uint32_t interrupts_sent() const { return m_interrupts; }
  uint32_t resets() const { return m_resets; }

 private:
  void reset();
  void interrupt(uint16_t vector);
  void complete(uint16_t queue, uint16_t head, uint32_t written);
  uint64_t common_read(uint64_t offset, uint32_t size);
  void common_write(uint64_t offset, uint32_t size, uint64_t value);

  uint8_t m_mac[6];
  uint16_t m_net_status = 1;  // VIRTIO_NET_S_LINK_UP
  uint8_t m_config_generation = 0;
  uint64_t m_driver_features = 0;
  uint32_t m_device_feature_select = 0, m_driver_feature_select = 0;
  uint8_t m_status = 0;
  uint16_t m_msix_config = 0xffff;
  uint16_t m_queue_select = 0;
  uint8_t m_isr = 0;
  DeviceQueue m_queues[kQueues];
  uint32_t m_msix_table[kMsixEntries][4] = {};
  uint64_t m_msix_pending = 0;
  Fault m_fault = Fault::None;
  std::deque<std::vector<uint8_t>> m_transmitted;
  mutable std::string m_error;
  uint32_t m_interrupts = 0;
  uint32_t m_resets = 0;
  void (*m_on_transmit)(void*) = nullptr;
  void* m_on_transmit_arg = nullptr;
};

}  // namespace sim
