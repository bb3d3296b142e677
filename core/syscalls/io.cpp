// Console I/O system calls: read, write, writev, ioctl. File descriptors 0, 1 and 2 are the
// console (hal::console_read / console_write) until file descriptors arrive with the VFS;
// every other descriptor is EBADF.
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

namespace {

constexpr u64 kConsoleFds = 3;
constexpr usize kChunk = 256;
constexpr u64 kMaxIo = 0x7ffff000;  // Linux's MAX_RW_COUNT

// Writes [address, address + length) to the console. Returns the bytes written, or EFAULT when
// the first byte is already unreadable (a later fault ends the write short, as on Linux).
Result<u64> console_write_user(u64 address, u64 length) {
  char buffer[kChunk];
  u64 done = 0;
  length = min(length, kMaxIo);
  while (done < length) {
    const usize chunk = min<u64>(kChunk, length - done);
    if (!hal::copy_from_user(buffer, address + done, chunk)) {
      if (done == 0) return Errno::kEFAULT;
      break;
    }
    hal::console_write(buffer, chunk);
    done += chunk;
  }
  return done;
}

}  // namespace

Result<i64> sys_write(SyscallArgs& args) {
  if (args.arg[0] >= kConsoleFds) return Errno::kEBADF;
  if (args.arg[2] == 0) return 0;
  return static_cast<i64>(TRY(console_write_user(args.arg[1], args.arg[2])));
}

Result<i64> sys_writev(SyscallArgs& args) {
  struct Iovec {
    u64 base;
    u64 length;
  };
  const u64 fd = args.arg[0];
  const UserPtr<Iovec> iov(args.arg[1]);
  const u64 count = args.arg[2];
  if (fd >= kConsoleFds) return Errno::kEBADF;
  if (count > 1024) return Errno::kEINVAL;
  // Decode every vector first: a bad one fails the call before anything is written.
  u64 total = 0;
  for (u64 i = 0; i < count; ++i) {
    const Iovec v = TRY(copy_from_user(iov.offset(i)));
    if (static_cast<i64>(v.length) < 0 || total + v.length > kMaxIo + kMaxIo) return Errno::kEINVAL;
    total += v.length;
  }
  u64 done = 0;
  for (u64 i = 0; i < count; ++i) {
    const Iovec v = TRY(copy_from_user(iov.offset(i)));
    if (v.length == 0) continue;
    auto written = console_write_user(v.base, v.length);
    if (written.is_error()) {
      if (done == 0) return written.error();
      break;
    }
    done += written.value();
    if (written.value() < v.length) break;
  }
  return static_cast<i64>(done);
}

Result<i64> sys_read(SyscallArgs& args) {
  const u64 fd = args.arg[0];
  const u64 address = args.arg[1];
  const u64 length = min(args.arg[2], kMaxIo);
  if (fd >= kConsoleFds) return Errno::kEBADF;
  if (length == 0) return 0;
  char buffer[kChunk];
  // Console input is polled: wait in 10 ms steps until some bytes arrive.
  for (;;) {
    const usize got = hal::console_read(buffer, min<u64>(kChunk, length));
    if (got > 0) {
      if (!hal::copy_to_user(address, buffer, got)) return Errno::kEFAULT;
      return static_cast<i64>(got);
    }
    if (Kernel::current_thread()->kill_pending.load()) return Errno::kEINTR;
    args.kernel.sleep_until(hal::monotonic_ns() + kTickNs);
  }
}

Result<i64> sys_ioctl(SyscallArgs& args) {
  constexpr u64 kTiocgwinsz = 0x5413;
  const u64 fd = args.arg[0];
  const u64 request = args.arg[1];
  if (fd >= kConsoleFds) return Errno::kEBADF;
  if (request == kTiocgwinsz) {
    // The serial console has no size; 80x24 is what a terminal would say. (musl line-buffers
    // stdout when this succeeds.)
    struct Winsize {
      u16 rows, columns, xpixel, ypixel;
    };
    TRY(copy_to_user(UserPtr<Winsize>(args.arg[2]), Winsize{24, 80, 0, 0}));
    return 0;
  }
  // TCGETS and the rest: the console is not a terminal with settable modes yet.
  return Errno::kENOTTY;
}

}  // namespace tandem
