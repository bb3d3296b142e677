// tests/userspace/hostile.c: "a user cannot break the kernel". Calls every system call number
// from 0 to 460 with hostile arguments (all zero/NULL, a kernel address, -1, huge lengths,
// unaligned pointers into the program's own memory) and checks that the kernel keeps running
// and the program finishes. The calls run in a forked child: a call that blocks (select with
// no timeout, a read of the console...) is ended with SIGKILL after a second of no progress,
// and a call that kills the child (rt_sigreturn with a garbage frame) is recorded; the sweep
// goes on from the next number in a new child. Numbers that would end or disturb the parent
// or the machine are skipped: exit, exit_group, the kill family, reboot, fork, vfork, clone.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LAST 460
#define SETS 6

static int skipped(long n) {
  switch (n) {
    case 56: case 57: case 58: case 435:      // clone, fork, vfork, clone3
    case 60: case 231:                        // exit, exit_group
    case 62: case 200: case 234:              // kill, tkill, tgkill
    case 129: case 297: case 424:             // rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_send_signal
    case 169:                                 // reboot
    case 34: case 130:                        // pause, rt_sigsuspend
    case 61: case 247:                        // wait4, waitid
      return 1;
    default:
      return 0;
  }
}

// Shared with the parent: the number being called, and whether its call returned.
struct Progress {
  volatile long current;
  volatile long returned;
  volatile long enosys;
  volatile long calls;
};

static char g_zeros[1 << 16];

static void sweep(struct Progress *p, long first) {
  const unsigned long kernel = 0xffff800000000000ul;
  const unsigned long unaligned = (unsigned long)(g_zeros + 4097);
  const unsigned long sets[SETS][6] = {
      {0, 0, 0, 0, 0, 0},
      {kernel, kernel, kernel, kernel, kernel, kernel},
      {~0ul, ~0ul, ~0ul, ~0ul, ~0ul, ~0ul},
      {unaligned, 1ul << 40, unaligned, 1ul << 40, unaligned, 1ul << 40},
      {3, kernel, 1ul << 62, kernel + 1, 0, ~0ul},
      {unaligned, unaligned, 0, unaligned, unaligned, 0},
  };
  for (long n = first; n <= LAST; n++) {
    p->current = n;
    if (!skipped(n)) {
      for (int s = 0; s < SETS; s++) {
        long r = syscall(n, sets[s][0], sets[s][1], sets[s][2], sets[s][3], sets[s][4], sets[s][5]);
        p->calls++;
        if (r == -1 && s == 0 && errno == ENOSYS) p->enosys++;
      }
    }
    p->returned = n;
  }
  syscall(SYS_exit_group, 0);
}

int main(void) {
  struct Progress *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  memset(p, 0, sizeof *p);
  p->returned = -1;
  long first = 0;
  int children = 0, blocked = 0, killed = 0;
  char blocked_list[512] = "", killed_list[512] = "";
  while (first <= LAST) {
    p->current = first;
    p->returned = first - 1;
    children++;
    long pid = syscall(SYS_fork);
    if (pid < 0) { printf("hostile: fork failed\n"); return 1; }
    if (pid == 0) sweep(p, first);
    long last_seen = -2, idle_ms = 0;
    int status = 0;
    for (;;) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      if (syscall(SYS_wait4, pid, &status, WNOHANG, NULL) == pid) break;
      long seen = p->calls;
      if (seen != last_seen) { last_seen = seen; idle_ms = 0; continue; }
      if ((idle_ms += 10) >= 1000) {
        syscall(SYS_kill, pid, SIGKILL);
        syscall(SYS_wait4, pid, &status, 0, NULL);
        break;
      }
    }
    long at = p->current;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && p->returned == LAST) break;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && p->returned != at) {
      blocked++;
      snprintf(blocked_list + strlen(blocked_list), sizeof blocked_list - strlen(blocked_list), " %ld", at);
    } else {
      killed++;
      snprintf(killed_list + strlen(killed_list), sizeof killed_list - strlen(killed_list), " %ld(%s%d)", at,
               WIFSIGNALED(status) ? "sig " : "exit ", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    first = at + 1;
  }
  printf("hostile: numbers 0..%d, %ld calls, %ld numbers ENOSYS with zero arguments, %d children\n", LAST,
         (long)p->calls, (long)p->enosys, children);
  printf("hostile: blocked (ended by SIGKILL): %d:%s\n", blocked, blocked_list);
  printf("hostile: child ended by its call: %d:%s\n", killed, killed_list);
  printf("hostile: the kernel survived\n");
  return 0;
}
