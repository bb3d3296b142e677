// Socket system calls: decode and check every argument (socket addresses with Linux's addrlen
// rules, struct msghdr, iovecs, control messages), then call the socket layer (core/net).
// Errors and their order follow Linux 6.1's net/socket.c and net/core/scm.c: the descriptor
// is looked up first (EBADF, ENOTSOCK), then the arguments are copied in.
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/net/socket.h"
#include "core/syscalls/dispatch.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

constexpr i32 kSomaxconn = 4096;
constexpr usize kControlMax = Heap::kMaxObject;  // Linux: optmem_max (20 KiB); ENOBUFS beyond
constexpr u32 kOptionMax = 64;                    // the largest option value copied in or out

struct SocketRef {
  FileRef file;
  Socket* socket;
};

Result<SocketRef> get_socket(i32 fd) {
  FileRef file = TRY(get_file(fd));
  Socket* socket = Socket::from(*file.get());
  if (socket == nullptr) return Errno::kENOTSOCK;
  return SocketRef{move(file), socket};
}

// move_addr_to_kernel: a length above sizeof(sockaddr_storage) or negative is EINVAL.
Result<void> address_from_user(u64 address, u64 length, SockAddr* out) {
  const i32 n = static_cast<i32>(length);
  if (n < 0 || static_cast<u32>(n) > kSockAddrMax) return Errno::kEINVAL;
  out->length = static_cast<u32>(n);
  if (n > 0 && !hal::copy_from_user(out->data, address, static_cast<usize>(n))) return Errno::kEFAULT;
  return {};
}

// move_addr_to_user: copies min(the user's length, the real length), then stores the real
// length; a negative user length is EINVAL.
Result<void> address_to_user(const SockAddr& a, u64 address, u64 length_address) {
  const i32 room = TRY(copy_from_user(UserPtr<i32>(length_address)));
  if (room < 0) return Errno::kEINVAL;
  const u32 n = min(static_cast<u32>(room), a.length);
  if (n > 0 && !hal::copy_to_user(address, a.data, n)) return Errno::kEFAULT;
  TRY(copy_to_user(UserPtr<i32>(length_address), static_cast<i32>(a.length)));
  return {};
}

Result<i64> install_socket(Socket* socket, bool cloexec) {
  FileTable* files = TRY(current_files());
  auto fd = files->install(socket, cloexec);
  if (fd.is_error()) {
    socket->release();
    return fd.error();
  }
  return fd.value();
}

// The SOCK_* flags that ride in socket(2)'s and socketpair(2)'s type.
Result<void> split_type(u64 raw, i32* type, u32* file_flags, bool* cloexec) {
  const i32 t = static_cast<i32>(raw);
  const i32 flags = t & ~socktype::kTypeMask;
  if ((flags & ~(socktype::kNonBlock | socktype::kCloExec)) != 0) return Errno::kEINVAL;
  *type = t & socktype::kTypeMask;
  *file_flags = (flags & socktype::kNonBlock) != 0 ? oflag::kNonBlock : 0;
  *cloexec = (flags & socktype::kCloExec) != 0;
  return {};
}

// ---- iovec arrays and struct msghdr ----

// The iovecs of one call, copied into heap chunks (UIO_MAXIOV of them fit in four).
class IovecArray {
 public:
  explicit IovecArray(Kernel& kernel) : m_kernel(kernel) {}
  ~IovecArray() {
    for (auto* chunk : m_chunks) {
      if (chunk != nullptr) m_kernel.heap().free(chunk, Heap::kMaxObject);
    }
  }
  IovecArray(const IovecArray&) = delete;

  // import_iovec: EFAULT for an unreadable array, EINVAL for a negative length; the total is
  // clamped to MAX_RW_COUNT by shortening the segment that crosses it.
  Result<void> load(u64 address, u64 count) {
    VERIFY(count <= MsgIo::kMaxIov);
    for (u64 i = 0; i < count; ++i) {
      const u32 c = static_cast<u32>(i / MsgIo::kIovPerChunk);
      if (m_chunks[c] == nullptr) {
        m_chunks[c] = static_cast<UserIovec*>(m_kernel.heap().allocate(Heap::kMaxObject));
        if (m_chunks[c] == nullptr) return Errno::kENOMEM;
      }
      UserIovec v = TRY(copy_from_user(UserPtr<UserIovec>(address).offset(i)));
      if (static_cast<i64>(v.length) < 0) return Errno::kEINVAL;
      if (v.length > MsgIo::kMaxTotal - m_total) v.length = MsgIo::kMaxTotal - m_total;
      m_total += v.length;
      m_chunks[c][i % MsgIo::kIovPerChunk] = v;
    }
    m_count = static_cast<u32>(count);
    return {};
  }
  UserIovec* const* chunks() const { return m_chunks; }
  u32 count() const { return m_count; }
  u64 total() const { return m_total; }

 private:
  Kernel& m_kernel;
  UserIovec* m_chunks[MsgIo::kMaxIov / MsgIo::kIovPerChunk] = {};
  u32 m_count = 0;
  u64 m_total = 0;
};

struct UserMsghdr {
  u64 name;
  i32 namelen;
  i32 pad0;
  u64 iov;
  u64 iovlen;
  u64 control;
  u64 controllen;
  i32 flags;
  i32 pad1;
};
static_assert(sizeof(UserMsghdr) == 56);
constexpr u64 kMsghdrNamelen = 8, kMsghdrControllen = 40, kMsghdrFlags = 48;

// __copy_msghdr plus import_iovec: name length clamped to sizeof(sockaddr_storage) (EINVAL when
// negative), EMSGSIZE beyond UIO_MAXIOV iovecs.
Result<void> decode_msghdr(UserMsghdr* m, IovecArray& iov) {
  if (m->name == 0) m->namelen = 0;
  if (m->namelen < 0) return Errno::kEINVAL;
  if (static_cast<u32>(m->namelen) > kSockAddrMax) m->namelen = kSockAddrMax;
  if (m->iovlen > MsgIo::kMaxIov) return Errno::kEMSGSIZE;
  return iov.load(m->iov, m->iovlen);
}

// ---- control messages ----

// Decodes a sendmsg control buffer (Linux's __scm_send): SCM_RIGHTS descriptors become
// retained files (EBADF for a bad one, EINVAL past SCM_MAX_FD in all), SCM_CREDENTIALS must be
// struct ucred sized (and is otherwise ignored), other SOL_SOCKET types are EINVAL; other
// levels are left to the family in `raw`.
class ControlIn {
 public:
  explicit ControlIn(Kernel& kernel) : m_kernel(kernel) {}
  ~ControlIn() {
    u32 count = 0;
    File** files = control.take_files(&count);
    release_rights(m_kernel, files, count);
    if (m_buffer != nullptr) m_kernel.heap().free(m_buffer, m_length);
  }
  ControlIn(const ControlIn&) = delete;

  Result<void> load(Socket& socket, u64 address, u64 length) {
    if (length == 0) return {};
    if (length > 0x7fffffff || length > kControlMax) return Errno::kENOBUFS;
    m_length = static_cast<usize>(length);
    m_buffer = static_cast<u8*>(m_kernel.heap().allocate(m_length));
    if (m_buffer == nullptr) return Errno::kENOBUFS;
    if (!hal::copy_from_user(m_buffer, address, m_length)) return Errno::kEFAULT;
    control.raw = m_buffer;
    control.raw_length = m_length;
    FileTable* table = TRY(current_files());
    return for_each_cmsg(m_buffer, m_length, [&](i32 level, i32 type, const u8* data, usize n) -> Result<void> {
      if (level != sol::kSocket) return {};
      if (type == scm::kCredentials) {
        if (!socket.accepts_rights()) return Errno::kEINVAL;
        if (n != 12) return Errno::kEINVAL;  // struct ucred
        control.credentials = true;
        return {};
      }
      if (type != scm::kRights || !socket.accepts_rights()) return Errno::kEINVAL;
      const usize count = n / sizeof(i32);
      if (count == 0) return {};
      if (control.file_count + count > kMaxRightsPerMessage) return Errno::kEINVAL;
      if (control.files == nullptr) {
        control.files = allocate_rights(m_kernel);
        if (control.files == nullptr) return Errno::kENOMEM;
      }
      for (usize i = 0; i < count; ++i) {
        i32 fd;
        copy_bytes(&fd, data + i * sizeof(i32), sizeof(fd));
        control.files[control.file_count] = TRY(table->get(fd));
        ++control.file_count;
      }
      return {};
    });
  }

  SendControl control;

 private:
  Kernel& m_kernel;
  u8* m_buffer = nullptr;
  usize m_length = 0;
};

// Writes a receive's control messages to the user's buffer as Linux's put_cmsg and
// scm_detach_fds do: a message that does not fit is truncated (MSG_CTRUNC), descriptors that
// do not fit are closed (MSG_CTRUNC), installed ones get close-on-exec with MSG_CMSG_CLOEXEC.
// Returns the length used (the new msg_controllen).
u64 control_to_user(Kernel& kernel, RecvControl& rc, u64 address, u64 length, bool cloexec, u32* msg_flags) {
  u64 at = address;
  u64 left = length;
  auto put = [&](i32 level, i32 type, const u8* data, u64 n) {
    if (at == 0 || left < sizeof(CmsgHeader)) {
      *msg_flags |= msgflag::kCtrunc;
      return;
    }
    u64 len = cmsg_len(n);
    if (left < len) {
      *msg_flags |= msgflag::kCtrunc;
      len = left;
    }
    const CmsgHeader header{len, level, type};
    if (!hal::copy_to_user(at, &header, sizeof(header))) return;
    if (!hal::copy_to_user(at + sizeof(header), data, static_cast<usize>(len - sizeof(header)))) return;
    const u64 used = min(cmsg_space(n), left);
    at += used;
    left -= used;
  };
  (void)for_each_cmsg(rc.extra, rc.extra_length, [&](i32 level, i32 type, const u8* data, usize n) -> Result<void> {
    put(level, type, data, n);
    return {};
  });
  if (rc.file_count > 0) {
    const u64 room = left <= sizeof(CmsgHeader) ? 0 : (left - sizeof(CmsgHeader)) / sizeof(i32);
    const u32 fit = static_cast<u32>(min<u64>(room, rc.file_count));
    u32 installed = 0;
    auto table = current_files();
    for (; installed < fit && table.ok(); ++installed) {
      File* file = rc.files[installed];
      auto fd = table.value()->install(file, cloexec);
      if (fd.is_error()) break;
      rc.files[installed] = nullptr;  // the descriptor holds it now
      const i32 number = fd.value();
      if (!hal::copy_to_user(at + sizeof(CmsgHeader) + installed * sizeof(i32), &number, sizeof(number))) {
        (void)table.value()->close(number);
        break;
      }
    }
    if (installed > 0) {
      const CmsgHeader header{cmsg_len(installed * sizeof(i32)), sol::kSocket, scm::kRights};
      if (hal::copy_to_user(at, &header, sizeof(header))) {
        const u64 used = min(cmsg_space(installed * sizeof(i32)), left);
        at += used;
        left -= used;
      }
    }
    if (installed < rc.file_count) *msg_flags |= msgflag::kCtrunc;
  }
  release_rights(kernel, rc.files, rc.file_count);  // what was not installed (installed: null)
  rc.files = nullptr;
  rc.file_count = 0;
  return length - left;
}

// A receive's control data on the stack; descriptors nobody took (recv, read, an error after
// the family returned) are closed when it goes.
class RecvControlBox {
 public:
  explicit RecvControlBox(Kernel& kernel) : m_kernel(kernel) {}
  ~RecvControlBox() { release_rights(m_kernel, m_control.files, m_control.file_count); }
  RecvControlBox(const RecvControlBox&) = delete;
  RecvControl* get() { return &m_control; }

 private:
  Kernel& m_kernel;
  RecvControl m_control;
};

// ---- send and receive ----

Result<i64> do_sendmsg(Kernel& kernel, i32 fd, u64 msg_address, u32 flags) {
  SocketRef s = TRY(get_socket(fd));
  UserMsghdr m = TRY(copy_from_user(UserPtr<UserMsghdr>(msg_address)));
  SockAddr to;
  if (m.name == 0) m.namelen = 0;
  if (m.namelen < 0) return Errno::kEINVAL;
  if (static_cast<u32>(m.namelen) > kSockAddrMax) m.namelen = kSockAddrMax;
  if (m.namelen > 0) TRY(address_from_user(m.name, static_cast<u64>(m.namelen), &to));
  if (m.iovlen > MsgIo::kMaxIov) return Errno::kEMSGSIZE;
  IovecArray iov(kernel);
  TRY(iov.load(m.iov, m.iovlen));
  ControlIn control(kernel);
  TRY(control.load(*s.socket, m.control, m.controllen));
  MsgIo data(iov.chunks(), iov.count(), iov.total());
  const usize sent = TRY(s.socket->do_send(data, m.namelen > 0 ? &to : nullptr, control.control, flags));
  return static_cast<i64>(sent);
}

Result<i64> do_recvmsg(Kernel& kernel, i32 fd, u64 msg_address, u32 flags) {
  SocketRef s = TRY(get_socket(fd));
  UserMsghdr m = TRY(copy_from_user(UserPtr<UserMsghdr>(msg_address)));
  IovecArray iov(kernel);
  TRY(decode_msghdr(&m, iov));
  RecvControlBox box(kernel);
  MsgIo data(iov.chunks(), iov.count(), iov.total());
  SockAddr from;
  u32 msg_flags = flags & msgflag::kCmsgCloExec;
  const usize got = TRY(s.socket->do_recv(data, &from, *box.get(), flags & ~msgflag::kCmsgCloExec, &msg_flags));
  const u64 used = control_to_user(kernel, *box.get(), m.control, m.controllen,
                                   (flags & msgflag::kCmsgCloExec) != 0, &msg_flags);
  if (m.name != 0) TRY(address_to_user(from, m.name, msg_address + kMsghdrNamelen));
  TRY(copy_to_user(UserPtr<i32>(msg_address + kMsghdrFlags), static_cast<i32>(msg_flags)));
  TRY(copy_to_user(UserPtr<u64>(msg_address + kMsghdrControllen), used));
  return static_cast<i64>(got);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The system calls
// ---------------------------------------------------------------------------------------------

Result<i64> sys_socket(SyscallArgs& args) {
  i32 type;
  u32 file_flags;
  bool cloexec;
  TRY(split_type(args.arg[1], &type, &file_flags, &cloexec));
  Socket* socket = TRY(create_socket(args.kernel, static_cast<i32>(args.arg[0]), type,
                                     static_cast<i32>(args.arg[2]), file_flags));
  return install_socket(socket, cloexec);
}

Result<i64> sys_socketpair(SyscallArgs& args) {
  i32 type;
  u32 file_flags;
  bool cloexec;
  TRY(split_type(args.arg[1], &type, &file_flags, &cloexec));
  Socket* a = nullptr;
  Socket* b = nullptr;
  TRY(create_socket_pair(args.kernel, static_cast<i32>(args.arg[0]), type, static_cast<i32>(args.arg[2]),
                         file_flags, &a, &b));
  return install_pair(a, b, cloexec, args.arg[3]);
}

Result<i64> sys_bind(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  SockAddr address;
  TRY(address_from_user(args.arg[1], args.arg[2], &address));
  TRY(s.socket->bind(address));
  return 0;
}

Result<i64> sys_listen(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  u32 backlog = static_cast<u32>(args.arg[1]);
  if (backlog > static_cast<u32>(kSomaxconn)) backlog = kSomaxconn;  // negative too, as Linux
  TRY(s.socket->listen(static_cast<i32>(backlog)));
  return 0;
}

namespace {

Result<i64> do_accept(SyscallArgs& args, u32 flags) {
  if ((flags & ~static_cast<u32>(socktype::kNonBlock | socktype::kCloExec)) != 0) return Errno::kEINVAL;
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  SockAddr peer;
  const u32 file_flags = (flags & socktype::kNonBlock) != 0 ? oflag::kNonBlock : 0;
  Socket* accepted = TRY(s.socket->accept(file_flags, args.arg[1] != 0 ? &peer : nullptr));
  if (args.arg[1] != 0) {
    auto copied = address_to_user(peer, args.arg[1], args.arg[2]);
    if (copied.is_error()) {
      // Linux drops the accepted connection when the address cannot be stored.
      accepted->release();
      return copied.error();
    }
  }
  return install_socket(accepted, (flags & socktype::kCloExec) != 0);
}

}  // namespace

Result<i64> sys_accept(SyscallArgs& args) { return do_accept(args, 0); }
Result<i64> sys_accept4(SyscallArgs& args) { return do_accept(args, static_cast<u32>(args.arg[3])); }

Result<i64> sys_connect(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  SockAddr address;
  TRY(address_from_user(args.arg[1], args.arg[2], &address));
  TRY(s.socket->connect(address));
  return 0;
}

Result<i64> sys_sendto(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  SockAddr to;
  const bool named = args.arg[4] != 0 && static_cast<i32>(args.arg[5]) != 0;
  if (args.arg[4] != 0) TRY(address_from_user(args.arg[4], args.arg[5], &to));
  MsgIo data(IoBuffer::from_user(args.arg[1]), args.arg[2]);
  SendControl control;
  const usize sent = TRY(s.socket->do_send(data, named ? &to : nullptr, control, static_cast<u32>(args.arg[3])));
  return static_cast<i64>(sent);
}

Result<i64> sys_recvfrom(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  RecvControlBox box(args.kernel);
  MsgIo data(IoBuffer::from_user(args.arg[1]), args.arg[2]);
  SockAddr from;
  u32 msg_flags = 0;
  const u32 flags = static_cast<u32>(args.arg[3]) & ~msgflag::kCmsgCloExec;
  const usize got = TRY(s.socket->do_recv(data, &from, *box.get(), flags, &msg_flags));
  // recv has no control buffer: received descriptors are closed (box), as on Linux.
  if (args.arg[4] != 0) TRY(address_to_user(from, args.arg[4], args.arg[5]));
  return static_cast<i64>(got);
}

Result<i64> sys_sendmsg(SyscallArgs& args) {
  return do_sendmsg(args.kernel, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<u32>(args.arg[2]));
}

Result<i64> sys_recvmsg(SyscallArgs& args) {
  return do_recvmsg(args.kernel, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<u32>(args.arg[2]));
}

Result<i64> sys_shutdown(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  const i32 how = static_cast<i32>(args.arg[1]);
  if (how < shut::kRd || how > shut::kRdWr) return Errno::kEINVAL;
  TRY(s.socket->shutdown(how));
  return 0;
}

Result<i64> sys_getsockname(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  SockAddr name;
  TRY(s.socket->local_name(&name));
  TRY(address_to_user(name, args.arg[1], args.arg[2]));
  return 0;
}

Result<i64> sys_getpeername(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  SockAddr name;
  TRY(s.socket->peer_name(&name));
  TRY(address_to_user(name, args.arg[1], args.arg[2]));
  return 0;
}

Result<i64> sys_setsockopt(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  const i32 length = static_cast<i32>(args.arg[4]);
  if (length < 0) return Errno::kEINVAL;
  u8 value[kOptionMax] = {};
  const u32 n = min(static_cast<u32>(length), kOptionMax);
  if (n > 0 && !hal::copy_from_user(value, args.arg[3], n)) return Errno::kEFAULT;
  TRY(s.socket->set_socket_option(static_cast<i32>(args.arg[1]), static_cast<i32>(args.arg[2]), value,
                                  static_cast<u32>(length)));
  return 0;
}

Result<i64> sys_getsockopt(SyscallArgs& args) {
  SocketRef s = TRY(get_socket(static_cast<i32>(args.arg[0])));
  const i32 length = TRY(copy_from_user(UserPtr<i32>(args.arg[4])));
  if (length < 0) return Errno::kEINVAL;
  u8 value[kOptionMax] = {};
  const u32 room = min(static_cast<u32>(length), kOptionMax);
  const u32 n = TRY(s.socket->get_socket_option(static_cast<i32>(args.arg[1]), static_cast<i32>(args.arg[2]), value,
                                                room));
  if (n > 0 && !hal::copy_to_user(args.arg[3], value, n)) return Errno::kEFAULT;
  TRY(copy_to_user(UserPtr<i32>(args.arg[4]), static_cast<i32>(n)));
  return 0;
}

// readv/writev on a socket (core/syscalls/fs.cpp hands them here): one send or receive over the
// whole iovec array, so a datagram is one message, as on Linux.
Result<i64> socket_vector_io(Socket& socket, u64 iov_address, u64 count, bool write) {
  Kernel& kernel = socket.kernel();
  IovecArray iov(kernel);
  TRY(iov.load(iov_address, count));
  MsgIo data(iov.chunks(), iov.count(), iov.total());
  if (write) {
    SendControl control;
    return static_cast<i64>(TRY(socket.do_send(data, nullptr, control, 0)));
  }
  RecvControlBox box(kernel);
  u32 msg_flags = 0;
  return static_cast<i64>(TRY(socket.do_recv(data, nullptr, *box.get(), 0, &msg_flags)));
}

}  // namespace tandem
