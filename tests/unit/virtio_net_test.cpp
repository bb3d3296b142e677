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
#include "hal/sim/sim_hal.h"
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
