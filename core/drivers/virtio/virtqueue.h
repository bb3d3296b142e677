// The driver side of a virtio 1.x split virtqueue (virtio spec 2.7): a descriptor table, the
// available ring the driver writes and the used ring the device writes, each in its own page.
//
// Every buffer is one descriptor, and descriptor i always describes buffer slot i, so a used
// ring entry's id names the slot directly. Nothing the device writes is trusted: pop() reads
// the used index and each entry once, checks them against what the driver itself recorded in a
// private page the device never sees (which slots are in flight, how long each buffer is), and
// reports a broken device instead of following a bad id or length anywhere.
#pragma once

#include <hal.h>

#include "core/lib/result.h"
#include "core/lib/types.h"

namespace tandem {

class Virtqueue {
 public:
  static constexpr u16 kMaxSize = 256;  // the driver asks for at most this many entries

  Virtqueue() = default;
  TANDEM_NONCOPYABLE(Virtqueue);

  // Allocates the rings for `size` entries (a power of two, 1..kMaxSize) and `size` buffers of
  // `buffer_size` bytes each (at most 2,048: two per page). ENOMEM leaves nothing allocated.
  Result<void> create(u16 size, u32 buffer_size);
  // Frees the rings and buffers (the device must have been reset first).
  void destroy();
  bool created() const { return m_desc != nullptr; }

  u16 size() const { return m_size; }
  u64 desc_phys() const { return m_desc_phys; }
  u64 avail_phys() const { return m_avail_phys; }
  u64 used_phys() const { return m_used_phys; }

  // Buffer slot `id`: the driver's view of its bytes, and its capacity.
  u8* buffer(u16 id) const;
  u32 buffer_size() const { return m_buffer_size; }
  bool in_flight(u16 id) const;
  u16 in_flight_count() const { return m_in_flight; }

  // Hands slot `id` (not in flight) to the device: `length` bytes at its start, device-writable
  // when `writable`. It becomes visible to the device at the next publish().
  void post(u16 id, u32 length, bool writable);
  // Publishes the posted slots to the device (the available index, after a release fence).
  void publish();
  // Whether the device asked to be notified of new buffers (VIRTQ_USED_F_NO_NOTIFY clear): read
  // after publish(). Only a hint from the device; ignoring it costs a register write.
  bool device_wants_notification() const;
  // Asks the device not to interrupt when it uses buffers of this queue (VIRTQ_AVAIL_F_NO_INTERRUPT),
  // or to interrupt again. Only a hint to the device. Turning interrupts on is ordered before the
  // used ring is read again, so a driver that asks and then looks either sees an entry the device
  // used before it read the flag, or gets an interrupt for it.
  void set_interrupts(bool wanted);

  enum class Pop : u8 { Empty, Ok, Broken };
  // Takes the next used entry: its slot id and the length the device reports having written.
  // Broken (with *why set) when the device broke the protocol: the used index moved by more than
  // the slots in flight, an id out of range or not in flight, a length beyond the buffer. The
  // queue must not be used afterwards.
  Pop pop(u16* id, u32* length, const char** why);

 private:
  struct Meta;  // the driver's private bookkeeping page

  u16 m_size = 0;
  u32 m_buffer_size = 0;
  u16 m_avail_idx = 0;  // next available ring position (free-running)
  u16 m_last_used = 0;  // next used ring position to read (free-running)
  u16 m_in_flight = 0;
  u64 m_desc_phys = 0, m_avail_phys = 0, m_used_phys = 0, m_meta_phys = 0;
  u8* m_desc = nullptr;
  u8* m_avail = nullptr;
  u8* m_used = nullptr;
  Meta* m_meta = nullptr;
};

}  // namespace tandem
