// The file, descriptor and IPC system calls (core/syscalls/fs.cpp, ipc.cpp), in the same
// X(number, name) form as table.h, which includes this list in its own.
#pragma once

#define TANDEM_FS_SYSCALLS(X) \
  X(2, open) \
  X(3, close) \
  X(4, stat) \
  X(5, fstat) \
  X(6, lstat) \
  X(8, lseek) \
  X(17, pread64) \
  X(18, pwrite64) \
  X(19, readv) \
  X(21, access) \
  X(22, pipe)              \
  X(32, dup) \
  X(33, dup2) \
  X(40, sendfile) \
  X(72, fcntl) \
  X(76, truncate) \
  X(77, ftruncate) \
  X(79, getcwd) \
  X(80, chdir) \
  X(81, fchdir) \
  X(82, rename) \
  X(83, mkdir) \
  X(84, rmdir) \
  X(87, unlink) \
  X(88, symlink) \
  X(89, readlink) \
  X(95, umask) \
  X(217, getdents64) \
  X(257, openat) \
  X(258, mkdirat) \
  X(262, newfstatat) \
  X(263, unlinkat) \
  X(264, renameat) \
  X(266, symlinkat) \
  X(267, readlinkat) \
  X(269, faccessat) \
  X(292, dup3) \
  X(293, pipe2)             \
  X(316, renameat2) \
  X(332, statx) \
  X(436, close_range) \
  X(439, faccessat2)
