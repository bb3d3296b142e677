// hal/real/src/time.cpp: TSC clock, LAPIC one-shot timer, CMOS real-time clock, entropy.
#include "arch.h"

namespace hal::real {

u32 lapic_timer_read(u32 reg);
void lapic_timer_write(u32 reg, u32 v);

namespace {

constexpr u32 kLvtTimer = 0x320, kTimerInitial = 0x380, kTimerCurrent = 0x390, kTimerDivide = 0x3e0;
constexpr u32 kPitHz = 1193182;

u64 g_tsc_base = 0;
u64 g_tsc_hz = 0;
u64 g_tsc_mult = 0;     // ns = (tsc delta * g_tsc_mult) >> 32
u64 g_lapic_hz = 0;     // LAPIC timer ticks per second at divide-by-16
u64 g_lapic_mult = 0;   // ticks = (ns * g_lapic_mult) >> 32
i64 g_realtime_offset = 0;  // realtime_ns = monotonic_ns + offset

u64 mul_shift32(u64 a, u64 b) { return u64((unsigned __int128)a * b >> 32); }

u8 cmos_read(u8 reg) {
  outb(0x70, reg | 0x80);  // bit 7 keeps NMIs disabled at the CMOS, as firmware leaves it
  return inb(0x71);
}

u32 bcd(u8 v) { return (v & 0x0f) + (v >> 4) * 10; }

// Days since 1970-01-01 of a civil date (proleptic Gregorian), after Howard Hinnant's
// days_from_civil.
i64 days_from_civil(i64 y, u32 m, u32 d) {
  y -= m <= 2;
  i64 era = (y >= 0 ? y : y - 399) / 400;
  u32 yoe = u32(y - era * 400);
  u32 doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  u32 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + i64(doe) - 719468;
}

u64 read_rtc_seconds() {
  struct Reading {
    u8 sec, min, hour, day, mon, year, century;
  };
  auto read = [] {
    // Wait out an update in progress so the fields belong to one second.
    for (u32 i = 0; i < 1'000'000 && (cmos_read(0x0a) & 0x80); ++i) cpu_relax();
    return Reading{cmos_read(0x00), cmos_read(0x02), cmos_read(0x04), cmos_read(0x07),
                   cmos_read(0x08), cmos_read(0x09), cmos_read(0x32)};
  };
  Reading a = read(), b = read();
  for (u32 i = 0; i < 10; ++i) {
    if (a.sec == b.sec && a.min == b.min && a.hour == b.hour && a.day == b.day &&
        a.mon == b.mon && a.year == b.year) {
      break;
    }
    a = b;
    b = read();
  }
  u8 status_b = cmos_read(0x0b);
  bool binary = status_b & 0x04, h24 = status_b & 0x02;
  bool pm = b.hour & 0x80;
  u32 sec = binary ? b.sec : bcd(b.sec), min = binary ? b.min : bcd(b.min);
  u32 hour = binary ? (b.hour & 0x7f) : bcd(b.hour & 0x7f);
  u32 day = binary ? b.day : bcd(b.day), mon = binary ? b.mon : bcd(b.mon);
  u32 year = binary ? b.year : bcd(b.year);
  u32 century = b.century ? (binary ? b.century : bcd(b.century)) : 20;
  if (!h24) hour = (hour % 12) + (pm ? 12 : 0);
  if (century < 19 || century > 30) century = 20;
  year += century * 100;
  if (mon < 1 || mon > 12 || day < 1 || day > 31) return 0;
  i64 days = days_from_civil(year, mon, day);
  return u64(days * 86400 + hour * 3600 + min * 60 + sec);
}

void arm(u64 wanted) {
  PerCpu* cpu = this_cpu();
  // The watchdog needs every CPU's timer to fire now and then, even when core disarms it.
  const u64 deadline = watchdog_clamp_deadline(wanted);
  if (!deadline) {
    if (cpu->timer_programmed != 0) lapic_timer_write(kTimerInitial, 0);  // stops the count
    cpu->timer_programmed = 0;
    return;
  }
  u64 now = monotonic_ns();
  // Already counting down to this very time (a switch that keeps the CPU's next tick), or, when
  // only the watchdog's heartbeat is wanted, to a heartbeat at least half a period away.
  const u64 programmed = cpu->timer_programmed;
  if (programmed == deadline) return;
  if (deadline != wanted && programmed > now && programmed <= deadline && programmed - now >= kWatchdogTickNs / 2)
    return;
  u64 delta = deadline > now ? deadline - now : 0;
  u64 ticks = mul_shift32(delta, g_lapic_mult);
  if (ticks == 0) ticks = 1;
  // Beyond the 32-bit counter the timer fires early and the interrupt handler re-arms it.
  if (ticks > 0xffffffffu) ticks = 0xffffffffu;
  if (!cpu->timer_lvt_armed) {
    lapic_timer_write(kLvtTimer, kVecTimer);  // one-shot, unmasked
    cpu->timer_lvt_armed = 1;
  }
  lapic_timer_write(kTimerInitial, u32(ticks));
  cpu->timer_programmed = deadline;
}

}  // namespace

void delay_us(u64 us) {
  u64 end = rdtsc() + us * (g_tsc_hz / 1'000'000);
  while (rdtsc() < end) cpu_relax();
}

// Reads PIT channel 2's current count (latched, so both bytes belong to one value).
u32 pit_read_channel2() {
  outb(0x43, 0x80);  // latch channel 2
  u32 lo = inb(0x42);
  u32 hi = inb(0x42);
  return (hi << 8) | lo;
}

void time_init() {
  // Calibrate the TSC and the LAPIC timer together against PIT channel 2. The PIT's own counter
  // is read at both ends of the window, so the time it takes to start the window (which under
  // QEMU TCG can be milliseconds: the first MMIO or port access may translate new code) does not
  // skew the result; only the PIT ticks actually seen between the two readings count.
  lapic_timer_write(kTimerDivide, 0x3);  // divide by 16
  lapic_timer_write(kLvtTimer, (1u << 16) | kVecTimer);
  lapic_timer_write(kTimerInitial, 0xffffffffu);
  u8 port61 = inb(0x61);
  outb(0x61, (port61 & ~0x02) | 0x01);  // gate on, speaker off
  constexpr u32 kWindow = kPitHz / 50;   // 20 ms
  // Under TCG a busy host may deschedule this vCPU in the middle of the window: for longer than
  // the PIT's 55 ms count (it wraps, and the window looks short), or between a PIT read and the
  // TSC read next to it (the two ends no longer match). Either spoils the measurement, so each
  // PIT read is bracketed by TSC reads, and a disturbed window is measured again.
  constexpr u32 kAttempts = 10;
  u32 pit0 = 0, pit1 = 0, apic0 = 0, apic1 = 0, ticks = 0;
  u64 tsc0 = 0, tsc1 = 0;
  for (u32 attempt = 1;; ++attempt) {
    outb(0x43, 0xb4);  // channel 2, lobyte/hibyte, mode 2 (rate), binary
    outb(0x42, 0xff);
    outb(0x42, 0xff);  // 65535 ticks: 55 ms before the count wraps
    pit0 = pit_read_channel2();
    for (u32 i = 0; i < 1'000'000 && pit0 > 0xffff - 100; ++i) pit0 = pit_read_channel2();
    u64 before0 = rdtsc();
    pit0 = pit_read_channel2();
    tsc0 = rdtsc();
    apic0 = lapic_timer_read(kTimerCurrent);
    pit1 = pit0;
    u64 before1 = tsc0;
    u64 spins = 0;
    bool wrapped = false;
    while (pit0 - pit1 < kWindow && ++spins < 100'000'000) {
      before1 = rdtsc();
      u32 now = pit_read_channel2();
      if (now > pit1) {
        wrapped = true;  // descheduled for longer than the rest of the 55 ms count
        break;
      }
      pit1 = now;
    }
    tsc1 = rdtsc();
    apic1 = lapic_timer_read(kTimerCurrent);
    ticks = pit0 - pit1;  // pit0 and pit1 were read just before tsc0 and tsc1
    if (spins >= 100'000'000 || (!wrapped && ticks < kWindow / 2)) {
      klog("pit window %u ticks", ticks);
      panic("PIT channel 2 does not count: cannot calibrate the clocks");
    }
    // Both brackets together within 2% of the window: the ends are where the PIT says they are.
    const bool tight = (tsc0 - before0) + (tsc1 - before1) < (tsc1 - tsc0) / 50;
    if (!wrapped && tight) break;
    if (attempt == kAttempts) panic("clock calibration disturbed in every attempt (host too busy?)");
    klog("time: calibration window disturbed (%s), measuring again", wrapped ? "PIT wrapped" : "slow read");
  }
  lapic_timer_write(kTimerInitial, 0);
  this_cpu()->timer_programmed = 0;
  this_cpu()->timer_lvt_armed = 0;  // masked for the calibration
  outb(0x61, port61);

  g_tsc_hz = (tsc1 - tsc0) * kPitHz / ticks;
  g_lapic_hz = u64(apic0 - apic1) * kPitHz / ticks;
  if (g_tsc_hz < 10'000'000 || g_lapic_hz < 1000) {
    klog("tsc %lu Hz, lapic timer %lu Hz", g_tsc_hz, g_lapic_hz);
    panic("clock calibration failed");
  }
  // Both fit 64 bits (1e9 << 32 < 2^62; the LAPIC rate is far below 2^32): no 128-bit division,
  // which would need compiler-rt.
  g_tsc_mult = (1'000'000'000ull << 32) / g_tsc_hz;
  g_lapic_mult = (g_lapic_hz << 32) / 1'000'000'000ull;
  g_tsc_base = tsc1;

  u64 rtc = read_rtc_seconds();
  g_realtime_offset = i64(rtc * 1'000'000'000ull) - i64(monotonic_ns());
  klog("time: tsc %lu MHz%s, lapic timer %lu kHz, rtc %lu s since the epoch", g_tsc_hz / 1'000'000,
       g_features.invariant_tsc ? " (invariant)" : "", g_lapic_hz / 1000, rtc);
}

void timer_interrupt() { arm(this_cpu()->timer_deadline); }

}  // namespace hal::real

namespace hal {

using namespace hal::real;

u64 monotonic_ns() {
  u64 tsc = rdtsc();
  return tsc > g_tsc_base ? mul_shift32(tsc - g_tsc_base, g_tsc_mult) : 0;
}

u64 realtime_ns() { return u64(i64(monotonic_ns()) + g_realtime_offset); }

void timer_set_deadline(u64 deadline_ns) {
  IrqFlags flags = irq_save();
  this_cpu()->timer_deadline = deadline_ns;
  arm(deadline_ns);
  irq_restore(flags);
}

void random_bytes(void* out, size_t length) {
  auto* p = static_cast<u8*>(out);
  static u64 fallback_state = 0;
  while (length) {
    u64 v = 0;
    bool ok = false;
    if (g_features.rdrand) {
      for (u32 i = 0; i < 10 && !ok; ++i) {
        asm volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
      }
    }
    if (!ok) {
      // No RDRAND (or it keeps failing): a splitmix64 step over the TSC. Not cryptographic;
      // qemu's -cpu max always has RDRAND.
      u64 z = __atomic_add_fetch(&fallback_state, rdtsc() + 0x9e3779b97f4a7c15ull,
                                 __ATOMIC_RELAXED);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      v = z ^ (z >> 31);
    }
    size_t n = length < 8 ? length : 8;
    for (size_t i = 0; i < n; ++i) p[i] = u8(v >> (8 * i));
    p += n;
    length -= n;
  }
}

}  // namespace hal
