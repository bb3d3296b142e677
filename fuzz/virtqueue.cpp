// virtqueue: the fuzzer's bytes play a hostile virtio-net device against the driver
// (core/drivers/virtio) on the simulated PCI bus. The device's set-up (features offered, queue
// size, refused FEATURES_OK or MSI-X vectors, notify offsets, queue count, a configuration
// generation that never settles, corrupted capability bytes) comes from the input, then up to
// 64 operations: raw used-ring entries with any id, length and index advance,
// planted faults, received frames of any length, transmissions, polls, link changes.
//
// The driver must never crash, read or write out of bounds (ASan), panic, hang or leak, and
// must hand the stack only frames of a valid length; a device it rejects is fine.
#include <cstdint>
#include <vector>

#include "core/kernel.h"
#include "core/net/netdev.h"
#include "fuzz/fuzz.h"
#include "fuzz/kernel_run.h"
#include "sim/cpus/pci_bus.h"
#include "sim/virtio/net_device.h"

namespace {

struct Run {
  fuzz::FuzzInput* in;
  sim::VirtioNetDevice* device;
  bool poked;  // configuration-space bytes were overwritten
};

void receive(void*, const void* frame, size_t length) {
  // The driver's promise to the stack (core/net/netdev.h).
  if (frame == nullptr || length < tandem::kEthernetHeader || length > tandem::kMaxFrame) __builtin_trap();
  // Touch every byte: ASan sees a read outside the buffer.
  volatile uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + static_cast<const uint8_t*>(frame)[i]);
}

void init(tandem::Kernel& kernel, void* arg) {
  Run& run = *static_cast<Run*>(arg);
  fuzz::FuzzInput& in = *run.in;
  sim::VirtioNetDevice& device = *run.device;
  tandem::NetDevice* nic = tandem::netdev_probe(kernel);
  if (nic != nullptr) {
    nic->set_receiver(&receive, nullptr);
    uint8_t frame[2048];
    for (int op = 0; op < 64 && !in.empty(); ++op) {
      switch (in.take_u8() % 8) {
        case 0: {  // a received frame (any length, header included: up to 2,048 bytes)
          const uint32_t length = in.take_range(0, 1600);
          for (uint32_t i = 0; i < length; ++i) frame[i] = static_cast<uint8_t>(i * 13 + op);
          device.inject(frame, length);
          break;
        }
        case 1: {  // a transmission (the driver refuses bad lengths itself)
          const uint32_t length = in.take_range(0, 1600);
          for (uint32_t i = 0; i < length; ++i) frame[i] = static_cast<uint8_t>(i + op);
          nic->transmit(frame, length);
          break;
        }
        case 2: {  // a raw used entry on either queue
          const uint16_t queue = in.take_u8() & 1;
          const uint32_t id = in.take_bool() ? in.take_u32() : in.take_range(0, 300);
          const uint32_t written = in.take_bool() ? in.take_u32() : in.take_range(0, 1600);
          const uint16_t advance = in.take_bool() ? in.take_u16() : static_cast<uint16_t>(in.take_range(0, 3));
          device.put_raw(queue, id, written, advance);
          break;
        }
        case 3:
          nic->poll();
          break;
        case 4:
          device.set_link(in.take_bool());
          break;
        case 5:
          device.process_tx();
          break;
        case 6:
          device.corrupt_next(static_cast<sim::VirtioNetDevice::Fault>(in.take_u8() % 6));
          break;
        case 7:  // let interrupts and other CPUs run
          for (uint32_t i = in.take_range(1, 64); i > 0; --i) hal::cpu_relax();
          break;
      }
    }
    nic->poll();
    // With its capabilities intact (no bytes poked, so notifications land where the device
    // decodes them), a device the driver still trusts takes every frame it is notified of.
    if (!run.poked && nic->failure() == nullptr && nic->transmit(frame, 60) && device.transmitted().empty() &&
        device.queue(1).enabled && device.driver_ok()) {
      // A working pair: a frame sent must reach the device (it completes at the notification).
      __builtin_trap();
    }
    nic->set_receiver(nullptr, nullptr);
  }
  tandem::netdev_shutdown(kernel);
  hal::shutdown(0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t shape = in.take_u8();
  const uint16_t queue_size = static_cast<uint16_t>((shape & 0x80) ? in.take_u16() : 1u << in.take_range(0, 8));
  static const uint8_t kMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  sim::VirtioNetDevice device(kMac, queue_size);
  const uint8_t quirks = in.take_u8();
  if (quirks & 1) device.quirks.offered = in.take_u64();
  device.quirks.refuse_features_ok = (quirks & 2) != 0;
  device.quirks.refuse_msix = (quirks & 4) != 0;
  if (quirks & 8) device.quirks.notify_off_bias = in.take_u16();
  if (quirks & 16) device.quirks.num_queues = in.take_u8() % 4;
  device.quirks.flap_generation = (quirks & 32) != 0;
  if (quirks & 64) {
    // Configuration-space bytes from the capability pointer on: capability lists with loops,
    // bad lengths, offsets and BAR numbers, odd MSI-X table sizes. (BARs stay as assigned: an
    // address that decodes nowhere is the bus's business, not the driver's.)
    for (uint32_t n = in.take_range(1, 8); n > 0; --n) device.config[in.take_range(0x34, 0xff)] = in.take_u8();
  }
  constexpr uint32_t kSlot = 4;
  sim::pci_plug(kSlot, &device);

  Run r{&in, &device, (quirks & 64) != 0};
  fuzz::KernelRun run;
  run.cpus = 1 + (shape & 1);
  run.max_steps = 1'000'000;
  run.max_threads = 8;
  run.init = &init;
  run.init_arg = &r;
  static std::vector<sim::Decision> decisions;
  if (run.cpus > 1) {
    fuzz::take_decisions(in, run.cpus, run.max_steps, run.strategy, decisions, 16, 256);
  } else {
    static const std::vector<sim::Decision> kNone;
    run.strategy.kind = sim::StrategyKind::Replay;
    run.strategy.replay = &kNone;
  }
  const sim::RunResult result = fuzz::run_kernel(run);
  sim::pci_unplug(kSlot);
  fuzz::check(result, fuzz::Accept::FinishedOnly);
  return 0;
}
