// File, descriptor and pipe system calls, table-driven against Linux's documented behaviour
// (open(2), read(2), stat(2), getdents64(2), rename(2), symlink(7)'s ELOOP, pipe(7), fcntl(2),
// dup(2)), run by a user program on the simulated kernel exactly as a program calls them.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

namespace sys {
constexpr uint64_t kRead = 0, kWrite = 1, kOpen = 2, kClose = 3, kStat = 4, kFstat = 5, kLstat = 6, kLseek = 8,
                   kIoctl = 16, kPread = 17, kPipe = 22, kDup = 32, kDup2 = 33, kFcntl = 72, kFtruncate = 77,
                   kGetcwd = 79, kChdir = 80, kRename = 82, kMkdir = 83, kRmdir = 84, kUnlink = 87, kSymlink = 88,
                   kReadlink = 89, kUmask = 95, kRtSigprocmask = 14, kGetdents64 = 217, kOpenat = 257,
                   kDup3 = 292, kPipe2 = 293, kAccess = 21;
}
constexpr uint64_t kOCreat = 0100, kOExcl = 0200, kOTrunc = 01000, kOAppend = 02000, kONonblock = 04000,
                   kODirectory = 0200000, kONofollow = 0400000, kOCloexec = 02000000, kOWronly = 1, kORdwr = 2;

constexpr uint64_t kStr = kDataBase + 0x1000;    // path strings
constexpr uint64_t kStr2 = kDataBase + 0x2000;   // a second path
constexpr uint64_t kBuf = kDataBase + 0x3000;    // a read buffer (4 KiB)
constexpr uint64_t kStatBuf = kDataBase + 0x5000;
constexpr uint64_t kFds = kDataBase + 0x5200;
constexpr uint64_t kUnmapped = 0x50000000;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

void put(User& u, uint64_t address, const char* text) {
  const size_t n = std::strlen(text) + 1;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, text + i, std::min<size_t>(8, n - i));
    u.store64(address + i, word);
  }
}

std::string get(User& u, uint64_t address, size_t n) {
  std::string out(n + 8, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t word = u.load64(address + i);
    std::memcpy(&out[i], &word, 8);
  }
  out.resize(n);
  return out;
}

int64_t open_path(User& u, const char* path, uint64_t flags, uint64_t mode = 0) {
  put(u, kStr, path);
  return u.syscall(sys::kOpen, kStr, flags, mode);
}
int64_t path_call(User& u, uint64_t nr, const char* path, uint64_t a1 = 0, uint64_t a2 = 0) {
  put(u, kStr, path);
  return u.syscall(nr, kStr, a1, a2);
}
int64_t two_paths(User& u, uint64_t nr, const char* a, const char* b) {
  put(u, kStr, a);
  put(u, kStr2, b);
  return u.syscall(nr, kStr, kStr2);
}
int64_t write_text(User& u, int64_t fd, const char* text) {
  put(u, kBuf, text);
  return u.syscall(sys::kWrite, static_cast<uint64_t>(fd), kBuf, std::strlen(text));
}

// Reads all of a small file by path.
std::string slurp(User& u, const char* path) {
  const int64_t fd = open_path(u, path, 0);
  if (fd < 0) u.fail("open %s: %lld", path, static_cast<long long>(fd));
  const int64_t n = u.syscall(sys::kRead, static_cast<uint64_t>(fd), kBuf, 4000);
  u.syscall(sys::kClose, static_cast<uint64_t>(fd));
  if (n < 0) u.fail("read %s: %lld", path, static_cast<long long>(n));
  return get(u, kBuf, static_cast<size_t>(n));
}

// The names getdents64 returns for a directory, space-separated.
std::string list(User& u, const char* path) {
  const int64_t fd = open_path(u, path, kODirectory);
  if (fd < 0) u.fail("open %s: %lld", path, static_cast<long long>(fd));
  std::string names;
  for (;;) {
    const int64_t n = u.syscall(sys::kGetdents64, static_cast<uint64_t>(fd), kBuf, 4096);
    if (n < 0) u.fail("getdents64: %lld", static_cast<long long>(n));
    if (n == 0) break;
    const std::string raw = get(u, kBuf, static_cast<size_t>(n));
    for (size_t at = 0; at < raw.size();) {
      uint16_t reclen;
      std::memcpy(&reclen, &raw[at + 16], 2);
      names += std::string(raw.c_str() + at + 19) + " ";
      at += reclen;
    }
  }
  u.syscall(sys::kClose, static_cast<uint64_t>(fd));
  return names;
}

void expect_text(User& u, const char* what, const std::string& got, const std::string& want) {
  if (got != want) u.fail("%s: got \"%s\", want \"%s\"", what, got.c_str(), want.c_str());
}

void fs_table(User& u) {
  // Descriptors 0, 1 and 2 are the console.
  check(u, "write to stdout", write_text(u, 1, "fs test\n"), 8);
  check(u, "write to an unopened descriptor", write_text(u, 7, "x"), -EBADF);
  check(u, "close of an unopened descriptor", u.syscall(sys::kClose, 9), -EBADF);

  // Regular files on tmpfs.
  check(u, "creat /tmp/f", open_path(u, "/tmp/f", kOCreat | kOWronly | kOTrunc, 0666), 3);
  check(u, "write 5 bytes", write_text(u, 3, "hello"), 5);
  check(u, "read from a write-only descriptor", u.syscall(sys::kRead, 3, kBuf, 1), -EBADF);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "close twice", u.syscall(sys::kClose, 3), -EBADF);
  check(u, "O_CREAT|O_EXCL on an existing file", open_path(u, "/tmp/f", kOCreat | kOExcl | kOWronly, 0600), -EEXIST);
  check(u, "open read-only", open_path(u, "/tmp/f", 0), 3);
  check(u, "read past nothing", u.syscall(sys::kRead, 3, kBuf, 100), 5);
  expect_text(u, "file contents", get(u, kBuf, 5), "hello");
  check(u, "read at EOF", u.syscall(sys::kRead, 3, kBuf, 100), 0);
  check(u, "lseek SEEK_SET 1", u.syscall(sys::kLseek, 3, 1, 0), 1);
  check(u, "read after lseek", u.syscall(sys::kRead, 3, kBuf, 100), 4);
  check(u, "lseek to a negative offset", u.syscall(sys::kLseek, 3, static_cast<uint64_t>(-10), 1), -EINVAL);
  check(u, "lseek SEEK_END", u.syscall(sys::kLseek, 3, 0, 2), 5);
  check(u, "pread at 2", u.syscall(sys::kPread, 3, kBuf, 2, 2), 2);
  expect_text(u, "pread contents", get(u, kBuf, 2), "ll");
  check(u, "write to a read-only descriptor", write_text(u, 3, "x"), -EBADF);
  check(u, "read into an unmapped buffer", u.syscall(sys::kPread, 3, kUnmapped, 2, 0), -EFAULT);
  check(u, "fstat", u.syscall(sys::kFstat, 3, kStatBuf), 0);
  check(u, "st_size", static_cast<int64_t>(u.load64(kStatBuf + 48)), 5);
  check(u, "st_mode (0666 & ~umask 022)", u.load32(kStatBuf + 24), 0100644);
  check(u, "ftruncate of a read-only descriptor", u.syscall(sys::kFtruncate, 3, 0), -EINVAL);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "O_APPEND", open_path(u, "/tmp/f", kOWronly | kOAppend), 3);
  check(u, "append", write_text(u, 3, "!"), 1);
  check(u, "O_APPEND moves the offset to the end", u.syscall(sys::kLseek, 3, 0, 1), 6);
  check(u, "ftruncate to 3", u.syscall(sys::kFtruncate, 3, 3), 0);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  expect_text(u, "after append and truncate", slurp(u, "/tmp/f"), "hel");

  // Permissions, integrity calls, file system statistics.
  check(u, "chmod 0600", path_call(u, 90, "/tmp/f", 0600), 0);
  check(u, "stat after chmod", path_call(u, sys::kStat, "/tmp/f", kStatBuf), 0);
  check(u, "mode after chmod", u.load32(kStatBuf + 24), 0100600);
  check(u, "chmod of a missing file", path_call(u, 90, "/tmp/missing", 0700), -ENOENT);
  check(u, "open for fsync", open_path(u, "/tmp/f", 0), 3);
  check(u, "fsync", u.syscall(74, 3), 0);
  check(u, "fsync of a closed fd", u.syscall(74, 9), -EBADF);
  check(u, "flock LOCK_EX", u.syscall(73, 3, 2), 0);
  check(u, "flock with a bad op", u.syscall(73, 3, 16), -EINVAL);
  check(u, "fstatfs", u.syscall(138, 3, kStatBuf), 0);
  check(u, "tmpfs magic", static_cast<int64_t>(u.load64(kStatBuf)), 0x01021994);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "statfs /proc", path_call(u, 137, "/proc", kStatBuf), 0);
  check(u, "proc magic", static_cast<int64_t>(u.load64(kStatBuf)), 0x9fa0);

  // Hard links.
  check(u, "link", two_paths(u, 86, "/tmp/f", "/tmp/hard"), 0);
  check(u, "link over an existing name", two_paths(u, 86, "/tmp/f", "/tmp/hard"), -EEXIST);
  check(u, "link a directory", two_paths(u, 86, "/tmp", "/tmp/dirlink"), -EPERM);
  check(u, "link across file systems", two_paths(u, 86, "/tmp/f", "/dev/hard"), -EXDEV);
  check(u, "stat the new name", path_call(u, sys::kStat, "/tmp/hard", kStatBuf), 0);
  check(u, "two links", static_cast<int64_t>(u.load64(kStatBuf + 16)), 2);
  check(u, "unlink the new name", path_call(u, sys::kUnlink, "/tmp/hard"), 0);
  check(u, "stat the old name", path_call(u, sys::kStat, "/tmp/f", kStatBuf), 0);
  check(u, "one link again", static_cast<int64_t>(u.load64(kStatBuf + 16)), 1);

  // Path resolution errors.
  check(u, "open a missing file", open_path(u, "/tmp/missing", 0), -ENOENT);
  check(u, "a file used as a directory", open_path(u, "/tmp/f/x", 0), -ENOTDIR);
  check(u, "O_DIRECTORY on a file", open_path(u, "/tmp/f", kODirectory), -ENOTDIR);
  check(u, "open a directory for writing", open_path(u, "/tmp", kOWronly), -EISDIR);
  check(u, "open the empty path", open_path(u, "", 0), -ENOENT);
  check(u, "open an unmapped path", u.syscall(sys::kOpen, kUnmapped, 0, 0), -EFAULT);
  // No host allocation may outlive a call here: the fiber is abandoned at exit_group.
  char long_path[320] = "/tmp/";
  std::memset(long_path + 5, 'a', 300);
  check(u, "a component over NAME_MAX", open_path(u, long_path, 0), -ENAMETOOLONG);

  // Directories.
  check(u, "mkdir /tmp/d", path_call(u, sys::kMkdir, "/tmp/d", 0755), 0);
  check(u, "mkdir again", path_call(u, sys::kMkdir, "/tmp/d", 0755), -EEXIST);
  check(u, "mkdir in a missing directory", path_call(u, sys::kMkdir, "/tmp/no/d", 0755), -ENOENT);
  check(u, "chdir /tmp/d", path_call(u, sys::kChdir, "/tmp/d"), 0);
  check(u, "getcwd", u.syscall(sys::kGetcwd, kBuf, 100), 7);
  expect_text(u, "cwd", get(u, kBuf, 6), "/tmp/d");
  check(u, "getcwd into a small buffer", u.syscall(sys::kGetcwd, kBuf, 3), -ERANGE);
  check(u, "open ../f relative to the cwd", open_path(u, "../f", 0), 3);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "chdir to a file", path_call(u, sys::kChdir, "/tmp/f"), -ENOTDIR);
  check(u, "chdir ..", path_call(u, sys::kChdir, ".."), 0);
  check(u, "getcwd after ..", u.syscall(sys::kGetcwd, kBuf, 100), 5);
  check(u, "rename /tmp/f to /tmp/d/g", two_paths(u, sys::kRename, "/tmp/f", "/tmp/d/g"), 0);
  check(u, "stat the old name", path_call(u, sys::kStat, "/tmp/f", kStatBuf), -ENOENT);
  check(u, "stat the new name", path_call(u, sys::kStat, "d/g", kStatBuf), 0);
  check(u, "rmdir a non-empty directory", path_call(u, sys::kRmdir, "/tmp/d"), -ENOTEMPTY);
  check(u, "unlink a directory", path_call(u, sys::kUnlink, "/tmp/d"), -EISDIR);
  check(u, "rmdir a file", path_call(u, sys::kRmdir, "/tmp/d/g"), -ENOTDIR);
  check(u, "rename a directory into itself", two_paths(u, sys::kRename, "/tmp/d", "/tmp/d/sub"), -EINVAL);
  check(u, "rename across file systems", two_paths(u, sys::kRename, "/tmp/d/g", "/dev/g"), -EXDEV);
  check(u, "unlink /tmp/d/g", path_call(u, sys::kUnlink, "/tmp/d/g"), 0);
  check(u, "rmdir /tmp/d", path_call(u, sys::kRmdir, "/tmp/d"), 0);
  check(u, "rmdir a mount point", path_call(u, sys::kRmdir, "/tmp"), -EBUSY);

  // Symbolic links.
  check(u, "creat /tmp/target", open_path(u, "/tmp/target", kOCreat | kOWronly, 0600), 3);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "symlink", two_paths(u, sys::kSymlink, "/tmp/target", "/tmp/link"), 0);
  check(u, "symlink over an existing name", two_paths(u, sys::kSymlink, "x", "/tmp/link"), -EEXIST);
  check(u, "readlink", u.syscall(sys::kReadlink, kStr2, kBuf, 100), 11);
  expect_text(u, "link target", get(u, kBuf, 11), "/tmp/target");
  check(u, "readlink of a file", path_call(u, sys::kReadlink, "/tmp/target", kBuf, 100), -EINVAL);
  check(u, "lstat sees the link", path_call(u, sys::kLstat, "/tmp/link", kStatBuf), 0);
  check(u, "lstat mode", u.load32(kStatBuf + 24) & 0170000, 0120000);
  check(u, "open through the link", open_path(u, "/tmp/link", 0), 3);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "O_NOFOLLOW on a link", open_path(u, "/tmp/link", kONofollow), -ELOOP);
  check(u, "a self-referencing link", two_paths(u, sys::kSymlink, "/tmp/loop", "/tmp/loop"), 0);
  check(u, "open a link loop", open_path(u, "/tmp/loop", 0), -ELOOP);
  check(u, "a dangling link with O_CREAT|O_EXCL", two_paths(u, sys::kSymlink, "/tmp/nowhere", "/tmp/dangling"), 0);
  check(u, "O_CREAT|O_EXCL on a dangling link", open_path(u, "/tmp/dangling", kOCreat | kOExcl | kOWronly, 0600), -EEXIST);

  // Listings and the synthetic file systems.
  expect_text(u, "ls /", list(u, "/"), ". .. tmp dev proc sys ");
  expect_text(u, "ls /dev", list(u, "/dev"), ". .. null zero full random urandom tty console ");
  expect_text(u, "ls /proc (PID 1 listed)", list(u, "/proc"), ". .. self 1 cpuinfo meminfo stat sys mounts ");
  expect_text(u, "ls /proc/1", list(u, "/proc/1"), ". .. exe cwd maps mountinfo stat mounts ");
  expect_text(u, "cpu online", slurp(u, "/sys/devices/system/cpu/online"), "0-1\n");
  expect_text(u, "cpu1 core id", slurp(u, "/sys/devices/system/cpu/cpu1/topology/core_id"), "1\n");
  check(u, "a CPU that does not exist", open_path(u, "/sys/devices/system/cpu/cpu2/online", 0), -ENOENT);
  expect_text(u, "overcommit", slurp(u, "/proc/sys/vm/overcommit_memory"), "0\n");
  check(u, "readlink /proc/self", path_call(u, sys::kReadlink, "/proc/self", kBuf, 100), 1);
  check(u, "open /dev/null", open_path(u, "/dev/null", kORdwr), 3);
  check(u, "write to /dev/null", write_text(u, 3, "gone"), 4);
  check(u, "read from /dev/null", u.syscall(sys::kRead, 3, kBuf, 10), 0);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "open /dev/full", open_path(u, "/dev/full", kORdwr), 3);
  check(u, "write to /dev/full", write_text(u, 3, "x"), -ENOSPC);
  u.store64(kBuf, ~0ull);
  check(u, "read from /dev/full", u.syscall(sys::kRead, 3, kBuf, 8), 8);
  check(u, "it reads zeros", static_cast<int64_t>(u.load64(kBuf)), 0);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "creat on a read-only file system", open_path(u, "/proc/new", kOCreat | kOWronly, 0600), -EPERM);

  // Descriptors.
  check(u, "dup", u.syscall(sys::kDup, 1), 3);
  check(u, "dup2 to 10", u.syscall(sys::kDup2, 1, 10), 10);
  check(u, "dup2 to itself", u.syscall(sys::kDup2, 10, 10), 10);
  check(u, "dup2 of a closed descriptor", u.syscall(sys::kDup2, 9, 10), -EBADF);
  check(u, "dup3 to itself", u.syscall(sys::kDup3, 10, 10, 0), -EINVAL);
  check(u, "dup3 with O_CLOEXEC", u.syscall(sys::kDup3, 1, 11, kOCloexec), 11);
  check(u, "F_GETFD after dup3 O_CLOEXEC", u.syscall(sys::kFcntl, 11, 1), 1);
  check(u, "F_GETFD after dup2", u.syscall(sys::kFcntl, 10, 1), 0);
  check(u, "F_DUPFD from 20", u.syscall(sys::kFcntl, 1, 0, 20), 20);
  check(u, "F_DUPFD past the limit", u.syscall(sys::kFcntl, 1, 0, 1024), -EINVAL);
  check(u, "dup2 past the limit", u.syscall(sys::kDup2, 1, 1024), -EBADF);
  check(u, "F_SETFL O_NONBLOCK", u.syscall(sys::kFcntl, 3, 4, kONonblock), 0);
  check(u, "F_GETFL", u.syscall(sys::kFcntl, 3, 3) & (kONonblock | 3), kONonblock | kORdwr);
  int64_t last = 0;
  for (int i = 0; i < 1100; ++i) {
    last = u.syscall(sys::kDup, 1);
    if (last < 0) break;
  }
  check(u, "dup until the table is full", last, -EMFILE);
  for (uint64_t fd = 3; fd < 1024; ++fd) u.syscall(sys::kClose, fd);

  // Pipes.
  check(u, "pipe2 O_NONBLOCK", u.syscall(sys::kPipe2, kFds, kONonblock), 0);
  const uint64_t r = u.load32(kFds), w = u.load32(kFds + 4);
  check(u, "read end", static_cast<int64_t>(r), 3);
  check(u, "write end", static_cast<int64_t>(w), 4);
  check(u, "read an empty non-blocking pipe", u.syscall(sys::kRead, r, kBuf, 10), -EAGAIN);
  check(u, "write 3", write_text(u, static_cast<int64_t>(w), "abc"), 3);
  check(u, "FIONREAD", u.syscall(sys::kIoctl, r, 0x541b, kStatBuf), 0);
  check(u, "bytes buffered", u.load32(kStatBuf), 3);
  check(u, "lseek on a pipe", u.syscall(sys::kLseek, r, 0, 0), -ESPIPE);
  check(u, "read 3", u.syscall(sys::kRead, r, kBuf, 10), 3);
  expect_text(u, "pipe bytes", get(u, kBuf, 3), "abc");
  check(u, "fstat a pipe", u.syscall(sys::kFstat, r, kStatBuf), 0);
  check(u, "pipe mode", u.load32(kStatBuf + 24) & 0170000, 0010000);
  // Fill the 64 KiB buffer without blocking.
  int64_t total = 0;
  for (;;) {
    const int64_t n = u.syscall(sys::kWrite, w, kBuf, 4096);
    if (n < 0) {
      check(u, "a full non-blocking pipe", n, -EAGAIN);
      break;
    }
    total += n;
  }
  check(u, "pipe capacity", total, 65536);
  check(u, "close the write end", u.syscall(sys::kClose, w), 0);
  int64_t drained = 0;
  for (;;) {
    const int64_t n = u.syscall(sys::kRead, r, kBuf, 4096);
    if (n <= 0) {
      check(u, "EOF after the writer closed", n, 0);
      break;
    }
    drained += n;
  }
  check(u, "every byte read", drained, 65536);
  check(u, "close the read end", u.syscall(sys::kClose, r), 0);
  check(u, "pipe", u.syscall(sys::kPipe, kFds), 0);
  check(u, "close the read end", u.syscall(sys::kClose, u.load32(kFds)), 0);
  u.store64(kStatBuf, 1ull << (13 - 1));  // block SIGPIPE: the write reports EPIPE
  u.syscall(sys::kRtSigprocmask, 0, kStatBuf, 0, 8);
  check(u, "write without readers", write_text(u, u.load32(kFds + 4), "x"), -EPIPE);
  check(u, "close", u.syscall(sys::kClose, u.load32(kFds + 4)), 0);
  // A tree 1,500 directories deep (built through *at calls, below the 4 KiB path limit) is
  // freed at the end of the run without recursing once per level.
  int64_t dir = open_path(u, "/tmp", kODirectory);
  put(u, kStr2, "a");
  for (int depth = 0; depth < 1500; ++depth) {
    if (u.syscall(258, static_cast<uint64_t>(dir), kStr2, 0755) != 0) u.fail("mkdirat at depth %d", depth);
    const int64_t next = u.syscall(sys::kOpenat, static_cast<uint64_t>(dir), kStr2, kODirectory, 0);
    if (next < 0) u.fail("openat at depth %d: %lld", depth, static_cast<long long>(next));
    u.syscall(sys::kClose, static_cast<uint64_t>(dir));
    dir = next;
  }
  check(u, "close the deepest directory", u.syscall(sys::kClose, static_cast<uint64_t>(dir)), 0);
  check(u, "pipe2 with a bad flag", u.syscall(sys::kPipe2, kFds, 1), -EINVAL);
  check(u, "pipe to unmapped memory", u.syscall(sys::kPipe, kUnmapped), -EFAULT);
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-fs-table", "file, descriptor and pipe semantics, one thread",
                       register_entry("test.fs.table", fs_table), any});
  }
} const kRegistrar;

TEST(FsSemantics, SingleThreadTableMatchesLinux) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    RunSpec spec;
    spec.scenario = "test-fs-table";
    spec.cpus = 2;
    spec.seed = seed;
    spec.strategy.kind = StrategyKind::Random;
    spec.max_steps = 50'000'000;
    const RunResult r = run_one(spec);
    EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
  }
}

}  // namespace
}  // namespace sim
