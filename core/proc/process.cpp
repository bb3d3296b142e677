// Thread and process exit, the process tree (parents, children, zombies, orphans) and waiting
// for children (wait4, waitid).
//
// Life of a process: its last thread's exit frees the address space and files, then, under the
// process tree lock, the process becomes a zombie that keeps only its pid and wait status. Its
// children go to PID 1 (or, when there is none, become parentless). The parent gets SIGCHLD and
// its waiters are woken; the zombie's slot is freed when the parent reaps it with wait4/waitid,
// or at once when nobody can: no parent, or a parent that ignores SIGCHLD or set SA_NOCLDWAIT,
// as Linux does.
#include "core/fs/file_table.h"
#include "core/kernel.h"
#include "core/lib/print.h"
#include "core/proc/process.h"

namespace tandem {

namespace {

// Under the tree lock: the process that adopts orphans.
Process* find_reaper(Kernel& kernel, Process* dying) {
  Process* init = kernel.process_by_pid(1);
  if (init == nullptr || init == dying || init->zombie) return nullptr;
  return init;
}

// Under the tree lock: unlinks a zombie and frees its slot.
void reap_locked(Kernel& kernel, Process* zombie) {
  if (zombie->parent != nullptr) zombie->parent->children.remove(zombie);
  zombie->parent = nullptr;
  kernel.free_process(zombie);
}

}  // namespace

Process* Kernel::process_by_pid(u32 pid) {
  if (pid == 0) return nullptr;
  Process* found = nullptr;
  for_each_process([&](Process* p) {
    if (found == nullptr && p->pid == pid) found = p;
  });
  return found;
}

void release_vfork_parent(Kernel& kernel, Process* child) {
  Thread* waiter = nullptr;
  {
    SpinLockGuard guard(kernel.process_tree_lock());
    waiter = child->vfork_parent;
    child->vfork_parent = nullptr;
    if (waiter != nullptr) waiter->signals.vfork_done = true;
    // Woken under the tree lock: the waiter cannot leave its wait (and exit) before this.
    if (waiter != nullptr) kernel.wake(waiter, kWakeNormal);
  }
}

[[noreturn]] void Kernel::exit_thread(i32 code) {
  Thread* self = current_thread();
  Process* process = self->process;
  VERIFY(process != nullptr);

  // CLONE_CHILD_CLEARTID: clear the word and wake one waiter on it, as a shared futex, which
  // is how pthread_join learns the thread is gone. A bad address is ignored, as on Linux.
  if (self->clear_child_tid != 0 && process->address_space != nullptr) {
    const u32 zero = 0;
    if (hal::copy_to_user(self->clear_child_tid, &zero, sizeof(zero))) {
      auto key = process->address_space->futex_key(self->clear_child_tid, true);
      if (key.ok()) m_futexes.wake_key(key.value(), 1, futex_op::kBitsetMatchAny);
    }
    self->clear_child_tid = 0;
  }

  bool last = false;
  {
    SpinLockGuard guard(process->lock);
    process->threads.remove(self);
    last = --process->live_threads == 0;
    if (last && !process->exiting) process->exit_status = (code & 0xff) << 8;
    if (last) process->exiting = true;  // no signal may be queued to it any more
  }
  if (last) {
    release_vfork_parent(*this, process);
    // The address space goes with its last thread. Leave it first: nothing of it may stay
    // active on this CPU.
    hal::IrqFlags flags = hal::irq_save();
    this_cpu().active_table.store(nullptr, MemoryOrder::Release);
    hal::pt_activate(nullptr);
    hal::irq_restore(flags);
    if (process->address_space != nullptr) {
      process->address_space->destroy();
      process->address_space = nullptr;
    }
    if (process->files != nullptr) {
      process->files->release();
      process->files = nullptr;
    }
    const int status = process->exit_status;
    const u32 pid = process->pid;
    self->process = nullptr;
    become_zombie(process);
    if (pid == 1) {
      report_cpu_stats();
      hal::shutdown(status);
    }
  }
  exit_current_thread(code);
}

void Kernel::become_zombie(Process* process) {
  SpinLockGuard guard(m_process_tree_lock);
  Process* reaper = find_reaper(*this, process);
  // Orphans: living children move to the reaper; zombie children it would have to reap are
  // reaped here when there is none.
  while (Process* child = process->children.pop_front()) {
    child->parent = nullptr;
    if (reaper != nullptr) {
      child->parent = reaper;
      reaper->children.push_back(child);
      if (child->zombie) {
        SignalInfo info;
        info.code = sig::kCldExited;
        info.pid = child->pid;
        send_signal_to_process(reaper, sig::kSigchld, info);
      }
    } else if (child->zombie) {
      free_process(child);
    }
  }
  process->zombie = true;
  Process* parent = process->parent;
  bool auto_reap = parent == nullptr;
  if (parent != nullptr) {
    KernelSigaction chld;
    {
      SpinLockGuard g(parent->lock);
      chld = parent->signal_actions.actions[sig::kSigchld - 1];
    }
    auto_reap = chld.handler == sig::kSigIgn || (chld.flags & sig::kSaNocldwait) != 0;
    SignalInfo info;
    const i32 status = process->exit_status;
    info.pid = process->pid;
    if ((status & 0x7f) == 0) {
      info.code = sig::kCldExited;
      info.status = (status >> 8) & 0xff;
    } else {
      info.code = (status & 0x80) ? sig::kCldDumped : sig::kCldKilled;
      info.status = status & 0x7f;
    }
    if (process->exit_signal != 0) send_signal_to_process(parent, process->exit_signal, info);
    SpinLockGuard g(parent->child_exit.lock);
    parent->child_exit.waiters.for_each([&](Thread* t) {
      parent->child_exit.waiters.remove(t);
      wake(t, kWakeNormal);
    });
  }
  if (auto_reap) reap_locked(*this, process);
}

[[noreturn]] void Kernel::exit_group(i32 status_word) {
  Thread* self = current_thread();
  Process* process = self->process;
  VERIFY(process != nullptr);
  {
    SpinLockGuard guard(process->lock);
    if (!process->exiting) {
      process->exiting = true;
      process->exit_status = status_word;
    }
    // Every other thread exits at its next return to user mode; wake the blocked ones and
    // interrupt the running ones so that happens soon.
    process->threads.for_each([&](Thread* t) {
      if (t == self) return;
      t->kill_pending.store(true);
      if (!wake(t, kWakeKill) && t->on_cpu.load() && t->cpu != this_cpu().id) {
        send_reschedule_ipi(t->cpu);
        ++this_cpu().stats.ipis_sent;
      }
    });
  }
  exit_thread(0);
}

// ---------------------------------------------------------------------------------------------
// Waiting for children
// ---------------------------------------------------------------------------------------------

Result<WaitResult> wait_for_child(Kernel& kernel, const WaitSpec& spec) {
  Thread* self = Kernel::current_thread();
  Process* me = self->process;
  for (;;) {
    {
      SpinLockGuard guard(kernel.process_tree_lock());
      bool any = false;
      Process* found = nullptr;
      me->children.for_each([&](Process* child) {
        bool match = false;
        switch (spec.kind) {
          case WaitSpec::Any: match = true; break;
          case WaitSpec::Pid: match = child->pid == spec.id; break;
          case WaitSpec::Group: match = process_group(child) == spec.id; break;
        }
        if (!match) return;
        any = true;
        if (found == nullptr && child->zombie) found = child;
      });
      if (!any) return Errno::kECHILD;
      if (found != nullptr) {
        WaitResult result{found->pid, found->exit_status};
        if (!spec.no_reap) reap_locked(kernel, found);
        return result;
      }
      if (spec.no_hang) return WaitResult{0, 0};
      // Sleep until a child changes state. Queued under the tree lock, which every exit takes
      // before waking us, so no exit can slip between the scan and the sleep.
      SpinLockGuard q(me->child_exit.lock);
      kernel.prepare_to_sleep();
      me->child_exit.waiters.push_back(self);
    }
    if (signal_pending(self)) kernel.wake(self, kWakeKill);
    kernel.block();
    {
      SpinLockGuard q(me->child_exit.lock);
      if (self->wait_node.linked()) me->child_exit.waiters.remove(self);
    }
    if (signal_pending(self)) return Errno::kERESTARTSYS;
  }
}

}  // namespace tandem
