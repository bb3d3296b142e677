// Networked scenarios: the guest runs a TCP echo server over the socket system calls, and the
// simulated peer (sim/netpeer/peer.h, at 10.0.2.2 on the far end of a faulty wire) is its client.
//
// The guest program is the same for both: PID 1 listens on port 7, accepts `threads`
// connections and gives each an echo thread (read until end of file, write back every byte,
// close). What differs is the peer's plan:
//   tcp-echo  `threads` connections, each sends `iterations` messages of 1 to 2,000 bytes one at
//             a time and waits for each to come back whole;
//   tcp-bulk  `threads` connections, each streams 256 KiB x iterations / 10 (256 KiB by default)
//             while reading the echo.
// The peer checks every byte (exactly once, in order, at its offset), the closes (its FIN, then
// the guest's, nothing after), and its own stack for leaks; the harness checks the kernel's
// leaks and the guest lwIP's pools after the run (sim/harness/harness.cpp).
//
// The guest learns that the peer is finished from the run's wire (current_wire()), and that its
// own stack is quiet from guest_tcp_idle() (sim/harness/harness.h): that is the scenario's
// oracle, not something a program on hardware could see. Waiting for both means a final ACK that
// the wire lost has been retransmitted and the guest's last connection has left LAST_ACK before
// PID 1 exits and the run ends, so the leak checks see a stack at rest.
#include <cstdint>

#include "sim/harness/harness.h"
#include "sim/netpeer/peer.h"
#include "sim/netpeer/wire.h"
#include "sim/scenarios/ulib.h"

namespace sim {

namespace {

using namespace ulib;

namespace sys {
constexpr uint64_t kRead = 0, kWrite = 1, kClose = 3, kSocket = 41, kAccept = 43, kBind = 49, kListen = 50,
                   kSetsockopt = 54;
}
constexpr uint64_t kAfInet = 2, kSockStream = 1, kSolSocket = 1, kSoReuseaddr = 2;
constexpr uint16_t kPort = 7;
constexpr uint32_t kMaxConnections = 64;
constexpr uint64_t kBuffer = 16384;
constexpr uint64_t kPollNs = 20'000'000;
constexpr uint64_t kGiveUpNs = 600'000'000'000ull;

// Layout of the data region (from kDataBase).
constexpr uint64_t kAddressAt = 0x0;     // struct sockaddr_in
constexpr uint64_t kTimespecAt = 0x40;
constexpr uint64_t kOneAt = 0x80;
constexpr uint64_t kSlotsAt = 0x1000;    // kMaxConnections thread slots
constexpr uint64_t kBuffersAt = 0x80000;  // one kBuffer per connection

uint64_t at(uint64_t offset) { return kDataBase + offset; }

void sleep_ns(User& u, uint64_t ns) {
  u.store64(at(kTimespecAt), ns / 1'000'000'000ull);
  u.store64(at(kTimespecAt) + 8, ns % 1'000'000'000ull);
  u.syscall(nr::kNanosleep, at(kTimespecAt), 0);
}

void echo_thread(User& u) {
  const uint64_t arg = thread_arg(u);
  const uint32_t index = static_cast<uint32_t>(arg >> 32);
  const uint64_t fd = static_cast<uint32_t>(arg);
  const uint64_t buffer = at(kBuffersAt) + index * kBuffer;
  for (;;) {
    const int64_t n = u.syscall(sys::kRead, fd, buffer, kBuffer);
    if (n == 0) break;
    if (n < 0) u.fail("tcp: connection %u: read returned %lld", index, static_cast<long long>(n));
    for (int64_t done = 0; done < n;) {
      const int64_t w = u.syscall(sys::kWrite, fd, buffer + static_cast<uint64_t>(done), static_cast<uint64_t>(n - done));
      if (w <= 0) u.fail("tcp: connection %u: write returned %lld", index, static_cast<long long>(w));
      done += w;
    }
  }
  if (u.syscall(sys::kClose, fd) != 0) u.fail("tcp: connection %u: close failed", index);
}
const uint64_t kEchoThread = register_entry("tcp.echo", echo_thread);

void server_main(User& u) {
  const uint32_t connections = static_cast<uint32_t>(u.start().rdi);
  const int64_t listener = u.syscall(sys::kSocket, kAfInet, kSockStream, 0);
  if (listener < 0) u.fail("tcp: socket returned %lld", static_cast<long long>(listener));
  const uint64_t fd = static_cast<uint64_t>(listener);
  u.store32(at(kOneAt), 1);
  if (u.syscall(sys::kSetsockopt, fd, kSolSocket, kSoReuseaddr, at(kOneAt), 4) != 0) u.fail("tcp: SO_REUSEADDR failed");
  // struct sockaddr_in: family, port (network order), 0.0.0.0.
  u.store64(at(kAddressAt), kAfInet | uint64_t{static_cast<uint16_t>((kPort >> 8) | (kPort << 8))} << 16);
  u.store64(at(kAddressAt) + 8, 0);
  if (const int64_t r = u.syscall(sys::kBind, fd, at(kAddressAt), 16); r != 0) u.fail("tcp: bind returned %lld", static_cast<long long>(r));
  if (const int64_t r = u.syscall(sys::kListen, fd, 64); r != 0) u.fail("tcp: listen returned %lld", static_cast<long long>(r));
  for (uint32_t i = 0; i < connections; ++i) {
    const int64_t c = u.syscall(sys::kAccept, fd, 0, 0);
    if (c < 0) u.fail("tcp: accept %u returned %lld", i, static_cast<long long>(c));
    const int64_t tid = spawn(u, kEchoThread, (uint64_t{i} << 32) | static_cast<uint64_t>(c), slot_at(at(kSlotsAt), i));
    if (tid < 0) u.fail("tcp: clone returned %lld", static_cast<long long>(tid));
  }
  for (uint32_t i = 0; i < connections; ++i) join(u, slot_at(at(kSlotsAt), i));
  if (u.syscall(sys::kClose, fd) != 0) u.fail("tcp: close of the listener failed");
  // Until the peer has checked everything (the oracle, see the top of the file).
  NetWire* wire = current_wire();
  if (wire == nullptr) u.fail("tcp: no simulated network in this run");
  for (uint64_t waited = 0; !wire->peer().done() || !guest_tcp_idle(); waited += kPollNs) {
    if (!wire->peer().failure().empty()) u.fail("%s", wire->peer().failure().c_str());
    if (waited > kGiveUpNs)
      u.fail("tcp: not quiet after 600 s of virtual time (peer %s; guest connections %s): %s",
             wire->peer().done() ? "done" : "not done", guest_tcp_idle() ? "closed" : "still active",
             wire->peer().summary().c_str());
    sleep_ns(u, kPollNs);
  }
  exit_group(u, 0);
}

const char* validate_echo(uint32_t threads, uint32_t iterations) {
  if (threads < 1 || threads > kMaxConnections) return "threads (connections) must be between 1 and 64";
  if (iterations < 1 || iterations > 10'000) return "iterations (messages per connection) must be between 1 and 10000";
  return nullptr;
}
const char* validate_bulk(uint32_t threads, uint32_t iterations) {
  if (threads < 1 || threads > 16) return "threads (connections) must be between 1 and 16";
  if (iterations < 1 || iterations > 4'000) return "iterations (25.6 KiB each per connection) must be between 1 and 4000";
  return nullptr;
}

void echo_plan(uint32_t threads, uint32_t iterations, PeerPlan* plan) {
  plan->mode = PeerPlan::Mode::Echo;
  plan->connections = threads;
  plan->messages = iterations;
  plan->port = kPort;
}
void bulk_plan(uint32_t threads, uint32_t iterations, PeerPlan* plan) {
  plan->mode = PeerPlan::Mode::Bulk;
  plan->connections = threads;
  plan->bytes = (uint64_t{256} << 10) * iterations / 10;
  plan->port = kPort;
}

struct Registrar {
  Registrar() {
    const uint64_t entry = register_entry("tcp.server", server_main);
    Scenario echo{"tcp-echo",
                  "the simulated peer opens `threads` TCP connections to an echo server in the guest and checks every "
                  "message's echo (try --net-faults)",
                  entry, validate_echo};
    echo.net_plan = echo_plan;
    register_scenario(echo);
    Scenario bulk{"tcp-bulk",
                  "the simulated peer streams 256 KiB (x iterations/10) per connection through the guest's echo server "
                  "and checks it all comes back",
                  entry, validate_bulk};
    bulk.net_plan = bulk_plan;
    register_scenario(bulk);
  }
};
const Registrar kRegistrar;

}  // namespace

}  // namespace sim
