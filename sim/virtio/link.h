// A one-way simulated wire for Ethernet frames, on virtual time, with seeded faults: drop,
// duplicate, reorder, delay (with jitter) and corrupt. Two of them connect the simulated
// virtio-net device (sim/virtio/net_device.h) to a simulated peer: the device's transmitted
// frames go into one, the peer's into the other, and whatever has arrived by the machine's
// current time is taken out and delivered.
//
// Every fault decision comes from the link's own PRNG, seeded from the run's seed, so a run with
// faults is as replayable as one without. A corrupted frame has exactly one bit flipped (the
// receiver's checksums must catch it); a reordered frame is held back long enough for the next
// frames to overtake it; a duplicate arrives right after its original.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/cpus/strategy.h"

namespace sim {

struct LinkFaults {
  double drop = 0, dup = 0, reorder = 0, corrupt = 0;  // probabilities per frame, 0..1
  uint64_t delay_ns = 50'000;                          // every frame's time on the wire
  uint64_t jitter_ns = 0;                              // plus up to this much, per frame
  uint64_t reorder_ns = 1'000'000;                     // extra hold of a reordered frame
};
// Parses "drop=0.05,dup=0.02,reorder=0.05,corrupt=0.01,delay=200us,jitter=50us" (any subset,
// any order; times in ns, us, ms or s). Returns an error message, or "" on success (and *out
// updated).
std::string parse_link_faults(const std::string& text, LinkFaults* out);

class Link {
 public:
  Link(const LinkFaults& faults, uint64_t seed) : m_faults(faults), m_rng(seed) {}

  // A frame enters the wire at virtual time `now`.
  void send(const std::vector<uint8_t>& frame, uint64_t now);
  // The frames that have arrived by `now`, in arrival order (ties in the order sent).
  std::vector<std::vector<uint8_t>> receive(uint64_t now);
  // When the next frame arrives; 0 when the wire is empty.
  uint64_t next_arrival() const;
  size_t in_flight() const { return m_flight.size(); }

  struct Stats {
    uint64_t sent = 0, delivered = 0, dropped = 0, duplicated = 0, reordered = 0, corrupted = 0;
  };
  const Stats& stats() const { return m_stats; }

 private:
  struct Flight {
    uint64_t arrival;
    uint64_t seq;
    std::vector<uint8_t> frame;
  };
  bool chance(double p);
  void enqueue(std::vector<uint8_t> frame, uint64_t arrival);

  LinkFaults m_faults;
  Rng m_rng;
  uint64_t m_seq = 0;
  std::vector<Flight> m_flight;  // sorted by (arrival, seq)
  Stats m_stats;
};

}  // namespace sim
