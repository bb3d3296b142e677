// Per-CPU state: reached through hal::cpu_local() (GS base on hardware).
#pragma once

#include "core/lib/atomic.h"
#include "core/lib/list.h"
#include "core/lib/spinlock.h"
#include "core/proc/thread.h"

namespace tandem {

struct CpuStats {
  u64 busy_ns = 0;
  u64 idle_ns = 0;
  u64 context_switches = 0;
  u64 ipis_sent = 0;
  u64 ipis_received = 0;
  u64 timer_interrupts = 0;
  u64 syscalls = 0;
  u64 page_faults = 0;  // resolved or not, from user mode and from copies to and from it
};

struct Cpu {
  CpuLockState locks;  // first, see cpu_lock_state()
  u32 id = 0;
  Kernel* kernel = nullptr;
  bool online = false;

  Thread* current = nullptr;
  Thread* idle_thread = nullptr;
  Thread* switched_from = nullptr;  // the thread switched away from, until finish_switch
  bool switched_from_exited = false;
  // The thread switched away from may no longer run here (sched_setaffinity): finish_switch
  // queues it on a CPU it may run on, once it is off this one.
  bool switched_from_migrates = false;
  // The user page table loaded on this CPU (null: kernel only). Written by this CPU at a switch,
  // read by a CPU that destroys an address space, which waits until no CPU has it loaded.
  Atomic<hal::PageTable*> active_table{nullptr};

  SpinLock run_lock{LockRank::RunQueue};
  IntrusiveList<Thread, &Thread::run_node> run_queue;  // guarded by run_lock
  Atomic<u32> run_length{0};
  Atomic<bool> idle{false};
  bool need_resched = false;  // only this CPU touches it, with interrupts off

  SpinLock timer_lock{LockRank::Timer};
  IntrusiveList<Thread, &Thread::timer_node> timers;  // sorted by deadline, guarded by timer_lock
  u64 next_tick = 0;
  u64 slice_started = 0;
  u64 idle_since = 0;

  CpuStats stats;
};

}  // namespace tandem
