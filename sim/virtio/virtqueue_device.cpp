#include "sim/virtio/virtqueue_device.h"

#include <cstring>

#include "sim/cpus/machine.h"

namespace sim {

namespace {

constexpr uint16_t kDescFNext = 1, kDescFWrite = 2, kDescFIndirect = 4;

uint8_t* ram_of(uint64_t phys, uint64_t length) {
  Machine* m = Machine::current();
  if (m == nullptr || length == 0 || phys + length < phys) return nullptr;
  if (!m->is_ram(phys) || !m->is_ram(phys + length - 1)) return nullptr;
  return static_cast<uint8_t*>(m->phys_to_virt(phys));
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

}  // namespace

void DeviceQueue::reset() {
  size = 0;
  msix_vector = 0xffff;
  enabled = false;
  desc = driver = device = 0;
  m_last_avail = 0;
  m_used_idx = 0;
}

uint8_t* DeviceQueue::ram(uint64_t phys, uint64_t length) const { return ram_of(phys, length); }

uint16_t DeviceQueue::available() const {
  if (!enabled || size == 0) return 0;
  const uint8_t* avail = ram(driver, 4 + 2u * size);
  if (avail == nullptr) return 0;
  return static_cast<uint16_t>(load<uint16_t>(avail + 2) - m_last_avail);
}

bool DeviceQueue::interrupt_suppressed() const {
  if (!enabled || size == 0) return false;
  const uint8_t* avail = ram(driver, 4 + 2u * size);
  return avail != nullptr && (load<uint16_t>(avail) & 1) != 0;
}

bool DeviceQueue::take(uint16_t* head, std::vector<Buffer>* chain) {
  chain->clear();
  if (!enabled || size == 0) return false;
  const uint8_t* avail = ram(driver, 4 + 2u * size);
  uint8_t* table = ram(desc, 16ull * size);
  if (avail == nullptr || table == nullptr) {
    m_driver_error = "the rings are not in RAM";
    return false;
  }
  const uint16_t idx = load<uint16_t>(avail + 2);
  const uint16_t pending = static_cast<uint16_t>(idx - m_last_avail);
  if (pending == 0) return false;
  if (pending > size) {
    m_driver_error = "the available index moved by more than the queue size";
    return false;
  }
  const uint16_t first = load<uint16_t>(avail + 4 + 2 * (m_last_avail % size));
  ++m_last_avail;
  *head = first;
  uint16_t i = first;
  for (uint32_t n = 0;; ++n) {
    if (i >= size || n >= size) {
      m_driver_error = "a descriptor chain leaves the table or loops";
      chain->clear();
      return false;
    }
    const uint8_t* d = table + 16u * i;
    const uint64_t addr = load<uint64_t>(d);
    const uint32_t len = load<uint32_t>(d + 8);
    const uint16_t flags = load<uint16_t>(d + 12);
    if (flags & kDescFIndirect) {
      m_driver_error = "an indirect descriptor (VIRTIO_F_INDIRECT_DESC was not negotiated)";
      chain->clear();
      return false;
    }
    if (len != 0 && ram(addr, len) == nullptr) {
      m_driver_error = "a descriptor's buffer is not in RAM";
      chain->clear();
      return false;
    }
    chain->push_back(Buffer{addr, len, (flags & kDescFWrite) != 0});
    if ((flags & kDescFNext) == 0) break;
    i = load<uint16_t>(d + 14);
  }
  return true;
}

void DeviceQueue::put(uint16_t head, uint32_t written) { put_raw(head, written, 1); }

void DeviceQueue::put_raw(uint32_t id, uint32_t written, uint16_t advance) {
  if (size == 0) return;
  uint8_t* used = ram(device, 4 + 8u * size);
  if (used == nullptr) {
    m_driver_error = "the used ring is not in RAM";
    return;
  }
  uint8_t* e = used + 4 + 8 * (m_used_idx % size);
  store<uint32_t>(e, id);
  store<uint32_t>(e + 4, written);
  m_used_idx = static_cast<uint16_t>(m_used_idx + advance);
  // The entry before the index: a real device's write ordering (2.7.8).
  __atomic_thread_fence(__ATOMIC_RELEASE);
  store<uint16_t>(used + 2, m_used_idx);
}

bool DeviceQueue::read(const Buffer& b, uint32_t offset, void* out, uint32_t length) {
  if (uint64_t(offset) + length > b.length) return false;
  const uint8_t* p = ram_of(b.phys + offset, length);
  if (p == nullptr) return length == 0;
  std::memcpy(out, p, length);
  return true;
}

bool DeviceQueue::write(const Buffer& b, uint32_t offset, const void* in, uint32_t length) {
  if (uint64_t(offset) + length > b.length || !b.writable) return false;
  uint8_t* p = ram_of(b.phys + offset, length);
  if (p == nullptr) return length == 0;
  std::memcpy(p, in, length);
  return true;
}

}  // namespace sim
