// tests/userspace/oom.c: running out of memory. A child maps and touches 1 MiB at a time
// until mmap fails (ENOMEM) or the kernel kills it; the parent checks the kernel is still
// there by doing it again (the first child's memory must have come back), then exits 0.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void eat(void) {
  long mib = 0;
  for (;;) {
    char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      printf("oom: mmap failed with %s after %s\n", errno == ENOMEM ? "ENOMEM" : "another error",
             mib > 16 ? "more than 16 MiB" : "less than 16 MiB");
      fflush(stdout);
      _exit(errno == ENOMEM ? 0 : 1);
    }
    for (long i = 0; i < (1 << 20); i += 4096) p[i] = 1;
    mib++;
  }
}

int main(void) {
  for (int round = 1; round <= 2; round++) {
    long pid = syscall(SYS_fork);
    if (pid == 0) eat();
    int status = 0;
    waitpid((pid_t)pid, &status, 0);
    if (WIFEXITED(status)) printf("oom: round %d: child exited %d\n", round, WEXITSTATUS(status));
    else printf("oom: round %d: child killed by signal %d\n", round, WTERMSIG(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) return 1;
  }
  printf("oom: the kernel survived\n");
  return 0;
}
