// Clocks and sleeping: clock_gettime, clock_getres, gettimeofday, nanosleep, clock_nanosleep.
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

namespace {

constexpr i32 kClockRealtime = 0, kClockMonotonic = 1, kClockProcessCputime = 2,
              kClockThreadCputime = 3, kClockMonotonicRaw = 4, kClockRealtimeCoarse = 5,
              kClockMonotonicCoarse = 6, kClockBoottime = 7, kClockTai = 11;
constexpr u64 kTimerAbstime = 1;
constexpr i64 kNsPerSecond = 1'000'000'000;

KernelTimespec to_timespec(u64 ns) {
  return KernelTimespec{static_cast<i64>(ns / kNsPerSecond), static_cast<i64>(ns % kNsPerSecond)};
}

Result<u64> timespec_to_ns(const KernelTimespec& ts) {
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= kNsPerSecond) return Errno::kEINVAL;
  // Saturate far-future times instead of overflowing.
  if (static_cast<u64>(ts.tv_sec) > (~0ull - static_cast<u64>(ts.tv_nsec)) / kNsPerSecond / 2) return ~0ull >> 1;
  return static_cast<u64>(ts.tv_sec) * kNsPerSecond + static_cast<u64>(ts.tv_nsec);
}

u64 process_cpu_ns(Thread* self) {
  Process* process = self->process;
  u64 total = 0;
  SpinLockGuard guard(process->lock);
  process->threads.for_each([&](Thread* t) { total += t->runtime_ns; });
  return total + (hal::monotonic_ns() - self->switched_in_at);
}

Result<u64> clock_now(i32 clock) {
  switch (clock) {
    case kClockRealtime:
    case kClockRealtimeCoarse:
    case kClockTai:
      return hal::realtime_ns();
    case kClockMonotonic:
    case kClockMonotonicRaw:
    case kClockMonotonicCoarse:
    case kClockBoottime:
      return hal::monotonic_ns();
    case kClockProcessCputime:
      return process_cpu_ns(Kernel::current_thread());
    case kClockThreadCputime: {
      Thread* self = Kernel::current_thread();
      return self->runtime_ns + (hal::monotonic_ns() - self->switched_in_at);
    }
    default:
      return Errno::kEINVAL;
  }
}

// Sleeps until `deadline` on the monotonic clock; EINTR when the thread is being killed.
Result<void> sleep_until_monotonic(Kernel& kernel, u64 deadline) {
  kernel.sleep_until(deadline);
  if (hal::monotonic_ns() < deadline) return Errno::kEINTR;
  return {};
}

}  // namespace

Result<i64> sys_clock_gettime(SyscallArgs& args) {
  const u64 now = TRY(clock_now(static_cast<i32>(args.arg[0])));
  TRY(copy_to_user(UserPtr<KernelTimespec>(args.arg[1]), to_timespec(now)));
  return 0;
}

Result<i64> sys_clock_getres(SyscallArgs& args) {
  TRY(clock_now(static_cast<i32>(args.arg[0])));
  const UserPtr<KernelTimespec> out(args.arg[1]);
  if (!out.is_null()) TRY(copy_to_user(out, KernelTimespec{0, 1}));
  return 0;
}

Result<i64> sys_gettimeofday(SyscallArgs& args) {
  const UserPtr<KernelTimeval> tv(args.arg[0]);
  if (!tv.is_null()) {
    const u64 now = hal::realtime_ns();
    TRY(copy_to_user(tv, KernelTimeval{static_cast<i64>(now / kNsPerSecond),
                                       static_cast<i64>(now % kNsPerSecond / 1000)}));
  }
  const UserPtr<u64> tz(args.arg[1]);  // struct timezone: two ints, always zero here
  if (!tz.is_null()) TRY(copy_to_user(tz, u64{0}));
  return 0;
}

Result<i64> sys_nanosleep(SyscallArgs& args) {
  const KernelTimespec request = TRY(copy_from_user(UserPtr<KernelTimespec>(args.arg[0])));
  const u64 duration = TRY(timespec_to_ns(request));
  const u64 start = hal::monotonic_ns();
  auto slept = sleep_until_monotonic(args.kernel, start + duration);
  if (slept.is_error()) {
    const UserPtr<KernelTimespec> remain(args.arg[1]);
    const u64 elapsed = hal::monotonic_ns() - start;
    if (!remain.is_null()) TRY(copy_to_user(remain, to_timespec(duration > elapsed ? duration - elapsed : 0)));
    return slept.error();
  }
  return 0;
}

Result<i64> sys_clock_nanosleep(SyscallArgs& args) {
  const i32 clock = static_cast<i32>(args.arg[0]);
  const u64 flags = args.arg[1];
  switch (clock) {
    case kClockRealtime:
    case kClockMonotonic:
    case kClockBoottime:
    case kClockTai:
      break;
    // Linux refuses both CPU-time clocks with EOPNOTSUPP (measured on Linux 6.1; the
    // EINVAL that clock_nanosleep(3) documents for the thread clock comes from the C library).
    case kClockThreadCputime:
    case kClockProcessCputime:
      return Errno::kEOPNOTSUPP;
    default:
      return Errno::kEINVAL;
  }
  const KernelTimespec request = TRY(copy_from_user(UserPtr<KernelTimespec>(args.arg[2])));
  const u64 value = TRY(timespec_to_ns(request));
  const u64 start = hal::monotonic_ns();
  u64 deadline;
  if (flags & kTimerAbstime) {
    const u64 now = TRY(clock_now(clock));
    deadline = value <= now ? start : start + (value - now);
  } else {
    deadline = start + value;
  }
  auto slept = sleep_until_monotonic(args.kernel, deadline);
  if (slept.is_error()) {
    // The remaining time is reported only for relative sleeps.
    const UserPtr<KernelTimespec> remain(args.arg[3]);
    if (!(flags & kTimerAbstime) && !remain.is_null()) {
      const u64 now = hal::monotonic_ns();
      TRY(copy_to_user(remain, to_timespec(deadline > now ? deadline - now : 0)));
    }
    return slept.error();
  }
  return 0;
}

}  // namespace tandem
