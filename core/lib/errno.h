// Linux errno values (x86-64). The only place where they become negative numbers is the
// syscall dispatcher.
#pragma once

#include "core/lib/types.h"

namespace tandem {

// Every errno tandem returns, with Linux's x86-64 value: X(NAME, VALUE).
#define TANDEM_ERRNOS(X) \
  X(EPERM, 1) X(ENOENT, 2) X(ESRCH, 3) X(EINTR, 4) X(EIO, 5) X(ENXIO, 6) X(E2BIG, 7) \
  X(ENOEXEC, 8) X(EBADF, 9) X(ECHILD, 10) X(EAGAIN, 11) X(ENOMEM, 12) X(EACCES, 13) X(EFAULT, 14) \
  X(ENOTBLK, 15) X(EBUSY, 16) X(EEXIST, 17) X(EXDEV, 18) X(ENODEV, 19) X(ENOTDIR, 20) \
  X(EISDIR, 21) X(EINVAL, 22) X(ENFILE, 23) X(EMFILE, 24) X(ENOTTY, 25) X(ETXTBSY, 26) \
  X(EFBIG, 27) X(ENOSPC, 28) X(ESPIPE, 29) X(EROFS, 30) X(EMLINK, 31) X(EPIPE, 32) X(EDOM, 33) \
  X(ERANGE, 34) X(EDEADLK, 35) X(ENAMETOOLONG, 36) X(ENOLCK, 37) X(ENOSYS, 38) X(ENOTEMPTY, 39) \
  X(ELOOP, 40) X(ENOMSG, 42) X(ENODATA, 61) X(EOVERFLOW, 75) X(ENOTSOCK, 88) X(EDESTADDRREQ, 89) \
  X(EMSGSIZE, 90) X(EPROTOTYPE, 91) X(ENOPROTOOPT, 92) X(EPROTONOSUPPORT, 93) \
  X(ESOCKTNOSUPPORT, 94) X(EOPNOTSUPP, 95) X(EAFNOSUPPORT, 97) X(EADDRINUSE, 98) \
  X(EADDRNOTAVAIL, 99) X(ENETDOWN, 100) X(ENETUNREACH, 101) X(ECONNABORTED, 103) \
  X(ECONNRESET, 104) X(ENOBUFS, 105) X(EISCONN, 106) X(ENOTCONN, 107) X(ETOOMANYREFS, 109) \
  X(ETIMEDOUT, 110) X(ECONNREFUSED, 111) X(EHOSTUNREACH, 113) X(EALREADY, 114) \
  X(EINPROGRESS, 115) \
  X(ERESTARTSYS, 512)

enum class Errno : i32 {
#define TANDEM_ERRNO_ENUM(name, value) k##name = value,
  TANDEM_ERRNOS(TANDEM_ERRNO_ENUM)
#undef TANDEM_ERRNO_ENUM
  // kERESTARTSYS is kernel-internal: a syscall interrupted by a signal that may be restarted
  // (SA_RESTART); it never reaches user mode.
};

const char* errno_name(Errno e);

}  // namespace tandem
