// The simulated network of one run: the guest's virtio-net card (sim/virtio/net_device.h), two
// one-way Links with seeded faults (sim/virtio/link.h) and the peer (sim/netpeer/peer.h):
//
//   card.transmitted() -> Link to_peer -> NetPeer -> Link to_guest -> card.inject() (an MSI)
//
// NetWire is the machine's external event source (Machine::set_external): at every scheduling
// point past its deadline, and whenever every CPU halts (time jumps to the deadline), advance()
// moves frames the card sent onto the wire, steps the peer to the current virtual time, and
// hands the card the frames that have arrived. Its next deadline is the earliest of the two
// links' next arrivals, the peer's next timer and a retry of a frame the card had no receive
// buffer for. The links and the peer draw from PRNGs seeded by the run's seed, so a run with
// faults replays exactly.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sim/netpeer/peer.h"
#include "sim/virtio/link.h"

namespace sim {

class Machine;
class VirtioNetDevice;

struct NetWireConfig {
  LinkFaults faults;
  PeerPlan plan;
  uint64_t seed = 0;
  // A planted wire bug for tests: the first TCP segment with at least 2 bytes of payload
  // towards the guest is changed in two bytes so that its checksum still holds (silent
  // corruption, which only an end-to-end check catches).
  bool silent_corruption = false;
};

class NetWire {
 public:
  // Connects `device` (already on the bus) to a new peer and registers with `machine` as its
  // external event source. Call before machine.run().
  NetWire(Machine& machine, VirtioNetDevice& device, const NetWireConfig& config);
  ~NetWire();
  NetWire(const NetWire&) = delete;
  NetWire& operator=(const NetWire&) = delete;

  NetPeer& peer() { return *m_peer; }
  const Link& to_peer() const { return m_to_peer; }
  const Link& to_guest() const { return m_to_guest; }
  uint64_t refused_by_card() const { return m_refused; }

 private:
  static uint64_t advance_thunk(void* arg, uint64_t now);
  static void on_transmit(void* arg);
  uint64_t advance(uint64_t now);
  bool corrupt_silently(std::vector<uint8_t>& frame);

  Machine& m_machine;
  VirtioNetDevice& m_device;
  NetWireConfig m_config;
  Link m_to_peer, m_to_guest;
  std::unique_ptr<NetPeer> m_peer;
  std::deque<std::vector<uint8_t>> m_waiting;  // arrived, not yet taken by the card
  uint64_t m_refused = 0;
  bool m_planted_done = false;
  std::string m_failure;
};

// The run's wire, while a networked run is in progress on this thread (for scenarios' oracle
// checks: sim/scenarios/net_scenarios.cpp); null otherwise.
NetWire* current_wire();
void set_current_wire(NetWire* wire);

}  // namespace sim
