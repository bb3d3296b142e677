// tests/userspace/forkbomb.c: a fork bomb bounded by the kernel's process and thread tables.
// The parent forks children that wait on a pipe until fork fails; it must fail with EAGAIN
// (ENOMEM is also accepted and reported), never panic. Closing the pipe lets every child
// exit; all are reaped, and a fork works again afterwards.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  int p[2];
  if (pipe(p) != 0) return 1;
  long children = 0;
  int err = 0;
  for (;;) {
    long pid = syscall(SYS_fork);
    if (pid == 0) {
      char c;
      close(p[1]);
      ssize_t r = read(p[0], &c, 1);
      syscall(SYS_exit_group, r == 0 ? 0 : 1);
    }
    if (pid < 0) { err = errno; break; }
    children++;
    if (children > 100000) break;
  }
  printf("forkbomb: fork failed with %s after %s children\n",
         err == EAGAIN ? "EAGAIN" : err == ENOMEM ? "ENOMEM" : "another error", children > 10 ? "more than 10" : "few");
  fflush(stdout);
  close(p[1]);
  long reaped = 0;
  int status;
  while (wait(&status) > 0) reaped++;
  printf("forkbomb: reaped all: %s\n", reaped == children ? "yes" : "no");
  long pid = syscall(SYS_fork);
  if (pid == 0) syscall(SYS_exit_group, 0);
  printf("forkbomb: fork after the bomb: %s\n", pid > 0 && waitpid((pid_t)pid, &status, 0) == pid ? "ok" : "failed");
  return err == EAGAIN || err == ENOMEM ? 0 : 1;
}
