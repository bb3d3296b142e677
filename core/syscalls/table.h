// The one table that maps Linux x86-64 system call numbers to handlers. A number that is not
// here returns ENOSYS. Each handler only decodes its arguments and calls into the subsystem.
#pragma once

// X(number, name)
#define TANDEM_SYSCALLS(X) \
  X(24, sched_yield)       \
  X(35, nanosleep)         \
  X(39, getpid)            \
  X(56, clone)             \
  X(60, exit)              \
  X(96, gettimeofday)      \
  X(186, gettid)           \
  X(202, futex)            \
  X(218, set_tid_address)  \
  X(228, clock_gettime)    \
  X(229, clock_getres)     \
  X(230, clock_nanosleep)  \
  X(231, exit_group)
