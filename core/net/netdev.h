// core/net/netdev.h: what the network stack sees of a network card.
//
// One interface between a NIC driver (core/drivers/virtio/net.cpp today) and the stack
// (core/net/stack.cpp, lwIP's netif glue). It is abstract so that unit tests can mock either
// side; the kernel has at most one device, found at boot (see netdev_probe below).
//
// Frames are Ethernet frames without the FCS: destination MAC, source MAC, EtherType, payload;
// at most kMaxFrame bytes (1,514: a 1,500-byte MTU plus the 14-byte header).
//
// Threading: the stack runs on CPU 0. The driver calls the receive callback on CPU 0 only,
// from poll() (which the driver's interrupt handler calls, and which the stack may call from
// its timer tick), with interrupts disabled and no driver lock held: the callback must not
// block, but it may call transmit() (an ARP reply, a TCP ACK). transmit() may be called from
// any context that does not block, on any CPU.
#pragma once

#include "core/lib/types.h"

namespace tandem {

class Kernel;

inline constexpr usize kMacLength = 6;
inline constexpr usize kEthernetHeader = 14;
inline constexpr usize kMaxFrame = 1514;

class NetDevice {
 public:
  // Called with each received frame, validated (length within [kEthernetHeader, kMaxFrame]).
  // `frame` is valid only during the call: the stack copies what it keeps.
  using ReceiveFn = void (*)(void* context, const void* frame, usize length);

  // The card's hardware address (6 bytes, kMacLength).
  virtual const u8* mac() const = 0;
  // Whether the link is up (VIRTIO_NET_S_LINK_UP; always true on a device without status).
  virtual bool link_up() const = 0;
  // Queues `frame` (kEthernetHeader..kMaxFrame bytes) for sending; the bytes are copied, so the
  // caller's buffer is free again on return. false when the frame cannot be queued now: the
  // transmit ring is full, the length is out of range, or the device has been stopped. After a
  // full ring the device interrupts once it has room again, and the poll() that finds the room
  // says so, so that the stack sends what it had to hold back.
  virtual bool transmit(const void* frame, usize length) = 0;
  // Registers the stack's receive callback (null to stop receiving). Frames that arrive while
  // no callback is registered are dropped and their buffers reused.
  virtual void set_receiver(ReceiveFn receive, void* context) = 0;
  // Processes what the device finished: delivers received frames to the callback, reclaims sent
  // buffers, re-reads the link status. Cheap when nothing happened. CPU 0. true when transmit()
  // had refused a frame for a full ring and the ring has room again (once per such episode).
  virtual bool poll() = 0;
  // A device that broke the protocol (a bad index, id or length in its rings) is stopped: it
  // transmits and receives nothing more. Null while it works, else why it was stopped.
  virtual const char* failure() const = 0;

  // Counters, for tests and /proc.
  struct Stats {
    u64 tx_frames = 0;
    u64 tx_bytes = 0;
    u64 tx_ring_full = 0;  // transmit() returned false because every tx buffer was in flight
    u64 tx_resumed = 0;    // the ring had room again after such a refusal (poll returned true)
    u64 rx_frames = 0;
    u64 rx_bytes = 0;
    u64 rx_dropped = 0;  // arrived while no receiver was registered, or too short/long
    u64 interrupts = 0;
  };
  virtual Stats stats() const = 0;

 protected:
  // Not virtual: a device is never deleted through this interface (the freestanding kernel has
  // no operator delete); netdev_shutdown destroys the concrete driver.
  ~NetDevice() = default;
};

// Finds the first supported network card on the PCI bus, brings it up with interrupts routed
// to CPU 0 and stores it in the kernel (kernel_net_device). Returns null when there is none, or
// when it could not be brought up (the reason is logged). Called once, at boot, on CPU 0.
NetDevice* netdev_probe(Kernel& kernel);

// The card's interrupt: what it finished is processed under the stack's lock (core/net/stack.cpp),
// so the frames of one interrupt enter lwIP in one hold of the lock and pollers hear once; when
// the transmit ring has room again after being full, lwIP sends what it held back.
void net_device_work(Kernel& kernel, NetDevice& device);
// The kernel's network card, or null when it has none.
NetDevice* kernel_net_device(Kernel& kernel);
// Stops the card (resets the device) and frees its rings and buffers; the kernel has none
// afterwards. For kernels that are torn down (the simulator); the booted kernel never calls it.
void netdev_shutdown(Kernel& kernel);

}  // namespace tandem
