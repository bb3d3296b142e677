// AF_INET sockets over lwIP (core/net/inet.cpp, core/net/stack.cpp), run by user programs on the
// simulated kernel over 127.0.0.1: a TCP echo between two threads, a UDP round trip, errors as
// Linux reports them, a nonblocking connect with poll, many pending connections on one
// listener, the socket limit; and the reset of lwIP between kernel instances.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/net/inet.h"
#include "core/net/stack.h"
#include "lwipopts.h"
#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

namespace sys {
constexpr uint64_t kRead = 0, kWrite = 1, kClose = 3, kPoll = 7, kSocket = 41, kConnect = 42, kAccept = 43,
                   kSendto = 44, kRecvfrom = 45, kShutdown = 48, kBind = 49, kListen = 50, kGetsockname = 51,
                   kGetpeername = 52, kSetsockopt = 54, kGetsockopt = 55, kAccept4 = 288, kEpollCreate1 = 291,
                   kEpollCtl = 233, kEpollWait = 232;
}
constexpr uint64_t kAfInet = 2, kSockStream = 1, kSockDgram = 2, kSockRaw = 3, kSockNonblock = 04000;
constexpr uint64_t kSolSocket = 1, kSoReuseAddr = 2, kSoError = 4, kSoKeepAlive = 9, kSolIp = 0, kIpTtl = 2,
                   kIpTos = 1, kSolTcp = 6, kTcpNoDelay = 1;
constexpr uint64_t kMsgDontWait = 0x40, kMsgNoSignal = 0x4000, kMsgTrunc = 0x20, kMsgPeek = 0x2;
constexpr uint64_t kPollIn = 1, kPollOut = 4, kPollErr = 8, kPollHup = 0x10;
constexpr uint32_t kLoopback = 0x0100007f;  // 127.0.0.1 as the bytes of a little-endian u32

// The user program's memory.
constexpr uint64_t kAddrA = kDataBase + 0x1000;  // sockaddr_in scratch (+0x200.. for more)
constexpr uint64_t kAddrB = kDataBase + 0x1040;
constexpr uint64_t kLen = kDataBase + 0x1080;    // socklen_t / option scratch
constexpr uint64_t kOpt = kDataBase + 0x10c0;
constexpr uint64_t kPollFds = kDataBase + 0x1100;
constexpr uint64_t kShared = kDataBase + 0x2000;  // words shared between threads
constexpr uint64_t kSlots = kDataBase + 0x10000;  // thread slots
constexpr uint64_t kTx = kDataBase + 0x40000;     // send buffer
constexpr uint64_t kRx = kDataBase + 0x80000;     // receive buffer
constexpr uint64_t kEcho = kDataBase + 0xc0000;   // the echo server's buffer
constexpr uint64_t kFdList = kDataBase + 0x100000;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}
int64_t must(User& u, const char* what, int64_t got) {
  if (got < 0) u.fail("%s: error %lld", what, static_cast<long long>(-got));
  return got;
}

uint16_t be16(uint16_t v) { return static_cast<uint16_t>((v >> 8) | (v << 8)); }

void sockaddr(User& u, uint64_t at, uint32_t addr, uint16_t port) {
  u.store32(at, static_cast<uint32_t>(kAfInet) | (static_cast<uint32_t>(be16(port)) << 16));
  u.store32(at + 4, addr);
  u.store64(at + 8, 0);
}
uint16_t port_of(User& u, uint64_t at) { return be16(static_cast<uint16_t>(u.load32(at) >> 16)); }

uint16_t local_port(User& u, int64_t fd) {
  u.store32(kLen, 16);
  must(u, "getsockname", u.syscall(sys::kGetsockname, fd, kAddrB, kLen));
  return port_of(u, kAddrB);
}

int64_t tcp_socket(User& u, uint64_t flags = 0) { return u.syscall(sys::kSocket, kAfInet, kSockStream | flags, 0); }

int64_t listener(User& u, uint16_t port, int backlog) {
  const int64_t fd = must(u, "socket", tcp_socket(u));
  u.store32(kOpt, 1);
  must(u, "SO_REUSEADDR", u.syscall(sys::kSetsockopt, fd, kSolSocket, kSoReuseAddr, kOpt, 4));
  sockaddr(u, kAddrA, kLoopback, port);
  must(u, "bind", u.syscall(sys::kBind, fd, kAddrA, 16));
  must(u, "listen", u.syscall(sys::kListen, fd, backlog));
  return fd;
}

int64_t connect_to(User& u, uint16_t port, uint64_t flags = 0) {
  const int64_t fd = must(u, "socket", tcp_socket(u, flags));
  sockaddr(u, kAddrA + 0x200, kLoopback, port);
  const int64_t r = u.syscall(sys::kConnect, fd, kAddrA + 0x200, 16);
  if (r < 0 && !(flags & kSockNonblock && r == -EINPROGRESS)) u.fail("connect: error %lld", static_cast<long long>(-r));
  return fd;
}

// A byte pattern the receiver checks word by word.
uint32_t pattern(uint32_t seed, uint64_t word) { return static_cast<uint32_t>(word * 2654435761u) ^ seed; }

int64_t poll_one(User& u, int64_t fd, uint32_t events, int timeout_ms);

// ---- TCP echo between two threads ----------------------------------------------------------------

constexpr uint64_t kEchoBytes = 24 * 1024;  // more than one window of lwIP's (16 x 1460)

void echo_client(User& u) {
  const uint16_t port = static_cast<uint16_t>(thread_arg(u));
  const int64_t fd = connect_to(u, port);
  u.store32(kShared + 8, local_port(u, fd));
  u.store32(kLen, 16);
  must(u, "getpeername", u.syscall(sys::kGetpeername, fd, kAddrB, kLen));
  check(u, "peer port", port_of(u, kAddrB), port);
  check(u, "peer address", u.load32(kAddrB + 4), kLoopback);
  for (uint64_t w = 0; w < kEchoBytes / 4; ++w) u.store32(kTx + w * 4, pattern(7, w));
  // Write in uneven pieces, and read the echo back while writing (the server echoes as it reads;
  // a client that wrote everything first would deadlock both windows, as on Linux). poll says
  // which way can move.
  must(u, "O_NONBLOCK", u.syscall(72, fd, 4, kSockNonblock));  // fcntl(F_SETFL)
  uint64_t sent = 0, got = 0;
  while (got < kEchoBytes) {
    const int64_t ready = poll_one(u, fd, kPollIn | (sent < kEchoBytes ? kPollOut : 0), -1);
    if ((ready & kPollOut) && sent < kEchoBytes) {
      const uint64_t piece = sent + 3000 <= kEchoBytes ? 3000 : kEchoBytes - sent;
      const int64_t n = u.syscall(sys::kWrite, fd, kTx + sent, piece);
      if (n > 0) sent += static_cast<uint64_t>(n);
      else if (n != -EAGAIN) u.fail("send: %lld", static_cast<long long>(n));
      if (sent == kEchoBytes) must(u, "shutdown", u.syscall(sys::kShutdown, fd, 1));
    }
    if (ready & kPollIn) {
      const int64_t n = u.syscall(sys::kRead, fd, kRx + got, kEchoBytes - got);
      if (n == -EAGAIN) continue;
      if (n <= 0) u.fail("recv after %llu bytes: %lld", static_cast<unsigned long long>(got), static_cast<long long>(n));
      got += static_cast<uint64_t>(n);
    }
  }
  check(u, "EOF readable", poll_one(u, fd, kPollIn, -1) & kPollIn, kPollIn);
  check(u, "EOF after the echo", u.syscall(sys::kRead, fd, kRx, 16), 0);
  for (uint64_t w = 0; w < kEchoBytes / 4; ++w) {
    if (u.load32(kRx + w * 4) != pattern(7, w)) u.fail("echoed word %llu differs", static_cast<unsigned long long>(w));
  }
  must(u, "close", u.syscall(sys::kClose, fd));
  u.store32(kShared, 1);
}
const uint64_t kEchoClient = register_entry("test.inet.echo-client", echo_client);

void tcp_echo(User& u) {
  const int64_t lfd = listener(u, 5555, 8);
  check(u, "listener port", local_port(u, lfd), 5555);
  const ThreadSlot slot = slot_at(kSlots, 0);
  must(u, "spawn", spawn(u, kEchoClient, 5555, slot));
  u.store32(kLen, 16);
  const int64_t cfd = must(u, "accept", u.syscall(sys::kAccept, lfd, kAddrB + 0x100, kLen));
  check(u, "accept's address length", u.load32(kLen), 16);
  u.store32(kOpt, 1);
  must(u, "TCP_NODELAY", u.syscall(sys::kSetsockopt, cfd, kSolTcp, kTcpNoDelay, kOpt, 4));
  uint64_t total = 0;
  for (;;) {
    const int64_t n = u.syscall(sys::kRead, cfd, kEcho, 5000);
    if (n == 0) break;
    if (n < 0) u.fail("server read: %lld", static_cast<long long>(n));
    for (int64_t done = 0; done < n;) done += must(u, "server write", u.syscall(sys::kWrite, cfd, kEcho + done, n - done));
    total += static_cast<uint64_t>(n);
  }
  check(u, "bytes echoed", static_cast<int64_t>(total), kEchoBytes);
  must(u, "close", u.syscall(sys::kClose, cfd));
  join(u, slot);
  check(u, "client finished", u.load32(kShared), 1);
  // The accepted connection's peer port is the client's own.
  check(u, "accepted peer port", port_of(u, kAddrB + 0x100), u.load32(kShared + 8));
  must(u, "close", u.syscall(sys::kClose, lfd));
  exit_group(u, 0);
}

// ---- UDP round trip ------------------------------------------------------------------------------

void udp_round_trip(User& u) {
  const int64_t a = must(u, "socket", u.syscall(sys::kSocket, kAfInet, kSockDgram, 0));
  const int64_t b = must(u, "socket", u.syscall(sys::kSocket, kAfInet, kSockDgram, 17));
  sockaddr(u, kAddrA, kLoopback, 7000);
  must(u, "bind", u.syscall(sys::kBind, a, kAddrA, 16));
  check(u, "recv on an empty socket", u.syscall(sys::kRecvfrom, a, kRx, 64, kMsgDontWait, 0, 0), -EAGAIN);
  check(u, "send without an address", u.syscall(sys::kSendto, b, kTx, 4, 0, 0, 0), -EDESTADDRREQ);
  for (uint64_t w = 0; w < 300; ++w) u.store32(kTx + w * 4, pattern(3, w));
  check(u, "sendto", u.syscall(sys::kSendto, b, kTx, 1200, 0, kAddrA, 16), 1200);
  u.store32(kLen, 16);
  check(u, "recvfrom", u.syscall(sys::kRecvfrom, a, kRx, 2000, 0, kAddrB, kLen), 1200);
  for (uint64_t w = 0; w < 300; ++w) {
    if (u.load32(kRx + w * 4) != pattern(3, w)) u.fail("datagram word %llu differs", static_cast<unsigned long long>(w));
  }
  const uint16_t bport = local_port(u, b);
  // local_port overwrote kAddrB: ask recvfrom's source again through a second datagram.
  check(u, "sendto 2", u.syscall(sys::kSendto, b, kTx, 10, 0, kAddrA, 16), 10);
  u.store32(kLen, 16);
  check(u, "recvfrom 2", u.syscall(sys::kRecvfrom, a, kRx, 2000, 0, kAddrB, kLen), 10);
  check(u, "source port", port_of(u, kAddrB), bport);
  check(u, "source address", u.load32(kAddrB + 4), kLoopback);
  // The reply goes back to the source; the client connected to the server only receives from it.
  sockaddr(u, kAddrA + 0x300, kLoopback, 7000);
  must(u, "connect", u.syscall(sys::kConnect, b, kAddrA + 0x300, 16));
  check(u, "reply", u.syscall(sys::kSendto, a, kTx, 100, 0, kAddrB, 16), 100);
  check(u, "read the reply", u.syscall(sys::kRead, b, kRx, 4096), 100);
  // A short buffer truncates the datagram (the rest is gone); MSG_TRUNC reports its real length.
  check(u, "send 64", u.syscall(sys::kWrite, b, kTx, 64), 64);
  check(u, "send 64 again", u.syscall(sys::kWrite, b, kTx, 64), 64);
  check(u, "peek", u.syscall(sys::kRecvfrom, a, kRx, 8, kMsgPeek, 0, 0), 8);
  check(u, "truncated", u.syscall(sys::kRecvfrom, a, kRx, 8, 0, 0, 0), 8);
  check(u, "MSG_TRUNC", u.syscall(sys::kRecvfrom, a, kRx, 8, kMsgTrunc, 0, 0), 64);
  check(u, "nothing left", u.syscall(sys::kRecvfrom, a, kRx, 8, kMsgDontWait, 0, 0), -EAGAIN);
  // Two sockets on one port: EADDRINUSE.
  const int64_t c = must(u, "socket", u.syscall(sys::kSocket, kAfInet, kSockDgram, 0));
  check(u, "bind a used port", u.syscall(sys::kBind, c, kAddrA, 16), -EADDRINUSE);
  must(u, "close", u.syscall(sys::kClose, c));
  must(u, "close", u.syscall(sys::kClose, a));
  must(u, "close", u.syscall(sys::kClose, b));
  exit_group(u, 0);
}

// ---- Errors, options, nonblocking connect with poll ----------------------------------------------

int64_t poll_one(User& u, int64_t fd, uint32_t events, int timeout_ms) {
  u.store32(kPollFds, static_cast<uint32_t>(fd));
  u.store32(kPollFds + 4, events);
  const int64_t n = u.syscall(sys::kPoll, kPollFds, 1, static_cast<uint64_t>(static_cast<int64_t>(timeout_ms)));
  if (n < 0) u.fail("poll: %lld", static_cast<long long>(n));
  return n == 0 ? 0 : static_cast<int64_t>(u.load32(kPollFds + 4) >> 16);
}

int64_t get_int_option(User& u, int64_t fd, uint64_t level, uint64_t name) {
  u.store32(kLen, 4);
  must(u, "getsockopt", u.syscall(sys::kGetsockopt, fd, level, name, kOpt, kLen));
  return static_cast<int32_t>(u.load32(kOpt));
}

void error_table(User& u) {
  check(u, "TCP with IPPROTO_UDP", u.syscall(sys::kSocket, kAfInet, kSockStream, 17), -EPROTONOSUPPORT);
  check(u, "UDP with IPPROTO_TCP", u.syscall(sys::kSocket, kAfInet, kSockDgram, 6), -EPROTONOSUPPORT);
  check(u, "SOCK_SEQPACKET", u.syscall(sys::kSocket, kAfInet, 5, 0), -ESOCKTNOSUPPORT);

  // EADDRINUSE: two listeners on one port without SO_REUSEADDR. The first is nonblocking (its
  // accept answers EAGAIN when nothing is pending).
  const int64_t l1 = must(u, "socket", tcp_socket(u, kSockNonblock));
  sockaddr(u, kAddrA, kLoopback, 6000);
  must(u, "bind", u.syscall(sys::kBind, l1, kAddrA, 16));
  check(u, "bind twice", u.syscall(sys::kBind, l1, kAddrA, 16), -EINVAL);
  must(u, "listen", u.syscall(sys::kListen, l1, 4));
  const int64_t l2 = must(u, "socket", tcp_socket(u));
  check(u, "bind a used port", u.syscall(sys::kBind, l2, kAddrA, 16), -EADDRINUSE);
  sockaddr(u, kAddrA + 0x300, 0x6302000a, 6001);  // 10.0.2.99: not ours
  check(u, "bind a foreign address", u.syscall(sys::kBind, l2, kAddrA + 0x300, 16), -EADDRNOTAVAIL);
  check(u, "bind a short address", u.syscall(sys::kBind, l2, kAddrA, 8), -EINVAL);
  check(u, "recv unconnected", u.syscall(sys::kRecvfrom, l2, kRx, 4, 0, 0, 0), -ENOTCONN);
  check(u, "send unconnected", u.syscall(sys::kSendto, l2, kTx, 4, kMsgNoSignal, 0, 0), -EPIPE);
  check(u, "accept on a socket that does not listen", u.syscall(sys::kAccept, l2, 0, 0), -EINVAL);
  check(u, "getpeername unconnected", u.syscall(sys::kGetpeername, l2, kAddrB, kLen), -ENOTCONN);

  // ECONNREFUSED: nobody listens on 6002.
  const int64_t c1 = must(u, "socket", tcp_socket(u));
  sockaddr(u, kAddrA + 0x340, kLoopback, 6002);
  check(u, "connect to a closed port", u.syscall(sys::kConnect, c1, kAddrA + 0x340, 16), -ECONNREFUSED);
  check(u, "SO_ERROR after a reported failure", get_int_option(u, c1, kSolSocket, kSoError), 0);

  // Nonblocking connect to a closed port: EINPROGRESS, then POLLERR and SO_ERROR.
  const int64_t c2 = must(u, "socket", tcp_socket(u, kSockNonblock));
  check(u, "nonblocking connect", u.syscall(sys::kConnect, c2, kAddrA + 0x340, 16), -EINPROGRESS);
  const int64_t ev = poll_one(u, c2, kPollOut, 1000);
  if (!(ev & kPollErr)) u.fail("poll after a refused connect: 0x%llx", static_cast<unsigned long long>(ev));
  check(u, "SO_ERROR", get_int_option(u, c2, kSolSocket, kSoError), ECONNREFUSED);
  check(u, "SO_ERROR is cleared", get_int_option(u, c2, kSolSocket, kSoError), 0);

  // Nonblocking connect to the listener: EINPROGRESS, POLLOUT, SO_ERROR 0; accept4 nonblocking.
  const int64_t c3 = must(u, "socket", tcp_socket(u, kSockNonblock));
  check(u, "nonblocking connect", u.syscall(sys::kConnect, c3, kAddrA, 16), -EINPROGRESS);
  check(u, "connected", poll_one(u, c3, kPollOut, 1000) & (kPollOut | kPollErr), kPollOut);
  check(u, "SO_ERROR", get_int_option(u, c3, kSolSocket, kSoError), 0);
  check(u, "connect again", u.syscall(sys::kConnect, c3, kAddrA, 16), -EISCONN);
  check(u, "listener readable", poll_one(u, l1, kPollIn, 1000), kPollIn);
  const int64_t s3 = must(u, "accept4", u.syscall(sys::kAccept4, l1, 0, 0, kSockNonblock));
  check(u, "accept with nothing pending", u.syscall(sys::kAccept4, l1, 0, 0, kSockNonblock), -EAGAIN);
  check(u, "nonblocking read with no data", u.syscall(sys::kRead, s3, kRx, 4), -EAGAIN);
  check(u, "not readable", poll_one(u, s3, kPollIn, 0), 0);
  check(u, "write", u.syscall(sys::kWrite, c3, kTx, 4), 4);
  check(u, "readable", poll_one(u, s3, kPollIn, 1000), kPollIn);
  check(u, "read", u.syscall(sys::kRead, s3, kRx, 100), 4);

  // Options.
  u.store32(kOpt, 1);
  must(u, "SO_KEEPALIVE", u.syscall(sys::kSetsockopt, s3, kSolSocket, kSoKeepAlive, kOpt, 4));
  check(u, "SO_KEEPALIVE", get_int_option(u, s3, kSolSocket, kSoKeepAlive), 1);
  must(u, "TCP_NODELAY", u.syscall(sys::kSetsockopt, s3, kSolTcp, kTcpNoDelay, kOpt, 4));
  check(u, "TCP_NODELAY", get_int_option(u, s3, kSolTcp, kTcpNoDelay), 1);
  check(u, "IP_TTL default", get_int_option(u, s3, kSolIp, kIpTtl), 64);
  u.store32(kOpt, 32);
  must(u, "IP_TTL", u.syscall(sys::kSetsockopt, s3, kSolIp, kIpTtl, kOpt, 4));
  check(u, "IP_TTL", get_int_option(u, s3, kSolIp, kIpTtl), 32);
  u.store32(kOpt, 0);
  check(u, "IP_TTL 0", u.syscall(sys::kSetsockopt, s3, kSolIp, kIpTtl, kOpt, 4), -EINVAL);
  u.store32(kOpt, 0x10);
  must(u, "IP_TOS", u.syscall(sys::kSetsockopt, s3, kSolIp, kIpTos, kOpt, 4));
  check(u, "IP_TOS", get_int_option(u, s3, kSolIp, kIpTos), 0x10);
  check(u, "short option", u.syscall(sys::kSetsockopt, s3, kSolIp, kIpTtl, kOpt, 2), -EINVAL);

  // Half close: the peer reads EOF, and can still send back.
  must(u, "shutdown", u.syscall(sys::kShutdown, c3, 1));
  check(u, "EOF", poll_one(u, s3, kPollIn, 1000) & kPollIn, kPollIn);
  check(u, "read EOF", u.syscall(sys::kRead, s3, kRx, 100), 0);
  check(u, "send after SHUT_WR", u.syscall(sys::kSendto, c3, kTx, 4, kMsgNoSignal, 0, 0), -EPIPE);
  check(u, "write back", u.syscall(sys::kWrite, s3, kTx, 8), 8);
  check(u, "read it", poll_one(u, c3, kPollIn, 1000) & kPollIn, kPollIn);
  check(u, "read", u.syscall(sys::kRead, c3, kRx, 100), 8);

  // A reset: the accepted side closes with SO_LINGER {1, 0}; the client sees ECONNRESET, then
  // EPIPE.
  u.store32(kOpt, 1);
  u.store32(kOpt + 4, 0);
  must(u, "SO_LINGER", u.syscall(sys::kSetsockopt, s3, kSolSocket, 13, kOpt, 8));
  must(u, "close", u.syscall(sys::kClose, s3));
  const int64_t hup = poll_one(u, c3, kPollIn, 1000);
  if (!(hup & (kPollErr | kPollHup))) u.fail("poll after a reset: 0x%llx", static_cast<unsigned long long>(hup));
  check(u, "read after a reset", u.syscall(sys::kRead, c3, kRx, 100), -ECONNRESET);
  check(u, "send after a reset", u.syscall(sys::kSendto, c3, kTx, 4, kMsgNoSignal, 0, 0), -EPIPE);

  // epoll: the listener becomes readable when a connection completes, and the accepted socket
  // when data arrives.
  const int64_t ep = must(u, "epoll_create1", u.syscall(sys::kEpollCreate1, 0));
  u.store32(kOpt, static_cast<uint32_t>(kPollIn));  // struct epoll_event, packed: events, data
  u.store32(kOpt + 4, static_cast<uint32_t>(l1));
  u.store32(kOpt + 8, 0);
  must(u, "epoll_ctl", u.syscall(sys::kEpollCtl, ep, 1, l1, kOpt));
  check(u, "nothing ready", u.syscall(sys::kEpollWait, ep, kPollFds, 4, 0), 0);
  const int64_t c4 = must(u, "socket", tcp_socket(u, kSockNonblock));
  check(u, "nonblocking connect", u.syscall(sys::kConnect, c4, kAddrA, 16), -EINPROGRESS);
  check(u, "epoll_wait", u.syscall(sys::kEpollWait, ep, kPollFds, 4, 1000), 1);
  check(u, "EPOLLIN", u.load32(kPollFds) & kPollIn, kPollIn);
  check(u, "its data", u.load32(kPollFds + 4), static_cast<uint32_t>(l1));
  const int64_t s4 = must(u, "accept", u.syscall(sys::kAccept4, l1, 0, 0, 0));
  u.store32(kOpt + 4, static_cast<uint32_t>(s4));
  must(u, "epoll_ctl", u.syscall(sys::kEpollCtl, ep, 1, s4, kOpt));
  must(u, "epoll_ctl del", u.syscall(sys::kEpollCtl, ep, 2, l1, kOpt));
  check(u, "the new socket is not readable", u.syscall(sys::kEpollWait, ep, kPollFds, 4, 0), 0);
  check(u, "write", u.syscall(sys::kWrite, c4, kTx, 5), 5);
  check(u, "epoll_wait after data", u.syscall(sys::kEpollWait, ep, kPollFds, 4, 1000), 1);
  check(u, "its data", u.load32(kPollFds + 4), static_cast<uint32_t>(s4));
  for (int64_t fd : {ep, s4, c4}) must(u, "close", u.syscall(sys::kClose, fd));

  for (int64_t fd : {l1, l2, c1, c2, c3}) must(u, "close", u.syscall(sys::kClose, fd));
  exit_group(u, 0);
}

// ---- Many pending connections on one listener ----------------------------------------------------

constexpr uint32_t kManyConnections = 100;

void many_connections(User& u) {
  const int64_t lfd = listener(u, 8080, 200);
  // Every client connects before the server accepts any: they all wait in the accept queue.
  for (uint32_t i = 0; i < kManyConnections; ++i) {
    const int64_t fd = connect_to(u, 8080, kSockNonblock);
    u.store32(kFdList + i * 4, static_cast<uint32_t>(fd));
  }
  for (uint32_t i = 0; i < kManyConnections; ++i) {
    const int64_t fd = u.load32(kFdList + i * 4);
    check(u, "connected", poll_one(u, fd, kPollOut, 1000) & (kPollOut | kPollErr), kPollOut);
    u.store32(kTx, i);
    check(u, "write the id", u.syscall(sys::kWrite, fd, kTx, 4), 4);
  }
  // Accept them all; each carries its client's id, in order of connection.
  for (uint32_t i = 0; i < kManyConnections; ++i) {
    const int64_t s = must(u, "accept", u.syscall(sys::kAccept, lfd, 0, 0));
    check(u, "id", u.syscall(sys::kRead, s, kRx, 4), 4);
    check(u, "the id in connection order", u.load32(kRx), i);
    u.store32(kFdList + 0x1000 + i * 4, static_cast<uint32_t>(s));
  }
  check(u, "nothing more pending", poll_one(u, lfd, kPollIn, 0), 0);
  for (uint32_t i = 0; i < kManyConnections; ++i) {
    must(u, "close", u.syscall(sys::kClose, u.load32(kFdList + i * 4)));
    must(u, "close", u.syscall(sys::kClose, u.load32(kFdList + 0x1000 + i * 4)));
  }
  must(u, "close", u.syscall(sys::kClose, lfd));
  exit_group(u, 0);
}

// ---- 100 connections moving 100 KiB each way at once -------------------------------------------

constexpr uint32_t kBulkConnections = 100;
constexpr uint64_t kBulkBytes = 100 * 1024;
constexpr uint64_t kBulkSource = kDataBase + 0x200000;   // kBulkBytes of the byte pattern
constexpr uint64_t kBulkScratch = kDataBase + 0x220000;  // 16 KiB
constexpr uint64_t kBulkState = kDataBase + 0x230000;    // per connection: 6 words
constexpr uint64_t kBulkPoll = kDataBase + 0x240000;     // 2 pollfds per connection
constexpr uint64_t kBulkChunk = 16 * 1024;

uint8_t bulk_byte(uint64_t x) { return static_cast<uint8_t>(x ^ (x >> 8) ^ (x >> 16) ^ 0x5a); }
uint32_t bulk_word(uint64_t x) {
  return bulk_byte(x) | (bulk_byte(x + 1) << 8) | (bulk_byte(x + 2) << 16) | (static_cast<uint32_t>(bulk_byte(x + 3)) << 24);
}

// Words of one connection's state: fds and the four counters.
enum BulkWord : uint64_t { kClientFd, kServerFd, kClientSent, kServerSent, kServerGot, kClientGot };
uint64_t bulk_at(uint32_t i, BulkWord w) { return kBulkState + (i * 6 + w) * 4; }

// Reads what `fd` has into the scratch buffer and checks its first and last aligned word against
// the pattern at the stream offset. Returns the bytes read (0 when none were ready).
uint64_t bulk_read(User& u, uint32_t i, BulkWord counter) {
  const uint64_t fd = u.load32(bulk_at(i, counter == kServerGot ? kServerFd : kClientFd));
  const uint64_t offset = u.load32(bulk_at(i, counter));
  if (offset == kBulkBytes) return 0;
  const uint64_t want = kBulkBytes - offset < kBulkChunk ? kBulkBytes - offset : kBulkChunk;
  const int64_t n = u.syscall(sys::kRead, fd, kBulkScratch, want);
  if (n == -EAGAIN) return 0;
  if (n <= 0) u.fail("connection %u: read gave %lld at %llu", i, static_cast<long long>(n), static_cast<unsigned long long>(offset));
  if (n >= 4) {
    const uint64_t last = (static_cast<uint64_t>(n) - 4) & ~uint64_t{3};
    if (u.load32(kBulkScratch) != bulk_word(offset) || u.load32(kBulkScratch + last) != bulk_word(offset + last))
      u.fail("connection %u: wrong bytes at %llu", i, static_cast<unsigned long long>(offset));
  }
  u.store32(bulk_at(i, counter), static_cast<uint32_t>(offset + static_cast<uint64_t>(n)));
  return static_cast<uint64_t>(n);
}

uint64_t bulk_write(User& u, uint32_t i, BulkWord counter) {
  const uint64_t fd = u.load32(bulk_at(i, counter == kServerSent ? kServerFd : kClientFd));
  const uint64_t offset = u.load32(bulk_at(i, counter));
  if (offset == kBulkBytes) return 0;
  const int64_t n = u.syscall(sys::kWrite, fd, kBulkSource + offset, kBulkBytes - offset);
  if (n == -EAGAIN) return 0;
  if (n <= 0) u.fail("connection %u: write gave %lld", i, static_cast<long long>(n));
  u.store32(bulk_at(i, counter), static_cast<uint32_t>(offset + static_cast<uint64_t>(n)));
  return static_cast<uint64_t>(n);
}

void bulk_connections(User& u) {
  for (uint64_t x = 0; x < kBulkBytes; x += 4) u.store32(kBulkSource + x, bulk_word(x));
  const int64_t lfd = listener(u, 9090, 255);
  for (uint32_t i = 0; i < kBulkConnections; ++i) {
    u.store32(bulk_at(i, kClientFd), static_cast<uint32_t>(connect_to(u, 9090, kSockNonblock)));
    for (BulkWord w : {kClientSent, kServerSent, kServerGot, kClientGot}) u.store32(bulk_at(i, w), 0);
  }
  for (uint32_t i = 0; i < kBulkConnections; ++i) {
    u.store32(bulk_at(i, kServerFd), static_cast<uint32_t>(must(u, "accept4", u.syscall(sys::kAccept4, lfd, 0, 0, kSockNonblock))));
  }
  // Every connection moves data both ways at once; when a whole round moves nothing, poll for
  // any of them to become ready (lwIP's timers run meanwhile).
  uint32_t finished = 0;
  while (finished < kBulkConnections) {
    uint64_t moved = 0;
    finished = 0;
    for (uint32_t i = 0; i < kBulkConnections; ++i) {
      moved += bulk_write(u, i, kClientSent) + bulk_write(u, i, kServerSent);
      moved += bulk_read(u, i, kServerGot) + bulk_read(u, i, kClientGot);
      bool done = true;
      for (BulkWord w : {kClientSent, kServerSent, kServerGot, kClientGot}) done = done && u.load32(bulk_at(i, w)) == kBulkBytes;
      if (done) ++finished;
    }
    if (moved > 0 || finished == kBulkConnections) continue;
    // Only for what each side still has to do: a side that is done would always be writable.
    for (uint32_t i = 0; i < kBulkConnections; ++i) {
      for (uint32_t side = 0; side < 2; ++side) {
        const uint64_t at = kBulkPoll + (i * 2 + side) * 8;
        const bool more_out = u.load32(bulk_at(i, side == 0 ? kClientSent : kServerSent)) < kBulkBytes;
        const bool more_in = u.load32(bulk_at(i, side == 0 ? kClientGot : kServerGot)) < kBulkBytes;
        const uint32_t events = (more_out ? kPollOut : 0) | (more_in ? kPollIn : 0);
        u.store32(at, events == 0 ? ~0u : u.load32(bulk_at(i, side == 0 ? kClientFd : kServerFd)));
        u.store32(at + 4, events);
      }
    }
    const int64_t ready = u.syscall(sys::kPoll, kBulkPoll, kBulkConnections * 2, 10'000);
    if (ready <= 0) u.fail("stalled: poll gave %lld with %u connections finished", static_cast<long long>(ready), finished);
  }
  for (uint32_t i = 0; i < kBulkConnections; ++i) {
    must(u, "close", u.syscall(sys::kClose, u.load32(bulk_at(i, kClientFd))));
    must(u, "close", u.syscall(sys::kClose, u.load32(bulk_at(i, kServerFd))));
  }
  must(u, "close", u.syscall(sys::kClose, lfd));
  exit_group(u, 0);
}

// ---- The socket limit ----------------------------------------------------------------------------

void socket_limit(User& u) {
  uint32_t count = 0;
  int64_t last = 0;
  for (;;) {
    last = u.syscall(sys::kSocket, kAfInet, count % 2 == 0 ? kSockStream : kSockDgram, 0);
    if (last < 0) break;
    u.store32(kFdList + count * 4, static_cast<uint32_t>(last));
    ++count;
    if (count > 4000) u.fail("no limit");
  }
  if (last != -EMFILE && last != -ENFILE && last != -ENOBUFS) u.fail("exhaustion gave %lld", static_cast<long long>(last));
  // 1,024 sockets system-wide at least (the file table of one process may stop it first).
  if (count < 1000) u.fail("only %u sockets", count);
  for (uint32_t i = 0; i < count; ++i) must(u, "close", u.syscall(sys::kClose, u.load32(kFdList + i * 4)));
  // And sockets work again afterwards.
  must(u, "socket after the limit", tcp_socket(u));
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-inet-echo", "TCP echo over 127.0.0.1 between two threads",
                       register_entry("test.inet.echo", tcp_echo), any});
    register_scenario({"test-inet-udp", "UDP round trip over 127.0.0.1",
                       register_entry("test.inet.udp", udp_round_trip), any});
    register_scenario({"test-inet-errors", "AF_INET errors, options, nonblocking connect with poll",
                       register_entry("test.inet.errors", error_table), any});
    register_scenario({"test-inet-many", "100 connections pending on one listener",
                       register_entry("test.inet.many", many_connections), any});
    register_scenario({"test-inet-bulk", "100 connections moving 100 KiB each way at once",
                       register_entry("test.inet.bulk", bulk_connections), any});
    register_scenario({"test-inet-limit", "the socket limit",
                       register_entry("test.inet.limit", socket_limit), any});
  }
} const kRegistrar;

RunResult run(const char* scenario, uint32_t cpus, uint64_t seed, StrategyKind kind = StrategyKind::Random) {
  RunSpec spec;
  spec.scenario = scenario;
  spec.cpus = cpus;
  spec.seed = seed;
  spec.strategy.kind = kind;
  spec.max_steps = 50'000'000;
  return run_one(spec);
}

TEST(Inet, TcpEchoBetweenThreads) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-inet-echo", 1 + static_cast<uint32_t>(seed % 4), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message << r.console;
    }
  }
  EXPECT_EQ(tandem::inet_socket_count(), 0u);
}

TEST(Inet, UdpRoundTrip) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const RunResult r = run("test-inet-udp", 2, seed);
    EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message << r.console;
  }
}

TEST(Inet, ErrorsOptionsAndNonblockingConnect) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const RunResult r = run("test-inet-errors", 1 + static_cast<uint32_t>(seed % 2), seed);
    EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message << r.console;
  }
}

TEST(Inet, HundredPendingConnections) {
  const RunResult r = run("test-inet-many", 2, 1);
  EXPECT_EQ(r.outcome, Outcome::Finished) << r.message << r.console;
}

// lwIP's memory (core/net/lwip/lwipopts.h) is sized for this: nothing refused, the heap's peak
// printed for the record.
TEST(Inet, HundredConnectionsOf100KiBEachWay) {
  const RunResult r = run("test-inet-bulk", 2, 1);
  EXPECT_EQ(r.outcome, Outcome::Finished) << r.message << r.console;
  const tandem::NetRunReport report = tandem::net_last_run_report();
  EXPECT_EQ(report.memory.pool_errors, 0u);
  std::printf("lwIP heap peak %llu bytes of %u; %llu packets; %.3f s virtual\n",
              static_cast<unsigned long long>(report.memory.heap_max), unsigned(MEM_SIZE),
              static_cast<unsigned long long>(report.packets), r.virtual_ns / 1e9);
}

TEST(Inet, SocketLimitGivesAnErrorNotACrash) {
  const RunResult r = run("test-inet-limit", 1, 1);
  EXPECT_EQ(r.outcome, Outcome::Finished) << r.message << r.console;
}

// lwIP keeps its state in globals; a kernel instance that is thrown away must leave nothing of it
// behind. The same schedule twice gives byte-for-byte the same traffic (every packet, with its
// ISN, ports and checksums), the same pool usage at the end, and lwIP starts from the same state
// each time; another seed gives other traffic (the digest is not blind).
TEST(Inet, LwipIsResetBetweenKernelInstances) {
  const RunResult first = run("test-inet-echo", 2, 11);
  ASSERT_EQ(first.outcome, Outcome::Finished) << first.message;
  const tandem::NetRunReport a = tandem::net_last_run_report();
  // Something else in between, on another seed.
  const RunResult other = run("test-inet-errors", 2, 12);
  ASSERT_EQ(other.outcome, Outcome::Finished) << other.message;
  const tandem::NetRunReport b = tandem::net_last_run_report();
  const RunResult second = run("test-inet-echo", 2, 11);
  ASSERT_EQ(second.outcome, Outcome::Finished) << second.message;
  const tandem::NetRunReport c = tandem::net_last_run_report();
  const RunResult third = run("test-inet-echo", 2, 13);
  ASSERT_EQ(third.outcome, Outcome::Finished) << third.message;
  const tandem::NetRunReport d = tandem::net_last_run_report();

  ASSERT_TRUE(a.valid && b.valid && c.valid && d.valid);
  EXPECT_GT(a.packets, 20u);
  // lwip_init() draws the first local ports from the seeded randomness: the same seed, the same
  // state; the run in between (another scenario, another seed) left nothing behind.
  EXPECT_EQ(a.init_fingerprint, c.init_fingerprint);
  EXPECT_GT(b.packets, 0u);
  EXPECT_EQ(a.packets, c.packets);
  EXPECT_EQ(a.wire_digest, c.wire_digest);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_EQ(a.memory.heap_used, c.memory.heap_used);
  EXPECT_EQ(a.memory.tcp_pcbs, c.memory.tcp_pcbs);
  ASSERT_EQ(a.memory.pool_count, c.memory.pool_count);
  for (uint32_t i = 0; i < a.memory.pool_count; ++i) EXPECT_EQ(a.memory.pool_used[i], c.memory.pool_used[i]) << "pool " << i;
  EXPECT_NE(a.wire_digest, d.wire_digest);
}

}  // namespace
}  // namespace sim
