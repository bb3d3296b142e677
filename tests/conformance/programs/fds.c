// Descriptors: dup, dup2, dup3, fcntl (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD/F_SETFD, F_GETFL/
// F_SETFL), close_range, the lowest-free-number rule, and EBADF/EINVAL on bad arguments.
#include "conf.h"
#include <fcntl.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif

int main(void) {
  // Descriptors 0-2 are whatever the runner gave; everything here starts at a fixed number.
  for (int fd = 3; fd < 64; fd++) syscall(SYS_close, fd);
  long fd = syscall(SYS_open, "/dev/null", O_RDWR);
  check("open /dev/null", fd);
  check("dup", syscall(SYS_dup, fd));
  check("dup bad", syscall(SYS_dup, 9999));
  check("dup2", syscall(SYS_dup2, fd, 10));
  check("dup2 same", syscall(SYS_dup2, fd, fd));
  check("dup2 same bad", syscall(SYS_dup2, 50, 50));
  check("dup2 bad old", syscall(SYS_dup2, 50, 11));
  check("dup2 huge new", syscall(SYS_dup2, fd, 1 << 30));
  check("dup2 negative new", syscall(SYS_dup2, fd, -1));
  check("dup3 same", syscall(SYS_dup3, fd, fd, 0));
  check("dup3 bad flags", syscall(SYS_dup3, fd, 12, 1));
  check("dup3 cloexec", syscall(SYS_dup3, fd, 12, O_CLOEXEC));
  check("fcntl getfd cloexec", syscall(SYS_fcntl, 12, F_GETFD));
  check("fcntl getfd plain", syscall(SYS_fcntl, 10, F_GETFD));
  check("fcntl setfd", syscall(SYS_fcntl, 10, F_SETFD, FD_CLOEXEC));
  check("fcntl getfd after set", syscall(SYS_fcntl, 10, F_GETFD));
  check("fcntl dupfd", syscall(SYS_fcntl, fd, F_DUPFD, 20));
  check("fcntl dupfd taken", syscall(SYS_fcntl, fd, F_DUPFD, 20));
  check("fcntl dupfd cloexec", syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 30));
  check("fcntl getfd of dupfd_cloexec", syscall(SYS_fcntl, 30, F_GETFD));
  check("fcntl dupfd negative", syscall(SYS_fcntl, fd, F_DUPFD, -1));
  check("fcntl getfl", syscall(SYS_fcntl, fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_APPEND));
  check("fcntl setfl nonblock", syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK | O_APPEND));
  check("fcntl getfl after", syscall(SYS_fcntl, fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_APPEND));
  check("fcntl getfl shared by dup", syscall(SYS_fcntl, 10, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_APPEND));
  check("fcntl bad fd", syscall(SYS_fcntl, 9999, F_GETFD));
  check("fcntl bad cmd", syscall(SYS_fcntl, fd, 123456));
  check("close", syscall(SYS_close, 4));
  check("lowest free", syscall(SYS_dup, fd));
  check("close_range cloexec", syscall(SYS_close_range, 20, 40, CLOSE_RANGE_CLOEXEC));
  check("fcntl getfd after range cloexec", syscall(SYS_fcntl, 20, F_GETFD));
  check("close_range", syscall(SYS_close_range, 10, 40, 0));
  check("closed by range", syscall(SYS_fcntl, 20, F_GETFD));
  check("close_range bad flags", syscall(SYS_close_range, 10, 40, 0x80));
  check("close_range reversed", syscall(SYS_close_range, 40, 10, 0));
  check("close_range all above", syscall(SYS_close_range, 5, ~0u, 0));
  check("next after range", syscall(SYS_dup, fd));
  check("close -1", syscall(SYS_close, -1));
  check("write to dup of null", syscall(SYS_write, 4, "x", 1));
  long p = syscall(SYS_open, "/dev/null", O_RDONLY | O_CLOEXEC);
  check("open cloexec getfd", syscall(SYS_fcntl, p, F_GETFD));
  check("write to read-only", syscall(SYS_write, p, "x", 1));
  done("fds");
  return 0;
}
