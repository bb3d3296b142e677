// Signals, fork and wait on the booted kernel, checked against what Linux does (signal(7),
// sigaction(2), wait(2), fork(2)). Prints each failed check and, at the end, "signals: all N
// checks passed" or "signals: K of N checks failed".
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int checks, failures;

static void check(int ok, const char* what) {
  ++checks;
  if (!ok) {
    ++failures;
    printf("FAILED: %s (errno %d)\n", what, errno);
  }
}

static volatile sig_atomic_t usr1_count, usr1_code, usr1_pid, usr1_on_altstack, chld_count, chld_pid, chld_status;
static volatile double fpu_value;
static char altstack[65536];

static void on_usr1(int signo, siginfo_t* info, void* context) {
  (void)context;
  ++usr1_count;
  usr1_code = info->si_code;
  usr1_pid = info->si_pid;
  char here;
  usr1_on_altstack = &here >= altstack && &here < altstack + sizeof(altstack);
  // Clobber SSE registers: the interrupted code's must come back.
  fpu_value = fpu_value * 3.0 + signo;
}

static void on_chld(int signo, siginfo_t* info, void* context) {
  (void)signo, (void)context;
  ++chld_count;
  chld_pid = info->si_pid;
  chld_status = info->si_status;
}

static sigjmp_buf segv_jump;
static volatile void* segv_address;
static volatile int segv_code;
static void on_segv(int signo, siginfo_t* info, void* context) {
  (void)signo, (void)context;
  segv_address = info->si_addr;
  segv_code = info->si_code;
  siglongjmp(segv_jump, 1);
}

static int resethand_count;
static void on_resethand(int signo) {
  (void)signo;
  ++resethand_count;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));

  // A handler with siginfo, on the alternate stack.
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};
  check(sigaltstack(&ss, NULL) == 0, "sigaltstack");
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  check(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction SIGUSR1");
  double before = 1.5;
  fpu_value = 2.0;
  check(kill(getpid(), SIGUSR1) == 0, "kill self");
  check(usr1_count == 1, "the handler ran once");
  check(usr1_code == SI_USER, "si_code SI_USER for kill");
  check(usr1_pid == getpid(), "si_pid is the sender");
  check(usr1_on_altstack, "SA_ONSTACK ran on the alternate stack");
  check(before * 2.0 == 3.0, "SSE state survives a handler");
  check(fpu_value == 16.0, "the handler computed with the FPU");
  check(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1) == 0, "tgkill self");
  check(usr1_count == 2 && usr1_code == SI_TKILL, "tgkill: si_code SI_TKILL");

  // Blocked signals wait in the pending set and arrive once unblocked.
  sigset_t block, pending, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  check(sigprocmask(SIG_BLOCK, &block, &old) == 0, "block SIGUSR1");
  kill(getpid(), SIGUSR1);
  kill(getpid(), SIGUSR1);
  check(usr1_count == 2, "a blocked signal is not delivered");
  check(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1), "sigpending shows it");
  check(sigprocmask(SIG_SETMASK, &old, NULL) == 0, "unblock");
  check(usr1_count == 3, "delivered once at unblock (standard signals merge)");

  // Errors.
  errno = 0;
  check(sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL, "sigaction(SIGKILL) is EINVAL");
  errno = 0;
  check(kill(999999, SIGUSR1) == -1 && errno == ESRCH, "kill of no such pid is ESRCH");
  errno = 0;
  check(kill(getpid(), 65) == -1 && errno == EINVAL, "kill with signal 65 is EINVAL");
  check(kill(getpid(), 0) == 0, "kill with signal 0 checks only");
  errno = 0;
  check(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "waitpid without children is ECHILD");

  // SA_RESETHAND: the second signal gets the default action (ignored for SIGWINCH... use SIGURG).
  struct sigaction once;
  memset(&once, 0, sizeof(once));
  once.sa_handler = on_resethand;
  once.sa_flags = SA_RESETHAND;
  sigaction(SIGURG, &once, NULL);
  raise(SIGURG);
  raise(SIGURG);
  check(resethand_count == 1, "SA_RESETHAND runs the handler once");

  // A fault handler sees the address and leaves with siglongjmp.
  struct sigaction segv;
  memset(&segv, 0, sizeof(segv));
  segv.sa_sigaction = on_segv;
  segv.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &segv, NULL);
  if (sigsetjmp(segv_jump, 1) == 0) {
    *(volatile int*)0x1234 = 1;
    check(0, "the fault returned");
  }
  check(segv_address == (void*)0x1234, "si_addr of SIGSEGV");
  check(segv_code == SEGV_MAPERR, "SEGV_MAPERR");
  void* ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sigsetjmp(segv_jump, 1) == 0) *(volatile int*)ro = 1;
  check(segv_address == ro && segv_code == SEGV_ACCERR, "SEGV_ACCERR on a read-only page");

  // fork: copy-on-write memory, exit status, SIGCHLD with siginfo.
  struct sigaction chld;
  memset(&chld, 0, sizeof(chld));
  chld.sa_sigaction = on_chld;
  chld.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGCHLD, &chld, NULL);
  static int shared_value = 5;
  int* shared_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  *shared_page = 1;
  pid_t child = fork();
  if (child == 0) {
    shared_value = 6;
    *shared_page = 2;
    check(getppid() > 0, "getppid in the child");
    _exit(failures == 0 ? 7 : 99);
  }
  check(child > 0, "fork");
  int status = 0;
  check(waitpid(child, &status, 0) == child, "waitpid returns the child");
  check(WIFEXITED(status) && WEXITSTATUS(status) == 7, "exit status 7");
  check(shared_value == 5, "private memory is copied on write");
  check(*shared_page == 2, "MAP_SHARED stays shared across fork");
  check(chld_count == 1 && chld_pid == child && chld_status == 7, "SIGCHLD with si_pid and si_status");

  // A child killed by a signal: the status says which, with the core bit for SIGSEGV.
  child = fork();
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);
    volatile uintptr_t bad = 8;
    *(volatile int*)bad = 0;
    _exit(0);
  }
  check(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV &&
            WCOREDUMP(status), "child killed by SIGSEGV, core bit");
  child = fork();
  if (child == 0) {
    for (;;) pause();
  }
  check(kill(child, SIGTERM) == 0, "kill the child");
  check(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM &&
            !WCOREDUMP(status), "child killed by SIGTERM");
  siginfo_t info;
  child = fork();
  if (child == 0) _exit(3);
  memset(&info, 0, sizeof(info));
  check(waitid(P_PID, child, &info, WEXITED) == 0 && info.si_pid == child && info.si_code == CLD_EXITED &&
            info.si_status == 3, "waitid: CLD_EXITED with status 3");

  // vfork: the parent waits until the child exits.
  child = vfork();
  if (child == 0) _exit(4);
  check(waitpid(child, &status, 0) == child && WEXITSTATUS(status) == 4, "vfork child exit status");

  // Process groups.
  check(getpgid(0) == getpgrp(), "getpgid(0) is getpgrp()");
  child = fork();
  if (child == 0) {
    if (setpgid(0, 0) != 0) _exit(1);
    if (getpgrp() != getpid()) _exit(2);
    // A process group leader cannot start a session (setsid(2)).
    if (setsid() != -1 || errno != EPERM) _exit(3);
    _exit(0);
  }
  check(waitpid(child, &status, 0) == child && WEXITSTATUS(status) == 0, "setpgid(0, 0); setsid is EPERM for a group leader");
  child = fork();
  if (child == 0) {
    if (setsid() != getpid()) _exit(1);
    if (getsid(0) != getpid() || getpgrp() != getpid()) _exit(2);
    _exit(0);
  }
  check(waitpid(child, &status, 0) == child && WEXITSTATUS(status) == 0, "setsid in a child: new session and group");
  errno = 0;
  check(setsid() == -1 && errno == EPERM, "setsid in PID 1 (a session leader) is EPERM");

  if (failures == 0) printf("signals: all %d checks passed\n", checks);
  else printf("signals: %d of %d checks failed\n", failures, checks);
  return failures == 0 ? 0 : 1;
}
