// The simulated network peer: a second, independent TCP/IP endpoint (10.0.2.2, QEMU's host
// address) at the far end of the simulated wire, on virtual time. The guest kernel's virtio-net
// card (sim/virtio/net_device.h) reaches it through two Links (sim/virtio/link.h); NetWire
// (sim/netpeer/wire.h) connects the three and the simulated machine's clock.
//
// Why a second lwIP, and how: the peer is lwIP 2.1.3's core again (the same sources as the
// kernel's), with its own configuration (sim/netpeer/port/lwipopts.h). lwIP keeps its state in C
// globals under fixed names, so two copies cannot simply be linked into one program. The build
// (sim/netpeer/netpeer.cmake) compiles the peer's copy into a static library and renames every
// global symbol it defines to tandem_peer_* with `objcopy --redefine-syms` (the list comes from
// `nm` at build time, so a new lwIP version needs no hand-kept list). The peer therefore runs in
// the simulator's own process and thread, called synchronously from the machine's scheduling
// points: no helper process, no pipe, no second clock. The alternative (the peer in a helper
// process in lockstep over a pipe) would cost a round trip per event and a process per run.
//
// Reset: like the kernel's lwIP, every global of the peer's library is compiled into two
// sections of its own (port/peer_sections.h); the constructor puts their load-time image back
// and zeroes the rest before lwip_init(), so every run starts from the same state, whatever ran
// before in the process. Only one NetPeer exists at a time in a process (checked).
//
// Determinism: the peer's time is the machine's virtual time (step(now)); its randomness (lwIP's
// initial ports and sequence numbers) comes from a PRNG seeded by the run's seed.
//
// The client: C connections to the guest's PORT. In Echo mode each connection sends M messages
// of seeded sizes, one at a time, waiting for each to come back whole before sending the next; in
// Bulk mode each sends N bytes as fast as TCP allows while reading the echo. Every byte received
// must be the byte sent at the same offset of the same connection (exactly once, in order); after
// the last byte the peer closes its sending side (FIN), then expects the guest's FIN with nothing
// after the last echoed byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/cpus/strategy.h"

namespace sim {

struct PeerPlan {
  enum class Mode : uint8_t { Echo, Bulk };
  Mode mode = Mode::Echo;
  uint32_t connections = 1;
  uint32_t messages = 10;      // Echo: per connection
  uint32_t max_message = 2000; // Echo: message sizes are 1..max_message bytes
  uint64_t bytes = 256 << 10;  // Bulk: per connection
  uint16_t port = 7;
  uint32_t guest_address = (10u << 24) | (2u << 8) | 15u;  // 10.0.2.15
};

class NetPeer {
 public:
  static constexpr uint32_t kAddress = (10u << 24) | (2u << 8) | 2u;  // 10.0.2.2
  static constexpr uint8_t kMac[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};

  // Resets the peer's lwIP and brings its interface up at virtual time `now`.
  NetPeer(const PeerPlan& plan, uint64_t seed, uint64_t now);
  ~NetPeer();
  NetPeer(const NetPeer&) = delete;
  NetPeer& operator=(const NetPeer&) = delete;

  // A frame arrived from the wire (delivered at the next step).
  void input(std::vector<uint8_t> frame) { m_inbox.push_back(std::move(frame)); }
  // Advances the peer to virtual time `now`: takes in the frames that arrived, runs lwIP's
  // timers and the client. Frames the peer sends meanwhile are appended to *out.
  void step(uint64_t now, std::vector<std::vector<uint8_t>>* out);
  // When the peer next needs a step (a timer or a reconnect); never 0.
  uint64_t next_event() const;

  // Every connection finished: all bytes echoed and checked, FIN both ways.
  bool done() const;
  // The first check that failed, or "".
  const std::string& failure() const { return m_failure; }
  // After done(): what must hold of the peer's own stack (no PCB but TIME_WAIT, no pbuf, no heap,
  // no pool error). "" when all is well.
  std::string leak_check() const;
  // A one-line summary (bytes, retransmissions, checksum errors) for messages.
  std::string summary() const;

 private:
  friend struct PeerHooks;
  struct Conn {
    enum class State : uint8_t { Idle, Connecting, Open, Closed, Failed } state = State::Idle;
    uint64_t retry_at = 0;
    uint32_t attempts = 0;
    uint64_t total = 0;
    uint64_t sent = 0;
    uint64_t acked = 0;  // bytes the guest acknowledged
    uint64_t received = 0;
    std::vector<uint64_t> message_ends;  // Echo: cumulative end offset of each message
    size_t message = 0;                  // Echo: the message being echoed
    bool fin_sent = false, fin_received = false;
  };
  void fail(const std::string& why);
  void pump(uint32_t id);
  void on_connected(int id);
  void on_recv(int id, const uint8_t* data, size_t length);
  void on_error(int id, int err);

  PeerPlan m_plan;
  Rng m_rng;
  uint64_t m_now = 0;
  std::vector<Conn> m_conns;
  std::vector<std::vector<uint8_t>> m_inbox;
  std::vector<std::vector<uint8_t>>* m_out = nullptr;
  std::string m_failure;
  uint64_t m_bytes_checked = 0;
};

// The byte at `offset` of connection `id`'s stream (what the peer sends and expects back).
uint8_t peer_pattern(uint32_t id, uint64_t offset);

}  // namespace sim
