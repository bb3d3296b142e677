// core/net/inet.cpp: AF_INET sockets over lwIP's raw API. See inet.h.
#include "core/net/inet.h"

#include "core/kernel.h"
#include "core/net/stack.h"

#include "lwip/ip4_addr.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

namespace tandem {
namespace {

constexpr i32 kIpProtoTcp = 6, kIpProtoUdp = 17;
constexpr u64 kFionread = 0x541B, kSiocOutq = 0x5411;
constexpr usize kUdpMaxPayload = 65507;  // 65535 - IP header - UDP header
constexpr usize kBounce = Heap::kMaxObject;

// The last count a kernel instance left (for tests, read when no kernel runs).
u32 g_last_count = 0;

// struct sockaddr_in.
struct SockAddrIn {
  u16 family;
  u16 port;  // network order
  u32 addr;  // network order
  u8 zero[8];
};
static_assert(sizeof(SockAddrIn) == 16);

Errno errno_from(err_t err) {
  switch (err) {
    case ERR_MEM:
    case ERR_BUF: return Errno::kENOBUFS;
    case ERR_TIMEOUT: return Errno::kETIMEDOUT;
    case ERR_RTE: return Errno::kENETUNREACH;
    case ERR_INPROGRESS: return Errno::kEINPROGRESS;
    case ERR_VAL:
    case ERR_ARG: return Errno::kEINVAL;
    case ERR_WOULDBLOCK: return Errno::kEAGAIN;
    case ERR_USE: return Errno::kEADDRINUSE;
    case ERR_ALREADY: return Errno::kEALREADY;
    case ERR_ISCONN: return Errno::kEISCONN;
    case ERR_CONN: return Errno::kENOTCONN;
    case ERR_IF: return Errno::kENETDOWN;
    case ERR_ABRT: return Errno::kECONNABORTED;
    case ERR_RST: return Errno::kECONNRESET;
    case ERR_CLSD: return Errno::kENOTCONN;
    default: return Errno::kEIO;
  }
}

u16 swap16(u16 v) { return static_cast<u16>((v >> 8) | (v << 8)); }

// Decodes a sockaddr_in: EINVAL when too short, EAFNOSUPPORT for another family.
Result<void> decode(const SockAddr& address, ip_addr_t* ip, u16* port) {
  if (address.length < sizeof(SockAddrIn)) return Errno::kEINVAL;
  SockAddrIn in;
  copy_bytes(&in, address.data, sizeof(in));
  if (in.family != af::kInet) return Errno::kEAFNOSUPPORT;
  ip_addr_set_ip4_u32(ip, in.addr);
  *port = swap16(in.port);
  return {};
}

void encode(SockAddr* out, const ip_addr_t* ip, u16 port) {
  SockAddrIn in{};
  in.family = af::kInet;
  in.port = swap16(port);
  in.addr = ip == nullptr ? 0 : ip_addr_get_ip4_u32(ip);
  out->set(&in, sizeof(in));
}

// Whether `ip` may be bound here: any, loopback, or the card's address.
bool is_local(const ip_addr_t* ip) {
  const u32 a = ip_addr_get_ip4_u32(ip);
  if (a == 0) return true;
  struct netif* n;
  NETIF_FOREACH(n) {
    if (ip4_addr_get_u32(netif_ip4_addr(n)) == a) return true;
  }
  return false;
}

// A received UDP datagram, queued in arrival order.
struct Datagram {
  Datagram* next = nullptr;
  struct pbuf* p = nullptr;
  ip_addr_t from;
  u16 port = 0;
};

enum class TcpState : u8 {
  Fresh,       // no connection yet (maybe bound)
  Listening,
  Connecting,  // SYN sent
  Connected,   // established (may have received FIN: m_eof)
  Closed,      // was connected or connecting; the PCB is gone (reset, refused, timed out)
};

class InetSocket final : public Socket {
 public:
  InetSocket(Kernel& kernel, i32 type, i32 protocol, u32 flags) : Socket(kernel, af::kInet, type, protocol, flags) {}

  bool stream() const { return type() == socktype::kStream; }

  // Under the stack lock: a fresh PCB. false when lwIP has none left.
  bool make_pcb() {
    if (stream()) {
      m_tcp = tcp_new_ip_type(IPADDR_TYPE_V4);
      if (m_tcp == nullptr) return false;
      attach_tcp(m_tcp);
    } else {
      m_udp = udp_new_ip_type(IPADDR_TYPE_V4);
      if (m_udp == nullptr) return false;
      udp_recv(m_udp, on_udp_recv, this);
    }
    apply_options();
    return true;
  }

  void attach_tcp(struct tcp_pcb* pcb) {
    tcp_arg(pcb, this);
    tcp_recv(pcb, on_tcp_recv);
    tcp_sent(pcb, on_tcp_sent);
    tcp_err(pcb, on_tcp_err);
  }

  static void detach_tcp(struct tcp_pcb* pcb) {
    tcp_arg(pcb, nullptr);
    if (pcb->state == LISTEN) {
      tcp_accept(pcb, nullptr);  // a listening PCB has no other callbacks (lwIP asserts it)
      return;
    }
    tcp_recv(pcb, nullptr);
    tcp_sent(pcb, nullptr);
    tcp_err(pcb, nullptr);
  }

  // Under the lock: the PCB's options from this socket's.
  void apply_options() {
    const SocketOptions& o = options();
    if (m_tcp != nullptr) {
      if (o.reuse_addr) ip_set_option(m_tcp, SOF_REUSEADDR);
      else ip_reset_option(m_tcp, SOF_REUSEADDR);
      if (m_tcp->state != LISTEN) {
        if (o.keepalive) ip_set_option(m_tcp, SOF_KEEPALIVE);
        else ip_reset_option(m_tcp, SOF_KEEPALIVE);
        if (m_nodelay) tcp_nagle_disable(m_tcp);
        else tcp_nagle_enable(m_tcp);
        if (m_keep_idle_ms) m_tcp->keep_idle = m_keep_idle_ms;
        if (m_keep_intvl_ms) m_tcp->keep_intvl = m_keep_intvl_ms;
        if (m_keep_cnt) m_tcp->keep_cnt = m_keep_cnt;
      }
      m_tcp->tos = m_tos;
      m_tcp->ttl = m_ttl;
    }
    if (m_udp != nullptr) {
      if (o.reuse_addr) ip_set_option(m_udp, SOF_REUSEADDR);
      else ip_reset_option(m_udp, SOF_REUSEADDR);
      if (o.broadcast) ip_set_option(m_udp, SOF_BROADCAST);
      else ip_reset_option(m_udp, SOF_BROADCAST);
      m_udp->tos = m_tos;
      m_udp->ttl = m_ttl;
    }
  }

  // Something changed that a sleeper or poller may care about. Under the lock.
  void changed() {
    wake_all(m_waiters);
    net_note_readiness_changed(readiness_key());
  }

  // Sleeps until woken. Under the lock (NetLock `lock`); loopback traffic is delivered and
  // pollers told first: when that may have changed the condition the caller waits for, returns
  // at once so the caller looks again.
  Result<void> wait(NetLock& lock, u64 deadline) {
    if (lock.settle()) return {};
    return wait_on(lock.spin(), m_waiters, deadline);
  }

  // ---- lwIP callbacks (under the stack lock; never block) ----

  static err_t on_tcp_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err) {
    auto* self = static_cast<InetSocket*>(arg);
    if (self == nullptr) {
      if (p != nullptr) {
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
      }
      return ERR_OK;
    }
    if (p == nullptr) {
      self->m_eof = true;
    } else if (self->m_rd_shut) {
      // SHUT_RD: what arrives is dropped (and acknowledged, so the peer does not stall).
      tcp_recved(pcb, p->tot_len);
      pbuf_free(p);
      return ERR_OK;
    } else if (self->m_rx == nullptr) {
      self->m_rx = p;
    } else {
      pbuf_cat(self->m_rx, p);
    }
    self->changed();
    return ERR_OK;
  }

  static err_t on_tcp_sent(void* arg, struct tcp_pcb*, u16_t) {
    if (auto* self = static_cast<InetSocket*>(arg)) self->changed();
    return ERR_OK;
  }

  // The PCB is already freed when lwIP calls this.
  static void on_tcp_err(void* arg, err_t err) {
    auto* self = static_cast<InetSocket*>(arg);
    if (self == nullptr) return;
    self->m_tcp = nullptr;
    if (self->m_state == TcpState::Connecting) {
      self->m_error = err == ERR_RST ? Errno::kECONNREFUSED : err == ERR_ABRT ? Errno::kETIMEDOUT : errno_from(err);
    } else {
      self->m_error = err == ERR_RST ? Errno::kECONNRESET : err == ERR_ABRT ? Errno::kETIMEDOUT : errno_from(err);
    }
    self->m_has_error = true;
    self->m_state = TcpState::Closed;
    self->changed();
  }

  static err_t on_tcp_connected(void* arg, struct tcp_pcb*, err_t err) {
    auto* self = static_cast<InetSocket*>(arg);
    if (self == nullptr) return ERR_OK;
    if (err == ERR_OK) self->m_state = TcpState::Connected;
    self->changed();
    return ERR_OK;
  }

  static err_t on_tcp_accept(void* arg, struct tcp_pcb* newpcb, err_t err) {
    auto* self = static_cast<InetSocket*>(arg);
    if (self == nullptr || err != ERR_OK || newpcb == nullptr) return ERR_VAL;
    if (self->m_pending_count >= self->m_backlog) {
      tcp_abort(newpcb);
      return ERR_ABRT;
    }
    InetSocket* child = nullptr;
    if (net_socket_count() < kMaxInetSockets) {
      child = self->kernel().heap().make<InetSocket>(self->kernel(), socktype::kStream, self->protocol(), 0u);
    }
    if (child == nullptr) {
      tcp_abort(newpcb);
      return ERR_ABRT;
    }
    ++net_socket_count();
    // The child inherits the listener's options, as on Linux.
    child->options() = self->options();
    child->m_nodelay = self->m_nodelay;
    child->m_tos = self->m_tos;
    child->m_ttl = self->m_ttl;
    child->m_keep_idle_ms = self->m_keep_idle_ms;
    child->m_keep_intvl_ms = self->m_keep_intvl_ms;
    child->m_keep_cnt = self->m_keep_cnt;
    child->m_tcp = newpcb;
    child->m_state = TcpState::Connected;
    child->attach_tcp(newpcb);
    child->apply_options();
    // Counts against the listener's backlog in lwIP until accept() takes it.
    tcp_backlog_delayed(newpcb);
    child->m_next_pending = nullptr;
    if (self->m_pending_tail == nullptr) self->m_pending_head = child;
    else self->m_pending_tail->m_next_pending = child;
    self->m_pending_tail = child;
    ++self->m_pending_count;
    self->changed();
    return ERR_OK;
  }

  static void on_udp_recv(void* arg, struct udp_pcb*, struct pbuf* p, const ip_addr_t* addr, u16_t port) {
    auto* self = static_cast<InetSocket*>(arg);
    if (self == nullptr || self->m_rd_shut ||
        self->m_rx_bytes + p->tot_len > static_cast<u64>(self->options().rcvbuf)) {
      pbuf_free(p);  // a full receive queue drops, as Linux's does
      return;
    }
    Datagram* d = self->kernel().heap().make<Datagram>();
    if (d == nullptr) {
      pbuf_free(p);
      return;
    }
    d->p = p;
    ip_addr_copy(d->from, *addr);
    d->port = port;
    if (self->m_dgram_tail == nullptr) self->m_dgram_head = d;
    else self->m_dgram_tail->next = d;
    self->m_dgram_tail = d;
    self->m_rx_bytes += p->tot_len;
    self->changed();
  }

  // ---- Socket ----

  Result<void> bind(const SockAddr& address) override {
    ip_addr_t ip;
    u16 port;
    TRY(decode(address, &ip, &port));
    NetLock lock(kernel());
    if (!is_local(&ip)) return Errno::kEADDRNOTAVAIL;
    if (stream()) {
      if (m_tcp == nullptr || m_state != TcpState::Fresh || m_bound) return Errno::kEINVAL;
      const err_t e = tcp_bind(m_tcp, &ip, port);
      if (e != ERR_OK) return errno_from(e);
    } else {
      if (m_bound) return Errno::kEINVAL;
      const err_t e = udp_bind(m_udp, &ip, port);
      if (e != ERR_OK) return errno_from(e);
    }
    m_bound = true;
    return {};
  }

  Result<void> listen(i32 backlog) override {
    if (!stream()) return Errno::kEOPNOTSUPP;
    NetLock lock(kernel());
    const u8 lwip_backlog = static_cast<u8>(backlog < 1 ? 1 : backlog > 255 ? 255 : backlog);
    if (m_state == TcpState::Listening) {
      m_backlog = lwip_backlog;
      tcp_backlog_set(m_tcp, lwip_backlog);
      return {};
    }
    if (m_state != TcpState::Fresh || m_tcp == nullptr) return Errno::kEINVAL;
    if (!m_bound) {
      const err_t e = tcp_bind(m_tcp, IP4_ADDR_ANY, 0);
      if (e != ERR_OK) return errno_from(e);
      m_bound = true;
    }
    err_t e = ERR_OK;
    struct tcp_pcb* listener = tcp_listen_with_backlog_and_err(m_tcp, lwip_backlog, &e);
    if (listener == nullptr) return errno_from(e);
    m_tcp = listener;  // tcp_listen freed the old PCB and kept its arg
    tcp_arg(m_tcp, this);
    tcp_accept(m_tcp, on_tcp_accept);
    m_backlog = lwip_backlog;
    m_state = TcpState::Listening;
    return {};
  }

  bool listening() override {
    NetLock lock(kernel());
    return m_state == TcpState::Listening;
  }

  Result<Socket*> accept(u32 file_flags, SockAddr* peer) override {
    if (!stream()) return Errno::kEOPNOTSUPP;
    const u64 deadline = receive_deadline();
    NetLock lock(kernel());
    if (m_state != TcpState::Listening) return Errno::kEINVAL;
    while (m_pending_head == nullptr) {
      if (nonblocking()) return Errno::kEAGAIN;
      TRY(wait(lock, deadline));
      if (m_state != TcpState::Listening) return Errno::kEINVAL;
    }
    InetSocket* child = m_pending_head;
    m_pending_head = child->m_next_pending;
    if (m_pending_head == nullptr) m_pending_tail = nullptr;
    child->m_next_pending = nullptr;
    --m_pending_count;
    if (child->m_tcp != nullptr) tcp_backlog_accepted(child->m_tcp);
    child->set_status_flags(file_flags);
    if (peer != nullptr) {
      if (child->m_tcp != nullptr) encode(peer, &child->m_tcp->remote_ip, child->m_tcp->remote_port);
      else encode(peer, nullptr, 0);
    }
    return static_cast<Socket*>(child);
  }

  Result<void> connect(const SockAddr& address) override {
    if (!stream()) return connect_udp(address);
    ip_addr_t ip;
    u16 port;
    TRY(decode(address, &ip, &port));
    const u64 deadline = send_deadline();
    NetLock lock(kernel());
    switch (m_state) {
      case TcpState::Listening: return Errno::kEINVAL;
      case TcpState::Connected: return Errno::kEISCONN;
      case TcpState::Connecting: return nonblocking() ? Errno::kEALREADY : wait_connected(lock, deadline);
      case TcpState::Closed:
        // A failed connection may be retried on the same socket (Linux: back to TCP_CLOSE).
        m_has_error = false;
        m_eof = false;
        m_wr_shut = m_rd_shut = false;
        m_bound = false;
        if (!make_pcb()) return Errno::kENOBUFS;
        m_state = TcpState::Fresh;
        break;
      case TcpState::Fresh: break;
    }
    if (m_tcp == nullptr && !make_pcb()) return Errno::kENOBUFS;
    if (ip_addr_isany(&ip)) ip_addr_set_loopback(false, &ip);  // Linux: INADDR_ANY means this host
    const err_t e = tcp_connect(m_tcp, &ip, port, on_tcp_connected);
    if (e != ERR_OK) return errno_from(e);
    m_bound = true;
    m_state = TcpState::Connecting;
    if (nonblocking()) {
      // Over loopback the handshake completes when the lock drops; Linux still answers
      // EINPROGRESS for a nonblocking connect to 127.0.0.1, and so do we.
      return Errno::kEINPROGRESS;
    }
    return wait_connected(lock, deadline);
  }

  Result<void> wait_connected(NetLock& lock, u64 deadline) {
    while (m_state == TcpState::Connecting) TRY(wait(lock, deadline));
    if (m_state == TcpState::Connected) return {};
    // The failure is reported here, not again through SO_ERROR.
    m_has_error = false;
    return m_error;
  }

  Result<void> connect_udp(const SockAddr& address) {
    if (address.family() == af::kUnspec) {
      NetLock lock(kernel());
      udp_disconnect(m_udp);
      return {};
    }
    ip_addr_t ip;
    u16 port;
    TRY(decode(address, &ip, &port));
    NetLock lock(kernel());
    if (ip_addr_isany(&ip)) ip_addr_set_loopback(false, &ip);
    const err_t e = udp_connect(m_udp, &ip, port);
    if (e != ERR_OK) return errno_from(e);
    m_bound = true;
    return {};
  }

  Result<usize> send(const MsgIo& data, const SockAddr* to, SendControl& control, u32 flags) override {
    return stream() ? send_tcp(data, flags) : send_udp(data, to, flags);
  }

  Result<usize> send_tcp(const MsgIo& data, u32 flags) {
    const u64 total = data.total();
    const u64 deadline = send_deadline();
    const bool dont_wait = flags & msgflag::kDontWait;
    u8* bounce = static_cast<u8*>(kernel().heap().allocate(kBounce));
    if (bounce == nullptr) return Errno::kENOMEM;
    u64 done = 0;
    // What the call returns once it stops: Linux's rule is that a send that moved some bytes
    // reports them, and the error (or EAGAIN) only when none went.
    Errno error = Errno::kEIO;
    bool failed = false;
    auto finish = [&](Errno e) {
      error = e;
      failed = true;
    };
    {
      NetLock lock(kernel());
      for (;;) {
        if (m_has_error) {
          if (done == 0) m_has_error = false;
          finish(m_error);
          break;
        }
        if (m_state == TcpState::Connected && !m_wr_shut && m_tcp != nullptr && done == total) {
          break;
        }
        bool must_wait = false;
        if (m_state == TcpState::Connecting) {
          must_wait = true;
        } else if (m_state != TcpState::Connected || m_wr_shut || m_tcp == nullptr) {
          finish(Errno::kEPIPE);
          break;
        } else {
          const usize space = tcp_sndbuf(m_tcp);
          if (space == 0 || tcp_sndqueuelen(m_tcp) >= TCP_SND_QUEUELEN - 1) {
            must_wait = true;
          } else {
            const usize n = static_cast<usize>(min<u64>(min<u64>(space, kBounce), total - done));
            if (!data.get(bounce, done, n)) {
              finish(Errno::kEFAULT);
              break;
            }
            const bool more = done + n < total || (flags & msgflag::kMore);
            const err_t e =
                tcp_write(m_tcp, bounce, static_cast<u16_t>(n), TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0));
            if (e == ERR_MEM) {
              must_wait = true;  // segments or heap exhausted for now: wait for ACKs as for window
            } else if (e != ERR_OK) {
              finish(errno_from(e));
              break;
            } else {
              done += n;
              if (!more) tcp_output(m_tcp);
              continue;
            }
          }
        }
        if (!must_wait) continue;
        if (m_tcp != nullptr && m_state == TcpState::Connected) tcp_output(m_tcp);
        if (dont_wait) {
          finish(Errno::kEAGAIN);
          break;
        }
        auto w = wait(lock, deadline);
        if (w.is_error()) {
          finish(w.error());
          break;
        }
      }
      if (m_tcp != nullptr && m_state == TcpState::Connected && done > 0) tcp_output(m_tcp);
    }
    kernel().heap().free(bounce, kBounce);
    if (failed && done == 0) return error;
    return static_cast<usize>(done);
  }

  Result<usize> send_udp(const MsgIo& data, const SockAddr* to, u32 flags) {
    const u64 total = data.total();
    ip_addr_t ip;
    u16 port = 0;
    if (to != nullptr) TRY(decode(*to, &ip, &port));
    if (total > kUdpMaxPayload) return Errno::kEMSGSIZE;
    struct pbuf* p;
    {
      NetLock lock(kernel());
      p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(total), PBUF_RAM);
    }
    if (p == nullptr) return Errno::kENOBUFS;
    // PBUF_RAM is one contiguous buffer: the user's bytes go straight in, outside the lock.
    if (total > 0 && !data.get(p->payload, 0, static_cast<usize>(total))) {
      NetLock lock(kernel());
      pbuf_free(p);
      return Errno::kEFAULT;
    }
    NetLock lock(kernel());
    if (m_wr_shut) {
      pbuf_free(p);
      return Errno::kEPIPE;
    }
    err_t e;
    if (to != nullptr) {
      if (ip_addr_isany(&ip)) ip_addr_set_loopback(false, &ip);
      e = udp_sendto(m_udp, p, &ip, port);
    } else if (m_udp->flags & UDP_FLAGS_CONNECTED) {
      e = udp_send(m_udp, p);
    } else {
      pbuf_free(p);
      return Errno::kEDESTADDRREQ;
    }
    pbuf_free(p);
    m_bound = true;
    if (e != ERR_OK) return errno_from(e);
    return static_cast<usize>(total);
  }

  Result<usize> recv(const MsgIo& data, SockAddr* from, RecvControl& control, u32 flags, u32* msg_flags) override {
    if (from != nullptr) from->length = 0;
    return stream() ? recv_tcp(data, from, flags) : recv_udp(data, from, flags, msg_flags);
  }

  Result<usize> recv_tcp(const MsgIo& data, SockAddr* from, u32 flags) {
    const u64 total = data.total();
    const u64 deadline = receive_deadline();
    const bool peek = flags & msgflag::kPeek;
    NetLock lock(kernel());
    if (m_state == TcpState::Listening || (m_state == TcpState::Fresh)) return Errno::kENOTCONN;
    u64 done = 0;
    for (;;) {
      if (m_rx != nullptr && done < total && !(peek && done > 0)) {
        // Copy from the queued pbufs straight to the program.
        usize offset = 0;
        for (struct pbuf* q = m_rx; q != nullptr && done < total; q = q->next) {
          const usize n = static_cast<usize>(min<u64>(q->len, total - done));
          if (!data.put(done, q->payload, n)) {
            if (done == 0) return Errno::kEFAULT;
            break;
          }
          done += n;
          offset += n;
          if (n < q->len) break;
        }
        if (!peek) {
          m_rx = pbuf_free_header(m_rx, static_cast<u16_t>(offset));
          if (m_tcp != nullptr) tcp_recved(m_tcp, static_cast<u16_t>(offset));
        }
      }
      if (done == total || (done > 0 && (peek || !(flags & msgflag::kWaitAll)))) break;
      if (m_rx == nullptr && (m_eof || m_rd_shut)) break;
      if (m_has_error) {
        if (done > 0) break;
        m_has_error = false;
        return m_error;
      }
      if (m_state == TcpState::Closed) break;  // reset earlier, error already reported
      if (flags & msgflag::kDontWait) {
        if (done > 0) break;
        return Errno::kEAGAIN;
      }
      auto w = wait(lock, deadline);
      if (w.is_error()) {
        if (done > 0) break;
        return w.error();
      }
    }
    if (from != nullptr) from->length = 0;  // a stream socket reports no source address
    return static_cast<usize>(done);
  }

  Result<usize> recv_udp(const MsgIo& data, SockAddr* from, u32 flags, u32* msg_flags) {
    const u64 deadline = receive_deadline();
    NetLock lock(kernel());
    while (m_dgram_head == nullptr) {
      if (m_rd_shut) return usize{0};
      if (flags & msgflag::kDontWait) return Errno::kEAGAIN;
      TRY(wait(lock, deadline));
    }
    Datagram* d = m_dgram_head;
    const usize length = d->p->tot_len;
    const usize n = static_cast<usize>(min<u64>(length, data.total()));
    usize copied = 0;
    for (struct pbuf* q = d->p; q != nullptr && copied < n; q = q->next) {
      const usize piece = min<usize>(q->len, n - copied);
      if (!data.put(copied, q->payload, piece)) return Errno::kEFAULT;
      copied += piece;
    }
    if (from != nullptr) encode(from, &d->from, d->port);
    if (n < length) *msg_flags |= msgflag::kTrunc;
    if (!(flags & msgflag::kPeek)) {
      m_dgram_head = d->next;
      if (m_dgram_head == nullptr) m_dgram_tail = nullptr;
      m_rx_bytes -= length;
      pbuf_free(d->p);
      kernel().heap().destroy(d);
    }
    return (flags & msgflag::kTrunc) ? length : n;
  }

  Result<void> shutdown(i32 how) override {
    NetLock lock(kernel());
    if (stream()) {
      if (m_state != TcpState::Connected && m_state != TcpState::Connecting) return Errno::kENOTCONN;
    } else if (m_udp == nullptr || !(m_udp->flags & UDP_FLAGS_CONNECTED)) {
      return Errno::kENOTCONN;
    }
    if (how == shut::kRd || how == shut::kRdWr) m_rd_shut = true;
    if ((how == shut::kWr || how == shut::kRdWr) && !m_wr_shut) {
      m_wr_shut = true;
      if (stream() && m_tcp != nullptr && m_state == TcpState::Connected) tcp_shutdown(m_tcp, 0, 1);
    }
    changed();
    return {};
  }

  Result<void> local_name(SockAddr* out) override {
    NetLock lock(kernel());
    if (m_tcp != nullptr) encode(out, &m_tcp->local_ip, m_tcp->local_port);
    else if (m_udp != nullptr) encode(out, &m_udp->local_ip, m_udp->local_port);
    else encode(out, nullptr, 0);
    return {};
  }

  Result<void> peer_name(SockAddr* out) override {
    NetLock lock(kernel());
    if (stream()) {
      if (m_state != TcpState::Connected || m_tcp == nullptr) return Errno::kENOTCONN;
      encode(out, &m_tcp->remote_ip, m_tcp->remote_port);
      return {};
    }
    if (m_udp == nullptr || !(m_udp->flags & UDP_FLAGS_CONNECTED)) return Errno::kENOTCONN;
    encode(out, &m_udp->remote_ip, m_udp->remote_port);
    return {};
  }

  Result<void> set_option(i32 level, i32 name, const u8* value, u32 length) override {
    if (length < sizeof(i32)) return Errno::kEINVAL;
    i32 v;
    copy_bytes(&v, value, sizeof(v));
    NetLock lock(kernel());
    if (level == sol::kIp) {
      switch (name) {
        case ipopt::kTos: m_tos = static_cast<u8>(v & 0xfc); break;  // Linux keeps the DSCP bits
        case ipopt::kTtl:
          if (v == -1) v = 64;
          if (v < 1 || v > 255) return Errno::kEINVAL;
          m_ttl = static_cast<u8>(v);
          break;
        default: return Errno::kENOPROTOOPT;
      }
    } else if (level == sol::kTcp && stream()) {
      switch (name) {
        case tcpopt::kNoDelay: m_nodelay = v != 0; break;
        case tcpopt::kKeepIdle:
          if (v < 1 || v > 32767) return Errno::kEINVAL;
          m_keep_idle_ms = static_cast<u32>(v) * 1000;
          break;
        case tcpopt::kKeepIntvl:
          if (v < 1 || v > 32767) return Errno::kEINVAL;
          m_keep_intvl_ms = static_cast<u32>(v) * 1000;
          break;
        case tcpopt::kKeepCnt:
          if (v < 1 || v > 127) return Errno::kEINVAL;
          m_keep_cnt = static_cast<u32>(v);
          break;
        case tcpopt::kMaxSeg: break;  // accepted, lwIP's MSS is fixed
        default: return Errno::kENOPROTOOPT;
      }
    } else {
      return Errno::kENOPROTOOPT;
    }
    apply_options();
    return {};
  }

  Result<u32> get_option(i32 level, i32 name, u8* value, u32 capacity) override {
    i32 v;
    {
      NetLock lock(kernel());
      if (level == sol::kIp) {
        switch (name) {
          case ipopt::kTos: v = m_tos; break;
          case ipopt::kTtl: v = m_ttl; break;
          default: return Errno::kENOPROTOOPT;
        }
      } else if (level == sol::kTcp && stream()) {
        switch (name) {
          case tcpopt::kNoDelay: v = m_nodelay ? 1 : 0; break;
          case tcpopt::kMaxSeg: v = m_tcp != nullptr && m_tcp->mss != 0 ? m_tcp->mss : TCP_MSS; break;
          case tcpopt::kKeepIdle: v = static_cast<i32>((m_keep_idle_ms ? m_keep_idle_ms : TCP_KEEPIDLE_DEFAULT) / 1000); break;
          case tcpopt::kKeepIntvl: v = static_cast<i32>((m_keep_intvl_ms ? m_keep_intvl_ms : TCP_KEEPINTVL_DEFAULT) / 1000); break;
          case tcpopt::kKeepCnt: v = static_cast<i32>(m_keep_cnt ? m_keep_cnt : TCP_KEEPCNT_DEFAULT); break;
          default: return Errno::kENOPROTOOPT;
        }
      } else {
        return Errno::kENOPROTOOPT;
      }
    }
    const u32 n = min<u32>(capacity, sizeof(v));
    copy_bytes(value, &v, n);
    return n;
  }

  void socket_option_changed(i32 name) override {
    NetLock lock(kernel());
    apply_options();
  }

  i32 take_error() override {
    NetLock lock(kernel());
    if (!m_has_error) return 0;
    m_has_error = false;
    return static_cast<i32>(m_error);
  }

  Result<i64> socket_ioctl(u64 request, u64 argument) override {
    i32 n = 0;
    {
      NetLock lock(kernel());
      if (request == kFionread) {
        if (stream()) n = m_rx != nullptr ? m_rx->tot_len : 0;
        else n = m_dgram_head != nullptr ? m_dgram_head->p->tot_len : 0;
      } else if (request == kSiocOutq) {
        n = stream() && m_tcp != nullptr && m_state == TcpState::Connected ? TCP_SND_BUF - tcp_sndbuf(m_tcp) : 0;
      } else {
        return Errno::kENOTTY;
      }
    }
    if (!hal::copy_to_user(argument, &n, sizeof(n))) return Errno::kEFAULT;
    return i64{0};
  }

  u32 poll_events() override {
    NetLock lock(kernel());
    u32 events = 0;
    if (m_has_error) events |= pollev::kErr;
    if (!stream()) {
      if (m_dgram_head != nullptr || m_rd_shut) events |= pollev::kIn | pollev::kRdNorm;
      events |= pollev::kOut | pollev::kWrNorm;
      return events;
    }
    switch (m_state) {
      case TcpState::Fresh: events |= pollev::kOut | pollev::kWrNorm | pollev::kHup; break;
      case TcpState::Listening:
        if (m_pending_head != nullptr) events |= pollev::kIn | pollev::kRdNorm;
        break;
      case TcpState::Connecting: break;
      case TcpState::Connected:
        if (m_rx != nullptr || m_eof || m_rd_shut) events |= pollev::kIn | pollev::kRdNorm;
        if (m_eof) events |= pollev::kRdHup;
        if (m_eof && m_wr_shut) events |= pollev::kHup;
        if (!m_wr_shut && m_tcp != nullptr && tcp_sndbuf(m_tcp) > 0 &&
            tcp_sndqueuelen(m_tcp) < TCP_SND_QUEUELEN - 1)
          events |= pollev::kOut | pollev::kWrNorm;
        break;
      case TcpState::Closed:
        events |= pollev::kIn | pollev::kRdNorm | pollev::kOut | pollev::kWrNorm | pollev::kHup;
        break;
    }
    return events;
  }

  void on_last_close() override {
    InetSocket* pending = nullptr;
    {
      NetLock lock(kernel());
      if (m_tcp != nullptr) {
        struct tcp_pcb* pcb = m_tcp;
        m_tcp = nullptr;
        const bool listening = pcb->state == LISTEN;
        detach_tcp(pcb);
        if (!listening && options().linger_on && options().linger_seconds == 0) {
          tcp_abort(pcb);  // SO_LINGER {1, 0}: reset, as Linux does
        } else if (!listening && m_rx != nullptr) {
          tcp_abort(pcb);  // unread data at close: Linux resets the connection too
        } else if (tcp_close(pcb) != ERR_OK) {
          tcp_abort(pcb);  // no memory for the FIN: reset instead
        }
      }
      if (m_udp != nullptr) {
        udp_remove(m_udp);
        m_udp = nullptr;
      }
      if (m_rx != nullptr) pbuf_free(m_rx);
      m_rx = nullptr;
      while (Datagram* d = m_dgram_head) {
        m_dgram_head = d->next;
        pbuf_free(d->p);
        kernel().heap().destroy(d);
      }
      pending = m_pending_head;
      m_pending_head = m_pending_tail = nullptr;
      g_last_count = --net_socket_count();
    }
    // Connections nobody accepted: closing them takes the lock again, so outside it.
    while (pending != nullptr) {
      InetSocket* next = pending->m_next_pending;
      pending->m_next_pending = nullptr;
      pending->release();
      pending = next;
    }
    Heap& heap = kernel().heap();
    this->~InetSocket();
    heap.free(this, sizeof(InetSocket));
  }

 private:
  struct tcp_pcb* m_tcp = nullptr;
  struct udp_pcb* m_udp = nullptr;
  TcpState m_state = TcpState::Fresh;
  bool m_bound = false;
  bool m_eof = false;      // FIN received
  bool m_rd_shut = false;  // shutdown(SHUT_RD)
  bool m_wr_shut = false;  // shutdown(SHUT_WR)
  bool m_has_error = false;
  bool m_nodelay = false;
  u8 m_tos = 0;
  u8 m_ttl = 64;
  u8 m_backlog = 0;
  Errno m_error = Errno::kEIO;
  u32 m_keep_idle_ms = 0, m_keep_intvl_ms = 0, m_keep_cnt = 0;
  // TCP: received data not yet read, a pbuf chain.
  struct pbuf* m_rx = nullptr;
  // UDP: received datagrams.
  Datagram* m_dgram_head = nullptr;
  Datagram* m_dgram_tail = nullptr;
  u64 m_rx_bytes = 0;
  // A listener's accepted connections, oldest first, each holding one reference.
  InetSocket* m_pending_head = nullptr;
  InetSocket* m_pending_tail = nullptr;
  InetSocket* m_next_pending = nullptr;
  u32 m_pending_count = 0;
  IntrusiveList<Thread, &Thread::wait_node> m_waiters;
};

static_assert(sizeof(InetSocket) <= Heap::kMaxObject);

}  // namespace

Result<Socket*> inet_create(Kernel& kernel, i32 type, i32 protocol, u32 flags) {
  if (type == socktype::kStream) {
    if (protocol != 0 && protocol != kIpProtoTcp) return Errno::kEPROTONOSUPPORT;
  } else if (type == socktype::kDgram) {
    if (protocol != 0 && protocol != kIpProtoUdp) return Errno::kEPROTONOSUPPORT;
  } else {
    return Errno::kESOCKTNOSUPPORT;
  }
  TRY(net_stack_start(kernel));
  {
    NetLock lock(kernel);
    if (net_socket_count() >= kMaxInetSockets) return Errno::kENFILE;
    ++net_socket_count();
  }
  InetSocket* s = kernel.heap().make<InetSocket>(kernel, type, protocol, flags);
  if (s == nullptr) {
    NetLock lock(kernel);
    --net_socket_count();
    return Errno::kENOMEM;
  }
  bool ok;
  {
    NetLock lock(kernel);
    ok = s->make_pcb();
  }
  if (!ok) {
    s->release();  // on_last_close gives the count back
    return Errno::kENOBUFS;
  }
  return static_cast<Socket*>(s);
}

u32 inet_socket_count() { return g_last_count; }

}  // namespace tandem
