// The device side of a virtio 1.x split virtqueue (virtio spec 2.7), over the simulated
// machine's RAM: what a device does with the rings a driver set up. Used by the device models
// in sim/virtio (virtio-net); the driver side is core/drivers/virtio/virtqueue.h.
//
// The device checks what the driver wrote as real hardware would have to: a descriptor outside
// RAM, a chain longer than the queue or a ring index beyond the queue's size is recorded as a
// driver error (driver_error()) and the chain is not touched, never a host crash.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sim {

class Machine;

class DeviceQueue {
 public:
  struct Buffer {
    uint64_t phys;
    uint32_t length;
    bool writable;
  };

  // What the driver programmed through the common configuration.
  uint16_t size = 0;
  uint16_t max_size = 256;
  uint16_t msix_vector = 0xffff;
  bool enabled = false;
  uint64_t desc = 0, driver = 0, device = 0;

  void reset();

  // The next chain the driver made available, as a list of buffers; false when none (or when
  // the chain is malformed: then driver_error() says why and the chain is consumed).
  bool take(uint16_t* head, std::vector<Buffer>* chain);
  // Returns chain `head` to the driver with `written` bytes written, and publishes the used index.
  void put(uint16_t head, uint32_t written);
  // For hostile tests and the fuzzer: writes a raw used entry at the current used position and
  // advances the used index by `advance` (which may exceed what is legal).
  void put_raw(uint32_t id, uint32_t written, uint16_t advance);
  uint16_t available() const;  // chains the driver made available and the device has not taken
  bool interrupt_suppressed() const;  // the driver set VIRTQ_AVAIL_F_NO_INTERRUPT

  // Copies between a chain and host memory; false when a buffer is not RAM.
  static bool read(const Buffer& b, uint32_t offset, void* out, uint32_t length);
  static bool write(const Buffer& b, uint32_t offset, const void* in, uint32_t length);

  const std::string& driver_error() const { return m_driver_error; }

 private:
  uint8_t* ram(uint64_t phys, uint64_t length) const;  // null when not entirely RAM
  uint16_t m_last_avail = 0;
  uint16_t m_used_idx = 0;
  std::string m_driver_error;
};

}  // namespace sim
