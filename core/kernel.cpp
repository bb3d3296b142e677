#include "core/kernel.h"

#include "core/fs/file_table.h"
#include "core/ipc/ipc.h"

#include "core/lib/print.h"
#include "core/net/stack.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

[[noreturn]] void verify_failed(const char* expression, const char* file, int line) {
  char message[256];
  format(message, sizeof(message), "VERIFY(%s) failed at %s:%d", expression, file, line);
  hal::panic(message);
}

CpuLockState* cpu_lock_state() {
  // CpuLockState is the first member of Cpu, so the per-CPU pointer is also its address.
  return static_cast<CpuLockState*>(hal::cpu_local());
}

Kernel::Kernel(const KernelConfig& config) : m_config(config) {
  VERIFY(config.cpu_count >= 1 && config.cpu_count <= hal::kMaxCpus);
  VERIFY(config.max_threads >= 2 && config.max_threads <= kMaxThreads);
  m_futexes.set_mode(config.futex_mode);
  for (u32 i = 0; i < config.cpu_count; ++i) {
    Cpu* c = new (&cpu(i)) Cpu();
    c->id = i;
    c->kernel = this;
  }
}

Kernel::~Kernel() {
  // lwIP's state is process-wide: put it back for the next kernel instance (core/net/stack.h).
  net_stack_shutdown(*this, /*machine_stopped=*/true);
  for (u32 i = 0; i < m_thread_high_water; ++i) thread_slot(i)->~Thread();
  for (u32 i = 0; i < m_process_high_water; ++i) process_slot(i)->~Process();
  for (u32 i = 0; i < m_config.cpu_count; ++i) cpu(i).~Cpu();
}

Thread* Kernel::allocate_thread_slot() {
  SpinLockGuard guard(m_table_lock);
  // Idle threads do not count against the table limit users see.
  Thread* thread = nullptr;
  if (m_free_threads != nullptr) {
    thread = m_free_threads;
    m_free_threads = thread->next_free;
    const u32 slot = thread->slot;
    thread->~Thread();
    thread = new (thread) Thread();
    thread->slot = slot;
  } else if (m_thread_high_water < kMaxThreads) {
    const u32 slot = m_thread_high_water++;
    thread = new (thread_slot(slot)) Thread();
    thread->slot = slot;
  } else {
    return nullptr;
  }
  thread->kernel = this;
  thread->state = ThreadState::Embryo;
  return thread;
}

void Kernel::free_thread_slot(Thread* thread) {
  VERIFY(thread->timer_cpu.peek() < 0 && !thread->wait_node.linked() && !thread->run_node.linked());
  const bool counted = !thread->is_idle;
  SpinLockGuard guard(m_table_lock);
  thread->state = ThreadState::Free;
  thread->next_free = m_free_threads;
  m_free_threads = thread;
  if (counted) m_live_threads.fetch_sub(1);
}

Result<Thread*> Kernel::create_thread(Process* process, void (*entry)(void*), void* arg) {
  {
    SpinLockGuard guard(m_table_lock);
    if (m_live_threads.peek() + m_config.cpu_count >= m_config.max_threads) return Errno::kEAGAIN;
  }
  Thread* thread = allocate_thread_slot();
  if (thread == nullptr) return Errno::kEAGAIN;
  thread->entry = entry;
  thread->entry_arg = arg;
  thread->context = hal::context_create(&Kernel::thread_trampoline, thread);
  if (thread->context == nullptr) {
    {
      SpinLockGuard guard(m_table_lock);
      thread->state = ThreadState::Free;
      thread->next_free = m_free_threads;
      m_free_threads = thread;
    }
    return Errno::kENOMEM;
  }
  {
    SpinLockGuard guard(m_table_lock);
    // Kernel threads take no user-visible id, so the first user process is PID 1.
    thread->tid = process != nullptr ? m_next_tid++ : 0;
    m_live_threads.fetch_add(1);
  }
  if (process != nullptr) format(thread->name, sizeof(thread->name), "tid %u", thread->tid);
  else format(thread->name, sizeof(thread->name), "kthread");
  hal::context_set_name(thread->context, thread->name);
  // A user thread inherits its creator's task name and CPU affinity (pthread_create, fork).
  const Cpu* here = static_cast<const Cpu*>(hal::cpu_local());
  const Thread* creator = here != nullptr ? here->current : nullptr;
  if (creator != nullptr && creator->process != nullptr && process != nullptr) {
    copy_bytes(thread->comm, creator->comm, sizeof(thread->comm));
    thread->affinity.store(creator->affinity.load(MemoryOrder::Relaxed), MemoryOrder::Relaxed);
  } else {
    fill_bytes(thread->comm, 0, sizeof(thread->comm));
    thread->affinity.store(~0ull, MemoryOrder::Relaxed);
  }
  thread->process = process;
  if (process != nullptr) {
    // Why under the process lock: exit_group marks every thread of the process under this lock,
    // so a thread joins the process either before that (and is marked) or after it (and is
    // refused here, as Linux's copy_process refuses a clone once a fatal signal is pending).
    SpinLockGuard guard(process->lock);
    if (process->exiting) {
      guard.unlock();
      thread->process = nullptr;
      hal::context_destroy(thread->context);
      thread->context = nullptr;
      free_thread_slot(thread);
      return Errno::kEINTR;
    }
    process->threads.push_back(thread);
    ++process->live_threads;
  }
  return thread;
}

Result<Process*> Kernel::create_process() {
  SpinLockGuard guard(m_table_lock);
  Process* process = nullptr;
  for (u32 i = 0; i < m_process_high_water; ++i) {
    if (!process_slot(i)->in_use) {
      process = process_slot(i);
      process->~Process();
      process = new (process) Process();
      process->slot = i;
      break;
    }
  }
  if (process == nullptr) {
    if (m_process_high_water >= m_config.max_threads) return Errno::kEAGAIN;
    const u32 slot = m_process_high_water++;
    process = new (process_slot(slot)) Process();
    process->slot = slot;
  }
  process->in_use = true;
  process->kernel = this;
  process->pid = 0;  // the first thread's tid, assigned by the caller
  m_live_processes.fetch_add(1);
  return process;
}

void Kernel::destroy_process(Process* process) {
  SpinLockGuard guard(m_table_lock);
  process->in_use = false;
  m_live_processes.fetch_sub(1);
}

void Kernel::init_thread_entry(void* arg) {
  auto* kernel = static_cast<Kernel*>(arg);
  kernel->m_config.init(*kernel, kernel->m_config.init_arg);
}

void Kernel::user_thread_entry(void* arg) {
  auto* thread = static_cast<Thread*>(arg);
  hal::enter_user(thread->start_frame);
}

Result<Thread*> Kernel::create_user_thread(Process* process, const hal::UserFrame& frame) {
  Thread* thread = TRY(create_thread(process, &Kernel::user_thread_entry, nullptr));
  thread->entry_arg = thread;
  thread->start_frame = frame;
  return thread;
}

Result<Process*> Kernel::spawn_user(AddressSpace* space, const hal::UserFrame& frame) {
  Process* process = TRY(create_user_process(space, frame));
  start_user_process(process);
  return process;
}

void Kernel::start_user_process(Process* process) {
  Thread* first = nullptr;
  {
    SpinLockGuard guard(process->lock);
    first = process->threads.front();
  }
  VERIFY(first != nullptr);
  make_runnable(first);
}

Result<Process*> Kernel::create_user_process(AddressSpace* space, const hal::UserFrame& frame) {
  // The first program starts with /dev/console open on descriptors 0, 1 and 2.
  FileTable* files = TRY(FileTable::create_with_console(*this));
  auto process_or_error = create_process();
  if (process_or_error.is_error()) {
    files->release();
    return process_or_error.error();
  }
  Process* process = process_or_error.value();
  process->address_space = space;
  process->files = files;
  auto thread_or_error = create_user_thread(process, frame);
  if (thread_or_error.is_error()) {
    process->address_space = nullptr;
    process->files = nullptr;
    files->release();
    destroy_process(process);
    return thread_or_error.error();
  }
  Thread* thread = thread_or_error.value();
  process->pid = thread->tid;
  return process;
}

Thread* Kernel::thread_by_tid(u32 tid) {
  SpinLockGuard guard(m_table_lock);
  for (u32 i = 0; i < m_thread_high_water; ++i) {
    Thread* t = thread_slot(i);
    if (t->tid == tid && t->state != ThreadState::Free && !t->is_idle) return t;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// CPUs and entry points
// ---------------------------------------------------------------------------------------------

[[noreturn]] void Kernel::cpu_main(u32 cpu_id) {
  Cpu& c = cpu(cpu_id);
  hal::cpu_local_set(&c);
  Thread* idle = allocate_thread_slot();
  VERIFY(idle != nullptr);
  idle->is_idle = true;
  idle->tid = 0;
  idle->context = hal::context_adopt_current();
  idle->state = ThreadState::Running;
  idle->on_cpu.poke(true);
  idle->cpu = cpu_id;
  idle->switched_in_at = hal::monotonic_ns();
  c.idle_thread = idle;
  c.current = idle;
  c.idle.store(true);
  c.online = true;
  reprogram_timer(c);
  if (cpu_id == 0 && m_config.init != nullptr) {
    auto init = create_thread(nullptr, &Kernel::init_thread_entry, this);
    VERIFY(init.ok());
    make_runnable(init.value());
  }
  idle_loop();
}

bool Kernel::register_irq_handler(u32 irq, IrqHandler handler, void* context) {
  // Drivers register at boot, before their device can interrupt, so the interrupt path reads
  // the table without a lock.
  for (IrqSlot& slot : m_irq_handlers) {
    if (slot.handler == nullptr) {
      slot = IrqSlot{irq, handler, context};
      return true;
    }
  }
  return false;
}

void Kernel::unregister_irq_handler(u32 irq) {
  for (IrqSlot& slot : m_irq_handlers) {
    if (slot.handler != nullptr && slot.irq == irq) slot = IrqSlot{};
  }
}

void Kernel::on_interrupt(kentry::Vector vector, u32 irq, hal::UserFrame* user) {
  Cpu& c = this_cpu();
  // Every core lock is held with interrupts disabled, so no interrupt can find one held on its
  // CPU; if one does, the handler may take the same lock and wait on itself for ever. Only the
  // backtrace NMI arrives regardless.
  if (vector != kentry::Vector::IpiBacktrace && c.locks.depth != 0) {
    klog("interrupt %u on cpu %u found %u lock(s) held (innermost rank %u) with interrupts enabled",
         static_cast<u32>(vector), c.id, c.locks.depth, static_cast<u32>(c.locks.ranks[c.locks.depth - 1]));
    verify_failed("no lock is held when an interrupt arrives", __FILE__, __LINE__);
  }
  switch (vector) {
    case kentry::Vector::Timer:
      on_timer(c);
      break;
    case kentry::Vector::IpiReschedule:
      ++c.stats.ipis_received;
      c.need_resched = true;
      // Another CPU made lwIP's next timeout earlier (core/net/stack.h): an idle CPU 0 re-arms.
      if (c.id == 0) reprogram_timer(c);
      break;
    case kentry::Vector::IpiTlbShootdown:
      ++c.stats.ipis_received;
      break;
    case kentry::Vector::IpiBacktrace:
      ++c.stats.ipis_received;
      if (c.id == 0) dump_state();
      break;
    case kentry::Vector::Device:
      for (const IrqSlot& slot : m_irq_handlers) {
        if (slot.handler != nullptr && slot.irq == irq) slot.handler(slot.context, irq);
      }
      break;
  }
  if (user != nullptr) return_to_user(*user);
}

void Kernel::return_to_user(hal::UserFrame& frame) {
  for (;;) {
    Thread* self = current_thread();
    if (self->kill_pending.load(MemoryOrder::Relaxed)) {
      hal::irq_enable();
      exit_thread(self->process != nullptr ? self->process->exit_status : 0);
    }
    // Signals (core/proc/signal.cpp): default actions run here, handlers get their frame.
    if (self->process != nullptr) deliver_pending_signals(*this, frame);
    if (!this_cpu().need_resched) break;
    yield();
  }
  // No kernel lock may be held on the way back to user mode.
  VERIFY(this_cpu().locks.depth == 0);
}

void Kernel::dump_state() {
  klog("state: threads (tid pid comm state cpu, and the system call each is in)");
  for_each_thread([&](Thread* t) {
    const u32 nr = t->syscall_nr.peek();
    const char* name = nr == ~0u ? nullptr : syscall_name(nr);
    char comm[sizeof(t->comm) + 1] = {};
    copy_bytes(comm, t->comm, sizeof(t->comm));
    klog("state:   %u %u '%s' %s cpu %u%s%s%s%lx%s", t->tid, t->process != nullptr ? t->process->pid : 0, comm,
         thread_state_name(t->state), t->cpu, name != nullptr ? " in " : "", name != nullptr ? name : "",
         name != nullptr ? "(" : "", name != nullptr ? static_cast<unsigned long>(t->syscall_arg0.peek()) : 0ul,
         name != nullptr ? ", ...)" : "");
  });
  epoll_dump_state(*this);
  net_dump_state();
  if (Vfs* v = vfs.load()) {
    const SpinLock& r = v->readiness_queue().lock;
    const SpinLock& e = v->epoll_lock();
    klog("state: readiness lock: owner cpu %d, contended %u times; epoll lock: owner cpu %d, contended %u times",
         r.debug_owner_cpu(), r.debug_contended(), e.debug_owner_cpu(), e.debug_contended());
  }
}

const char* Kernel::check_quiescent_invariants() {
  for (u32 i = 0; i < m_config.cpu_count; ++i) {
    Cpu& c = cpu(i);
    if (!c.online) continue;
    if (c.locks.depth != 0) return "a CPU holds a kernel lock while quiescent";
    if (c.run_queue.size() != c.run_length.peek()) return "run queue length out of sync";
    bool bad = false;
    c.run_queue.for_each([&](Thread* t) { bad |= t->state != ThreadState::Ready; });
    if (bad) return "a thread on a run queue is not ready";
    if (c.current != c.idle_thread) return "a quiescent CPU is not running its idle thread";
    if (c.switched_from != nullptr) return "a context switch was left unfinished";
  }
  return nullptr;
}

}  // namespace tandem

// -------------------------------------------------------------------------------------------------
// kentry: the HAL's way in
// -------------------------------------------------------------------------------------------------

namespace kentry {

using tandem::Kernel;

[[noreturn]] void cpu_main(void* kernel, hal::u32 cpu) { static_cast<Kernel*>(kernel)->cpu_main(cpu); }

void syscall(hal::UserFrame& frame) {
  Kernel& kernel = *Kernel::this_cpu().kernel;
  ++Kernel::this_cpu().stats.syscalls;
  // Kept for signal delivery, which may restart the call (ERESTARTSYS).
  Kernel::current_thread()->signals.syscall_nr = static_cast<hal::i64>(frame.rax);
  tandem::dispatch_syscall(kernel, frame);
  kernel.return_to_user(frame);
}

void interrupt(Vector vector, hal::u32 irq, hal::UserFrame* user) {
  Kernel::this_cpu().kernel->on_interrupt(vector, irq, user);
}

void dump_state() {
  if (hal::cpu_local() == nullptr) return;
  Kernel::this_cpu().kernel->dump_state();
}

void console_input() {
  // Why this is safe in interrupt context: no core lock is held (every core lock disables
  // interrupts), and waking takes only the readiness queue's and the scheduler's locks, which
  // timer interrupts take too. The console vnode (core/fs/synthfs.cpp) keeps no state of its own
  // to update: its readers and pollers wait on the readiness queue and look again once woken.
  // A CPU that core has not set up yet, or a kernel without files, has nobody to wake.
  if (hal::cpu_local() == nullptr) return;
  tandem::Vfs* vfs = Kernel::this_cpu().kernel->vfs.load();
  if (vfs != nullptr) vfs->notify_readiness();
}

bool page_fault(hal::u64 address, hal::u32 access) {
  tandem::Thread* thread = Kernel::current_thread();
  if (thread == nullptr || thread->process == nullptr || thread->process->address_space == nullptr)
    return false;
  ++Kernel::this_cpu().stats.page_faults;
  const auto result = thread->process->address_space->handle_fault(address, access);
  thread->out_of_memory_page =
      result == tandem::AddressSpace::FaultResult::OutOfMemory ? tandem::align_down(address, hal::kPageSize) : ~0ull;
  return result == tandem::AddressSpace::FaultResult::Resolved;
}

void user_fault(UserFault fault, hal::u64 address, hal::UserFrame& frame) {
  // The signal a Linux kernel sends for the fault, forced (core/proc/signal.cpp): a handler runs
  // when the frame comes back, otherwise the default action ends the process.
  Kernel& kernel = *Kernel::this_cpu().kernel;
  namespace sig = tandem::sig;
  hal::u32 signal = sig::kSigsegv;
  hal::i32 code = sig::kSegvMaperr;
  tandem::Thread* self = Kernel::current_thread();
  if (fault == UserFault::Segv && self->out_of_memory_page == tandem::align_down(address, hal::kPageSize)) {
    // A valid access with no memory left for it. Linux's out-of-memory killer would pick the
    // largest process; here the one that needs the page ends, with SIGKILL, and says why.
    self->out_of_memory_page = ~0ull;
    tandem::klog("out of memory: killed pid %u (%s), which faulted at 0x%lx", static_cast<unsigned>(self->process->pid),
                 self->comm, static_cast<unsigned long>(address));
    tandem::force_fault_signal(kernel, sig::kSigkill, sig::kSiKernel, address, frame);
    return;
  }
  switch (fault) {
    case UserFault::Segv:
      signal = sig::kSigsegv;
      // A mapping that exists but forbids the access is SEGV_ACCERR; no mapping is SEGV_MAPERR;
      // a shared file mapping past the end of its file is SIGBUS (BUS_ADRERR), as on Linux.
      if (Kernel::current_thread()->process != nullptr &&
          Kernel::current_thread()->process->address_space != nullptr) {
        switch (Kernel::current_thread()->process->address_space->classify_fault(address)) {
          case tandem::FaultKind::Unmapped: code = sig::kSegvMaperr; break;
          case tandem::FaultKind::Forbidden: code = sig::kSegvAccerr; break;
          case tandem::FaultKind::BeyondFile: signal = sig::kSigbus; code = sig::kBusAdrerr; break;
        }
      }
      break;
    case UserFault::Bus: signal = sig::kSigbus; code = sig::kBusAdrerr; break;
    case UserFault::Ill: signal = sig::kSigill; code = sig::kIllIllopn; break;
    case UserFault::Fpe: signal = sig::kSigfpe; code = sig::kFpeIntdiv; break;
    case UserFault::Trap: signal = sig::kSigtrap; code = sig::kTrapBrkpt; break;
  }
  tandem::force_fault_signal(kernel, signal, code, address, frame);
}

}  // namespace kentry
