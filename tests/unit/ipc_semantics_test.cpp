// eventfd(2), timerfd_create(2), poll(2), select(2), epoll(7) and blocking pipes, table-driven
// against Linux's documented behaviour, run by user programs on the simulated kernel.
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
constexpr uint64_t kRead = 0, kWrite = 1, kOpen = 2, kClose = 3, kPoll = 7, kSelect = 23, kPipe2 = 293,
                   kEventfd2 = 290, kTimerfdCreate = 283, kTimerfdSettime = 286, kTimerfdGettime = 287,
                   kEpollCreate1 = 291, kEpollCreate = 213, kEpollCtl = 233, kEpollWait = 232, kPpoll = 271;
}
constexpr uint64_t kONonblock = 04000, kOCreat = 0100, kORdwr = 2;
constexpr uint64_t kEpollIn = 1, kEpollOut = 4, kEpollHup = 0x10, kEpollEt = 1u << 31, kEpollOneshot = 1u << 30;
constexpr uint64_t kAdd = 1, kDel = 2, kMod = 3;

constexpr uint64_t kBuf = kDataBase + 0x3000;
constexpr uint64_t kSpec = kDataBase + 0x4000;   // itimerspec / timespec
constexpr uint64_t kEvents = kDataBase + 0x5000;  // epoll_event array, pollfd array, fd_sets
constexpr uint64_t kFds = kDataBase + 0x6000;
constexpr uint64_t kStr = kDataBase + 0x6100;
constexpr uint64_t kShared = kDataBase + 0x7000;  // words shared with the helper thread
constexpr uint64_t kSlots = kDataBase + 0x10000;
constexpr uint64_t kUnmapped = 0x50000000;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

uint64_t now_ns(User& u) {
  u.syscall(nr::kClockGettime, 1, kSpec + 512);
  return u.load64(kSpec + 512) * 1'000'000'000ull + u.load64(kSpec + 520);
}

void set_itimer(User& u, uint64_t interval_ns, uint64_t value_ns) {
  u.store64(kSpec, interval_ns / 1'000'000'000);
  u.store64(kSpec + 8, interval_ns % 1'000'000'000);
  u.store64(kSpec + 16, value_ns / 1'000'000'000);
  u.store64(kSpec + 24, value_ns % 1'000'000'000);
}

void epoll_event_at(User& u, uint64_t address, uint32_t events, uint64_t data) {
  // struct epoll_event is packed: 4 bytes of events, 8 of data.
  u.store32(address, events);
  u.store32(address + 4, static_cast<uint32_t>(data));
  u.store32(address + 8, static_cast<uint32_t>(data >> 32));
}

void ipc_table(User& u) {
  // eventfd.
  const int64_t efd = u.syscall(sys::kEventfd2, 3, kONonblock);
  check(u, "eventfd2", efd, 3);
  check(u, "eventfd2 with a bad flag", u.syscall(sys::kEventfd2, 0, 8), -EINVAL);
  check(u, "read with a short buffer", u.syscall(sys::kRead, 3, kBuf, 4), -EINVAL);
  check(u, "read the count", u.syscall(sys::kRead, 3, kBuf, 8), 8);
  check(u, "the count", static_cast<int64_t>(u.load64(kBuf)), 3);
  check(u, "read a zero count", u.syscall(sys::kRead, 3, kBuf, 8), -EAGAIN);
  u.store64(kBuf, ~0ull);
  check(u, "write 2^64-1", u.syscall(sys::kWrite, 3, kBuf, 8), -EINVAL);
  u.store64(kBuf, 0xfffffffffffffffeull);
  check(u, "write the maximum", u.syscall(sys::kWrite, 3, kBuf, 8), 8);
  u.store64(kBuf, 1);
  check(u, "write past the maximum", u.syscall(sys::kWrite, 3, kBuf, 8), -EAGAIN);
  check(u, "close", u.syscall(sys::kClose, 3), 0);
  check(u, "semaphore eventfd", u.syscall(sys::kEventfd2, 2, 1 | kONonblock), 3);
  check(u, "semaphore read", u.syscall(sys::kRead, 3, kBuf, 8), 8);
  check(u, "reads 1", static_cast<int64_t>(u.load64(kBuf)), 1);
  check(u, "close", u.syscall(sys::kClose, 3), 0);

  // timerfd.
  check(u, "timerfd on an unknown clock", u.syscall(sys::kTimerfdCreate, 99, 0), -EINVAL);
  check(u, "timerfd_create", u.syscall(sys::kTimerfdCreate, 1, 0), 3);
  check(u, "read a disarmed non-blocking timer", u.syscall(sys::kTimerfdCreate, 1, kONonblock), 4);
  check(u, "read it", u.syscall(sys::kRead, 4, kBuf, 8), -EAGAIN);
  set_itimer(u, 0, 1'000'000'000);
  u.store64(kSpec + 8, 1'000'000'000);  // interval tv_nsec out of range
  check(u, "settime with tv_nsec = 1e9", u.syscall(sys::kTimerfdSettime, 3, 0, kSpec, 0), -EINVAL);
  set_itimer(u, 2'000'000, 3'000'000);
  check(u, "settime 3 ms, then every 2 ms", u.syscall(sys::kTimerfdSettime, 3, 0, kSpec, 0), 0);
  check(u, "settime on a non-timer fd", u.syscall(sys::kTimerfdSettime, 1, 0, kSpec, 0), -EINVAL);
  check(u, "gettime", u.syscall(sys::kTimerfdGettime, 3, kSpec + 64), 0);
  check(u, "interval read back", static_cast<int64_t>(u.load64(kSpec + 64 + 8)), 2'000'000);
  const uint64_t t0 = now_ns(u);
  check(u, "a blocking read waits for the first expiry", u.syscall(sys::kRead, 3, kBuf, 8), 8);
  if (now_ns(u) - t0 < 2'500'000) u.fail("timerfd read returned before 3 ms");
  if (u.load64(kBuf) < 1) u.fail("timerfd read returned 0 expirations");
  set_itimer(u, 0, 0);
  check(u, "disarm", u.syscall(sys::kTimerfdSettime, 3, 0, kSpec, 0), 0);
  check(u, "close", u.syscall(sys::kClose, 4), 0);

  // poll.
  check(u, "pipe2", u.syscall(sys::kPipe2, kFds, 0), 0);
  const uint32_t r = u.load32(kFds), w = u.load32(kFds + 4);  // 4 and 5
  u.store32(kEvents, r);
  u.store32(kEvents + 4, 1);  // POLLIN
  u.store32(kEvents + 8, w);
  u.store32(kEvents + 12, 4);  // POLLOUT
  u.store32(kEvents + 16, 77);  // not open
  u.store32(kEvents + 20, 1);
  u.store32(kEvents + 24, static_cast<uint32_t>(-1));  // ignored
  u.store32(kEvents + 28, 1);
  check(u, "poll: writable pipe and a bad fd", u.syscall(sys::kPoll, kEvents, 4, 0), 2);
  check(u, "revents of the empty read end", u.load32(kEvents + 4) >> 16, 0);
  check(u, "revents of the write end", u.load32(kEvents + 12) >> 16, 4);
  check(u, "revents of a bad fd (POLLNVAL)", u.load32(kEvents + 20) >> 16, 0x20);
  check(u, "poll on too many fds", u.syscall(sys::kPoll, kEvents, 5000, 0), -EINVAL);
  check(u, "poll on unmapped memory", u.syscall(sys::kPoll, kUnmapped, 1, 0), -EFAULT);
  const uint64_t t1 = now_ns(u);
  check(u, "poll times out after 5 ms", u.syscall(sys::kPoll, kEvents, 1, 5), 0);
  if (now_ns(u) - t1 < 5'000'000) u.fail("poll returned before its timeout");
  check(u, "poll on a timerfd that expires", u.syscall(sys::kTimerfdCreate, 1, 0), 6);
  set_itimer(u, 0, 2'000'000);
  u.syscall(sys::kTimerfdSettime, 6, 0, kSpec, 0);
  u.store32(kEvents + 32, 6);
  u.store32(kEvents + 36, 1);
  check(u, "poll wakes for the timer", u.syscall(sys::kPoll, kEvents + 32, 1, -1), 1);
  check(u, "close the timer", u.syscall(sys::kClose, 6), 0);

  // select.
  u.store64(kEvents, 1ull << r);
  u.store64(kEvents + 8, 1ull << w);
  u.store64(kSpec, 0);
  u.store64(kSpec + 8, 0);
  check(u, "select: the write end is writable", u.syscall(sys::kSelect, w + 1, kEvents, kEvents + 8, 0, kSpec), 1);
  check(u, "read set cleared", static_cast<int64_t>(u.load64(kEvents)), 0);
  check(u, "write set kept", static_cast<int64_t>(u.load64(kEvents + 8)), static_cast<int64_t>(1ull << w));
  u.store64(kEvents, 1ull << 40);
  check(u, "select on a closed fd", u.syscall(sys::kSelect, 41, kEvents, 0, 0, kSpec), -EBADF);
  check(u, "select with nfds < 0", u.syscall(sys::kSelect, static_cast<uint64_t>(-1), 0, 0, 0, kSpec), -EINVAL);

  // epoll.
  check(u, "epoll_create(0)", u.syscall(sys::kEpollCreate, 0), -EINVAL);
  check(u, "epoll_create1 with a bad flag", u.syscall(sys::kEpollCreate1, 1), -EINVAL);
  const int64_t ep = u.syscall(sys::kEpollCreate1, 02000000);
  check(u, "epoll_create1(EPOLL_CLOEXEC)", ep, 6);
  epoll_event_at(u, kBuf, kEpollIn, 0x1234567890ull);
  check(u, "add the read end", u.syscall(sys::kEpollCtl, 6, kAdd, r, kBuf), 0);
  check(u, "add it twice", u.syscall(sys::kEpollCtl, 6, kAdd, r, kBuf), -EEXIST);
  check(u, "add the epoll to itself", u.syscall(sys::kEpollCtl, 6, kAdd, 6, kBuf), -EINVAL);
  check(u, "modify a missing fd", u.syscall(sys::kEpollCtl, 6, kMod, w, kBuf), -ENOENT);
  check(u, "an epoll op on a pipe", u.syscall(sys::kEpollCtl, r, kAdd, w, kBuf), -EINVAL);
  check(u, "a bad op", u.syscall(sys::kEpollCtl, 6, 9, w, kBuf), -EINVAL);
  u.store64(kStr, 0x6c756e2f7665642full);  // "/dev/nul"
  u.store64(kStr + 8, 0x6c);              // "l"
  check(u, "open /dev/null", u.syscall(sys::kOpen, kStr, kORdwr, 0), 7);
  check(u, "epoll refuses /dev/null", u.syscall(sys::kEpollCtl, 6, kAdd, 7, kBuf), -EPERM);
  check(u, "close /dev/null", u.syscall(sys::kClose, 7), 0);
  // A terminal without input: epoll takes it, it is not readable, a non-blocking read is EAGAIN.
  u.store64(kStr, 0x6e6f632f7665642full);  // "/dev/con"
  u.store64(kStr + 8, 0x656c6f73);          // "sole"
  check(u, "open /dev/console non-blocking", u.syscall(sys::kOpen, kStr, kORdwr | kONonblock, 0), 7);
  epoll_event_at(u, kBuf, kEpollIn, 5);
  check(u, "epoll takes the console", u.syscall(sys::kEpollCtl, 6, kAdd, 7, kBuf), 0);
  check(u, "no input: the console is not ready", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 0);
  check(u, "a non-blocking read without input", u.syscall(sys::kRead, 7, kBuf + 64, 16), -EAGAIN);
  check(u, "remove the console", u.syscall(sys::kEpollCtl, 6, kDel, 7, kBuf), 0);
  check(u, "close the console", u.syscall(sys::kClose, 7), 0);
  check(u, "epoll_wait with maxevents 0", u.syscall(sys::kEpollWait, 6, kEvents, 0, 0), -EINVAL);
  check(u, "nothing ready", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 0);
  check(u, "a kernel buffer with nothing ready", u.syscall(sys::kEpollWait, 6, 0xffff800000001000ull, 8, 0), -EFAULT);
  u.store64(kBuf + 32, 0x41);
  check(u, "write a byte", u.syscall(sys::kWrite, w, kBuf + 32, 1), 1);
  check(u, "the read end is ready", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 1);
  check(u, "its events", u.load32(kEvents), kEpollIn);
  check(u, "its data", static_cast<int64_t>(u.load32(kEvents + 4) | (static_cast<uint64_t>(u.load32(kEvents + 8)) << 32)),
        0x1234567890ll);
  check(u, "level-triggered: still ready", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 1);
  epoll_event_at(u, kBuf, kEpollIn | kEpollOneshot, 7);
  check(u, "switch to one-shot", u.syscall(sys::kEpollCtl, 6, kMod, r, kBuf), 0);
  check(u, "one-shot fires once", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 1);
  check(u, "then stays quiet", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 0);
  epoll_event_at(u, kBuf, kEpollIn | kEpollEt, 8);
  check(u, "re-arm edge-triggered", u.syscall(sys::kEpollCtl, 6, kMod, r, kBuf), 0);
  check(u, "the edge is reported", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 1);
  check(u, "once", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 0);
  epoll_event_at(u, kBuf, kEpollOut, 9);
  check(u, "add the write end", u.syscall(sys::kEpollCtl, 6, kAdd, w, kBuf), 0);
  check(u, "the write end is writable", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 1);
  epoll_event_at(u, kBuf, kEpollIn, 11);
  check(u, "the read end level-triggered", u.syscall(sys::kEpollCtl, 6, kMod, r, kBuf), 0);
  // Level-triggered items move to the back of the set once reported: never twice in one call.
  check(u, "two ready files, each reported once", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 2);
  check(u, "and again", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 2);
  check(u, "delete it", u.syscall(sys::kEpollCtl, 6, kDel, w, 0), 0);
  check(u, "delete it again", u.syscall(sys::kEpollCtl, 6, kDel, w, 0), -ENOENT);
  check(u, "close the write end", u.syscall(sys::kClose, w), 0);
  epoll_event_at(u, kBuf, kEpollIn, 10);
  check(u, "level-triggered again", u.syscall(sys::kEpollCtl, 6, kMod, r, kBuf), 0);
  check(u, "hang-up with data left", u.syscall(sys::kEpollWait, 6, kEvents, 8, 0), 1);
  check(u, "IN and HUP", u.load32(kEvents), kEpollIn | kEpollHup);
  const uint64_t t2 = now_ns(u);
  check(u, "close the read end (drops its registration)", u.syscall(sys::kClose, r), 0);
  check(u, "an empty set times out", u.syscall(sys::kEpollWait, 6, kEvents, 8, 3), 0);
  if (now_ns(u) - t2 < 3'000'000) u.fail("epoll_wait returned before its timeout");
  check(u, "close the epoll", u.syscall(sys::kClose, 6), 0);
  check(u, "close the timer", u.syscall(sys::kClose, 3), 0);
  exit_group(u, 0);
}

// Two threads: a reader blocks in read, epoll_wait and poll while the main thread writes later.
void blocked_reader(User& u) {
  const uint32_t r = u.load32(kFds);
  const uint32_t ep = u.load32(kShared + 8);
  u.store32(kShared, 1);
  // 1. A blocking read, woken by the write.
  const int64_t n = u.syscall(sys::kRead, r, kBuf + 512, 16);
  u.store64(kShared + 16, static_cast<uint64_t>(n));
  u.store32(kShared, 2);
  // 2. epoll_wait with no timeout, woken by the second write.
  const int64_t e = u.syscall(sys::kEpollWait, ep, kEvents + 512, 4, static_cast<uint64_t>(-1));
  u.store64(kShared + 24, static_cast<uint64_t>(e));
  u.syscall(sys::kRead, r, kBuf + 512, 16);
  u.store32(kShared, 3);
  // 3. A read that sees EOF when the writer closes.
  const int64_t eof = u.syscall(sys::kRead, r, kBuf + 512, 16);
  u.store64(kShared + 32, static_cast<uint64_t>(eof));
  u.store32(kShared, 4);
}
const uint64_t kBlockedReader = register_entry("test.ipc.reader", blocked_reader);

void sleep_ms(User& u, uint64_t ms) {
  u.store64(kSpec + 256, 0);
  u.store64(kSpec + 264, ms * 1'000'000);
  u.syscall(nr::kNanosleep, kSpec + 256, 0);
}

void blocking_table(User& u) {
  check(u, "pipe2", u.syscall(sys::kPipe2, kFds, 0), 0);
  const uint32_t r = u.load32(kFds), w = u.load32(kFds + 4);
  const int64_t ep = u.syscall(sys::kEpollCreate1, 0);
  u.store32(kShared + 8, static_cast<uint32_t>(ep));
  epoll_event_at(u, kBuf, kEpollIn, 1);
  check(u, "epoll add", u.syscall(sys::kEpollCtl, static_cast<uint64_t>(ep), kAdd, r, kBuf), 0);
  u.store32(kShared, 0);
  spawn(u, kBlockedReader, 0, slot_at(kSlots, 0));
  while (u.load32(kShared) != 1) yield(u);
  sleep_ms(u, 3);
  check(u, "the reader is still blocked", u.load32(kShared), 1);
  u.store64(kBuf, 0x6f6c6c6568ull);  // "hello"
  check(u, "write 5", u.syscall(sys::kWrite, w, kBuf, 5), 5);
  while (u.load32(kShared) != 2) yield(u);
  check(u, "the blocked read got the bytes", static_cast<int64_t>(u.load64(kShared + 16)), 5);
  sleep_ms(u, 3);
  check(u, "epoll_wait is still blocked", u.load32(kShared), 2);
  check(u, "write 1", u.syscall(sys::kWrite, w, kBuf, 1), 1);
  while (u.load32(kShared) != 3) yield(u);
  check(u, "epoll_wait woke with one event", static_cast<int64_t>(u.load64(kShared + 24)), 1);
  sleep_ms(u, 2);
  check(u, "close the write end", u.syscall(sys::kClose, w), 0);
  while (u.load32(kShared) != 4) yield(u);
  check(u, "the blocked read saw EOF", static_cast<int64_t>(u.load64(kShared + 32)), 0);
  join(u, slot_at(kSlots, 0));
  exit_group(u, 0);
}

// EPOLLONESHOT re-armed from another thread, as beam.smp's schedulers do while its poll thread
// sleeps: the data is already there, so only epoll_ctl(MOD) can end the wait, in epoll_wait on
// the set and in poll on the set's descriptor.
void rearm_waiter(User& u) {
  const uint32_t ep = u.load32(kShared + 8);
  u.store32(kShared, 1);
  const int64_t e = u.syscall(sys::kEpollWait, ep, kEvents + 512, 4, static_cast<uint64_t>(-1));
  u.store64(kShared + 16, static_cast<uint64_t>(e));
  u.store32(kShared, 2);
  u.store32(kEvents + 1024, ep);  // struct pollfd {fd, events = POLLIN, revents}
  u.store32(kEvents + 1028, 1);
  const int64_t p = u.syscall(sys::kPoll, kEvents + 1024, 1, static_cast<uint64_t>(-1));
  u.store64(kShared + 24, static_cast<uint64_t>(p));
  u.store32(kShared, 3);
}
const uint64_t kRearmWaiter = register_entry("test.ipc.rearm-waiter", rearm_waiter);

void rearm_table(User& u) {
  check(u, "pipe2", u.syscall(sys::kPipe2, kFds, 0), 0);
  const uint32_t r = u.load32(kFds), w = u.load32(kFds + 4);
  const int64_t ep = u.syscall(sys::kEpollCreate1, 0);
  u.store32(kShared + 8, static_cast<uint32_t>(ep));
  epoll_event_at(u, kBuf, kEpollIn | kEpollOneshot, 7);
  check(u, "epoll add one-shot", u.syscall(sys::kEpollCtl, static_cast<uint64_t>(ep), kAdd, r, kBuf), 0);
  u.store64(kBuf + 64, 0x6f6c6c6568ull);
  check(u, "write 5", u.syscall(sys::kWrite, w, kBuf + 64, 5), 5);
  check(u, "the first report", u.syscall(sys::kEpollWait, static_cast<uint64_t>(ep), kEvents, 4, 0), 1);
  check(u, "disabled after it", u.syscall(sys::kEpollWait, static_cast<uint64_t>(ep), kEvents, 4, 0), 0);
  u.store32(kShared, 0);
  spawn(u, kRearmWaiter, 0, slot_at(kSlots, 0));
  while (u.load32(kShared) != 1) yield(u);
  sleep_ms(u, 3);
  check(u, "epoll_wait sleeps on a disabled item", u.load32(kShared), 1);
  check(u, "re-arm", u.syscall(sys::kEpollCtl, static_cast<uint64_t>(ep), kMod, r, kBuf), 0);
  while (u.load32(kShared) != 2) yield(u);
  check(u, "epoll_wait woke with the re-armed item", static_cast<int64_t>(u.load64(kShared + 16)), 1);
  sleep_ms(u, 3);
  check(u, "poll on the set sleeps while its item is disabled", u.load32(kShared), 2);
  check(u, "re-arm again", u.syscall(sys::kEpollCtl, static_cast<uint64_t>(ep), kMod, r, kBuf), 0);
  while (u.load32(kShared) != 3) yield(u);
  check(u, "poll on the set woke", static_cast<int64_t>(u.load64(kShared + 24)), 1);
  join(u, slot_at(kSlots, 0));
  exit_group(u, 0);
}

// Signals interrupt blocked pipe reads and polls (signal(7)): a read without SA_RESTART
// returns EINTR, with SA_RESTART it is restarted and returns the data written later; poll
// returns EINTR after a handler whatever SA_RESTART says.
// words at kShared: 0 reader phase, 4 handler runs, 8 results (3 x 8 bytes from +16), 48 reader tid
constexpr uint64_t kSigusr1 = 10, kSaSiginfo = 4, kSaRestorer = 0x04000000, kSaRestart = 0x10000000;
constexpr uint64_t kRtSigaction = 13, kTgkill = 234;

void counting_handler(User& h) { h.fetch_add32(kShared + 4, 1); }
const uint64_t kCountingHandler = register_entry("test.ipc.handler", counting_handler);
const uint64_t kIpcRestorer = register_entry("test.ipc.restorer", [](User& u) { u.fail("the restorer ran as a thread"); });

void signalled_reader(User& u) {
  const uint32_t r = u.load32(kFds);
  u.store64(kShared + 48, static_cast<uint64_t>(u.syscall(nr::kGettid)));
  u.store32(kShared, 1);
  u.store64(kShared + 16, static_cast<uint64_t>(u.syscall(sys::kRead, r, kBuf + 512, 8)));
  u.store32(kShared, 2);
  u.store64(kShared + 24, static_cast<uint64_t>(u.syscall(sys::kRead, r, kBuf + 512, 8)));
  u.store32(kShared, 3);
  u.store32(kEvents + 512, r);
  u.store32(kEvents + 516, 1);  // POLLIN
  u.store64(kShared + 32, static_cast<uint64_t>(u.syscall(sys::kPoll, kEvents + 512, 1, static_cast<uint64_t>(-1))));
  u.store32(kShared, 4);
}
const uint64_t kSignalledReader = register_entry("test.ipc.signalled", signalled_reader);

void set_handler(User& u, bool restart) {
  const uint64_t act = kSpec + 128;
  u.store64(act, kCountingHandler);
  u.store64(act + 8, kSaSiginfo | kSaRestorer | (restart ? kSaRestart : 0));
  u.store64(act + 16, kIpcRestorer);
  u.store64(act + 24, 0);
  if (u.syscall(kRtSigaction, kSigusr1, act, 0, 8) != 0) u.fail("rt_sigaction failed");
}

void signal_table(User& u) {
  check(u, "pipe2", u.syscall(sys::kPipe2, kFds, 0), 0);
  const uint32_t w = u.load32(kFds + 4);
  const uint64_t pid = static_cast<uint64_t>(u.syscall(nr::kGetpid));
  set_handler(u, false);
  u.store32(kShared, 0);
  u.store32(kShared + 4, 0);
  spawn(u, kSignalledReader, 0, slot_at(kSlots, 0));
  while (u.load32(kShared) != 1) yield(u);
  const uint64_t tid = u.load64(kShared + 48);
  sleep_ms(u, 3);
  check(u, "tgkill the blocked reader", u.syscall(kTgkill, pid, tid, kSigusr1), 0);
  while (u.load32(kShared) != 2) yield(u);
  check(u, "a read interrupted without SA_RESTART", static_cast<int64_t>(u.load64(kShared + 16)), -EINTR);
  set_handler(u, true);
  sleep_ms(u, 3);
  check(u, "tgkill it again", u.syscall(kTgkill, pid, tid, kSigusr1), 0);
  while (u.load32(kShared + 4) != 2) yield(u);
  sleep_ms(u, 3);
  check(u, "the restarted read is still blocked", u.load32(kShared), 2);
  u.store64(kBuf, 0x636261);  // "abc"
  check(u, "write 3", u.syscall(sys::kWrite, w, kBuf, 3), 3);
  while (u.load32(kShared) != 3) yield(u);
  check(u, "the restarted read got the bytes", static_cast<int64_t>(u.load64(kShared + 24)), 3);
  sleep_ms(u, 3);
  check(u, "tgkill the poller", u.syscall(kTgkill, pid, tid, kSigusr1), 0);
  while (u.load32(kShared) != 4) yield(u);
  check(u, "poll after a handler (SA_RESTART or not)", static_cast<int64_t>(u.load64(kShared + 32)), -EINTR);
  check(u, "three handler runs", u.load32(kShared + 4), 3);
  join(u, slot_at(kSlots, 0));
  exit_group(u, 0);
}

// fork shares open files: a pipe between parent and child ends in EOF once both writers are
// gone, an offset moves for both (fork(2): "the child inherits copies of the parent's set of
// open file descriptors ... refer to the same open file descriptions"), close-on-exec bits are
// inherited.
constexpr uint64_t kFork = 57, kWait4 = 61, kLseek = 8, kFcntl = 72;

void fork_child(User& u) {
  if (u.start().rax != 0) u.fail("fork child: fork returned %llu", static_cast<unsigned long long>(u.start().rax));
  const uint32_t r = u.load32(kFds), w = u.load32(kFds + 4), f = u.load32(kFds + 8);
  if (u.syscall(kFcntl, w, 1) != 1) u.fail("fork child: the close-on-exec bit was not inherited");
  if (u.syscall(sys::kClose, r) != 0) u.fail("fork child: close of the read end failed");
  u.store64(kBuf + 1024, 0x6867666564636261ull);  // "abcdefgh"
  for (int i = 0; i < 100; ++i) {
    if (u.syscall(sys::kWrite, w, kBuf + 1024, 8) != 8) u.fail("fork child: write %d failed", i);
  }
  if (u.syscall(sys::kWrite, f, kBuf + 1024, 2) != 2) u.fail("fork child: file write failed");
  exit_group(u, 7);
}
const uint64_t kForkChild = register_entry("test.ipc.fork-child", fork_child);

void fork_table(User& u) {
  check(u, "pipe2 O_CLOEXEC", u.syscall(sys::kPipe2, kFds, 02000000), 0);
  const uint32_t r = u.load32(kFds), w = u.load32(kFds + 4);
  u.store64(kStr, 0x662f706d742f);  // "/tmp/f"
  const int64_t f = u.syscall(sys::kOpen, kStr, kOCreat | kORdwr, 0600);
  check(u, "open /tmp/f", f, 5);
  u.store32(kFds + 8, static_cast<uint32_t>(f));
  const int64_t pid = u.syscall_at(kForkChild, kFork);
  if (pid <= 1) u.fail("fork returned %lld", static_cast<long long>(pid));
  check(u, "the parent closes its write end", u.syscall(sys::kClose, w), 0);
  int64_t total = 0;
  for (;;) {
    const int64_t n = u.syscall(sys::kRead, r, kBuf, 300);
    if (n < 0) u.fail("read failed with %lld", static_cast<long long>(n));
    if (n == 0) break;
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t byte = static_cast<uint8_t>(u.load32(kBuf + (i & ~3ll)) >> (8 * (i & 3)));
      if (byte != static_cast<uint8_t>('a' + (total + i) % 8)) u.fail("byte %lld is wrong", static_cast<long long>(total + i));
    }
    total += n;
  }
  check(u, "every byte the child wrote, then EOF", total, 800);
  check(u, "wait4", u.syscall(kWait4, static_cast<uint64_t>(pid), kBuf + 2048, 0, 0), pid);
  check(u, "the child's status", u.load32(kBuf + 2048), 7u << 8);
  check(u, "the child's write moved the shared offset", u.syscall(kLseek, 5, 0, 1), 2);
  check(u, "close", u.syscall(sys::kClose, r), 0);
  check(u, "close", u.syscall(sys::kClose, 5), 0);
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-ipc-table", "eventfd, timerfd, poll, select and epoll semantics, one thread",
                       register_entry("test.ipc.table", ipc_table), any});
    register_scenario({"test-ipc-signals", "signals interrupt blocked pipe reads (EINTR, SA_RESTART) and poll",
                       register_entry("test.ipc.signals", signal_table), any});
    register_scenario({"test-ipc-fork", "a pipe and a file shared across fork",
                       register_entry("test.ipc.fork", fork_table), any});
    register_scenario({"test-ipc-blocking", "blocking pipe reads and epoll_wait woken across CPUs",
                       register_entry("test.ipc.blocking", blocking_table), any});
    register_scenario({"test-ipc-rearm", "EPOLLONESHOT re-armed by another thread wakes epoll_wait and poll on the set",
                       register_entry("test.ipc.rearm", rearm_table), any});
  }
} const kRegistrar;

RunResult run(const char* scenario, uint32_t cpus, uint64_t seed, StrategyKind kind) {
  RunSpec spec;
  spec.scenario = scenario;
  spec.cpus = cpus;
  spec.seed = seed;
  spec.strategy.kind = kind;
  spec.max_steps = 50'000'000;
  return run_one(spec);
}

TEST(IpcSemantics, SingleThreadTableMatchesLinux) {
  for (uint64_t seed : {1u, 2u}) {
    const RunResult r = run("test-ipc-table", 2, seed, StrategyKind::Random);
    EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
  }
}

TEST(IpcSemantics, BlockedReadersWakeAcrossCpus) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-ipc-blocking", 1 + static_cast<uint32_t>(seed % 4), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

TEST(IpcSemantics, OneshotRearmWakesWaitersOfTheSet) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-ipc-rearm", 1 + static_cast<uint32_t>(seed % 4), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

TEST(IpcSemantics, PipesAndOffsetsAreSharedAcrossFork) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-ipc-fork", 1 + static_cast<uint32_t>(seed % 3), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

TEST(IpcSemantics, SignalsInterruptBlockedReadsAndPolls) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct}) {
      const RunResult r = run("test-ipc-signals", 1 + static_cast<uint32_t>(seed % 3), seed, k);
      EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
    }
  }
}

}  // namespace
}  // namespace sim
