// AF_UNIX sockets and the socket layer, table-driven against Linux's documented behaviour
// (socket(2), socketpair(2), unix(7), sendmsg(2), recvmsg(2), cmsg(3), getsockopt(2)), run by
// user programs on the simulated kernel: streams both ways, EOF, EPIPE and SIGPIPE, nonblocking
// EAGAIN, SCM_RIGHTS (within a process, across fork, MSG_CTRUNC, MSG_CMSG_CLOEXEC, closed
// unread), datagrams and seqpackets, named sockets, poll and epoll readiness, bad arguments;
// blocking readers and writers woken from other CPUs. The harness fails a run that leaks a
// kernel heap object, so every file in flight must be released.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

namespace sys {
constexpr uint64_t kRead = 0, kWrite = 1, kClose = 3, kPoll = 7, kRtSigaction = 13, kReadv = 19, kWritev = 20,
                   kPipe = 22, kSocket = 41, kConnect = 42, kAccept = 43, kSendto = 44, kRecvfrom = 45,
                   kSendmsg = 46, kRecvmsg = 47, kShutdown = 48, kBind = 49, kListen = 50, kGetsockname = 51,
                   kGetpeername = 52, kSocketpair = 53, kSetsockopt = 54, kGetsockopt = 55, kFork = 57,
                   kWait4 = 61, kFcntl = 72, kUnlink = 87, kEpollWait = 232, kEpollCtl = 233, kAccept4 = 288,
                   kEpollCreate1 = 291, kIoctl = 16;
}
constexpr uint64_t kAfUnix = 1, kAfInet = 2, kAfInet6 = 10, kStream = 1, kDgram = 2, kSeqpacket = 5;
constexpr uint64_t kNonblock = 04000, kCloexec = 02000000;
constexpr uint64_t kMsgPeek = 2, kMsgCtrunc = 8, kMsgTrunc = 0x20, kMsgDontwait = 0x40, kMsgWaitall = 0x100,
                   kMsgNosignal = 0x4000, kMsgCmsgCloexec = 0x40000000;
constexpr uint64_t kSolSocket = 1, kSoType = 3, kSoError = 4, kSoSndbuf = 7, kSoRcvbuf = 8, kSoRcvtimeo = 20,
                   kSoAcceptconn = 30, kSoDomain = 39, kSoPeercred = 17;
constexpr uint64_t kPollIn = 1, kPollOut = 4, kPollErr = 8, kPollHup = 0x10, kPollRdhup = 0x2000;

constexpr uint64_t kFds = kDataBase + 0x100;     // int pairs from socketpair/pipe
constexpr uint64_t kLen = kDataBase + 0x200;     // socklen_t / optlen words
constexpr uint64_t kOpt = kDataBase + 0x300;     // option values
constexpr uint64_t kAddr = kDataBase + 0x400;    // sockaddr_un (110 bytes)
constexpr uint64_t kAddr2 = kDataBase + 0x500;
constexpr uint64_t kMsg = kDataBase + 0x600;     // struct msghdr
constexpr uint64_t kIov = kDataBase + 0x700;     // iovecs
constexpr uint64_t kCtl = kDataBase + 0x800;     // control buffer
constexpr uint64_t kPollFds = kDataBase + 0xa00;
constexpr uint64_t kSpec = kDataBase + 0xb00;
constexpr uint64_t kShared = kDataBase + 0xc00;  // words shared with helper threads and handlers
constexpr uint64_t kOut = kDataBase + 0x1000;    // bytes sent
constexpr uint64_t kIn = kDataBase + 0x2000;     // bytes received
constexpr uint64_t kBig = kDataBase + 0x10000;   // 64 KiB
constexpr uint64_t kSlots = kDataBase + 0x40000;
constexpr uint64_t kUnmapped = 0x50000000;
constexpr uint64_t kKernelAddress = 0xffff800000000000ull;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

void put_bytes(User& u, uint64_t at, const char* text, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint64_t word = (at + i) & ~3ull;
    uint32_t v = u.load32(word);
    const unsigned shift = 8 * ((at + i) & 3);
    v = (v & ~(0xffu << shift)) | (static_cast<uint32_t>(static_cast<uint8_t>(text[i])) << shift);
    u.store32(word, v);
  }
}
uint8_t byte_at(User& u, uint64_t at) { return static_cast<uint8_t>(u.load32(at & ~3ull) >> (8 * (at & 3))); }
void expect_bytes(User& u, const char* what, uint64_t at, const char* text, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (byte_at(u, at + i) != static_cast<uint8_t>(text[i])) u.fail("%s: byte %zu differs", what, i);
  }
}

// socketpair into kFds; returns the two descriptors.
void pair(User& u, uint64_t type, uint32_t* a, uint32_t* b) {
  check(u, "socketpair", u.syscall(sys::kSocketpair, kAfUnix, type, 0, kFds), 0);
  *a = u.load32(kFds);
  *b = u.load32(kFds + 4);
}

// A msghdr at kMsg with one iovec (kIov) of `len` bytes at `data` and `ctl_len` bytes of control
// at kCtl.
void msghdr(User& u, uint64_t data, uint64_t len, uint64_t ctl_len, uint64_t name = 0, uint32_t namelen = 0) {
  u.store64(kMsg, name);
  u.store64(kMsg + 8, namelen);
  u.store64(kMsg + 16, kIov);
  u.store64(kMsg + 24, 1);
  u.store64(kMsg + 32, ctl_len == 0 ? 0 : kCtl);
  u.store64(kMsg + 40, ctl_len);
  u.store64(kMsg + 48, 0);
  u.store64(kIov, data);
  u.store64(kIov + 8, len);
}

// Sends `len` bytes from kOut with SCM_RIGHTS for `fds`.
int64_t send_fds(User& u, uint32_t sock, uint64_t len, const uint32_t* fds, uint32_t n, uint64_t flags = 0) {
  msghdr(u, kOut, len, n == 0 ? 0 : 16 + ((4 * n + 7) & ~7u));
  if (n > 0) {
    u.store64(kCtl, 16 + 4 * n);  // cmsg_len
    u.store32(kCtl + 8, 1);       // SOL_SOCKET
    u.store32(kCtl + 12, 1);      // SCM_RIGHTS
    for (uint32_t i = 0; i < n; ++i) u.store32(kCtl + 16 + 4 * i, fds[i]);
  }
  return u.syscall(sys::kSendmsg, sock, kMsg, flags);
}

// Receives into kIn with `ctl_len` bytes of control room; msg_flags and msg_controllen are read
// back from kMsg.
int64_t recv_fds(User& u, uint32_t sock, uint64_t len, uint64_t ctl_len, uint64_t flags = 0) {
  msghdr(u, kIn, len, ctl_len);
  return u.syscall(sys::kRecvmsg, sock, kMsg, flags);
}
uint32_t msg_flags(User& u) { return u.load32(kMsg + 48); }
uint64_t msg_controllen(User& u) { return u.load64(kMsg + 40); }
uint32_t received_fd(User& u, uint32_t i) { return u.load32(kCtl + 16 + 4 * i); }

int64_t getsockopt_int(User& u, uint32_t sock, uint64_t level, uint64_t name) {
  u.store32(kLen, 4);
  const int64_t r = u.syscall(sys::kGetsockopt, sock, level, name, kOpt, kLen);
  if (r != 0) return r;
  return static_cast<int32_t>(u.load32(kOpt));
}

uint32_t poll_one(User& u, uint32_t fd, uint32_t events) {
  u.store32(kPollFds, fd);
  u.store32(kPollFds + 4, events);
  const int64_t n = u.syscall(sys::kPoll, kPollFds, 1, 0);
  if (n < 0) u.fail("poll failed: %lld", static_cast<long long>(n));
  return u.load32(kPollFds + 4) >> 16;
}

void sleep_ms(User& u, uint64_t ms) {
  u.store64(kSpec, 0);
  u.store64(kSpec + 8, ms * 1'000'000);
  u.syscall(nr::kNanosleep, kSpec, 0);
}

// sockaddr_un at `at`: family, then the path (or an abstract name starting with NUL).
uint32_t sun(User& u, uint64_t at, const char* path, size_t n) {
  for (uint64_t i = 0; i < 112; i += 4) u.store32(at + i, 0);
  u.store32(at, 1);  // AF_UNIX (u16) and the first path bytes zero
  put_bytes(u, at + 2, path, n);
  return static_cast<uint32_t>(2 + n);
}

// ---------------------------------------------------------------------------------------------
// One thread: the table
// ---------------------------------------------------------------------------------------------

constexpr uint64_t kSigpipe = 13, kSaRestorer = 0x04000000;
void counting_handler(User& h) { h.fetch_add32(kShared + 4, 1); }
const uint64_t kCountingHandler = register_entry("test.socket.handler", counting_handler);
const uint64_t kRestorer = register_entry("test.socket.restorer", [](User& u) { u.fail("the restorer ran as a thread"); });

void arguments_table(User& u) {
  uint32_t a, b;
  // socket(2) and socketpair(2) errors.
  check(u, "socket with an unknown family", u.syscall(sys::kSocket, 46, kStream, 0), -EAFNOSUPPORT);
  check(u, "socket with a negative family", u.syscall(sys::kSocket, static_cast<uint64_t>(-1), kStream, 0), -EAFNOSUPPORT);
  check(u, "socket(AF_INET6)", u.syscall(sys::kSocket, kAfInet6, kStream, 0), -EAFNOSUPPORT);
  check(u, "socket with an unknown type flag", u.syscall(sys::kSocket, kAfUnix, kStream | 0x100, 0), -EINVAL);
  check(u, "socket with type 11", u.syscall(sys::kSocket, kAfUnix, 11, 0), -EINVAL);
  check(u, "socket(AF_UNIX, SOCK_RDM)", u.syscall(sys::kSocket, kAfUnix, 4, 0), -ESOCKTNOSUPPORT);
  check(u, "socket(AF_UNIX) with protocol 6", u.syscall(sys::kSocket, kAfUnix, kStream, 6), -EPROTONOSUPPORT);
  check(u, "socketpair(AF_INET)", u.syscall(sys::kSocketpair, kAfInet, kStream, 0, kFds), -EOPNOTSUPP);
  check(u, "socketpair into unmapped memory", u.syscall(sys::kSocketpair, kAfUnix, kStream, 0, kUnmapped), -EFAULT);
  check(u, "socketpair into kernel memory", u.syscall(sys::kSocketpair, kAfUnix, kStream, 0, kKernelAddress), -EFAULT);
  // A failed socketpair leaves no descriptor behind: the next one gets 3 and 4.
  pair(u, kStream, &a, &b);
  check(u, "first descriptor", a, 3);
  check(u, "second descriptor", b, 4);

  // Not a socket, not a descriptor.
  check(u, "pipe", u.syscall(sys::kPipe, kFds + 8), 0);
  const uint32_t pr = u.load32(kFds + 8), pw = u.load32(kFds + 12);
  check(u, "sendmsg on a pipe", u.syscall(sys::kSendmsg, pw, kMsg, 0), -ENOTSOCK);
  check(u, "recvfrom on a pipe", u.syscall(sys::kRecvfrom, pr, kIn, 1, 0, 0, 0), -ENOTSOCK);
  check(u, "getsockopt on a pipe", u.syscall(sys::kGetsockopt, pr, kSolSocket, kSoType, kOpt, kLen), -ENOTSOCK);
  check(u, "shutdown on a pipe", u.syscall(sys::kShutdown, pr, 0), -ENOTSOCK);
  check(u, "bind on a pipe", u.syscall(sys::kBind, pr, kAddr, 2), -ENOTSOCK);
  check(u, "sendmsg on fd 99", u.syscall(sys::kSendmsg, 99, kMsg, 0), -EBADF);
  check(u, "getsockname on fd -1", u.syscall(sys::kGetsockname, static_cast<uint64_t>(-1), kAddr, kLen), -EBADF);

  // msghdr, iovec and control checks (sendmsg(2), cmsg(3)).
  check(u, "sendmsg with an unmapped msghdr", u.syscall(sys::kSendmsg, a, kUnmapped, 0), -EFAULT);
  check(u, "recvmsg with an unmapped msghdr", u.syscall(sys::kRecvmsg, a, kUnmapped, 0), -EFAULT);
  msghdr(u, kOut, 4, 0);
  u.store64(kMsg + 24, 1025);
  check(u, "sendmsg with 1025 iovecs", u.syscall(sys::kSendmsg, a, kMsg, 0), -EMSGSIZE);
  msghdr(u, kOut, static_cast<uint64_t>(-1), 0);
  check(u, "sendmsg with a negative iovec length", u.syscall(sys::kSendmsg, a, kMsg, 0), -EINVAL);
  msghdr(u, kOut, 4, 0);
  u.store64(kMsg + 16, kUnmapped);
  check(u, "sendmsg with an unmapped iovec array", u.syscall(sys::kSendmsg, a, kMsg, 0), -EFAULT);
  msghdr(u, kUnmapped, 4, 0);
  check(u, "sendmsg from unmapped data", u.syscall(sys::kSendmsg, a, kMsg, 0), -EFAULT);
  msghdr(u, kOut, 4, 16);
  u.store64(kCtl, 8);  // cmsg_len below sizeof(struct cmsghdr)
  check(u, "a control message shorter than its header", u.syscall(sys::kSendmsg, a, kMsg, 0), -EINVAL);
  u.store64(kCtl, 64);  // longer than the buffer
  check(u, "a control message longer than the buffer", u.syscall(sys::kSendmsg, a, kMsg, 0), -EINVAL);
  u.store64(kMsg + 40, 1u << 20);
  check(u, "a 1 MiB control buffer", u.syscall(sys::kSendmsg, a, kMsg, 0), -ENOBUFS);
  u.store64(kMsg + 40, 16);
  u.store64(kMsg + 32, kUnmapped);
  check(u, "an unmapped control buffer", u.syscall(sys::kSendmsg, a, kMsg, 0), -EFAULT);
  const uint32_t bad_fd = 99;
  check(u, "SCM_RIGHTS with a closed descriptor", send_fds(u, a, 1, &bad_fd, 1), -EBADF);
  msghdr(u, kOut, 1, 16);
  u.store64(kCtl, 16);
  u.store32(kCtl + 8, 1);
  u.store32(kCtl + 12, 77);  // unknown SOL_SOCKET type
  check(u, "an unknown SOL_SOCKET control message", u.syscall(sys::kSendmsg, a, kMsg, 0), -EINVAL);
  msghdr(u, kOut, 1, 16 + 16);
  u.store64(kCtl, 16 + 12);
  u.store32(kCtl + 8, 1);
  u.store32(kCtl + 12, 2);  // SCM_CREDENTIALS, ignored
  check(u, "SCM_CREDENTIALS of struct ucred's size", u.syscall(sys::kSendmsg, a, kMsg, 0), 1);
  check(u, "read the credentialled byte", u.syscall(sys::kRead, b, kIn, 16), 1);
  u.store64(kCtl, 16 + 8);
  check(u, "SCM_CREDENTIALS of the wrong size", u.syscall(sys::kSendmsg, a, kMsg, 0), -EINVAL);
  msghdr(u, kOut, 1, 0, kAddr, 2);
  u.store32(kAddr, 1);
  check(u, "sendmsg with a name on a connected stream", u.syscall(sys::kSendmsg, a, kMsg, 0), -EISCONN);
  msghdr(u, kOut, 1, 0, kAddr, static_cast<uint32_t>(-1));
  check(u, "sendmsg with a negative name length", u.syscall(sys::kSendmsg, a, kMsg, 0), -EINVAL);

  // Options (getsockopt(2), socket(7)).
  check(u, "SO_TYPE", getsockopt_int(u, a, kSolSocket, kSoType), static_cast<int64_t>(kStream));
  check(u, "SO_DOMAIN", getsockopt_int(u, a, kSolSocket, kSoDomain), static_cast<int64_t>(kAfUnix));
  check(u, "SO_ERROR", getsockopt_int(u, a, kSolSocket, kSoError), 0);
  check(u, "SO_ACCEPTCONN", getsockopt_int(u, a, kSolSocket, kSoAcceptconn), 0);
  u.store32(kLen, static_cast<uint32_t>(-1));
  check(u, "getsockopt with a negative length", u.syscall(sys::kGetsockopt, a, kSolSocket, kSoType, kOpt, kLen), -EINVAL);
  check(u, "getsockopt with an unmapped length", u.syscall(sys::kGetsockopt, a, kSolSocket, kSoType, kOpt, kUnmapped), -EFAULT);
  u.store32(kLen, 2);
  check(u, "getsockopt truncates to the given length", u.syscall(sys::kGetsockopt, a, kSolSocket, kSoType, kOpt, kLen), 0);
  check(u, "the length written back", u.load32(kLen), 2);
  u.store32(kLen, 4);
  check(u, "getsockopt of an unknown option", u.syscall(sys::kGetsockopt, a, kSolSocket, 999, kOpt, kLen), -ENOPROTOOPT);
  check(u, "getsockopt at SOL_TCP on AF_UNIX", u.syscall(sys::kGetsockopt, a, 6, 1, kOpt, kLen), -EOPNOTSUPP);
  u.store32(kOpt, 4096);
  check(u, "setsockopt with a 2-byte int", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoSndbuf, kOpt, 2), -EINVAL);
  check(u, "setsockopt with a negative length", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoSndbuf, kOpt, static_cast<uint64_t>(-1)), -EINVAL);
  check(u, "setsockopt from unmapped memory", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoSndbuf, kUnmapped, 4), -EFAULT);
  check(u, "setsockopt SO_TYPE", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoType, kOpt, 4), -ENOPROTOOPT);
  check(u, "setsockopt SO_SNDBUF", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoSndbuf, kOpt, 4), 0);
  check(u, "SO_SNDBUF reads back doubled", getsockopt_int(u, a, kSolSocket, kSoSndbuf), 8192);
  u.store32(kOpt, 1);
  check(u, "setsockopt SO_RCVBUF below the minimum", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoRcvbuf, kOpt, 4), 0);
  check(u, "SO_RCVBUF reads back the minimum", getsockopt_int(u, a, kSolSocket, kSoRcvbuf), 2304);
  u.store64(kOpt, 0);
  u.store64(kOpt + 8, 1'000'000);  // tv_usec out of range
  check(u, "SO_RCVTIMEO with 1e6 microseconds", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoRcvtimeo, kOpt, 16), -EDOM);
  u.store32(kLen, 12);
  check(u, "SO_PEERCRED", u.syscall(sys::kGetsockopt, a, kSolSocket, kSoPeercred, kOpt, kLen), 0);
  check(u, "SO_PEERCRED's pid", u.load32(kOpt), static_cast<int64_t>(u.syscall(nr::kGetpid)));

  // Names of an unnamed pair.
  u.store32(kLen, 110);
  check(u, "getsockname", u.syscall(sys::kGetsockname, a, kAddr, kLen), 0);
  check(u, "getsockname's length", u.load32(kLen), 2);
  check(u, "getsockname's family", u.load32(kAddr) & 0xffff, 1);
  u.store32(kLen, 110);
  check(u, "getpeername", u.syscall(sys::kGetpeername, a, kAddr, kLen), 0);
  check(u, "getpeername's length", u.load32(kLen), 2);
  u.store32(kLen, static_cast<uint32_t>(-1));
  check(u, "getsockname with a negative length", u.syscall(sys::kGetsockname, a, kAddr, kLen), -EINVAL);
  check(u, "shutdown with how 3", u.syscall(sys::kShutdown, a, 3), -EINVAL);
  check(u, "accept4 with a bad flag", u.syscall(sys::kAccept4, a, 0, 0, 1), -EINVAL);
  check(u, "accept on a connected stream", u.syscall(sys::kAccept, a, 0, 0), -EINVAL);
  check(u, "listen on a socket without a name", u.syscall(sys::kListen, a, 5), -EINVAL);
  const int64_t unbound = u.syscall(sys::kSocket, kAfUnix, kStream, 0);
  check(u, "recv on an unconnected stream", u.syscall(sys::kRecvfrom, unbound, kIn, 1, 0, 0, 0), -EINVAL);
  check(u, "send on an unconnected stream", u.syscall(sys::kSendto, unbound, kOut, 1, 0, 0, 0), -ENOTCONN);
  check(u, "getpeername of an unconnected stream", u.syscall(sys::kGetpeername, unbound, kAddr, kLen), -ENOTCONN);
  check(u, "an unconnected stream polls POLLOUT|POLLHUP", poll_one(u, static_cast<uint32_t>(unbound), kPollIn | kPollOut),
        kPollOut | kPollHup);
  check(u, "bind with a short address", u.syscall(sys::kBind, unbound, kAddr, 1), -EINVAL);
  u.store32(kAddr, 2);
  check(u, "bind with AF_INET", u.syscall(sys::kBind, unbound, kAddr, 16), -EINVAL);
  check(u, "bind with 129 bytes", u.syscall(sys::kBind, unbound, kAddr, 129), -EINVAL);
  check(u, "bind from unmapped memory", u.syscall(sys::kBind, unbound, kUnmapped, 16), -EFAULT);
  check(u, "close", u.syscall(sys::kClose, unbound), 0);
  for (uint32_t fd : {a, b, pr, pw}) check(u, "close", u.syscall(sys::kClose, fd), 0);
  exit_group(u, 0);
}

void stream_table(User& u) {
  uint32_t a, b;
  pair(u, kStream | kNonblock | kCloexec, &a, &b);
  check(u, "SOCK_CLOEXEC sets FD_CLOEXEC", u.syscall(sys::kFcntl, a, 1), 1);
  check(u, "SOCK_NONBLOCK sets O_NONBLOCK", u.syscall(sys::kFcntl, a, 3) & kNonblock, static_cast<int64_t>(kNonblock));
  check(u, "read of an empty socket", u.syscall(sys::kRead, a, kIn, 16), -EAGAIN);
  check(u, "a fresh pair polls writable only", poll_one(u, a, kPollIn | kPollOut), kPollOut);

  // Both ways.
  put_bytes(u, kOut, "hello", 5);
  check(u, "write a->b", u.syscall(sys::kWrite, a, kOut, 5), 5);
  check(u, "b polls readable", poll_one(u, b, kPollIn | kPollOut), kPollIn | kPollOut);
  u.store32(kLen, 4);
  check(u, "FIONREAD", u.syscall(sys::kIoctl, b, 0x541b, kLen), 0);
  check(u, "FIONREAD's count", u.load32(kLen), 5);
  check(u, "read b", u.syscall(sys::kRead, b, kIn, 16), 5);
  expect_bytes(u, "a->b", kIn, "hello", 5);
  put_bytes(u, kOut, "world!", 6);
  check(u, "send b->a", u.syscall(sys::kSendto, b, kOut, 6, 0, 0, 0), 6);
  check(u, "recv with MSG_PEEK", u.syscall(sys::kRecvfrom, a, kIn, 16, kMsgPeek, 0, 0), 6);
  check(u, "recv after the peek", u.syscall(sys::kRecvfrom, a, kIn, 3, 0, 0, 0), 3);
  expect_bytes(u, "first half", kIn, "wor", 3);
  check(u, "recv the rest", u.syscall(sys::kRecvfrom, a, kIn, 16, 0, 0, 0), 3);
  expect_bytes(u, "second half", kIn, "ld!", 3);
  check(u, "a zero-length write", u.syscall(sys::kWrite, a, kOut, 0), 0);
  check(u, "a zero-length read", u.syscall(sys::kRead, b, kIn, 0), 0);

  // writev/readv go through the same path as sendmsg/recvmsg.
  put_bytes(u, kOut, "abcdef", 6);
  u.store64(kIov + 64, kOut);
  u.store64(kIov + 72, 2);
  u.store64(kIov + 80, kOut + 2);
  u.store64(kIov + 88, 4);
  check(u, "writev", u.syscall(sys::kWritev, a, kIov + 64, 2), 6);
  u.store64(kIov + 64, kIn);
  u.store64(kIov + 72, 1);
  u.store64(kIov + 80, kIn + 1);
  u.store64(kIov + 88, 10);
  check(u, "readv", u.syscall(sys::kReadv, b, kIov + 64, 2), 6);
  expect_bytes(u, "readv's bytes", kIn, "abcdef", 6);

  // Fill a's direction: nonblocking writes stop with EAGAIN; POLLOUT goes away.
  for (uint64_t i = 0; i < 4096; i += 4) u.store32(kBig + i, static_cast<uint32_t>(i));
  int64_t total = 0;
  for (int i = 0; i < 1000; ++i) {
    const int64_t n = u.syscall(sys::kWrite, a, kBig, 4096);
    if (n == -EAGAIN) break;
    if (n <= 0) u.fail("write %d: %lld", i, static_cast<long long>(n));
    total += n;
  }
  if (total < 65536 || total > 300000) u.fail("the socket buffered %lld bytes", static_cast<long long>(total));
  check(u, "a full socket is not writable", poll_one(u, a, kPollOut), 0);
  check(u, "MSG_DONTWAIT on a full socket", u.syscall(sys::kSendto, a, kBig, 1, kMsgDontwait, 0, 0), -EAGAIN);
  int64_t drained = 0;
  while (drained < total) {
    const int64_t n = u.syscall(sys::kRead, b, kIn, 4096);
    if (n <= 0) u.fail("drain: %lld after %lld", static_cast<long long>(n), static_cast<long long>(drained));
    drained += n;
  }
  check(u, "a drained socket is writable", poll_one(u, a, kPollOut), kPollOut);

  // EOF after shutdown(SHUT_WR); data sent before it is read first.
  put_bytes(u, kOut, "bye", 3);
  check(u, "write before shutdown", u.syscall(sys::kWrite, a, kOut, 3), 3);
  check(u, "shutdown(SHUT_WR)", u.syscall(sys::kShutdown, a, 1), 0);
  check(u, "write after SHUT_WR (MSG_NOSIGNAL)", u.syscall(sys::kSendto, a, kOut, 1, kMsgNosignal, 0, 0), -EPIPE);
  check(u, "b polls readable and RDHUP", poll_one(u, b, kPollIn | kPollRdhup), kPollIn | kPollRdhup);
  check(u, "read the last bytes", u.syscall(sys::kRead, b, kIn, 16), 3);
  check(u, "then EOF", u.syscall(sys::kRead, b, kIn, 16), 0);
  check(u, "b can still write", u.syscall(sys::kWrite, b, kOut, 3), 3);
  check(u, "a reads it", u.syscall(sys::kRead, a, kIn, 16), 3);

  // EPIPE and SIGPIPE once the peer is gone.
  const uint64_t act = kSpec + 128;
  u.store64(act, kCountingHandler);
  u.store64(act + 8, kSaRestorer);
  u.store64(act + 16, kRestorer);
  u.store64(act + 24, 0);
  check(u, "rt_sigaction(SIGPIPE)", u.syscall(sys::kRtSigaction, kSigpipe, act, 0, 8), 0);
  u.store32(kShared + 4, 0);
  check(u, "close b", u.syscall(sys::kClose, b), 0);
  check(u, "a polls HUP", poll_one(u, a, kPollIn) & kPollHup, kPollHup);
  check(u, "send with MSG_NOSIGNAL", u.syscall(sys::kSendto, a, kOut, 1, kMsgNosignal, 0, 0), -EPIPE);
  check(u, "no SIGPIPE with MSG_NOSIGNAL", u.load32(kShared + 4), 0);
  check(u, "write to a closed peer", u.syscall(sys::kWrite, a, kOut, 1), -EPIPE);
  check(u, "SIGPIPE ran the handler once", u.load32(kShared + 4), 1);
  check(u, "read after the peer closed", u.syscall(sys::kRead, a, kIn, 16), 0);
  check(u, "close a", u.syscall(sys::kClose, a), 0);

  // A peer that closes with unread data: ECONNRESET once, then EOF.
  pair(u, kStream, &a, &b);
  check(u, "write to b", u.syscall(sys::kWrite, a, kOut, 3), 3);
  check(u, "write to a", u.syscall(sys::kWrite, b, kOut, 3), 3);
  check(u, "close b unread", u.syscall(sys::kClose, b), 0);
  check(u, "a polls ERR", poll_one(u, a, kPollIn) & kPollErr, kPollErr);
  check(u, "a reads what b sent first", u.syscall(sys::kRead, a, kIn, 16), 3);
  check(u, "then ECONNRESET", u.syscall(sys::kRead, a, kIn, 16), -ECONNRESET);
  check(u, "then EOF", u.syscall(sys::kRead, a, kIn, 16), 0);
  check(u, "close a", u.syscall(sys::kClose, a), 0);

  // MSG_WAITALL gathers until the buffer is full (here: already there).
  pair(u, kStream, &a, &b);
  check(u, "write 3", u.syscall(sys::kWrite, a, kOut, 3), 3);
  check(u, "write 3 more", u.syscall(sys::kWrite, a, kOut, 3), 3);
  check(u, "recv MSG_WAITALL", u.syscall(sys::kRecvfrom, b, kIn, 6, kMsgWaitall, 0, 0), 6);
  u.store64(kOpt, 0);
  u.store64(kOpt + 8, 2000);  // 2 ms
  check(u, "SO_RCVTIMEO", u.syscall(sys::kSetsockopt, b, kSolSocket, kSoRcvtimeo, kOpt, 16), 0);
  check(u, "a read that times out", u.syscall(sys::kRead, b, kIn, 16), -EAGAIN);
  u.store32(kLen, 16);
  check(u, "SO_RCVTIMEO reads back", u.syscall(sys::kGetsockopt, b, kSolSocket, kSoRcvtimeo, kOpt, kLen), 0);
  check(u, "its microseconds", static_cast<int64_t>(u.load64(kOpt + 8)), 2000);
  check(u, "close a", u.syscall(sys::kClose, a), 0);
  check(u, "close b", u.syscall(sys::kClose, b), 0);
  exit_group(u, 0);
}

void rights_table(User& u) {
  uint32_t a, b;
  pair(u, kStream, &a, &b);
  check(u, "pipe", u.syscall(sys::kPipe, kFds + 8), 0);
  const uint32_t pr = u.load32(kFds + 8), pw = u.load32(kFds + 12);

  // One descriptor, received with MSG_CMSG_CLOEXEC, works as the pipe's read end.
  put_bytes(u, kOut, "F", 1);
  check(u, "send the read end", send_fds(u, a, 1, &pr, 1), 1);
  check(u, "b is readable", poll_one(u, b, kPollIn), kPollIn);
  check(u, "recvmsg", recv_fds(u, b, 16, 24, kMsgCmsgCloexec), 1);
  check(u, "no MSG_CTRUNC", msg_flags(u) & kMsgCtrunc, 0);
  check(u, "msg_controllen", static_cast<int64_t>(msg_controllen(u)), 24);
  check(u, "cmsg_len", static_cast<int64_t>(u.load64(kCtl)), 20);
  check(u, "cmsg_level", u.load32(kCtl + 8), 1);
  check(u, "cmsg_type", u.load32(kCtl + 12), 1);
  const uint32_t got = received_fd(u, 0);
  check(u, "MSG_CMSG_CLOEXEC sets FD_CLOEXEC", u.syscall(sys::kFcntl, got, 1), 1);
  put_bytes(u, kOut, "pipe", 4);
  check(u, "write the pipe", u.syscall(sys::kWrite, pw, kOut, 4), 4);
  check(u, "read it through the received descriptor", u.syscall(sys::kRead, got, kIn, 16), 4);
  expect_bytes(u, "through the pipe", kIn, "pipe", 4);
  check(u, "close the received descriptor", u.syscall(sys::kClose, got), 0);

  // Two descriptors, room for one: MSG_CTRUNC, and the one that did not fit is closed (the
  // pipe's only write end then, so the received read end sees EOF).
  check(u, "pipe 2", u.syscall(sys::kPipe, kFds + 16), 0);
  const uint32_t qr = u.load32(kFds + 16), qw = u.load32(kFds + 20);
  const uint32_t both[2] = {qr, qw};
  check(u, "send two", send_fds(u, a, 1, both, 2), 1);
  check(u, "close the original read end", u.syscall(sys::kClose, qr), 0);
  check(u, "close the original write end", u.syscall(sys::kClose, qw), 0);
  check(u, "recvmsg with room for one", recv_fds(u, b, 16, 20), 1);
  check(u, "MSG_CTRUNC", msg_flags(u) & kMsgCtrunc, static_cast<int64_t>(kMsgCtrunc));
  check(u, "msg_controllen of the truncated buffer", static_cast<int64_t>(msg_controllen(u)), 20);
  check(u, "cmsg_len for one", static_cast<int64_t>(u.load64(kCtl)), 20);
  const uint32_t only = received_fd(u, 0);
  check(u, "the dropped write end is closed: EOF", u.syscall(sys::kRead, only, kIn, 16), 0);
  check(u, "close it", u.syscall(sys::kClose, only), 0);

  // No control buffer at all: read() and recv() close the descriptors (Linux), MSG_CTRUNC.
  check(u, "send with a descriptor", send_fds(u, a, 1, &pr, 1), 1);
  check(u, "recvmsg without a control buffer", recv_fds(u, b, 16, 0), 1);
  check(u, "MSG_CTRUNC without room", msg_flags(u) & kMsgCtrunc, static_cast<int64_t>(kMsgCtrunc));
  check(u, "send again", send_fds(u, a, 1, &pr, 1), 1);
  check(u, "read() drops it", u.syscall(sys::kRead, b, kIn, 16), 1);

  // A stream read stops after the write that carried descriptors.
  put_bytes(u, kOut, "abcdef", 6);
  check(u, "plain write", u.syscall(sys::kWrite, a, kOut, 2), 2);
  check(u, "write with a descriptor", send_fds(u, a, 2, &pr, 1), 2);
  check(u, "plain write after", u.syscall(sys::kWrite, a, kOut, 2), 2);
  check(u, "MSG_PEEK sees the descriptor", recv_fds(u, b, 16, 24, kMsgPeek), 4);
  check(u, "close the peeked copy", u.syscall(sys::kClose, received_fd(u, 0)), 0);
  check(u, "the read stops after the descriptor's write", recv_fds(u, b, 16, 24), 4);
  check(u, "with the descriptor", static_cast<int64_t>(u.load64(kCtl)), 20);
  check(u, "close it", u.syscall(sys::kClose, received_fd(u, 0)), 0);
  check(u, "then the rest", recv_fds(u, b, 16, 24), 2);
  check(u, "without control data", static_cast<int64_t>(msg_controllen(u)), 0);
  // A zero-length recvmsg still takes the descriptors of the bytes it stands at (Linux's
  // stream read loop runs once); the bytes stay.
  check(u, "a write with a descriptor", send_fds(u, a, 2, &pr, 1), 2);
  check(u, "a zero-length recvmsg", recv_fds(u, b, 0, 24), 0);
  check(u, "takes the descriptor", static_cast<int64_t>(u.load64(kCtl)), 20);
  check(u, "close it", u.syscall(sys::kClose, received_fd(u, 0)), 0);
  check(u, "the bytes are still there", recv_fds(u, b, 16, 24), 2);
  check(u, "without the descriptor", static_cast<int64_t>(msg_controllen(u)), 0);

  // Files in flight are released when the socket closes unread (the leak check sees them),
  // and a send that would make a socket reachable only through its own queue is refused.
  check(u, "a's own descriptor towards b", send_fds(u, a, 1, &a, 1), 1);
  check(u, "b's descriptor towards a would close a cycle", send_fds(u, b, 1, &b, 1), -ETOOMANYREFS);
  check(u, "b towards its own queue", send_fds(u, a, 1, &b, 1), -ETOOMANYREFS);
  check(u, "the pipe in flight", send_fds(u, a, 1, &pw, 1), 1);
  check(u, "close a", u.syscall(sys::kClose, a), 0);
  check(u, "close b with files queued", u.syscall(sys::kClose, b), 0);
  check(u, "close pr", u.syscall(sys::kClose, pr), 0);
  check(u, "close pw", u.syscall(sys::kClose, pw), 0);

  // SCM_RIGHTS needs AF_UNIX's support: 253 descriptors at most.
  pair(u, kDgram, &a, &b);
  uint32_t many[254];
  for (uint32_t i = 0; i < 254; ++i) many[i] = a;
  check(u, "254 descriptors", send_fds(u, a, 1, many, 254), -EINVAL);
  check(u, "253 descriptors", send_fds(u, a, 1, many, 253), 1);
  check(u, "close a", u.syscall(sys::kClose, a), 0);
  check(u, "close b", u.syscall(sys::kClose, b), 0);
  exit_group(u, 0);
}

void datagram_table(User& u) {
  uint32_t a, b;
  for (uint64_t type : {kDgram, kSeqpacket}) {
    pair(u, type, &a, &b);
    put_bytes(u, kOut, "onetwo", 6);
    check(u, "send one", u.syscall(sys::kSendto, a, kOut, 3, 0, 0, 0), 3);
    check(u, "send two", u.syscall(sys::kSendto, a, kOut + 3, 3, 0, 0, 0), 3);
    check(u, "send an empty datagram", u.syscall(sys::kSendto, a, kOut, 0, 0, 0, 0), 0);
    u.store32(kLen, 4);
    check(u, "FIONREAD", u.syscall(sys::kIoctl, b, 0x541b, kLen), 0);
    // Linux's unix_inq_len: the first datagram for SOCK_DGRAM, everything for SOCK_SEQPACKET.
    check(u, "FIONREAD's count", u.load32(kLen), type == kDgram ? 3 : 6);
    check(u, "recvmsg into 2 bytes", recv_fds(u, b, 2, 0), 2);
    check(u, "MSG_TRUNC", msg_flags(u) & kMsgTrunc, static_cast<int64_t>(kMsgTrunc));
    check(u, "recv with MSG_TRUNC gives the real length", u.syscall(sys::kRecvfrom, b, kIn, 1, kMsgTrunc, 0, 0), 3);
    check(u, "the empty datagram", u.syscall(sys::kRecvfrom, b, kIn, 16, 0, 0, 0), 0);
    check(u, "nothing left", u.syscall(sys::kRecvfrom, b, kIn, 16, kMsgDontwait, 0, 0), -EAGAIN);
    // writev makes one datagram.
    u.store64(kIov + 64, kOut);
    u.store64(kIov + 72, 2);
    u.store64(kIov + 80, kOut + 2);
    u.store64(kIov + 88, 4);
    check(u, "writev", u.syscall(sys::kWritev, a, kIov + 64, 2), 6);
    check(u, "one datagram of 6", u.syscall(sys::kRead, b, kIn, 16), 6);
    expect_bytes(u, "its bytes", kIn, "onetwo", 6);
    u.store32(kOpt, 4096);
    check(u, "SO_SNDBUF 4096", u.syscall(sys::kSetsockopt, a, kSolSocket, kSoSndbuf, kOpt, 4), 0);
    check(u, "a datagram above SO_SNDBUF", u.syscall(sys::kSendto, a, kBig, 9000, 0, 0, 0), -EMSGSIZE);
    check(u, "close a", u.syscall(sys::kClose, a), 0);
    if (type == kSeqpacket) {
      check(u, "SEQPACKET: EOF after the peer closed", u.syscall(sys::kRead, b, kIn, 16), 0);
      check(u, "SEQPACKET: send to a closed peer", u.syscall(sys::kSendto, b, kOut, 1, 0, 0, 0), -EPIPE);
    } else {
      check(u, "DGRAM: the peer is gone", u.syscall(sys::kSendto, b, kOut, 1, 0, 0, 0), -ECONNREFUSED);
      check(u, "DGRAM: then unconnected", u.syscall(sys::kSendto, b, kOut, 1, 0, 0, 0), -ENOTCONN);
    }
    check(u, "close b", u.syscall(sys::kClose, b), 0);
  }
  exit_group(u, 0);
}

void named_table(User& u) {
  // An abstract name.
  const int64_t server = u.syscall(sys::kSocket, kAfUnix, kStream | kNonblock, 0);
  const uint32_t len = sun(u, kAddr, "\0tandem-test", 12);
  check(u, "bind an abstract name", u.syscall(sys::kBind, server, kAddr, len), 0);
  check(u, "bind twice", u.syscall(sys::kBind, server, kAddr, len), -EINVAL);
  const int64_t other = u.syscall(sys::kSocket, kAfUnix, kStream, 0);
  check(u, "the name is in use", u.syscall(sys::kBind, other, kAddr, len), -EADDRINUSE);
  check(u, "connect before listen", u.syscall(sys::kConnect, other, kAddr, len), -ECONNREFUSED);
  check(u, "listen", u.syscall(sys::kListen, server, 1), 0);
  check(u, "SO_ACCEPTCONN", getsockopt_int(u, static_cast<uint32_t>(server), kSolSocket, kSoAcceptconn), 1);
  check(u, "accept with nothing pending (nonblocking)", u.syscall(sys::kAccept4, server, 0, 0, 0), -EAGAIN);
  check(u, "a listener polls nothing", poll_one(u, static_cast<uint32_t>(server), kPollIn | kPollOut), 0);
  check(u, "connect", u.syscall(sys::kConnect, other, kAddr, len), 0);
  check(u, "connect again", u.syscall(sys::kConnect, other, kAddr, len), -EISCONN);
  check(u, "the listener polls readable", poll_one(u, static_cast<uint32_t>(server), kPollIn), kPollIn);
  u.store32(kLen, 110);
  const int64_t conn = u.syscall(sys::kAccept4, server, kAddr2, kLen, kCloexec);
  if (conn < 0) u.fail("accept4: %lld", static_cast<long long>(conn));
  check(u, "accept4's SOCK_CLOEXEC", u.syscall(sys::kFcntl, conn, 1), 1);
  check(u, "the peer address is unnamed", u.load32(kLen), 2);
  put_bytes(u, kOut, "ping", 4);
  check(u, "client -> server", u.syscall(sys::kWrite, other, kOut, 4), 4);
  check(u, "server reads", u.syscall(sys::kRead, conn, kIn, 16), 4);
  check(u, "server -> client", u.syscall(sys::kWrite, conn, kOut, 4), 4);
  check(u, "client reads", u.syscall(sys::kRead, other, kIn, 16), 4);
  u.store32(kLen, 110);
  check(u, "getpeername of the client", u.syscall(sys::kGetpeername, other, kAddr2, kLen), 0);
  check(u, "is the abstract name", u.load32(kLen), len);
  expect_bytes(u, "the name", kAddr2 + 2, "\0tandem-test", 12);
  u.store32(kLen, 4);
  check(u, "getsockname into 4 bytes", u.syscall(sys::kGetsockname, server, kAddr2, kLen), 0);
  check(u, "reports the whole length", u.load32(kLen), len);
  for (int64_t fd : {conn, other}) check(u, "close", u.syscall(sys::kClose, fd), 0);

  // Two pending connections fit a backlog of 1 (Linux allows backlog + 1); the third waits.
  int64_t clients[3];
  for (int i = 0; i < 3; ++i) clients[i] = u.syscall(sys::kSocket, kAfUnix, kStream | kNonblock, 0);
  check(u, "pending 1", u.syscall(sys::kConnect, clients[0], kAddr, len), 0);
  check(u, "pending 2", u.syscall(sys::kConnect, clients[1], kAddr, len), 0);
  check(u, "backlog full", u.syscall(sys::kConnect, clients[2], kAddr, len), -EAGAIN);
  check(u, "write before accept", u.syscall(sys::kWrite, clients[0], kOut, 4), 4);
  // Closing the listener resets its pending connections.
  check(u, "close the listener", u.syscall(sys::kClose, server), 0);
  check(u, "the pending client reads ECONNRESET", u.syscall(sys::kRead, clients[1], kIn, 16), -ECONNRESET);
  check(u, "connect to a closed name", u.syscall(sys::kConnect, clients[2], kAddr, len), -ECONNREFUSED);
  for (int64_t fd : clients) check(u, "close", u.syscall(sys::kClose, fd), 0);

  // A path in /tmp; autobind; datagrams by name.
  const int64_t ps = u.syscall(sys::kSocket, kAfUnix, kSeqpacket, 0);
  const uint32_t plen = sun(u, kAddr, "/tmp/sock", 10);
  check(u, "bind a path", u.syscall(sys::kBind, ps, kAddr, plen), 0);
  const int64_t ps2 = u.syscall(sys::kSocket, kAfUnix, kSeqpacket, 0);
  check(u, "the path exists", u.syscall(sys::kBind, ps2, kAddr, plen), -EADDRINUSE);
  check(u, "listen", u.syscall(sys::kListen, ps, 4), 0);
  const int64_t ds = u.syscall(sys::kSocket, kAfUnix, kDgram, 0);
  check(u, "connect a datagram socket to a SEQPACKET path", u.syscall(sys::kConnect, ds, kAddr, plen), -EPROTOTYPE);
  check(u, "connect by path", u.syscall(sys::kConnect, ps2, kAddr, plen), 0);
  const int64_t pconn = u.syscall(sys::kAccept, ps, 0, 0);
  if (pconn < 0) u.fail("accept: %lld", static_cast<long long>(pconn));
  put_bytes(u, kOut, "seq", 3);
  check(u, "seqpacket over a path", u.syscall(sys::kWrite, ps2, kOut, 3), 3);
  check(u, "read it", u.syscall(sys::kRead, pconn, kIn, 16), 3);
  put_bytes(u, kSpec + 64, "/tmp/sock", 10);
  check(u, "unlink the path", u.syscall(sys::kUnlink, kSpec + 64), 0);
  check(u, "connect to an unlinked path", u.syscall(sys::kConnect, ds, kAddr, plen), -ENOENT);
  const int64_t auto_socket = u.syscall(sys::kSocket, kAfUnix, kDgram, 0);
  u.store32(kAddr2, 1);  // AF_UNIX, nothing else
  check(u, "autobind", u.syscall(sys::kBind, auto_socket, kAddr2, 2), 0);
  u.store32(kLen, 110);
  check(u, "getsockname of an autobound socket", u.syscall(sys::kGetsockname, auto_socket, kAddr2, kLen), 0);
  check(u, "an abstract name of 5 hex digits", u.load32(kLen), 8);
  const uint32_t alen = u.load32(kLen);
  check(u, "sendto by name", u.syscall(sys::kSendto, ds, kOut, 3, 0, kAddr2, alen), 3);
  u.store32(kLen, 110);
  check(u, "recvfrom", u.syscall(sys::kRecvfrom, auto_socket, kIn, 16, 0, kAddr, kLen), 3);
  check(u, "from an unnamed socket", u.load32(kLen), 0);
  for (int64_t fd : {ps, ps2, ds, pconn, auto_socket}) check(u, "close", u.syscall(sys::kClose, fd), 0);
  exit_group(u, 0);
}

// ---------------------------------------------------------------------------------------------
// Across fork and across CPUs
// ---------------------------------------------------------------------------------------------

// The child receives the pipe's write end (blocking recvmsg, woken when the parent sends after
// a sleep), writes through it and exits.
void fork_child(User& u) {
  if (u.start().rax != 0) u.fail("fork child: fork returned %llu", static_cast<unsigned long long>(u.start().rax));
  const uint32_t a = u.load32(kFds), b = u.load32(kFds + 4), pr = u.load32(kFds + 8), pw = u.load32(kFds + 12);
  check(u, "child closes a", u.syscall(sys::kClose, a), 0);
  check(u, "child closes the pipe's read end", u.syscall(sys::kClose, pr), 0);
  check(u, "child closes the pipe's write end", u.syscall(sys::kClose, pw), 0);
  check(u, "child: blocking recvmsg", recv_fds(u, b, 16, 24), 5);
  expect_bytes(u, "child: the message", kIn, "hello", 5);
  const uint32_t fd = received_fd(u, 0);
  put_bytes(u, kOut, "from child", 10);
  check(u, "child writes through the received pipe end", u.syscall(sys::kWrite, fd, kOut, 10), 10);
  // Answer through the socket, then wait for EOF from the parent.
  check(u, "child answers", u.syscall(sys::kWrite, b, kOut, 10), 10);
  check(u, "child sees EOF", u.syscall(sys::kRead, b, kIn, 16), 0);
  exit_group(u, 9);
}
const uint64_t kForkChild = register_entry("test.socket.fork-child", fork_child);

void fork_table(User& u) {
  uint32_t a, b;
  pair(u, kStream, &a, &b);
  check(u, "pipe", u.syscall(sys::kPipe, kFds + 8), 0);
  const uint32_t pr = u.load32(kFds + 8), pw = u.load32(kFds + 12);
  const int64_t pid = u.syscall_at(kForkChild, sys::kFork);
  if (pid <= 1) u.fail("fork returned %lld", static_cast<long long>(pid));
  check(u, "parent closes b", u.syscall(sys::kClose, b), 0);
  // epoll: the answer will wake it.
  const int64_t ep = u.syscall(sys::kEpollCreate1, 0);
  u.store32(kSpec + 200, 1);  // EPOLLIN; struct epoll_event is packed
  u.store32(kSpec + 204, 42);
  u.store32(kSpec + 208, 0);
  check(u, "epoll_ctl ADD", u.syscall(sys::kEpollCtl, ep, 1, a, kSpec + 200), 0);
  check(u, "nothing ready yet", u.syscall(sys::kEpollWait, ep, kSpec + 256, 4, 0), 0);
  sleep_ms(u, 2);
  put_bytes(u, kOut, "hello", 5);
  check(u, "send the write end", send_fds(u, a, 5, &pw, 1), 5);
  check(u, "parent closes its write end", u.syscall(sys::kClose, pw), 0);
  check(u, "epoll_wait wakes for the answer", u.syscall(sys::kEpollWait, ep, kSpec + 256, 4, static_cast<uint64_t>(-1)), 1);
  check(u, "its data", u.load32(kSpec + 260), 42);
  check(u, "read the answer", u.syscall(sys::kRead, a, kIn, 16), 10);
  check(u, "read the pipe", u.syscall(sys::kRead, pr, kIn, 16), 10);
  expect_bytes(u, "through the passed pipe", kIn, "from child", 10);
  check(u, "shutdown(SHUT_WR)", u.syscall(sys::kShutdown, a, 1), 0);
  check(u, "wait4", u.syscall(sys::kWait4, static_cast<uint64_t>(pid), kSpec + 400, 0, 0), pid);
  check(u, "the child's exit status", (u.load32(kSpec + 400) >> 8) & 0xff, 9);
  check(u, "the pipe's writers are all gone", u.syscall(sys::kRead, pr, kIn, 16), 0);
  for (int64_t fd : {static_cast<int64_t>(a), static_cast<int64_t>(pr), ep}) check(u, "close", u.syscall(sys::kClose, fd), 0);
  exit_group(u, 0);
}

// A reader blocked in recv on one CPU is woken by a writer on another; a writer blocked on a
// full socket is woken when the reader drains it.
void blocked_reader(User& u) {
  const uint32_t b = u.load32(kFds + 4);
  u.store32(kShared, 1);
  u.store64(kShared + 16, static_cast<uint64_t>(u.syscall(sys::kRead, b, kIn, 16)));
  u.store32(kShared, 2);
  // Drain 256 KiB the main thread writes into a full socket.
  int64_t total = 0;
  while (total < 262144) {
    const int64_t n = u.syscall(sys::kRead, b, kBig + 0x20000, 65536);
    if (n <= 0) u.fail("reader: %lld after %lld", static_cast<long long>(n), static_cast<long long>(total));
    for (int64_t s = (total + 4095) / 4096 * 4096; s + 4 <= total + n; s += 4096) {
      if (u.load32(kBig + 0x20000 + (s - total)) != static_cast<uint32_t>(s)) u.fail("reader: the stamp at %lld is wrong", static_cast<long long>(s));
    }
    total += n;
  }
  u.store32(kShared, 3);
}
const uint64_t kBlockedReader = register_entry("test.socket.reader", blocked_reader);

void blocking_table(User& u) {
  uint32_t a, b;
  pair(u, kStream, &a, &b);
  u.store32(kShared, 0);
  spawn(u, kBlockedReader, 0, slot_at(kSlots, 0));
  while (u.load32(kShared) != 1) yield(u);
  sleep_ms(u, 2);
  put_bytes(u, kOut, "wake", 4);
  check(u, "write to the blocked reader", u.syscall(sys::kWrite, a, kOut, 4), 4);
  while (u.load32(kShared) != 2) yield(u);
  check(u, "the reader got it", static_cast<int64_t>(u.load64(kShared + 16)), 4);
  // 256 KiB in 4 KiB-stamped blocks, more than the socket holds: the writer blocks.
  for (uint64_t i = 0; i < 65536; i += 4096) u.store32(kBig + i, 0);
  for (int64_t sent = 0; sent < 262144; sent += 65536) {
    for (uint64_t i = 0; i < 65536; i += 4096) u.store32(kBig + i, static_cast<uint32_t>(sent + i));
    check(u, "a blocking 64 KiB write", u.syscall(sys::kWrite, a, kBig, 65536), 65536);
  }
  while (u.load32(kShared) != 3) yield(u);
  join(u, slot_at(kSlots, 0));
  check(u, "close a", u.syscall(sys::kClose, a), 0);
  check(u, "close b", u.syscall(sys::kClose, b), 0);
  exit_group(u, 0);
}

// A signal interrupts a blocked recv: EINTR without SA_RESTART; with SA_RESTART the call is
// restarted and returns the data sent later; with SO_RCVTIMEO set, Linux answers EINTR even
// with SA_RESTART (sock_intr_errno). Words at kShared: 0 phase, 4 handler runs, 16.. results,
// 48 the reader's tid.
constexpr uint64_t kSigusr1 = 10, kSaSiginfo = 4, kSaRestart = 0x10000000, kTgkill = 234;

void signalled_reader(User& u) {
  const uint32_t b = u.load32(kFds + 4);
  u.store64(kShared + 48, static_cast<uint64_t>(u.syscall(nr::kGettid)));
  u.store32(kShared, 1);
  u.store64(kShared + 16, static_cast<uint64_t>(u.syscall(sys::kRecvfrom, b, kIn, 16, 0, 0, 0)));
  u.store32(kShared, 2);
  u.store64(kShared + 24, static_cast<uint64_t>(u.syscall(sys::kRecvfrom, b, kIn, 16, 0, 0, 0)));
  u.store32(kShared, 3);
  u.store64(kOpt + 64, 10);  // SO_RCVTIMEO of 10 s: a timed wait, interrupted
  u.store64(kOpt + 72, 0);
  u.syscall(sys::kSetsockopt, b, kSolSocket, kSoRcvtimeo, kOpt + 64, 16);
  u.store64(kShared + 32, static_cast<uint64_t>(u.syscall(sys::kRecvfrom, b, kIn, 16, 0, 0, 0)));
  u.store32(kShared, 4);
}
const uint64_t kSignalledReader = register_entry("test.socket.signalled", signalled_reader);

void set_usr1(User& u, bool restart) {
  const uint64_t act = kSpec + 128;
  u.store64(act, kCountingHandler);
  u.store64(act + 8, kSaSiginfo | kSaRestorer | (restart ? kSaRestart : 0));
  u.store64(act + 16, kRestorer);
  u.store64(act + 24, 0);
  check(u, "rt_sigaction(SIGUSR1)", u.syscall(sys::kRtSigaction, kSigusr1, act, 0, 8), 0);
}

void signals_table(User& u) {
  uint32_t a, b;
  pair(u, kStream, &a, &b);
  const uint64_t pid = static_cast<uint64_t>(u.syscall(nr::kGetpid));
  set_usr1(u, false);
  u.store32(kShared, 0);
  u.store32(kShared + 4, 0);
  spawn(u, kSignalledReader, 0, slot_at(kSlots, 0));
  while (u.load32(kShared) != 1) yield(u);
  const uint64_t tid = u.load64(kShared + 48);
  sleep_ms(u, 2);
  check(u, "tgkill", u.syscall(kTgkill, pid, tid, kSigusr1), 0);
  while (u.load32(kShared) != 2) yield(u);
  check(u, "recv interrupted without SA_RESTART", static_cast<int64_t>(u.load64(kShared + 16)), -EINTR);
  set_usr1(u, true);
  sleep_ms(u, 2);
  check(u, "tgkill", u.syscall(kTgkill, pid, tid, kSigusr1), 0);
  while (u.load32(kShared + 4) != 2) yield(u);
  sleep_ms(u, 2);
  put_bytes(u, kOut, "late", 4);
  check(u, "write after the restart", u.syscall(sys::kWrite, a, kOut, 4), 4);
  while (u.load32(kShared) != 3) yield(u);
  check(u, "the restarted recv got the data", static_cast<int64_t>(u.load64(kShared + 24)), 4);
  sleep_ms(u, 2);
  check(u, "tgkill", u.syscall(kTgkill, pid, tid, kSigusr1), 0);
  while (u.load32(kShared) != 4) yield(u);
  check(u, "a timed recv is not restarted", static_cast<int64_t>(u.load64(kShared + 32)), -EINTR);
  join(u, slot_at(kSlots, 0));
  check(u, "close a", u.syscall(sys::kClose, a), 0);
  check(u, "close b", u.syscall(sys::kClose, b), 0);
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-socket-arguments", "socket layer argument checks",
                       register_entry("test.socket.arguments", arguments_table), any});
    register_scenario({"test-socket-stream", "AF_UNIX streams: both ways, EAGAIN, EOF, EPIPE, SIGPIPE",
                       register_entry("test.socket.stream", stream_table), any});
    register_scenario({"test-socket-rights", "SCM_RIGHTS: passing, MSG_CTRUNC, closing in flight",
                       register_entry("test.socket.rights", rights_table), any});
    register_scenario({"test-socket-datagram", "AF_UNIX SOCK_DGRAM and SOCK_SEQPACKET pairs",
                       register_entry("test.socket.datagram", datagram_table), any});
    register_scenario({"test-socket-named", "named AF_UNIX sockets: abstract, path, autobind",
                       register_entry("test.socket.named", named_table), any});
    register_scenario({"test-socket-fork", "SCM_RIGHTS across fork, epoll readiness",
                       register_entry("test.socket.fork", fork_table), any});
    register_scenario({"test-socket-blocking", "blocked readers and writers woken across CPUs",
                       register_entry("test.socket.blocking", blocking_table), any});
    register_scenario({"test-socket-signals", "signals interrupt blocked recv (EINTR, SA_RESTART, SO_RCVTIMEO)",
                       register_entry("test.socket.signals", signals_table), any});
  }
} const kRegistrar;

RunResult run(const char* scenario, uint32_t cpus, uint64_t seed, StrategyKind kind) {
  RunSpec spec;
  spec.scenario = scenario;
  spec.cpus = cpus;
  spec.seed = seed;
  spec.strategy.kind = kind;
  spec.max_steps = 50'000'000;
  return run_one(spec);
}

void run_tables(const char* scenario) {
  for (uint64_t seed : {1u, 2u}) {
    const RunResult r = run(scenario, 2, seed, StrategyKind::Random);
    EXPECT_EQ(r.outcome, Outcome::Finished) << scenario << " seed " << seed << ": " << r.message;
  }
}

TEST(SocketSemantics, BadArgumentsGiveLinuxErrors) { run_tables("test-socket-arguments"); }
TEST(SocketSemantics, StreamPairsMatchLinux) { run_tables("test-socket-stream"); }
TEST(SocketSemantics, ScmRightsMatchesLinuxAndLeaksNothing) { run_tables("test-socket-rights"); }
TEST(SocketSemantics, DatagramAndSeqpacketPairsMatchLinux) { run_tables("test-socket-datagram"); }
TEST(SocketSemantics, NamedSocketsMatchLinux) { run_tables("test-socket-named"); }

TEST(SocketSemantics, ScmRightsAcrossFork) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-socket-fork", 1 + static_cast<uint32_t>(seed % 3), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

TEST(SocketSemantics, SignalsInterruptBlockedReceives) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-socket-signals", 1 + static_cast<uint32_t>(seed % 3), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

TEST(SocketSemantics, BlockedReadersAndWritersWakeAcrossCpus) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-socket-blocking", 1 + static_cast<uint32_t>(seed % 4), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

}  // namespace
}  // namespace sim
