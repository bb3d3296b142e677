// Pipes, eventfd, timerfd, epoll and the readiness waits of poll/select/epoll_wait.
//
// Blocking reads and writes of one pipe sleep on that pipe's wait queue with the scheduler's
// prepare_to_sleep / queue / block protocol (the condition is checked under the pipe's lock,
// the one every waker takes). Waiting for readiness of many files at once uses the VFS's one
// readiness queue instead: every change of any file's readiness bumps a sequence number and
// wakes the pollers whose interest mask (a bit per file, hashed: File::readiness_key) shares
// a bit with the change, and they rescan their own files. A collision only costs a rescan,
// and there is no per-file registration to leak or lose a wake-up (see wait_readiness).
#pragma once

#include "core/fs/vfs.h"

namespace tandem {

// pipe2: a read end and a write end (new references). flags: O_NONBLOCK (O_CLOEXEC is the
// caller's business).
Result<void> pipe_create(Kernel& kernel, u32 flags, File** read_end, File** write_end);
inline constexpr usize kPipeCapacity = 64 * 1024;

Result<File*> eventfd_create(Kernel& kernel, u32 initial, u32 flags);
Result<File*> timerfd_create(Kernel& kernel, i32 clock, u32 flags);
// timerfd_settime / gettime on a timerfd file (EINVAL for other files).
struct KernelItimerspec {
  i64 interval_sec, interval_nsec, value_sec, value_nsec;
};
Result<void> timerfd_settime(File& file, u32 flags, const KernelItimerspec& value, KernelItimerspec* old);
Result<void> timerfd_gettime(File& file, KernelItimerspec* out);

Result<File*> epoll_create(Kernel& kernel);
struct EpollEvent {
  u32 events;
  u64 data;
} __attribute__((packed));
static_assert(sizeof(EpollEvent) == 12);
// epoll_ctl: op 1 ADD, 2 DEL, 3 MOD.
Result<void> epoll_control(File& epoll, i32 op, i32 fd, File* target, const EpollEvent& event);
// epoll_wait: up to `max` events into user memory at `out`; deadline 0 = forever, ~0 = don't wait.
Result<i64> epoll_wait_events(File& epoll, u64 out, u32 max, u64 deadline_ns);
// Called when a file's last reference goes: drops its epoll registrations.
void epoll_forget_file(File& file);

// Prints every epoll set's items (fd, events asked, one-shot disabled, last readiness seen) for
// Kernel::dump_state, without taking a lock.
void epoll_dump_state(Kernel& kernel);

// Waits until check() returns non-zero, the monotonic deadline passes (0: none), or the thread is
// asked to exit. `check` is called with no lock held; `files_deadline` gives the earliest time a
// watched file may become ready by itself (timerfd). Returns check()'s value, 0 on timeout,
// EINTR when killed.
template <typename Check>
Result<i64> wait_readiness(Kernel& kernel, u64 deadline_ns, Check&& check);

// The wait loop behind wait_readiness (non-template part).
struct ReadinessWaiter {
  Kernel& kernel;
  Vfs& vfs;
  u64 sequence = 0;
  // Starts a look at files (their poll_for_wait()): the sequence, and an empty interest.
  void begin();
  // Sleeps until the sequence moves past what begin() saw, or `deadline` (monotonic; 0: none).
  // Returns false when the thread must stop waiting (killed).
  bool sleep(u64 deadline);
};

template <typename Check>
Result<i64> wait_readiness(Kernel& kernel, u64 deadline_ns, Check&& check) {
  Vfs* vfs = TRY(kernel_vfs(kernel));
  ReadinessWaiter waiter{kernel, *vfs};
  for (;;) {
    waiter.begin();
    u64 wake_at = deadline_ns;
    const i64 ready = TRY(check(&wake_at));
    if (ready != 0) return ready;
    if (deadline_ns == ~0ull) return 0;  // a zero timeout: poll once
    if (deadline_ns != 0 && hal::monotonic_ns() >= deadline_ns) return 0;
    if (!waiter.sleep(wake_at)) return Errno::kEINTR;
  }
}

}  // namespace tandem
