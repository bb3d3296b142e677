// Pipe, event and readiness system calls: decode the arguments, then call core/ipc.
#include "core/ipc/ipc.h"
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/syscalls/dispatch.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

Result<i64> install_pair(File* a, File* b, bool cloexec, u64 out) {
  FileTable* files = TRY(current_files());
  auto fa = files->install(a, cloexec);
  if (fa.is_error()) {
    a->release();
    b->release();
    return fa.error();
  }
  auto fb = files->install(b, cloexec);
  if (fb.is_error()) {
    (void)files->close(fa.value());
    b->release();
    return fb.error();
  }
  const i32 fds[2] = {fa.value(), fb.value()};
  if (!hal::copy_to_user(out, fds, sizeof(fds))) {
    (void)files->close(fds[0]);
    (void)files->close(fds[1]);
    return Errno::kEFAULT;
  }
  return 0;
}

namespace {

Result<i64> do_pipe(SyscallArgs& args, u64 out, u64 flags) {
  if ((flags & ~static_cast<u64>(oflag::kCloExec | oflag::kNonBlock | oflag::kDirect)) != 0) return Errno::kEINVAL;
  File* read_end = nullptr;
  File* write_end = nullptr;
  TRY(pipe_create(args.kernel, static_cast<u32>(flags), &read_end, &write_end));
  return install_pair(read_end, write_end, (flags & oflag::kCloExec) != 0, out);
}

}  // namespace

Result<i64> sys_pipe(SyscallArgs& args) { return do_pipe(args, args.arg[0], 0); }
Result<i64> sys_pipe2(SyscallArgs& args) { return do_pipe(args, args.arg[0], args.arg[1]); }

namespace {

Result<i64> install_one(File* file, bool cloexec) {
  FileTable* files = TRY(current_files());
  auto fd = files->install(file, cloexec);
  if (fd.is_error()) {
    file->release();
    return fd.error();
  }
  return fd.value();
}

constexpr u64 kNsPerSecond = 1'000'000'000;
constexpr u64 kNoWait = ~0ull;  // wait_readiness: scan once

// A relative timeout in milliseconds (poll, epoll_wait): negative waits forever.
u64 deadline_from_ms(i32 timeout_ms) {
  if (timeout_ms < 0) return 0;
  if (timeout_ms == 0) return kNoWait;
  return hal::monotonic_ns() + static_cast<u64>(timeout_ms) * 1'000'000;
}

// A relative struct timespec (ppoll, pselect6): null waits forever.
Result<u64> deadline_from_timespec(u64 address) {
  if (address == 0) return u64{0};
  const KernelTimespec ts = TRY(copy_from_user(UserPtr<KernelTimespec>(address)));
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= static_cast<i64>(kNsPerSecond)) return Errno::kEINVAL;
  const u64 ns = static_cast<u64>(ts.tv_sec) * kNsPerSecond + static_cast<u64>(ts.tv_nsec);
  if (ns == 0) return kNoWait;
  return hal::monotonic_ns() + ns;
}

u64 remaining(u64 deadline) {
  if (deadline == 0 || deadline == kNoWait) return 0;
  const u64 now = hal::monotonic_ns();
  return deadline > now ? deadline - now : 0;
}

// Notes the earliest time a file may become ready by itself (timerfd) in *wake_at.
void note_wake(File* file, u64* wake_at) {
  const u64 t = file->next_event_ns();
  if (t != 0 && (*wake_at == 0 || t < *wake_at)) *wake_at = t;
}

struct PollFd {
  i32 fd;
  i16 events;
  i16 revents;
};

Result<i64> do_poll(u64 fds, u64 count, u64 deadline) {
  if (count > FileTable::kMaxFds) return Errno::kEINVAL;
  Kernel& kernel = *Kernel::current_thread()->kernel;
  // Every entry is read before anything waits: a bad array fails at once.
  for (u64 i = 0; i < count; ++i) TRY(copy_from_user(UserPtr<PollFd>(fds).offset(i)));
  return wait_readiness(kernel, deadline, [&](u64* wake_at) -> Result<i64> {
    i64 ready = 0;
    for (u64 i = 0; i < count; ++i) {
      PollFd p = TRY(copy_from_user(UserPtr<PollFd>(fds).offset(i)));
      p.revents = 0;
      if (p.fd >= 0) {
        auto file = get_file(p.fd);
        if (file.is_error()) {
          p.revents = static_cast<i16>(pollev::kNval);
        } else {
          const u32 mask = static_cast<u16>(p.events) | pollev::kErr | pollev::kHup;
          p.revents = static_cast<i16>(file.value()->poll_for_wait() & mask);
          note_wake(file.value().get(), wake_at);
        }
      }
      if (p.revents != 0) ++ready;
      TRY(copy_to_user(UserPtr<PollFd>(fds).offset(i), p));
    }
    return ready;
  });
}

constexpr u32 kFdSetWords = FileTable::kMaxFds / 64;

Result<i64> do_select(i64 nfds, u64 read_set, u64 write_set, u64 except_set, u64 deadline) {
  if (nfds < 0 || nfds > static_cast<i64>(FileTable::kMaxFds)) return Errno::kEINVAL;
  const u32 words = static_cast<u32>((nfds + 63) / 64);
  u64 in[3][kFdSetWords] = {};
  const u64 sets[3] = {read_set, write_set, except_set};
  for (u32 s = 0; s < 3; ++s) {
    if (sets[s] != 0 && words > 0 && !hal::copy_from_user(in[s], sets[s], words * 8)) return Errno::kEFAULT;
  }
  // Bits past nfds are ignored, as Linux does.
  if (nfds % 64 != 0) {
    for (auto& set : in) set[words - 1] &= (1ull << (nfds % 64)) - 1;
  }
  u64 out[3][kFdSetWords] = {};
  Kernel& kernel = *Kernel::current_thread()->kernel;
  auto ready = wait_readiness(kernel, deadline, [&](u64* wake_at) -> Result<i64> {
    i64 count = 0;
    fill_bytes(out, 0, sizeof(out));
    for (i64 fd = 0; fd < nfds; ++fd) {
      const u64 bit = 1ull << (fd % 64);
      const u32 word = static_cast<u32>(fd / 64);
      if (((in[0][word] | in[1][word] | in[2][word]) & bit) == 0) continue;
      FileRef file = TRY(get_file(static_cast<i32>(fd)));
      const u32 events = file->poll_for_wait();
      note_wake(file.get(), wake_at);
      if ((in[0][word] & bit) && (events & (pollev::kIn | pollev::kHup | pollev::kErr))) {
        out[0][word] |= bit;
        ++count;
      }
      if ((in[1][word] & bit) && (events & (pollev::kOut | pollev::kErr))) {
        out[1][word] |= bit;
        ++count;
      }
      if ((in[2][word] & bit) && (events & pollev::kPri)) {
        out[2][word] |= bit;
        ++count;
      }
    }
    return count;
  });
  if (ready.is_error()) return ready.error();
  for (u32 s = 0; s < 3; ++s) {
    if (sets[s] != 0 && words > 0 && !hal::copy_to_user(sets[s], out[s], words * 8)) return Errno::kEFAULT;
  }
  return ready.value();
}

}  // namespace

Result<i64> sys_poll(SyscallArgs& args) {
  return do_poll(args.arg[0], args.arg[1], deadline_from_ms(static_cast<i32>(args.arg[2])));
}

Result<i64> sys_ppoll(SyscallArgs& args) {
  // The signal mask argument is ignored until signal delivery can interrupt the wait; the
  // timeout is not written back (Linux writes the time left).
  if (args.arg[3] != 0 && args.arg[4] != 8) return Errno::kEINVAL;
  const u64 deadline = TRY(deadline_from_timespec(args.arg[2]));
  return do_poll(args.arg[0], args.arg[1], deadline);
}

Result<i64> sys_select(SyscallArgs& args) {
  u64 deadline = 0;
  const UserPtr<KernelTimeval> timeout(args.arg[4]);
  if (!timeout.is_null()) {
    const KernelTimeval tv = TRY(copy_from_user(timeout));
    if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1'000'000) return Errno::kEINVAL;
    const u64 ns = static_cast<u64>(tv.tv_sec) * kNsPerSecond + static_cast<u64>(tv.tv_usec) * 1000;
    deadline = ns == 0 ? kNoWait : hal::monotonic_ns() + ns;
  }
  const i64 ready = TRY(do_select(static_cast<i64>(static_cast<i32>(args.arg[0])), args.arg[1], args.arg[2],
                                  args.arg[3], deadline));
  if (!timeout.is_null()) {
    // Linux's select writes back the time not slept.
    const u64 left = remaining(deadline);
    TRY(copy_to_user(timeout, KernelTimeval{static_cast<i64>(left / kNsPerSecond),
                                            static_cast<i64>(left % kNsPerSecond / 1000)}));
  }
  return ready;
}

Result<i64> sys_pselect6(SyscallArgs& args) {
  // The sixth argument points to {sigset pointer, size}; the mask is ignored until signal
  // delivery can interrupt the wait.
  const u64 deadline = TRY(deadline_from_timespec(args.arg[4]));
  const i64 ready = TRY(do_select(static_cast<i64>(static_cast<i32>(args.arg[0])), args.arg[1], args.arg[2],
                                  args.arg[3], deadline));
  if (args.arg[4] != 0) {
    const u64 left = remaining(deadline);
    TRY(copy_to_user(UserPtr<KernelTimespec>(args.arg[4]),
                     KernelTimespec{static_cast<i64>(left / kNsPerSecond), static_cast<i64>(left % kNsPerSecond)}));
  }
  return ready;
}

Result<i64> sys_eventfd(SyscallArgs& args) {
  File* file = TRY(eventfd_create(args.kernel, static_cast<u32>(args.arg[0]), 0));
  return install_one(file, false);
}

Result<i64> sys_eventfd2(SyscallArgs& args) {
  const u32 flags = static_cast<u32>(args.arg[1]);
  File* file = TRY(eventfd_create(args.kernel, static_cast<u32>(args.arg[0]), flags));
  return install_one(file, (flags & oflag::kCloExec) != 0);
}

Result<i64> sys_timerfd_create(SyscallArgs& args) {
  const u32 flags = static_cast<u32>(args.arg[1]);
  File* file = TRY(timerfd_create(args.kernel, static_cast<i32>(args.arg[0]), flags));
  return install_one(file, (flags & oflag::kCloExec) != 0);
}

Result<i64> sys_timerfd_settime(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  const KernelItimerspec value = TRY(copy_from_user(UserPtr<KernelItimerspec>(args.arg[2])));
  const UserPtr<KernelItimerspec> old(args.arg[3]);
  KernelItimerspec previous{};
  TRY(timerfd_settime(*file.get(), static_cast<u32>(args.arg[1]), value, old.is_null() ? nullptr : &previous));
  if (!old.is_null()) TRY(copy_to_user(old, previous));
  return 0;
}

Result<i64> sys_timerfd_gettime(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  KernelItimerspec value{};
  TRY(timerfd_gettime(*file.get(), &value));
  TRY(copy_to_user(UserPtr<KernelItimerspec>(args.arg[1]), value));
  return 0;
}

Result<i64> sys_epoll_create(SyscallArgs& args) {
  if (static_cast<i32>(args.arg[0]) <= 0) return Errno::kEINVAL;
  File* file = TRY(epoll_create(args.kernel));
  return install_one(file, false);
}

Result<i64> sys_epoll_create1(SyscallArgs& args) {
  if ((args.arg[0] & ~static_cast<u64>(oflag::kCloExec)) != 0) return Errno::kEINVAL;
  File* file = TRY(epoll_create(args.kernel));
  return install_one(file, args.arg[0] != 0);
}

Result<i64> sys_epoll_ctl(SyscallArgs& args) {
  constexpr i32 kDel = 2;
  const i32 op = static_cast<i32>(args.arg[1]);
  FileRef epoll = TRY(get_file(static_cast<i32>(args.arg[0])));
  FileRef target = TRY(get_file(static_cast<i32>(args.arg[2])));
  EpollEvent event{};
  if (op != kDel) event = TRY(copy_from_user(UserPtr<EpollEvent>(args.arg[3])));
  TRY(epoll_control(*epoll.get(), op, static_cast<i32>(args.arg[2]), target.get(), event));
  return 0;
}

namespace {
Result<i64> do_epoll_wait(SyscallArgs& args) {
  const i32 max = static_cast<i32>(args.arg[2]);
  if (max <= 0 || static_cast<u64>(max) > 0x7fffffffull / sizeof(EpollEvent)) return Errno::kEINVAL;
  // Linux checks the whole buffer's range first (access_ok): a kernel address is EFAULT even
  // when no event would be written.
  const u64 bytes = static_cast<u64>(max) * sizeof(EpollEvent);
  if (args.arg[1] > hal::kUserTop || bytes > hal::kUserTop - args.arg[1]) return Errno::kEFAULT;
  FileRef epoll = TRY(get_file(static_cast<i32>(args.arg[0])));
  return epoll_wait_events(*epoll.get(), args.arg[1], static_cast<u32>(max),
                           deadline_from_ms(static_cast<i32>(args.arg[3])));
}
}  // namespace

Result<i64> sys_epoll_wait(SyscallArgs& args) { return do_epoll_wait(args); }

Result<i64> sys_epoll_pwait(SyscallArgs& args) {
  // The signal mask is ignored until signal delivery can interrupt the wait.
  if (args.arg[4] != 0 && args.arg[5] != 8) return Errno::kEINVAL;
  return do_epoll_wait(args);
}

}  // namespace tandem
