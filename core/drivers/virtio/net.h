// virtio-net (virtio spec 5.1) over the modern PCI transport: one receive and one transmit
// queue, VIRTIO_NET_F_MAC and VIRTIO_NET_F_STATUS, no offloads. The receive ring is kept full of
// 1,526-byte buffers (the 12-byte virtio_net_hdr and a 1,514-byte frame); transmit copies each
// frame behind a zeroed header into a free slot. One MSI-X vector, routed to CPU 0, serves both
// queues and configuration changes; without MSI-X the device is polled (NetDevice::poll).
// Transmit completions interrupt only while the transmit ring is full (see transmit()).
#pragma once

#include <hal.h>

#include "core/drivers/virtio/virtio_pci.h"
#include "core/drivers/virtio/virtqueue.h"
#include "core/lib/spinlock.h"
#include "core/net/netdev.h"

namespace tandem {

class VirtioNet final : public NetDevice {
 public:
  static constexpr u32 kHeaderLength = 12;  // struct virtio_net_hdr with VERSION_1
  static constexpr u32 kBufferLength = kHeaderLength + kMaxFrame;

  explicit VirtioNet(Kernel& kernel) : m_kernel(kernel) {}
  TANDEM_NONCOPYABLE(VirtioNet);

  // Brings the device at `address` up. false (the reason logged) leaves the device reset and
  // nothing allocated.
  bool start(hal::PciAddress address);
  // Resets the device and frees the rings.
  void stop();
  u32 irq() const { return m_irq; }
  bool has_irq() const { return m_irq_registered; }

  const u8* mac() const override { return m_mac; }
  bool link_up() const override { return m_link_up; }
  bool transmit(const void* frame, usize length) override;
  void set_receiver(ReceiveFn receive, void* context) override;
  bool poll() override;
  const char* failure() const override { return m_failure; }
  Stats stats() const override { return m_stats; }

 private:
  static void on_interrupt(void* context, u32 irq);
  void stop_broken(const char* why);  // under m_lock
  bool reclaim_transmitted();         // under m_lock; false when the device broke the protocol
  void read_link();

  Kernel& m_kernel;
  VirtioPci m_pci;
  Virtqueue m_rx, m_tx;
  // Taken by transmit (any CPU, under the stack's lock) and poll (CPU 0); never held while
  // calling the receiver; only the console's lock (a log line) is taken under it.
  SpinLock m_lock{LockRank::NetDevice};
  u8 m_mac[kMacLength] = {};
  bool m_has_status = false;
  bool m_link_up = false;
  bool m_polling = false;
  bool m_running = false;  // between a successful start() and stop(): poll and transmit work
  bool m_irq_registered = false;
  u32 m_irq = 0;
  u16 m_tx_cursor = 0;
  // transmit() refused a frame for a full ring: transmit completions interrupt until there is
  // room again, which the next poll() reports to the stack.
  bool m_tx_stalled = false;
  const char* m_failure = nullptr;
  ReceiveFn m_receive = nullptr;
  void* m_receive_context = nullptr;
  Stats m_stats;
};

}  // namespace tandem
