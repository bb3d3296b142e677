// The one table that maps Linux x86-64 system call numbers to handlers. A number that is not
// here returns ENOSYS. Each handler only decodes its arguments and calls into the subsystem.
#pragma once

#include "core/syscalls/table_fs.h"

// X(number, name)
#define TANDEM_SYSCALLS(X) \
  X(0, read)               \
  X(1, write)              \
  X(9, mmap)               \
  X(10, mprotect)          \
  X(11, munmap)            \
  X(12, brk)               \
  X(13, rt_sigaction)      \
  X(14, rt_sigprocmask)    \
  X(15, rt_sigreturn)      \
  X(16, ioctl)             \
  X(20, writev)            \
  X(24, sched_yield)       \
  X(28, madvise)           \
  X(34, pause)             \
  X(35, nanosleep)         \
  X(39, getpid)            \
  X(56, clone)             \
  X(57, fork)              \
  X(58, vfork)             \
  X(59, execve)            \
  X(60, exit)              \
  X(61, wait4)             \
  X(62, kill)              \
  X(63, uname)             \
  X(96, gettimeofday)      \
  X(102, getuid)           \
  X(104, getgid)           \
  X(107, geteuid)          \
  X(108, getegid)          \
  X(109, setpgid)          \
  X(110, getppid)          \
  X(111, getpgrp)          \
  X(112, setsid)           \
  X(121, getpgid)          \
  X(124, getsid)           \
  X(127, rt_sigpending)    \
  X(130, rt_sigsuspend)    \
  X(131, sigaltstack)      \
  X(158, arch_prctl)       \
  X(186, gettid)           \
  X(200, tkill)            \
  X(202, futex)            \
  X(204, sched_getaffinity) \
  X(218, set_tid_address)  \
  X(228, clock_gettime)    \
  X(229, clock_getres)     \
  X(230, clock_nanosleep)  \
  X(231, exit_group)       \
  X(234, tgkill)           \
  X(247, waitid)           \
  X(273, set_robust_list)  \
  X(309, getcpu)          \
  X(318, getrandom)       \
  X(322, execveat)         \
  TANDEM_FS_SYSCALLS(X)
