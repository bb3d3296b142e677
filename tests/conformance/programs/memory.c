// Memory: mmap (anonymous private, fixed, bad arguments), munmap, mprotect (a write to a
// read-only page raises SIGSEGV), brk, madvise, memfd_create with two MAP_SHARED views of one
// file (beam.smp's JIT does this: machine code written through the writable view runs through
// the executable one, and the writable one is not executable), SIGBUS past the end of a shared
// file mapping, SEEK_DATA/SEEK_HOLE and a large private mapping of a sparse memfd, and a
// MAP_SHARED anonymous mapping seen across fork.
#include "conf.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1u
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2u
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x1
#define F_SEAL_SHRINK 0x2
#define F_SEAL_GROW 0x4
#define F_SEAL_WRITE 0x8
#endif
#ifndef SEEK_DATA
#define SEEK_DATA 3
#define SEEK_HOLE 4
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x10
#endif

static sigjmp_buf g_jump;
static void on_segv(int sig) { siglongjmp(g_jump, sig); }

// Whether a write of one byte at p faults (SIGSEGV, caught).
static int write_faults(volatile char *p) {
  if (sigsetjmp(g_jump, 1) != 0) return 1;
  *p = 1;
  return 0;
}

// The signal a read of p raises (SIGSEGV or SIGBUS, caught), or 0.
static int read_faults(volatile char *p) {
  int sig = sigsetjmp(g_jump, 1);
  if (sig != 0) return sig;
  (void)*p;
  return 0;
}

// The signal a call to code at p raises, or 0 when it returns.
static int call_faults(void *p) {
  int sig = sigsetjmp(g_jump, 1);
  if (sig != 0) return sig;
  ((void (*)(void))p)();
  return 0;
}

// Whether /proc/self/maps has a line for [start, ...) with these permissions naming `name` at
// column 73, as Linux pads it (the device and inode fields before it differ between systems).
static int maps_names(long start, const char *perms, const char *name) {
  static char maps[16384];
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return 0;
  long n = 0, got;
  while (n < (long)sizeof maps - 1 && (got = read(fd, maps + n, sizeof maps - 1 - n)) > 0) n += got;
  close(fd);
  maps[n] = 0;
  char prefix[32];
  snprintf(prefix, sizeof prefix, "%08lx-", start);
  for (char *line = maps; *line != 0;) {
    char *end = strchr(line, '\n');
    if (end == NULL) end = line + strlen(line);
    if (strncmp(line, prefix, strlen(prefix)) == 0) {
      char *space = strchr(line, ' ');
      char *at = strstr(line, name);
      return space != NULL && strncmp(space + 1, perms, 4) == 0 && at != NULL && at - line == 73 &&
             at + strlen(name) == end;
    }
    line = *end ? end + 1 : end;
  }
  return 0;
}

static const char *signal_name(int sig) {
  return sig == 0 ? "none" : sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "other";
}

static long mmap_raw(void *addr, unsigned long len, long prot, long flags, long fd, long off) {
  return syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  const long page = 4096;
  check("mmap length 0", mmap_raw(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  check("mmap no type", mmap_raw(NULL, page, PROT_READ, MAP_ANONYMOUS, -1, 0));
  check("mmap unaligned offset", mmap_raw(NULL, page, PROT_READ, MAP_PRIVATE, 0, 1));
  check("mmap bad fd", mmap_raw(NULL, page, PROT_READ, MAP_PRIVATE, 9999, 0));
  check("mmap fixed unaligned", mmap_raw((void *)0x10000001, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  check("mmap huge", mmap_raw(NULL, 1ul << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  long a = mmap_raw(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  check_ok("mmap anonymous", a);
  char *m = (char *)a;
  out("zero filled: %d", m[0] == 0 && m[4 * page - 1] == 0);
  m[0] = 'x';
  m[3 * page] = 'y';
  check("mprotect read-only", syscall(SYS_mprotect, m, page, PROT_READ));
  out("write to read-only faults: %d", write_faults(m));
  out("write to next page faults: %d", write_faults(m + page));
  check("mprotect unaligned", syscall(SYS_mprotect, m + 1, page, PROT_READ));
  check("mprotect bad prot", syscall(SYS_mprotect, m, page, 0x100));
  check("mprotect back", syscall(SYS_mprotect, m, page, PROT_READ | PROT_WRITE));
  out("data kept: %c %c", m[0], m[3 * page]);
  check("munmap middle", syscall(SYS_munmap, m + page, page));
  out("unmapped page faults: %d", write_faults(m + page));
  check("munmap unaligned", syscall(SYS_munmap, m + 1, page));
  check("munmap length 0", syscall(SYS_munmap, m, 0));
  check("munmap unmapped again", syscall(SYS_munmap, m + page, page));
  check("munmap kernel range", syscall(SYS_munmap, KERNEL_PTR, page));
  check("mmap fixed into hole", mmap_raw(m + page, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == (long)(m + page));
  out("fixed page zero: %d", m[page] == 0);
  check("mmap fixed noreplace", mmap_raw(m, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  check("madvise dontneed", syscall(SYS_madvise, m + 3 * page, page, MADV_DONTNEED));
  out("after dontneed: %d", m[3 * page]);
  check("madvise unaligned", syscall(SYS_madvise, m + 1, page, MADV_DONTNEED));
  check("munmap all", syscall(SYS_munmap, m, 4 * page));
  long none = mmap_raw(NULL, 16 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  check_ok("mmap PROT_NONE reservation", none);
  out("PROT_NONE faults: %d", write_faults((char *)none));
  check("mprotect inside reservation", syscall(SYS_mprotect, none + page, page, PROT_READ | PROT_WRITE));
  out("opened page writable: %d", !write_faults((char *)none + page));

  // MAP_SHARED anonymous memory is shared with a forked child; private memory is copied.
  volatile int *shared = (int *)mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  volatile int *priv = (int *)mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *shared = 1;
  *priv = 1;
  long pid = syscall(SYS_fork);
  if (pid == 0) {
    *shared = 2;
    *priv = 2;
    syscall(SYS_exit_group, 0);
  }
  int status;
  syscall(SYS_wait4, pid, &status, 0, NULL);
  out("after child writes: shared=%d private=%d", *shared, *priv);

  // brk.
  long cur = syscall(SYS_brk, 0);
  check_ok("brk query", cur);
  long grown = syscall(SYS_brk, cur + 8 * page);
  out("brk grows: %d", grown == cur + 8 * page);
  ((char *)cur)[8 * page - 1] = 1;
  out("brk shrink: %d", syscall(SYS_brk, cur) == cur);
  out("brk below start refused: %d", syscall(SYS_brk, 4096) != 4096);

  // memfd_create and two views of the same pages, as beam.smp's JIT makes them: it writes
  // machine code through the writable view and runs it through the executable one.
  long mfd = syscall(SYS_memfd_create, "vmem", MFD_CLOEXEC);
  check_ok("memfd_create", mfd);
  if (mfd >= 0) {
    struct stat st;
    check("memfd fstat", syscall(SYS_fstat, mfd, &st));
    out("memfd mode %o size %ld", (unsigned)st.st_mode, (long)st.st_size);
    check("memfd cloexec", syscall(SYS_fcntl, mfd, F_GETFD));
    check("memfd ftruncate", syscall(SYS_ftruncate, mfd, 2 * page));
    long rw = mmap_raw(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    long rx = mmap_raw(NULL, 2 * page, PROT_READ | PROT_EXEC, MAP_SHARED, mfd, 0);
    check_ok("memfd map rw", rw);
    check_ok("memfd map rx", rx);
    if (rw != -1 && rx != -1) {
      strcpy((char *)rw + page, "through the other view");
      out("rx view sees: %s", (char *)rx + page);
      out("rx view is read-only: %d", write_faults((char *)rx));
      check_true("maps names the rx view", maps_names(rx, "r-xs", "/memfd:vmem (deleted)"));
      check_true("maps names the rw view", maps_names(rw, "rw-s", "/memfd:vmem (deleted)"));
      // mov eax, 42; ret
      static const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
      memcpy((char *)rw + 64, code, sizeof code);
      out("code run through the rx view returns %d", ((int (*)(void))(rx + 64))());
      out("calling through the rw view faults: %s", signal_name(call_faults((void *)(rw + 64))));
      // The file's write path reaches the same pages.
      check("memfd pwrite", syscall(SYS_pwrite64, mfd, "written", 8, 200));
      out("views see pwrite: %s %s", (char *)rw + 200, (char *)rx + 200);
      // MADV_DONTNEED on a shared view only unmaps: the data stays in the file.
      check("memfd madvise dontneed", syscall(SYS_madvise, rw, 2 * page, MADV_DONTNEED));
      out("after dontneed: %s", (char *)rx + page);
      // A mapping longer than the file: touching past the end is SIGBUS.
      long longer = mmap_raw(NULL, 4 * page, PROT_READ, MAP_SHARED, mfd, 0);
      check_ok("memfd map past the end", longer);
      if (longer != -1) {
        out("read past the end: %s", signal_name(read_faults((char *)longer + 3 * page)));
        check("memfd grow", syscall(SYS_ftruncate, mfd, 4 * page));
        out("grown page reads: %d", read_faults((char *)longer + 3 * page) ? -1 : ((char *)longer)[3 * page]);
        syscall(SYS_munmap, longer, 4 * page);
      }
    }
    char buf[32] = {0};
    check("memfd pread", syscall(SYS_pread64, mfd, buf, 7, page));
    out("memfd data: %s", buf);
    if (rw != -1) syscall(SYS_munmap, rw, 2 * page);
    if (rx != -1) syscall(SYS_munmap, rx, 2 * page);
    check("memfd shrink unmapped", syscall(SYS_ftruncate, mfd, 0));
    // SEEK_DATA and SEEK_HOLE on a sparse memfd (a page never written is a hole), and a private
    // mapping far larger than the file's data: it sees the data, zeros elsewhere, and a write to
    // it stays private.
    long sparse = syscall(SYS_memfd_create, "sparse", MFD_CLOEXEC);
    check_ok("sparse memfd", sparse);
    if (sparse >= 0) {
      const long big = 64L << 20, far = 40L << 20;
      check("sparse ftruncate", syscall(SYS_ftruncate, sparse, big));
      check("sparse pwrite near", syscall(SYS_pwrite64, sparse, "first", 6, 3 * page + 10));
      check("sparse pwrite far", syscall(SYS_pwrite64, sparse, "second", 7, far + 5));
      out("seek data from 0: %ld", syscall(SYS_lseek, sparse, 0, SEEK_DATA));
      out("seek hole from 0: %ld", syscall(SYS_lseek, sparse, 0, SEEK_HOLE));
      out("seek hole inside data: %ld", syscall(SYS_lseek, sparse, 3 * page + 100, SEEK_HOLE));
      out("seek data after the first: %ld", syscall(SYS_lseek, sparse, 4 * page, SEEK_DATA));
      check("seek data past the last", syscall(SYS_lseek, sparse, far + page, SEEK_DATA));
      out("seek hole past the last: %ld", syscall(SYS_lseek, sparse, far + page, SEEK_HOLE));
      check("seek data at the end", syscall(SYS_lseek, sparse, big, SEEK_DATA));
      check("seek hole before the start", syscall(SYS_lseek, sparse, -1, SEEK_HOLE));
      long priv = mmap_raw(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE, sparse, 0);
      check_ok("sparse private map", priv);
      if (priv != -1) {
        char *p = (char *)priv;
        out("private view: %s %s %d", p + 3 * page + 10, p + far + 5, p[20L << 20]);
        p[3 * page + 10] = 'F';
        char got[8] = {0};
        check("sparse pread", syscall(SYS_pread64, sparse, got, 5, 3 * page + 10));
        out("file after a private write: %s", got);
        syscall(SYS_munmap, priv, big);
      }
      syscall(SYS_close, sparse);
    }
    check("memfd bad flags", syscall(SYS_memfd_create, "x", 0x1000));
    check("memfd bad name", syscall(SYS_memfd_create, KERNEL_PTR, 0));
    char name[251];
    memset(name, 'n', 250);
    name[250] = 0;
    check("memfd 250-byte name", syscall(SYS_memfd_create, name, 0));
    name[249] = 0;
    long longest = syscall(SYS_memfd_create, name, MFD_ALLOW_SEALING);
    check_ok("memfd 249-byte name", longest);
    if (longest >= 0) close((int)longest);
    close((int)mfd);
  }
  // Seals (fcntl(2)).
  long plain = syscall(SYS_memfd_create, "plain", 0);
  check("memfd without sealing: seals", syscall(SYS_fcntl, plain, F_GET_SEALS));
  check("memfd without sealing: add", syscall(SYS_fcntl, plain, F_ADD_SEALS, F_SEAL_SHRINK));
  close((int)plain);
  long sfd = syscall(SYS_memfd_create, "sealable", MFD_ALLOW_SEALING);
  check("sealable seals", syscall(SYS_fcntl, sfd, F_GET_SEALS));
  check("sealable ftruncate", syscall(SYS_ftruncate, sfd, 2 * page));
  long sview = mmap_raw(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
  check_ok("sealable map", sview);
  check("seal write while mapped writable", syscall(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_WRITE));
  check("unknown seal", syscall(SYS_fcntl, sfd, F_ADD_SEALS, 0x40));
  check("seal shrink and grow", syscall(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
  check("shrink sealed", syscall(SYS_ftruncate, sfd, page));
  check("grow sealed", syscall(SYS_ftruncate, sfd, 3 * page));
  check("same size", syscall(SYS_ftruncate, sfd, 2 * page));
  check("write across the end", syscall(SYS_pwrite64, sfd, "01234567", 8, 2 * page - 4));
  check("write at the end", syscall(SYS_pwrite64, sfd, "01234567", 8, 2 * page));
  check("write inside", syscall(SYS_pwrite64, sfd, "01234567", 8, 0));
  // A shared view of a descriptor open for writing may become writable (VM_MAYWRITE), so it
  // holds a write seal off even when read-only.
  if (sview != -1) {
    check("munmap half", syscall(SYS_munmap, sview, page));
    check("seal write, half still mapped", syscall(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_WRITE));
    check("mprotect the rest read-only", syscall(SYS_mprotect, sview + page, page, PROT_READ));
    check("seal write, read-only view", syscall(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_WRITE));
    check("munmap the rest", syscall(SYS_munmap, sview + page, page));
  }
  check("seal write", syscall(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_WRITE));
  check("write when sealed", syscall(SYS_pwrite64, sfd, "x", 1, 0));
  check("shared writable map when sealed", mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0));
  long sro = mmap_raw(NULL, page, PROT_READ, MAP_SHARED, sfd, 0);
  check_ok("shared read-only map when sealed", sro);
  if (sro != -1) {
    check("mprotect it writable", syscall(SYS_mprotect, sro, page, PROT_READ | PROT_WRITE));
    syscall(SYS_munmap, sro, page);
  }
  long scopy = mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, sfd, 0);
  check_ok("private writable map when sealed", scopy);
  if (scopy != -1) {
    out("private copy: %.8s", (char *)scopy);
    syscall(SYS_munmap, scopy, page);
  }
  check("seal seal", syscall(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_SEAL));
  check("nothing more", syscall(SYS_fcntl, sfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
  check("all seals", syscall(SYS_fcntl, sfd, F_GET_SEALS));
  close((int)sfd);
  long ffd = syscall(SYS_memfd_create, "future", MFD_ALLOW_SEALING);
  syscall(SYS_ftruncate, ffd, page);
  long fview = mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
  check("seal future write while mapped", syscall(SYS_fcntl, ffd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
  if (fview != -1) {
    strcpy((char *)fview, "old mapping writes");
    out("old mapping: %s", (char *)fview);
    syscall(SYS_munmap, fview, page);
  }
  check("write after future seal", syscall(SYS_pwrite64, ffd, "x", 1, 0));
  check("new writable map after future seal", mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0));
  close((int)ffd);
  check("seals of a device", syscall(SYS_fcntl, 1, F_GET_SEALS));

  // A shared writable mapping needs the file open for writing. (The static and dynamic builds
  // may run on the host at once: the name is the process's own, and never printed.)
  char path[64];
  snprintf(path, sizeof path, "/tmp/conf-memory.%d", (int)getpid());
  int ro = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
  check_ok("create a file", ro);
  if (ro >= 0) {
    check("size it", syscall(SYS_ftruncate, ro, page));
    close(ro);
    ro = open(path, O_RDWR | O_APPEND);
    long appending = mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
    check_ok("shared writable map of an O_APPEND fd", appending);
    if (appending != -1) syscall(SYS_munmap, appending, page);
    close(ro);
    ro = open(path, O_RDONLY);
    check("shared writable map of a read-only fd", mmap_raw(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0));
    long view = mmap_raw(NULL, page, PROT_READ, MAP_SHARED, ro, 0);
    check_ok("shared read-only map", view);
    if (view != -1) check("mprotect it writable", syscall(SYS_mprotect, view, page, PROT_READ | PROT_WRITE));
    close(ro);
    if (view != -1) syscall(SYS_munmap, view, page);
    unlink(path);
  }
  check("madvise unknown advice", syscall(SYS_madvise, none, page, 77));
  syscall(SYS_munmap, none, 16 * page);
  done("memory");
  return 0;
}
