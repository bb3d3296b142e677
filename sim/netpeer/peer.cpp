#include "sim/netpeer/peer.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>

#include "sim/cpus/machine.h"
#include "sim/netpeer/port/peer_glue.h"

// The bounds of the peer lwIP's state (port/peer_sections.h), named by the linker.
extern "C" char __start_tandem_peer_data[], __stop_tandem_peer_data[];
extern "C" char __start_tandem_peer_bss[], __stop_tandem_peer_bss[];

namespace sim {

namespace {

constexpr int kErrRst = -14;  // lwIP's ERR_RST: the guest refused (not listening yet) or reset
constexpr uint32_t kMaxAttempts = 400;
constexpr uint64_t kRetryNs = 2'000'000;

NetPeer* g_peer = nullptr;  // the one live peer of this process (lwIP's state is process-wide)
bool g_image_taken = false;
std::vector<uint8_t> g_image;
std::vector<std::vector<uint8_t>> g_outbox;  // frames the peer sent outside step()

// Copies without ASan's interceptors: the sections hold ASan's redzones between the globals
// when the simulator is built with it, and they move as plain bytes (as core/net/stack.cpp does).
__attribute__((no_sanitize("address"))) void raw_copy(uint8_t* dst, const uint8_t* src, size_t n) {
  volatile uint8_t* d = dst;
  const volatile uint8_t* s = src;
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
}
__attribute__((no_sanitize("address"))) void raw_zero(uint8_t* dst, size_t n) {
  volatile uint8_t* d = dst;
  for (size_t i = 0; i < n; ++i) d[i] = 0;
}

void reset_state() {
  auto* data = reinterpret_cast<uint8_t*>(__start_tandem_peer_data);
  const size_t data_length = static_cast<size_t>(__stop_tandem_peer_data - __start_tandem_peer_data);
  if (!g_image_taken) {
    // Nothing of the peer's lwIP has run yet: the section holds the program's initial values.
    g_image.resize(data_length);
    if (data_length != 0) raw_copy(g_image.data(), data, data_length);
    g_image_taken = true;
  }
  if (data_length != 0) raw_copy(data, g_image.data(), data_length);
  raw_zero(reinterpret_cast<uint8_t*>(__start_tandem_peer_bss),
           static_cast<size_t>(__stop_tandem_peer_bss - __start_tandem_peer_bss));
}

uint64_t message_size(uint32_t id, uint32_t index, uint32_t max_message) {
  return 1 + mix_seed(0x6d657373ull + id, index) % max_message;
}

}  // namespace

uint8_t peer_pattern(uint32_t id, uint64_t offset) {
  uint64_t x = offset * 0x9e3779b97f4a7c15ull + (uint64_t{id} + 1) * 0xd1b54a32d192ed03ull;
  x ^= x >> 29;
  return static_cast<uint8_t>(x >> 24);
}

struct PeerHooks {
  static NetPeer& peer() {
    if (g_peer == nullptr) {
      std::fprintf(stderr, "netpeer: the peer's lwIP ran with no peer\n");
      std::abort();
    }
    return *g_peer;
  }
  static void output(const void* frame, size_t length) {
    const auto* b = static_cast<const uint8_t*>(frame);
    NetPeer& p = peer();
    (p.m_out != nullptr ? *p.m_out : g_outbox).emplace_back(b, b + length);
  }
  static uint32_t now_ms() { return static_cast<uint32_t>(peer().m_now / 1'000'000); }
  static uint32_t rand() { return static_cast<uint32_t>(peer().m_rng.next() >> 32); }
  static void connected(int id) { peer().on_connected(id); }
  static void recv(int id, const void* data, size_t length) { peer().on_recv(id, static_cast<const uint8_t*>(data), length); }
  static void error(int id, int err) { peer().on_error(id, err); }
  static void sent(int id, uint32_t length) { peer().m_conns[static_cast<size_t>(id)].acked += length; }
};

NetPeer::NetPeer(const PeerPlan& plan, uint64_t seed, uint64_t now) : m_plan(plan), m_rng(seed), m_now(now) {
  if (g_peer != nullptr) {
    std::fprintf(stderr, "netpeer: a second peer in one process (the peer's lwIP is process-wide)\n");
    std::abort();
  }
  if (plan.connections == 0 || plan.connections > TNP_MAX_CONNECTIONS) {
    std::fprintf(stderr, "netpeer: %u connections (1 to %d)\n", plan.connections, TNP_MAX_CONNECTIONS);
    std::abort();
  }
  g_peer = this;
  reset_state();
  g_outbox.clear();
  tnp_init(kMac, kAddress, 0xffffff00u, plan.guest_address);
  m_conns.resize(plan.connections);
  for (uint32_t id = 0; id < plan.connections; ++id) {
    Conn& c = m_conns[id];
    if (plan.mode == PeerPlan::Mode::Echo) {
      for (uint32_t k = 0; k < plan.messages; ++k) {
        c.total += message_size(id, k, plan.max_message);
        c.message_ends.push_back(c.total);
      }
    } else {
      c.total = plan.bytes;
    }
    // Connections start a little apart, in a seeded order.
    c.retry_at = now + m_rng.below(1'000'000);
  }
}

NetPeer::~NetPeer() {
  reset_state();
  g_outbox.clear();
  g_peer = nullptr;
}

void NetPeer::fail(const std::string& why) {
  if (m_failure.empty()) m_failure = "peer: " + why;
}

void NetPeer::step(uint64_t now, std::vector<std::vector<uint8_t>>* out) {
  m_now = std::max(m_now, now);
  m_out = out;
  for (auto& f : g_outbox) out->push_back(std::move(f));
  g_outbox.clear();
  std::vector<std::vector<uint8_t>> inbox;
  inbox.swap(m_inbox);
  for (const auto& frame : inbox) tnp_input(frame.data(), frame.size());
  tnp_check_timeouts();
  for (uint32_t id = 0; id < m_conns.size(); ++id) {
    Conn& c = m_conns[id];
    if (c.state == Conn::State::Idle && m_now >= c.retry_at) {
      ++c.attempts;
      const int err = tnp_connect(static_cast<int>(id), m_plan.guest_address, m_plan.port);
      if (err == 0) {
        c.state = Conn::State::Connecting;
      } else if (c.attempts >= kMaxAttempts) {
        c.state = Conn::State::Failed;
        fail("connection " + std::to_string(id) + ": tcp_connect failed " + std::to_string(err));
      } else {
        c.retry_at = m_now + kRetryNs;
      }
    } else if (c.state == Conn::State::Open) {
      pump(id);
    }
  }
  m_out = nullptr;
}

uint64_t NetPeer::next_event() const {
  uint64_t next = ~0ull;
  const uint32_t sleep_ms = tnp_sleeptime_ms();
  if (sleep_ms != 0xffffffffu) {
    // lwIP's clock has millisecond resolution: its next timeout is at the start of a millisecond.
    const uint64_t now_ms = m_now / 1'000'000;
    next = (now_ms + std::max<uint32_t>(sleep_ms, 1)) * 1'000'000;
  }
  for (const Conn& c : m_conns) {
    if (c.state == Conn::State::Idle) next = std::min(next, std::max(c.retry_at, m_now + 1));
  }
  return next;
}

void NetPeer::pump(uint32_t id) {
  Conn& c = m_conns[id];
  if (c.state != Conn::State::Open) return;
  uint64_t limit = c.total;
  if (m_plan.mode == PeerPlan::Mode::Echo) limit = c.message < c.message_ends.size() ? c.message_ends[c.message] : c.total;
  uint8_t chunk[8192];
  while (c.sent < limit) {
    const size_t room = tnp_room(static_cast<int>(id));
    if (room == 0) break;
    const size_t n = static_cast<size_t>(std::min<uint64_t>({limit - c.sent, sizeof(chunk), room}));
    for (size_t i = 0; i < n; ++i) chunk[i] = peer_pattern(id, c.sent + i);
    const long queued = tnp_write(static_cast<int>(id), chunk, n);
    if (queued < 0) {
      fail("connection " + std::to_string(id) + ": tcp_write failed " + std::to_string(queued));
      return;
    }
    if (queued == 0) break;
    c.sent += static_cast<uint64_t>(queued);
  }
  const bool all_back = m_plan.mode == PeerPlan::Mode::Bulk || c.received == c.total;
  if (c.sent == c.total && !c.fin_sent && all_back) {
    if (tnp_shutdown_tx(static_cast<int>(id)) == 0) c.fin_sent = true;
  }
}

void NetPeer::on_connected(int id) {
  Conn& c = m_conns[static_cast<size_t>(id)];
  c.state = Conn::State::Open;
  pump(static_cast<uint32_t>(id));
}

void NetPeer::on_recv(int id, const uint8_t* data, size_t length) {
  Conn& c = m_conns[static_cast<size_t>(id)];
  const std::string who = "connection " + std::to_string(id);
  if (data == nullptr) {
    c.fin_received = true;
    if (!c.fin_sent) fail(who + ": the guest closed before the peer did");
    if (c.received != c.total)
      fail(who + ": the guest's FIN after " + std::to_string(c.received) + " of " + std::to_string(c.total) + " bytes");
    tnp_release(id);
    c.state = Conn::State::Closed;
    return;
  }
  for (size_t i = 0; i < length; ++i) {
    const uint64_t offset = c.received + i;
    if (offset >= c.sent) {
      fail(who + ": byte " + std::to_string(offset) + " came back before it was sent (" + std::to_string(c.sent) +
           " sent)");
      return;
    }
    const uint8_t want = peer_pattern(static_cast<uint32_t>(id), offset);
    if (data[i] != want) {
      char line[160];
      std::snprintf(line, sizeof(line), "%s: byte %llu came back as 0x%02x, sent 0x%02x", who.c_str(),
                    static_cast<unsigned long long>(offset), data[i], want);
      fail(line);
      return;
    }
  }
  c.received += length;
  m_bytes_checked += length;
  if (m_plan.mode == PeerPlan::Mode::Echo) {
    while (c.message < c.message_ends.size() && c.received >= c.message_ends[c.message]) ++c.message;
  }
  pump(static_cast<uint32_t>(id));
}

void NetPeer::on_error(int id, int err) {
  Conn& c = m_conns[static_cast<size_t>(id)];
  // A reset before the guest acknowledged a single byte: the guest never had this connection
  // (refused because it is not listening yet, or its half-open connection timed out in SYN_RCVD
  // while the wire lost the handshake's last ACK and every retransmission). Start it again from
  // its first byte. Had the guest accepted it, it would wait for it for ever and the run would
  // hang, so nothing is hidden.
  const bool never_had_it = c.acked == 0 && c.received == 0;
  if ((c.state == Conn::State::Connecting || c.state == Conn::State::Open) && err == kErrRst && never_had_it &&
      c.attempts < kMaxAttempts) {
    c.state = Conn::State::Idle;
    c.retry_at = m_now + kRetryNs;
    c.sent = 0;
    c.message = 0;
    c.fin_sent = false;
    return;
  }
  c.state = Conn::State::Failed;
  fail("connection " + std::to_string(id) + ": lwIP error " + std::to_string(err) + " after " +
       std::to_string(c.received) + " of " + std::to_string(c.total) + " bytes came back");
}

bool NetPeer::done() const {
  for (const Conn& c : m_conns) {
    if (c.state != Conn::State::Closed) return false;
  }
  return true;
}

std::string NetPeer::leak_check() const {
  tnp_stats s;
  tnp_get_stats(&s);
  std::string out;
  if (s.active_pcbs != 0) out += std::to_string(s.active_pcbs) + " active PCBs; ";
  if (s.heap_used != 0) out += std::to_string(s.heap_used) + " heap bytes; ";
  for (uint32_t i = 0; i < s.pool_count; ++i) {
    // lwIP's cyclic timers hold SYS_TIMEOUT entries for ever; TIME_WAIT PCBs are the active
    // closer's by design and are counted apart.
    if (i == s.timer_pool) continue;
    if (i == s.tcp_pcb_pool) {
      if (s.pool_used[i] != s.time_wait_pcbs) out += std::to_string(s.pool_used[i] - s.time_wait_pcbs) + " TCP PCBs; ";
      continue;
    }
    if (s.pool_used[i] != 0) out += std::to_string(s.pool_used[i]) + " of pool " + std::to_string(i) + "; ";
  }
  return out.empty() ? "" : "peer leak: " + out;
}

std::string NetPeer::summary() const {
  tnp_stats s;
  tnp_get_stats(&s);
  uint64_t total = 0;
  for (const Conn& c : m_conns) total += c.total;
  char line[200];
  std::snprintf(line, sizeof(line), "%u connections, %llu of %llu bytes checked, %u TCP segments sent, %u checksum errors",
                static_cast<unsigned>(m_conns.size()), static_cast<unsigned long long>(m_bytes_checked),
                static_cast<unsigned long long>(total), s.tcp_segments_sent, s.checksum_errors);
  std::string out = line;
  for (uint32_t id = 0; id < m_conns.size(); ++id) {
    const Conn& c = m_conns[id];
    if (c.state == Conn::State::Closed) continue;
    char pcb[320];
    tnp_describe(static_cast<int>(id), pcb, sizeof(pcb));
    char detail[512];
    std::snprintf(detail, sizeof(detail), "; connection %u unfinished (sent %llu, acked %llu, received %llu of %llu; %s)", id,
                  static_cast<unsigned long long>(c.sent), static_cast<unsigned long long>(c.acked),
                  static_cast<unsigned long long>(c.received), static_cast<unsigned long long>(c.total), pcb);
    out += detail;
  }
  return out;
}

}  // namespace sim

// ---- the hooks the peer's lwIP calls (port/arch/cc.h, port/peer_glue.h) ----------------------

extern "C" {

void tnp_output(const void* frame, size_t length) { sim::PeerHooks::output(frame, length); }
uint32_t tnp_now_ms(void) { return sim::PeerHooks::now_ms(); }
uint32_t tnp_rand(void) { return sim::PeerHooks::rand(); }
void tnp_on_connected(int id) { sim::PeerHooks::connected(id); }
void tnp_on_recv(int id, const void* data, size_t length) { sim::PeerHooks::recv(id, data, length); }
void tnp_on_sent(int id, uint32_t length) { sim::PeerHooks::sent(id, length); }
void tnp_on_error(int id, int err) { sim::PeerHooks::error(id, err); }

void tnp_diag(const char* format, ...) {
  if (std::getenv("TANDEM_NETPEER_DIAG") == nullptr) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
}

void tnp_assert(const char* message, const char* file, int line) {
  char text[256];
  std::snprintf(text, sizeof(text), "the peer's lwIP asserted: %s (%s:%d)", message, file, line);
  if (sim::Machine* m = sim::Machine::current()) m->fail(sim::Outcome::Failed, text);
  std::fprintf(stderr, "%s\n", text);
  std::abort();
}

}  // extern "C"
