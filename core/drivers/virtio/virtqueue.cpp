#include "core/drivers/virtio/virtqueue.h"

namespace tandem {

namespace {

// Split virtqueue layout (virtio 1.x, 2.7): all fields little-endian, like x86.
constexpr u32 kDescSize = 16;       // le64 addr, le32 len, le16 flags, le16 next
constexpr u16 kDescFWrite = 2;      // VIRTQ_DESC_F_WRITE: the device writes this buffer
constexpr u32 kRingHeader = 4;      // le16 flags, le16 idx
constexpr u32 kUsedElemSize = 8;    // le32 id, le32 len
constexpr u32 kBuffersPerPage = 2;

// Device-shared memory is read and written with single volatile accesses: the compiler must
// neither merge, repeat nor elide them, since the device changes them behind its back. A value
// read from the device is read once into a local and only the local is checked and used.
template <typename T>
T read_shared(const u8* base, u32 offset) {
  return *reinterpret_cast<const volatile T*>(base + offset);
}
template <typename T>
void write_shared(u8* base, u32 offset, T value) {
  *reinterpret_cast<volatile T*>(base + offset) = value;
}

}  // namespace

struct Virtqueue::Meta {
  u32 length[kMaxSize];        // bytes posted in slot i
  u8 in_flight[kMaxSize];      // slot i is owned by the device
  u64 pages[kMaxSize / kBuffersPerPage];  // buffer pages, two slots each
};

Result<void> Virtqueue::create(u16 size, u32 buffer_size) {
  static_assert(sizeof(Meta) <= hal::kPageSize);
  VERIFY(!created());
  VERIFY(size >= 1 && size <= kMaxSize && (size & (size - 1)) == 0);
  VERIFY(buffer_size > 0 && buffer_size <= hal::kPageSize / kBuffersPerPage);
  u64 pages[4] = {};
  for (u64& p : pages) {
    p = hal::phys_alloc_page();
    if (p == 0) {
      for (u64 q : pages) {
        if (q != 0) hal::phys_free_page(q);
      }
      return Errno::kENOMEM;
    }
    fill_bytes(hal::phys_to_virt(p), 0, hal::kPageSize);
  }
  m_desc_phys = pages[0];
  m_avail_phys = pages[1];
  m_used_phys = pages[2];
  m_meta_phys = pages[3];
  m_desc = static_cast<u8*>(hal::phys_to_virt(m_desc_phys));
  m_avail = static_cast<u8*>(hal::phys_to_virt(m_avail_phys));
  m_used = static_cast<u8*>(hal::phys_to_virt(m_used_phys));
  m_meta = static_cast<Meta*>(hal::phys_to_virt(m_meta_phys));
  m_size = size;
  m_buffer_size = buffer_size;
  m_avail_idx = m_last_used = m_in_flight = 0;
  const u32 buffer_pages = (size + kBuffersPerPage - 1) / kBuffersPerPage;
  for (u32 i = 0; i < buffer_pages; ++i) {
    const u64 page = hal::phys_alloc_page();
    if (page == 0) {
      destroy();
      return Errno::kENOMEM;
    }
    m_meta->pages[i] = page;
  }
  // Descriptor i describes slot i for the queue's whole life; only its length and flags change.
  for (u16 i = 0; i < size; ++i) {
    const u64 phys = m_meta->pages[i / kBuffersPerPage] + (i % kBuffersPerPage) * (hal::kPageSize / kBuffersPerPage);
    write_shared<u64>(m_desc, i * kDescSize, phys);
  }
  return {};
}

void Virtqueue::destroy() {
  if (!created()) return;
  for (u64 page : m_meta->pages) {
    if (page != 0) hal::phys_free_page(page);
  }
  hal::phys_free_page(m_desc_phys);
  hal::phys_free_page(m_avail_phys);
  hal::phys_free_page(m_used_phys);
  hal::phys_free_page(m_meta_phys);
  m_desc = m_avail = m_used = nullptr;
  m_meta = nullptr;
  m_size = 0;
}

u8* Virtqueue::buffer(u16 id) const {
  VERIFY(id < m_size);
  return static_cast<u8*>(hal::phys_to_virt(m_meta->pages[id / kBuffersPerPage])) +
         (id % kBuffersPerPage) * (hal::kPageSize / kBuffersPerPage);
}

bool Virtqueue::in_flight(u16 id) const { return id < m_size && m_meta->in_flight[id] != 0; }

void Virtqueue::post(u16 id, u32 length, bool writable) {
  VERIFY(id < m_size && m_meta->in_flight[id] == 0 && length <= m_buffer_size);
  m_meta->in_flight[id] = 1;
  m_meta->length[id] = length;
  ++m_in_flight;
  // The address was written at create(); the device may have scribbled over the table since
  // (it is in shared memory), so write it again: a descriptor the driver posts says what the
  // driver means, whatever the device did to the copy.
  const u64 phys = m_meta->pages[id / kBuffersPerPage] + (id % kBuffersPerPage) * (hal::kPageSize / kBuffersPerPage);
  write_shared<u64>(m_desc, id * kDescSize, phys);
  write_shared<u32>(m_desc, id * kDescSize + 8, length);
  write_shared<u16>(m_desc, id * kDescSize + 12, writable ? kDescFWrite : 0);
  write_shared<u16>(m_desc, id * kDescSize + 14, 0);
  write_shared<u16>(m_avail, kRingHeader + 2 * (m_avail_idx % m_size), id);
  ++m_avail_idx;
}

void Virtqueue::publish() {
  // The ring entries and descriptors must be visible before the index that covers them.
  __atomic_thread_fence(__ATOMIC_RELEASE);
  write_shared<u16>(m_avail, 2, m_avail_idx);
  // ... and the index before the notification that follows (a register write).
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool Virtqueue::device_wants_notification() const {
  constexpr u16 kUsedFNoNotify = 1;
  return (read_shared<u16>(m_used, 0) & kUsedFNoNotify) == 0;
}

void Virtqueue::set_interrupts(bool wanted) {
  constexpr u16 kAvailFNoInterrupt = 1;
  write_shared<u16>(m_avail, 0, wanted ? 0 : kAvailFNoInterrupt);
  // A store then a load of another location: only a full fence keeps the device's view of the
  // flag ahead of our next read of its used index.
  if (wanted) __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

Virtqueue::Pop Virtqueue::pop(u16* id, u32* length, const char** why) {
  const u16 used_idx = read_shared<u16>(m_used, 2);
  const u16 pending = static_cast<u16>(used_idx - m_last_used);
  if (pending == 0) return Pop::Empty;
  if (pending > m_in_flight) {
    *why = "the used index advanced past the buffers in flight";
    return Pop::Broken;
  }
  // The entries must be read after the index that published them.
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  const u32 entry = kRingHeader + kUsedElemSize * (m_last_used % m_size);
  const u32 raw_id = read_shared<u32>(m_used, entry);
  const u32 raw_length = read_shared<u32>(m_used, entry + 4);
  if (raw_id >= m_size) {
    *why = "a used entry names a descriptor beyond the queue";
    return Pop::Broken;
  }
  const u16 slot = static_cast<u16>(raw_id);
  if (m_meta->in_flight[slot] == 0) {
    *why = "a used entry names a descriptor that is not in flight";
    return Pop::Broken;
  }
  if (raw_length > m_meta->length[slot]) {
    *why = "a used entry's length exceeds its buffer";
    return Pop::Broken;
  }
  m_meta->in_flight[slot] = 0;
  --m_in_flight;
  ++m_last_used;
  *id = slot;
  *length = raw_length;
  return Pop::Ok;
}

}  // namespace tandem
