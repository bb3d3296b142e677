// core/net/stack.cpp: the kernel's one lwIP. See stack.h for the threading model and reset.
#include "core/net/stack.h"

#include "core/fs/vfs.h"
#include "core/kernel.h"
#include "core/lib/assert.h"
#include "core/lib/print.h"
#include "core/net/netdev.h"

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

// The bounds of lwIP's state, named by the linker for the two sections every lwIP global goes
// to (core/net/lwip/lwip_sections.h; hal/real/linker.ld names them for the kernel image).
extern "C" char __start_tandem_lwip_data[], __stop_tandem_lwip_data[];
extern "C" char __start_tandem_lwip_bss[], __stop_tandem_lwip_bss[];

namespace tandem {
namespace {

// lwIP's initialised globals are a few dozen bytes (port counters, the ISN seed...); the image
// taken before lwIP first runs must hold them all.
constexpr usize kMaxDataImage = 4096;

struct Stack {
  SpinLock lock{LockRank::NetStack};
  // The owner and the deadline are read without the lock (fast checks, CPU 0's timer) and
  // written under it, except by the shutdown (see there). Plain atomics, not core/lib's Atomic:
  // the shutdown runs when the simulated machine has stopped, where no scheduling point may be.
  Kernel* owner = nullptr;
  u64 deadline = 0;  // for CPU 0's timer; 0: none
  // The rest is guarded by lock.
  NetDevice* device = nullptr;
  struct netif eth = {};
  u64 readiness_changed = 0;  // readiness_bit()s of the sockets changed under the lock
  u32 sockets = 0;
  // The last NetLock taker (thread id and the code that constructed the NetLock), for dumps.
  u32 holder_tid = 0;
  u64 holder_site = 0;
  // The run's report (stack.h): the digest grows with every packet lwIP takes in.
  NetRunReport report;
  bool image_taken = false;
  usize image_length = 0;
  u8 data_image[kMaxDataImage] = {};
  alignas(8) u8 tx_frame[kMaxFrame] = {};
};
Stack g_stack;

// Copies without ASan's interceptors: the sections hold ASan's redzones between lwIP's globals
// when the simulator is built with it, and this copy must move them as plain bytes. Volatile
// keeps the compiler from turning the loop back into a memcpy call.
__attribute__((no_sanitize("address"))) void raw_copy(u8* dst, const u8* src, usize n) {
  volatile u8* d = dst;
  const volatile u8* s = src;
  for (usize i = 0; i < n; ++i) d[i] = s[i];
}
__attribute__((no_sanitize("address"))) void raw_zero(u8* dst, usize n) {
  volatile u8* d = dst;
  for (usize i = 0; i < n; ++i) d[i] = 0;
}

constexpr u64 kFnvOffset = 0xcbf29ce484222325ull, kFnvPrime = 0x100000001b3ull;

__attribute__((no_sanitize("address"))) u64 fnv_raw(u64 hash, const u8* bytes, usize n) {
  const volatile u8* b = bytes;
  for (usize i = 0; i < n; ++i) hash = (hash ^ b[i]) * kFnvPrime;
  return hash;
}

// lwIP 2.1.3's tcp_receive() ACKs every zero-length segment that falls outside the receive
// window, and with a zero window (RCV.WND = 0) every segment does, although RFC 793 accepts an
// empty segment with SEG.SEQ = RCV.NXT then. When both ends of a connection are lwIP's (127.0.0.1)
// and both have zero windows (two programs that write and do not read), each ACK answers the
// other's: an endless ACK storm inside one netif_poll(), with the stack lock held. The loopback
// path therefore eats a pure ACK that the receiving PCB would only answer with an ACK: it carries
// nothing new (same ACK number, same window), arrives at a zero window, at RCV.NXT. A real peer
// (the card) does not do this, so only looped packets are looked at. On the loopback interface
// nothing is lost, so no duplicate-ACK retransmission depends on these.
bool is_zero_window_ack_echo(const struct pbuf* p, const struct netif* input_netif) {
  if (input_netif == nullptr || input_netif->name[0] != 'l' || input_netif->name[1] != 'o') return false;
  const auto* b = static_cast<const u8*>(p->payload);
  if (p->len < 20) return false;
  const usize ihl = (b[0] & 0x0f) * 4u;
  if (b[9] != 6 || ihl < 20 || p->len < ihl + 20) return false;
  const usize total = (usize{b[2]} << 8) | b[3];
  const u8* t = b + ihl;
  const usize doff = (t[12] >> 4) * 4u;
  if (doff < 20 || total != ihl + doff) return false;  // carries data (or is malformed)
  const u8 flags = t[13];
  if ((flags & 0x10) == 0 || (flags & (0x01 | 0x02 | 0x04 | 0x20)) != 0) return false;  // ACK only
  auto be32 = [](const u8* x) { return (u32{x[0]} << 24) | (u32{x[1]} << 16) | (u32{x[2]} << 8) | x[3]; };
  const u16 sport = static_cast<u16>((t[0] << 8) | t[1]);
  const u16 dport = static_cast<u16>((t[2] << 8) | t[3]);
  const u32 seq = be32(t + 4), ack = be32(t + 8);
  const u32 window = (u32{t[14]} << 8) | t[15];
  u32 src, dst;
  copy_bytes(&src, b + 12, 4);
  copy_bytes(&dst, b + 16, 4);
  for (struct tcp_pcb* pcb = tcp_active_pcbs; pcb != nullptr; pcb = pcb->next) {
    if (pcb->local_port != dport || pcb->remote_port != sport || ip_addr_get_ip4_u32(&pcb->local_ip) != dst ||
        ip_addr_get_ip4_u32(&pcb->remote_ip) != src)
      continue;
    return pcb->state == ESTABLISHED && pcb->rcv_wnd == 0 && seq == pcb->rcv_nxt && ack == pcb->lastack &&
           window == pcb->snd_wnd;
  }
  return false;
}

void digest_packet(const struct pbuf* p) {
  u64 hash = g_stack.report.wire_digest;
  for (const struct pbuf* q = p; q != nullptr; q = q->next) hash = fnv_raw(hash, static_cast<const u8*>(q->payload), q->len);
  g_stack.report.wire_digest = hash;
  ++g_stack.report.packets;
}

Kernel* load_owner() { return __atomic_load_n(&g_stack.owner, __ATOMIC_ACQUIRE); }
void store_owner(Kernel* k) { __atomic_store_n(&g_stack.owner, k, __ATOMIC_RELEASE); }
u64 load_deadline() { return __atomic_load_n(&g_stack.deadline, __ATOMIC_RELAXED); }
void store_deadline(u64 v) { __atomic_store_n(&g_stack.deadline, v, __ATOMIC_RELAXED); }
NetMemoryStats memory_stats_unlocked();

u8* data_begin() { return reinterpret_cast<u8*>(__start_tandem_lwip_data); }
usize data_length() { return static_cast<usize>(__stop_tandem_lwip_data - __start_tandem_lwip_data); }
u8* bss_begin() { return reinterpret_cast<u8*>(__start_tandem_lwip_bss); }
usize bss_length() { return static_cast<usize>(__stop_tandem_lwip_bss - __start_tandem_lwip_bss); }

// Whether lwIP has anything that needs its timers now: a card (ARP aging, reassembly) or active
// TCP PCBs (retransmission, delayed ACKs, FIN_WAIT). Without either, CPU 0 may stay tickless.
// TIME_WAIT PCBs alone do not keep it awake: they expire at the next timer that runs anyway,
// and lwIP recycles the oldest when it needs a PCB.
bool needs_timers() { return g_stack.device != nullptr || tcp_active_pcbs != nullptr; }

// Publishes lwIP's next timeout for CPU 0. Under the lock. A deadline earlier than the one CPU 0
// may have armed is announced to it by IPI (an idle CPU 0 re-arms when the IPI arrives).
void publish_deadline() {
  u64 next = 0;
  if (needs_timers()) {
    const u32 sleep_ms = sys_timeouts_sleeptime();
    if (sleep_ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE) next = hal::monotonic_ns() + (u64{sleep_ms} + 1) * 1'000'000;
  }
  const u64 old = load_deadline();
  store_deadline(next);
  // lwIP counts in milliseconds, so the same timeout computed again lands anywhere in a 1 ms
  // window: only a timeout earlier by more than that is worth interrupting CPU 0 for (its timer
  // then fires at most kTimerSlackNs late, far inside TCP's tolerances). Otherwise nearly every
  // socket call on another CPU sent CPU 0 an IPI.
  constexpr u64 kTimerSlackNs = 2'000'000;
  if (next != 0 && (old == 0 || next + kTimerSlackNs < old) && hal::cpu_id() != 0) send_reschedule_ipi(0);
}

// ---- The Ethernet netif ------------------------------------------------------------------------

err_t eth_linkoutput(struct netif*, struct pbuf* p) {
  NetDevice* device = g_stack.device;
  if (device == nullptr) return ERR_IF;
  if (p->tot_len > kMaxFrame || p->tot_len < kEthernetHeader) return ERR_BUF;
  usize length = pbuf_copy_partial(p, g_stack.tx_frame, p->tot_len, 0);
  // Ethernet's minimum frame (60 bytes without the FCS): lwIP does not pad, some peers insist.
  constexpr usize kMinFrame = 60;
  if (length < kMinFrame) {
    fill_bytes(g_stack.tx_frame + length, 0, kMinFrame - length);
    length = kMinFrame;
  }
  // A full transmit ring is a lost frame to lwIP: ERR_MEM keeps a TCP segment queued and it goes
  // again on the next ACK or timer.
  if (!device->transmit(g_stack.tx_frame, length)) {
    LINK_STATS_INC(link.memerr);
    return ERR_MEM;
  }
  LINK_STATS_INC(link.xmit);
  return ERR_OK;
}

err_t eth_netif_init(struct netif* netif) {
  netif->name[0] = 'e';
  netif->name[1] = 'n';
  netif->output = etharp_output;
  netif->linkoutput = eth_linkoutput;
  netif->mtu = 1500;
  netif->hwaddr_len = ETH_HWADDR_LEN;
  copy_bytes(netif->hwaddr, g_stack.device->mac(), ETH_HWADDR_LEN);
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
  return ERR_OK;
}

// Under the stack lock: one received frame into lwIP.
void deliver_frame(const void* frame, usize length) {
  if (g_stack.device == nullptr || length < kEthernetHeader || length > kMaxFrame) return;
  struct pbuf* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(length), PBUF_POOL);
  if (p == nullptr) {
    // Out of pool buffers: the frame is dropped, as a full NIC queue would drop it.
    LINK_STATS_INC(link.memerr);
    LINK_STATS_INC(link.drop);
    return;
  }
  pbuf_take(p, frame, static_cast<u16_t>(length));
  LINK_STATS_INC(link.recv);
  if (g_stack.eth.input(p, &g_stack.eth) != ERR_OK) pbuf_free(p);
}

// The card's receive callback: CPU 0, interrupts off, no driver lock held. The stack polls the
// card with its lock held (net_device_work), so a whole batch of frames takes the lock once
// and tells pollers once; a poll from elsewhere (a test driving the card) takes it per frame.
void on_frame(void* context, const void* frame, usize length) {
  if (g_stack.lock.held_by_current_cpu()) {
    deliver_frame(frame, length);
    return;
  }
  NetLock lock(*static_cast<Kernel*>(context));
  deliver_frame(frame, length);
}

bool parse_dotted(const char*& p, u32* out) {
  u32 value = 0;
  for (int part = 0; part < 4; ++part) {
    if (*p < '0' || *p > '9') return false;
    u32 octet = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      octet = octet * 10 + u32(*p++ - '0');
      if (++digits > 3 || octet > 255) return false;
    }
    value = (value << 8) | octet;
    if (part < 3 && *p++ != '.') return false;
  }
  *out = value;
  return true;
}

// The value of `key=` in a space-separated command line, or null.
const char* find_option(const char* cmdline, const char* key) {
  const usize n = string_length(key);
  for (const char* p = cmdline; *p != 0; ++p) {
    if ((p == cmdline || p[-1] == ' ') && compare_bytes(p, key, n) == 0) return p + n;
  }
  return nullptr;
}

}  // namespace

bool parse_net_config(const char* cmdline, NetConfig* config) {
  NetConfig parsed = *config;
  if (cmdline != nullptr) {
    if (const char* p = find_option(cmdline, "ip=")) {
      if (!parse_dotted(p, &parsed.address)) return false;
      if (*p == '/') {
        ++p;
        u32 bits = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 3) {
          bits = bits * 10 + u32(*p++ - '0');
          ++digits;
        }
        if (digits == 0 || bits > 32) return false;
        parsed.netmask = bits == 0 ? 0 : ~u32{0} << (32 - bits);
      }
      if (*p != 0 && *p != ' ') return false;
    }
    if (const char* p = find_option(cmdline, "gw=")) {
      if (!parse_dotted(p, &parsed.gateway) || (*p != 0 && *p != ' ')) return false;
    }
  }
  *config = parsed;
  return true;
}

// ---- NetLock -------------------------------------------------------------------------------------

NetLock::NetLock(Kernel& kernel) : m_kernel(kernel), m_flags(hal::irq_save()) {
  g_stack.lock.acquire();
  Thread* self = Kernel::current_thread();
  g_stack.holder_tid = self != nullptr ? self->tid : 0;
  g_stack.holder_site = reinterpret_cast<u64>(__builtin_return_address(0));
}

void net_dump_state() {
  const SpinLock& l = g_stack.lock;
  klog("state: stack lock: owner cpu %d, contended %u times; last taken by tid %u at %016lx", l.debug_owner_cpu(),
       l.debug_contended(), g_stack.holder_tid,
       static_cast<unsigned long>(g_stack.holder_site));
}

SpinLock& NetLock::spin() { return g_stack.lock; }

namespace {
// Whether some netif has looped packets waiting for netif_poll_all().
bool loopback_pending() {
  struct netif* n;
  NETIF_FOREACH(n) {
    if (n->loop_first != nullptr) return true;
  }
  return false;
}
}  // namespace

bool NetLock::settle() {
  if (load_owner() != &m_kernel) return false;
  // Loopback packets wait in the loop netif's queue until polled (NO_SYS): deliver them now,
  // including whatever their delivery sends back.
  const bool delivered = loopback_pending();
  if (delivered) netif_poll_all();
  publish_deadline();
  const u64 changed = g_stack.readiness_changed;
  g_stack.readiness_changed = 0;
  // The readiness queue's lock ranks above the stack lock: tell pollers right here.
  if (changed != 0) {
    if (Vfs* vfs = m_kernel.vfs.load()) vfs->notify_readiness(changed);
  }
  return delivered || changed != 0;
}

void NetLock::unlock() {
  if (!m_held) return;
  m_held = false;
  // A call into lwIP completes its local (loopback) exchange before the caller looks at the
  // result, and pollers hear of what changed.
  settle();
  g_stack.lock.release();
  hal::irq_restore(m_flags);
}

u32& net_socket_count() {
  DEBUG_ASSERT(g_stack.lock.held_by_current_cpu());
  return g_stack.sockets;
}

void net_note_readiness_changed(const void* key) {
  DEBUG_ASSERT(g_stack.lock.held_by_current_cpu());
  g_stack.readiness_changed |= readiness_bit(key);
}

// ---- Start, shutdown -----------------------------------------------------------------------------

Result<void> net_stack_start(Kernel& kernel) {
  if (load_owner() == &kernel) return {};
  hal::IrqFlags flags = hal::irq_save();
  g_stack.lock.acquire();
  Kernel* owner = load_owner();
  if (owner == nullptr) {
    if (!g_stack.image_taken) {
      // Nothing of lwIP has run yet: its data section holds the program's initial values.
      VERIFY(data_length() <= kMaxDataImage);
      g_stack.image_length = data_length();
      raw_copy(g_stack.data_image, data_begin(), g_stack.image_length);
      g_stack.image_taken = true;
    }
    lwip_init();  // adds the loopback netif, 127.0.0.1/8
    g_stack.report = NetRunReport{};
    g_stack.report.valid = true;
    g_stack.report.init_fingerprint =
        fnv_raw(fnv_raw(kFnvOffset, data_begin(), data_length()), bss_begin(), bss_length());
    g_stack.report.wire_digest = kFnvOffset;
    store_owner(&kernel);
    owner = &kernel;
    publish_deadline();
  }
  g_stack.lock.release();
  hal::irq_restore(flags);
  if (owner != &kernel) return Errno::kENOBUFS;
  return {};
}

bool net_stack_running(Kernel& kernel) { return load_owner() == &kernel; }

void net_stack_shutdown(Kernel& kernel, bool machine_stopped) {
  // ~Kernel calls this once no CPU runs the kernel any more (the simulator's machine has
  // stopped): nothing can call into lwIP for it, so no lock and no HAL call here. Another kernel
  // instance in the process only reads the owner (and gets ENOBUFS) until the release store at
  // the end hands lwIP over.
  if (load_owner() != &kernel) return;
  // The card's owner stops it (netdev_shutdown); the stack only forgets it.
  g_stack.device = nullptr;
  g_stack.report.memory = memory_stats_unlocked();
  // Every lwIP global back to its value at program load: PCB lists, netif list, timeouts,
  // tcp_ticks, the ISN, port counters, statistics, ARP table. The pools and the heap are rebuilt
  // by the next lwip_init().
  raw_copy(data_begin(), g_stack.data_image, g_stack.image_length);
  raw_zero(bss_begin(), bss_length());
  fill_bytes(&g_stack.eth, 0, sizeof(g_stack.eth));
  g_stack.readiness_changed = 0;
  g_stack.sockets = 0;
  // A run that failed while a CPU held the stack lock (a panic, a broken invariant) left it
  // taken: the next kernel in this process must find it free. (A caller that shuts the stack
  // down from a running kernel holds the lock itself and releases it afterwards.)
  if (machine_stopped) {
    g_stack.lock.forget_holders();
    g_stack.holder_tid = 0;
    g_stack.holder_site = 0;
  }
  store_deadline(0);
  store_owner(nullptr);
}

Result<void> net_stack_attach_device(Kernel& kernel, NetDevice& device, const NetConfig& config) {
  TRY(net_stack_start(kernel));
  {
    NetLock lock(kernel);
    if (g_stack.device != nullptr) return Errno::kEBUSY;
    g_stack.device = &device;
    ip4_addr_t address, netmask, gateway;
    ip4_addr_set_u32(&address, lwip_htonl(config.address));
    ip4_addr_set_u32(&netmask, lwip_htonl(config.netmask));
    ip4_addr_set_u32(&gateway, lwip_htonl(config.gateway));
    if (netif_add(&g_stack.eth, &address, &netmask, &gateway, nullptr, eth_netif_init, ethernet_input) == nullptr) {
      g_stack.device = nullptr;
      return Errno::kEIO;
    }
    netif_set_default(&g_stack.eth);
    netif_set_up(&g_stack.eth);
    netif_set_link_up(&g_stack.eth);
  }
  device.set_receiver(on_frame, &kernel);
  return {};
}

// ---- Timers --------------------------------------------------------------------------------------

namespace {
// Under the lock, when the card's poll says its transmit ring had been full and has room again:
// every TCP connection with a segment or an ACK that the ring refused sends it now.
// lwIP keeps such a segment in `unsent` and such an ACK as TF_ACK_NOW, and would otherwise try
// again only at its next timer: 250 ms for the ACK (a window update the peer waits for), the
// retransmission timeout for data. tcp_output sends nothing for a connection that has nothing
// it may send (closed window, Nagle).
void resume_transmit() {
  for (struct tcp_pcb* pcb = tcp_active_pcbs; pcb != nullptr; pcb = pcb->next) {
    if (pcb->unsent != nullptr || (pcb->flags & TF_ACK_NOW) != 0) tcp_output(pcb);
  }
}
}  // namespace

void net_stack_on_timer(Kernel& kernel) {
  if (load_owner() != &kernel) return;
  NetLock lock(kernel);
  if (load_owner() != &kernel) return;
  // Under the lock: the driver's lock ranks below it, and on_frame finds it held.
  if (g_stack.device != nullptr && g_stack.device->poll()) resume_transmit();
  sys_check_timeouts();
}

void net_device_work(Kernel& kernel, NetDevice& device) {
  if (load_owner() != &kernel) {
    device.poll();  // no stack: the driver drops what arrives (no receiver) and reclaims
    return;
  }
  NetLock lock(kernel);
  if (device.poll()) resume_transmit();
}

u64 net_stack_deadline(Kernel& kernel) {
  if (load_owner() != &kernel) return 0;
  return load_deadline();
}

NetRunReport net_last_run_report() { return g_stack.report; }

namespace {
NetMemoryStats memory_stats_unlocked() {
  NetMemoryStats out;
  static_assert(MEMP_MAX <= 32);
  out.pool_count = MEMP_MAX;
  for (u32 i = 0; i < MEMP_MAX; ++i) {
    out.pool_used[i] = lwip_stats.memp[i]->used;
    out.pool_max[i] = lwip_stats.memp[i]->max;
    out.pool_errors += lwip_stats.memp[i]->err;
  }
  out.heap_used = lwip_stats.mem.used;
  out.heap_max = lwip_stats.mem.max;
  for (struct tcp_pcb* pcb = tcp_active_pcbs; pcb != nullptr; pcb = pcb->next) ++out.tcp_pcbs;
  for (struct tcp_pcb* pcb = tcp_tw_pcbs; pcb != nullptr; pcb = pcb->next) ++out.tcp_pcbs;
  for (struct tcp_pcb_listen* pcb = tcp_listen_pcbs.listen_pcbs; pcb != nullptr; pcb = pcb->next) ++out.tcp_pcbs;
  return out;
}
}  // namespace

NetMemoryStats net_memory_stats(Kernel& kernel) {
  NetLock lock(kernel);
  if (load_owner() != &kernel) return NetMemoryStats{};
  return memory_stats_unlocked();
}

}  // namespace tandem

// ---- lwIP's platform hooks (core/net/lwip/arch/cc.h) ---------------------------------------------

extern "C" {

u32_t sys_now(void) { return static_cast<u32_t>(hal::monotonic_ns() / 1'000'000); }

uint32_t tandem_lwip_rand(void) {
  uint32_t value;
  hal::random_bytes(&value, sizeof(value));
  return value;
}

void tandem_lwip_diag(const char* format, ...) {
  char line[160];
  va_list args;
  va_start(args, format);
  tandem::vformat(line, sizeof(line), format, args);
  va_end(args);
  tandem::klog("lwip: %s", line);
}

int tandem_lwip_ip4_input_hook(struct pbuf* p, struct netif* input_netif) {
  tandem::digest_packet(p);
  if (tandem::is_zero_window_ack_echo(p, input_netif)) {
    pbuf_free(p);  // eaten: lwIP would answer it with the same ACK (see above)
    return 1;
  }
  return 0;
}

void tandem_lwip_assert(const char* message, const char* file, int line) { tandem::verify_failed(message, file, line); }

}  // extern "C"
