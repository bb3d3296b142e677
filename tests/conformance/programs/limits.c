// tests/conformance/programs/limits.c: prctl task names, resource limits (getrlimit, setrlimit,
// prlimit64, RLIMIT_NOFILE enforced on descriptors, RLIMIT_FSIZE on writes and truncation),
// CPU affinity and sysinfo.
// Only values that do not depend on the machine are printed (not the default limits a shell
// may have changed, not the CPU count).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>

#include "conf.h"

struct rlim64 {
  uint64_t cur, max;
};

int main(void) {
  // prctl(PR_SET_NAME/PR_GET_NAME): 16 bytes with the NUL, longer names are cut.
  char name[32];
  check("set name", syscall(SYS_prctl, PR_SET_NAME, "worker-1", 0, 0, 0));
  memset(name, 'x', sizeof name);
  check("get name", syscall(SYS_prctl, PR_GET_NAME, name, 0, 0, 0));
  out("name: %s", name);
  check("set long name", syscall(SYS_prctl, PR_SET_NAME, "abcdefghijklmnopqrstuvwxyz", 0, 0, 0));
  check("get long name", syscall(SYS_prctl, PR_GET_NAME, name, 0, 0, 0));
  out("long name: %s (%zu)", name, strlen(name));
  check("set name bad pointer", syscall(SYS_prctl, PR_SET_NAME, KERNEL_PTR, 0, 0, 0));
  check("get name bad pointer", syscall(SYS_prctl, PR_GET_NAME, KERNEL_PTR, 0, 0, 0));
  check("prctl unknown option", syscall(SYS_prctl, 0x7fff0000, 0, 0, 0, 0));

  // Resource limits: set, read back three ways, errors.
  struct rlim64 lim = {64, 128}, old = {0, 0};
  check("setrlimit nofile 64/128", syscall(SYS_setrlimit, RLIMIT_NOFILE, &lim));
  check("getrlimit nofile", syscall(SYS_getrlimit, RLIMIT_NOFILE, &old));
  out("nofile: %lu %lu", (unsigned long)old.cur, (unsigned long)old.max);
  memset(&old, 0, sizeof old);
  check("prlimit64 read", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &old));
  out("prlimit64 nofile: %lu %lu", (unsigned long)old.cur, (unsigned long)old.max);
  struct rlim64 bad = {200, 100};
  check("setrlimit cur above max", syscall(SYS_setrlimit, RLIMIT_NOFILE, &bad));
  check("setrlimit bad resource", syscall(SYS_setrlimit, 99, &lim));
  check("getrlimit bad resource", syscall(SYS_getrlimit, 99, &old));
  check("getrlimit bad pointer", syscall(SYS_getrlimit, RLIMIT_NOFILE, KERNEL_PTR));
  check("setrlimit bad pointer", syscall(SYS_setrlimit, RLIMIT_NOFILE, KERNEL_PTR));
  check("prlimit64 no such pid", syscall(SYS_prlimit64, 0x7ffffff0, RLIMIT_NOFILE, NULL, &old));
  // The soft limit is enforced: descriptors at or above it cannot be made.
  check("dup2 to 63", syscall(SYS_dup2, 0, 63));
  check("dup2 to 64", syscall(SYS_dup2, 0, 64));
  check("fcntl dupfd from 64", syscall(SYS_fcntl, 0, F_DUPFD, 64));
  int made = 0;
  for (;;) {
    long fd = syscall(SYS_dup, 0);
    if (fd < 0) {
      out("dup stops with: %s", err_name(errno));
      break;
    }
    if (fd >= 64) out("dup gave %ld at or above the limit", fd);
    made++;
  }
  out("highest reachable: %d", made > 0);
  check("close 63", syscall(SYS_close, 63));
  // prlimit64 sets and returns the old value in one call; a child inherits the limits.
  struct rlim64 wider = {100, 128};
  check("prlimit64 set+old", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &wider, &old));
  out("old: %lu %lu", (unsigned long)old.cur, (unsigned long)old.max);
  pid_t child = fork();
  if (child == 0) {
    struct rlim64 seen = {0, 0};
    syscall(SYS_getrlimit, RLIMIT_NOFILE, &seen);
    out("child nofile: %lu %lu", (unsigned long)seen.cur, (unsigned long)seen.max);
    _exit(0);
  }
  int status = 0;
  check("wait child", waitpid(child, &status, 0) == child ? 0 : -1);
  struct rlim64 stack = {8u << 20, RLIM_INFINITY};
  check("setrlimit stack", syscall(SYS_setrlimit, RLIMIT_STACK, &stack));
  check("getrlimit stack", syscall(SYS_getrlimit, RLIMIT_STACK, &old));
  out("stack: %lu %d", (unsigned long)old.cur, old.max == RLIM_INFINITY);

  // CPU affinity: CPU 0 only, read back, then every CPU again; empty masks are refused.
  uint64_t mask = 1, seen = 0;
  check("setaffinity cpu0", syscall(SYS_sched_setaffinity, 0, sizeof mask, &mask));
  check("getaffinity", syscall(SYS_sched_getaffinity, 0, sizeof seen, &seen));
  out("mask: %lx", (unsigned long)seen);
  unsigned cpu = 99;
  check("getcpu", syscall(SYS_getcpu, &cpu, NULL, NULL));
  out("on cpu: %u", cpu);
  uint64_t none = 0, offline = 1ull << 63, all = ~0ull;
  check("setaffinity empty", syscall(SYS_sched_setaffinity, 0, sizeof none, &none));
  check("setaffinity offline cpu", syscall(SYS_sched_setaffinity, 0, sizeof offline, &offline));
  check("setaffinity bad pointer", syscall(SYS_sched_setaffinity, 0, sizeof mask, KERNEL_PTR));
  check("setaffinity no such pid", syscall(SYS_sched_setaffinity, 0x7ffffff0, sizeof mask, &mask));
  check("setaffinity all", syscall(SYS_sched_setaffinity, 0, sizeof all, &all));
  check("getaffinity again", syscall(SYS_sched_getaffinity, 0, sizeof seen, &seen));
  out("cpu0 allowed: %d", (int)(seen & 1));
  check("getaffinity short buffer", syscall(SYS_sched_getaffinity, 0, 4, &seen));

  // RLIMIT_FSIZE, in a child: a write crossing the limit is cut short; with SIGXFSZ ignored, a
  // write, pwrite or truncate past it fails with EFBIG; by default SIGXFSZ kills.
  pid_t fsz = fork();
  if (fsz == 0) {
    struct rlim64 small = {10000, 10000};
    check("setrlimit fsize", syscall(SYS_setrlimit, RLIMIT_FSIZE, &small));
    signal(SIGXFSZ, SIG_IGN);
    long fd = syscall(SYS_open, "/tmp/conf-fsize", O_CREAT | O_TRUNC | O_RDWR, 0644);
    static char block[8000];
    check("fsize write under", syscall(SYS_write, fd, block, 8000));
    check("fsize write crossing", syscall(SYS_write, fd, block, 5000));
    check("fsize write at the limit", syscall(SYS_write, fd, block, 1));
    check("fsize pwrite past", syscall(SYS_pwrite64, fd, block, 10, 10500));
    check("fsize ftruncate past", syscall(SYS_ftruncate, fd, 20000));
    check("fsize ftruncate under", syscall(SYS_ftruncate, fd, 5000));
    check("fsize truncate past", syscall(SYS_truncate, "/tmp/conf-fsize", 10001));
    signal(SIGXFSZ, SIG_DFL);
    syscall(SYS_pwrite64, fd, block, 1, 10000);
    out("fsize: still alive after SIGXFSZ");
    _exit(0);
  }
  check("wait fsize child", waitpid(fsz, &status, 0) == fsz ? 0 : -1);
  out("fsize child: signaled %d by %d", WIFSIGNALED(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  syscall(SYS_unlink, "/tmp/conf-fsize");

  // sysinfo: memory figures that make sense together.
  struct sysinfo info;
  memset(&info, 0xff, sizeof info);
  check("sysinfo", syscall(SYS_sysinfo, &info));
  out("ram: %d, free <= total: %d, unit: %u, procs: %d", info.totalram > 0, info.freeram <= info.totalram,
      info.mem_unit, info.procs > 0);
  check("sysinfo bad pointer", syscall(SYS_sysinfo, KERNEL_PTR));
  done("limits");
  return 0;
}
