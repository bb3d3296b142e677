// The simulated SMP machine: N CPUs over fibers, a strategy that picks which CPU advances at
// every scheduling point, virtual time, per-CPU one-shot timers, IPIs and RAM.
//
// Exactly one fiber runs at a time, on the host thread that called run(). A run is a pure
// function of (what the CPUs execute, seed, strategy): every choice is either made by the
// strategy or follows from earlier ones, and the choices are recorded so the run replays.
#pragma once

#include <hal.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/cpus/fiber.h"
#include "sim/cpus/strategy.h"

namespace sim {

enum class Outcome : uint8_t {
  Finished,  // the machine shut down and every CPU went quiet
  Deadlock,  // every CPU halted with nothing pending and no shutdown
  Hang,      // the step budget ran out
  Panic,     // the kernel panicked (a VERIFY failed)
  Failed,    // a scenario check or a post-run check failed
};
const char* outcome_name(Outcome outcome);

enum InterruptBit : uint32_t {
  kIrqTimer = 1u << 0,
  kIrqReschedule = 1u << 1,
  kIrqTlb = 1u << 2,
  kIrqBacktrace = 1u << 3,
  kIrqDevice = 1u << 4,  // an MSI arrived: SimCpu::device_irqs says which (sim/cpus/pci_bus.h)
};

struct MachineConfig {
  uint32_t cpus = 4;
  uint64_t seed = 0;
  StrategyParams strategy;
  uint64_t step_ns = 50;          // virtual time per scheduling point
  uint64_t max_steps = 2'000'000;
  bool trace = false;             // record per-CPU events (replay)
  uint8_t plant = 0;              // hal::Plant
  size_t ram_bytes = size_t{256} << 20;  // reserved, touched on demand
  size_t stack_bytes = 0;         // 0: a default that suits the build
  // Once the kernel asked to shut down, end the run as soon as every CPU halts, even with timers
  // armed (a kernel with a network card keeps CPU 0's lwIP timer armed for ever).
  bool end_idle_after_shutdown = false;
};

struct TraceEvent {
  enum Kind : uint8_t { Run, SyscallIn, SyscallOut, Interrupt, Halt, Wake, Note };
  uint64_t step;
  uint64_t time_ns;
  uint32_t cpu;
  Kind kind;
  uint32_t fiber;     // trace id of the fiber
  uint64_t detail;    // syscall number, interrupt bit, ...
};

struct RunResult {
  Outcome outcome = Outcome::Finished;
  std::string message;
  uint64_t steps = 0;
  uint64_t virtual_ns = 0;
  int exit_status = 0;
  std::vector<Decision> decisions;
  uint64_t trace_hash = 0;
  std::vector<TraceEvent> trace;
  std::vector<std::string> fiber_names;  // by trace id
  std::string console;
};

struct SimCpu {
  uint32_t id = 0;
  Fiber boot;                 // the CPU's boot stack, which becomes its idle thread
  Fiber* current = nullptr;   // what this CPU runs when the machine resumes it
  bool irq_enabled = false;
  bool halted = false;
  uint32_t pending = 0;       // InterruptBit
  uint64_t device_irqs = 0;   // device irqs (bit n: irq n) waiting behind kIrqDevice
  uint64_t timer_deadline = 0;
  void* local = nullptr;
  void* page_table = nullptr;
  uint64_t fs_base = 0;
};

class Machine {
 public:
  struct Hooks {
    void* env = nullptr;
    void (*cpu_entry)(void* env, uint32_t cpu) = nullptr;
    // Called on the interrupted fiber with interrupts disabled.
    void (*interrupt)(void* env, uint32_t bit) = nullptr;
  };

  explicit Machine(const MachineConfig& config);
  // Changes the per-run settings (seed, strategy, plant, budget, tracing). The shape (CPUs, RAM,
  // stack size) stays: build a new machine for another shape.
  void reconfigure(const MachineConfig& config);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Runs the machine until it finishes or fails; the machine can run again afterwards.
  RunResult run(const Hooks& hooks);

  // --- used by hal/sim, on the running fiber ---
  static Machine* current() { return s_current; }
  const MachineConfig& config() const { return m_config; }
  void point(hal::Point kind);
  uint32_t cpu_id() const { return m_running; }
  SimCpu& cpu() { return m_cpus[m_running]; }
  SimCpu& cpu(uint32_t id) { return m_cpus[id]; }
  uint64_t now() const { return m_now; }
  uint64_t steps() const { return m_step; }
  void set_timer(uint64_t deadline);
  void raise(uint32_t cpu, uint32_t bit);
  void irq_enable();  // delivers what is pending
  void idle_wait();
  // Switches the running CPU from fiber `from` to fiber `to` (a kernel context switch).
  void switch_context(Fiber& from, Fiber& to);
  Fiber* running_fiber() { return m_cpus[m_running].current; }
  // Ends the run. Takes a C string: this never returns to the caller's frame, so a temporary
  // std::string built for the call would never be destroyed.
  [[noreturn]] void fail(Outcome outcome, const char* message);
  void shutdown(int status);
  void console(const char* bytes, size_t length) { m_console.append(bytes, length); }
  Rng& rng() { return m_rng; }
  StackPool& stacks() { return *m_stacks; }
  uint32_t register_fiber(Fiber& fiber, const char* name);
  void name_fiber(Fiber& fiber, const char* name);
  void note(TraceEvent::Kind kind, uint64_t detail);

  // RAM: page frames at physical addresses [kRamBase, kRamBase + ram_bytes).
  static constexpr uint64_t kRamBase = 0x100000;
  uint64_t alloc_page();
  void free_page(uint64_t phys);
  void* phys_to_virt(uint64_t phys) { return m_ram + (phys - kRamBase); }
  bool is_ram(uint64_t phys) const { return phys >= kRamBase && phys < kRamBase + m_config.ram_bytes; }
  size_t pages_in_use() const { return m_pages_in_use; }
  // Bumped each time a page is freed: a reference taken at one generation is stale at another.
  uint32_t page_generation(uint64_t phys) const { return m_generation[(phys - kRamBase) / hal::kPageSize]; }

  // An external event source outside the CPUs (the simulated network: sim/netpeer/wire.h), on
  // virtual time. `advance(arg, now)` runs at the first scheduling point at or after its
  // deadline (or when every CPU halts, after time jumps to it) and returns its next deadline (0:
  // none). It may raise interrupts (an MSI) but must not reach a scheduling point. Set before
  // run(); run() ends with it cleared.
  void set_external(uint64_t (*advance)(void* arg, uint64_t now), void* arg) {
    m_external = advance, m_external_arg = arg, m_external_deadline = 0;
  }
  // Brings the external source's deadline forward to `deadline` (now, when it has work at once).
  void external_due(uint64_t deadline) {
    if (deadline == 0) deadline = 1;
    if (m_external_deadline == 0 || deadline < m_external_deadline) m_external_deadline = deadline;
  }

  // Run-end hook for hal/sim to release what it created during the run.
  void set_cleanup(void (*cleanup)(void*), void* arg) { m_cleanup = cleanup; m_cleanup_arg = arg; }

 private:
  static void cpu_boot(void* arg);
  void deliver(SimCpu& c);
  void reschedule(bool spinning);
  void switch_cpu(uint32_t next);
  uint64_t enabled_mask();
  bool wake_due_timers();
  [[noreturn]] void finish();
  void record(Decision::Kind kind, uint32_t cpu);
  void trace_run();

  static thread_local Machine* s_current;

  MachineConfig m_config;
  std::unique_ptr<Strategy> m_strategy;
  std::unique_ptr<StackPool> m_stacks;
  std::vector<SimCpu> m_cpus;
  Hooks m_hooks;
  Fiber m_main;
  uint32_t m_running = 0;
  uint64_t m_step = 0;
  uint64_t m_last_pick_step = ~0ull;
  uint64_t m_now = 0;
  uint64_t m_earliest_deadline = 0;  // 0: none armed
  uint64_t m_awake = 0;              // CPUs not halted
  Rng m_rng;
  RunResult m_result;
  bool m_shutdown = false;
  bool m_finished = false;
  std::string m_console;
  // RAM
  uint8_t* m_ram = nullptr;
  uint64_t m_ram_next = 0;
  std::vector<uint64_t> m_free_pages;
  std::vector<uint32_t> m_generation;  // per page of RAM
  size_t m_pages_in_use = 0;
  void (*m_cleanup)(void*) = nullptr;
  void* m_cleanup_arg = nullptr;
  uint32_t m_fiber_ids = 0;
  uint64_t (*m_external)(void*, uint64_t) = nullptr;
  void* m_external_arg = nullptr;
  uint64_t m_external_deadline = 0;  // 0: none
  void run_external();
};

}  // namespace sim
