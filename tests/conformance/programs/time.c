// Time: clock_gettime and clock_getres for each clock, bad clocks and pointers, nanosleep and
// clock_nanosleep (relative, absolute, bad values), gettimeofday, and monotonicity.
#include "conf.h"
#include <sys/time.h>
#include <time.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000ll + t.tv_nsec; }

int main(void) {
  struct timespec a, b, res;
  const int clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                        CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                        CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME};
  for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "clock_gettime %d", clocks[i]);
    check(name, syscall(SYS_clock_gettime, clocks[i], &a));
    snprintf(name, sizeof name, "clock_getres %d", clocks[i]);
    check(name, syscall(SYS_clock_getres, clocks[i], &res));
    out("clock %d: resolution at most 10 ms: %d", clocks[i], ns(res) > 0 && ns(res) <= 10000000);
  }
  check("clock_gettime bad clock", syscall(SYS_clock_gettime, 99, &a));
  check("clock_gettime bad pointer", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, KERNEL_PTR));
  check("clock_getres null", syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL));
  check("clock_getres bad clock", syscall(SYS_clock_getres, 99, &res));
  syscall(SYS_clock_gettime, CLOCK_REALTIME, &a);
  out("realtime after 2020: %d", a.tv_sec > 1577836800);
  struct timeval tv;
  check("gettimeofday", syscall(SYS_gettimeofday, &tv, NULL));
  out("gettimeofday near realtime: %d", tv.tv_sec - a.tv_sec >= 0 && tv.tv_sec - a.tv_sec < 5);
  check("gettimeofday bad pointer", syscall(SYS_gettimeofday, KERNEL_PTR, NULL));
  check("gettimeofday null", syscall(SYS_gettimeofday, NULL, NULL));

  int mono = 1;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
  for (int i = 0; i < 1000; i++) {
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
    if (ns(b) < ns(a)) mono = 0;
    a = b;
  }
  out("monotonic over 1000 reads: %d", mono);

  struct timespec d = {0, 20 * 1000 * 1000};
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
  check("nanosleep 20 ms", syscall(SYS_nanosleep, &d, NULL));
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
  out("slept at least 20 ms: %d", ns(b) - ns(a) >= 20000000);
  struct timespec badns = {0, 1000000000}, negs = {-1, 0};
  check("nanosleep bad nsec", syscall(SYS_nanosleep, &badns, NULL));
  check("nanosleep negative", syscall(SYS_nanosleep, &negs, NULL));
  check("nanosleep bad pointer", syscall(SYS_nanosleep, KERNEL_PTR, NULL));
  struct timespec zero = {0, 0};
  check("nanosleep zero", syscall(SYS_nanosleep, &zero, NULL));
  check("clock_nanosleep realtime 0", syscall(SYS_clock_nanosleep, CLOCK_REALTIME, 0, &zero, NULL));
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
  struct timespec until = {a.tv_sec, a.tv_nsec + 10000000};
  if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
  check("clock_nanosleep absolute", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL));
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
  out("woke after deadline: %d", ns(b) >= ns(until));
  check("clock_nanosleep absolute past", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &a, NULL));
  // clock_nanosleep returns the error number itself rather than setting errno.
  check("clock_nanosleep bad clock", syscall(SYS_clock_nanosleep, 99, 0, &zero, NULL));
  check("clock_nanosleep thread cputime", syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &zero, NULL));
  check("clock_nanosleep bad nsec", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &badns, NULL));
  done("time");
  return 0;
}
