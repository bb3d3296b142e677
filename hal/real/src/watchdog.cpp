// hal/real/src/watchdog.cpp: a hard-lockup watchdog.
//
// Every CPU's LAPIC timer interrupt is its heartbeat (PerCpu::last_tick_ns). The HAL never lets
// a CPU's timer sleep longer than kWatchdogTickNs, even when core disarms it (tickless idle), so
// a CPU that can take interrupts beats at least twice a second, idle or not. A CPU whose
// heartbeat is older than the timeout has had interrupts disabled all that time: a deadlock on
// a spinlock, a runaway loop, a lost NMI-less wait. Two kinds of checks catch it:
// - every timer interrupt checks every CPU, so a CPU stuck while others run or idle is found;
// - every spin loop (hal::cpu_relax, the HAL's locks, the shootdown wait) checks every CPU, its
//   own heartbeat included, so a machine whose CPUs all spin with interrupts off is found too.
// The CPU that notices prints which CPU is stuck and panics; the panic path prints its own
// backtrace and fetches every other CPU's by NMI, which arrives even with interrupts disabled.
// Under TCG a vCPU thread may be held up by a busy host for seconds (5 s was seen on this 2-core
// machine with an 8-CPU guest beside builds, when the locks were still ticket locks), which is
// why the default is 10 s, Linux's hard-lockup threshold (`watchdog=SECONDS` changes it,
// `watchdog=0` turns it off).
#include "arch.h"
#include "hal_real.h"

namespace hal::real {

namespace {

constexpr u64 kNsPerSecond = 1'000'000'000;
u64 g_timeout_ns = 10 * kNsPerSecond;
volatile u32 g_armed = 0;  // every CPU is up and beating: checks are meaningful from now on
volatile u32 g_fired = 0;
u32 g_spins[kMaxCpus];     // spin-loop iterations per CPU, to check only every 1024th

bool word_at(const char* p, const char* start, const char* word, const char** value) {
  if (p != start && p[-1] != ' ') return false;
  u32 i = 0;
  for (; word[i]; ++i) {
    if (p[i] != word[i]) return false;
  }
  *value = p + i;
  return true;
}

}  // namespace

void watchdog_init(const char* cmdline) {
  for (const char* p = cmdline; p && *p; ++p) {
    const char* value;
    if (word_at(p, cmdline, "watchdog=", &value)) {
      u64 seconds = 0;
      while (*value >= '0' && *value <= '9') seconds = seconds * 10 + u64(*value++ - '0');
      g_timeout_ns = seconds * kNsPerSecond;
    }
  }
  if (g_timeout_ns == 0) klog("watchdog: off");
}

void watchdog_arm() {
  if (g_timeout_ns == 0) return;
  const u64 now = monotonic_ns();
  for (u32 i = 0; i < g_cpu_count; ++i) __atomic_store_n(&g_cpus[i].last_tick_ns, now, __ATOMIC_RELAXED);
  for (u32 i = 0; i < g_cpu_count; ++i) {
    __atomic_store_n(&g_cpus[i].progress_seen_ns, now, __ATOMIC_RELAXED);  // soft-lockup clocks start now
  }
  __atomic_store_n(&g_armed, 1u, __ATOMIC_RELEASE);
}

void watchdog_heartbeat() {
  __atomic_store_n(&this_cpu()->last_tick_ns, monotonic_ns(), __ATOMIC_RELAXED);
}

u64 watchdog_clamp_deadline(u64 deadline_ns) {
  if (g_timeout_ns == 0) return deadline_ns;
  const u64 limit = monotonic_ns() + kWatchdogTickNs;
  return deadline_ns == 0 || deadline_ns > limit ? limit : deadline_ns;
}

void watchdog_check() {
  if (!__atomic_load_n(&g_armed, __ATOMIC_ACQUIRE) || panicking()) return;
  const u64 now = monotonic_ns();
  for (u32 i = 0; i < g_cpu_count; ++i) {
    if (!g_cpus[i].online || g_cpus[i].halted) continue;
    const u64 last = __atomic_load_n(&g_cpus[i].last_tick_ns, __ATOMIC_RELAXED);
    if (now <= last || now - last <= g_timeout_ns) continue;
    if (__atomic_exchange_n(&g_fired, 1u, __ATOMIC_ACQ_REL)) return;
    const u64 ms = (now - last) / 1'000'000;
    klog("watchdog: cpu %u took no timer interrupt for %lu ms (interrupts disabled): stuck; noticed by cpu %u",
         i, static_cast<unsigned long>(ms), cpu_id());
    panic("watchdog: a CPU is stuck with interrupts disabled");
  }
}

void watchdog_soft_check(bool from_user, u64 rip, u64 rbp) {
  PerCpu* cpu = this_cpu();
  const u64 now = monotonic_ns();
  if (from_user || cpu->progress != cpu->progress_seen || !__atomic_load_n(&g_armed, __ATOMIC_ACQUIRE)) {
    cpu->progress_seen = cpu->progress;
    __atomic_store_n(&cpu->progress_seen_ns, now, __ATOMIC_RELAXED);
    return;
  }
  // watchdog_arm (on CPU 0) may have started this CPU's clock after `now` was read here: that
  // is no lockup, and without this check the difference would wrap to centuries.
  const u64 seen_ns = __atomic_load_n(&cpu->progress_seen_ns, __ATOMIC_RELAXED);
  if (g_timeout_ns == 0 || panicking() || now <= seen_ns || now - seen_ns <= 2 * g_timeout_ns) return;
  if (__atomic_exchange_n(&g_fired, 1u, __ATOMIC_ACQ_REL)) return;
  klog("watchdog: cpu %u made no progress for %lu ms (in the kernel with interrupts enabled: no context switch, "
       "system call, user mode or idle): soft lockup at rip %lx",
       cpu->id, static_cast<unsigned long>((now - seen_ns) / 1'000'000), rip);
  // Where the loop is: the interrupted code's frames (panic prints only this interrupt's).
  print_backtrace(rip, rbp);
  panic("watchdog: a CPU is stuck in the kernel");
}

void spin_hook() {
  tlb_service();
  if (!__atomic_load_n(&g_armed, __ATOMIC_RELAXED)) return;
  if ((++g_spins[cpu_id()] & 1023) == 0) watchdog_check();
}

bool g_watchdog_test = false;
bool g_watchdog_test_soft = false;

void watchdog_test_cpu() {
  const u32 me = cpu_id();
  if (me + 1 == g_cpu_count && g_watchdog_test_soft) {
    // A kernel loop with interrupts on: its own timer interrupt must notice.
    timer_set_deadline(0);
    klog("watchdog-test: cpu %u spins with interrupts enabled", me);
    irq_enable();
    for (;;) asm volatile("pause" ::: "memory");
  }
  if (me + 1 == g_cpu_count) {
    irq_disable();
    klog("watchdog-test: cpu %u spins with interrupts disabled", me);
    if (g_cpu_count == 1) {
      // Alone, the CPU must notice its own silence from its spin loop.
      for (;;) cpu_relax();
    }
    // The way a kernel bug would spin: no spin hook, so only the other CPUs can notice.
    for (;;) asm volatile("pause" ::: "memory");
  }
  timer_set_deadline(0);  // no deadline: the watchdog's own tick keeps the heartbeat going
  for (;;) cpu_idle_wait();
}

}  // namespace hal::real
