// Thread and process exit.
#include "core/fs/file_table.h"
#include "core/kernel.h"
#include "core/lib/print.h"

namespace tandem {

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
  }
  if (last) {
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
    // Open files close with the last thread; the last table to go unmounts the VFS.
    if (process->files != nullptr) {
      process->files->release();
      process->files = nullptr;
    }
    const int status = process->exit_status;
    const u32 pid = process->pid;
    self->process = nullptr;
    destroy_process(process);
    if (pid == 1) hal::shutdown(status);
  }
  exit_current_thread(code);
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
        hal::send_ipi(t->cpu, hal::Ipi::Reschedule);
        ++this_cpu().stats.ipis_sent;
      }
    });
  }
  exit_thread(0);
}

}  // namespace tandem
