#include "sim/virtio/net_device.h"

#include <cstring>

namespace sim {

namespace {

constexpr uint64_t kFVersion1 = 1ull << 32;
constexpr uint8_t kStatusFeaturesOk = 8;

constexpr int kBarMsix = 1, kBarVirtio = 4;
constexpr uint64_t kCommonAt = 0x0000, kIsrAt = 0x1000, kDeviceAt = 0x2000, kNotifyAt = 0x3000;
constexpr uint32_t kNotifyMultiplier = 4;
constexpr uint64_t kPbaAt = 0x800;

constexpr uint32_t kCapMsix = 0x40, kCapCommon = 0x50, kCapIsr = 0x60, kCapDevice = 0x70, kCapNotify = 0x80;

}  // namespace

VirtioNetDevice::VirtioNetDevice(const uint8_t mac[6], uint16_t queue_size) {
  std::memcpy(m_mac, mac, 6);
  for (DeviceQueue& q : m_queues) q.max_size = queue_size;

  set16(0x00, 0x1af4);  // vendor
  set16(0x02, 0x1041);  // modern virtio-net
  set16(0x06, 1u << 4);  // status: capability list
  set8(0x08, 1);         // revision 1: a modern device
  set8(0x0a, 0x00), set8(0x0b, 0x02);  // class: network controller, Ethernet
  set16(0x2c, 0x1af4), set16(0x2e, 1);  // subsystem: virtio, network
  set8(0x34, kCapMsix);
  bar_size[kBarMsix] = 0x1000;
  bar_size[kBarVirtio] = 0x4000;
  bar_64[kBarVirtio] = true;

  // MSI-X: table in BAR 1 at 0, PBA at 0x800.
  set8(kCapMsix, 0x11), set8(kCapMsix + 1, kCapCommon);
  set16(kCapMsix + 2, kMsixEntries - 1);
  set32(kCapMsix + 4, 0 | kBarMsix);
  set32(kCapMsix + 8, uint32_t(kPbaAt) | kBarMsix);
  auto vendor_cap = [&](uint32_t at, uint8_t next, uint8_t type, uint64_t offset, uint32_t length, uint8_t cap_len) {
    set8(at, 0x09), set8(at + 1, next), set8(at + 2, cap_len), set8(at + 3, type), set8(at + 4, kBarVirtio);
    set32(at + 8, uint32_t(offset));
    set32(at + 12, length);
  };
  vendor_cap(kCapCommon, kCapIsr, 1, kCommonAt, 0x38, 16);
  vendor_cap(kCapIsr, kCapDevice, 3, kIsrAt, 4, 16);
  vendor_cap(kCapDevice, kCapNotify, 4, kDeviceAt, 12, 16);
  vendor_cap(kCapNotify, 0, 2, kNotifyAt, kQueues * kNotifyMultiplier, 20);
  set32(kCapNotify + 16, kNotifyMultiplier);
}

const std::string& VirtioNetDevice::driver_error() const {
  for (const DeviceQueue& q : m_queues) {
    if (!q.driver_error().empty()) return q.driver_error();
  }
  return m_error;
}

void VirtioNetDevice::reset() {
  m_status = 0;
  m_driver_features = 0;
  m_device_feature_select = m_driver_feature_select = 0;
  m_msix_config = 0xffff;
  m_queue_select = 0;
  m_isr = 0;
  for (DeviceQueue& q : m_queues) q.reset();
  ++m_resets;
}

void VirtioNetDevice::config_written(uint32_t, uint32_t) {
  // Unmasking MSI-X (the function mask or the enable bit changed) delivers what is pending.
  for (uint16_t v = 0; v < kMsixEntries; ++v) {
    if (m_msix_pending & (1ull << v)) interrupt(v);
  }
}

void VirtioNetDevice::interrupt(uint16_t vector) {
  const uint16_t control = get16(kCapMsix + 2);
  const bool enabled = (control & 0x8000) != 0;
  if (!enabled || vector >= kMsixEntries) {
    m_isr |= 1;  // INTx is not modelled: the driver would have to poll ISR
    return;
  }
  if ((control & 0x4000) || (m_msix_table[vector][3] & 1)) {
    m_msix_pending |= 1ull << vector;
    return;
  }
  m_msix_pending &= ~(1ull << vector);
  ++m_interrupts;
  const uint64_t address = m_msix_table[vector][0] | uint64_t(m_msix_table[vector][1]) << 32;
  msi_write(address, m_msix_table[vector][2]);
}

void VirtioNetDevice::complete(uint16_t queue, uint16_t head, uint32_t written) {
  DeviceQueue& q = m_queues[queue];
  const Fault fault = m_fault;
  m_fault = Fault::None;
  switch (fault) {
    case Fault::None: q.put(head, written); break;
    case Fault::UsedIdxJump: q.put_raw(head, written, uint16_t(q.size + 1)); break;
    case Fault::IdOutOfRange: q.put_raw(q.size + 7u, written, 1); break;
    case Fault::IdNotInFlight: q.put_raw(uint16_t((head + 1) % q.size), written, 1); break;
    case Fault::DuplicateId:
      // The right entry, then the same id again.
      q.put(head, written);
      q.put_raw(head, written, 1);
      break;
    case Fault::LengthTooBig: q.put_raw(head, written + 100 + 2048, 1); break;
  }
  // The driver's hint (2.7.7): a real device may interrupt anyway; this one obeys.
  if (!q.interrupt_suppressed()) interrupt(q.msix_vector);
}

void VirtioNetDevice::put_raw(uint16_t queue, uint32_t id, uint32_t written, uint16_t advance) {
  if (queue >= kQueues) return;
  m_queues[queue].put_raw(id, written, advance);
  interrupt(m_queues[queue].msix_vector);
}

void VirtioNetDevice::process_tx() {
  if (!driver_ok()) return;
  DeviceQueue& q = m_queues[1];
  uint16_t head;
  std::vector<DeviceQueue::Buffer> chain;
  while (q.take(&head, &chain)) {
    std::vector<uint8_t> bytes;
    for (const DeviceQueue::Buffer& b : chain) {
      if (b.writable) continue;
      const size_t at = bytes.size();
      bytes.resize(at + b.length);
      DeviceQueue::read(b, 0, bytes.data() + at, b.length);
    }
    if (bytes.size() >= kHeaderLength) {
      m_transmitted.emplace_back(bytes.begin() + kHeaderLength, bytes.end());
      if (m_on_transmit != nullptr) m_on_transmit(m_on_transmit_arg);
    } else {
      m_error = "a transmitted chain is shorter than the virtio-net header";
    }
    complete(1, head, 0);
  }
}

bool VirtioNetDevice::inject(const void* frame, size_t length) {
  if (!driver_ok()) return false;
  DeviceQueue& q = m_queues[0];
  uint16_t head;
  std::vector<DeviceQueue::Buffer> chain;
  if (!q.take(&head, &chain)) return false;
  uint8_t header[kHeaderLength] = {};
  header[10] = 1;  // num_buffers
  std::vector<uint8_t> bytes(header, header + kHeaderLength);
  bytes.insert(bytes.end(), static_cast<const uint8_t*>(frame), static_cast<const uint8_t*>(frame) + length);
  size_t done = 0;
  for (const DeviceQueue::Buffer& b : chain) {
    if (!b.writable || done == bytes.size()) continue;
    const uint32_t n = uint32_t(std::min<size_t>(b.length, bytes.size() - done));
    DeviceQueue::write(b, 0, bytes.data() + done, n);
    done += n;
  }
  if (done < bytes.size()) {
    // Too small: a real device would drop it; give the buffer back unused.
    complete(0, head, 0);
    return false;
  }
  complete(0, head, uint32_t(bytes.size()));
  return true;
}

void VirtioNetDevice::set_link(bool up) {
  m_net_status = up ? 1 : 0;
  ++m_config_generation;
  m_isr |= 2;
  interrupt(m_msix_config);
}

uint64_t VirtioNetDevice::common_read(uint64_t offset, uint32_t size) {
  DeviceQueue& q = m_queues[m_queue_select < kQueues ? m_queue_select : 0];
  const bool valid = m_queue_select < kQueues;
  switch (offset) {
    case 0: return m_device_feature_select;
    case 4: return m_device_feature_select < 2 ? uint32_t(quirks.offered >> (32 * m_device_feature_select)) : 0;
    case 8: return m_driver_feature_select;
    case 12: return m_driver_feature_select < 2 ? uint32_t(m_driver_features >> (32 * m_driver_feature_select)) : 0;
    case 16: return quirks.refuse_msix ? 0xffff : m_msix_config;
    case 18: return quirks.num_queues;
    case 20: return m_status;
    case 21: return quirks.flap_generation ? m_config_generation++ : m_config_generation;
    case 22: return m_queue_select;
    case 24: return valid ? (q.size != 0 ? q.size : q.max_size) : 0;
    case 26: return valid && !quirks.refuse_msix ? q.msix_vector : 0xffff;
    case 28: return valid ? q.enabled : 0;
    case 30: return valid ? uint16_t(m_queue_select + quirks.notify_off_bias) : 0;
    case 32: return valid ? q.desc : 0;
    case 40: return valid ? q.driver : 0;
    case 48: return valid ? q.device : 0;
  }
  (void)size;
  return 0;
}

void VirtioNetDevice::common_write(uint64_t offset, uint32_t size, uint64_t value) {
  DeviceQueue* q = m_queue_select < kQueues ? &m_queues[m_queue_select] : nullptr;
  switch (offset) {
    case 0: m_device_feature_select = uint32_t(value); break;
    case 8: m_driver_feature_select = uint32_t(value); break;
    case 12:
      if (m_driver_feature_select < 2) {
        const uint32_t shift = 32 * m_driver_feature_select;
        m_driver_features = (m_driver_features & ~(0xffffffffull << shift)) | (uint64_t(uint32_t(value)) << shift);
      }
      break;
    case 16: m_msix_config = uint16_t(value) < kMsixEntries ? uint16_t(value) : 0xffff; break;
    case 20: {
      const uint8_t s = uint8_t(value);
      if (s == 0) {
        reset();
        break;
      }
      uint8_t next = s;
      // FEATURES_OK sticks only for a subset of what was offered that includes VERSION_1.
      if ((s & kStatusFeaturesOk) && !(m_status & kStatusFeaturesOk)) {
        if ((m_driver_features & ~quirks.offered) != 0 || !(m_driver_features & kFVersion1) || quirks.refuse_features_ok)
          next &= ~kStatusFeaturesOk;
      }
      m_status = next;
      break;
    }
    case 22: m_queue_select = uint16_t(value); break;
    case 24:
      if (q != nullptr && value != 0 && value <= q->max_size) q->size = uint16_t(value);
      break;
    case 26:
      if (q != nullptr) q->msix_vector = uint16_t(value) < kMsixEntries ? uint16_t(value) : 0xffff;
      break;
    case 28:
      if (q != nullptr && value == 1) {
        if (q->size == 0) q->size = q->max_size;
        q->enabled = true;
      }
      break;
    case 32: if (q != nullptr) q->desc = value; break;
    case 36: if (q != nullptr && size == 4) q->desc = (q->desc & 0xffffffffull) | value << 32; break;
    case 40: if (q != nullptr) q->driver = value; break;
    case 44: if (q != nullptr && size == 4) q->driver = (q->driver & 0xffffffffull) | value << 32; break;
    case 48: if (q != nullptr) q->device = value; break;
    case 52: if (q != nullptr && size == 4) q->device = (q->device & 0xffffffffull) | value << 32; break;
  }
}

uint64_t VirtioNetDevice::bar_read(int bar, uint64_t offset, uint32_t size) {
  if (bar == kBarMsix) {
    if (offset >= kPbaAt) return offset == kPbaAt ? m_msix_pending : 0;
    const uint64_t entry = offset / 16, word = (offset % 16) / 4;
    return entry < kMsixEntries && size == 4 ? m_msix_table[entry][word] : 0;
  }
  if (offset < kIsrAt) return common_read(offset - kCommonAt, size);
  if (offset < kDeviceAt) {
    const uint8_t isr = m_isr;
    m_isr = 0;  // reading ISR clears it (4.1.4.5)
    return isr;
  }
  if (offset < kNotifyAt) {
    uint8_t config[12] = {};
    std::memcpy(config, m_mac, 6);
    config[6] = uint8_t(m_net_status), config[7] = uint8_t(m_net_status >> 8);
    config[8] = 1;  // max_virtqueue_pairs
    config[10] = uint8_t(1500 & 0xff), config[11] = uint8_t(1500 >> 8);
    const uint64_t at = offset - kDeviceAt;
    uint64_t v = 0;
    for (uint32_t i = 0; i < size && at + i < sizeof(config); ++i) v |= uint64_t(config[at + i]) << (8 * i);
    return v;
  }
  return 0;
}

void VirtioNetDevice::bar_write(int bar, uint64_t offset, uint32_t size, uint64_t value) {
  if (bar == kBarMsix) {
    if (offset >= kPbaAt || size != 4) return;
    const uint64_t entry = offset / 16, word = (offset % 16) / 4;
    if (entry >= kMsixEntries) return;
    m_msix_table[entry][word] = uint32_t(value);
    if (word == 3 && !(value & 1) && (m_msix_pending & (1ull << entry))) interrupt(uint16_t(entry));
    return;
  }
  if (offset < kIsrAt) {
    common_write(offset - kCommonAt, size, value);
    return;
  }
  if (offset >= kNotifyAt) {
    // The value names the queue (4.1.5.2); its address is where this device said it would be.
    const uint64_t queue = (offset - kNotifyAt) / kNotifyMultiplier;
    if (queue != value) m_error = "a notification names another queue than its address";
    if (value == 1) process_tx();
    // A receive notification only says buffers were added: inject() finds them.
  }
}

}  // namespace sim
