// net_rx: Ethernet frames from the input arrive through the simulated virtio-net device
// (sim/virtio) and the driver (core/drivers/virtio) into lwIP (core/net/stack), as on a booted
// kernel whose card is attached at boot. Frames are raw bytes, or templates the harness
// completes so that they get past lwIP's first checks: ARP for 10.0.2.15, and IPv4 (ICMP, TCP,
// UDP or any protocol) from 10.0.2.2 with correct IP and transport checksums unless the input
// asks for broken ones. Between frames virtual time passes, so lwIP's timers (ARP, TCP) run.
//
// Oracles: no crash, panic, hang or leak (ASan, UBSan, the harness's checks), and every frame
// the kernel sends is a valid Ethernet frame whose IPv4 header checksum holds.
//
// Not yet: sockets. No PCB listens, so TCP segments meet closed ports (RST) and UDP datagrams
// ICMP port-unreachable; listening sockets opened from user mode belong in this target next.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/kernel.h"
#include "core/net/netdev.h"
#include "core/net/stack.h"
#include "fuzz/fuzz.h"
#include "fuzz/kernel_run.h"
#include "sim/cpus/pci_bus.h"
#include "sim/virtio/net_device.h"

namespace {

constexpr uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr uint8_t kPeerMac[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
constexpr uint8_t kGuestIp[4] = {10, 0, 2, 15};
constexpr uint8_t kPeerIp[4] = {10, 0, 2, 2};

struct Run {
  fuzz::FuzzInput* in;
  sim::VirtioNetDevice* device;
};

uint16_t checksum(const uint8_t* data, size_t length, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < length; i += 2) sum += uint32_t(data[i] << 8 | data[i + 1]);
  if (length & 1) sum += uint32_t(data[length - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// Every frame the kernel sent: an Ethernet frame of a legal length, from the card's MAC; IPv4
// packets with a header checksum that holds and a total length within the frame.
void check_sent(sim::VirtioNetDevice& device) {
  for (const std::vector<uint8_t>& f : device.transmitted()) {
    if (f.size() < 14 || f.size() > 1514) __builtin_trap();
    if (std::memcmp(f.data() + 6, kGuestMac, 6) != 0) __builtin_trap();
    if (f[12] == 0x08 && f[13] == 0x00) {
      if (f.size() < 34) __builtin_trap();
      const size_t ihl = (f[14] & 0xf) * 4u;
      if ((f[14] >> 4) != 4 || ihl < 20 || 14 + ihl > f.size()) __builtin_trap();
      if (checksum(f.data() + 14, ihl) != 0) __builtin_trap();
      const size_t total = size_t(f[16] << 8 | f[17]);
      if (total < ihl || 14 + total > f.size()) __builtin_trap();
    }
  }
  device.transmitted().clear();
}

// An IPv4 frame from the peer: header fields and payload from the input.
size_t ipv4_frame(fuzz::FuzzInput& in, uint8_t* f) {
  std::memcpy(f, kGuestMac, 6);
  std::memcpy(f + 6, kPeerMac, 6);
  put16(f + 12, 0x0800);
  uint8_t* ip = f + 14;
  const uint8_t flags = in.take_u8();
  static const uint8_t kProtocols[] = {1, 6, 17, 6, 17, 2};
  const uint8_t protocol = (flags & 0x80) ? in.take_u8() : in.pick(kProtocols);
  const size_t payload = in.take_range(0, 1480);
  ip[0] = 0x45;
  ip[1] = in.take_u8();                            // TOS
  put16(ip + 4, in.take_u16());                    // identification
  put16(ip + 6, (flags & 0x40) ? in.take_u16() : 0x4000);  // flags and fragment offset (DF)
  ip[8] = (flags & 0x20) ? in.take_u8() : 64;      // TTL
  ip[9] = protocol;
  std::memcpy(ip + 12, kPeerIp, 4);
  if (flags & 0x10) {
    ip[16] = 255, ip[17] = 255, ip[18] = 255, ip[19] = 255;  // broadcast
  } else {
    std::memcpy(ip + 16, kGuestIp, 4);
  }
  uint8_t* l4 = ip + 20;
  for (size_t i = 0; i < payload; ++i) l4[i] = in.take_u8();
  const uint16_t total = static_cast<uint16_t>(20 + payload);
  put16(ip + 2, (flags & 0x08) ? in.take_u16() : total);
  put16(ip + 10, 0);
  put16(ip + 10, checksum(ip, 20));
  if (flags & 0x04) ip[10] ^= 0x5a;  // a broken IP checksum
  // Transport checksums over the pseudo-header, so segments reach TCP and UDP proper.
  if ((flags & 0x02) == 0) {
    uint32_t pseudo = 0;
    for (int i = 0; i < 8; i += 2) pseudo += uint32_t(ip[12 + i] << 8 | ip[13 + i]);
    pseudo += protocol;
    pseudo += uint32_t(payload);
    if (protocol == 6 && payload >= 20) {
      put16(l4 + 16, 0);
      put16(l4 + 16, checksum(l4, payload, pseudo));
    } else if (protocol == 17 && payload >= 8) {
      put16(l4 + 4, uint16_t(payload));
      put16(l4 + 6, 0);
      put16(l4 + 6, checksum(l4, payload, pseudo));
    } else if (protocol == 1 && payload >= 4) {
      put16(l4 + 2, 0);
      put16(l4 + 2, checksum(l4, payload));
    }
  }
  return 14 + 20 + payload;
}

size_t arp_frame(fuzz::FuzzInput& in, uint8_t* f) {
  const uint8_t flags = in.take_u8();
  if (flags & 1) {
    std::memcpy(f, kGuestMac, 6);
  } else {
    std::memset(f, 0xff, 6);
  }
  std::memcpy(f + 6, kPeerMac, 6);
  put16(f + 12, 0x0806);
  uint8_t* a = f + 14;
  put16(a, 1);                                       // Ethernet
  put16(a + 2, 0x0800);                              // IPv4
  a[4] = 6, a[5] = 4;
  put16(a + 6, (flags & 2) ? 2 : 1);                 // reply or request
  std::memcpy(a + 8, kPeerMac, 6);
  std::memcpy(a + 14, kPeerIp, 4);
  if (flags & 4) a[17] = in.take_u8();               // another sender on the subnet
  std::memcpy(a + 18, (flags & 2) ? kGuestMac : (const uint8_t*)"\0\0\0\0\0\0", 6);
  std::memcpy(a + 24, kGuestIp, 4);
  if (flags & 8) a[27] = in.take_u8();               // asking for another address
  return 42 + ((flags & 16) ? in.take_range(0, 18) : 0);  // Ethernet padding
}

void init(tandem::Kernel& kernel, void* arg) {
  Run& run = *static_cast<Run*>(arg);
  fuzz::FuzzInput& in = *run.in;
  sim::VirtioNetDevice& device = *run.device;
  tandem::NetDevice* nic = tandem::netdev_probe(kernel);
  if (nic == nullptr) hal::panic("net_rx: the virtio-net device was not found");
  if (tandem::net_stack_attach_device(kernel, *nic, tandem::NetConfig{}).is_error())
    hal::panic("net_rx: the card cannot join the stack");
  uint8_t frame[1600];
  for (int op = 0; op < 32 && !in.empty(); ++op) {
    size_t length = 0;
    switch (in.take_u8() % 4) {
      case 0: {  // raw bytes, addressed to the card (or broadcast)
        length = in.take_range(0, 1514);
        for (size_t i = 0; i < length; ++i) frame[i] = in.take_u8();
        if (length >= 6 && (frame[0] & 1) == 0) std::memcpy(frame, kGuestMac, 6);
        break;
      }
      case 1:
        length = ipv4_frame(in, frame);
        break;
      case 2:
        length = arp_frame(in, frame);
        break;
      case 3: {  // time passes: lwIP's timers (ARP, TCP retransmission) on CPU 0
        const uint64_t ms = in.take_range(1, 3000);
        kernel.sleep_until(hal::monotonic_ns() + ms * 1'000'000);
        break;
      }
    }
    if (length > 0 && !device.inject(frame, length)) {
      // Every buffer is in use: let the driver catch up and try once more.
      nic->poll();
      device.inject(frame, length);
    }
    nic->poll();
    check_sent(device);
  }
  // Down in this order: lwIP lets go of the card, then the card goes. Both inside the run, so
  // ~Kernel (outside it) finds nothing left to do.
  tandem::net_stack_shutdown(kernel);
  check_sent(device);
  tandem::netdev_shutdown(kernel);
  hal::shutdown(0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  sim::VirtioNetDevice device(kGuestMac, 64);
  constexpr uint32_t kSlot = 4;
  sim::pci_plug(kSlot, &device);
  Run r{&in, &device};
  fuzz::KernelRun run;
  run.cpus = 1;
  run.strategy.kind = sim::StrategyKind::Replay;  // one CPU, in order
  static const std::vector<sim::Decision> kNone;
  run.strategy.replay = &kNone;
  run.max_steps = 2'000'000;
  run.max_threads = 8;
  run.init = &init;
  run.init_arg = &r;
  const sim::RunResult result = fuzz::run_kernel(run);
  sim::pci_unplug(kSlot);
  fuzz::check(result, fuzz::Accept::FinishedOnly);
  return 0;
}
