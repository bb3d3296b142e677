#include "core/ipc/ipc.h"

#include "core/kernel.h"
#include "core/proc/signals.h"

namespace tandem {

// ---------------------------------------------------------------------------------------------
// Readiness waits
// ---------------------------------------------------------------------------------------------

bool ReadinessWaiter::sleep(u64 deadline) {
  Thread* self = Kernel::current_thread();
  if (self->kill_pending.load()) return false;
  {
    // The sequence is checked under the queue's lock, the one notify_readiness() takes to bump
    // it: a change after begin() is either seen here or wakes us after we are queued.
    SpinLockGuard guard(vfs.readiness_queue().lock);
    if (vfs.readiness_sequence() != sequence) return true;
    kernel.prepare_to_sleep();
    vfs.readiness_queue().waiters.push_back(self);
  }
  if (deadline != 0) kernel.arm_timer(deadline);
  kernel.block();
  kernel.cancel_timer(self);
  {
    SpinLockGuard guard(vfs.readiness_queue().lock);
    if (self->wait_node.linked()) vfs.readiness_queue().waiters.remove(self);
  }
  return !self->kill_pending.load();
}

namespace {

void notify(Kernel& kernel) {
  Vfs* vfs = kernel.vfs.load();
  if (vfs != nullptr) vfs->notify_readiness();
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

// Sleeps on `queue` (whose lock the caller holds through `guard`) until woken; returns with the
// lock held again. EINTR when the thread is asked to exit.
Result<void> sleep_on(Kernel& kernel, SpinLock& lock, IntrusiveList<Thread, &Thread::wait_node>& waiters,
                      u64 deadline = 0) {
  Thread* self = Kernel::current_thread();
  if (self->kill_pending.load()) return Errno::kEINTR;
  kernel.prepare_to_sleep();
  waiters.push_back(self);
  lock.release();
  if (deadline != 0) kernel.arm_timer(deadline);
  kernel.block();
  kernel.cancel_timer(self);
  lock.acquire();
  if (self->wait_node.linked()) waiters.remove(self);
  if (self->kill_pending.load()) return Errno::kEINTR;
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
  IntrusiveList<Thread, &Thread::wait_node> waiters;  // readers and writers, woken together

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
        p.head = (p.head + done) % kPipeCapacity;
        p.count -= done;
        wake_all(m_kernel, p.waiters);
        held.unlock();
        notify(m_kernel);
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
      auto slept = sleep_on(m_kernel, p.lock, p.waiters);
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
        // TODO(signals): deliver_sigpipe() (core/proc/signals.h) once signal delivery lands.
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
        p.count += copied;
        done += copied;
        if (copied > 0) wake_all(m_kernel, p.waiters);
        if (fault || done == length) {
          held.unlock();
          notify(m_kernel);
          if (fault && done == 0) return Errno::kEFAULT;
          return done;
        }
        continue;
      }
      if (nonblocking()) {
        held.unlock();
        if (done > 0) {
          notify(m_kernel);
          return done;
        }
        return Errno::kEAGAIN;
      }
      auto slept = sleep_on(m_kernel, p.lock, p.waiters);
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

 protected:
  void on_last_close() override {
    Pipe* p = m_pipe;
    bool last;
    {
      SpinLockGuard guard(p->lock);
      if (m_write_end) --p->writers; else --p->readers;
      last = p->readers == 0 && p->writers == 0;
      wake_all(m_kernel, p->waiters);
    }
    notify(m_kernel);
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

void epoll_forget_file(File&) {}

}  // namespace tandem
