// The virtio-net driver (core/drivers/virtio) against the simulated device (sim/virtio) on the
// simulated PCI bus: probe and feature negotiation, frames out and in byte for byte, ring
// wrap-around, and a hostile device that the driver must stop cleanly. Each case runs a fresh
// kernel on a simulated machine, its body in the init kernel thread, under several strategies
// and seeds (25 schedules each); after the run nothing may be left (heap objects, physical pages).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/kernel.h"
#include "core/net/netdev.h"
#include "core/net/stack.h"
#include "hal/sim/sim_hal.h"
#include "lwip/ip4_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "sim/cpus/machine.h"
#include "sim/cpus/pci_bus.h"
#include "sim/virtio/net_device.h"

namespace {

using tandem::NetDevice;

constexpr uint8_t kMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr uint32_t kSlot = 3;

struct Case {
  sim::VirtioNetDevice* device = nullptr;
  std::function<void(tandem::Kernel&, sim::VirtioNetDevice&)> body;
  std::string failure;  // set by the body (gtest assertions cannot run on a fiber)
};

void fail_case(Case& c, const std::string& why) {
  if (c.failure.empty()) c.failure = why;
}

void init(tandem::Kernel& kernel, void* arg) {
  auto* c = static_cast<Case*>(arg);
  c->body(kernel, *c->device);
  tandem::netdev_shutdown(kernel);
  hal::shutdown(0);
}

struct Env {
  tandem::Kernel* kernel;
};
void cpu_entry(void* env, uint32_t cpu) { kentry::cpu_main(static_cast<Env*>(env)->kernel, cpu); }
void on_interrupt(void*, uint32_t bit) { sim::deliver_interrupt(bit); }

// Runs `body` on a fresh kernel with a virtio-net device of `queue_size` in slot kSlot.
sim::RunResult run_case(Case& c, uint32_t cpus, uint64_t seed, sim::StrategyKind kind, uint16_t queue_size,
                        std::string* leaks) {
  sim::MachineConfig config;
  config.cpus = cpus;
  config.seed = seed;
  config.strategy.kind = kind;
  config.max_steps = 3'000'000;
  sim::Machine machine(config);
  sim::VirtioNetDevice device(kMac, queue_size);
  c.device = &device;
  sim::pci_plug(kSlot, &device);

  tandem::KernelConfig kconfig;
  kconfig.cpu_count = cpus;
  kconfig.max_threads = 16;
  kconfig.init = &init;
  kconfig.init_arg = &c;
  std::unique_ptr<uint8_t[]> storage(new uint8_t[sizeof(tandem::Kernel) + alignof(tandem::Kernel)]);
  void* p = storage.get();
  size_t space = sizeof(tandem::Kernel) + alignof(tandem::Kernel);
  p = std::align(alignof(tandem::Kernel), sizeof(tandem::Kernel), p, space);
  auto* kernel = new (p) tandem::Kernel(kconfig);
  Env env{kernel};
  sim::install_hal(machine);
  sim::Machine::Hooks hooks;
  hooks.env = &env;
  hooks.cpu_entry = &cpu_entry;
  hooks.interrupt = &on_interrupt;
  sim::RunResult r = machine.run(hooks);
  if (r.outcome == sim::Outcome::Finished) {
    if (kernel->heap().live_objects() != 0) *leaks += std::to_string(kernel->heap().live_objects()) + " heap objects; ";
    if (machine.pages_in_use() != kernel->heap().pages_in_use())
      *leaks += std::to_string(machine.pages_in_use() - kernel->heap().pages_in_use()) + " physical pages; ";
  }
  kernel->~Kernel();
  sim::pci_unplug(kSlot);
  c.device = nullptr;
  return r;
}

std::vector<uint8_t> frame_of(uint32_t n, size_t length) {
  std::vector<uint8_t> f(length);
  for (size_t i = 0; i < length; ++i) f[i] = uint8_t(n * 131 + i * 7 + (i >> 8));
  std::memcpy(f.data(), kMac, 6);  // destination: us
  return f;
}

struct Received {
  std::vector<std::vector<uint8_t>> frames;
};
void receive(void* context, const void* frame, size_t length) {
  auto* r = static_cast<Received*>(context);
  const auto* b = static_cast<const uint8_t*>(frame);
  r->frames.emplace_back(b, b + length);
}

// Spins (a scheduling point each time) until `done` or a bound; interrupts are delivered meanwhile.
bool wait_for(const std::function<bool()>& done) {
  for (int i = 0; i < 200'000; ++i) {
    if (done()) return true;
    hal::cpu_relax();
  }
  return done();
}

NetDevice* probe(tandem::Kernel& kernel, Case& c) {
  NetDevice* nic = tandem::netdev_probe(kernel);
  if (nic == nullptr) fail_case(c, "netdev_probe found no device");
  return nic;
}

// The strategies and shapes every case runs under.
struct Shape {
  uint32_t cpus;
  sim::StrategyKind kind;
  uint64_t seed;
};
// Five fixed shapes, then random and PCT schedules on 2 to 4 CPUs for 20 more seeds.
std::vector<Shape> shapes() {
  std::vector<Shape> out = {
      {1, sim::StrategyKind::RoundRobin, 1}, {2, sim::StrategyKind::Random, 2}, {2, sim::StrategyKind::Pct, 3},
      {4, sim::StrategyKind::Random, 4},     {4, sim::StrategyKind::Pct, 5},
  };
  for (uint64_t seed = 10; seed < 30; ++seed)
    out.push_back({uint32_t(2 + seed % 3), seed % 2 ? sim::StrategyKind::Random : sim::StrategyKind::Pct, seed});
  return out;
}
const std::vector<Shape> kShapes = shapes();

void run_everywhere(const std::function<void(tandem::Kernel&, sim::VirtioNetDevice&, Case&)>& body,
                    uint16_t queue_size = 256) {
  for (const Shape& shape : kShapes) {
    Case c;
    c.body = [&](tandem::Kernel& k, sim::VirtioNetDevice& d) { body(k, d, c); };
    std::string leaks;
    const sim::RunResult r = run_case(c, shape.cpus, shape.seed, shape.kind, queue_size, &leaks);
    SCOPED_TRACE(std::string("cpus ") + std::to_string(shape.cpus) + " " + sim::strategy_name(shape.kind) + " seed " +
                 std::to_string(shape.seed));
    EXPECT_EQ(r.outcome, sim::Outcome::Finished) << r.message << "\n" << r.console;
    EXPECT_EQ(c.failure, "") << r.console;
    EXPECT_EQ(leaks, "");
  }
}

TEST(VirtioNet, NegotiatesFeaturesAndReadsMacAndLink) {
  run_everywhere([](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
    NetDevice* nic = probe(kernel, c);
    if (nic == nullptr) return;
    if (std::memcmp(nic->mac(), kMac, 6) != 0) fail_case(c, "wrong MAC");
    if (!nic->link_up()) fail_case(c, "link down");
    // VERSION_1, MAC and STATUS, nothing else.
    if (device.driver_features() != ((1ull << 32) | (1ull << 5) | (1ull << 16))) fail_case(c, "wrong features");
    if (!device.driver_ok()) fail_case(c, "DRIVER_OK not set");
    if (device.queue(0).size != 256 || device.queue(1).size != 256) fail_case(c, "queue sizes");
    if (device.queue(0).available() != 256) fail_case(c, "the receive ring is not full");
    if (tandem::kernel_net_device(kernel) != nic) fail_case(c, "the kernel does not hold the device");
    if (nic->failure() != nullptr) fail_case(c, nic->failure());
    if (!device.driver_error().empty()) fail_case(c, "driver error: " + device.driver_error());
    // A link change is read at the next poll (the configuration interrupt triggers one).
    device.set_link(false);
    if (!wait_for([&] { return !nic->link_up(); })) fail_case(c, "link down not seen");
    device.set_link(true);
    if (!wait_for([&] { return nic->link_up(); })) fail_case(c, "link up not seen");
  });
}

TEST(VirtioNet, TransmittedFramesComeOutExactly) {
  run_everywhere([](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
    NetDevice* nic = probe(kernel, c);
    if (nic == nullptr) return;
    const size_t lengths[] = {14, 60, 61, 1000, 1513, 1514};
    for (uint32_t i = 0; i < 6; ++i) {
      if (!nic->transmit(frame_of(i, lengths[i]).data(), lengths[i])) fail_case(c, "transmit refused");
    }
    if (nic->transmit(frame_of(9, 1515).data(), 1515)) fail_case(c, "a 1,515-byte frame was accepted");
    if (nic->transmit(frame_of(9, 13).data(), 13)) fail_case(c, "a 13-byte frame was accepted");
    if (device.transmitted().size() != 6) {
      fail_case(c, "transmitted " + std::to_string(device.transmitted().size()) + " frames");
      return;
    }
    for (uint32_t i = 0; i < 6; ++i) {
      if (device.transmitted()[i] != frame_of(i, lengths[i])) fail_case(c, "frame " + std::to_string(i) + " differs");
    }
    if (nic->stats().tx_frames != 6) fail_case(c, "tx_frames");
  });
}

TEST(VirtioNet, InjectedFramesArriveExactly) {
  run_everywhere([](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
    NetDevice* nic = probe(kernel, c);
    if (nic == nullptr) return;
    Received got;
    nic->set_receiver(&receive, &got);
    const size_t lengths[] = {14, 60, 1514, 500};
    for (uint32_t i = 0; i < 4; ++i) {
      if (!device.inject(frame_of(100 + i, lengths[i]).data(), lengths[i])) fail_case(c, "inject refused");
    }
    if (!wait_for([&] { return got.frames.size() == 4; })) {
      fail_case(c, "received " + std::to_string(got.frames.size()) + " of 4 frames");
      return;
    }
    for (uint32_t i = 0; i < 4; ++i) {
      if (got.frames[i] != frame_of(100 + i, lengths[i])) fail_case(c, "frame " + std::to_string(i) + " differs");
    }
    // A runt (shorter than an Ethernet header) is dropped, not delivered.
    device.inject(frame_of(7, 10).data(), 10);
    if (!wait_for([&] { return nic->stats().rx_dropped == 1; })) fail_case(c, "the runt was not dropped");
    if (got.frames.size() != 4) fail_case(c, "the runt was delivered");
    if (nic->stats().interrupts == 0) fail_case(c, "no interrupt reached the driver");
    nic->set_receiver(nullptr, nullptr);
  });
}

TEST(VirtioNet, SurvivesRingWrapAround) {
  // Eight-entry queues, 5 x 8 frames each way: every index wraps several times.
  run_everywhere(
      [](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
        NetDevice* nic = probe(kernel, c);
        if (nic == nullptr) return;
        if (device.queue(0).size != 8) fail_case(c, "queue size is not 8");
        Received got;
        nic->set_receiver(&receive, &got);
        for (uint32_t i = 0; i < 40; ++i) {
          const size_t length = 60 + i * 37;
          if (!nic->transmit(frame_of(i, length).data(), length)) fail_case(c, "transmit refused");
          if (!wait_for([&] { return device.inject(frame_of(1000 + i, length).data(), length); }))
            fail_case(c, "no receive buffer came back");
          if (!wait_for([&] { return got.frames.size() == i + 1; })) {
            fail_case(c, "frame " + std::to_string(i) + " not received");
            return;
          }
          if (got.frames[i] != frame_of(1000 + i, length)) fail_case(c, "received frame differs");
        }
        if (device.transmitted().size() != 40) fail_case(c, "transmitted count");
        for (uint32_t i = 0; i < device.transmitted().size(); ++i) {
          if (device.transmitted()[i] != frame_of(i, 60 + i * 37)) fail_case(c, "transmitted frame differs");
        }
        if (nic->failure() != nullptr) fail_case(c, nic->failure());
        nic->set_receiver(nullptr, nullptr);
      },
      8);
}

TEST(VirtioNet, TransmitRingFullIsReportedNotOverrun) {
  run_everywhere(
      [](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
        NetDevice* nic = probe(kernel, c);
        if (nic == nullptr) return;
        // The device stops completing: it takes frames only when told to (process_tx).
        device.queue(1).enabled = false;  // the notify handler finds nothing to take
        uint32_t sent = 0;
        while (sent < 20 && nic->transmit(frame_of(sent, 100).data(), 100)) ++sent;
        if (sent != 8) fail_case(c, "the ring took " + std::to_string(sent) + " frames, not 8");
        if (nic->stats().tx_ring_full == 0) fail_case(c, "tx_ring_full not counted");
        device.queue(1).enabled = true;
        device.process_tx();
        if (!nic->transmit(frame_of(8, 100).data(), 100)) fail_case(c, "no slot after completion");
        if (device.transmitted().size() != 9) fail_case(c, "transmitted count");
      },
      8);
}

// Transmit completions do not interrupt, except after a full ring refused a frame: then the
// device's next completion interrupts, the poll reports the ring as resumed (the stack sends
// what lwIP held back instead of waiting for its timers), and completions are quiet again.
TEST(VirtioNet, FullTransmitRingInterruptsWhenRoomAgain) {
  run_everywhere(
      [](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
        NetDevice* nic = probe(kernel, c);
        if (nic == nullptr) return;
        // While there is room, completions are silent.
        const uint32_t quiet = device.interrupts_sent();
        if (!nic->transmit(frame_of(0, 100).data(), 100)) fail_case(c, "the first frame was refused");
        if (device.interrupts_sent() != quiet) fail_case(c, "a completion interrupted with the ring not full");
        device.queue(1).enabled = false;  // the device holds what it is given
        uint32_t sent = 0;
        while (sent < 20 && nic->transmit(frame_of(100 + sent, 100).data(), 100)) ++sent;
        if (sent != 8) fail_case(c, "the ring took " + std::to_string(sent) + " frames, not 8");
        if (nic->stats().tx_resumed != 0) fail_case(c, "resumed before any completion");
        const uint32_t before = device.interrupts_sent();
        device.queue(1).enabled = true;
        device.process_tx();
        if (device.interrupts_sent() == before) fail_case(c, "the completions after a full ring did not interrupt");
        if (!wait_for([&] { return nic->stats().tx_resumed == 1; }))
          fail_case(c, "the interrupt's poll did not report the ring resumed");
        // Back to silent completions.
        const uint32_t after = device.interrupts_sent();
        if (!nic->transmit(frame_of(200, 100).data(), 100)) fail_case(c, "no slot after the ring resumed");
        if (device.interrupts_sent() != after) fail_case(c, "completions still interrupt after the ring resumed");
        if (device.transmitted().size() != 10) fail_case(c, "transmitted count");
      },
      8);
}

// ---- Through lwIP: a segment the full ring refused goes out as soon as there is room ----------

constexpr uint8_t kPeerMac[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
constexpr uint8_t kGuestIp[4] = {10, 0, 2, 15};
constexpr uint8_t kPeerIp[4] = {10, 0, 2, 2};

uint16_t inet_checksum(const uint8_t* data, size_t length, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < length; i += 2) sum += uint32_t(data[i] << 8 | data[i + 1]);
  if (length & 1) sum += uint32_t(data[length - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
void put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8), p[1] = uint8_t(v); }
void put32(uint8_t* p, uint32_t v) { put16(p, uint16_t(v >> 16)), put16(p + 2, uint16_t(v)); }
uint32_t get32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// The peer (10.0.2.2) answers the guest's ARP request.
std::vector<uint8_t> arp_reply() {
  std::vector<uint8_t> f(60, 0);
  std::memcpy(f.data(), kMac, 6);
  std::memcpy(f.data() + 6, kPeerMac, 6);
  put16(f.data() + 12, 0x0806);
  uint8_t* a = f.data() + 14;
  put16(a, 1), put16(a + 2, 0x0800), a[4] = 6, a[5] = 4, put16(a + 6, 2);
  std::memcpy(a + 8, kPeerMac, 6), std::memcpy(a + 14, kPeerIp, 4);
  std::memcpy(a + 18, kMac, 6), std::memcpy(a + 24, kGuestIp, 4);
  return f;
}

// A TCP segment from the peer's port 7 to the guest's `port` (no payload; SYN-ACK carries MSS).
std::vector<uint8_t> tcp_from_peer(uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags) {
  const size_t tcp_length = (flags & 0x02) ? 24 : 20;
  std::vector<uint8_t> f(14 + 20 + tcp_length, 0);
  std::memcpy(f.data(), kMac, 6);
  std::memcpy(f.data() + 6, kPeerMac, 6);
  put16(f.data() + 12, 0x0800);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45, put16(ip + 2, uint16_t(20 + tcp_length)), put16(ip + 6, 0x4000), ip[8] = 64, ip[9] = 6;
  std::memcpy(ip + 12, kPeerIp, 4), std::memcpy(ip + 16, kGuestIp, 4);
  put16(ip + 10, inet_checksum(ip, 20));
  uint8_t* t = ip + 20;
  put16(t, 7), put16(t + 2, port), put32(t + 4, seq), put32(t + 8, ack);
  t[12] = uint8_t((tcp_length / 4) << 4), t[13] = flags, put16(t + 14, 65535);
  if (tcp_length == 24) t[20] = 2, t[21] = 4, put16(t + 22, 1460);
  uint32_t pseudo = 0;
  for (int i = 0; i < 8; i += 2) pseudo += uint32_t(ip[12 + i] << 8 | ip[13 + i]);
  pseudo += 6 + uint32_t(tcp_length);
  put16(t + 16, inet_checksum(t, tcp_length, pseudo));
  return f;
}

// A TCP segment the guest sent: its ports, numbers, flags and payload length.
struct Segment {
  uint16_t source_port;
  uint32_t seq;
  uint8_t flags;
  size_t payload;
};
bool parse_tcp(const std::vector<uint8_t>& f, Segment* out) {
  if (f.size() < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6) return false;
  const size_t ihl = (f[14] & 0xf) * 4u;
  const size_t total = size_t(f[16] << 8 | f[17]);
  const uint8_t* t = f.data() + 14 + ihl;
  const size_t doff = (t[12] >> 4) * 4u;
  *out = Segment{uint16_t(t[0] << 8 | t[1]), get32(t + 4), t[13], total - ihl - doff};
  return true;
}

// The guest holds a TCP connection to the peer. The device stops taking frames; eight UDP
// datagrams fill the 8-slot transmit ring, so the TCP segment written next is refused and lwIP
// keeps it. When the device takes frames again, the segment must come out at once (the
// completion interrupts, the poll reports the ring resumed, the stack sends what it held back),
// not at lwIP's next timer or retransmission, hundreds of milliseconds later.
TEST(VirtioNetStack, SegmentRefusedByFullRingGoesOutWhenRoomAgain) {
  run_everywhere(
      [](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
        NetDevice* nic = probe(kernel, c);
        if (nic == nullptr) return;
        if (tandem::net_stack_attach_device(kernel, *nic, tandem::NetConfig{}).is_error()) {
          fail_case(c, "the card cannot join the stack");
          return;
        }
        auto sent_since = [&](size_t from, const std::function<bool(const std::vector<uint8_t>&)>& match) {
          return wait_for([&] {
            for (size_t i = from; i < device.transmitted().size(); ++i) {
              if (match(device.transmitted()[i])) return true;
            }
            return false;
          });
        };
        ip4_addr_t peer;
        IP4_ADDR(&peer, 10, 0, 2, 2);
        struct tcp_pcb* pcb = nullptr;
        {
          tandem::NetLock lock(kernel);
          pcb = tcp_new();
          if (pcb == nullptr || tcp_connect(pcb, &peer, 7, nullptr) != ERR_OK) pcb = nullptr;
        }
        if (pcb == nullptr) {
          fail_case(c, "tcp_connect failed");
          return;
        }
        // ARP for the peer, then the SYN; the peer answers both.
        if (!sent_since(0, [](const std::vector<uint8_t>& f) { return f.size() >= 42 && f[12] == 0x08 && f[13] == 0x06; }))
          fail_case(c, "no ARP request");
        size_t mark = device.transmitted().size();
        device.inject(arp_reply().data(), 60);
        Segment syn{};
        if (!sent_since(0, [&](const std::vector<uint8_t>& f) { return parse_tcp(f, &syn) && syn.flags == 0x02; })) {
          fail_case(c, "no SYN");
          return;
        }
        mark = device.transmitted().size();
        const std::vector<uint8_t> syn_ack = tcp_from_peer(syn.source_port, 1000, syn.seq + 1, 0x12);
        device.inject(syn_ack.data(), syn_ack.size());
        Segment ack{};
        if (!sent_since(mark, [&](const std::vector<uint8_t>& f) { return parse_tcp(f, &ack) && (ack.flags & 0x10); }))
          fail_case(c, "the guest did not complete the handshake");

        // The ring fills with datagrams the device holds; the segment after them is refused.
        device.queue(1).enabled = false;
        {
          tandem::NetLock lock(kernel);
          struct udp_pcb* udp = udp_new();
          for (int i = 0; i < 8 && udp != nullptr; ++i) {
            struct pbuf* p = pbuf_alloc(PBUF_TRANSPORT, 16, PBUF_RAM);
            if (p == nullptr) break;
            std::memset(p->payload, i, 16);
            udp_sendto(udp, p, &peer, 9);
            pbuf_free(p);
          }
          if (udp != nullptr) udp_remove(udp);
          static const char kData[100] = "held back by a full ring";
          if (tcp_write(pcb, kData, sizeof(kData), TCP_WRITE_FLAG_COPY) != ERR_OK) fail_case(c, "tcp_write");
          tcp_output(pcb);
        }
        if (nic->stats().tx_ring_full == 0) fail_case(c, "the ring was never full");
        mark = device.transmitted().size();

        const uint64_t released = hal::monotonic_ns();
        device.queue(1).enabled = true;
        device.process_tx();
        Segment data{};
        const bool out = sent_since(mark, [&](const std::vector<uint8_t>& f) { return parse_tcp(f, &data) && data.payload == 100; });
        const uint64_t waited_ms = (hal::monotonic_ns() - released) / 1'000'000;
        if (!out) {
          fail_case(c, "the refused segment never went out");
        } else if (waited_ms >= 100) {
          fail_case(c, "the refused segment went out " + std::to_string(waited_ms) + " ms after the ring had room");
        }
        {
          // Down under the stack's lock, so CPU 0's timer (which looks at the stack's owner under
          // it) finds the stack gone rather than half torn down.
          tandem::NetLock lock(kernel);
          tcp_abort(pcb);
          tandem::net_stack_shutdown(kernel);
        }
      },
      8);
}

// Three kernel threads transmit at once (on whichever CPUs the strategy puts them) while the
// init thread injects frames and the interrupt handler polls on CPU 0: every frame comes out
// once, intact, each sender's in its order, and every injected frame arrives.
struct Sender {
  NetDevice* nic;
  uint32_t base;
};
constexpr uint32_t kPerSender = 12;
void sender_entry(void* arg) {
  auto* s = static_cast<Sender*>(arg);
  for (uint32_t i = 0; i < kPerSender; ++i) {
    const std::vector<uint8_t> f = frame_of(s->base + i, 60 + (s->base + i) % 50);
    // A full ring: the sender retries; transmit reclaims what the device finished.
    while (!s->nic->transmit(f.data(), f.size())) hal::cpu_relax();
  }
}

TEST(VirtioNet, ConcurrentTransmittersAndReceive) {
  run_everywhere(
      [](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
        NetDevice* nic = probe(kernel, c);
        if (nic == nullptr) return;
        Received got;
        nic->set_receiver(&receive, &got);
        Sender senders[3] = {{nic, 0}, {nic, 100}, {nic, 200}};
        tandem::Thread* threads[3] = {};
        for (int i = 0; i < 3; ++i) {
          auto t = kernel.create_thread(nullptr, &sender_entry, &senders[i]);
          if (t.is_error()) {
            fail_case(c, "create_thread");
            return;
          }
          threads[i] = t.value();
          kernel.retain(threads[i]);
          kernel.make_runnable(threads[i]);
        }
        for (uint32_t i = 0; i < 20; ++i) {
          if (!wait_for([&] { return device.inject(frame_of(500 + i, 70).data(), 70); }))
            fail_case(c, "no receive buffer came back");
        }
        for (tandem::Thread* t : threads) {
          kernel.join(t);
          kernel.release(t);
        }
        if (!wait_for([&] { return got.frames.size() == 20; })) fail_case(c, "not every injected frame arrived");
        for (uint32_t i = 0; i < got.frames.size(); ++i) {
          if (got.frames[i] != frame_of(500 + i, 70)) fail_case(c, "received frame differs");
        }
        device.process_tx();
        if (device.transmitted().size() != 3 * kPerSender) {
          fail_case(c, "transmitted " + std::to_string(device.transmitted().size()) + " frames");
          return;
        }
        uint32_t next[3] = {0, 100, 200};
        for (const std::vector<uint8_t>& f : device.transmitted()) {
          bool matched = false;
          for (uint32_t& n : next) {
            if (n % 100 < kPerSender && f == frame_of(n, 60 + n % 50)) {
              ++n;
              matched = true;
              break;
            }
          }
          if (!matched) fail_case(c, "a transmitted frame is corrupt, repeated or out of its sender's order");
        }
        nic->set_receiver(nullptr, nullptr);
      },
      8);
}

// A hostile device: each fault makes the driver stop the device and say why, with no crash,
// no out-of-bounds access (ASan build) and no leak.
void hostile(sim::VirtioNetDevice::Fault fault, bool on_receive, const char* expected) {
  run_everywhere([&](tandem::Kernel& kernel, sim::VirtioNetDevice& device, Case& c) {
    NetDevice* nic = probe(kernel, c);
    if (nic == nullptr) return;
    Received got;
    nic->set_receiver(&receive, &got);
    const uint32_t resets = device.resets();
    device.corrupt_next(fault);
    if (on_receive) {
      device.inject(frame_of(1, 60).data(), 60);
    } else {
      nic->transmit(frame_of(1, 60).data(), 60);
      nic->poll();
    }
    if (!wait_for([&] { return nic->failure() != nullptr; })) {
      fail_case(c, "the driver did not notice");
      return;
    }
    const bool duplicate = fault == sim::VirtioNetDevice::Fault::DuplicateId;
    if (duplicate ? std::strstr(nic->failure(), "not in flight") == nullptr &&
                        std::strstr(nic->failure(), "used index") == nullptr
                  : std::strstr(nic->failure(), expected) == nullptr)
      fail_case(c, std::string("failure: ") + nic->failure() + ", expected " + expected);
    if (device.resets() == resets) fail_case(c, "the device was not reset");
    if ((device.status() & 128) == 0) fail_case(c, "FAILED not set");
    if (nic->transmit(frame_of(2, 60).data(), 60)) fail_case(c, "transmit on a stopped device");
    nic->poll();  // harmless
    if (got.frames.size() > 1) fail_case(c, "frames delivered from a broken device");
    nic->set_receiver(nullptr, nullptr);
  });
}

TEST(VirtioNetHostile, UsedIndexJumpOnReceive) {
  hostile(sim::VirtioNetDevice::Fault::UsedIdxJump, true, "used index");
}
TEST(VirtioNetHostile, UsedIndexJumpOnTransmit) {
  hostile(sim::VirtioNetDevice::Fault::UsedIdxJump, false, "used index");
}
TEST(VirtioNetHostile, IdOutOfRange) { hostile(sim::VirtioNetDevice::Fault::IdOutOfRange, true, "beyond the queue"); }
TEST(VirtioNetHostile, IdNotInFlightOnTransmit) {
  // One frame in flight: the next descriptor is not.
  hostile(sim::VirtioNetDevice::Fault::IdNotInFlight, false, "not in flight");
}
TEST(VirtioNetHostile, DuplicateIdOnReceive) {
  // The driver may see both entries at once (the index moved past what is in flight, since it
  // took one back) or one at a time (the second names a buffer no longer in flight).
  hostile(sim::VirtioNetDevice::Fault::DuplicateId, true, "");
}
TEST(VirtioNetHostile, LengthBeyondBuffer) {
  hostile(sim::VirtioNetDevice::Fault::LengthTooBig, true, "exceeds its buffer");
}
TEST(VirtioNetHostile, LengthBeyondBufferOnTransmit) {
  hostile(sim::VirtioNetDevice::Fault::LengthTooBig, false, "exceeds its buffer");
}

TEST(VirtioNet, NoDeviceNoProbe) {
  // An empty bus: the probe finds nothing and the kernel has no card.
  sim::MachineConfig config;
  config.cpus = 1;
  sim::Machine machine(config);
  struct Local {
    static void init(tandem::Kernel& kernel, void* arg) {
      *static_cast<bool*>(arg) = tandem::netdev_probe(kernel) == nullptr && tandem::kernel_net_device(kernel) == nullptr;
      hal::shutdown(0);
    }
  };
  bool none = false;
  tandem::KernelConfig kconfig;
  kconfig.cpu_count = 1;
  kconfig.max_threads = 16;
  kconfig.init = &Local::init;
  kconfig.init_arg = &none;
  auto kernel = std::make_unique<tandem::Kernel>(kconfig);
  Env env{kernel.get()};
  sim::install_hal(machine);
  sim::Machine::Hooks hooks;
  hooks.env = &env;
  hooks.cpu_entry = &cpu_entry;
  hooks.interrupt = &on_interrupt;
  const sim::RunResult r = machine.run(hooks);
  EXPECT_EQ(r.outcome, sim::Outcome::Finished) << r.message;
  EXPECT_TRUE(none);
}

}  // namespace
