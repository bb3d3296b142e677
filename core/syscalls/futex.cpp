// futex(2): decodes the operation and its arguments and calls FutexTable.
#include "core/futex/futex.h"

#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

Result<i64> sys_futex(SyscallArgs& args) {
  using namespace futex_op;
  const u64 uaddr = args.arg[0];
  const u32 op = static_cast<u32>(args.arg[1]);
  const u32 val = static_cast<u32>(args.arg[2]);
  const u64 timeout_or_val2 = args.arg[3];
  const u64 uaddr2 = args.arg[4];
  const u32 val3 = static_cast<u32>(args.arg[5]);
  const u32 command = op & kCommandMask;
  const bool shared = (op & kPrivateFlag) == 0;
  const bool realtime = (op & kClockRealtime) != 0;
  FutexTable& futexes = args.kernel.futexes();

  // As Linux's do_futex: FUTEX_CLOCK_REALTIME is only for the bitset and requeue-PI waits.
  if (realtime && command != kWaitBitset && command != kWaitRequeuePi && command != kLockPi2) return Errno::kENOSYS;

  switch (command) {
    case kWait:
    case kWaitBitset: {
      Deadline deadline;
      if (timeout_or_val2 != 0) {
        const KernelTimespec ts = TRY(copy_from_user(UserPtr<KernelTimespec>(timeout_or_val2)));
        if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1'000'000'000) return Errno::kEINVAL;
        const u64 ns = static_cast<u64>(ts.tv_sec) > (1ull << 62) / 1'000'000'000
                           ? (1ull << 62)
                           : static_cast<u64>(ts.tv_sec) * 1'000'000'000 + static_cast<u64>(ts.tv_nsec);
        deadline.infinite = false;
        if (command == kWait) {
          // FUTEX_WAIT takes a relative timeout, measured on the monotonic clock.
          deadline.ns = hal::monotonic_ns() + ns;
        } else {
          deadline.ns = ns;
          deadline.realtime = realtime;
        }
      }
      const u32 bitset = command == kWait ? kBitsetMatchAny : val3;
      return futexes.wait(uaddr, shared, val, bitset, deadline);
    }
    case kWake:
      return futexes.wake(uaddr, shared, static_cast<i32>(val), kBitsetMatchAny);
    case kWakeBitset:
      return futexes.wake(uaddr, shared, static_cast<i32>(val), val3);
    case kRequeue:
      return futexes.requeue(uaddr, shared, static_cast<i32>(val), static_cast<i32>(timeout_or_val2), uaddr2, nullptr);
    case kCmpRequeue:
      return futexes.requeue(uaddr, shared, static_cast<i32>(val), static_cast<i32>(timeout_or_val2), uaddr2, &val3);
    case kWakeOp:
      return futexes.wake_op(uaddr, shared, static_cast<i32>(val), uaddr2, static_cast<i32>(timeout_or_val2), val3);
    case kLockPi:
    case kUnlockPi:
    case kTrylockPi:
    case kWaitRequeuePi:
    case kCmpRequeuePi:
    case kLockPi2:
    case kFd:
    default:
      return Errno::kENOSYS;
  }
}

}  // namespace tandem
