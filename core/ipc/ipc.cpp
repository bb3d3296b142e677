#include "core/ipc/ipc.h"

#include "core/kernel.h"
#include "core/lib/print.h"
#include "core/proc/signals.h"

namespace tandem {

// ---------------------------------------------------------------------------------------------
// Readiness waits
// ---------------------------------------------------------------------------------------------

void ReadinessWaiter::begin() {
  sequence = vfs.readiness_sequence();
  Kernel::current_thread()->readiness_interest = 0;
}

bool ReadinessWaiter::sleep(u64 deadline) {
  Thread* self = Kernel::current_thread();
  if (signal_pending(self)) return false;
  {
    // The sequence is checked under the queue's lock, the one notify_readiness() takes to bump
    // it: a change after begin() is either seen here or wakes us after we are queued.
    SpinLockGuard guard(vfs.readiness_queue().lock);
    if (vfs.readiness_sequence() != sequence) return true;
    kernel.prepare_to_sleep();
    vfs.readiness_queue().waiters.push_back(self);
    // A signal sent before we were queued found nothing to wake: cancel the sleep ourselves.
    if (signal_pending(self)) kernel.wake(self, kWakeKill);
  }
  if (deadline != 0) kernel.arm_timer(deadline);
  kernel.block();
  kernel.cancel_timer(self);
  {
    SpinLockGuard guard(vfs.readiness_queue().lock);
    if (self->wait_node.linked()) vfs.readiness_queue().waiters.remove(self);
  }
  return !signal_pending(self);
}

namespace {

// Tells the pollers of `file` (of its readiness_key(): a pipe's two ends share one) that its
// readiness may have changed.
void notify(File& file) {
  Vfs* vfs = file.kernel().vfs.load();
  if (vfs != nullptr) vfs->notify_readiness(readiness_bit(file.readiness_key()));
}

// An anonymous inode for fstat of pipes and event files (Linux: pipefs and anon_inodefs).
void anon_stat(KernelStat* st, u32 mode, u64 ino) {
  fill_bytes(st, 0, sizeof(*st));
  st->st_dev = 0xd;
  st->st_ino = ino;
  st->st_nlink = 1;
  st->st_mode = mode;
  st->st_blksize = 4096;
}

Atomic<u64> g_anon_ino{1000};

// A spin lock held with interrupts saved, which can be dropped and retaken around a sleep.
struct IrqLock {
  SpinLock& spin;
  hal::IrqFlags flags = 0;
  void lock() {
    flags = hal::irq_save();
    spin.acquire();
  }
  void unlock() {
    spin.release();
    hal::irq_restore(flags);
  }
};

// Sleeps on `waiters` (whose lock the caller holds, with interrupts saved) until woken; returns
// with the lock held again. ERESTARTSYS when a signal is pending (or the thread must exit), as
// Linux's pipe_read does: the signal code restarts the call or makes it EINTR.
Result<void> sleep_on(Kernel& kernel, SpinLock& lock, IntrusiveList<Thread, &Thread::wait_node>& waiters,
                      u64 deadline = 0) {
  Thread* self = Kernel::current_thread();
  if (signal_pending(self)) return Errno::kERESTARTSYS;
  kernel.prepare_to_sleep();
  waiters.push_back(self);
  // A signal sent before we were queued found nothing to wake: cancel the sleep ourselves.
  if (signal_pending(self)) kernel.wake(self, kWakeKill);
  lock.release();
  if (deadline != 0) kernel.arm_timer(deadline);
  kernel.block();
  kernel.cancel_timer(self);
  lock.acquire();
  if (self->wait_node.linked()) waiters.remove(self);
  if (signal_pending(self)) return Errno::kERESTARTSYS;
  return {};
}

void wake_all(Kernel& kernel, IntrusiveList<Thread, &Thread::wait_node>& waiters) {
  while (Thread* t = waiters.pop_front()) kernel.wake(t, kWakeNormal);
}

// ---------------------------------------------------------------------------------------------
// Pipes
// ---------------------------------------------------------------------------------------------

constexpr usize kPipePages = kPipeCapacity / hal::kPageSize;
constexpr usize kPipeBuf = 4096;  // PIPE_BUF: writes up to this size are atomic

struct Pipe {
  explicit Pipe(Kernel& k) : kernel(k) {}
  Kernel& kernel;
  SpinLock lock{LockRank::Wait};
  u64 pages[kPipePages] = {};  // physical pages, allocated as data first reaches them
  u64 head = 0;                // read position in the ring
  u64 count = 0;               // bytes buffered
  u32 readers = 0;
  u32 writers = 0;
  u64 ino = 0;
  // Readers sleep only on an empty pipe and are woken when it stops being empty; writers sleep
  // only while less than PIPE_BUF is free and are woken when that much becomes free (or when
  // the other side closes). Waking on those edges only keeps a busy pipe from waking every
  // sleeper at every read and write.
  IntrusiveList<Thread, &Thread::wait_node> readers_waiting;
  IntrusiveList<Thread, &Thread::wait_node> writers_waiting;

  u8* byte_at(u64 position) {
    const u64 p = position % kPipeCapacity;
    return static_cast<u8*>(hal::phys_to_virt(pages[p / hal::kPageSize])) + p % hal::kPageSize;
  }
  bool ensure_pages(u64 from, u64 length) {
    for (u64 at = from; at < from + length;) {
      const u64 index = (at % kPipeCapacity) / hal::kPageSize;
      if (pages[index] == 0) {
        pages[index] = hal::phys_alloc_page();
        if (pages[index] == 0) return false;
      }
      at = align_down(at, hal::kPageSize) + hal::kPageSize;
    }
    return true;
  }
};

class PipeEnd final : public File {
 public:
  PipeEnd(Kernel& kernel, Pipe* pipe, bool write_end, u32 flags)
      : File(kernel, nullptr, (flags & oflag::kNonBlock) | (write_end ? oflag::kWrOnly : oflag::kRdOnly)),
        m_pipe(pipe), m_write_end(write_end) {}

  Result<usize> read(const IoBuffer& out, usize length, u64*) override {
    if (m_write_end) return Errno::kEBADF;
    if (length == 0) return usize{0};
    Pipe& p = *m_pipe;
    IrqLock held{p.lock};
    held.lock();
    for (;;) {
      if (p.count > 0) {
        const usize n = min<u64>(length, p.count);
        usize done = 0;
        bool fault = false;
        while (done < n) {
          const u64 at = (p.head + done) % kPipeCapacity;
          const usize chunk = min<u64>(n - done, hal::kPageSize - at % hal::kPageSize);
          if (!out.put(done, p.byte_at(at), chunk)) {
            fault = true;
            break;
          }
          done += chunk;
        }
        const u64 room_before = kPipeCapacity - p.count;
        p.head = (p.head + done) % kPipeCapacity;
        p.count -= done;
        if (room_before < kPipeBuf && kPipeCapacity - p.count >= kPipeBuf) wake_all(m_kernel, p.writers_waiting);
        held.unlock();
        notify(*this);
        if (fault && done == 0) return Errno::kEFAULT;
        return done;
      }
      if (p.writers == 0) {
        held.unlock();
        return usize{0};
      }
      if (nonblocking()) {
        held.unlock();
        return Errno::kEAGAIN;
      }
      auto slept = sleep_on(m_kernel, p.lock, p.readers_waiting);
      if (slept.is_error()) {
        held.unlock();
        return slept.error();
      }
    }
  }

  Result<usize> write(const IoBuffer& in, usize length, u64*) override {
    if (!m_write_end) return Errno::kEBADF;
    if (length == 0) return usize{0};
    Pipe& p = *m_pipe;
    usize done = 0;
    IrqLock held{p.lock};
    held.lock();
    for (;;) {
      if (p.readers == 0) {
        held.unlock();
        deliver_sigpipe();
        if (done > 0) return done;
        return Errno::kEPIPE;
      }
      const u64 room = kPipeCapacity - p.count;
      const usize left = length - done;
      // A write of at most PIPE_BUF bytes goes in whole or waits; a larger one goes in parts.
      const bool can = left <= kPipeBuf ? room >= left : room > 0;
      if (can) {
        const usize n = min<u64>(left, room);
        const u64 tail = p.head + p.count;
        if (!p.ensure_pages(tail, n)) {
          held.unlock();
          if (done > 0) return done;
          return Errno::kENOMEM;
        }
        usize copied = 0;
        bool fault = false;
        while (copied < n) {
          const u64 at = (tail + copied) % kPipeCapacity;
          const usize chunk = min<u64>(n - copied, hal::kPageSize - at % hal::kPageSize);
          if (!in.get(p.byte_at(at), done + copied, chunk)) {
            fault = true;
            break;
          }
          copied += chunk;
        }
        const bool was_empty = p.count == 0;
        p.count += copied;
        done += copied;
        if (was_empty && copied > 0) wake_all(m_kernel, p.readers_waiting);
        if (fault || done == length) {
          held.unlock();
          notify(*this);
          if (fault && done == 0) return Errno::kEFAULT;
          return done;
        }
        continue;
      }
      if (nonblocking()) {
        held.unlock();
        if (done > 0) {
          notify(*this);
          return done;
        }
        return Errno::kEAGAIN;
      }
      auto slept = sleep_on(m_kernel, p.lock, p.writers_waiting);
      if (slept.is_error()) {
        held.unlock();
        if (done > 0) return done;
        return slept.error();
      }
    }
  }

  u32 poll_events() override {
    Pipe& p = *m_pipe;
    SpinLockGuard guard(p.lock);
    u32 events = 0;
    if (m_write_end) {
      if (p.readers == 0) events |= pollev::kErr;
      else if (kPipeCapacity - p.count >= kPipeBuf) events |= pollev::kOut | pollev::kWrNorm;
    } else {
      if (p.count > 0) events |= pollev::kIn | pollev::kRdNorm;
      if (p.writers == 0) events |= pollev::kHup;
    }
    return events;
  }

  Result<i64> ioctl(u64 request, u64 argument) override {
    constexpr u64 kFionread = 0x541b;
    if (request == kFionread) {
      u32 count;
      {
        SpinLockGuard guard(m_pipe->lock);
        count = static_cast<u32>(m_pipe->count);
      }
      if (!hal::copy_to_user(argument, &count, sizeof(count))) return Errno::kEFAULT;
      return 0;
    }
    return Errno::kENOTTY;
  }

  void stat(KernelStat* st) override { anon_stat(st, kIfIfo | 0600, m_pipe->ino); }
  bool seekable() const override { return false; }
  bool pollable() override { return true; }
  // Both ends follow the pipe: a write readies the read end.
  const void* readiness_key() const override { return m_pipe; }

 protected:
  void on_last_close() override {
    Pipe* p = m_pipe;
    bool last;
    {
      SpinLockGuard guard(p->lock);
      if (m_write_end) --p->writers; else --p->readers;
      last = p->readers == 0 && p->writers == 0;
      wake_all(m_kernel, p->readers_waiting);
      wake_all(m_kernel, p->writers_waiting);
    }
    notify(*this);
    if (last) {
      for (u64 page : p->pages) {
        if (page != 0) hal::phys_free_page(page);
      }
      m_kernel.heap().destroy(p);
    }
    m_kernel.heap().destroy(this);
  }

 private:
  Pipe* m_pipe;
  bool m_write_end;
};

}  // namespace

Result<void> pipe_create(Kernel& kernel, u32 flags, File** read_end, File** write_end) {
  Pipe* pipe = kernel.heap().make<Pipe>(kernel);
  if (pipe == nullptr) return Errno::kENOMEM;
  pipe->ino = g_anon_ino.fetch_add(1);
  PipeEnd* r = kernel.heap().make<PipeEnd>(kernel, pipe, false, flags);
  PipeEnd* w = kernel.heap().make<PipeEnd>(kernel, pipe, true, flags);
  if (r == nullptr || w == nullptr) {
    kernel.heap().destroy(r);
    kernel.heap().destroy(w);
    kernel.heap().destroy(pipe);
    return Errno::kENOMEM;
  }
  pipe->readers = 1;
  pipe->writers = 1;
  *read_end = r;
  *write_end = w;
  return {};
}

// ---------------------------------------------------------------------------------------------
// eventfd
// ---------------------------------------------------------------------------------------------

namespace {

constexpr u64 kEventfdMax = 0xfffffffffffffffeull;

class EventFd final : public File {
 public:
  EventFd(Kernel& kernel, u64 initial, bool semaphore, u32 flags)
      : File(kernel, nullptr, oflag::kRdWr | (flags & oflag::kNonBlock)), m_count(initial), m_semaphore(semaphore) {}

  Result<usize> read(const IoBuffer& out, usize length, u64*) override {
    if (length < 8) return Errno::kEINVAL;
    IrqLock held{m_lock};
    held.lock();
    for (;;) {
      if (m_count > 0) {
        const u64 value = m_semaphore ? 1 : m_count;
        if (!out.put(0, &value, 8)) {
          held.unlock();
          return Errno::kEFAULT;
        }
        m_count -= value;
        wake_all(m_kernel, m_waiters);
        held.unlock();
        notify(*this);
        return usize{8};
      }
      if (nonblocking()) {
        held.unlock();
        return Errno::kEAGAIN;
      }
      auto slept = sleep_on(m_kernel, m_lock, m_waiters);
      if (slept.is_error()) {
        held.unlock();
        return slept.error();
      }
    }
  }

  Result<usize> write(const IoBuffer& in, usize length, u64*) override {
    if (length < 8) return Errno::kEINVAL;
    u64 value;
    if (!in.get(&value, 0, 8)) return Errno::kEFAULT;
    if (value == ~0ull) return Errno::kEINVAL;
    IrqLock held{m_lock};
    held.lock();
    for (;;) {
      if (kEventfdMax - m_count >= value) {
        m_count += value;
        if (value > 0) wake_all(m_kernel, m_waiters);
        held.unlock();
        notify(*this);
        return usize{8};
      }
      if (nonblocking()) {
        held.unlock();
        return Errno::kEAGAIN;
      }
      auto slept = sleep_on(m_kernel, m_lock, m_waiters);
      if (slept.is_error()) {
        held.unlock();
        return slept.error();
      }
    }
  }

  u32 poll_events() override {
    SpinLockGuard guard(m_lock);
    u32 events = 0;
    if (m_count > 0) events |= pollev::kIn | pollev::kRdNorm;
    if (m_count < kEventfdMax) events |= pollev::kOut | pollev::kWrNorm;
    return events;
  }
  void stat(KernelStat* st) override { anon_stat(st, 0600, 1); }
  bool seekable() const override { return false; }
  bool pollable() override { return true; }

 protected:
  void on_last_close() override { m_kernel.heap().destroy(this); }

 private:
  SpinLock m_lock{LockRank::Wait};
  IntrusiveList<Thread, &Thread::wait_node> m_waiters;
  u64 m_count;
  bool m_semaphore;
};

// ---------------------------------------------------------------------------------------------
// timerfd: expirations are counted lazily from the clock, so no kernel timer object exists;
// a blocking read or a poller sleeps on its own thread timer until the next expiry.
// ---------------------------------------------------------------------------------------------

constexpr u64 kNsPerSecond = 1'000'000'000;
const char kTimerFdKind = 0;

class TimerFd final : public File {
 public:
  TimerFd(Kernel& kernel, i32 clock, u32 flags)
      : File(kernel, nullptr, oflag::kRdOnly | (flags & oflag::kNonBlock)), m_clock(clock) {}

  // Under m_lock: folds expirations that have happened into m_ticks.
  void update_locked(u64 now) {
    if (m_next == 0 || now < m_next) return;
    if (m_interval == 0) {
      ++m_ticks;
      m_next = 0;
      return;
    }
    const u64 n = 1 + (now - m_next) / m_interval;
    m_ticks += n;
    m_next += n * m_interval;
  }

  Result<usize> read(const IoBuffer& out, usize length, u64*) override {
    if (length < 8) return Errno::kEINVAL;
    auto ready = wait_readiness(m_kernel, nonblocking() ? ~0ull : 0, [&](u64* wake_at) -> Result<i64> {
      SpinLockGuard guard(m_lock);
      update_locked(hal::monotonic_ns());
      if (m_ticks > 0) return 1;
      if (m_next != 0 && (*wake_at == 0 || m_next < *wake_at)) *wake_at = m_next;
      return 0;
    });
    if (ready.is_error()) return ready.error();
    u64 ticks;
    {
      SpinLockGuard guard(m_lock);
      ticks = m_ticks;
      m_ticks = 0;
    }
    if (ticks == 0) return Errno::kEAGAIN;
    if (!out.put(0, &ticks, 8)) {
      SpinLockGuard guard(m_lock);
      m_ticks += ticks;
      return Errno::kEFAULT;
    }
    return usize{8};
  }

  u32 poll_events() override {
    SpinLockGuard guard(m_lock);
    update_locked(hal::monotonic_ns());
    return m_ticks > 0 ? (pollev::kIn | pollev::kRdNorm) : 0;
  }
  u64 next_event_ns() override {
    SpinLockGuard guard(m_lock);
    return m_ticks > 0 ? 0 : m_next;
  }

  Result<void> settime(u32 flags, const KernelItimerspec& value, KernelItimerspec* old) {
    constexpr u32 kAbstime = 1, kCancelOnSet = 2;
    if ((flags & ~(kAbstime | kCancelOnSet)) != 0) return Errno::kEINVAL;
    auto valid = [](i64 sec, i64 nsec) { return sec >= 0 && nsec >= 0 && nsec < static_cast<i64>(kNsPerSecond); };
    if (!valid(value.value_sec, value.value_nsec) || !valid(value.interval_sec, value.interval_nsec)) return Errno::kEINVAL;
    const u64 initial = static_cast<u64>(value.value_sec) * kNsPerSecond + static_cast<u64>(value.value_nsec);
    const u64 interval = static_cast<u64>(value.interval_sec) * kNsPerSecond + static_cast<u64>(value.interval_nsec);
    {
      SpinLockGuard guard(m_lock);
      const u64 now = hal::monotonic_ns();
      if (old != nullptr) current_locked(now, old);
      m_ticks = 0;
      m_interval = interval;
      if (initial == 0) {
        m_next = 0;  // disarm
      } else if ((flags & kAbstime) != 0) {
        // An absolute time on this timer's clock, converted to monotonic time once.
        const u64 clock_now = m_clock == 0 ? hal::realtime_ns() : now;
        m_next = initial <= clock_now ? now : now + (initial - clock_now);
        if (m_next == 0) m_next = 1;
      } else {
        m_next = now + initial;
      }
    }
    notify(*this);
    return {};
  }

  void current_locked(u64 now, KernelItimerspec* out) {
    update_locked(now);
    const u64 left = m_next == 0 ? 0 : (m_next > now ? m_next - now : 1);
    out->value_sec = static_cast<i64>(left / kNsPerSecond);
    out->value_nsec = static_cast<i64>(left % kNsPerSecond);
    out->interval_sec = static_cast<i64>(m_interval / kNsPerSecond);
    out->interval_nsec = static_cast<i64>(m_interval % kNsPerSecond);
  }
  void gettime(KernelItimerspec* out) {
    SpinLockGuard guard(m_lock);
    current_locked(hal::monotonic_ns(), out);
  }

  void stat(KernelStat* st) override { anon_stat(st, 0600, 2); }
  bool seekable() const override { return false; }
  bool pollable() override { return true; }
  const void* kind() const override { return &kTimerFdKind; }

 protected:
  void on_last_close() override { m_kernel.heap().destroy(this); }

 private:
  SpinLock m_lock{LockRank::Wait};
  i32 m_clock;
  u64 m_next = 0;  // monotonic ns of the next expiry; 0: disarmed
  u64 m_interval = 0;
  u64 m_ticks = 0;
};

// ---------------------------------------------------------------------------------------------
// epoll
// ---------------------------------------------------------------------------------------------

namespace epoll_flag {
constexpr u32 kEt = 1u << 31, kOneshot = 1u << 30, kExclusive = 1u << 28;
}

struct EpollItem {
  ListNode node;
  File* file;  // not retained: a closing file drops its items (epoll_forget_file)
  i32 fd;
  u32 events;
  u64 data;
  u32 last_ready = 0;  // for EPOLLET: what was ready at the last scan
  bool disabled = false;  // EPOLLONESHOT fired; EPOLL_CTL_MOD re-arms
};

class EpollFile final : public File {
 public:
  EpollFile(Kernel& kernel, Vfs& vfs) : File(kernel, nullptr, oflag::kRdWr), m_vfs(vfs) {}

  Result<void> control(i32 op, i32 fd, File* target, const EpollEvent& event) {
    constexpr i32 kAdd = 1, kDel = 2, kMod = 3;
    if (target == this) return Errno::kEINVAL;
    if (!target->pollable()) return Errno::kEPERM;
    if (op == kMod && (event.events & epoll_flag::kExclusive)) return Errno::kEINVAL;
    EpollItem* fresh = nullptr;
    if (op == kAdd) {
      fresh = m_kernel.heap().make<EpollItem>();
      if (fresh == nullptr) return Errno::kENOMEM;
    }
    EpollItem* dropped = nullptr;
    {
      SpinLockGuard guard(m_vfs.epoll_lock());
      EpollItem* item = find_locked(target, fd);
      switch (op) {
        case kAdd:
          if (item != nullptr) break;
          fresh->file = target;
          fresh->fd = fd;
          fresh->events = event.events;
          fresh->data = event.data;
          m_items.push_back(fresh);
          ++target->epoll_watches;
          fresh = nullptr;
          break;
        case kDel:
          if (item == nullptr) break;
          m_items.remove(item);
          --target->epoll_watches;
          dropped = item;
          break;
        case kMod:
          if (item == nullptr) break;
          item->events = event.events;
          item->data = event.data;
          item->disabled = false;
          item->last_ready = 0;
          break;
        default:
          guard.unlock();
          m_kernel.heap().destroy(fresh);
          return Errno::kEINVAL;
      }
      if (op == kAdd && fresh != nullptr) {
        guard.unlock();
        m_kernel.heap().destroy(fresh);
        return Errno::kEEXIST;
      }
      if (op != kAdd && item == nullptr) return Errno::kENOENT;
    }
    m_kernel.heap().destroy(dropped);
    // Only this set's waiters (epoll_wait on it, and whoever polls it) can see the change.
    notify(*this);
    return {};
  }

  // One scan: fills up to `max` events into `out` (kernel memory); returns how many.
  u32 scan(EpollEvent* out, u32 max, u64* wake_at) {
    SpinLockGuard guard(m_vfs.epoll_lock());
    u32 n = 0;
    // Level-triggered items reported by this scan go to the back after it, so that many ready
    // files share small buffers; moved during the walk, they would be met (and reported) again.
    IntrusiveList<EpollItem, &EpollItem::node> reported;
    m_items.for_each([&](EpollItem* item) {
      if (n >= max || item->disabled) return;
      const u32 ready = item->file->poll_for_wait() & (item->events | pollev::kErr | pollev::kHup);
      const u32 previous = item->last_ready;
      item->last_ready = ready;
      if (wake_at != nullptr) {
        const u64 t = item->file->next_event_ns();
        if (t != 0 && (*wake_at == 0 || t < *wake_at)) *wake_at = t;
      }
      if (ready == 0) return;
      // Edge-triggered: only readiness that was not there at the last scan is reported (Linux
      // also reports each new arrival of data; tandem reports the rising edge).
      if ((item->events & epoll_flag::kEt) && (ready & ~previous) == 0) return;
      out[n].events = ready;
      out[n].data = item->data;
      ++n;
      if (item->events & epoll_flag::kOneshot) item->disabled = true;
      if (!(item->events & epoll_flag::kEt)) {
        m_items.remove(item);
        reported.push_back(item);
      }
    });
    while (EpollItem* item = reported.pop_front()) m_items.push_back(item);
    return n;
  }

  u32 poll_events() override {
    SpinLockGuard guard(m_vfs.epoll_lock());
    bool any = false;
    m_items.for_each([&](EpollItem* item) {
      if (!any && !item->disabled && (item->file->poll_for_wait() & (item->events | pollev::kErr | pollev::kHup)) != 0)
        any = true;
    });
    return any ? (pollev::kIn | pollev::kRdNorm) : 0;
  }

  // Under the epoll lock: drops every item naming `file` (the heap ranks above the lock).
  void forget_locked(File& file) {
    m_items.for_each([&](EpollItem* item) {
      if (item->file != &file) return;
      m_items.remove(item);
      --file.epoll_watches;
      m_kernel.heap().destroy(item);
    });
  }

  // For Kernel::dump_state: racy reads of a machine that is stuck (no lock is taken).
  void dump_unlocked() {
    u32 count = 0;
    m_items.for_each([&](EpollItem*) { ++count; });
    klog("state: epoll set %p, %u items (fd events disabled last-ready)", static_cast<void*>(this), count);
    m_items.for_each([&](EpollItem* item) {
      klog("state:   fd %d %x %s %x", item->fd, item->events, item->disabled ? "disabled" : "armed", item->last_ready);
    });
  }

  void stat(KernelStat* st) override { anon_stat(st, 0600, 3); }
  bool seekable() const override { return false; }
  bool is_epoll() const override { return true; }
  // Epoll sets inside epoll sets are not supported: their scan would nest the epoll lock.
  bool pollable() override { return false; }

  EpollFile* next_epoll = nullptr;  // Vfs::epoll_list, guarded by the epoll lock

 protected:
  void on_last_close() override {
    {
      SpinLockGuard guard(m_vfs.epoll_lock());
      File** link = &m_vfs.epoll_list;
      while (*link != this) link = reinterpret_cast<File**>(&static_cast<EpollFile*>(*link)->next_epoll);
      *link = next_epoll;
      while (EpollItem* item = m_items.pop_front()) {
        --item->file->epoll_watches;
        m_kernel.heap().destroy(item);
      }
    }
    m_kernel.heap().destroy(this);
  }

 private:
  EpollItem* find_locked(File* file, i32 fd) {
    EpollItem* found = nullptr;
    m_items.for_each([&](EpollItem* item) {
      if (item->file == file && item->fd == fd) found = item;
    });
    return found;
  }

  Vfs& m_vfs;
  IntrusiveList<EpollItem, &EpollItem::node> m_items;  // guarded by the epoll lock
};

}  // namespace

Result<File*> eventfd_create(Kernel& kernel, u32 initial, u32 flags) {
  constexpr u32 kSemaphore = 1;
  if ((flags & ~(kSemaphore | oflag::kCloExec | oflag::kNonBlock)) != 0) return Errno::kEINVAL;
  EventFd* file = kernel.heap().make<EventFd>(kernel, initial, (flags & kSemaphore) != 0, flags);
  if (file == nullptr) return Errno::kENOMEM;
  return static_cast<File*>(file);
}

Result<File*> timerfd_create(Kernel& kernel, i32 clock, u32 flags) {
  constexpr i32 kRealtime = 0, kMonotonic = 1, kBoottime = 7;
  if ((flags & ~(oflag::kCloExec | oflag::kNonBlock)) != 0) return Errno::kEINVAL;
  if (clock != kRealtime && clock != kMonotonic && clock != kBoottime) return Errno::kEINVAL;
  TimerFd* file = kernel.heap().make<TimerFd>(kernel, clock == kRealtime ? 0 : 1, flags);
  if (file == nullptr) return Errno::kENOMEM;
  return static_cast<File*>(file);
}

namespace {
// The timerfd behind a file, or null (its kind tag stands in for RTTI).
TimerFd* as_timerfd(File& file) { return file.kind() == &kTimerFdKind ? static_cast<TimerFd*>(&file) : nullptr; }
}  // namespace

Result<void> timerfd_settime(File& file, u32 flags, const KernelItimerspec& value, KernelItimerspec* old) {
  TimerFd* timer = as_timerfd(file);
  if (timer == nullptr) return Errno::kEINVAL;
  return timer->settime(flags, value, old);
}

Result<void> timerfd_gettime(File& file, KernelItimerspec* out) {
  TimerFd* timer = as_timerfd(file);
  if (timer == nullptr) return Errno::kEINVAL;
  timer->gettime(out);
  return {};
}

Result<File*> epoll_create(Kernel& kernel) {
  Vfs* vfs = TRY(kernel_vfs(kernel));
  EpollFile* file = kernel.heap().make<EpollFile>(kernel, *vfs);
  if (file == nullptr) return Errno::kENOMEM;
  SpinLockGuard guard(vfs->epoll_lock());
  file->next_epoll = static_cast<EpollFile*>(vfs->epoll_list);
  vfs->epoll_list = file;
  return static_cast<File*>(file);
}

Result<void> epoll_control(File& epoll, i32 op, i32 fd, File* target, const EpollEvent& event) {
  if (!epoll.is_epoll()) return Errno::kEINVAL;
  return static_cast<EpollFile&>(epoll).control(op, fd, target, event);
}

Result<i64> epoll_wait_events(File& epoll, u64 out, u32 max, u64 deadline_ns) {
  if (!epoll.is_epoll()) return Errno::kEINVAL;
  auto& ep = static_cast<EpollFile&>(epoll);
  // Events are gathered in a kernel page, then copied out: the scan holds the epoll lock.
  constexpr u32 kBatch = hal::kPageSize / sizeof(EpollEvent);
  auto* events = static_cast<EpollEvent*>(epoll.kernel().heap().allocate(hal::kPageSize));
  if (events == nullptr) return Errno::kENOMEM;
  const u32 want = min(max, kBatch);
  auto got = wait_readiness(epoll.kernel(), deadline_ns, [&](u64* wake_at) -> Result<i64> {
    // epoll_ctl on this set wakes us too (its notify is keyed by the set).
    ep.note_interest();
    return static_cast<i64>(ep.scan(events, want, wake_at));
  });
  const bool fault = got.ok() && got.value() > 0 &&
                     !hal::copy_to_user(out, events, static_cast<usize>(got.value()) * sizeof(EpollEvent));
  epoll.kernel().heap().free(events, hal::kPageSize);
  if (got.is_error()) return got.error();
  if (fault) return Errno::kEFAULT;
  return got.value();
}

void epoll_dump_state(Kernel& kernel) {
  Vfs* vfs = kernel.vfs.load();
  if (vfs == nullptr) return;
  for (File* e = vfs->epoll_list; e != nullptr; e = static_cast<EpollFile*>(e)->next_epoll) {
    static_cast<EpollFile*>(e)->dump_unlocked();
  }
}

void epoll_forget_file(File& file) {
  Vfs* vfs = file.kernel().vfs.load();
  if (vfs == nullptr) return;
  SpinLockGuard guard(vfs->epoll_lock());
  if (file.epoll_watches == 0) return;
  for (File* e = vfs->epoll_list; e != nullptr; e = static_cast<EpollFile*>(e)->next_epoll) {
    static_cast<EpollFile*>(e)->forget_locked(file);
  }
}

}  // namespace tandem
