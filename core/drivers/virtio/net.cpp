#include "core/drivers/virtio/net.h"

#include "core/kernel.h"
#include "core/lib/print.h"

namespace tandem {

namespace {

constexpr u16 kRxQueue = 0, kTxQueue = 1;
constexpr u16 kVirtioNetSLinkUp = 1;
constexpr u32 kConfigMac = 0, kConfigStatus = 6;
constexpr u16 kDeviceNet = 1;

u16 queue_size_for(u16 device_max) {
  u16 size = device_max < Virtqueue::kMaxSize ? device_max : Virtqueue::kMaxSize;
  while (size & (size - 1)) size &= size - 1;  // down to a power of two
  return size;
}

}  // namespace

bool VirtioNet::start(hal::PciAddress address) {
  auto give_up = [&](const char* why) {
    klog("virtio-net: %02x:%02x.%x: %s", address.bus, address.device, address.function, why);
    m_pci.fail();
    if (m_irq_registered) m_kernel.unregister_irq_handler(m_irq);
    m_irq_registered = false;
    m_rx.destroy();
    m_tx.destroy();
    return false;
  };
  if (!m_pci.open(address)) {
    klog("virtio-net: %02x:%02x.%x: %s", address.bus, address.device, address.function, m_pci.error());
    return false;
  }
  u64 features = 0;
  if (!m_pci.negotiate(kVirtioFVersion1 | kVirtioNetFMac | kVirtioNetFStatus, &features)) return give_up(m_pci.error());
  m_has_status = (features & kVirtioNetFStatus) != 0;

  const u16 rx_size = queue_size_for(m_pci.max_queue_size(kRxQueue));
  const u16 tx_size = queue_size_for(m_pci.max_queue_size(kTxQueue));
  if (rx_size == 0 || tx_size == 0) return give_up("the device has no receive or transmit queue");
  if (m_rx.create(rx_size, kBufferLength).is_error() || m_tx.create(tx_size, kBufferLength).is_error())
    return give_up("out of memory for the rings");

  // One MSI-X vector on CPU 0 for both queues and configuration changes.
  u16 vector = kNoMsixVector;
  hal::MsiMessage message{};
  if (m_pci.has_msix() && hal::msi_allocate(0, &message, &m_irq)) {
    if (!m_kernel.register_irq_handler(m_irq, &VirtioNet::on_interrupt, this)) return give_up("no free irq handler slot");
    m_irq_registered = true;
    if (m_pci.enable_msix(0, message, 0)) {
      vector = 0;
    } else {
      m_kernel.unregister_irq_handler(m_irq);
      m_irq_registered = false;
    }
  }
  if (!m_pci.setup_queue(kRxQueue, m_rx, vector) || !m_pci.setup_queue(kTxQueue, m_tx, vector))
    return give_up(m_pci.error());

  if (features & kVirtioNetFMac) {
    if (!m_pci.read_device_config(kConfigMac, m_mac, kMacLength)) return give_up("cannot read the MAC address");
  } else {
    // 5.1.5: without VIRTIO_NET_F_MAC the driver picks one: locally administered, from entropy.
    hal::random_bytes(m_mac, kMacLength);
    m_mac[0] = u8((m_mac[0] & 0xfe) | 0x02);
  }
  // Sent buffers are reclaimed by the next transmit or poll: their completions need no
  // interrupt (one per received frame or batch is enough), except while the ring is full.
  m_tx.set_interrupts(false);
  // The receive ring full before DRIVER_OK, so the first frame finds a buffer (5.1.6.3).
  for (u16 id = 0; id < m_rx.size(); ++id) m_rx.post(id, kBufferLength, true);
  m_rx.publish();
  m_pci.driver_ok();
  if (m_pci.status() & kStatusNeedsReset) return give_up("the device needs a reset right after DRIVER_OK");
  m_pci.notify(kRxQueue);
  read_link();
  // From here on poll and transmit may touch the rings; an interrupt that came earlier (a
  // configuration change) found nothing to do.
  SpinLockGuard guard(m_lock);
  m_running = true;
  return true;
}

void VirtioNet::stop() {
  // No new poll or transmit from here on; wait for a poll that is delivering a frame (the lock
  // is dropped around the receive callback) to finish with the rings.
  for (;;) {
    SpinLockGuard guard(m_lock);
    m_running = false;
    if (!m_polling) break;
    guard.unlock();
    hal::cpu_relax();
  }
  hal::IrqFlags flags = hal::irq_save();
  m_pci.reset();
  hal::irq_restore(flags);
  if (m_irq_registered) m_kernel.unregister_irq_handler(m_irq);
  m_irq_registered = false;
  m_rx.destroy();
  m_tx.destroy();
}

void VirtioNet::read_link() {
  if (!m_has_status) {
    m_link_up = true;  // 5.1.4: without VIRTIO_NET_F_STATUS the link is assumed up
    return;
  }
  u8 raw[2];
  if (m_pci.read_device_config(kConfigStatus, raw, 2)) m_link_up = ((raw[0] | raw[1] << 8) & kVirtioNetSLinkUp) != 0;
}

void VirtioNet::stop_broken(const char* why) {
  if (m_failure != nullptr) return;
  klog("virtio-net: device stopped: %s", why);
  // A reset makes the device let go of every buffer (4.1.4.3.2), so it can write no more.
  m_pci.reset();
  m_pci.fail();
  // Last: failure() is read without the lock, and says the device is already stopped.
  m_failure = why;
}

bool VirtioNet::reclaim_transmitted() {
  for (;;) {
    u16 id;
    u32 written;
    const char* why = nullptr;
    const Virtqueue::Pop r = m_tx.pop(&id, &written, &why);
    if (r == Virtqueue::Pop::Empty) return true;
    if (r == Virtqueue::Pop::Broken) {
      stop_broken(why);
      return false;
    }
  }
}

bool VirtioNet::transmit(const void* frame, usize length) {
  if (length < kEthernetHeader || length > kMaxFrame) return false;
  SpinLockGuard guard(m_lock);
  if (m_failure != nullptr || !m_running) return false;
  // Reclaim what the device finished, so a sender that never polls still finds slots.
  if (!reclaim_transmitted()) return false;
  if (m_tx.in_flight_count() == m_tx.size()) {
    // Full. The frame is refused, and lwIP keeps a refused TCP segment or ACK to send again, but
    // on its own it tries again only at its next timer (250 ms for an ACK, the retransmission
    // timeout for data): with a hundred connections bursting into QEMU's 256 slots, connections
    // sat idle that long. So completions interrupt until the ring has room (poll then tells the
    // stack, which sends what it held back). Asked for first and then looked again: a completion
    // in between is seen here, a later one interrupts.
    m_tx_stalled = true;
    m_tx.set_interrupts(true);
    if (!reclaim_transmitted()) return false;
  }
  if (m_tx.in_flight_count() == m_tx.size()) {
    ++m_stats.tx_ring_full;
    return false;
  }
  u16 id = m_tx_cursor;
  while (m_tx.in_flight(id)) id = u16((id + 1) % m_tx.size());
  m_tx_cursor = u16((id + 1) % m_tx.size());
  u8* buffer = m_tx.buffer(id);
  fill_bytes(buffer, 0, kHeaderLength);  // no checksum offload, no GSO
  copy_bytes(buffer + kHeaderLength, frame, length);
  m_tx.post(id, u32(kHeaderLength + length), false);
  m_tx.publish();
  if (m_tx.device_wants_notification()) m_pci.notify(kTxQueue);
  ++m_stats.tx_frames;
  m_stats.tx_bytes += length;
  return true;
}

void VirtioNet::set_receiver(ReceiveFn receive, void* context) {
  SpinLockGuard guard(m_lock);
  m_receive = receive;
  m_receive_context = context;
}

bool VirtioNet::poll() {
  SpinLockGuard guard(m_lock);
  if (m_polling || m_failure != nullptr || !m_running) return false;
  m_polling = true;
  if (!reclaim_transmitted()) {
    m_polling = false;
    return false;
  }
  bool resumed = false;
  if (m_tx_stalled && m_tx.in_flight_count() < m_tx.size()) {
    m_tx_stalled = false;
    m_tx.set_interrupts(false);
    resumed = true;
    ++m_stats.tx_resumed;
  }
  // Buffers go back to the device only after the used ring is drained: until then a used entry
  // that names one of them again is a device error the ring check catches (not in flight),
  // instead of a buffer the device was never offered a second time.
  u16 repost[Virtqueue::kMaxSize];
  u32 reposts = 0;
  for (;;) {
    u16 id;
    u32 written;
    const char* why = nullptr;
    const Virtqueue::Pop r = m_rx.pop(&id, &written, &why);
    if (r == Virtqueue::Pop::Empty) break;
    if (r == Virtqueue::Pop::Broken) {
      stop_broken(why);
      m_polling = false;
      return resumed;
    }
    if (written < kHeaderLength) {
      stop_broken("a received length is shorter than the virtio-net header");
      m_polling = false;
      return resumed;
    }
    const u32 frame_length = written - kHeaderLength;
    if (frame_length < kEthernetHeader || frame_length > kMaxFrame || m_receive == nullptr) {
      ++m_stats.rx_dropped;
    } else {
      ++m_stats.rx_frames;
      m_stats.rx_bytes += frame_length;
      const ReceiveFn receive = m_receive;
      void* context = m_receive_context;
      // Slot `id` is out of the device's hands and only poll reposts it; m_polling keeps any
      // other poll out meanwhile, and transmit touches only the tx queue.
      m_lock.release();
      receive(context, m_rx.buffer(id) + kHeaderLength, frame_length);
      m_lock.acquire();
      if (m_failure != nullptr || !m_running) {
        m_polling = false;
        return resumed;
      }
    }
    repost[reposts++] = id;
  }
  if (reposts != 0) {
    for (u32 i = 0; i < reposts; ++i) m_rx.post(repost[i], kBufferLength, true);
    m_rx.publish();
    if (m_rx.device_wants_notification()) m_pci.notify(kRxQueue);
  }
  read_link();
  m_polling = false;
  return resumed;
}

void VirtioNet::on_interrupt(void* context, u32) {
  auto* self = static_cast<VirtioNet*>(context);
  ++self->m_stats.interrupts;
  net_device_work(self->m_kernel, *self);
}

// ---------------------------------------------------------------------------------------------
// Finding the card (core/net/netdev.h)
// ---------------------------------------------------------------------------------------------

NetDevice* netdev_probe(Kernel& kernel) {
  if (kernel.net_device != nullptr) return kernel.net_device;
  for (u8 device = 0; device < 32; ++device) {
    const u32 header = hal::pci_config_read(hal::PciAddress{0, device, 0}, 0x0c, 4);
    const u8 functions = ((header >> 16) & 0x80) ? 8 : 1;  // the multi-function bit
    for (u8 function = 0; function < functions; ++function) {
      const hal::PciAddress address{0, device, function};
      const u32 id = hal::pci_config_read(address, 0, 4);
      const u16 vendor = u16(id), product = u16(id >> 16);
      if (vendor != kVirtioVendor) continue;
      // Modern (0x1041) or transitional (0x1000 with subsystem id 1) network devices.
      const bool net = product == kVirtioModernDeviceBase + kDeviceNet ||
                       (product == 0x1000 && hal::pci_config_read(address, 0x2e, 2) == kDeviceNet);
      if (!net) continue;
      auto* nic = kernel.heap().make<VirtioNet>(kernel);
      if (nic == nullptr) {
        klog("virtio-net: out of memory");
        return nullptr;
      }
      if (!nic->start(address)) {
        kernel.heap().destroy(nic);
        continue;
      }
      const u8* m = nic->mac();
      if (nic->has_irq()) {
        klog("virtio-net: %02x:%02x:%02x:%02x:%02x:%02x link %s, irq %u", m[0], m[1], m[2], m[3], m[4], m[5],
             nic->link_up() ? "up" : "down", nic->irq());
      } else {
        klog("virtio-net: %02x:%02x:%02x:%02x:%02x:%02x link %s, no interrupt (polled)", m[0], m[1], m[2], m[3],
             m[4], m[5], nic->link_up() ? "up" : "down");
      }
      kernel.net_device = nic;
      return nic;
    }
  }
  return nullptr;
}

NetDevice* kernel_net_device(Kernel& kernel) { return kernel.net_device; }

void netdev_shutdown(Kernel& kernel) {
  // The probe only ever stores a VirtioNet.
  auto* nic = static_cast<VirtioNet*>(kernel.net_device);
  if (nic == nullptr) return;
  kernel.net_device = nullptr;
  nic->stop();
  kernel.heap().destroy(nic);
}

}  // namespace tandem
