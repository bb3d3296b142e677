// core/net/stack.h: the kernel's one lwIP (2.1.3, NO_SYS, raw API; port in core/net/lwip/).
//
// What it owns: lwIP's initialisation and reset, the stack lock, lwIP's timers, the loopback
// interface (127.0.0.1, lwIP's own loop netif) and the netif glue for one Ethernet card
// (core/net/netdev.h), configured statically (QEMU user networking: 10.0.2.15/24, gateway
// 10.0.2.2, or `ip=A.B.C.D/N gw=A.B.C.D` on the boot command line). No DHCP.
//
// Threading model (chosen here; DESIGN.md's "polled on CPU 0" holds for the device side):
//   - Every call into lwIP, from any CPU, is made under the one stack lock (NetLock below).
//     Socket calls on any CPU take it and call the raw API directly: no hand-off to CPU 0, no
//     IPI round trip per call. lwIP's callbacks (recv, sent, accept, connected, err) therefore
//     run under the lock, on whichever CPU drove lwIP at the time.
//   - The device side runs on CPU 0: the NIC's receive callback (from the driver's interrupt
//     handler or poll) and lwIP's timers (sys_check_timeouts) from CPU 0's timer interrupt.
//     CPU 0 arms its one-shot timer for lwIP's next timeout while lwIP has work that needs
//     timers (TCP PCBs, or a card); another CPU that makes that deadline earlier kicks CPU 0
//     with a reschedule IPI so an idle, tickless CPU 0 re-arms.
//   - Nothing under the lock blocks or sleeps: callbacks only queue data, record errors and
//     wake threads (Kernel::wake). They note that some socket's readiness changed; poll, select
//     and epoll are told once, when the lock is about to be dropped or the caller goes to sleep
//     (the VFS's readiness queue ranks Wait, above the stack lock).
//   - Lock order: Process (the epoll lock, held when poll_events() asks a socket) < NetStack <
//     Wait, AddressSpace, Timer, Thread, RunQueue, Heap, Console. User memory may be copied
//     under the stack lock (a fault takes AddressSpace). A NIC driver's own locks (taken by
//     transmit() under the stack lock) must rank above NetStack.
//
// One process holds one lwIP (its state is C globals). The stack starts lazily for a kernel
// (the first AF_INET socket, or a card being attached) and belongs to that kernel until it is
// destroyed: ~Kernel calls net_stack_shutdown, which puts every byte of lwIP's state back as it
// was when the program was loaded (see core/net/lwip/lwip_sections.h), so the next kernel
// instance in the process (the next simulator schedule or fuzz input) starts from exactly the
// same lwIP. A second live kernel in the same process cannot have networking (ENOBUFS); the
// simulator runs networked schedules in separate processes for --jobs.
#pragma once

#include "core/lib/result.h"
#include "core/lib/spinlock.h"
#include "core/lib/types.h"

namespace tandem {

class Kernel;
class NetDevice;

// IPv4 configuration of the Ethernet interface, addresses in host byte order.
struct NetConfig {
  u32 address = (10u << 24) | (0u << 16) | (2u << 8) | 15u;  // 10.0.2.15
  u32 netmask = 0xffffff00u;                                 // /24
  u32 gateway = (10u << 24) | (0u << 16) | (2u << 8) | 2u;   // 10.0.2.2
};
// Reads `ip=A.B.C.D[/N]` and `gw=A.B.C.D` from a boot command line over the defaults. false (and
// *config untouched) when one of them is present but malformed.
bool parse_net_config(const char* cmdline, NetConfig* config);

// Starts lwIP for `kernel` if it is not running yet (idempotent). ENOBUFS when another live
// kernel instance in this process owns lwIP.
Result<void> net_stack_start(Kernel& kernel);
// Whether lwIP runs for `kernel`.
bool net_stack_running(Kernel& kernel);
// Tears lwIP down if `kernel` owns it: detaches the card, then restores every lwIP global to
// its load-time value. Called by ~Kernel; any socket still open is the caller's bug.
// `machine_stopped`: no CPU runs the kernel any more (~Kernel), so the stack lock, which a failed
// run may have left held, is freed as well.
void net_stack_shutdown(Kernel& kernel, bool machine_stopped = false);

// Adds `device` as lwIP's Ethernet interface (the default route) with `config`, and registers
// the stack's receive callback with it. Starts the stack if needed. EBUSY when a card is
// already attached.
Result<void> net_stack_attach_device(Kernel& kernel, NetDevice& device, const NetConfig& config);

// CPU 0's timer interrupt: polls the card and runs lwIP's expired timeouts.
void net_stack_on_timer(Kernel& kernel);
// The monotonic time at which CPU 0 must next call net_stack_on_timer, or 0 for none.
u64 net_stack_deadline(Kernel& kernel);

// The stack lock held with interrupts disabled. Every lwIP call goes under one. Before the lock
// is dropped, packets queued on the loopback interface are delivered (with NO_SYS, lwIP does
// that only when asked) and pollers are told when a callback changed some socket's readiness.
class [[nodiscard]] NetLock {
 public:
  explicit NetLock(Kernel& kernel);
  ~NetLock() { unlock(); }
  TANDEM_NONCOPYABLE(NetLock);
  void unlock();
  // Before a sleep (still under the lock): delivers queued loopback packets and tells pollers
  // of readiness changes. true when it did either, so the condition the caller was about to
  // sleep on may have changed: look again before sleeping.
  bool settle();
  // The raw lock, for Socket::wait_on (which drops and retakes it around a sleep).
  SpinLock& spin();

 private:
  Kernel& m_kernel;
  hal::IrqFlags m_flags;
  bool m_held = true;
};

// For Kernel::dump_state: the stack lock's tickets and owner, and the thread and code address
// that last took it through NetLock (read without the lock).
void net_dump_state();

// From lwIP callbacks, under the lock: the readiness of the socket whose readiness_key() is `key`
// changed; NetLock tells its pollers (Vfs::notify_readiness) once the lock is dropped.
void net_note_readiness_changed(const void* key);

// Sockets of the stack's families that exist (core/net/inet.cpp counts them against its limit).
// Under the lock. Part of the stack's state, so a kernel instance thrown away with sockets still
// open (a failed simulation) does not leave its count to the next one.
u32& net_socket_count();

// Counters for tests: lwIP's memory pools and heap as seen now (under the lock).
struct NetMemoryStats {
  u32 pool_used[32] = {};  // per memp pool, in lwIP's MEMP_* order
  u32 pool_count = 0;
  u64 heap_used = 0;
  u64 heap_max = 0;  // the most the heap ever held (lwIP's mem.max)
  u32 pool_max[32] = {};
  u32 pool_errors = 0;  // allocations a pool refused, all pools
  u32 tcp_pcbs = 0;  // active + TIME_WAIT + listening
};
NetMemoryStats net_memory_stats(Kernel& kernel);

// What one kernel instance's lwIP did, kept when it is shut down, for tests that prove the reset
// (the same schedule twice gives the same report) and for leak checks.
struct NetRunReport {
  bool valid = false;
  u64 init_fingerprint = 0;  // FNV-1a of lwIP's state sections right after lwip_init()
  u64 wire_digest = 0;       // FNV-1a over every packet lwIP received (loopback) or frame (card)
  u64 packets = 0;
  NetMemoryStats memory;     // at shutdown, before the reset
};
// The report of the last kernel instance in this process whose lwIP was shut down. Only while
// no kernel instance runs (it reads without the lock and without the HAL, as the shutdown).
NetRunReport net_last_run_report();

}  // namespace tandem
