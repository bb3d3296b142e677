// Threads, processes and wait queues.
#pragma once

#include <hal.h>

#include "core/lib/atomic.h"
#include "core/lib/list.h"
#include "core/lib/spinlock.h"
#include "core/mm/address_space.h"
#include "core/proc/signals.h"

namespace tandem {

class Kernel;
struct Process;
struct FutexBucket;
class FileTable;

// A thread's life: Embryo (being built) -> Ready (on a run queue) <-> Running (on a CPU) ->
// Sleeping (announced it will block; a wake-up now just cancels the sleep) -> Blocked
// (switched away; a wake-up puts it on a run queue) -> ... -> Exited (switched away for the
// last time; the next thread on that CPU reaps it).
enum class ThreadState : u8 { Free, Embryo, Ready, Running, Sleeping, Blocked, Exited };

const char* thread_state_name(ThreadState state);

// Why a blocked thread was woken, when it matters to the code that blocked.
enum WakeReason : u8 { kWakeNormal = 0, kWakeTimeout = 1, kWakeKill = 2 };

struct Thread {
  u32 tid = 0;
  u32 slot = 0;
  Kernel* kernel = nullptr;
  Process* process = nullptr;
  hal::Context* context = nullptr;
  void (*entry)(void*) = nullptr;
  void* entry_arg = nullptr;
  bool is_idle = false;
  char name[16] = {};  // for traces and backtraces ("tid 7")
  // The task name of prctl(PR_SET_NAME): the program's base name after execve, inherited by
  // the threads and processes it creates.
  char comm[16] = {};
  // sched_setaffinity: the CPUs the thread may run on (bit i: CPU i); the scheduler queues it
  // only there and never steals it elsewhere. Inherited by the threads it creates.
  Atomic<u64> affinity{~0ull};
  // The system call in progress (~0: none) and its first argument, for the state dump a stuck
  // machine prints when it is asked for backtraces (Kernel::dump_state). Written by the thread
  // itself, read racily by the dump.
  Atomic<u32> syscall_nr{~0u};
  Atomic<u64> syscall_arg0{0};
  // References: one for being alive (dropped when reaped), one per joiner.
  Atomic<u32> refs{1};

  // Scheduling. `state` is guarded by `lock`; `on_cpu` is true from the moment a CPU picks the
  // thread until the switch away from it has completed (see Scheduler::finish_switch).
  SpinLock lock{LockRank::Thread};
  ThreadState state = ThreadState::Free;
  Atomic<bool> on_cpu{false};
  u32 cpu = 0;
  ListNode run_node;

  // Waiting: one thing at a time, a futex bucket or a wait queue.
  ListNode wait_node;
  // The readiness bits (readiness_bit()) of the files this thread polled since its last
  // ReadinessWaiter::begin(): a readiness change elsewhere does not wake it (Vfs::notify_readiness).
  u64 readiness_interest = 0;
  FutexKey futex_key;
  u32 futex_bitset = 0;
  FutexBucket* futex_bucket = nullptr;  // guarded by that bucket's lock

  // A deadline timer on one CPU's timer queue (timer_cpu < 0: not armed).
  ListNode timer_node;
  u64 timer_deadline = 0;
  Atomic<i32> timer_cpu{-1};  // written under that CPU's timer lock
  Atomic<u8> wake_reason{kWakeNormal};

  // exit_group and fatal signals ask the thread to exit at its next return to user mode.
  Atomic<bool> kill_pending{false};

  // The page of this thread's last page fault when it found no memory left (kentry::page_fault),
  // ~0 otherwise; the user fault that follows at that address kills the process as Linux's
  // out-of-memory killer would, rather than send a SIGSEGV for an access that was valid.
  u64 out_of_memory_page = ~0ull;

  // User-mode state.
  hal::UserFrame start_frame{};
  u64 clear_child_tid = 0;
  u64 robust_list_head = 0;  // set_robust_list
  u64 signal_mask = 0;       // rt_sigprocmask; blocked signals
  ThreadSignals signals;     // pending signals, sigaltstack (core/proc/signals.h)
  ListNode process_node;

  // Join: `exited` is set once, under exit_queue's lock, and joiners wait on exit_queue.
  struct {
    SpinLock lock{LockRank::Wait};
    IntrusiveList<Thread, &Thread::wait_node> waiters;
  } exit_queue;
  bool exited = false;
  i32 exit_code = 0;

  u64 runtime_ns = 0;
  u64 switched_in_at = 0;
  Thread* next_free = nullptr;  // in the kernel's free slot list
};

// Threads waiting for something that is not a futex word.
struct WaitQueue {
  SpinLock lock{LockRank::Wait};
  IntrusiveList<Thread, &Thread::wait_node> waiters;
};

struct Process {
  u32 pid = 0;
  u32 slot = 0;
  Kernel* kernel = nullptr;
  AddressSpace* address_space = nullptr;
  SpinLock lock{LockRank::Process};
  IntrusiveList<Thread, &Thread::process_node> threads;  // guarded by lock
  u32 live_threads = 0;                                   // guarded by lock
  bool exiting = false;                                   // exit_group ran
  i32 exit_status = 0;                                    // wait(2) status word
  bool in_use = false;
  // Program break (brk): the heap is [brk_start, brk_current), mapped up to brk_mapped_end.
  // Guarded by lock. Set by the ELF loader.
  u64 brk_start = 0;
  u64 brk_current = 0;
  u64 brk_mapped_end = 0;
  SignalActions signal_actions;  // rt_sigaction, guarded by lock
  // Open files, current directory and umask (core/fs/file_table.h); fork clones it, execve
  // calls close_on_exec() on it, the last thread's exit releases it.
  FileTable* files = nullptr;
  // The absolute path of the running program, for /proc/self/exe; set by the loader.
  char exe_path[256] = {};
  // The process tree (core/proc/process.cpp), guarded by Kernel::process_tree_lock(): parent,
  // children, groups, and the zombie state between the last thread's exit and the reaping wait.
  Process* parent = nullptr;
  ListNode sibling_node;
  IntrusiveList<Process, &Process::sibling_node> children;
  u32 pgid = 0;  // 0: the process's own pid (a process without a parent leads its own group)
  u32 sid = 0;   // 0: the process's own pid
  bool zombie = false;
  WaitQueue child_exit;        // threads in wait4/waitid on this process's children
  Thread* vfork_parent = nullptr;  // the thread that sleeps until this child execs or exits
  u32 exit_signal = 17;            // sent to the parent at exit (clone's low byte; SIGCHLD)
  // getrlimit/setrlimit/prlimit64, guarded by lock; fork copies them. RLIMIT_NOFILE is enforced
  // by the file table (FileTable::set_limit); the others are kept and reported as set.
  struct Rlimit {
    u64 cur;
    u64 max;
  };
  static constexpr u32 kRlimitCount = 16;
  static constexpr u64 kRlimInfinity = ~0ull;
  Rlimit rlimits[kRlimitCount] = {
      {kRlimInfinity, kRlimInfinity},  // CPU
      {kRlimInfinity, kRlimInfinity},  // FSIZE
      {kRlimInfinity, kRlimInfinity},  // DATA
      {8ull << 20, kRlimInfinity},     // STACK
      {0, kRlimInfinity},              // CORE
      {kRlimInfinity, kRlimInfinity},  // RSS
      {TANDEM_MAX_THREADS, TANDEM_MAX_THREADS},      // NPROC
      {1024, 1024},                    // NOFILE (the file table's size)
      {8ull << 20, 8ull << 20},        // MEMLOCK
      {kRlimInfinity, kRlimInfinity},  // AS
      {kRlimInfinity, kRlimInfinity},  // LOCKS
      {TANDEM_MAX_THREADS, TANDEM_MAX_THREADS},      // SIGPENDING
      {819200, 819200},                // MSGQUEUE
      {0, 0},                          // NICE
      {0, 0},                          // RTPRIO
      {kRlimInfinity, kRlimInfinity},  // RTTIME
  };
};


}  // namespace tandem
