// The guest connects out: a TCP client for a listener on the host (QEMU's user network shows the
// host as 10.0.2.2).
//
//   connect-out [HOST] PORT [BYTES]
//
// Connects to HOST:PORT (default host 10.0.2.2), sends the line "hello from tandem BYTES\n" and
// then BYTES (default 65536) bytes of a counting pattern (byte i is i*7+3 mod 256), shuts its
// sending side down, and reads until the host closes. The host is expected to answer with one
// line of its own and then the same BYTES bytes in the pattern i*13+5 mod 256. Prints
// "connect-out: reply: LINE" and "connect-out: N bytes back, pattern ok" (or what was wrong);
// exit status 0 when everything matched, 1 otherwise.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char* what) {
  printf("connect-out: %s: %s\n", what, strerror(errno));
  return 1;
}

static int send_all(int fd, const unsigned char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    data += n;
    size -= (size_t)n;
  }
  return 0;
}

int main(int argc, char** argv) {
  const char* host = "10.0.2.2";
  int port;
  long bytes = 65536;
  if (argc == 2) {
    port = atoi(argv[1]);
  } else if (argc == 3 && strchr(argv[1], '.')) {
    host = argv[1];
    port = atoi(argv[2]);
  } else if (argc == 3) {
    port = atoi(argv[1]);
    bytes = atol(argv[2]);
  } else if (argc == 4) {
    host = argv[1];
    port = atoi(argv[2]);
    bytes = atol(argv[3]);
  } else {
    printf("usage: connect-out [HOST] PORT [BYTES]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (port <= 0 || port > 65535 || bytes < 0 || bytes > (64l << 20)) {
    printf("connect-out: bad port or size\n");
    return 2;
  }

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    printf("connect-out: %s is not an IPv4 address\n", host);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) return fail("connect");
  printf("connect-out: connected to %s:%d\n", host, port);
  fflush(stdout);

  unsigned char* out = malloc((size_t)bytes + 64);
  unsigned char* in = malloc((size_t)bytes + 4096);
  if (!out || !in) return fail("malloc");
  int header = snprintf((char*)out, 64, "hello from tandem %ld\n", bytes);
  for (long i = 0; i < bytes; ++i) out[header + i] = (unsigned char)(i * 7 + 3);
  if (send_all(fd, out, (size_t)header + (size_t)bytes) != 0) return fail("send");
  if (shutdown(fd, SHUT_WR) != 0) return fail("shutdown");

  size_t got = 0, capacity = (size_t)bytes + 4096;
  for (;;) {
    if (got == capacity) {
      printf("connect-out: the host sent more than expected\n");
      return 1;
    }
    ssize_t n = recv(fd, in + got, capacity - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("recv");
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);

  unsigned char* newline = memchr(in, '\n', got);
  if (!newline) {
    printf("connect-out: no reply line in %zu bytes\n", got);
    return 1;
  }
  size_t line = (size_t)(newline - in) + 1;
  printf("connect-out: reply: %.*s\n", (int)(line - 1), (const char*)in);
  size_t body = got - line;
  long wrong = -1;
  for (size_t i = 0; i < body && i < (size_t)bytes; ++i) {
    if (in[line + i] != (unsigned char)(i * 13 + 5)) {
      wrong = (long)i;
      break;
    }
  }
  if (body != (size_t)bytes || wrong >= 0) {
    printf("connect-out: %zu bytes back (expected %ld), first wrong byte at %ld\n", body, bytes, wrong);
    return 1;
  }
  printf("connect-out: %zu bytes back, pattern ok\n", body);
  return 0;
}
