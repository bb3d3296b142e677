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
  Atomic<Kernel*> owner{nullptr};  // written under lock; read without it for fast checks
  Atomic<u64> deadline{0};         // for CPU 0's timer; 0: none
  // The rest is guarded by lock.
  NetDevice* device = nullptr;
  struct netif eth = {};
  bool readiness_changed = false;
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

u8* data_begin() { return reinterpret_cast<u8*>(__start_tandem_lwip_data); }
usize data_length() { return static_cast<usize>(__stop_tandem_lwip_data - __start_tandem_lwip_data); }
u8* bss_begin() { return reinterpret_cast<u8*>(__start_tandem_lwip_bss); }
usize bss_length() { return static_cast<usize>(__stop_tandem_lwip_bss - __start_tandem_lwip_bss); }

// Whether lwIP has anything that needs its timers now: a card (ARP aging, reassembly) or TCP
// PCBs (retransmission, delayed ACKs, TIME_WAIT). Without either, CPU 0 may stay tickless.
bool needs_timers() {
  return g_stack.device != nullptr || tcp_active_pcbs != nullptr || tcp_tw_pcbs != nullptr;
}

// Publishes lwIP's next timeout for CPU 0. Under the lock. A deadline earlier than the one CPU 0
// may have armed is announced to it by IPI (an idle CPU 0 re-arms when the IPI arrives).
void publish_deadline() {
  u64 next = 0;
  if (needs_timers()) {
    const u32 sleep_ms = sys_timeouts_sleeptime();
    if (sleep_ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE) next = hal::monotonic_ns() + (u64{sleep_ms} + 1) * 1'000'000;
  }
  const u64 old = g_stack.deadline.load(MemoryOrder::Relaxed);
  g_stack.deadline.store(next, MemoryOrder::Relaxed);
  if (next != 0 && (old == 0 || next < old) && hal::cpu_id() != 0) hal::send_ipi(0, hal::Ipi::Reschedule);
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

// The card's receive callback: CPU 0, interrupts off, no driver lock held.
void on_frame(void* context, const void* frame, usize length) {
  Kernel& kernel = *static_cast<Kernel*>(context);
  NetLock lock(kernel);
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

NetLock::NetLock(Kernel& kernel) : m_kernel(kernel), m_flags(hal::irq_save()) { g_stack.lock.acquire(); }

SpinLock& NetLock::spin() { return g_stack.lock; }

void NetLock::unlock() {
  if (!m_held) return;
  m_held = false;
  bool notify = false;
  if (g_stack.owner.load(MemoryOrder::Relaxed) == &m_kernel) {
    // Loopback packets wait in the loop netif's queue until polled (NO_SYS): deliver them now,
    // including whatever their delivery sends back, so a call into lwIP completes its local
    // exchange before the caller looks at the result.
    netif_poll_all();
    publish_deadline();
    notify = g_stack.readiness_changed;
    g_stack.readiness_changed = false;
  }
  g_stack.lock.release();
  hal::irq_restore(m_flags);
  if (notify) {
    if (Vfs* vfs = m_kernel.vfs.load()) vfs->notify_readiness();
  }
}

void net_note_readiness_changed() {
  DEBUG_ASSERT(g_stack.lock.held_by_current_cpu());
  g_stack.readiness_changed = true;
}

// ---- Start, shutdown -----------------------------------------------------------------------------

Result<void> net_stack_start(Kernel& kernel) {
  if (g_stack.owner.load() == &kernel) return {};
  hal::IrqFlags flags = hal::irq_save();
  g_stack.lock.acquire();
  Kernel* owner = g_stack.owner.load();
  if (owner == nullptr) {
    if (!g_stack.image_taken) {
      // Nothing of lwIP has run yet: its data section holds the program's initial values.
      VERIFY(data_length() <= kMaxDataImage);
      g_stack.image_length = data_length();
      raw_copy(g_stack.data_image, data_begin(), g_stack.image_length);
      g_stack.image_taken = true;
    }
    lwip_init();  // adds the loopback netif, 127.0.0.1/8
    g_stack.owner.store(&kernel);
    owner = &kernel;
    publish_deadline();
  }
  g_stack.lock.release();
  hal::irq_restore(flags);
  if (owner != &kernel) return Errno::kENOBUFS;
  return {};
}

bool net_stack_running(Kernel& kernel) { return g_stack.owner.load() == &kernel; }

void net_stack_shutdown(Kernel& kernel) {
  if (g_stack.owner.load() != &kernel) return;
  NetDevice* device = nullptr;
  {
    SpinLockGuard guard(g_stack.lock);
    device = g_stack.device;
    g_stack.device = nullptr;
  }
  if (device != nullptr) device->set_receiver(nullptr, nullptr);
  SpinLockGuard guard(g_stack.lock);
  // Every lwIP global back to its value at program load: PCB lists, netif list, timeouts,
  // tcp_ticks, the ISN, port counters, statistics, ARP table. The pools and the heap are rebuilt
  // by the next lwip_init().
  raw_copy(data_begin(), g_stack.data_image, g_stack.image_length);
  raw_zero(bss_begin(), bss_length());
  fill_bytes(&g_stack.eth, 0, sizeof(g_stack.eth));
  g_stack.readiness_changed = false;
  g_stack.deadline.store(0);
  g_stack.owner.store(nullptr);
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

void net_stack_on_timer(Kernel& kernel) {
  if (g_stack.owner.load(MemoryOrder::Relaxed) != &kernel) return;
  NetDevice* device;
  {
    SpinLockGuard guard(g_stack.lock);
    device = g_stack.device;
  }
  // Outside the lock: poll() calls on_frame, which takes it.
  if (device != nullptr) device->poll();
  NetLock lock(kernel);
  if (g_stack.owner.load(MemoryOrder::Relaxed) != &kernel) return;
  sys_check_timeouts();
}

u64 net_stack_deadline(Kernel& kernel) {
  if (g_stack.owner.load(MemoryOrder::Relaxed) != &kernel) return 0;
  return g_stack.deadline.load(MemoryOrder::Relaxed);
}

NetMemoryStats net_memory_stats(Kernel& kernel) {
  NetMemoryStats out;
  NetLock lock(kernel);
  if (g_stack.owner.load(MemoryOrder::Relaxed) != &kernel) return out;
  static_assert(MEMP_MAX <= 32);
  out.pool_count = MEMP_MAX;
  for (u32 i = 0; i < MEMP_MAX; ++i) out.pool_used[i] = lwip_stats.memp[i]->used;
  out.heap_used = lwip_stats.mem.used;
  for (struct tcp_pcb* pcb = tcp_active_pcbs; pcb != nullptr; pcb = pcb->next) ++out.tcp_pcbs;
  for (struct tcp_pcb* pcb = tcp_tw_pcbs; pcb != nullptr; pcb = pcb->next) ++out.tcp_pcbs;
  for (struct tcp_pcb_listen* pcb = tcp_listen_pcbs.listen_pcbs; pcb != nullptr; pcb = pcb->next) ++out.tcp_pcbs;
  return out;
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

void tandem_lwip_assert(const char* message, const char* file, int line) { tandem::verify_failed(message, file, line); }

}  // extern "C"
