#include "sim/netpeer/wire.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "sim/cpus/machine.h"
#include "sim/virtio/net_device.h"

namespace sim {

namespace {

// TANDEM_NET_VERBOSE=2 prints every TCP segment where it enters and leaves the wire.
bool trace_frames() {
  static const bool on = [] {
    const char* v = std::getenv("TANDEM_NET_VERBOSE");
    return v != nullptr && std::atoi(v) >= 2;
  }();
  return on;
}

void print_frame(const char* what, uint64_t now, const std::vector<uint8_t>& f) {
  if (f.size() < 54 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 6) {
    std::fprintf(stderr, "%12.6f %s non-TCP frame of %zu bytes\n", now / 1e9, what, f.size());
    return;
  }
  const size_t tcp = 14 + (f[14] & 0x0f) * 4u;
  auto be16 = [&](size_t at) { return unsigned(f[at] << 8 | f[at + 1]); };
  auto be32 = [&](size_t at) { return unsigned(be16(at)) << 16 | be16(at + 2); };
  const unsigned total = be16(16), payload = total - unsigned(tcp - 14) - unsigned((f[tcp + 12] >> 4) * 4);
  const uint8_t flags = f[tcp + 13];
  std::fprintf(stderr, "%12.6f %s %u>%u %s%s%s%s%s seq %u ack %u len %u win %u\n", now / 1e9, what, be16(tcp),
               be16(tcp + 2), flags & 2 ? "S" : "", flags & 1 ? "F" : "", flags & 4 ? "R" : "", flags & 8 ? "P" : "",
               flags & 16 ? "." : "", be32(tcp + 4), be32(tcp + 8), payload, be16(tcp + 14));
}

constexpr uint64_t kCardRetryNs = 20'000;  // the card had no receive buffer: look again
thread_local NetWire* t_wire = nullptr;
}  // namespace

NetWire* current_wire() { return t_wire; }
void set_current_wire(NetWire* wire) { t_wire = wire; }

NetWire::NetWire(Machine& machine, VirtioNetDevice& device, const NetWireConfig& config)
    : m_machine(machine),
      m_device(device),
      m_config(config),
      m_to_peer(config.faults, mix_seed(config.seed, 0x70656572ull)),
      m_to_guest(config.faults, mix_seed(config.seed, 0x67756573ull)) {
  m_peer = std::make_unique<NetPeer>(config.plan, mix_seed(config.seed, 0x6e706565ull), 0);
  m_device.set_on_transmit(&NetWire::on_transmit, this);
  m_machine.set_external(&NetWire::advance_thunk, this);
  m_machine.external_due(m_peer->next_event());
}

NetWire::~NetWire() { m_device.set_on_transmit(nullptr, nullptr); }

uint64_t NetWire::advance_thunk(void* arg, uint64_t now) { return static_cast<NetWire*>(arg)->advance(now); }

void NetWire::on_transmit(void* arg) {
  auto* self = static_cast<NetWire*>(arg);
  self->m_machine.external_due(self->m_machine.now());
}

uint64_t NetWire::advance(uint64_t now) {
  // The card's frames enter the wire now.
  auto& sent = m_device.transmitted();
  while (!sent.empty()) {
    if (trace_frames()) print_frame("guest->", now, sent.front());
    m_to_peer.send(sent.front(), now);
    sent.pop_front();
  }
  // The peer takes what reached it and runs to now; what it sends enters the other wire.
  for (auto& frame : m_to_peer.receive(now)) {
    if (trace_frames()) print_frame("  ->peer", now, frame);
    m_peer->input(std::move(frame));
  }
  std::vector<std::vector<uint8_t>> out;
  m_peer->step(now, &out);
  // A check the peer made failed: the run fails here, with the peer's message, rather than
  // waiting for the guest to notice.
  if (!m_peer->failure().empty()) {
    m_failure = m_peer->failure();
    m_machine.fail(Outcome::Failed, m_failure.c_str());
  }
  for (auto& frame : out) {
    if (m_config.silent_corruption && !m_planted_done) m_planted_done = corrupt_silently(frame);
    if (trace_frames()) print_frame("peer->", now, frame);
    m_to_guest.send(frame, now);
  }
  // Frames that reached the card: into its receive ring while it has buffers.
  for (auto& frame : m_to_guest.receive(now)) {
    if (trace_frames()) print_frame("  ->guest", now, frame);
    m_waiting.push_back(std::move(frame));
  }
  while (!m_waiting.empty()) {
    if (!m_device.inject(m_waiting.front().data(), m_waiting.front().size())) break;
    m_waiting.pop_front();
  }
  uint64_t next = m_peer->next_event();
  if (m_to_peer.next_arrival() != 0) next = std::min(next, m_to_peer.next_arrival());
  if (m_to_guest.next_arrival() != 0) next = std::min(next, m_to_guest.next_arrival());
  if (!m_waiting.empty()) {
    ++m_refused;
    next = std::min(next, now + kCardRetryNs);
  }
  return next == ~0ull ? 0 : std::max(next, now + 1);
}

bool NetWire::corrupt_silently(std::vector<uint8_t>& f) {
  // Ethernet (14) + IPv4 + TCP with payload: add 1 to one payload byte and subtract 1 from
  // another at the same parity of offset, so the one's-complement sum (the checksum) is unchanged.
  if (f.size() < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00) return false;
  const size_t ip = 14, ihl = (f[ip] & 0x0f) * 4u;
  if (f[ip + 9] != 6) return false;
  const size_t total = (size_t{f[ip + 2]} << 8) | f[ip + 3];
  const size_t tcp = ip + ihl, doff = (f[tcp + 12] >> 4) * 4u;
  const size_t payload = tcp + doff, end = std::min(f.size(), ip + total);
  if (payload + 3 > end) return false;
  // Two bytes two apart (the same half of their 16-bit words).
  for (size_t a = payload; a + 2 < end; ++a) {
    if (f[a] != 0xff && f[a + 2] != 0x00) {
      ++f[a];
      --f[a + 2];
      return true;
    }
  }
  return false;
}

}  // namespace sim
