// Files and directories: open/openat, read/write, lseek, pread/pwrite, the stat family,
// getdents64, mkdir/rmdir, unlink, rename, symlink/readlink, truncate, access, chdir/getcwd,
// and their error paths (ENOENT, EEXIST, EBADF, EFAULT, ENOTDIR, EISDIR, ENOTEMPTY, ESPIPE).
#include "conf.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>

struct linux_dirent64 {
  unsigned long d_ino;
  long d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

int main(void) {
  // Descriptors above 2 that the runner left open would shift the numbers printed.
  for (int fd = 3; fd < 64; fd++) syscall(SYS_close, fd);
  make_scratch();
  char buf[256];
  struct stat st;
  check("open missing", syscall(SYS_open, "missing", O_RDONLY));
  check("open bad path pointer", syscall(SYS_open, KERNEL_PTR, O_RDONLY));
  check("open null path", syscall(SYS_open, NULL, O_RDONLY));
  check("open empty path", syscall(SYS_open, "", O_RDONLY));
  long fd = syscall(SYS_open, "f", O_CREAT | O_EXCL | O_RDWR, 0644);
  check("open create", fd);
  check("open excl existing", syscall(SYS_open, "f", O_CREAT | O_EXCL | O_RDWR, 0644));
  check("write", syscall(SYS_write, fd, "hello, world\n", 13));
  check("write bad buffer", syscall(SYS_write, fd, KERNEL_PTR, 4));
  check("lseek set", syscall(SYS_lseek, fd, 0, SEEK_SET));
  check("read", syscall(SYS_read, fd, buf, 5));
  check("read bad buffer", syscall(SYS_read, fd, KERNEL_PTR, 4));
  check("lseek cur", syscall(SYS_lseek, fd, 0, SEEK_CUR));
  check("lseek end", syscall(SYS_lseek, fd, 0, SEEK_END));
  check("lseek negative", syscall(SYS_lseek, fd, (long)-100, SEEK_SET));
  check("lseek bad whence", syscall(SYS_lseek, fd, 0, 17));
  check("lseek past end", syscall(SYS_lseek, fd, 100, SEEK_SET));
  check("read at past end", syscall(SYS_read, fd, buf, 5));
  check("pwrite", syscall(SYS_pwrite64, fd, "HELLO", 5, 0));
  memset(buf, 0, sizeof buf);
  check("pread", syscall(SYS_pread64, fd, buf, 12, 0));
  out("pread data: %s", buf);
  check("pread negative offset", syscall(SYS_pread64, fd, buf, 1, (long)-1));
  check("fstat", syscall(SYS_fstat, fd, &st));
  out("fstat size=%ld mode=%o nlink=%ld", (long)st.st_size, st.st_mode, (long)st.st_nlink);
  check("fstat bad buffer", syscall(SYS_fstat, fd, KERNEL_PTR));
  check("ftruncate", syscall(SYS_ftruncate, fd, 3));
  check("fstat after truncate", syscall(SYS_fstat, fd, &st));
  out("size after truncate=%ld", (long)st.st_size);
  check("ftruncate negative", syscall(SYS_ftruncate, fd, (long)-1));
  check("close", syscall(SYS_close, fd));
  check("close again", syscall(SYS_close, fd));
  check("read closed", syscall(SYS_read, fd, buf, 1));
  check("read fd -1", syscall(SYS_read, -1, buf, 1));
  check("write fd 9999", syscall(SYS_write, 9999, buf, 1));
  check("truncate path", syscall(SYS_truncate, "f", 10));
  check("stat", syscall(SYS_stat, "f", &st));
  out("stat size=%ld", (long)st.st_size);
  // sendfile: more than one 64 KiB round from one file to another, with an offset pointer (the
  // file position stays) and without (it moves), a count past the end, a pipe on either side.
  static char big[200000], back[160000];
  for (int i = 0; i < (int)sizeof big; i++) big[i] = (char)(i * 7 + i / 251);
  long src = syscall(SYS_open, "sf-src", O_CREAT | O_RDWR, 0644);
  check("sendfile source", syscall(SYS_write, src, big, sizeof big));
  long dst = syscall(SYS_open, "sf-dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
  long off = 1000;
  check("sendfile with an offset", syscall(SYS_sendfile, dst, src, &off, 150000));
  out("sendfile offset after: %ld, source position %ld", off, syscall(SYS_lseek, src, 0, SEEK_CUR));
  check("lseek source", syscall(SYS_lseek, src, 199000, SEEK_SET));
  check("sendfile past the end", syscall(SYS_sendfile, dst, src, NULL, 5000));
  out("source position after: %ld", syscall(SYS_lseek, src, 0, SEEK_CUR));
  check("pread the copy", syscall(SYS_pread64, dst, back, sizeof back, 0));
  out("copy matches: %d %d", memcmp(back, big + 1000, 150000) == 0, memcmp(back + 150000, big + 199000, 1000) == 0);
  int sp[2];
  check("pipe for sendfile", syscall(SYS_pipe, sp));
  long zero = 0;
  check("sendfile to a pipe", syscall(SYS_sendfile, sp[1], src, &zero, 4096));
  check("sendfile from a pipe", syscall(SYS_sendfile, dst, sp[0], NULL, 10));
  check("sendfile bad offset pointer", syscall(SYS_sendfile, dst, src, KERNEL_PTR, 10));
  syscall(SYS_close, sp[0]);
  syscall(SYS_close, sp[1]);
  syscall(SYS_close, src);
  syscall(SYS_close, dst);
  syscall(SYS_unlink, "sf-src");
  syscall(SYS_unlink, "sf-dst");
  check("stat missing", syscall(SYS_stat, "nope", &st));
  check("stat bad buffer", syscall(SYS_stat, "f", KERNEL_PTR));
  check("stat through file", syscall(SYS_stat, "f/x", &st));
  check("newfstatat", syscall(SYS_newfstatat, AT_FDCWD, "f", &st, 0));
  check("newfstatat bad flags", syscall(SYS_newfstatat, AT_FDCWD, "f", &st, 0x12345678));
  check("access rw", syscall(SYS_access, "f", R_OK | W_OK));
  check("access missing", syscall(SYS_access, "nope", F_OK));
  check("access bad mode", syscall(SYS_access, "f", 0x40));
  check("mkdir", syscall(SYS_mkdir, "d", 0755));
  check("mkdir existing", syscall(SYS_mkdir, "d", 0755));
  check("mkdir missing parent", syscall(SYS_mkdir, "x/y", 0755));
  check("mkdir bad pointer", syscall(SYS_mkdir, KERNEL_PTR, 0755));
  check("open dir for write", syscall(SYS_open, "d", O_WRONLY));
  check("open file as directory", syscall(SYS_open, "f", O_RDONLY | O_DIRECTORY));
  long dfd = syscall(SYS_open, "d", O_RDONLY | O_DIRECTORY);
  check("open dir", dfd >= 0 ? 0 : -1);
  check("openat create", syscall(SYS_openat, dfd, "inner", O_CREAT | O_WRONLY, 0600) >= 0 ? 0 : -1);
  check("openat bad dirfd", syscall(SYS_openat, 9999, "inner", O_RDONLY));
  check("openat file dirfd", syscall(SYS_openat, 0, "inner", O_RDONLY) == -1 && errno == ENOTDIR ? 0 : -2);
  check("lseek on dir", syscall(SYS_lseek, dfd, 0, SEEK_SET));
  check("read dir", syscall(SYS_read, dfd, buf, sizeof buf));
  char dents[1024];
  long n = syscall(SYS_getdents64, dfd, dents, sizeof dents);
  int names = 0, found_inner = 0;
  for (long off = 0; n > 0 && off < n;) {
    struct linux_dirent64 *d = (struct linux_dirent64 *)(dents + off);
    names++;
    if (strcmp(d->d_name, "inner") == 0) found_inner = d->d_type == DT_REG;
    off += d->d_reclen;
  }
  out("getdents64: %d names, inner regular=%d", names, found_inner);
  check("getdents64 at end", syscall(SYS_getdents64, dfd, dents, sizeof dents));
  check("getdents64 small buffer", syscall(SYS_getdents64, dfd, dents, 1) == -1 ? -1 : 0);
  check("getdents64 on file", syscall(SYS_getdents64, 1, dents, sizeof dents) == -1 ? -1 : 0);
  check("getdents64 bad fd", syscall(SYS_getdents64, 9999, dents, sizeof dents));
  check("rmdir non-empty", syscall(SYS_rmdir, "d"));
  check("unlink dir", syscall(SYS_unlink, "d"));
  check("unlinkat inner", syscall(SYS_unlinkat, dfd, "inner", 0));
  check("close dir", syscall(SYS_close, dfd));
  check("rmdir file", syscall(SYS_rmdir, "f"));
  check("rename", syscall(SYS_rename, "f", "g"));
  check("rename missing", syscall(SYS_rename, "f", "h"));
  check("rename file over dir", syscall(SYS_rename, "g", "d"));
  check("symlink", syscall(SYS_symlink, "g", "l"));
  check("symlink existing", syscall(SYS_symlink, "g", "l"));
  memset(buf, 0, sizeof buf);
  check("readlink", syscall(SYS_readlink, "l", buf, sizeof buf));
  out("readlink data: %s", buf);
  check("readlink short", syscall(SYS_readlink, "l", buf, 0));
  check("readlink not link", syscall(SYS_readlink, "g", buf, sizeof buf));
  check("lstat link", syscall(SYS_lstat, "l", &st));
  out("lstat is link=%d size=%ld", S_ISLNK(st.st_mode), (long)st.st_size);
  check("open O_NOFOLLOW link", syscall(SYS_open, "l", O_RDONLY | O_NOFOLLOW));
  check("symlink loop a", syscall(SYS_symlink, "la", "lb"));
  check("symlink loop b", syscall(SYS_symlink, "lb", "la"));
  check("open loop", syscall(SYS_open, "la", O_RDONLY));
  check("chmod", syscall(SYS_chmod, "g", 0600));
  check("stat after chmod", syscall(SYS_stat, "g", &st));
  out("mode after chmod=%o", st.st_mode & 07777);
  char cwd[256];
  check("getcwd tiny", syscall(SYS_getcwd, cwd, 1));
  check("getcwd bad pointer", syscall(SYS_getcwd, KERNEL_PTR, sizeof cwd));
  check("chdir dir", syscall(SYS_chdir, "d"));
  check("chdir missing", syscall(SYS_chdir, "/tmp/../tmp/nope"));
  check("chdir up", syscall(SYS_chdir, ".."));
  long u = syscall(SYS_umask, 022);
  check("umask", syscall(SYS_umask, u));
  for (const char *p = "g\0l\0la\0lb\0"; *p; p += strlen(p) + 1) syscall(SYS_unlink, p);
  check("rmdir", syscall(SYS_rmdir, "d"));
  check("chdir out", syscall(SYS_chdir, "/"));
  check("rmdir scratch", syscall(SYS_rmdir, g_dir));
  done("files");
  return 0;
}
