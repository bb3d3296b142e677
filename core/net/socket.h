// The socket layer: what every address family shares (core/net/socket.cpp), and the interface
// a family implements (AF_UNIX in core/net/unix.cpp, AF_INET over lwIP in core/net/inet.cpp).
//
// Split of the work, as Linux splits net/socket.c from af_unix.c and af_inet.c:
//
//   The layer (core/syscalls/net.cpp and socket.cpp) decodes every argument of the socket
//   system calls and checks every length: socket addresses (copied in to a SockAddr, copied
//   out with Linux's addrlen rules: truncate to the caller's room, report the real length),
//   struct msghdr, the iovec array (a MsgIo), the control buffer (SCM_RIGHTS descriptors are
//   looked up and handed to the family as retained File references; received ones are
//   installed as descriptors, MSG_CMSG_CLOEXEC honoured, MSG_CTRUNC set and the ones that do
//   not fit closed), SOCK_NONBLOCK/SOCK_CLOEXEC, MSG_DONTWAIT (folded into the flags the family
//   sees, together with O_NONBLOCK of the file), SIGPIPE for EPIPE on a SOCK_STREAM socket
//   unless MSG_NOSIGNAL, and
//   the generic SOL_SOCKET options (SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ERROR, SO_ACCEPTCONN,
//   SO_REUSEADDR, SO_KEEPALIVE, SO_PRIORITY, SO_LINGER, SO_SNDBUF, SO_RCVBUF, SO_RCVTIMEO,
//   SO_SNDTIMEO, SO_BROADCAST, SO_OOBINLINE, SO_PASSCRED, SO_RCVLOWAT, SO_SNDLOWAT): their
//   values live in Socket::options(), and the family hears of a change through
//   socket_option_changed(). read/write/readv/writev on a socket file go to recv/send with no
//   flags, so every path into a family is the same two functions.
//
//   A family implements semantics only: a subclass of Socket overriding the virtual operations
//   below (the defaults answer the errno Linux gives for an operation a family lacks), plus its
//   entry in create_socket() / create_socket_pair() in socket.cpp.
//
// Rules for a family's implementation:
//   - Blocking: an operation blocks unless `flags & msgflag::kDontWait` (send/recv) or
//     nonblocking() (accept, connect). Sleep with wait_on() under your own lock (rank
//     LockRank::Wait, taken with interrupts off, see IrqLockHolder); the deadline comes from
//     receive_deadline() / send_deadline() (SO_RCVTIMEO / SO_SNDTIMEO, 0 = none). wait_on()
//     returns EAGAIN at the deadline and ERESTARTSYS or EINTR on a signal: return that error,
//     or the count moved so far when some data already went (Linux's rule for partial I/O).
//   - Readiness: poll_events() returns pollev bits under your lock (it is called with the VFS's
//     epoll lock held, rank Process, so your lock must rank above it: Wait does). After any
//     change that may alter them, drop your lock and call notify_readiness(): poll, select and
//     epoll_wait rescan on it. Forgetting it is a lost wake-up for pollers.
//   - Memory: all buffers come from the kernel heap (objects of at most Heap::kMaxObject
//     bytes) or whole pages; the simulator's leak check counts both after every run, so
//     everything (including File references received through SCM_RIGHTS and still queued) must
//     be released in on_last_close(), which ends with heap().destroy(this) of the concrete type.
//   - User memory: only through MsgIo::get/put and the SockAddr copies; a fault there is
//     EFAULT, or the partial count when some bytes already moved.
//   - Errors: return Linux's errno for the family (see unix(7), tcp(7), udp(7), ip(7)); EPIPE
//     from send on a SOCK_STREAM socket makes the layer raise SIGPIPE unless MSG_NOSIGNAL was
//     given (Linux's rule: datagram and seqpacket sends answer EPIPE without the signal).
#pragma once

#include "core/fs/vfs.h"
#include "core/lib/heap.h"

namespace tandem {

// Address families (socket(2)). AF_MAX on Linux 6.1 is 46.
namespace af {
inline constexpr i32 kUnspec = 0, kUnix = 1, kInet = 2, kInet6 = 10, kNetlink = 16, kPacket = 17, kMax = 46;
}

// Socket types and the flags socket(2), socketpair(2) and accept4(2) accept with them.
namespace socktype {
inline constexpr i32 kStream = 1, kDgram = 2, kRaw = 3, kRdm = 4, kSeqPacket = 5, kPacket = 10;
inline constexpr i32 kTypeMask = 0xf;
inline constexpr i32 kNonBlock = 04000, kCloExec = 02000000;  // = O_NONBLOCK, O_CLOEXEC
}  // namespace socktype

// send(2)/recv(2) flags and msg_flags bits.
namespace msgflag {
inline constexpr u32 kOob = 0x1, kPeek = 0x2, kDontRoute = 0x4, kCtrunc = 0x8, kTrunc = 0x20, kDontWait = 0x40,
                     kEor = 0x80, kWaitAll = 0x100, kConfirm = 0x800, kErrQueue = 0x2000, kNoSignal = 0x4000,
                     kMore = 0x8000, kWaitForOne = 0x10000, kCmsgCloExec = 0x40000000;
}

// Option levels and SOL_SOCKET option names (asm-generic/socket.h, as x86-64 uses).
namespace sol {
inline constexpr i32 kIp = 0, kSocket = 1, kTcp = 6, kUdp = 17, kIpv6 = 41;
}
namespace so {
inline constexpr i32 kDebug = 1, kReuseAddr = 2, kType = 3, kError = 4, kDontRoute = 5, kBroadcast = 6,
                     kSndBuf = 7, kRcvBuf = 8, kKeepAlive = 9, kOobInline = 10, kNoCheck = 11, kPriority = 12,
                     kLinger = 13, kBsdCompat = 14, kReusePort = 15, kPassCred = 16, kPeerCred = 17,
                     kRcvLowat = 18, kSndLowat = 19, kRcvTimeoOld = 20, kSndTimeoOld = 21, kAcceptConn = 30,
                     kSndBufForce = 32, kRcvBufForce = 33, kProtocol = 38, kDomain = 39;
}
// Control message types at SOL_SOCKET.
namespace scm {
inline constexpr i32 kRights = 1, kCredentials = 2;
}
// shutdown(2)'s how.
namespace shut {
inline constexpr i32 kRd = 0, kWr = 1, kRdWr = 2;
}

// A socket address in kernel memory: what the user gave (bind, connect, sendto), or what a
// family reports (getsockname, getpeername, accept, recvfrom). sizeof(struct sockaddr_storage).
inline constexpr u32 kSockAddrMax = 128;
struct SockAddr {
  u32 length = 0;  // valid bytes in data
  alignas(8) u8 data[kSockAddrMax] = {};

  // sa_family, or -1 when the address is too short to hold one.
  i32 family() const { return length >= 2 ? static_cast<i32>(data[0] | (data[1] << 8)) : -1; }
  void set(const void* bytes, u32 n) {
    length = n > kSockAddrMax ? kSockAddrMax : n;
    copy_bytes(data, bytes, length);
  }
};

// The data of one send or receive: either one buffer (read, write, send, recv; user or kernel
// memory) or the user's iovec array (sendmsg, recvmsg, readv, writev), copied into the kernel
// and checked by the layer (count at most UIO_MAXIOV, no negative length, total clamped to
// MAX_RW_COUNT). A family moves bytes with get/put at a byte offset into the whole message;
// sequential access is cheap (a cursor remembers the segment).
struct UserIovec {
  u64 base;
  u64 length;
};
class MsgIo {
 public:
  static constexpr u32 kIovPerChunk = Heap::kMaxObject / sizeof(UserIovec);  // 256
  static constexpr u32 kMaxIov = 1024;                                       // UIO_MAXIOV
  static constexpr u64 kMaxTotal = 0x7ffff000;                               // MAX_RW_COUNT

  MsgIo(const IoBuffer& buffer, u64 length);
  // `chunks` hold `count` iovecs (kIovPerChunk per chunk); lengths already clamped so that
  // their sum is `total`. The chunks stay owned by the caller.
  MsgIo(UserIovec* const* chunks, u32 count, u64 total);
  MsgIo(const MsgIo&) = delete;

  u64 total() const { return m_total; }
  // Copies n bytes at message offset `at` out of the message into kernel memory (send) or
  // from kernel memory into the message (receive); false on a fault. at + n <= total().
  bool get(void* destination, u64 at, usize n) const;
  bool put(u64 at, const void* source, usize n) const;

 private:
  template <typename F>
  bool walk(u64 at, usize n, F&& f) const;
  const UserIovec& segment(u32 index) const;

  IoBuffer m_single{};
  UserIovec m_single_vec{};
  UserIovec* const* m_chunks = nullptr;
  u32 m_count = 0;
  u64 m_total = 0;
  // Cursor: the segment holding the last offset touched and that segment's start.
  mutable u32 m_cursor_index = 0;
  mutable u64 m_cursor_start = 0;
};

// SCM_MAX_FD: the most descriptors one SCM_RIGHTS message carries.
inline constexpr u32 kMaxRightsPerMessage = 253;

// The ancillary data of a send, decoded by the layer. `files` are the SCM_RIGHTS descriptors'
// files, retained: a family that queues them takes ownership by setting `files` to null
// (take_files()); whatever is still here when send returns is released by the layer. A family
// whose accepts_rights() is false never sees files (the layer answers EINVAL, as Linux's inet
// families do). `raw` is the whole control buffer in kernel memory, for options at other
// levels (IP_TOS, IP_TTL): walk it with for_each_cmsg().
struct SendControl {
  File** files = nullptr;  // heap array of kMaxRightsPerMessage entries, or null
  u32 file_count = 0;
  bool credentials = false;  // SCM_CREDENTIALS was given (checked for size, otherwise ignored)
  const u8* raw = nullptr;
  usize raw_length = 0;

  // Moves the files out (the caller now owns the array and its references; free it with
  // release_rights()); null if none.
  File** take_files(u32* count) {
    File** taken = files;
    *count = file_count;
    files = nullptr;
    file_count = 0;
    return taken;
  }
};

// A rights array: kMaxRightsPerMessage File pointers from the kernel heap (SendControl's files,
// or allocate_rights()). release_rights() releases the first `count` references (null entries
// are skipped) and frees the array (null: nothing).
File** allocate_rights(Kernel& kernel);
void release_rights(Kernel& kernel, File** files, u32 count);

// The ancillary data a receive produces, written out by the layer after the family returns:
// first the `extra` messages in the order added (IP_TOS, IP_TTL...), then SCM_RIGHTS for
// `files`. The family hands over a rights array (the one SendControl::take_files() gave it, or
// one from allocate_rights() holding retained references, for MSG_PEEK) with its count; the
// layer installs what fits in the user's buffer and releases the rest (MSG_CTRUNC), then frees
// the array. For read(2) and recv(2) there is no buffer, so received files are closed, as on
// Linux. Small enough for the stack: the array is only there when descriptors arrived.
struct RecvControl {
  File** files = nullptr;  // a rights array, or null
  u32 file_count = 0;
  static constexpr u32 kExtraMax = 128;
  alignas(8) u8 extra[kExtraMax];  // cmsghdr + data, each CMSG_SPACE-aligned
  u32 extra_length = 0;
  // Appends one control message to `extra`; false when it does not fit (the family's bug).
  bool add(i32 level, i32 type, const void* data, u32 length);
};

// struct cmsghdr on x86-64 and the CMSG_* arithmetic.
struct CmsgHeader {
  u64 len;
  i32 level;
  i32 type;
};
static_assert(sizeof(CmsgHeader) == 16);
inline constexpr u64 cmsg_align(u64 n) { return (n + 7) & ~u64{7}; }
inline constexpr u64 cmsg_len(u64 data) { return sizeof(CmsgHeader) + data; }
inline constexpr u64 cmsg_space(u64 data) { return sizeof(CmsgHeader) + cmsg_align(data); }
// Calls f(level, type, data, length) for each control message of a (kernel) control buffer,
// walking it as Linux's for_each_cmsghdr does; EINVAL for a malformed header (CMSG_OK), or
// f's error.
template <typename F>
Result<void> for_each_cmsg(const u8* buffer, usize length, F&& f) {
  usize at = 0;
  while (at + sizeof(CmsgHeader) <= length) {
    CmsgHeader header;
    copy_bytes(&header, buffer + at, sizeof(header));
    if (header.len < sizeof(CmsgHeader) || header.len > length - at) return Errno::kEINVAL;
    TRY(f(header.level, header.type, buffer + at + sizeof(CmsgHeader), static_cast<usize>(header.len - sizeof(CmsgHeader))));
    at += cmsg_align(header.len);
  }
  return {};
}

// Generic SOL_SOCKET option values, kept by the layer for every socket. A family reads them
// (for instance rcvbuf to size its buffer, linger at close) and may act in
// socket_option_changed().
struct SocketOptions {
  bool reuse_addr = false;
  bool reuse_port = false;
  bool keepalive = false;
  bool broadcast = false;
  bool oob_inline = false;
  bool pass_cred = false;  // accepted and reported; SCM_CREDENTIALS are not generated
  bool linger_on = false;
  i32 linger_seconds = 0;
  i32 priority = 0;
  i32 sndbuf = 212992;  // Linux's defaults (net.core.wmem_default / rmem_default)
  i32 rcvbuf = 212992;
  i32 rcvlowat = 1;
  u64 rcv_timeout_ns = 0;  // 0: none
  u64 snd_timeout_ns = 0;
};

// A socket: an open file whose operations are the family's. Families derive from it.
class Socket : public File {
 public:
  // `flags`: O_NONBLOCK for SOCK_NONBLOCK; the file is always O_RDWR.
  Socket(Kernel& kernel, i32 family, i32 type, i32 protocol, u32 flags);

  // The socket behind an open file, or null (ENOTSOCK for the caller).
  static Socket* from(File& file);

  i32 family() const { return m_family; }
  i32 type() const { return m_type; }
  i32 protocol() const { return m_protocol; }
  SocketOptions& options() { return m_options; }

  // ---- What a family implements. Defaults: Linux's answer for an unsupported operation. ----

  // bind(2). `address` has the length the user gave (at most kSockAddrMax); the family checks
  // that it is long enough and of its family (EINVAL / EAFNOSUPPORT).
  virtual Result<void> bind(const SockAddr& address) { return Errno::kEOPNOTSUPP; }
  // listen(2): `backlog` already clamped to [0, SOMAXCONN=4096] by the layer.
  virtual Result<void> listen(i32 backlog) { return Errno::kEOPNOTSUPP; }
  // accept(2): one pending connection as a new socket (one reference, which the layer installs).
  // `file_flags` is O_NONBLOCK or 0 for the new socket; blocks unless this socket is
  // nonblocking(). Fills `peer` with the peer's address when it is not null.
  virtual Result<Socket*> accept(u32 file_flags, SockAddr* peer) { return Errno::kEOPNOTSUPP; }
  // connect(2). A nonblocking stream connect that cannot finish at once answers EINPROGRESS
  // and later reports its outcome through take_error() and POLLOUT.
  virtual Result<void> connect(const SockAddr& address) { return Errno::kEOPNOTSUPP; }
  // sendmsg(2) and everything that writes: `to` is null unless the user named an address.
  // `flags` carries kDontWait when the call must not block (MSG_DONTWAIT or O_NONBLOCK).
  // Returns the bytes taken (stream sockets may take part of the message).
  virtual Result<usize> send(const MsgIo& data, const SockAddr* to, SendControl& control, u32 flags) = 0;
  // recvmsg(2) and everything that reads. Fills `from` (when not null) with the source address
  // (length 0 when there is none), `control` with received descriptors and other control
  // messages, and `*msg_flags` with MSG_TRUNC / MSG_EOR (the layer adds MSG_CTRUNC). Returns
  // the bytes copied, or for a datagram with MSG_TRUNC in `flags` its real length. Honours
  // kDontWait, kPeek and kWaitAll (stream) in `flags`.
  virtual Result<usize> recv(const MsgIo& data, SockAddr* from, RecvControl& control, u32 flags,
                             u32* msg_flags) = 0;
  // shutdown(2): `how` already checked (SHUT_RD, SHUT_WR or SHUT_RDWR).
  virtual Result<void> shutdown(i32 how) { return Errno::kENOTCONN; }
  // getsockname(2) / getpeername(2) (ENOTCONN when there is no peer).
  virtual Result<void> local_name(SockAddr* out) = 0;
  virtual Result<void> peer_name(SockAddr* out) { return Errno::kENOTCONN; }
  // Options at levels other than SOL_SOCKET, and SOL_SOCKET names the layer does not keep
  // (SO_PEERCRED...). `value` is in kernel memory. set_option gets the user's length (check
  // it: EINVAL when too short). get_option gets the user's length as `capacity` (the layer
  // has checked it is not negative; it may be 0) and returns how many bytes it wrote, at most
  // `capacity`, Linux's rule for truncated option values.
  virtual Result<void> set_option(i32 level, i32 name, const u8* value, u32 length) {
    return Errno::kENOPROTOOPT;
  }
  virtual Result<u32> get_option(i32 level, i32 name, u8* value, u32 capacity) { return Errno::kENOPROTOOPT; }
  // A generic SOL_SOCKET option in options() has just been set.
  virtual void socket_option_changed(i32 name) {}
  // SO_ERROR: the pending error, cleared by reading it (0: none).
  virtual i32 take_error() { return 0; }
  // SO_ACCEPTCONN.
  virtual bool listening() { return false; }
  // Whether sendmsg may carry SCM_RIGHTS (AF_UNIX).
  virtual bool accepts_rights() const { return false; }
  // ioctl(2) on the socket (FIONREAD/SIOCINQ, SIOCOUTQ...): ENOTTY by default.
  virtual Result<i64> socket_ioctl(u64 request, u64 argument) { return Errno::kENOTTY; }
  // Readiness: see the rules at the top. Families must override it.
  u32 poll_events() override = 0;

  // ---- Helpers for families ----

  // Deadlines (monotonic ns, 0 = none) for a blocking receive or send, from SO_RCVTIMEO and
  // SO_SNDTIMEO as they are now.
  u64 receive_deadline() const;
  u64 send_deadline() const;
  // Sleeps on `waiters` until woken or `deadline` (0: none). The caller holds `lock` (taken
  // with interrupts off); it is dropped while asleep and held again on return. Errors: EAGAIN
  // when the deadline passed (SO_RCVTIMEO's answer), ERESTARTSYS on a signal with no deadline
  // (SA_RESTART restarts the call), EINTR on a signal with a deadline (as Linux's
  // sock_intr_errno).
  Result<void> wait_on(SpinLock& lock, IntrusiveList<Thread, &Thread::wait_node>& waiters, u64 deadline);
  void wake_all(IntrusiveList<Thread, &Thread::wait_node>& waiters);
  // Tells poll/select/epoll that this socket's readiness may have changed. No lock held.
  void notify_readiness();

  // ---- File ----
  Result<usize> read(const IoBuffer& out, usize length, u64* offset) override;
  Result<usize> write(const IoBuffer& in, usize length, u64* offset) override;
  Result<i64> ioctl(u64 request, u64 argument) override;
  void stat(KernelStat* st) override;
  bool seekable() const override { return false; }
  bool pollable() override { return true; }
  const void* kind() const final;

  // ---- The layer's entry points (core/syscalls/net.cpp); families do not override these ----

  // Runs a send with decoded arguments: folds O_NONBLOCK into MSG_DONTWAIT, raises SIGPIPE.
  Result<usize> do_send(const MsgIo& data, const SockAddr* to, SendControl& control, u32 flags);
  Result<usize> do_recv(const MsgIo& data, SockAddr* from, RecvControl& control, u32 flags, u32* msg_flags);
  // setsockopt/getsockopt with the value in kernel memory (the layer copies it in and out).
  Result<void> set_socket_option(i32 level, i32 name, const u8* value, u32 length);
  Result<u32> get_socket_option(i32 level, i32 name, u8* value, u32 capacity);

 protected:
  // The inode number fstat reports.
  u64 ino() const { return m_ino; }

 private:
  i32 m_family;
  i32 m_type;
  i32 m_protocol;
  u64 m_ino;
  SocketOptions m_options;  // written by setsockopt; a plain copy race is harmless (ints)
};

// A spin lock held with interrupts saved that can be dropped and retaken around a sleep (for
// wait_on).
struct IrqLockHolder {
  explicit IrqLockHolder(SpinLock& lock) : spin(lock) {
    flags = hal::irq_save();
    spin.acquire();
  }
  ~IrqLockHolder() { unlock(); }
  TANDEM_NONCOPYABLE(IrqLockHolder);
  void unlock() {
    if (!held) return;
    held = false;
    spin.release();
    hal::irq_restore(flags);
  }
  SpinLock& spin;
  hal::IrqFlags flags = 0;
  bool held = true;
};

// readv(2)/writev(2) on a socket: one receive or send over the whole iovec array (count
// already checked against UIO_MAXIOV by the caller), so a datagram stays one message.
// Defined with the system calls in core/syscalls/net.cpp.
Result<i64> socket_vector_io(Socket& socket, u64 iov_address, u64 count, bool write);

// socket(2) after the layer's checks of `type`'s flags: picks the family. `flags` is O_NONBLOCK
// or 0. EAFNOSUPPORT for families tandem lacks (AF_INET until the lwIP family is plugged in:
// see the marked place in socket.cpp), EINVAL for a bad family number.
Result<Socket*> create_socket(Kernel& kernel, i32 family, i32 type, i32 protocol, u32 flags);
// socketpair(2): two connected sockets. EOPNOTSUPP for families without pairs (AF_INET).
Result<void> create_socket_pair(Kernel& kernel, i32 family, i32 type, i32 protocol, u32 flags, Socket** a,
                                Socket** b);

}  // namespace tandem
