// Pipes and readiness: pipe/pipe2, EAGAIN with O_NONBLOCK, EOF, EPIPE with SIGPIPE, poll,
// ppoll, select, pselect6, epoll (create, ctl, wait, ONESHOT, EPERM on a regular file),
// eventfd (counter and semaphore modes) and timerfd (CLOCK_MONOTONIC, one-shot).
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <time.h>

static volatile int g_sigpipes;
static void on_sigpipe(int sig) { (void)sig; g_sigpipes++; }

int main(void) {
  for (int fd = 3; fd < 64; fd++) syscall(SYS_close, fd);
  int p[2];
  char buf[128];
  check("pipe", syscall(SYS_pipe, p));
  out("pipe fds: %d %d", p[0], p[1]);
  check("pipe bad pointer", syscall(SYS_pipe, KERNEL_PTR));
  check("pipe2 bad flags", syscall(SYS_pipe2, p, 0x1234));
  check("write pipe", syscall(SYS_write, p[1], "abc", 3));
  check("read pipe", syscall(SYS_read, p[0], buf, sizeof buf));
  check("write to read end", syscall(SYS_write, p[0], "x", 1));
  check("read from write end", syscall(SYS_read, p[1], buf, 1));
  check("lseek pipe", syscall(SYS_lseek, p[0], 0, SEEK_SET));
  check("fcntl nonblock", syscall(SYS_fcntl, p[0], F_SETFL, O_NONBLOCK));
  check("read empty nonblock", syscall(SYS_read, p[0], buf, sizeof buf));
  int fionread = -1;
  syscall(SYS_write, p[1], "12345", 5);
  check("ioctl FIONREAD", syscall(SYS_ioctl, p[0], FIONREAD, &fionread));
  out("FIONREAD: %d", fionread);
  struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
  check("poll both ready", syscall(SYS_poll, pf, 2, 0));
  out("poll revents: %x %x", pf[0].revents, pf[1].revents);
  check("poll bad pointer", syscall(SYS_poll, KERNEL_PTR, 1, 0));
  check("poll too many", syscall(SYS_poll, pf, 1u << 20, 0));
  struct pollfd neg = {-1, POLLIN, 0x55};
  check("poll negative fd", syscall(SYS_poll, &neg, 1, 0));
  out("poll negative fd revents: %x", neg.revents);
  struct pollfd bad = {999, POLLIN, 0};
  check("poll closed fd", syscall(SYS_poll, &bad, 1, 0));
  out("poll closed fd revents: %x", bad.revents);
  struct timespec zero = {0, 0};
  check("ppoll", syscall(SYS_ppoll, pf, 1, &zero, NULL, 8));
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  struct timeval tv = {0, 0};
  check("select readable", syscall(SYS_select, p[0] + 1, &rd, NULL, NULL, &tv));
  check("select bit set", FD_ISSET(p[0], &rd));
  FD_ZERO(&rd);
  FD_SET(40, &rd);
  check("select closed fd", syscall(SYS_select, 41, &rd, NULL, NULL, &tv));
  check("select negative nfds", syscall(SYS_select, -1, NULL, NULL, NULL, &tv));
  struct timespec bad_ts = {0, 2000000000};
  check("pselect6 bad timeout", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &bad_ts, NULL));
  check("pselect6 no fds", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &zero, NULL));
  check("read pipe data", syscall(SYS_read, p[0], buf, sizeof buf));

  // EPIPE and SIGPIPE: ignored, the write fails; handled, the handler runs as well.
  syscall(SYS_close, p[0]);
  signal(SIGPIPE, SIG_IGN);
  check("write no reader (ignored)", syscall(SYS_write, p[1], "x", 1));
  signal(SIGPIPE, on_sigpipe);
  check("write no reader (handled)", syscall(SYS_write, p[1], "x", 1));
  out("sigpipe handler ran: %d", g_sigpipes);
  syscall(SYS_close, p[1]);

  check("pipe2 nonblock cloexec", syscall(SYS_pipe2, p, O_NONBLOCK | O_CLOEXEC));
  check("pipe2 getfd", syscall(SYS_fcntl, p[0], F_GETFD));
  check("pipe2 getfl", syscall(SYS_fcntl, p[1], F_GETFL) & (O_ACCMODE | O_NONBLOCK));
  // Fill the pipe: a non-blocking writer gets a short count and then EAGAIN.
  static char big[1 << 16];
  long total = 0, r;
  while ((r = syscall(SYS_write, p[1], big, sizeof big)) > 0) total += r;
  check("write full pipe", r);
  out("pipe capacity: %ld", total);
  syscall(SYS_close, p[1]);
  long got = 0;
  while ((r = syscall(SYS_read, p[0], big, sizeof big)) > 0) got += r;
  check("read to EOF", r);
  out("read back: %ld", got);
  syscall(SYS_close, p[0]);

  // epoll.
  check("epoll_create zero", syscall(SYS_epoll_create, 0));
  long ep = syscall(SYS_epoll_create, 256);
  check("epoll_create", ep);
  check("epoll_create1 bad flags", syscall(SYS_epoll_create1, 1));
  syscall(SYS_pipe2, p, 0);
  struct epoll_event ev = {EPOLLIN | EPOLLONESHOT, {.u64 = 77}};
  check("epoll_ctl add", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
  check("epoll_ctl add again", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
  check("epoll_ctl add self", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, ep, &ev));
  check("epoll_ctl bad op", syscall(SYS_epoll_ctl, ep, 99, p[0], &ev));
  check("epoll_ctl mod missing", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, p[1], &ev));
  check("epoll_ctl not epoll", syscall(SYS_epoll_ctl, p[0], EPOLL_CTL_ADD, p[1], &ev));
  check("epoll_ctl bad event pointer", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[1], KERNEL_PTR));
  long nul = syscall(SYS_open, "/dev/null", O_RDONLY);
  check("epoll_ctl /dev/null", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, nul, &ev));
  syscall(SYS_close, nul);
  struct epoll_event evs[4];
  check("epoll_wait none", syscall(SYS_epoll_wait, ep, evs, 4, 0));
  syscall(SYS_write, p[1], "e", 1);
  check("epoll_wait ready", syscall(SYS_epoll_wait, ep, evs, 4, 0));
  out("epoll event: %x %lu", evs[0].events, (unsigned long)evs[0].data.u64);
  check("epoll_wait oneshot disarmed", syscall(SYS_epoll_wait, ep, evs, 4, 0));
  check("epoll_ctl rearm", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, p[0], &ev));
  check("epoll_wait rearmed", syscall(SYS_epoll_wait, ep, evs, 4, 0));
  check("epoll_ctl del", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, p[0], NULL));
  check("epoll_wait zero max", syscall(SYS_epoll_wait, ep, evs, 0, 0));
  check("epoll_wait bad buffer", syscall(SYS_epoll_wait, ep, KERNEL_PTR, 4, 0));
  check("epoll_pwait", syscall(SYS_epoll_pwait, ep, evs, 4, 0, NULL, 8));
  syscall(SYS_close, p[0]);
  syscall(SYS_close, p[1]);

  // eventfd.
  long efd = syscall(SYS_eventfd2, 3, EFD_NONBLOCK);
  check("eventfd2", efd >= 0 ? 0 : -1);
  uint64_t v = 0;
  check("eventfd read", syscall(SYS_read, efd, &v, 8));
  out("eventfd value: %lu", (unsigned long)v);
  check("eventfd read empty", syscall(SYS_read, efd, &v, 8));
  check("eventfd short read", syscall(SYS_read, efd, &v, 4));
  v = 5;
  check("eventfd write", syscall(SYS_write, efd, &v, 8));
  v = ~0ull;
  check("eventfd write max", syscall(SYS_write, efd, &v, 8));
  v = 0xfffffffffffffffeull;
  check("eventfd overflow nonblock", syscall(SYS_write, efd, &v, 8));
  syscall(SYS_close, efd);
  check("eventfd2 bad flags", syscall(SYS_eventfd2, 0, 0x4));
  efd = syscall(SYS_eventfd2, 2, EFD_SEMAPHORE | EFD_NONBLOCK);
  syscall(SYS_read, efd, &v, 8);
  out("semaphore read: %lu", (unsigned long)v);
  syscall(SYS_read, efd, &v, 8);
  check("semaphore second read", syscall(SYS_read, efd, &v, 8));
  syscall(SYS_close, efd);

  // timerfd.
  check("timerfd_create bad clock", syscall(SYS_timerfd_create, 99, 0));
  check("timerfd_create bad flags", syscall(SYS_timerfd_create, CLOCK_MONOTONIC, 0x1));
  long tfd = syscall(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_NONBLOCK);
  check("timerfd_create", tfd >= 0 ? 0 : -1);
  check("timerfd read unarmed", syscall(SYS_read, tfd, &v, 8));
  struct itimerspec its = {{0, 0}, {0, 20 * 1000 * 1000}};
  check("timerfd_settime", syscall(SYS_timerfd_settime, tfd, 0, &its, NULL));
  struct itimerspec bad_its = {{0, 0}, {0, 1000000000}};
  check("timerfd_settime bad nsec", syscall(SYS_timerfd_settime, tfd, 0, &bad_its, NULL));
  check("timerfd_settime bad flags", syscall(SYS_timerfd_settime, tfd, 0x100, &its, NULL));
  struct pollfd tp = {(int)tfd, POLLIN, 0};
  check("poll timerfd", syscall(SYS_poll, &tp, 1, 2000));
  check("timerfd read", syscall(SYS_read, tfd, &v, 8));
  out("timerfd expirations: %lu", (unsigned long)v);
  struct itimerspec cur;
  check("timerfd_gettime", syscall(SYS_timerfd_gettime, tfd, &cur));
  out("timerfd disarmed: %d", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
  check("timerfd_gettime bad fd", syscall(SYS_timerfd_gettime, 1, &cur));
  syscall(SYS_close, tfd);
  done("events");
  return 0;
}
