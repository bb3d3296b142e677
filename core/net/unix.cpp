// AF_UNIX sockets (unix(7)), after Linux 6.1's net/unix/af_unix.c semantics.
//
// Implemented: SOCK_STREAM, SOCK_SEQPACKET and SOCK_DGRAM (SOCK_RAW is SOCK_DGRAM); socketpair;
// bind to a path (creates a socket vnode; EADDRINUSE when the name exists), to an abstract name
// (sun_path[0] == 0) or automatically (addrlen == sizeof(sa_family_t)); listen with a backlog,
// connect (blocking, or EAGAIN when the backlog is full and the socket is nonblocking), accept;
// unconnected datagrams through sendto to a bound name; shutdown; SO_PEERCRED; FIONREAD
// (SIOCINQ) and SIOCOUTQ; SCM_RIGHTS both ways with Linux's rules: the files travel attached to
// the first byte of the write that sent them, a stream read stops after the chunk that carried
// them, MSG_PEEK duplicates them, read() and recv() close them.
//
// Differences from Linux, on purpose or for now:
//   - Linux lets SCM_RIGHTS build reference cycles (a socket's own descriptor in flight towards
//     itself, or two sockets each carrying the other) and collects them with a garbage
//     collector. tandem refuses a send that would close such a cycle with ETOOMANYREFS (the
//     errno Linux uses for too many descriptors in flight), so a closed socket never stays
//     alive only through its own queue and the leak check stays exact.
//   - SCM_CREDENTIALS is accepted on send (size checked) and otherwise ignored; SO_PASSCRED
//     produces no credentials on receive.
//   - MSG_OOB answers EOPNOTSUPP (Linux 5.15+ has one byte of out-of-band data on streams).
//   - The send buffer is counted in heap bytes of the receiver's queue, charged to the sender's
//     SO_SNDBUF (Linux charges skb sizes); net.unix.max_dgram_qlen is not enforced.
//   - accept installs the descriptor after the connection is taken: EMFILE then loses the
//     connection (Linux reserves the descriptor first).
#include "core/net/unix.h"

#include "core/kernel.h"
#include "core/proc/signals.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

constexpr u32 kRcvShutdown = 1, kSendShutdown = 2, kShutdownMask = 3;
constexpr u32 kSunPathOffset = 2;  // offsetof(struct sockaddr_un, sun_path)
constexpr u32 kSockAddrUnSize = 110;
constexpr u64 kSiocinq = 0x541b, kSiocoutq = 0x5411;

enum class UnixState : u8 { Unconnected, Listening, Connected };

using WaitList = IntrusiveList<Thread, &Thread::wait_node>;

struct Endpoint;

// A piece of queued data. Stream writes fill chunks and append to the last one when it carries
// no descriptors; a datagram is one or more chunks, the last marked record_end.
struct Chunk {
  ListNode node;
  u32 alloc;      // bytes of the heap object (what the queue is charged)
  u32 capacity;   // data bytes it holds
  u32 length;     // data bytes written
  u32 consumed;   // data bytes already read (streams)
  bool record_end;
  File** files;   // SCM_RIGHTS array (release_rights), or null
  u32 file_count;
  Endpoint* sender;  // datagrams: who sent it (retained), for the source address
  u8* data() { return reinterpret_cast<u8*>(this + 1); }
};
static_assert(sizeof(Chunk) % 8 == 0);

// One side of a connection, and what outlives the socket file while the peer still points at
// it. Reference counted: its socket holds one, its peer one, a listener one per pending
// connection, a queued datagram one for its sender.
struct Endpoint {
  Endpoint(Kernel& k, i32 t) : kernel(k), type(t) {}
  TANDEM_NONCOPYABLE(Endpoint);

  Kernel& kernel;
  const i32 type;
  Atomic<u32> refs{1};
  SpinLock lock{LockRank::Wait};
  // Guarded by lock:
  IntrusiveList<Chunk, &Chunk::node> queue;  // what this endpoint's socket reads
  u32 shutdown = 0;
  i32 error = 0;          // pending error (ECONNRESET), reported once
  bool dead = false;      // its socket is closed: nobody reads the queue any more
  UnixState state = UnixState::Unconnected;
  Endpoint* peer = nullptr;  // retained
  WaitList readers;  // waiting for data (or, listening, for a connection)
  WaitList writers;  // senders waiting for room in queue (or, listening, for backlog room)
  // Readers wake the writers once the queue has drained to this many bytes (half the largest
  // sleeping writer's SO_SNDBUF, as Linux's sock_def_write_space), not at every read: a writer
  // woken for every chunk would sleep again at once.
  u64 writer_wake_at = 0;
  ListNode pending_node;
  IntrusiveList<Endpoint, &Endpoint::pending_node> pending;  // listening: connections to accept
  u32 backlog = 0;
  // Readable without the lock:
  Atomic<u64> queued{0};           // heap bytes in queue (written under lock)
  Atomic<SockAddr*> name{nullptr};  // bound address, set once (bind or autobind)
  Atomic<u32> creator_pid{0};      // SO_PEERCRED of whoever connects to it
  // Guarded by the domain's rights_lock: the cycle walk's mark.
  u64 visited = 0;
};


}  // namespace

// A bound name (the list in Kernel::unix_domain).
struct UnixBinding {
  UnixBinding* next;
  Endpoint* endpoint;  // not retained: the binding goes when the socket closes
  Vnode* vnode;        // a path name's socket vnode (retained), or null for an abstract name
  i32 type;
  u32 length;          // abstract: bytes of name
  u8 name[kSockAddrUnSize];
};


namespace {

void ep_retain(Endpoint* e) { e->refs.fetch_add(1); }
void ep_release(Endpoint* e);

void free_chunk(Kernel& kernel, Chunk* c) {
  release_rights(kernel, c->files, c->file_count);
  if (c->sender != nullptr) ep_release(c->sender);
  kernel.heap().free(c, c->alloc);
}

// Takes the whole queue out (under the lock); the caller frees it with no lock held, since
// releasing queued files may close other sockets.
void take_queue(Endpoint* e, IntrusiveList<Chunk, &Chunk::node>* out) {
  while (Chunk* c = e->queue.pop_front()) out->push_back(c);
  e->queued.store(0);
}

void free_queue(Kernel& kernel, IntrusiveList<Chunk, &Chunk::node>* list) {
  while (Chunk* c = list->pop_front()) free_chunk(kernel, c);
}

void ep_release(Endpoint* e) {
  if (e->refs.fetch_sub(1) != 1) return;
  Kernel& kernel = e->kernel;
  IntrusiveList<Chunk, &Chunk::node> left;
  take_queue(e, &left);
  free_queue(kernel, &left);
  VERIFY(e->pending.empty() && e->peer == nullptr);
  SockAddr* name = e->name.load();
  if (name != nullptr) kernel.heap().destroy(name);
  kernel.heap().destroy(e);
}

Chunk* allocate_chunk(Kernel& kernel, usize want) {
  usize size = 64;
  while (size < sizeof(Chunk) + want && size < Heap::kMaxObject) size *= 2;
  auto* c = static_cast<Chunk*>(kernel.heap().allocate(size));
  if (c == nullptr) return nullptr;
  c->node = ListNode{};
  c->alloc = static_cast<u32>(size);
  c->capacity = static_cast<u32>(size - sizeof(Chunk));
  c->length = 0;
  c->consumed = 0;
  c->record_end = false;
  c->files = nullptr;
  c->file_count = 0;
  c->sender = nullptr;
  return c;
}

u32 current_pid() {
  Thread* self = Kernel::current_thread();
  return self != nullptr && self->process != nullptr ? self->process->pid : 0;
}

class UnixSocket;

// ---------------------------------------------------------------------------------------------
// The SCM_RIGHTS cycle check
// ---------------------------------------------------------------------------------------------

Endpoint* endpoint_of(File* file);

// Whether `target` is reachable from `start` through queued descriptors (and a listener's
// pending connections): queuing a file of `start` in `target` would then close a cycle.
// Runs under the domain's rights_lock, which every send carrying a unix socket holds from this
// check to its enqueue, so no other cycle can be made meanwhile (receives only remove edges).
bool reaches(Kernel& kernel, Endpoint* start, Endpoint* target) {
  UnixDomain& domain = kernel.unix_domain;
  const u64 epoch = ++domain.walk_epoch;
  constexpr u32 kStackMax = Heap::kMaxObject / sizeof(Endpoint*);
  auto** stack = static_cast<Endpoint**>(kernel.heap().allocate(Heap::kMaxObject));
  if (stack == nullptr) return true;  // be safe: refuse
  u32 depth = 0;
  bool found = false;
  bool overflow = false;
  ep_retain(start);
  stack[depth++] = start;
  start->visited = epoch;
  while (depth > 0) {
    Endpoint* e = stack[--depth];
    if (e == target) found = true;
    if (!found && !overflow) {
      IrqLockHolder held(e->lock);
      auto visit = [&](Endpoint* next) {
        if (next == nullptr || next->visited == epoch) return;
        if (depth >= kStackMax) {
          overflow = true;
          return;
        }
        next->visited = epoch;
        ep_retain(next);
        stack[depth++] = next;
      };
      e->queue.for_each([&](Chunk* c) {
        for (u32 i = 0; i < c->file_count; ++i) visit(endpoint_of(c->files[i]));
      });
      e->pending.for_each([&](Endpoint* p) { visit(p); });
    }
    ep_release(e);
  }
  kernel.heap().free(stack, Heap::kMaxObject);
  return found || overflow;
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

// The key of a sockaddr_un: a path (NUL-terminated in `path`) or abstract bytes.
struct UnixName {
  bool abstract = false;
  bool autobind = false;
  char path[kSockAddrUnSize + 1] = {};
  u8 bytes[kSockAddrUnSize] = {};
  u32 length = 0;  // abstract: name bytes after sun_path[0]... the whole sun_path span
};

// unix_validate_addr and unix_mkname: EINVAL for a short address, another family, or one
// longer than struct sockaddr_un.
Result<UnixName> parse_name(const SockAddr& a) {
  if (a.length < kSunPathOffset || a.family() != af::kUnix) return Errno::kEINVAL;
  if (a.length > kSockAddrUnSize) return Errno::kEINVAL;
  UnixName n;
  if (a.length == kSunPathOffset) {
    n.autobind = true;
    return n;
  }
  const u8* sun_path = a.data + kSunPathOffset;
  const u32 span = a.length - kSunPathOffset;
  if (sun_path[0] != 0) {
    u32 i = 0;
    while (i < span && sun_path[i] != 0) {
      n.path[i] = static_cast<char>(sun_path[i]);
      ++i;
    }
    n.path[i] = 0;
    n.length = i;
    return n;
  }
  n.abstract = true;
  copy_bytes(n.bytes, sun_path, span);
  n.length = span;
  return n;
}

// The address an endpoint reports for a name (what getsockname returns).
void fill_address(SockAddr* a, const UnixName& n) {
  a->data[0] = static_cast<u8>(af::kUnix);
  a->data[1] = 0;
  if (n.abstract) {
    copy_bytes(a->data + kSunPathOffset, n.bytes, n.length);
    a->length = kSunPathOffset + n.length;
  } else {
    copy_bytes(a->data + kSunPathOffset, n.path, n.length + 1);
    a->length = kSunPathOffset + n.length + 1;  // Linux counts the NUL
  }
}

// Finds a bound endpoint (retained). ECONNREFUSED when nothing listens on the name, EPROTOTYPE
// for a path bound by another type.
Result<Endpoint*> find_bound(Kernel& kernel, const UnixName& n, i32 type) {
  UnixDomain& domain = kernel.unix_domain;
  if (n.abstract) {
    SpinLockGuard guard(domain.names_lock);
    for (UnixBinding* b = domain.names; b != nullptr; b = b->next) {
      if (b->vnode == nullptr && b->type == type && b->length == n.length &&
          compare_bytes(b->name, n.bytes, n.length) == 0) {
        ep_retain(b->endpoint);
        return b->endpoint;
      }
    }
    return Errno::kECONNREFUSED;
  }
  Vfs* vfs = TRY(kernel_vfs(kernel));
  AtStart start = TRY(at_start(kAtFdCwd, n.path));
  Vnode* vnode = TRY(vfs->resolve(start.start(), n.path, true));
  VnodeRef held(vnode);
  if (vnode->type() != kIfSock) return Errno::kECONNREFUSED;
  SpinLockGuard guard(domain.names_lock);
  for (UnixBinding* b = domain.names; b != nullptr; b = b->next) {
    if (b->vnode == vnode) {
      if (b->type != type) return Errno::kEPROTOTYPE;
      ep_retain(b->endpoint);
      return b->endpoint;
    }
  }
  return Errno::kECONNREFUSED;
}

void unbind(Kernel& kernel, Endpoint* e) {
  UnixDomain& domain = kernel.unix_domain;
  UnixBinding* gone = nullptr;
  {
    SpinLockGuard guard(domain.names_lock);
    for (UnixBinding** link = &domain.names; *link != nullptr; link = &(*link)->next) {
      if ((*link)->endpoint == e) {
        gone = *link;
        *link = gone->next;
        break;
      }
    }
  }
  if (gone == nullptr) return;
  if (gone->vnode != nullptr) gone->vnode->release();
  kernel.heap().destroy(gone);
}

// ---------------------------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------------------------

class UnixSocket final : public Socket {
 public:
  UnixSocket(Kernel& kernel, i32 type, u32 flags, Endpoint* endpoint)
      : Socket(kernel, af::kUnix, type, 0, flags), m_ep(endpoint) {
    m_ep->creator_pid.store(current_pid());
  }

  Endpoint* endpoint() const { return m_ep; }
  bool accepts_rights() const override { return true; }
  bool stream() const { return type() == socktype::kStream; }
  bool connection_oriented() const { return type() != socktype::kDgram; }

  // ---- naming ----

  Result<void> bind(const SockAddr& address) override {
    UnixName n = TRY(parse_name(address));
    if (m_ep->name.load() != nullptr) return Errno::kEINVAL;
    return bind_name(n);
  }

  Result<void> bind_name(UnixName& n) {
    UnixDomain& domain = m_kernel.unix_domain;
    auto* binding = m_kernel.heap().make<UnixBinding>();
    if (binding == nullptr) return Errno::kENOMEM;
    binding->endpoint = m_ep;
    binding->vnode = nullptr;
    binding->type = type();
    binding->length = 0;
    Vnode* vnode = nullptr;
    if (!n.abstract && !n.autobind) {
      // A path: create the socket's vnode (EADDRINUSE when the name exists).
      Vfs* vfs = TRY(kernel_vfs(m_kernel));
      FileTable* files = TRY(current_files());
      auto start = at_start(kAtFdCwd, n.path);
      if (start.is_error()) {
        m_kernel.heap().destroy(binding);
        return start.error();
      }
      ParentLookup parent;
      auto walked = vfs->resolve_parent(start.value().start(), n.path, &parent);
      if (walked.is_error()) {
        m_kernel.heap().destroy(binding);
        return walked.error();
      }
      VnodeRef dir{parent.dir};
      if (parent.is_dot || parent.trailing_slash) {
        m_kernel.heap().destroy(binding);
        return Errno::kEADDRINUSE;
      }
      auto created = dir->create(parent.name, parent.length, kIfSock | (0777 & ~files->umask()));
      if (created.is_error()) {
        m_kernel.heap().destroy(binding);
        return created.error() == Errno::kEEXIST ? Errno::kEADDRINUSE : created.error();
      }
      vnode = created.value();
    }
    SockAddr* address = m_kernel.heap().make<SockAddr>();
    if (address == nullptr) {
      if (vnode != nullptr) vnode->release();
      m_kernel.heap().destroy(binding);
      return Errno::kENOMEM;
    }
    Errno error = static_cast<Errno>(0);
    {
      SpinLockGuard guard(domain.names_lock);
      auto abstract_taken = [&](const UnixName& name, bool any_type) {
        for (UnixBinding* b = domain.names; b != nullptr; b = b->next) {
          if (b->vnode == nullptr && (any_type || b->type == type()) && b->length == name.length &&
              compare_bytes(b->name, name.bytes, name.length) == 0)
            return true;
        }
        return false;
      };
      if (n.autobind) {
        // Linux's autobind: an abstract name of five hex digits.
        n.abstract = true;
        n.length = 6;
        n.bytes[0] = 0;
        for (u32 tries = 0; tries <= 0xfffff; ++tries) {
          const u32 v = domain.autobind_next++ & 0xfffff;
          for (u32 i = 0; i < 5; ++i) n.bytes[1 + i] = static_cast<u8>("0123456789abcdef"[(v >> (16 - 4 * i)) & 0xf]);
          if (!abstract_taken(n, true)) break;
        }
      }
      SockAddr* expected = nullptr;
      if (n.abstract && abstract_taken(n, false)) {
        error = Errno::kEADDRINUSE;
      } else if (fill_address(address, n), !m_ep->name.compare_exchange(expected, address)) {
        error = Errno::kEINVAL;  // another thread bound this socket first
      } else {
        binding->vnode = vnode;
        binding->length = n.abstract ? n.length : 0;
        if (n.abstract) copy_bytes(binding->name, n.bytes, n.length);
        binding->next = domain.names;
        domain.names = binding;
        return {};
      }
    }
    m_kernel.heap().destroy(address);
    if (vnode != nullptr) vnode->release();
    m_kernel.heap().destroy(binding);
    return error;
  }

  Result<void> local_name(SockAddr* out) override {
    SockAddr* name = m_ep->name.load();
    if (name != nullptr) {
      *out = *name;
      return {};
    }
    out->length = kSunPathOffset;
    out->data[0] = static_cast<u8>(af::kUnix);
    out->data[1] = 0;
    return {};
  }

  Result<void> peer_name(SockAddr* out) override {
    Endpoint* peer = peer_retained();
    if (peer == nullptr) return Errno::kENOTCONN;
    SockAddr* name = peer->name.load();
    if (name != nullptr) {
      *out = *name;
    } else {
      out->length = kSunPathOffset;
      out->data[0] = static_cast<u8>(af::kUnix);
      out->data[1] = 0;
    }
    ep_release(peer);
    return {};
  }

  // ---- connections ----

  Result<void> listen(i32 backlog) override {
    if (!connection_oriented()) return Errno::kEOPNOTSUPP;
    if (m_ep->name.load() == nullptr) return Errno::kEINVAL;  // unix_listen: not bound
    IrqLockHolder held(m_ep->lock);
    if (m_ep->state == UnixState::Connected) return Errno::kEINVAL;
    m_ep->state = UnixState::Listening;
    m_ep->backlog = static_cast<u32>(backlog);
    // A larger backlog lets waiting connectors in.
    wake_all(m_ep->writers);
    held.unlock();
    notify_readiness();
    return {};
  }

  Result<void> connect(const SockAddr& address) override {
    if (address.length >= 2 && address.family() == af::kUnspec && type() == socktype::kDgram) {
      // Dissolves a datagram association (connect(2) with AF_UNSPEC).
      Endpoint* old = nullptr;
      {
        IrqLockHolder held(m_ep->lock);
        old = m_ep->peer;
        m_ep->peer = nullptr;
        m_ep->state = UnixState::Unconnected;
      }
      if (old != nullptr) ep_release(old);
      return {};
    }
    UnixName n = TRY(parse_name(address));
    if (n.autobind) return Errno::kEINVAL;
    if (type() == socktype::kDgram) return connect_datagram(n);
    return connect_stream(n);
  }

  Result<void> connect_datagram(const UnixName& n) {
    Endpoint* target = TRY(find_bound(m_kernel, n, type()));
    Endpoint* old;
    {
      IrqLockHolder held(m_ep->lock);
      old = m_ep->peer;
      m_ep->peer = target;
      m_ep->state = UnixState::Connected;
    }
    if (old != nullptr) ep_release(old);
    notify_readiness();
    return {};
  }

  Result<void> connect_stream(const UnixName& n) {
    {
      IrqLockHolder held(m_ep->lock);
      if (m_ep->state == UnixState::Connected) return Errno::kEISCONN;
      if (m_ep->state == UnixState::Listening) return Errno::kEINVAL;
    }
    Endpoint* listener = TRY(find_bound(m_kernel, n, type()));
    // The server's side of the connection, accepted later (Linux's embryo socket).
    Endpoint* server = m_kernel.heap().make<Endpoint>(m_kernel, type());
    if (server == nullptr) {
      ep_release(listener);
      return Errno::kENOMEM;
    }
    server->creator_pid.store(listener->creator_pid.load());
    // The accepted socket has the listener's address (unix_stream_connect copies it).
    if (SockAddr* name = listener->name.load()) {
      SockAddr* copy = m_kernel.heap().make<SockAddr>();
      if (copy == nullptr) {
        ep_release(server);
        ep_release(listener);
        return Errno::kENOMEM;
      }
      *copy = *name;
      server->name.store(copy);
    }
    // Wire both sides first (the server side is not shared yet), one lock at a time.
    {
      IrqLockHolder mine(m_ep->lock);
      if (m_ep->state != UnixState::Unconnected) {
        mine.unlock();
        ep_release(server);
        ep_release(listener);
        return Errno::kEISCONN;
      }
      ep_retain(server);
      m_ep->peer = server;
      m_ep->state = UnixState::Connected;
      ep_retain(m_ep);
      server->peer = m_ep;
      server->state = UnixState::Connected;
    }
    const u64 deadline = send_deadline();
    Result<void> outcome{};
    {
      IrqLockHolder held(listener->lock);
      for (;;) {
        if (listener->dead || listener->state != UnixState::Listening) {
          outcome = Errno::kECONNREFUSED;
          break;
        }
        if (listener->pending.size() <= listener->backlog) {  // Linux allows backlog + 1
          listener->pending.push_back(server);  // the listener now holds our reference
          server = nullptr;
          wake_all(listener->readers);
          break;
        }
        if (nonblocking()) {
          outcome = Errno::kEAGAIN;
          break;
        }
        auto slept = wait_on(listener->lock, listener->writers, deadline);
        if (slept.is_error()) {
          outcome = slept.error();  // EAGAIN when SO_SNDTIMEO ran out, as unix_stream_connect
          break;
        }
      }
    }
    if (server != nullptr) {
      // Refused: undo the wiring.
      Endpoint* old = nullptr;
      {
        IrqLockHolder mine(m_ep->lock);
        if (m_ep->peer == server) {
          old = m_ep->peer;
          m_ep->peer = nullptr;
          m_ep->state = UnixState::Unconnected;
        }
      }
      if (old != nullptr) ep_release(old);
      // The server side was never shared with the listener: unwire it quietly (no shutdown
      // of the client, which may connect again).
      Endpoint* back;
      {
        IrqLockHolder theirs(server->lock);
        back = server->peer;
        server->peer = nullptr;
        server->dead = true;
      }
      if (back != nullptr) ep_release(back);
      ep_release(server);
    }
    ep_release(listener);
    notify_readiness();
    return outcome;
  }

  Result<Socket*> accept(u32 file_flags, SockAddr* peer_address) override {
    IrqLockHolder held(m_ep->lock);
    if (m_ep->state != UnixState::Listening) return Errno::kEINVAL;
    const u64 deadline = receive_deadline();
    Endpoint* server = nullptr;
    for (;;) {
      server = m_ep->pending.pop_front();
      if (server != nullptr) break;
      if (nonblocking()) return Errno::kEAGAIN;
      TRY(wait_on(m_ep->lock, m_ep->readers, deadline));
      if (m_ep->state != UnixState::Listening) return Errno::kEINVAL;
    }
    wake_all(m_ep->writers);  // backlog room
    held.unlock();
    auto* socket = m_kernel.heap().make<UnixSocket>(m_kernel, type(), file_flags, server);
    if (socket == nullptr) {
      drop_endpoint(server, true);
      return Errno::kENOMEM;
    }
    socket->endpoint()->creator_pid.store(m_ep->creator_pid.load());
    if (peer_address != nullptr) (void)socket->peer_name(peer_address);
    notify_readiness();
    return static_cast<Socket*>(socket);
  }

  bool listening() override {
    SpinLockGuard guard(m_ep->lock);
    return m_ep->state == UnixState::Listening;
  }

  Result<void> shutdown(i32 how) override {
    const u32 mode = static_cast<u32>(how) + 1;  // SHUT_RD -> RCV, SHUT_WR -> SEND, both
    Endpoint* peer;
    {
      IrqLockHolder held(m_ep->lock);
      m_ep->shutdown |= mode;
      wake_all(m_ep->readers);
      wake_all(m_ep->writers);
      peer = m_ep->peer;
      if (peer != nullptr) ep_retain(peer);
    }
    if (peer != nullptr && connection_oriented()) {
      u32 peer_mode = 0;
      if (mode & kRcvShutdown) peer_mode |= kSendShutdown;
      if (mode & kSendShutdown) peer_mode |= kRcvShutdown;
      IrqLockHolder held(peer->lock);
      peer->shutdown |= peer_mode;
      wake_all(peer->readers);
      wake_all(peer->writers);
    }
    if (peer != nullptr) ep_release(peer);
    notify_readiness();
    return {};
  }

  // ---- data ----

  Result<usize> send(const MsgIo& data, const SockAddr* to, SendControl& control, u32 flags) override {
    if (flags & msgflag::kOob) return Errno::kEOPNOTSUPP;
    if (stream()) return send_stream(data, to, control, flags);
    return send_datagram(data, to, control, flags);
  }

  Result<usize> recv(const MsgIo& data, SockAddr* from, RecvControl& control, u32 flags, u32* msg_flags) override {
    if (stream()) {
      {
        SpinLockGuard guard(m_ep->lock);
        if (m_ep->state != UnixState::Connected) return Errno::kEINVAL;
      }
      if (flags & msgflag::kOob) return Errno::kEOPNOTSUPP;
      return recv_stream(data, from, control, flags);
    }
    if (flags & msgflag::kOob) return Errno::kEOPNOTSUPP;
    if (type() == socktype::kSeqPacket) {
      SpinLockGuard guard(m_ep->lock);
      if (m_ep->state != UnixState::Connected) return Errno::kENOTCONN;
    }
    return recv_datagram(data, from, control, flags, msg_flags);
  }

  u32 poll_events() override {
    u32 events = 0;
    Endpoint* peer = nullptr;
    UnixState state;
    {
      SpinLockGuard guard(m_ep->lock);
      state = m_ep->state;
      if (m_ep->error != 0) events |= pollev::kErr;
      if (m_ep->shutdown == kShutdownMask) events |= pollev::kHup;
      if (m_ep->shutdown & kRcvShutdown) events |= pollev::kRdHup | pollev::kIn | pollev::kRdNorm;
      if (!m_ep->queue.empty() || !m_ep->pending.empty()) events |= pollev::kIn | pollev::kRdNorm;
      if (connection_oriented() && state == UnixState::Unconnected) events |= pollev::kHup;
      peer = m_ep->peer;
      // Our writes sit in the peer's queue: Linux's unix_writable compares our send buffer
      // use (sk_wmem_alloc) with SO_SNDBUF. The peer outlives this read: we hold a reference.
      const u64 used = peer != nullptr ? peer->queued.load() : 0;
      if (state != UnixState::Listening && used * 4 <= static_cast<u64>(options().sndbuf))
        events |= pollev::kOut | pollev::kWrNorm | pollev::kWrBand;
    }
    return events;
  }

  i32 take_error() override {
    SpinLockGuard guard(m_ep->lock);
    const i32 e = m_ep->error;
    m_ep->error = 0;
    return e;
  }

  Result<u32> get_option(i32 level, i32 name, u8* value, u32 capacity) override {
    if (level == sol::kSocket && name == so::kPeerCred) {
      struct {
        u32 pid, uid, gid;
      } cred = {0, ~0u, ~0u};
      Endpoint* peer = peer_retained();
      if (peer != nullptr) {
        cred = {peer->creator_pid.load(), 0, 0};
        ep_release(peer);
      }
      const u32 n = min<u32>(capacity, sizeof(cred));
      copy_bytes(value, &cred, n);
      return n;
    }
    // Linux's AF_UNIX has no options of its own: other levels are EOPNOTSUPP.
    return level == sol::kSocket ? Errno::kENOPROTOOPT : Errno::kEOPNOTSUPP;
  }
  Result<void> set_option(i32 level, i32 name, const u8* value, u32 length) override {
    return level == sol::kSocket ? Errno::kENOPROTOOPT : Errno::kEOPNOTSUPP;
  }

  Result<i64> socket_ioctl(u64 request, u64 argument) override {
    i32 amount = 0;
    if (request == kSiocinq) {
      SpinLockGuard guard(m_ep->lock);
      if (m_ep->state == UnixState::Listening) return Errno::kEINVAL;
      u64 n = 0;
      if (connection_oriented()) {
        m_ep->queue.for_each([&](Chunk* c) { n += c->length - c->consumed; });
      } else {
        // The first datagram's length.
        for (Chunk* c = m_ep->queue.front(); c != nullptr; c = m_ep->queue.next(c)) {
          n += c->length;
          if (c->record_end) break;
        }
      }
      amount = static_cast<i32>(min<u64>(n, 0x7fffffff));
    } else if (request == kSiocoutq) {
      Endpoint* peer = peer_retained();
      if (peer != nullptr) {
        amount = static_cast<i32>(min<u64>(peer->queued.load(), 0x7fffffff));
        ep_release(peer);
      }
    } else {
      return Errno::kENOTTY;
    }
    if (!hal::copy_to_user(argument, &amount, sizeof(amount))) return Errno::kEFAULT;
    return 0;
  }

  // Wires two fresh sockets to each other (socketpair).
  static void pair(UnixSocket* a, UnixSocket* b) {
    ep_retain(b->m_ep);
    a->m_ep->peer = b->m_ep;
    a->m_ep->state = UnixState::Connected;
    ep_retain(a->m_ep);
    b->m_ep->peer = a->m_ep;
    b->m_ep->state = UnixState::Connected;
  }

 protected:
  void on_last_close() override {
    unbind(m_kernel, m_ep);
    close_endpoint(m_ep, false);
    ep_release(m_ep);
    m_kernel.heap().destroy(this);
  }

 private:
  // Marks an endpoint closed: its queue and pending connections are dropped, its peer sees the
  // end (unix_release_sock).
  // `embryo`: a connection nobody accepted; its client sees ECONNRESET.
  static void close_endpoint(Endpoint* e, bool embryo) {
    Kernel& kernel = e->kernel;
    IntrusiveList<Chunk, &Chunk::node> unread;
    IntrusiveList<Endpoint, &Endpoint::pending_node> embryos;
    Endpoint* peer;
    bool had_unread;
    {
      IrqLockHolder held(e->lock);
      e->dead = true;
      e->shutdown = kShutdownMask;
      had_unread = !e->queue.empty();
      take_queue(e, &unread);
      while (Endpoint* p = e->pending.pop_front()) embryos.push_back(p);
      peer = e->peer;
      e->peer = nullptr;
      e->state = UnixState::Unconnected;
      while (Thread* t = e->readers.pop_front()) kernel.wake(t, kWakeNormal);
      while (Thread* t = e->writers.pop_front()) kernel.wake(t, kWakeNormal);
    }
    if (peer != nullptr) {
      {
        IrqLockHolder held(peer->lock);
        if (e->type != socktype::kDgram) {
          peer->shutdown = kShutdownMask;
          if (had_unread || embryo) peer->error = static_cast<i32>(Errno::kECONNRESET);
        }
        while (Thread* t = peer->readers.pop_front()) kernel.wake(t, kWakeNormal);
        while (Thread* t = peer->writers.pop_front()) kernel.wake(t, kWakeNormal);
      }
      ep_release(peer);
    }
    while (Endpoint* p = embryos.pop_front()) drop_endpoint(p, true);
    free_queue(kernel, &unread);
    Vfs* vfs = kernel.vfs.load();
    if (vfs != nullptr) vfs->notify_readiness();
  }

  // A pending connection that will never be accepted (or an accepted one we failed to wrap).
  static void drop_endpoint(Endpoint* e, bool embryo) {
    close_endpoint(e, embryo);
    ep_release(e);
  }

  // Hands a chunk's descriptors to a receive: the rights array itself, or for MSG_PEEK a copy
  // holding new references (none when that copy cannot be allocated: the peek then shows no
  // descriptors rather than failing). Called under the endpoint's lock; the heap ranks above.
  static void give_files(Kernel& kernel, Chunk* c, RecvControl& control, bool peek) {
    if (c->files == nullptr || control.files != nullptr) return;
    if (peek) {
      File** copy = allocate_rights(kernel);
      if (copy == nullptr) return;
      for (u32 i = 0; i < c->file_count; ++i) {
        c->files[i]->retain();
        copy[i] = c->files[i];
      }
      control.files = copy;
      control.file_count = c->file_count;
      return;
    }
    control.files = c->files;
    control.file_count = c->file_count;
    c->files = nullptr;
    c->file_count = 0;
  }

  // After a read, under e's lock: wakes the writers once the queue has drained enough.
  void wake_writers(Endpoint* e) {
    if (e->writers.empty() || e->queued.load() > e->writer_wake_at) return;
    wake_all(e->writers);
    e->writer_wake_at = 0;
  }

  Endpoint* peer_retained() {
    SpinLockGuard guard(m_ep->lock);
    Endpoint* p = m_ep->peer;
    if (p != nullptr) ep_retain(p);
    return p;
  }

  // Whether any of `files` is an AF_UNIX socket (its send must pass the cycle check).
  static bool carries_sockets(File** files, u32 count) {
    for (u32 i = 0; i < count; ++i) {
      if (endpoint_of(files[i]) != nullptr) return true;
    }
    return false;
  }
  // Under the rights lock: whether queuing `files` towards `target` closes a cycle.
  bool would_cycle(File** files, u32 count, Endpoint* target) {
    for (u32 i = 0; i < count; ++i) {
      Endpoint* e = endpoint_of(files[i]);
      if (e != nullptr && reaches(m_kernel, e, target)) return true;
    }
    return false;
  }

  Result<usize> send_stream(const MsgIo& data, const SockAddr* to, SendControl& control, u32 flags) {
    Endpoint* peer;
    u32 own_shutdown;
    UnixState state;
    {
      SpinLockGuard guard(m_ep->lock);
      state = m_ep->state;
      own_shutdown = m_ep->shutdown;
      peer = m_ep->peer;
      if (peer != nullptr) ep_retain(peer);
    }
    auto done = [&](Result<usize> r) {
      if (peer != nullptr) ep_release(peer);
      return r;
    };
    if (to != nullptr) return done(state == UnixState::Connected ? Errno::kEISCONN : Errno::kEOPNOTSUPP);
    if (peer == nullptr) return done(Errno::kENOTCONN);
    if (own_shutdown & kSendShutdown) return done(Errno::kEPIPE);
    const u64 total = data.total();
    u32 file_count = 0;
    File** files = control.take_files(&file_count);
    const bool check = files != nullptr && carries_sockets(files, file_count);
    const u64 deadline = send_deadline();
    const u64 sndbuf = static_cast<u64>(options().sndbuf);
    u64 sent = 0;
    Errno error = static_cast<Errno>(0);
    UnixDomain& domain = m_kernel.unix_domain;
    while (sent < total) {
      hal::IrqFlags rights_flags = 0;
      const bool rights_held = check && files != nullptr;
      if (rights_held) {
        rights_flags = hal::irq_save();
        domain.rights_lock.acquire();
      }
      auto drop_rights = [&] {
        if (rights_held) {
          domain.rights_lock.release();
          hal::irq_restore(rights_flags);
        }
      };
      // The cycle walk takes endpoint locks one at a time: before the peer's.
      if (rights_held && would_cycle(files, file_count, peer)) {
        drop_rights();
        error = Errno::kETOOMANYREFS;
        break;
      }
      IrqLockHolder held(peer->lock);
      if (peer->dead || (peer->shutdown & kRcvShutdown)) {
        held.unlock();
        drop_rights();
        error = Errno::kEPIPE;
        break;
      }
      if (peer->queued.load() >= sndbuf) {
        if (flags & msgflag::kDontWait) {
          held.unlock();
          drop_rights();
          error = Errno::kEAGAIN;
          break;
        }
        // Sleep without the rights lock: it ranks below the endpoint's and must not be held
        // across a sleep.
        held.unlock();
        drop_rights();
        IrqLockHolder again(peer->lock);
        if (peer->queued.load() >= sndbuf && !peer->dead && (peer->shutdown & kRcvShutdown) == 0) {
          peer->writer_wake_at = max(peer->writer_wake_at, sndbuf / 2);
          auto slept = wait_on(peer->lock, peer->writers, deadline);
          if (slept.is_error()) {
            error = slept.error();
            break;
          }
        }
        continue;
      }
      // Append as much as fits under one hold of the lock: one wake-up and one readiness notice
      // per batch, not per chunk.
      Errno failed = static_cast<Errno>(0);
      bool appended = false;
      do {
        // Append to the last chunk when it carries no descriptors and neither does this piece.
        Chunk* tail = peer->queue.back();
        Chunk* chunk;
        bool fresh = false;
        if (files == nullptr && tail != nullptr && tail->files == nullptr && tail->length < tail->capacity) {
          chunk = tail;
        } else {
          chunk = allocate_chunk(m_kernel, static_cast<usize>(min<u64>(total - sent, Heap::kMaxObject)));
          if (chunk == nullptr) {
            failed = Errno::kENOBUFS;
            break;
          }
          fresh = true;
        }
        const usize n = static_cast<usize>(min<u64>(total - sent, chunk->capacity - chunk->length));
        if (!data.get(chunk->data() + chunk->length, sent, n)) {
          if (fresh) m_kernel.heap().free(chunk, chunk->alloc);
          failed = Errno::kEFAULT;
          break;
        }
        chunk->length += static_cast<u32>(n);
        if (fresh) {
          chunk->files = files;
          chunk->file_count = file_count;
          files = nullptr;
          file_count = 0;
          peer->queue.push_back(chunk);
          peer->queued.store(peer->queued.load() + chunk->alloc);
        }
        sent += n;
        appended = true;
      } while (sent < total && peer->queued.load() < sndbuf);
      if (appended) wake_all(peer->readers);
      held.unlock();
      drop_rights();
      if (appended) notify_readiness();
      if (failed != static_cast<Errno>(0)) {
        error = failed;
        break;
      }
    }
    release_rights(m_kernel, files, file_count);
    if (sent > 0) return done(static_cast<usize>(sent));
    if (error == static_cast<Errno>(0)) return done(usize{0});
    return done(error);
  }

  Result<usize> send_datagram(const MsgIo& data, const SockAddr* to, SendControl& control, u32 flags) {
    Endpoint* target = nullptr;
    u32 own_shutdown;
    i32 own_error;
    UnixState state;
    {
      SpinLockGuard guard(m_ep->lock);
      state = m_ep->state;
      own_shutdown = m_ep->shutdown;
      own_error = m_ep->error;
      if (own_error != 0) m_ep->error = 0;
      if (m_ep->peer != nullptr) {
        target = m_ep->peer;
        ep_retain(target);
      }
    }
    auto done = [&](Result<usize> r) {
      if (target != nullptr) ep_release(target);
      return r;
    };
    if (own_error != 0) return done(static_cast<Errno>(own_error));
    if (type() == socktype::kSeqPacket) {
      if (state != UnixState::Connected) return done(Errno::kENOTCONN);
      to = nullptr;  // unix_seqpacket_sendmsg ignores a name
    }
    if (to != nullptr) {
      auto name = parse_name(*to);
      if (name.is_error()) return done(name.error());
      if (name.value().autobind) return done(Errno::kEINVAL);
      auto found = find_bound(m_kernel, name.value(), type());
      if (found.is_error()) return done(found.error());
      if (target != nullptr) ep_release(target);
      target = found.value();
    } else if (target == nullptr) {
      return done(Errno::kENOTCONN);
    }
    const u64 total = data.total();
    const u64 sndbuf = static_cast<u64>(options().sndbuf);
    if (total > sndbuf - 32) return done(Errno::kEMSGSIZE);
    if (own_shutdown & kSendShutdown) return done(Errno::kEPIPE);
    u32 file_count = 0;
    File** files = control.take_files(&file_count);
    const bool check = files != nullptr && carries_sockets(files, file_count);
    const u64 deadline = send_deadline();
    // A datagram is copied into its chunks before any lock: it goes in whole or not at all.
    IntrusiveList<Chunk, &Chunk::node> message;
    u64 cost = 0;
    Errno error = static_cast<Errno>(0);
    for (u64 at = 0; at < total || message.empty();) {
      Chunk* c = allocate_chunk(m_kernel, static_cast<usize>(min<u64>(total - at, Heap::kMaxObject)));
      if (c == nullptr) {
        error = Errno::kENOBUFS;
        break;
      }
      const usize n = static_cast<usize>(min<u64>(total - at, c->capacity));
      message.push_back(c);
      cost += c->alloc;
      if (!data.get(c->data(), at, n)) {
        error = Errno::kEFAULT;
        break;
      }
      c->length = static_cast<u32>(n);
      at += n;
    }
    if (error == static_cast<Errno>(0)) {
      message.back()->record_end = true;
      Chunk* first = message.front();
      first->files = files;
      first->file_count = file_count;
      files = nullptr;
      file_count = 0;
      ep_retain(m_ep);
      first->sender = m_ep;
    }
    UnixDomain& domain = m_kernel.unix_domain;
    while (error == static_cast<Errno>(0)) {
      hal::IrqFlags rights_flags = 0;
      if (check) {
        rights_flags = hal::irq_save();
        domain.rights_lock.acquire();
      }
      auto drop_rights = [&] {
        if (check) {
          domain.rights_lock.release();
          hal::irq_restore(rights_flags);
        }
      };
      if (check && would_cycle(message.front()->files, message.front()->file_count, target)) {
        drop_rights();
        error = Errno::kETOOMANYREFS;
        break;
      }
      IrqLockHolder held(target->lock);
      if (target->dead) {
        error = type() == socktype::kSeqPacket ? Errno::kEPIPE : Errno::kECONNREFUSED;
      } else if (target->shutdown & kRcvShutdown) {
        error = Errno::kEPIPE;
      } else if (target->queued.load() >= sndbuf && target->queued.load() != 0) {
        if (flags & msgflag::kDontWait) {
          error = Errno::kEAGAIN;
        } else {
          held.unlock();
          drop_rights();
          IrqLockHolder again(target->lock);
          if (target->queued.load() >= sndbuf && !target->dead) {
            target->writer_wake_at = max(target->writer_wake_at, sndbuf / 2);
            auto slept = wait_on(target->lock, target->writers, deadline);
            if (slept.is_error()) error = slept.error();
          }
          continue;
        }
      } else {
        while (Chunk* c = message.pop_front()) target->queue.push_back(c);
        target->queued.store(target->queued.load() + cost);
        wake_all(target->readers);
        held.unlock();
        drop_rights();
        notify_readiness();
        return done(static_cast<usize>(total));
      }
      held.unlock();
      drop_rights();
    }
    if (error == Errno::kECONNREFUSED) {
      // The connected peer is gone: the association dissolves (unix_dgram_sendmsg).
      Endpoint* old = nullptr;
      {
        SpinLockGuard guard(m_ep->lock);
        if (m_ep->peer == target) {
          old = m_ep->peer;
          m_ep->peer = nullptr;
          m_ep->state = UnixState::Unconnected;
        }
      }
      if (old != nullptr) ep_release(old);
    }
    free_queue(m_kernel, &message);
    release_rights(m_kernel, files, file_count);
    return done(error);
  }

  Result<usize> recv_stream(const MsgIo& data, SockAddr* from, RecvControl& control, u32 flags) {
    const u64 total = data.total();
    const bool peek = (flags & msgflag::kPeek) != 0;
    const u64 target = (flags & msgflag::kWaitAll) ? total : min<u64>(static_cast<u64>(options().rcvlowat), total);
    const u64 deadline = receive_deadline();
    u64 copied = 0;
    bool consumed_any = false;
    IntrusiveList<Chunk, &Chunk::node> freed;
    Errno failure = static_cast<Errno>(0);
    {
      IrqLockHolder held(m_ep->lock);
      for (;;) {
        // Skip what a peek has already copied.
        Chunk* c = m_ep->queue.front();
        u64 skip = peek ? copied : 0;
        while (c != nullptr && skip >= c->length - c->consumed) {
          skip -= c->length - c->consumed;
          c = m_ep->queue.next(c);
        }
        if (c == nullptr) {
          if (copied >= target) break;
          if (m_ep->error != 0) {
            const Errno e = static_cast<Errno>(m_ep->error);
            m_ep->error = 0;
            if (copied == 0) failure = e;
            break;
          }
          if (m_ep->shutdown & kRcvShutdown) break;
          if (flags & msgflag::kDontWait) {
            if (copied == 0) failure = Errno::kEAGAIN;
            break;
          }
          auto slept = wait_on(m_ep->lock, m_ep->readers, deadline);
          if (slept.is_error()) {
            if (copied == 0) failure = slept.error();
            break;
          }
          continue;
        }
        // Linux's loop runs at least once (do ... while (size)): a zero-length read with data
        // queued still takes the descriptors of the chunk it stands at.
        const u64 available = c->length - c->consumed - skip;
        const usize n = static_cast<usize>(min<u64>(available, total - copied));
        if (!data.put(copied, c->data() + c->consumed + skip, n)) {
          if (copied == 0) failure = Errno::kEFAULT;
          break;
        }
        copied += n;
        if (peek) {
          if (c->files != nullptr) {
            give_files(m_kernel, c, control, true);
            break;
          }
          if (copied == total) break;
          continue;
        }
        c->consumed += static_cast<u32>(n);
        consumed_any = true;
        const bool had_files = c->files != nullptr;
        give_files(m_kernel, c, control, false);
        if (c->consumed < c->length) break;  // the buffer is full
        m_ep->queue.remove(c);
        m_ep->queued.store(m_ep->queued.load() - c->alloc);
        freed.push_back(c);
        if (had_files || copied == total) break;
      }
      if (consumed_any) wake_writers(m_ep);
    }
    free_queue(m_kernel, &freed);
    if (consumed_any) notify_readiness();
    if (from != nullptr) from->length = 0;  // unnamed peers; a named peer's address below
    if (from != nullptr && copied > 0) {
      Endpoint* peer = peer_retained();
      if (peer != nullptr) {
        SockAddr* name = peer->name.load();
        if (name != nullptr) *from = *name;
        ep_release(peer);
      }
    }
    if (failure != static_cast<Errno>(0)) return failure;
    return static_cast<usize>(copied);
  }

  Result<usize> recv_datagram(const MsgIo& data, SockAddr* from, RecvControl& control, u32 flags, u32* msg_flags) {
    const u64 total = data.total();
    const bool peek = (flags & msgflag::kPeek) != 0;
    const u64 deadline = receive_deadline();
    IntrusiveList<Chunk, &Chunk::node> taken;
    u64 length = 0;
    u64 copied = 0;
    Endpoint* sender = nullptr;
    {
      IrqLockHolder held(m_ep->lock);
      for (;;) {
        if (!m_ep->queue.empty()) break;
        if (m_ep->error != 0) {
          const Errno e = static_cast<Errno>(m_ep->error);
          m_ep->error = 0;
          return e;
        }
        if (m_ep->shutdown & kRcvShutdown) {
          // EOF for a blocking receive; a nonblocking one says EAGAIN, except SEQPACKET.
          if ((flags & msgflag::kDontWait) && type() != socktype::kSeqPacket) return Errno::kEAGAIN;
          return usize{0};
        }
        if (flags & msgflag::kDontWait) return Errno::kEAGAIN;
        TRY(wait_on(m_ep->lock, m_ep->readers, deadline));
      }
      // Copy the first record out.
      Chunk* first = m_ep->queue.front();
      bool fault = false;
      for (Chunk* c = first; c != nullptr; c = m_ep->queue.next(c)) {
        if (copied < total && !fault) {
          const usize n = static_cast<usize>(min<u64>(c->length, total - copied));
          if (!data.put(copied, c->data(), n)) fault = true;
          else copied += n;
        }
        length += c->length;
        if (c->record_end) break;
      }
      if (fault) return Errno::kEFAULT;
      sender = first->sender;
      if (sender != nullptr) ep_retain(sender);
      give_files(m_kernel, first, control, peek);
      if (!peek) {
        for (;;) {
          Chunk* c = m_ep->queue.pop_front();
          m_ep->queued.store(m_ep->queued.load() - c->alloc);
          taken.push_back(c);
          if (c->record_end) break;
        }
        wake_writers(m_ep);
      }
    }
    free_queue(m_kernel, &taken);
    if (!peek) notify_readiness();
    if (from != nullptr) {
      from->length = 0;
      if (sender != nullptr) {
        SockAddr* name = sender->name.load();
        if (name != nullptr) *from = *name;
      }
    }
    if (sender != nullptr) ep_release(sender);
    if (copied < length) *msg_flags |= msgflag::kTrunc;
    return static_cast<usize>((flags & msgflag::kTrunc) ? length : copied);
  }

  Endpoint* m_ep;
};

Endpoint* endpoint_of(File* file) {
  Socket* s = Socket::from(*file);
  if (s == nullptr || s->family() != af::kUnix) return nullptr;
  return static_cast<UnixSocket*>(s)->endpoint();
}

Result<i32> check_type(i32 type, i32 protocol) {
  if (protocol != 0 && protocol != af::kUnix) return Errno::kEPROTONOSUPPORT;
  switch (type) {
    case socktype::kStream:
    case socktype::kDgram:
    case socktype::kSeqPacket: return type;
    case socktype::kRaw: return socktype::kDgram;  // as unix_create does
    default: return Errno::kESOCKTNOSUPPORT;
  }
}

Result<UnixSocket*> make_socket(Kernel& kernel, i32 type, u32 flags) {
  Endpoint* e = kernel.heap().make<Endpoint>(kernel, type);
  if (e == nullptr) return Errno::kENOMEM;
  auto* s = kernel.heap().make<UnixSocket>(kernel, type, flags, e);
  if (s == nullptr) {
    kernel.heap().destroy(e);
    return Errno::kENOMEM;
  }
  return s;
}

}  // namespace

Result<Socket*> unix_create(Kernel& kernel, i32 type, i32 protocol, u32 flags) {
  const i32 t = TRY(check_type(type, protocol));
  return static_cast<Socket*>(TRY(make_socket(kernel, t, flags)));
}

Result<void> unix_create_pair(Kernel& kernel, i32 type, i32 protocol, u32 flags, Socket** a, Socket** b) {
  const i32 t = TRY(check_type(type, protocol));
  UnixSocket* first = TRY(make_socket(kernel, t, flags));
  auto second = make_socket(kernel, t, flags);
  if (second.is_error()) {
    first->release();
    return second.error();
  }
  UnixSocket::pair(first, second.value());
  *a = first;
  *b = second.value();
  return {};
}

}  // namespace tandem
