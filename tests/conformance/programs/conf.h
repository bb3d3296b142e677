// tests/conformance/programs/conf.h: the reporting helpers every conformance program shares.
//
// Each check prints exactly one line, "name: RESULT", where RESULT is the return value or
// "-1 ENAME" (the errno's symbolic name, since musl's and glibc's strerror texts differ).
// Nothing that varies between runs (pids, addresses, times) is printed. Lines are written with
// one write(2) each, so a forked child's lines and the kernel's own log never split a line.
// System calls go through syscall(2) so that musl and glibc wrappers cannot differ.
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

// An address no user program may name: the start of the kernel's half of the address space.
#define KERNEL_PTR ((void *)0xffff800000000000ul)

static int g_checks;

static __attribute__((unused)) const char *err_name(int e) {
  switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
    E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV)
    E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE)
    E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP)
    E(EOVERFLOW) E(ETIMEDOUT) E(EOPNOTSUPP) E(ENOTSOCK) E(EDEADLK) E(EDOM) E(EAFNOSUPPORT)
    E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT) E(EPROTOTYPE) E(ENOPROTOOPT) E(ECONNRESET)
    E(ECONNREFUSED) E(EISCONN) E(ENOTCONN) E(EMSGSIZE) E(ENOBUFS) E(EADDRINUSE) E(EDESTADDRREQ)
#undef E
    default: return "E?";
  }
}

// Prints one line made with printf formatting, in one write.
static __attribute__((unused)) void out(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(1, buf, (size_t)n);
  (void)w;
}

// Reports a call's result: its value, or -1 and the errno name.
static __attribute__((unused)) void check(const char *name, long ret) {
  int e = errno;
  g_checks++;
  if (ret == -1) out("%s: -1 %s", name, err_name(e));
  else out("%s: %ld", name, ret);
}

// Reports only whether a call succeeded (for results that vary, such as descriptors of a
// different process or addresses), or its errno name when it failed.
static __attribute__((unused)) void check_ok(const char *name, long ret) {
  int e = errno;
  g_checks++;
  if (ret == -1) out("%s: -1 %s", name, err_name(e));
  else out("%s: ok", name);
}

// Reports a condition computed by the program.
static __attribute__((unused)) void check_true(const char *name, int cond) {
  g_checks++;
  out("%s: %s", name, cond ? "yes" : "no");
}

static __attribute__((unused)) void done(const char *program) { out("%s: %d checks", program, g_checks); }

// A scratch directory unique to this run (its name is never printed): the static and dynamic
// builds of a program may run on the host at the same time.
static char g_dir[64];
static __attribute__((unused)) void make_scratch(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/tandem-conf.%d", (int)getpid());
  if (mkdir(g_dir, 0755) != 0 || chdir(g_dir) != 0) out("scratch: cannot create %s", g_dir);
}
