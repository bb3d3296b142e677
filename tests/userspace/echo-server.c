// A TCP and UDP echo server for the booted kernel (and, unchanged, for Linux in the benchmarks).
//
//   echo-server [PORT] [--once] [--count N] [--duration S]
//
// Listens on TCP PORT (default 5555; backlog 128, SO_REUSEADDR) and binds UDP PORT. One epoll
// loop over nonblocking sockets serves every connection at once: each byte a peer sends comes
// back exactly. A connection keeps what it could not send yet (the peer reads slowly, the send
// buffer is full) and reads nothing more until that is sent, so memory stays bounded and the
// peer's own sending is held back by TCP's flow control. A peer that closes its side gets the
// rest of its echo and then the close. Every UDP datagram goes back to its sender as it is.
//
// Prints "listening on PORT" (flushed) once both sockets are ready. Ends with status 0 after the
// first TCP connection closes (--once), after N of them closed (--count N), or after S seconds
// (--duration S), printing what it served; without these it runs until killed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kBufferSize = 64 * 1024, kMaxEvents = 256, kUdpMax = 65536 };

// One TCP connection: bytes read but not yet echoed are buffer[sent, filled).
struct Conn {
  int fd;
  int peer_closed;  // the peer shut its sending side down: close once the echo is out
  unsigned watching;  // the epoll events asked for now
  size_t filled;
  size_t sent;
  unsigned char* buffer;
};

static struct Conn** conns;  // indexed by descriptor
static int conns_size;
static int epfd;
static long long served_connections, served_bytes, served_datagrams;

static void die(const char* what) {
  fprintf(stderr, "echo-server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void watch(int fd, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, op, fd, &ev) != 0) die("epoll_ctl");
}

static void conn_watch(struct Conn* c, unsigned events) {
  if (c->watching == events) return;
  watch(c->fd, EPOLL_CTL_MOD, events);
  c->watching = events;
}

static void conn_close(struct Conn* c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  conns[c->fd] = NULL;
  free(c->buffer);
  free(c);
  served_connections++;
}

// Sends what is pending. Returns 0 when all of it went out, 1 when the socket is full (wait for
// EPOLLOUT), -1 when the connection failed and was closed.
static int conn_flush(struct Conn* c) {
  while (c->sent < c->filled) {
    ssize_t n = send(c->fd, c->buffer + c->sent, c->filled - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (size_t)n;
      served_bytes += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
    conn_close(c);
    return -1;
  }
  c->sent = c->filled = 0;
  return 0;
}

// Reads and echoes until the socket has nothing more to give or cannot take the echo.
static void conn_serve(struct Conn* c, unsigned events) {
  if (c->filled > c->sent) {
    int r = conn_flush(c);
    if (r < 0) return;
    if (r > 0) {
      if (events & (EPOLLERR | EPOLLHUP)) conn_close(c);
      return;
    }
  }
  while (!c->peer_closed) {
    ssize_t n = recv(c->fd, c->buffer, kBufferSize, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      conn_close(c);
      return;
    }
    if (n == 0) {
      c->peer_closed = 1;
      break;
    }
    c->filled = (size_t)n;
    c->sent = 0;
    int r = conn_flush(c);
    if (r < 0) return;
    if (r > 0) {
      // The peer is not reading: stop reading from it until its echo is out.
      conn_watch(c, EPOLLOUT);
      return;
    }
  }
  if (c->peer_closed) {
    conn_close(c);
    return;
  }
  conn_watch(c, EPOLLIN);
}

static void accept_all(int listener) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      fprintf(stderr, "echo-server: accept4: %s\n", strerror(errno));
      return;
    }
    if (fd >= conns_size) {
      int size = conns_size;
      while (size <= fd) size *= 2;
      struct Conn** grown = realloc(conns, (size_t)size * sizeof *conns);
      if (!grown) die("realloc");
      memset(grown + conns_size, 0, (size_t)(size - conns_size) * sizeof *conns);
      conns = grown;
      conns_size = size;
    }
    struct Conn* c = calloc(1, sizeof *c);
    if (!c || !(c->buffer = malloc(kBufferSize))) die("malloc");
    c->fd = fd;
    conns[fd] = c;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    watch(fd, EPOLL_CTL_ADD, EPOLLIN);
    c->watching = EPOLLIN;
  }
}

static void udp_echo_all(int udp, unsigned char* buffer) {
  for (;;) {
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(udp, buffer, kUdpMax, 0, (struct sockaddr*)&from, &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    served_datagrams++;
    // A datagram that cannot go out now is dropped, as UDP may.
    sendto(udp, buffer, (size_t)n, MSG_NOSIGNAL, (struct sockaddr*)&from, len);
  }
}

static int open_socket(int type, int port) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("setsockopt SO_REUSEADDR");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) die(type == SOCK_STREAM ? "bind tcp" : "bind udp");
  return fd;
}

static void usage(void) {
  fprintf(stderr, "usage: echo-server [PORT] [--once] [--count N] [--duration S]\n");
  exit(2);
}

int main(int argc, char** argv) {
  int port = 5555;
  long long count = -1;  // connections to serve before exiting; -1: no limit
  long long duration_ms = -1;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--once") == 0) {
      count = 1;
    } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      count = atoll(argv[++i]);
    } else if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc) {
      duration_ms = (long long)(atof(argv[++i]) * 1000);
    } else if (argv[i][0] >= '0' && argv[i][0] <= '9') {
      port = atoi(argv[i]);
      if (port <= 0 || port > 65535) usage();
    } else {
      usage();
    }
  }
  signal(SIGPIPE, SIG_IGN);

  int listener = open_socket(SOCK_STREAM, port);
  if (listen(listener, 128) != 0) die("listen");
  int udp = open_socket(SOCK_DGRAM, port);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  watch(listener, EPOLL_CTL_ADD, EPOLLIN);
  watch(udp, EPOLL_CTL_ADD, EPOLLIN);
  conns_size = 1024;
  conns = calloc((size_t)conns_size, sizeof *conns);
  unsigned char* datagram = malloc(kUdpMax);
  if (!conns || !datagram) die("malloc");

  printf("listening on %d\n", port);
  fflush(stdout);

  const long long deadline = duration_ms >= 0 ? now_ms() + duration_ms : -1;
  struct epoll_event events[kMaxEvents];
  while (count < 0 || served_connections < count) {
    int timeout = -1;
    if (deadline >= 0) {
      long long left = deadline - now_ms();
      if (left <= 0) break;
      timeout = left > 1000000 ? 1000000 : (int)left;
    }
    int n = epoll_wait(epfd, events, kMaxEvents, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        accept_all(listener);
      } else if (fd == udp) {
        udp_echo_all(udp, datagram);
      } else if (fd < conns_size && conns[fd]) {
        conn_serve(conns[fd], events[i].events);
      }
    }
  }
  printf("echo-server: served %lld connections, %lld bytes, %lld datagrams\n", served_connections,
         served_bytes, served_datagrams);
  fflush(stdout);
  return 0;
}
