// The family-independent part of sockets: MsgIo, control-message building, generic options,
// blocking helpers, the File side of a socket, and the family switch. See socket.h.
#include "core/net/socket.h"

#include "core/kernel.h"
#include "core/net/inet.h"
#include "core/net/unix.h"
#include "core/proc/signals.h"

namespace tandem {

// ---------------------------------------------------------------------------------------------
// MsgIo
// ---------------------------------------------------------------------------------------------

MsgIo::MsgIo(const IoBuffer& buffer, u64 length) : m_single(buffer), m_count(1), m_total(min(length, kMaxTotal)) {
  m_single_vec = UserIovec{0, m_total};
}

MsgIo::MsgIo(UserIovec* const* chunks, u32 count, u64 total) : m_chunks(chunks), m_count(count), m_total(total) {
  VERIFY(count <= kMaxIov && total <= kMaxTotal);
}

const UserIovec& MsgIo::segment(u32 index) const {
  if (m_chunks == nullptr) return m_single_vec;
  return m_chunks[index / kIovPerChunk][index % kIovPerChunk];
}

// Calls f(segment index, offset within the segment, offset within the copy, n) for each piece
// of the byte range [at, at + n).
template <typename F>
bool MsgIo::walk(u64 at, usize n, F&& f) const {
  if (at > m_total || n > m_total - at) return false;
  if (at < m_cursor_start) {
    m_cursor_index = 0;
    m_cursor_start = 0;
  }
  u32 index = m_cursor_index;
  u64 start = m_cursor_start;
  usize done = 0;
  while (done < n) {
    if (index >= m_count) return false;
    const u64 length = segment(index).length;
    const u64 position = at + done;
    if (position >= start + length) {
      start += length;
      ++index;
      continue;
    }
    m_cursor_index = index;
    m_cursor_start = start;
    const u64 within = position - start;
    const usize piece = static_cast<usize>(min<u64>(n - done, length - within));
    if (!f(index, within, done, piece)) return false;
    done += piece;
  }
  return true;
}

bool MsgIo::get(void* destination, u64 at, usize n) const {
  auto* out = static_cast<u8*>(destination);
  return walk(at, n, [&](u32 index, u64 within, usize done, usize piece) {
    if (m_chunks == nullptr) return m_single.get(out + done, within, piece);
    return hal::copy_from_user(out + done, segment(index).base + within, piece);
  });
}

bool MsgIo::put(u64 at, const void* source, usize n) const {
  const auto* in = static_cast<const u8*>(source);
  return walk(at, n, [&](u32 index, u64 within, usize done, usize piece) {
    if (m_chunks == nullptr) return m_single.put(within, in + done, piece);
    return hal::copy_to_user(segment(index).base + within, in + done, piece);
  });
}

// ---------------------------------------------------------------------------------------------
// Control messages
// ---------------------------------------------------------------------------------------------

File** allocate_rights(Kernel& kernel) {
  return static_cast<File**>(kernel.heap().allocate(sizeof(File*) * kMaxRightsPerMessage));
}

void release_rights(Kernel& kernel, File** files, u32 count) {
  if (files == nullptr) return;
  for (u32 i = 0; i < count; ++i) {
    if (files[i] != nullptr) files[i]->release();
  }
  kernel.heap().free(files, sizeof(File*) * kMaxRightsPerMessage);
}

bool RecvControl::add(i32 level, i32 type, const void* data, u32 length) {
  const u64 space = cmsg_space(length);
  if (extra_length + space > kExtraMax) return false;
  CmsgHeader header{cmsg_len(length), level, type};
  fill_bytes(extra + extra_length, 0, static_cast<usize>(space));
  copy_bytes(extra + extra_length, &header, sizeof(header));
  copy_bytes(extra + extra_length + sizeof(header), data, length);
  extra_length += static_cast<u32>(space);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Socket
// ---------------------------------------------------------------------------------------------

namespace {

const char kSocketKind = 0;
Atomic<u64> g_socket_ino{0x50000};
constexpr u64 kNsPerSecond = 1'000'000'000;

// Linux's limits for SO_SNDBUF / SO_RCVBUF (net.core.wmem_max, rmem_max; SOCK_MIN_*).
constexpr i32 kBufMax = 212992, kMinSndBuf = 4608, kMinRcvBuf = 2304;

struct KernelLinger {
  i32 onoff;
  i32 seconds;
};
struct OptTimeval {
  i64 sec;
  i64 usec;
};

u64 deadline_after(u64 timeout_ns) { return timeout_ns == 0 ? 0 : hal::monotonic_ns() + timeout_ns; }

}  // namespace

Socket::Socket(Kernel& kernel, i32 family, i32 type, i32 protocol, u32 flags)
    : File(kernel, nullptr, oflag::kRdWr | (flags & oflag::kNonBlock)), m_family(family), m_type(type),
      m_protocol(protocol), m_ino(g_socket_ino.fetch_add(1)) {}

Socket* Socket::from(File& file) {
  return file.kind() == &kSocketKind ? static_cast<Socket*>(&file) : nullptr;
}

const void* Socket::kind() const { return &kSocketKind; }

u64 Socket::receive_deadline() const { return deadline_after(m_options.rcv_timeout_ns); }
u64 Socket::send_deadline() const { return deadline_after(m_options.snd_timeout_ns); }

Result<void> Socket::wait_on(SpinLock& lock, IntrusiveList<Thread, &Thread::wait_node>& waiters, u64 deadline) {
  Thread* self = Kernel::current_thread();
  const Errno interrupted = deadline == 0 ? Errno::kERESTARTSYS : Errno::kEINTR;
  if (signal_pending(self)) return interrupted;
  if (deadline != 0 && hal::monotonic_ns() >= deadline) return Errno::kEAGAIN;
  m_kernel.prepare_to_sleep();
  waiters.push_back(self);
  // A signal sent before we were queued found nothing to wake: cancel the sleep ourselves.
  if (signal_pending(self)) m_kernel.wake(self, kWakeKill);
  lock.release();
  if (deadline != 0) m_kernel.arm_timer(deadline);
  m_kernel.block();
  m_kernel.cancel_timer(self);
  lock.acquire();
  if (self->wait_node.linked()) waiters.remove(self);
  if (signal_pending(self)) return interrupted;
  // A timeout is reported only once the caller has looked at its condition again: the loop
  // in the family re-checks it and calls wait_on, which answers EAGAIN past the deadline.
  return {};
}

void Socket::wake_all(IntrusiveList<Thread, &Thread::wait_node>& waiters) {
  while (Thread* t = waiters.pop_front()) m_kernel.wake(t, kWakeNormal);
}

void Socket::notify_readiness() {
  Vfs* vfs = m_kernel.vfs.load();
  if (vfs != nullptr) vfs->notify_readiness();
}

Result<usize> Socket::read(const IoBuffer& out, usize length, u64*) {
  MsgIo data(out, length);
  RecvControl control;
  u32 msg_flags = 0;
  auto got = do_recv(data, nullptr, control, 0, &msg_flags);
  // read(2) has no control buffer: descriptors that arrived are closed, as on Linux.
  release_rights(m_kernel, control.files, control.file_count);
  return got;
}

Result<usize> Socket::write(const IoBuffer& in, usize length, u64*) {
  MsgIo data(in, length);
  SendControl control;
  return do_send(data, nullptr, control, 0);
}

Result<i64> Socket::ioctl(u64 request, u64 argument) { return socket_ioctl(request, argument); }

void Socket::stat(KernelStat* st) {
  fill_bytes(st, 0, sizeof(*st));
  st->st_dev = 0x8;  // Linux's sockfs is an anonymous device
  st->st_ino = m_ino;
  st->st_nlink = 1;
  st->st_mode = kIfSock | 0777;
  st->st_blksize = 4096;
}

Result<usize> Socket::do_send(const MsgIo& data, const SockAddr* to, SendControl& control, u32 flags) {
  if (nonblocking()) flags |= msgflag::kDontWait;
  auto sent = send(data, to, control, flags);
  u32 count = 0;
  File** left = control.take_files(&count);
  release_rights(m_kernel, left, count);
  // Linux raises SIGPIPE for stream sockets only (tcp_sendmsg, unix_stream_sendmsg); a
  // datagram or seqpacket send just answers EPIPE.
  if (sent.is_error() && sent.error() == Errno::kEPIPE && (flags & msgflag::kNoSignal) == 0 &&
      m_type == socktype::kStream)
    deliver_sigpipe();
  return sent;
}

Result<usize> Socket::do_recv(const MsgIo& data, SockAddr* from, RecvControl& control, u32 flags, u32* msg_flags) {
  if (nonblocking()) flags |= msgflag::kDontWait;
  return recv(data, from, control, flags, msg_flags);
}

Result<void> Socket::set_socket_option(i32 level, i32 name, const u8* value, u32 length) {
  if (level != sol::kSocket) return set_option(level, name, value, length);
  auto int_value = [&]() -> Result<i32> {
    if (length < sizeof(i32)) return Errno::kEINVAL;
    i32 v;
    copy_bytes(&v, value, sizeof(v));
    return v;
  };
  auto timeout = [&](u64* out) -> Result<void> {
    if (length < sizeof(OptTimeval)) return Errno::kEINVAL;
    OptTimeval tv;
    copy_bytes(&tv, value, sizeof(tv));
    if (tv.usec < 0 || tv.usec >= 1'000'000) return Errno::kEDOM;
    if (tv.sec < 0) {
      *out = 1;  // Linux: a negative time means "time out at once"
      return {};
    }
    *out = static_cast<u64>(tv.sec) * kNsPerSecond + static_cast<u64>(tv.usec) * 1000;
    return {};
  };
  SocketOptions& o = m_options;
  switch (name) {
    case so::kReuseAddr: o.reuse_addr = TRY(int_value()) != 0; break;
    case so::kReusePort: o.reuse_port = TRY(int_value()) != 0; break;
    case so::kKeepAlive: o.keepalive = TRY(int_value()) != 0; break;
    case so::kBroadcast: o.broadcast = TRY(int_value()) != 0; break;
    case so::kOobInline: o.oob_inline = TRY(int_value()) != 0; break;
    case so::kPassCred: o.pass_cred = TRY(int_value()) != 0; break;
    case so::kDebug:
    case so::kDontRoute:
    case so::kNoCheck:
    case so::kBsdCompat: (void)TRY(int_value()); break;
    case so::kPriority: {
      const i32 v = TRY(int_value());
      // Linux: 0..6 for everyone, anything with CAP_NET_ADMIN (tandem's users are root).
      o.priority = v;
      break;
    }
    case so::kSndBuf:
    case so::kSndBufForce: {
      const u32 v = static_cast<u32>(TRY(int_value()));
      const i32 clamped = static_cast<i32>(min<u32>(v, kBufMax));
      o.sndbuf = max(clamped * 2, kMinSndBuf);
      break;
    }
    case so::kRcvBuf:
    case so::kRcvBufForce: {
      const u32 v = static_cast<u32>(TRY(int_value()));
      const i32 clamped = static_cast<i32>(min<u32>(v, kBufMax));
      o.rcvbuf = max(clamped * 2, kMinRcvBuf);
      break;
    }
    case so::kRcvLowat: {
      const i32 v = TRY(int_value());
      o.rcvlowat = v < 1 ? 1 : v;
      break;
    }
    case so::kSndLowat: (void)TRY(int_value()); return Errno::kENOPROTOOPT;
    case so::kLinger: {
      if (length < sizeof(KernelLinger)) return Errno::kEINVAL;
      KernelLinger l;
      copy_bytes(&l, value, sizeof(l));
      o.linger_on = l.onoff != 0;
      o.linger_seconds = l.seconds < 0 ? 0 : l.seconds;
      break;
    }
    case so::kRcvTimeoOld: TRY(timeout(&o.rcv_timeout_ns)); break;
    case so::kSndTimeoOld: TRY(timeout(&o.snd_timeout_ns)); break;
    case so::kType:
    case so::kError:
    case so::kAcceptConn:
    case so::kProtocol:
    case so::kDomain:
    case so::kPeerCred:
      if (length < sizeof(i32)) return Errno::kEINVAL;
      return Errno::kENOPROTOOPT;
    default:
      if (length < sizeof(i32)) return Errno::kEINVAL;
      return set_option(level, name, value, length);
  }
  socket_option_changed(name);
  return {};
}

Result<u32> Socket::get_socket_option(i32 level, i32 name, u8* value, u32 capacity) {
  if (level != sol::kSocket) return get_option(level, name, value, capacity);
  auto put = [&](const void* v, u32 n) -> Result<u32> {
    const u32 written = min(n, capacity);
    copy_bytes(value, v, written);
    return written;
  };
  auto put_int = [&](i32 v) { return put(&v, sizeof(v)); };
  auto put_timeout = [&](u64 ns) {
    OptTimeval tv{static_cast<i64>(ns / kNsPerSecond), static_cast<i64>((ns % kNsPerSecond) / 1000)};
    return put(&tv, sizeof(tv));
  };
  const SocketOptions& o = m_options;
  switch (name) {
    case so::kType: return put_int(m_type);
    case so::kDomain: return put_int(m_family);
    case so::kProtocol: return put_int(m_protocol);
    case so::kError: return put_int(take_error());
    case so::kAcceptConn: return put_int(listening() ? 1 : 0);
    case so::kReuseAddr: return put_int(o.reuse_addr);
    case so::kReusePort: return put_int(o.reuse_port);
    case so::kKeepAlive: return put_int(o.keepalive);
    case so::kBroadcast: return put_int(o.broadcast);
    case so::kOobInline: return put_int(o.oob_inline);
    case so::kPassCred: return put_int(o.pass_cred);
    case so::kDebug:
    case so::kDontRoute:
    case so::kNoCheck: return put_int(0);
    case so::kBsdCompat: return put_int(0);
    case so::kPriority: return put_int(o.priority);
    case so::kSndBuf: return put_int(o.sndbuf);
    case so::kRcvBuf: return put_int(o.rcvbuf);
    case so::kRcvLowat: return put_int(o.rcvlowat);
    case so::kSndLowat: return put_int(1);
    case so::kLinger: {
      KernelLinger l{o.linger_on ? 1 : 0, o.linger_seconds};
      return put(&l, sizeof(l));
    }
    case so::kRcvTimeoOld: return put_timeout(o.rcv_timeout_ns);
    case so::kSndTimeoOld: return put_timeout(o.snd_timeout_ns);
    default: return get_option(level, name, value, capacity);
  }
}

// ---------------------------------------------------------------------------------------------
// The family switch
// ---------------------------------------------------------------------------------------------

Result<Socket*> create_socket(Kernel& kernel, i32 family, i32 type, i32 protocol, u32 flags) {
  if (family < 0 || family >= af::kMax) return Errno::kEAFNOSUPPORT;
  if (type < 0 || type > socktype::kPacket) return Errno::kEINVAL;
  switch (family) {
    case af::kUnix: return unix_create(kernel, type, protocol, flags);
    case af::kInet: return inet_create(kernel, type, protocol, flags);
    default: return Errno::kEAFNOSUPPORT;
  }
}

Result<void> create_socket_pair(Kernel& kernel, i32 family, i32 type, i32 protocol, u32 flags, Socket** a,
                                Socket** b) {
  if (family < 0 || family >= af::kMax) return Errno::kEAFNOSUPPORT;
  if (type < 0 || type > socktype::kPacket) return Errno::kEINVAL;
  switch (family) {
    case af::kUnix: return unix_create_pair(kernel, type, protocol, flags, a, b);
    // AF_INET has no pairs on Linux either (its socketpair is sock_no_socketpair).
    case af::kInet: return Errno::kEOPNOTSUPP;
    default: return Errno::kEAFNOSUPPORT;
  }
}

}  // namespace tandem
