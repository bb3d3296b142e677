// The kernel instance. All state hangs off one Kernel object reached through each CPU's
// hal::cpu_local(): the booted kernel has one, the simulator builds and discards one per
// schedule or fuzz input. Construction touches only a few cache lines: thread and process
// slots are initialised when first used, so a fresh kernel costs microseconds.
#pragma once

#include <hal.h>

#include "core/futex/futex.h"
#include "core/lib/heap.h"
#include "core/lib/result.h"
#include "core/net/unix_domain.h"
#include "core/proc/cpu.h"
#include "core/proc/thread.h"

#ifndef TANDEM_MAX_THREADS
#define TANDEM_MAX_THREADS 1024  // set by the build: TANDEM_MAX_THREADS
#endif

namespace tandem {

class Vfs;
class CpioFs;
class NetDevice;

inline constexpr u32 kMaxThreads = TANDEM_MAX_THREADS;
inline constexpr u64 kTickNs = 10'000'000;  // 100 Hz

struct KernelConfig {
  u32 cpu_count = 1;
  u32 max_threads = kMaxThreads;  // at most kMaxThreads; a smaller table for tests
  FutexMode futex_mode = FutexMode::Blocking;
  bool tickless_idle = true;
  // Logs every system call with its arguments and result (`strace` on the boot command line).
  bool trace_syscalls = false;
  // When PID 1 exits: a one-line summary of the CPUs' work (Summary, the booted kernel's
  // default), or one line per CPU (Table, `stats` on the boot command line).
  enum class CpuReport : u8 { None, Summary, Table };
  CpuReport cpu_report = CpuReport::None;
  // The first kernel thread, started on CPU 0 once it is up: it builds PID 1.
  void (*init)(class Kernel& kernel, void* arg) = nullptr;
  void* init_arg = nullptr;
};

class Kernel {
 public:
  explicit Kernel(const KernelConfig& config);
  ~Kernel();
  TANDEM_NONCOPYABLE(Kernel);

  const KernelConfig& config() const { return m_config; }
  Heap& heap() { return m_heap; }
  FutexTable& futexes() { return m_futexes; }
  Cpu& cpu(u32 id) { return reinterpret_cast<Cpu*>(m_cpu_storage)[id]; }

  // The file systems (core/fs): built on first use by kernel_vfs(), so a kernel whose programs
  // never touch a file costs nothing more. root_archive, when set before, becomes the root.
  Atomic<Vfs*> vfs{nullptr};
  const CpioFs* root_archive = nullptr;
  // AF_UNIX names and the SCM_RIGHTS cycle check (core/net/unix.cpp).
  UnixDomain unix_domain;

  // The network card (core/net/netdev.h), found at boot by netdev_probe; null when none.
  NetDevice* net_device = nullptr;

  // Device interrupts (kentry::Vector::Device): a driver registers the handler of its irq before
  // the device may raise it. Runs in interrupt context with interrupts disabled. false when the
  // table is full.
  using IrqHandler = void (*)(void* context, u32 irq);
  bool register_irq_handler(u32 irq, IrqHandler handler, void* context);
  void unregister_irq_handler(u32 irq);

  // Threads and processes.
  // Logs the CPUs' busy and idle time, context switches and IPIs (config().cpu_report).
  void report_cpu_stats();

  Result<Thread*> create_thread(Process* process, void (*entry)(void*), void* arg);
  Result<Process*> create_process();
  // Builds a process whose first thread enters user mode with `frame`, and makes it runnable.
  Result<Process*> spawn_user(AddressSpace* space, const hal::UserFrame& frame);
  // The same in two steps, for a caller that finishes setting the process up (program break,
  // executable path) before anything of it runs: once started, a process may exit and be freed
  // at any moment.
  Result<Process*> create_user_process(AddressSpace* space, const hal::UserFrame& frame);
  void start_user_process(Process* process);
  // A new thread of `process` that enters user mode with `frame` once made runnable.
  Result<Thread*> create_user_thread(Process* process, const hal::UserFrame& frame);
  Thread* thread_by_tid(u32 tid);
  // The process tree (core/proc/process.cpp): parent and child links, groups, zombies.
  SpinLock& process_tree_lock() { return m_process_tree_lock; }
  // A live or zombie process by pid; the caller holds process_tree_lock().
  Process* process_by_pid(u32 pid);
  // Calls f(process) for every process slot in use; the caller holds process_tree_lock().
  template <typename F>
  void for_each_process(F&& f) {
    for (u32 i = 0; i < m_process_high_water; ++i) {
      Process* p = process_slot(i);
      if (p->in_use && p->pid != 0) f(p);
    }
  }
  // Frees a reaped zombie's slot (core/proc/process.cpp).
  void free_process(Process* process) { destroy_process(process); }
  u32 live_threads() const { return m_live_threads.peek(); }
  u32 live_processes() const { return m_live_processes.peek(); }

  // Scheduling (core/proc/scheduler.cpp).
  void make_runnable(Thread* thread);  // Embryo -> Ready
  void prepare_to_sleep();             // Running -> Sleeping, before queueing on something
  void block();                        // Sleeping -> Blocked -> switch away (returns when woken)
  bool wake(Thread* thread, WakeReason reason);
  void yield();
  [[noreturn]] void exit_current_thread(i32 code);
  // join: waits until `thread` exited. The caller holds a reference (retain) until release.
  void join(Thread* thread);
  void retain(Thread* thread) { thread->refs.fetch_add(1); }
  void release(Thread* thread);
  void arm_timer(u64 deadline_ns);  // for the current thread
  void cancel_timer(Thread* thread);
  void sleep_until(u64 deadline_ns);  // monotonic; returns early when killed

  // Entry points from the HAL (core/kernel.cpp).
  [[noreturn]] void cpu_main(u32 cpu_id);
  void on_interrupt(kentry::Vector vector, u32 irq, hal::UserFrame* user);
  void return_to_user(hal::UserFrame& frame);

  // Process exit (core/proc/process.cpp).
  [[noreturn]] void exit_thread(i32 code);        // exit(2)
  [[noreturn]] void exit_group(i32 status_word);  // exit_group(2) and fatal signals
  void become_zombie(Process* process);           // the last thread of `process` exited

  // Calls f(thread) for every thread slot in use (not idle threads), for reports and checks.
  template <typename F>
  void for_each_thread(F&& f) {
    for (u32 i = 0; i < m_thread_high_water; ++i) {
      Thread* t = thread_slot(i);
      if (t->state != ThreadState::Free && !t->is_idle) f(t);
    }
  }

  // Prints every thread (state, CPU, the system call it is in) and every epoll set's items,
  // without taking a lock: CPU 0 calls it when a stuck machine is asked for backtraces (the
  // NMI that qemu/run-kernel sends before its timeout), so the log says who waits for what.
  void dump_state();

  // Checks the kernel's own invariants when every CPU is quiescent. Returns null when they
  // hold, or a description of the first broken one.
  const char* check_quiescent_invariants();

  // The running CPU's state.
  static Cpu& this_cpu() { return *static_cast<Cpu*>(hal::cpu_local()); }
  static Thread* current_thread() { return this_cpu().current; }

 private:
  friend struct SchedulerImpl;
  Thread* allocate_thread_slot();
  void free_thread_slot(Thread* thread);
  void reap(Thread* thread);
  void destroy_process(Process* process);

  // Scheduler internals.
  void switch_away(Thread* prev, bool requeue, bool prev_exited = false);
  void finish_switch();
  Thread* pick_next(Cpu& cpu);
  void enqueue(Thread* thread, Cpu& target, bool may_ipi, bool wake_affine = false);
  void reprogram_timer(Cpu& cpu);
  void on_timer(Cpu& cpu);
  static void thread_trampoline(void* arg);
  static void user_thread_entry(void* arg);
  static void init_thread_entry(void* arg);
  [[noreturn]] void idle_loop();
  bool any_work(Cpu& self);
  u32 steal_keep(Cpu& victim);
  bool has_stealable(Cpu& victim, Cpu& thief);

  KernelConfig m_config;
  Heap m_heap;
  FutexTable m_futexes{*this};
  alignas(Cpu) u8 m_cpu_storage[sizeof(Cpu) * hal::kMaxCpus];  // cpu_count constructed

  struct IrqSlot {
    u32 irq;
    IrqHandler handler;  // null: free
    void* context;
  };
  static constexpr u32 kMaxIrqHandlers = 4;
  IrqSlot m_irq_handlers[kMaxIrqHandlers] = {};

  SpinLock m_process_tree_lock{LockRank::ProcessTree};
  SpinLock m_table_lock{LockRank::Process};
  Atomic<u32> m_live_threads{0};
  Atomic<u32> m_live_processes{0};
  u32 m_next_tid = 1;          // guarded by m_table_lock
  u32 m_thread_high_water = 0;  // slots [0, high water) have been constructed
  Thread* m_free_threads = nullptr;  // free slots, linked through next_free
  u32 m_process_high_water = 0;
  alignas(Thread) u8 m_thread_storage[sizeof(Thread) * kMaxThreads];
  alignas(Process) u8 m_process_storage[sizeof(Process) * kMaxThreads];

  Thread* thread_slot(u32 i) { return reinterpret_cast<Thread*>(m_thread_storage) + i; }
  Process* process_slot(u32 i) { return reinterpret_cast<Process*>(m_process_storage) + i; }
};

}  // namespace tandem
