// AF_UNIX sockets: socketpair (stream, datagram, seqpacket) both ways, EAGAIN, EOF after
// shutdown, EPIPE with and without SIGPIPE, ECONNRESET for unread data, poll readiness,
// SCM_RIGHTS within a process (MSG_CMSG_CLOEXEC, MSG_CTRUNC, descriptors closed by read) and
// across fork, MSG_TRUNC, named sockets (abstract, path, autobind), options and bad arguments.
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static volatile int g_sigpipes;
static void on_sigpipe(int sig) { (void)sig; g_sigpipes++; }

// sendmsg with `n` descriptors in one SCM_RIGHTS message.
static long send_fds(int sock, const char *data, size_t len, const int *fds, int n) {
  struct iovec iov = {(void *)data, len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 8)];
  } ctl;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (n > 0) {
    memset(&ctl, 0, sizeof ctl);
    m.msg_control = ctl.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  }
  return syscall(SYS_sendmsg, sock, &m, 0);
}

// recvmsg with `room` bytes of control buffer; prints what came back.
static long recv_fds(const char *name, int sock, size_t room, int flags, int *fd_out) {
  char data[64];
  union {
    struct cmsghdr align;
    char buf[256];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = {data, sizeof data};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = room ? ctl.buf : NULL;
  m.msg_controllen = room;
  long r = syscall(SYS_recvmsg, sock, &m, flags);
  check(name, r);
  if (r < 0) return r;
  struct cmsghdr *c = room ? CMSG_FIRSTHDR(&m) : NULL;
  out("%s: flags %x controllen %zu cmsg_len %zu", name, m.msg_flags & ~MSG_CMSG_CLOEXEC, (size_t)m.msg_controllen,
      c ? (size_t)c->cmsg_len : 0);
  if (c && fd_out) memcpy(fd_out, CMSG_DATA(c), sizeof(int));
  return r;
}

static socklen_t abstract_name(struct sockaddr_un *a, const char *name) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  size_t n = strlen(name);
  memcpy(a->sun_path + 1, name, n);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int main(void) {
  for (int fd = 3; fd < 64; fd++) syscall(SYS_close, fd);
  make_scratch();
  struct sigaction sa = {0};
  sa.sa_handler = on_sigpipe;
  sigaction(SIGPIPE, &sa, NULL);
  char buf[256];
  int sv[2], pv[2];

  // Creation and bad arguments.
  check("socket bad family", syscall(SYS_socket, 4242, SOCK_STREAM, 0));
  check("socket AF_UNIX bad type flag", syscall(SYS_socket, AF_UNIX, SOCK_STREAM | 0x100, 0));
  check("socket AF_UNIX bad protocol", syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 6));
  check("socket AF_UNIX SOCK_RDM", syscall(SYS_socket, AF_UNIX, SOCK_RDM, 0));
  check("socketpair AF_INET", syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv));
  check("socketpair bad pointer", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, KERNEL_PTR));
  check("socketpair", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv));
  out("socketpair fds: %d %d", sv[0], sv[1]);
  check("pipe", syscall(SYS_pipe, pv));
  check("sendmsg on a pipe", syscall(SYS_sendmsg, pv[1], buf, 0));
  check("getsockopt on a pipe", syscall(SYS_getsockopt, pv[0], SOL_SOCKET, SO_TYPE, buf, buf));
  check("recvmsg bad msghdr", syscall(SYS_recvmsg, sv[0], KERNEL_PTR, 0));
  int v = 0;
  socklen_t vl = sizeof v;
  check("getsockopt SO_TYPE", syscall(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &v, &vl));
  out("SO_TYPE: %d len %d", v, (int)vl);
  vl = sizeof v;
  check("getsockopt SO_DOMAIN", syscall(SYS_getsockopt, sv[0], SOL_SOCKET, SO_DOMAIN, &v, &vl));
  out("SO_DOMAIN: %d", v);
  vl = sizeof v;
  check("getsockopt SO_ERROR", syscall(SYS_getsockopt, sv[0], SOL_SOCKET, SO_ERROR, &v, &vl));
  out("SO_ERROR: %d", v);
  vl = (socklen_t)-1;
  check("getsockopt negative length", syscall(SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &v, &vl));
  check("setsockopt short", syscall(SYS_setsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &v, 2));
  v = 4096;
  check("setsockopt SO_SNDBUF", syscall(SYS_setsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
  vl = sizeof v;
  check("getsockopt SO_SNDBUF", syscall(SYS_getsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &v, &vl));
  out("SO_SNDBUF: %d", v);
  check("setsockopt SOL_TCP on AF_UNIX", syscall(SYS_setsockopt, sv[0], 6, 1, &v, sizeof v));
  struct sockaddr_un name;
  socklen_t nl = sizeof name;
  check("getsockname", syscall(SYS_getsockname, sv[0], &name, &nl));
  out("getsockname: len %d family %d", (int)nl, name.sun_family);
  check("shutdown bad how", syscall(SYS_shutdown, sv[0], 7));

  // Both ways, readiness, EAGAIN, EOF.
  check("write 0->1", syscall(SYS_write, sv[0], "hello", 5));
  struct pollfd pf[2] = {{sv[1], POLLIN | POLLOUT, 0}, {sv[0], POLLIN | POLLOUT, 0}};
  check("poll", syscall(SYS_poll, pf, 2, 0));
  out("poll revents: %x %x", pf[0].revents, pf[1].revents);
  int avail = -1;
  check("FIONREAD", syscall(SYS_ioctl, sv[1], FIONREAD, &avail));
  out("FIONREAD: %d", avail);
  check("recv MSG_PEEK", syscall(SYS_recvfrom, sv[1], buf, sizeof buf, MSG_PEEK, NULL, NULL));
  check("read 1", syscall(SYS_read, sv[1], buf, sizeof buf));
  check("write 1->0", syscall(SYS_write, sv[1], "world!", 6));
  check("read 0", syscall(SYS_read, sv[0], buf, sizeof buf));
  check("recv MSG_DONTWAIT empty", syscall(SYS_recvfrom, sv[0], buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
  check("shutdown SHUT_WR", syscall(SYS_shutdown, sv[0], SHUT_WR));
  check("send after SHUT_WR, MSG_NOSIGNAL", syscall(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, NULL, 0));
  out("sigpipes: %d", g_sigpipes);
  pf[0].events = POLLIN | POLLRDHUP;
  check("poll after SHUT_WR", syscall(SYS_poll, pf, 1, 0));
  out("poll revents: %x", pf[0].revents);
  check("read EOF", syscall(SYS_read, sv[1], buf, sizeof buf));
  check("close 1", syscall(SYS_close, sv[1]));
  check("write to a closed peer", syscall(SYS_write, sv[0], "x", 1));
  out("sigpipes: %d", g_sigpipes);
  check("close 0", syscall(SYS_close, sv[0]));

  // ECONNRESET: the peer closed with data unread.
  check("socketpair", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
  check("write to 1", syscall(SYS_write, sv[0], "abc", 3));
  check("write to 0", syscall(SYS_write, sv[1], "abc", 3));
  check("close 1 unread", syscall(SYS_close, sv[1]));
  pf[0].fd = sv[0];
  pf[0].events = POLLIN;
  check("poll", syscall(SYS_poll, pf, 1, 0));
  out("poll revents: %x", pf[0].revents);
  check("read the data", syscall(SYS_read, sv[0], buf, sizeof buf));
  check("read ECONNRESET", syscall(SYS_read, sv[0], buf, sizeof buf));
  check("read EOF", syscall(SYS_read, sv[0], buf, sizeof buf));
  check("close 0", syscall(SYS_close, sv[0]));

  // SCM_RIGHTS within the process.
  check("socketpair", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv));
  int bad = 63;
  check("SCM_RIGHTS closed fd", send_fds(sv[0], "x", 1, &bad, 1));
  check("SCM_RIGHTS pipe read end", send_fds(sv[0], "F", 1, &pv[0], 1));
  int got = -1;
  recv_fds("recvmsg CLOEXEC", sv[1], CMSG_SPACE(sizeof(int)), MSG_CMSG_CLOEXEC, &got);
  out("received fd: %d", got);
  check("received fd FD_CLOEXEC", syscall(SYS_fcntl, got, F_GETFD));
  check("write the pipe", syscall(SYS_write, pv[1], "pipe", 4));
  check("read it through the received fd", syscall(SYS_read, got, buf, sizeof buf));
  check("close received", syscall(SYS_close, got));
  int both[2] = {pv[0], pv[1]};
  check("SCM_RIGHTS two", send_fds(sv[0], "2", 1, both, 2));
  recv_fds("recvmsg room for one", sv[1], CMSG_LEN(sizeof(int)), 0, &got);
  out("received fd: %d", got);
  check("close received", syscall(SYS_close, got));
  check("SCM_RIGHTS again", send_fds(sv[0], "3", 1, both, 2));
  recv_fds("recvmsg no room", sv[1], 0, 0, NULL);
  check("SCM_RIGHTS with read()", send_fds(sv[0], "4", 1, both, 2));
  check("read drops them", syscall(SYS_read, sv[1], buf, sizeof buf));
  check("plain", syscall(SYS_write, sv[0], "ab", 2));
  check("with fds", send_fds(sv[0], "cd", 2, both, 1));
  check("plain after", syscall(SYS_write, sv[0], "ef", 2));
  recv_fds("recvmsg stops after the fds", sv[1], 64, 0, &got);
  check("close received", syscall(SYS_close, got));
  recv_fds("recvmsg the rest", sv[1], 64, 0, NULL);
  check("SCM_RIGHTS left in flight", send_fds(sv[0], "5", 1, both, 2));
  // Closing both ends releases the descriptors in flight: the pipe's write end is then held
  // only by pv[1] (the EOF below depends on it).
  check("close 0 with fds in flight", syscall(SYS_close, sv[0]));
  check("close 1 with fds in flight", syscall(SYS_close, sv[1]));

  // Across fork: the child gets the pipe's write end and writes through it.
  int sp[2];
  check("socketpair for the child", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sp));
  pid_t pid = fork();
  if (pid == 0) {
    close(sp[0]);
    close(pv[1]);
    int fd = -1;
    char data[8];
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    if (syscall(SYS_recvmsg, sp[1], &m, 0) != 4) _exit(10);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS) _exit(11);
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (syscall(SYS_write, fd, "from the child", 14) != 14) _exit(12);
    if (syscall(SYS_write, sp[1], "done", 4) != 4) _exit(13);
    _exit(7);
  }
  check_ok("fork", pid);
  check("parent closes its end", syscall(SYS_close, sp[1]));
  pf[0].fd = sp[0];
  pf[0].events = POLLIN;
  check("SCM_RIGHTS to the child", send_fds(sp[0], "pipe", 4, &pv[1], 1));
  check("close the write end", syscall(SYS_close, pv[1]));
  check("poll for the answer", syscall(SYS_poll, pf, 1, 5000));
  // POLLHUP may be there too, if the child has exited already: print POLLIN only.
  out("poll revents & POLLIN: %x", pf[0].revents & POLLIN);
  check("read the answer", syscall(SYS_read, sp[0], buf, sizeof buf));
  int status = 0;
  check_ok("wait4", syscall(SYS_wait4, pid, &status, 0, NULL));
  out("child exit: %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  long n = syscall(SYS_read, pv[0], buf, sizeof buf);
  check("read the pipe", n);
  if (n > 0) out("pipe says: %.*s", (int)n, buf);
  check("read the pipe: EOF", syscall(SYS_read, pv[0], buf, sizeof buf));
  for (int fd = 3; fd < 16; fd++) syscall(SYS_close, fd);

  // Datagrams and seqpackets.
  int types[2] = {SOCK_DGRAM, SOCK_SEQPACKET};
  for (int t = 0; t < 2; t++) {
    const char *k = t == 0 ? "dgram" : "seqpacket";
    char label[64];
    check(k, syscall(SYS_socketpair, AF_UNIX, types[t], 0, sv));
    check("send one", syscall(SYS_sendto, sv[0], "one", 3, 0, NULL, 0));
    check("send two", syscall(SYS_sendto, sv[0], "two", 3, 0, NULL, 0));
    check("send empty", syscall(SYS_sendto, sv[0], "", 0, 0, NULL, 0));
    avail = -1;
    check("FIONREAD", syscall(SYS_ioctl, sv[1], FIONREAD, &avail));
    out("FIONREAD: %d", avail);
    snprintf(label, sizeof label, "%s recvmsg short", k);
    struct iovec iov = {buf, 2};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    check(label, syscall(SYS_recvmsg, sv[1], &m, 0));
    out("%s flags: %x", label, m.msg_flags);
    check("recv MSG_TRUNC", syscall(SYS_recvfrom, sv[1], buf, 1, MSG_TRUNC, NULL, NULL));
    check("recv empty", syscall(SYS_recvfrom, sv[1], buf, sizeof buf, 0, NULL, NULL));
    check("recv nothing", syscall(SYS_recvfrom, sv[1], buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
    check("close 0", syscall(SYS_close, sv[0]));
    if (t == 0) {
      check("send to the closed peer", syscall(SYS_sendto, sv[1], "x", 1, 0, NULL, 0));
      check("send again", syscall(SYS_sendto, sv[1], "x", 1, 0, NULL, 0));
    } else {
      check("read EOF", syscall(SYS_read, sv[1], buf, sizeof buf));
      check("send to the closed peer", syscall(SYS_sendto, sv[1], "x", 1, 0, NULL, 0));
    }
    out("sigpipes: %d", g_sigpipes);
    check("close 1", syscall(SYS_close, sv[1]));
  }

  // Named sockets.
  struct sockaddr_un a, b;
  // The pid keeps the static and dynamic builds apart when they run on the host at once.
  char abstract[64];
  snprintf(abstract, sizeof abstract, "tandem-conformance-%d", (int)getpid());
  socklen_t al = abstract_name(&a, abstract);
  int srv = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  check_ok("socket", srv);
  check("listen unbound", syscall(SYS_listen, srv, 4));
  check("bind abstract", syscall(SYS_bind, srv, &a, al));
  check("bind again", syscall(SYS_bind, srv, &a, al));
  int cli = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
  check("connect before listen", syscall(SYS_connect, cli, &a, al));
  check("listen", syscall(SYS_listen, srv, 4));
  check("accept nothing", syscall(SYS_accept, srv, NULL, NULL));
  check("connect", syscall(SYS_connect, cli, &a, al));
  check("connect again", syscall(SYS_connect, cli, &a, al));
  nl = sizeof b;
  int acc = (int)syscall(SYS_accept4, srv, &b, &nl, SOCK_CLOEXEC);
  check_ok("accept4", acc);
  out("accepted peer len %d", (int)nl);
  check("accepted FD_CLOEXEC", syscall(SYS_fcntl, acc, F_GETFD));
  check("client writes", syscall(SYS_write, cli, "ping", 4));
  check("server reads", syscall(SYS_read, acc, buf, sizeof buf));
  nl = sizeof b;
  check("getpeername", syscall(SYS_getpeername, cli, &b, &nl));
  check_true("getpeername is the name", nl == al && memcmp(&a, &b, al) == 0);
  nl = sizeof b;
  check("getsockname of the accepted", syscall(SYS_getsockname, acc, &b, &nl));
  check_true("getsockname is the name", nl == al && memcmp(&a, &b, al) == 0);
  check("close server", syscall(SYS_close, srv));
  int late = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
  check("connect after close", syscall(SYS_connect, late, &a, al));
  memset(&b, 0, sizeof b);
  b.sun_family = AF_UNIX;
  strcpy(b.sun_path, "sock");
  socklen_t bl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 5);
  int ps = (int)syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET, 0);
  check("bind path", syscall(SYS_bind, ps, &b, bl));
  check("bind path again", syscall(SYS_bind, late, &b, bl));
  struct stat st;
  check("stat the path", stat("sock", &st));
  check_true("it is a socket", S_ISSOCK(st.st_mode));
  check("listen", syscall(SYS_listen, ps, 1));
  check("connect wrong type", syscall(SYS_connect, late, &b, bl));
  int pc = (int)syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET, 0);
  check("connect path", syscall(SYS_connect, pc, &b, bl));
  int pa = (int)syscall(SYS_accept, ps, NULL, NULL);
  check_ok("accept", pa);
  check("seqpacket send", syscall(SYS_write, pc, "record", 6));
  check("seqpacket recv", syscall(SYS_read, pa, buf, 3));
  check("unlink", unlink("sock"));
  check("connect unlinked", syscall(SYS_connect, late, &b, bl));
  int d1 = (int)syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
  int d2 = (int)syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
  memset(&b, 0, sizeof b);
  b.sun_family = AF_UNIX;
  check("autobind", syscall(SYS_bind, d1, &b, sizeof(sa_family_t)));
  nl = sizeof b;
  check("getsockname autobound", syscall(SYS_getsockname, d1, &b, &nl));
  out("autobound len %d first byte %d", (int)nl, b.sun_path[0]);
  check("sendto by name", syscall(SYS_sendto, d2, "dg", 2, 0, &b, nl));
  nl = sizeof a;
  check("recvfrom", syscall(SYS_recvfrom, d1, buf, sizeof buf, 0, &a, &nl));
  out("recvfrom address len %d", (int)nl);
  rmdir(g_dir);
  done("sockets");
  return 0;
}
