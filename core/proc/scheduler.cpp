// The scheduler: per-CPU FIFO run queues, work stealing when a CPU runs dry, a 100 Hz tick
// while a CPU is busy (tickless when idle), and IPIs to wake halted CPUs.
//
// Why blocking cannot lose a wake-up: a thread first marks itself Sleeping, then queues
// itself where a waker will find it, then calls block(). A waker that comes before block()
// finds it Sleeping and only flips it back to Running, so block() returns at once. A waker
// that comes after finds it Blocked; it then waits until the thread's CPU has finished
// switching away from it (on_cpu false) before putting it on a run queue, so no two CPUs
// ever run on one kernel stack.
#include "core/kernel.h"
#include "core/lib/print.h"
#include "core/net/stack.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

const char* thread_state_name(ThreadState state) {
  switch (state) {
    case ThreadState::Free: return "free";
    case ThreadState::Embryo: return "embryo";
    case ThreadState::Ready: return "ready";
    case ThreadState::Running: return "running";
    case ThreadState::Sleeping: return "sleeping";
    case ThreadState::Blocked: return "blocked";
    case ThreadState::Exited: return "exited";
  }
  return "?";
}

void Kernel::make_runnable(Thread* thread) {
  hal::IrqFlags flags = hal::irq_save();
  thread->lock.acquire();
  VERIFY(thread->state == ThreadState::Embryo);
  thread->state = ThreadState::Ready;
  thread->lock.release();
  // A new thread prefers an idle CPU, starting after the creator's.
  thread->cpu = (this_cpu().id + 1) % m_config.cpu_count;
  enqueue(thread, this_cpu(), true);
  hal::irq_restore(flags);
}

void Kernel::enqueue(Thread* thread, Cpu& preferred, bool may_ipi, bool wake_affine) {
  // Prefer the thread's last CPU when it is idle, then any idle CPU, then `preferred`; only
  // CPUs of its affinity (then the first of them when `preferred` is not one).
  //
  // Wake-affine: a wake from an interrupt on an idle CPU with nothing queued (a card's receive
  // interrupt waking the thread that waits for the data) runs the thread right there, instead of
  // waking a second halted CPU by IPI. Under emulation that second CPU is a host thread the
  // host must schedule, and the woken thread then takes the stack lock the interrupted CPU just
  // held: on a busy 2-core host each such request cost milliseconds.
  const u64 allowed = thread->affinity.load(MemoryOrder::Relaxed);
  auto may_run = [allowed](const Cpu& c) { return ((allowed >> c.id) & 1) != 0; };
  Cpu* target = may_run(preferred) ? &preferred : nullptr;
  Cpu& last = cpu(thread->cpu);
  Cpu& waker = this_cpu();
  if (wake_affine && may_run(waker) && waker.current != nullptr && waker.current->is_idle &&
      waker.run_length.load() == 0) {
    target = &waker;
  } else if (may_run(last) && last.idle.load()) {
    target = &last;
  } else {
    for (u32 i = 1; i < m_config.cpu_count; ++i) {
      Cpu& candidate = cpu((thread->cpu + i) % m_config.cpu_count);
      if (!may_run(candidate)) continue;
      if (candidate.idle.load()) {
        target = &candidate;
        break;
      }
      if (target == nullptr) target = &candidate;
    }
  }
  if (target == nullptr) target = &last;  // the affinity names only its last CPU
  {
    target->run_lock.acquire();
    target->run_queue.push_back(thread);
    target->run_length.store(static_cast<u32>(target->run_queue.size()));
    target->run_lock.release();
  }
  Cpu& self = this_cpu();
  // Paired with the idle loop: it sets `idle`, then reads `run_length`; we wrote run_length,
  // then read `idle`. With both sequentially consistent, one of us sees the other.
  if (may_ipi && target != &self && target->idle.load()) {
    ++self.stats.ipis_sent;
    send_reschedule_ipi(target->id);
  } else if (target == &self && self.current != nullptr && self.current->is_idle) {
    self.need_resched = true;
  }
}

void Kernel::report_cpu_stats() {
  if (m_config.cpu_report == KernelConfig::CpuReport::None) return;
  // Other CPUs' counters are read without their locks: a report, not an invariant. The running
  // slices are counted up to now.
  const u64 now = hal::monotonic_ns();
  u64 busy = 0, idle = 0, switches = 0, ipis = 0;
  const bool table = m_config.cpu_report == KernelConfig::CpuReport::Table;
  if (table) klog("stats: cpu   busy ms   idle ms  switches  ipis sent  ipis recv  timer irqs  syscalls  faults");
  for (u32 i = 0; i < m_config.cpu_count; ++i) {
    Cpu& c = cpu(i);
    if (!c.online) continue;
    u64 cpu_busy = c.stats.busy_ns, cpu_idle = c.stats.idle_ns;
    const Thread* running = c.current;
    if (running != nullptr && now > running->switched_in_at) {
      (running->is_idle ? cpu_idle : cpu_busy) += now - running->switched_in_at;
    }
    busy += cpu_busy;
    idle += cpu_idle;
    switches += c.stats.context_switches;
    ipis += c.stats.ipis_sent;
    if (table) {
      klog("stats: %3u %9lu %9lu %9lu %10lu %10lu %11lu %9lu %7lu", i, static_cast<unsigned long>(cpu_busy / 1'000'000),
           static_cast<unsigned long>(cpu_idle / 1'000'000), static_cast<unsigned long>(c.stats.context_switches),
           static_cast<unsigned long>(c.stats.ipis_sent), static_cast<unsigned long>(c.stats.ipis_received),
           static_cast<unsigned long>(c.stats.timer_interrupts), static_cast<unsigned long>(c.stats.syscalls),
           static_cast<unsigned long>(c.stats.page_faults));
    }
  }
  klog("stats: %u CPUs busy %lu ms, idle %lu ms, %lu context switches, %lu IPIs", m_config.cpu_count,
       static_cast<unsigned long>(busy / 1'000'000), static_cast<unsigned long>(idle / 1'000'000),
       static_cast<unsigned long>(switches), static_cast<unsigned long>(ipis));
  if (!table) return;
  const hal::ShootdownStats shootdowns = hal::tlb_shootdown_stats();
  klog("stats: TLB shootdowns: %lu requests, %lu IPIs, %lu ms waited for acknowledgements (longest %lu us)",
       static_cast<unsigned long>(shootdowns.requests), static_cast<unsigned long>(shootdowns.ipis),
       static_cast<unsigned long>(shootdowns.wait_ns / 1'000'000), static_cast<unsigned long>(shootdowns.longest_wait_ns / 1000));
  // Lock contention by rank, over all CPUs: which locks made CPUs spin, and how much.
  for (u32 slot = 0; slot < CpuLockState::kRankSlots; ++slot) {
    u64 waits = 0, spins = 0;
    for (u32 i = 0; i < m_config.cpu_count; ++i) {
      if (!cpu(i).online) continue;
      waits += cpu(i).locks.contended[slot];
      spins += cpu(i).locks.spins[slot];
    }
    if (waits == 0) continue;
    klog("stats: lock %s: %lu contended acquisitions, %lu spins", lock_rank_name(static_cast<LockRank>(slot)),
         static_cast<unsigned long>(waits), static_cast<unsigned long>(spins));
  }
}

void Kernel::prepare_to_sleep() {
  Thread* self = current_thread();
  hal::IrqFlags flags = hal::irq_save();
  self->lock.acquire();
  VERIFY(self->state == ThreadState::Running);
  self->state = ThreadState::Sleeping;
  self->wake_reason.store(kWakeNormal, MemoryOrder::Relaxed);
  self->lock.release();
  hal::irq_restore(flags);
}

void Kernel::block() {
  Thread* self = current_thread();
  hal::IrqFlags flags = hal::irq_save();
  self->lock.acquire();
  if (self->state != ThreadState::Sleeping) {
    // Woken between prepare_to_sleep() and here.
    VERIFY(self->state == ThreadState::Running);
    self->lock.release();
    hal::irq_restore(flags);
    return;
  }
  self->state = ThreadState::Blocked;
  self->lock.release();
  if (m_config.trace_syscalls && self->process != nullptr && self->signals.syscall_nr >= 0) {
    // strace prints a call when it returns; a call that blocks is shown as it blocks too, so a
    // hang shows who waits in what.
    const char* name = syscall_name(static_cast<u64>(self->signals.syscall_nr));
    klog("strace: %u/%u %s blocks", self->process->pid, self->tid, name != nullptr ? name : "?");
  }
  switch_away(self, false);
  hal::irq_restore(flags);
}

bool Kernel::wake(Thread* thread, WakeReason reason) {
  hal::IrqFlags flags = hal::irq_save();
  thread->lock.acquire();
  switch (thread->state) {
    case ThreadState::Sleeping:
      thread->state = ThreadState::Running;
      thread->wake_reason.store(reason, MemoryOrder::Relaxed);
      thread->lock.release();
      hal::irq_restore(flags);
      return true;
    case ThreadState::Blocked:
      thread->state = ThreadState::Ready;
      thread->wake_reason.store(reason, MemoryOrder::Relaxed);
      thread->lock.release();
      // The thread's old CPU may still be switching away from it.
      while (thread->on_cpu.load(MemoryOrder::Acquire)) hal::cpu_relax();
      enqueue(thread, this_cpu(), true, /*wake_affine=*/true);
      hal::irq_restore(flags);
      return true;
    default:
      thread->lock.release();
      hal::irq_restore(flags);
      return false;
  }
}

void Kernel::yield() {
  Thread* self = current_thread();
  hal::IrqFlags flags = hal::irq_save();
  this_cpu().need_resched = false;
  if (self->is_idle) {
    switch_away(self, false);
  } else {
    self->lock.acquire();
    VERIFY(self->state == ThreadState::Running);
    self->state = ThreadState::Ready;
    self->lock.release();
    switch_away(self, true);
  }
  hal::irq_restore(flags);
}

Thread* Kernel::pick_next(Cpu& self) {
  // The first queued thread that may run here (a thread is stolen only within its affinity).
  auto pop_from = [&self](Cpu& c, u32 keep) -> Thread* {
    if (c.run_length.load(MemoryOrder::Relaxed) <= keep) return nullptr;
    c.run_lock.acquire();
    Thread* t = c.run_queue.front();
    if (&c != &self) {
      // Neither a thread pinned elsewhere nor one still on its CPU (queued by a switch away from
      // it that is not complete): the first is not ours to take; waiting for the second while
      // that CPU may wait for one of ours could deadlock.
      while (t != nullptr && (((t->affinity.load(MemoryOrder::Relaxed) >> self.id) & 1) == 0 ||
                              t->on_cpu.load(MemoryOrder::Acquire)))
        t = c.run_queue.next(t);
    }
    if (t != nullptr) c.run_queue.remove(t);
    c.run_length.store(static_cast<u32>(c.run_queue.size()), MemoryOrder::Relaxed);
    c.run_lock.release();
    return t;
  };
  Thread* next = pop_from(self, 0);
  for (u32 i = 1; next == nullptr && i < m_config.cpu_count; ++i) {
    Cpu& victim = cpu((self.id + i) % m_config.cpu_count);
    next = pop_from(victim, steal_keep(victim));
  }
  if (next == nullptr) return self.idle_thread;
  // A thread that yielded on another CPU is queued before that CPU finished switching away.
  // (Our own yielding thread may come straight back: it is on this CPU, so no wait.)
  while (next != self.current && next->on_cpu.load(MemoryOrder::Acquire)) hal::cpu_relax();
  return next;
}

void Kernel::switch_away(Thread* prev, bool requeue, bool prev_exited) {
  VERIFY(!hal::irq_enabled());
  Cpu& self = this_cpu();
  VERIFY(self.current == prev);
  // Kernel locks are never held across a switch: the lock bookkeeping is per CPU.
  VERIFY(self.locks.depth == 0);
  // sched_setaffinity took this CPU away: the thread moves to one it may run on, but only once
  // the switch away from it is complete (finish_switch). Queued elsewhere now, another CPU could
  // pick it while it is still on this one and wait for it, while this CPU waits for a thread
  // that CPU is leaving: each waiting for the other.
  const bool migrates = requeue && ((prev->affinity.load(MemoryOrder::Relaxed) >> self.id) & 1) == 0;
  if (requeue && !migrates) {
    self.run_lock.acquire();
    self.run_queue.push_back(prev);
    self.run_length.store(static_cast<u32>(self.run_queue.size()), MemoryOrder::Relaxed);
    self.run_lock.release();
  }
  Thread* next = pick_next(self);
  if (next == prev) {
    if (!prev->is_idle) {
      prev->lock.acquire();
      prev->state = ThreadState::Running;
      prev->lock.release();
    }
    return;
  }
  if (!next->is_idle) {
    next->lock.acquire();
    VERIFY(next->state == ThreadState::Ready);
    next->state = ThreadState::Running;
    next->lock.release();
  }
  const u64 now = hal::monotonic_ns();
  prev->runtime_ns += now - prev->switched_in_at;
  if (prev->is_idle) self.stats.idle_ns += now - prev->switched_in_at; else self.stats.busy_ns += now - prev->switched_in_at;
  next->switched_in_at = now;
  next->cpu = self.id;
  next->on_cpu.store(true, MemoryOrder::Relaxed);
  self.switched_from = prev;
  self.switched_from_exited = prev_exited;
  self.switched_from_migrates = migrates;
  self.current = next;
  self.idle.store(next->is_idle);
  self.slice_started = now;
  ++self.stats.context_switches;
  // A kernel thread or the idle thread runs with no user mappings: keeping the last process's
  // table loaded ("lazy TLB") would let that table be freed while this CPU still walks it.
  hal::PageTable* table = next->process != nullptr && next->process->address_space != nullptr
                              ? next->process->address_space->page_table()
                              : nullptr;
  if (table != self.active_table.peek()) {
    self.active_table.store(table, MemoryOrder::Release);
    hal::pt_activate(table);
  }
  hal::sched_point(hal::Point::Switch);
  hal::context_switch(prev->context, next->context);
  finish_switch();
}

void Kernel::finish_switch() {
  // Runs in the thread that was just switched to, on the CPU that switched to it (which may not
  // be the CPU it last ran on).
  Cpu& self = this_cpu();
  Thread* prev = self.switched_from;
  const bool prev_exited = self.switched_from_exited;
  const bool prev_migrates = self.switched_from_migrates;
  self.switched_from = nullptr;
  self.switched_from_exited = false;
  self.switched_from_migrates = false;
  if (prev != nullptr) {
    prev->on_cpu.store(false, MemoryOrder::Release);
    if (prev_exited) reap(prev);
    else if (prev_migrates) enqueue(prev, self, true);
  }
  reprogram_timer(self);
}

void Kernel::thread_trampoline(void* arg) {
  auto* thread = static_cast<Thread*>(arg);
  thread->kernel->finish_switch();
  hal::irq_enable();
  thread->entry(thread->entry_arg);
  thread->kernel->exit_current_thread(0);
}

[[noreturn]] void Kernel::exit_current_thread(i32 code) {
  Thread* self = current_thread();
  VERIFY(!self->is_idle);
  cancel_timer(self);
  {
    SpinLockGuard guard(self->exit_queue.lock);
    self->exited = true;
    self->exit_code = code;
    while (Thread* joiner = self->exit_queue.waiters.pop_front()) wake(joiner, kWakeNormal);
  }
  hal::irq_disable();
  self->lock.acquire();
  self->state = ThreadState::Exited;
  self->lock.release();
  switch_away(self, false, true);
  VERIFY_NOT_REACHED();
}

void Kernel::join(Thread* thread) {
  for (;;) {
    {
      SpinLockGuard guard(thread->exit_queue.lock);
      if (thread->exited) return;
      prepare_to_sleep();
      thread->exit_queue.waiters.push_back(current_thread());
    }
    block();
    SpinLockGuard guard(thread->exit_queue.lock);
    Thread* self = current_thread();
    if (self->wait_node.linked()) thread->exit_queue.waiters.remove(self);
  }
}

void Kernel::reap(Thread* thread) {
  hal::context_destroy(thread->context);
  thread->context = nullptr;
  release(thread);
}

void Kernel::release(Thread* thread) {
  if (thread->refs.fetch_sub(1) == 1) free_thread_slot(thread);
}

// ---------------------------------------------------------------------------------------------
// Timers and the tick
// ---------------------------------------------------------------------------------------------

void Kernel::arm_timer(u64 deadline_ns) {
  Thread* self = current_thread();
  hal::IrqFlags flags = hal::irq_save();
  Cpu& c = this_cpu();
  c.timer_lock.acquire();
  VERIFY(self->timer_cpu.peek() < 0);
  self->timer_deadline = deadline_ns;
  Thread* position = c.timers.front();
  while (position != nullptr && position->timer_deadline <= deadline_ns) position = c.timers.next(position);
  if (position == nullptr) c.timers.push_back(self); else c.timers.insert_before(position, self);
  self->timer_cpu.store(static_cast<i32>(c.id));
  c.timer_lock.release();
  reprogram_timer(c);
  hal::irq_restore(flags);
}

void Kernel::cancel_timer(Thread* thread) {
  for (;;) {
    const i32 owner = thread->timer_cpu.load();
    if (owner < 0) return;
    Cpu& c = cpu(static_cast<u32>(owner));
    SpinLockGuard guard(c.timer_lock);
    if (thread->timer_cpu.load() == owner) {
      c.timers.remove(thread);
      thread->timer_cpu.store(-1);
      return;
    }
  }
}

void Kernel::reprogram_timer(Cpu& c) {
  hal::IrqFlags flags = hal::irq_save();
  u64 deadline = 0;
  c.timer_lock.acquire();
  if (Thread* first = c.timers.front()) deadline = first->timer_deadline;
  c.timer_lock.release();
  const bool busy = c.current != nullptr && !c.current->is_idle;
  if (busy || !m_config.tickless_idle) {
    if (c.next_tick == 0) c.next_tick = hal::monotonic_ns() + kTickNs;
    if (deadline == 0 || c.next_tick < deadline) deadline = c.next_tick;
  } else {
    c.next_tick = 0;
  }
  // CPU 0 runs lwIP's timers (core/net/stack.h) while it has any.
  if (c.id == 0) {
    const u64 net = net_stack_deadline(*this);
    if (net != 0 && (deadline == 0 || net < deadline)) deadline = net;
  }
  hal::timer_set_deadline(deadline);
  hal::irq_restore(flags);
}

void Kernel::on_timer(Cpu& c) {
  ++c.stats.timer_interrupts;
  const u64 now = hal::monotonic_ns();
  if (c.id == 0) net_stack_on_timer(*this);
  {
    // Expired sleepers are woken under the timer lock, so a thread cannot cancel its timer,
    // exit and be reused while we still look at it.
    SpinLockGuard guard(c.timer_lock);
    while (Thread* first = c.timers.front()) {
      if (first->timer_deadline > now) break;
      c.timers.remove(first);
      first->timer_cpu.store(-1);
      wake(first, kWakeTimeout);
    }
  }
  if (c.next_tick != 0 && now >= c.next_tick) {
    c.next_tick = now + kTickNs;
    if (c.run_length.load(MemoryOrder::Relaxed) > 0 && c.current != nullptr && !c.current->is_idle)
      c.need_resched = true;
  }
  reprogram_timer(c);
}

void Kernel::sleep_until(u64 deadline_ns) {
  Thread* self = current_thread();
  while (hal::monotonic_ns() < deadline_ns && !signal_pending(self)) {
    prepare_to_sleep();
    arm_timer(deadline_ns);
    // A signal sent before prepare_to_sleep() woke nothing: do not sleep through it.
    if (signal_pending(self)) wake(self, kWakeKill);
    block();
    cancel_timer(self);
  }
}

// ---------------------------------------------------------------------------------------------
// The idle loop
// ---------------------------------------------------------------------------------------------

[[noreturn]] void Kernel::idle_loop() {
  Cpu& self = this_cpu();
  for (;;) {
    hal::irq_disable();
    if (hal::planted(hal::Plant::LostIpi)) {
      // Planted bug: the check runs with interrupts on, so a wake-up IPI can be taken between
      // the check and the halt, and the halt then sleeps through the work it announced.
      hal::irq_enable();
      const bool work = any_work(self);
      hal::irq_disable();
      if (!work) {
        self.need_resched = false;
        hal::cpu_idle_wait();
      }
    } else if (!any_work(self)) {
      self.need_resched = false;
      hal::cpu_idle_wait();
    }
    if (any_work(self)) switch_away(self.idle_thread, false);
  }
}

u32 Kernel::steal_keep(Cpu& victim) {
  // An idle CPU's single queued thread has an IPI on its way: leave it to that CPU rather
  // than race for it. Busy CPUs give away anything queued behind their running thread.
  return victim.idle.load(MemoryOrder::Relaxed) ? 1 : 0;
}

bool Kernel::any_work(Cpu& self) {
  if (self.run_length.load() > 0) return true;
  for (u32 i = 1; i < m_config.cpu_count; ++i) {
    Cpu& victim = cpu((self.id + i) % m_config.cpu_count);
    if (victim.run_length.load() > steal_keep(victim) && has_stealable(victim, self)) return true;
  }
  return false;
}

bool Kernel::has_stealable(Cpu& victim, Cpu& thief) {
  // Only a thread whose affinity allows the thief counts: an idle CPU that saw the others'
  // pinned threads as work would leave its halt, find nothing to take, and spin for ever.
  victim.run_lock.acquire();
  bool found = false;
  for (Thread* t = victim.run_queue.front(); t != nullptr && !found; t = victim.run_queue.next(t)) {
    found = ((t->affinity.load(MemoryOrder::Relaxed) >> thief.id) & 1) != 0 && !t->on_cpu.load(MemoryOrder::Acquire);
  }
  victim.run_lock.release();
  return found;
}

}  // namespace tandem
