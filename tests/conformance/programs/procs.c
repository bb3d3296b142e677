// Processes: fork, wait4 (statuses of exits and signals, WNOHANG, ECHILD), waitid (WEXITED,
// WNOHANG, bad arguments), execve (argument passing, ENOENT, EFAULT, a failed exec keeps
// the process), and descriptors across fork and exec (shared offset, close-on-exec).
#include "conf.h"
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

static void child_status(const char *name, int status) {
  if (WIFEXITED(status)) out("%s: exited %d", name, WEXITSTATUS(status));
  else if (WIFSIGNALED(status)) out("%s: killed by %d", name, WTERMSIG(status));
  else out("%s: status %x", name, status);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "exec-child") == 0) {
    // The exec'ed image: the parent's close-on-exec descriptor is gone, the other is open.
    out("exec child: argc=%d arg2=%s", argc, argc > 2 ? argv[2] : "-");
    out("exec child: cloexec fd %s", syscall(SYS_fcntl, 20, F_GETFD) == -1 ? "closed" : "open");
    out("exec child: plain fd %s", syscall(SYS_fcntl, 21, F_GETFD) == -1 ? "closed" : "open");
    return 7;
  }
  int status = 0;
  check("wait4 no children", syscall(SYS_wait4, -1, &status, 0, NULL));
  check("wait4 WNOHANG no children", syscall(SYS_wait4, -1, &status, WNOHANG, NULL));
  check("wait4 bad options", syscall(SYS_wait4, -1, &status, 0x40000000, NULL));

  long pid = syscall(SYS_fork);
  if (pid == 0) syscall(SYS_exit_group, 3);
  check_ok("fork", pid);
  check("wait4 pid", syscall(SYS_wait4, pid, &status, 0, NULL) == pid);
  child_status("child 1", status);
  check("wait4 reaped", syscall(SYS_wait4, pid, &status, 0, NULL));

  pid = syscall(SYS_fork);
  if (pid == 0) {
    syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
    for (;;) pause();
  }
  check("wait4 killed", syscall(SYS_wait4, -1, &status, 0, NULL) == pid);
  child_status("child 2", status);

  // A child blocked reading a pipe: WNOHANG sees it running, SIGTERM ends it.
  int p[2];
  syscall(SYS_pipe, p);
  pid = syscall(SYS_fork);
  if (pid == 0) {
    char c;
    ssize_t r = read(p[0], &c, 1);
    (void)r;
    syscall(SYS_exit_group, 0);
  }
  check("wait4 WNOHANG running", syscall(SYS_wait4, pid, &status, WNOHANG, NULL));
  check("kill SIGTERM", syscall(SYS_kill, pid, SIGTERM));
  check("wait4 terminated", syscall(SYS_wait4, pid, &status, 0, NULL) == pid);
  child_status("child 3", status);
  pid = syscall(SYS_fork);
  if (pid == 0) syscall(SYS_exit_group, 4);
  check("wait4 status to kernel address", syscall(SYS_wait4, pid, KERNEL_PTR, 0, NULL));
  // Linux reaps the child even when it cannot store the status: nothing is left to wait for.
  long again = syscall(SYS_wait4, pid, &status, 0, NULL);
  check("wait4 after EFAULT", again == pid ? 1 : again);

  // waitid.
  siginfo_t si;
  check("waitid no children", syscall(SYS_waitid, P_ALL, 0, &si, WEXITED, NULL));
  check("waitid no options", syscall(SYS_waitid, P_ALL, 0, &si, 0, NULL));
  check("waitid bad idtype", syscall(SYS_waitid, 42, 0, &si, WEXITED, NULL));
  pid = syscall(SYS_fork);
  if (pid == 0) syscall(SYS_exit_group, 5);
  memset(&si, 0, sizeof si);
  check("waitid pid", syscall(SYS_waitid, P_PID, pid, &si, WEXITED, NULL));
  out("waitid: signo=%d code=%d status=%d pid-match=%d", si.si_signo, si.si_code, si.si_status,
      si.si_pid == pid);
  memset(&si, 0, sizeof si);
  check("waitid WNOHANG nothing", syscall(SYS_waitid, P_ALL, 0, &si, WEXITED | WNOHANG, NULL));

  // Descriptors across fork: one open file description, one offset.
  long fd = syscall(SYS_open, "/proc/self/exe", O_RDONLY);
  (void)fd;
  make_scratch();
  long f = syscall(SYS_open, "shared", O_CREAT | O_RDWR | O_TRUNC, 0644);
  pid = syscall(SYS_fork);
  if (pid == 0) {
    ssize_t w = write((int)f, "child;", 6);
    syscall(SYS_exit_group, w == 6 ? 0 : 1);
  }
  syscall(SYS_wait4, pid, &status, 0, NULL);
  check("offset after child write", syscall(SYS_lseek, f, 0, SEEK_CUR));
  syscall(SYS_close, f);
  syscall(SYS_unlink, "shared");
  syscall(SYS_chdir, "/");
  syscall(SYS_rmdir, g_dir);

  // execve.
  char *bad_argv[] = {"x", NULL};
  check("execve missing", syscall(SYS_execve, "/no/such/program", bad_argv, NULL));
  check("execve bad path", syscall(SYS_execve, KERNEL_PTR, bad_argv, NULL));
  check("execve bad argv", syscall(SYS_execve, "/proc/self/exe", KERNEL_PTR, NULL));
  check("execve directory", syscall(SYS_execve, "/", bad_argv, NULL));
  syscall(SYS_dup3, 1, 20, O_CLOEXEC);
  syscall(SYS_dup2, 1, 21);
  pid = syscall(SYS_fork);
  if (pid == 0) {
    char *args[] = {argv[0], "exec-child", "second", NULL};
    char *envp[] = {"A=1", NULL};
    syscall(SYS_execve, "/proc/self/exe", args, envp);
    syscall(SYS_exit_group, 99);
  }
  check("wait4 exec child", syscall(SYS_wait4, pid, &status, 0, NULL) == pid);
  child_status("exec child", status);
  done("procs");
  return 0;
}
