// Signals: rt_sigaction (install, query, EINVAL for SIGKILL/SIGSTOP and bad numbers, EFAULT),
// rt_sigprocmask (block, pending, unblock delivers), rt_sigpending, kill and tgkill to
// oneself, sigaltstack (SS_ONSTACK handler runs on it), EINTR from a blocked read without
// SA_RESTART, and SA_RESTART completing the read.
#include "conf.h"
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

// The kernel's struct sigaction on x86-64 (libc's differs in size and layout).
struct ksigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

static volatile int g_usr1, g_usr2, g_on_alt;
static char g_alt[65536];

static void on_usr1(int sig) { (void)sig; g_usr1++; }
static void on_usr2(int sig) {
  (void)sig;
  char here;
  g_usr2++;
  g_on_alt = &here >= g_alt && &here < g_alt + sizeof g_alt;
}

// A child that sends SIGUSR1 to its parent after a short sleep, while the parent blocks.
static long signal_parent_later(void) {
  long pid = syscall(SYS_fork);
  if (pid == 0) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    syscall(SYS_nanosleep, &ts, NULL);
    syscall(SYS_kill, syscall(SYS_getppid), SIGUSR1);
    syscall(SYS_exit_group, 0);
  }
  return pid;
}

int main(void) {
  struct ksigaction ksa;
  check("rt_sigaction query SIGUSR1", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &ksa, 8));
  out("default handler: %d", ksa.handler == SIG_DFL);
  check("rt_sigaction bad size", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &ksa, 4));
  check("rt_sigaction signal 0", syscall(SYS_rt_sigaction, 0, NULL, &ksa, 8));
  check("rt_sigaction signal 65", syscall(SYS_rt_sigaction, 65, NULL, &ksa, 8));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  check("sigaction SIGKILL", sigaction(SIGKILL, &sa, NULL));
  check("sigaction SIGSTOP", sigaction(SIGSTOP, &sa, NULL));
  check("rt_sigaction bad pointer", syscall(SYS_rt_sigaction, SIGUSR1, KERNEL_PTR, NULL, 8));
  check("rt_sigaction bad old pointer", syscall(SYS_rt_sigaction, SIGUSR1, NULL, KERNEL_PTR, 8));
  check("sigaction install", sigaction(SIGUSR1, &sa, NULL));
  check("kill self", syscall(SYS_kill, syscall(SYS_getpid), SIGUSR1));
  out("handler ran: %d", g_usr1);
  check("kill signal 0", syscall(SYS_kill, syscall(SYS_getpid), 0));
  check("kill bad signal", syscall(SYS_kill, syscall(SYS_getpid), 99));
  check("kill no such pid", syscall(SYS_kill, 999999, SIGUSR1));
  check("tgkill self", syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGUSR1));
  out("handler ran: %d", g_usr1);
  check("tgkill wrong tgid", syscall(SYS_tgkill, 999999, syscall(SYS_gettid), SIGUSR1));
  check("tgkill bad tgid", syscall(SYS_tgkill, 0, syscall(SYS_gettid), SIGUSR1));

  // Blocking and pending.
  uint64_t set = 1ull << (SIGUSR1 - 1), old = 0, pending = 0;
  check("rt_sigprocmask block", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, &old, 8));
  check("rt_sigprocmask bad how", syscall(SYS_rt_sigprocmask, 17, &set, NULL, 8));
  check("rt_sigprocmask bad size", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 16));
  check("rt_sigprocmask bad pointer", syscall(SYS_rt_sigprocmask, SIG_BLOCK, KERNEL_PTR, NULL, 8));
  syscall(SYS_kill, syscall(SYS_getpid), SIGUSR1);
  out("blocked handler ran: %d", g_usr1);
  check("rt_sigpending", syscall(SYS_rt_sigpending, &pending, 8));
  out("pending SIGUSR1: %d", (int)((pending >> (SIGUSR1 - 1)) & 1));
  check("rt_sigpending bad pointer", syscall(SYS_rt_sigpending, KERNEL_PTR, 8));
  uint64_t kill_stop = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)), now = 0;
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, &kill_stop, NULL, 8);
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &now, 8);
  out("SIGKILL/SIGSTOP blockable: %d", (now & kill_stop) != 0);
  check("rt_sigprocmask unblock", syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8));
  out("handler ran after unblock: %d", g_usr1);

  // An ignored signal is discarded, not left pending.
  signal(SIGUSR2, SIG_IGN);
  syscall(SYS_kill, syscall(SYS_getpid), SIGUSR2);
  pending = 0;
  syscall(SYS_rt_sigpending, &pending, 8);
  out("ignored SIGUSR2 pending: %d", (int)((pending >> (SIGUSR2 - 1)) & 1));

  // sigaltstack.
  stack_t ss = {.ss_sp = g_alt, .ss_size = sizeof g_alt, .ss_flags = 0}, oss;
  check("sigaltstack query", syscall(SYS_sigaltstack, NULL, &oss));
  out("altstack initially disabled: %d", (oss.ss_flags & SS_DISABLE) != 0);
  stack_t small = {.ss_sp = g_alt, .ss_size = 512, .ss_flags = 0};
  check("sigaltstack too small", syscall(SYS_sigaltstack, &small, NULL));
  stack_t badflags = {.ss_sp = g_alt, .ss_size = sizeof g_alt, .ss_flags = 0x1234};
  check("sigaltstack bad flags", syscall(SYS_sigaltstack, &badflags, NULL));
  check("sigaltstack set", syscall(SYS_sigaltstack, &ss, NULL));
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR2, &sa, NULL);
  syscall(SYS_kill, syscall(SYS_getpid), SIGUSR2);
  out("SA_ONSTACK handler ran: %d on alternate stack: %d", g_usr2, g_on_alt);

  // EINTR: a blocked read ends when a handler without SA_RESTART runs.
  int p[2];
  syscall(SYS_pipe, p);
  sa.sa_handler = on_usr1;
  sa.sa_flags = 0;
  sigaction(SIGUSR1, &sa, NULL);
  char c;
  long child = signal_parent_later();
  check("read interrupted", syscall(SYS_read, p[0], &c, 1));
  int status;
  syscall(SYS_wait4, child, &status, 0, NULL);
  // With SA_RESTART the read resumes; the child writes after signalling.
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  child = syscall(SYS_fork);
  if (child == 0) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    syscall(SYS_nanosleep, &ts, NULL);
    syscall(SYS_kill, syscall(SYS_getppid), SIGUSR1);
    syscall(SYS_nanosleep, &ts, NULL);
    syscall(SYS_write, p[1], "r", 1);
    syscall(SYS_exit_group, 0);
  }
  check("read restarted", syscall(SYS_read, p[0], &c, 1));
  syscall(SYS_wait4, child, &status, 0, NULL);
  // nanosleep is never restarted by SA_RESTART: EINTR with the time left.
  child = signal_parent_later();
  struct timespec long_sleep = {5, 0}, left = {0, 0};
  check("nanosleep interrupted", syscall(SYS_nanosleep, &long_sleep, &left));
  out("time left reported: %d", left.tv_sec > 0 && left.tv_sec <= 5);
  syscall(SYS_wait4, child, &status, 0, NULL);
  out("SIGUSR1 handled in total: %d", g_usr1);

  // SIGCHLD ignored: children are reaped at exit and wait reports ECHILD.
  signal(SIGCHLD, SIG_IGN);
  child = syscall(SYS_fork);
  if (child == 0) syscall(SYS_exit_group, 0);
  check("wait4 with SIGCHLD ignored", syscall(SYS_wait4, -1, &status, 0, NULL));
  done("signals");
  return 0;
}
