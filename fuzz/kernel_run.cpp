#include "fuzz/kernel_run.h"

#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "core/mm/address_space.h"
#include "core/proc/signals.h"
#include "hal/sim/sim_hal.h"
#include "sim/cpus/machine.h"

namespace fuzz {

namespace {

// The fuzz targets use at most this many CPUs; each count keeps its machine for the process's
// life (RAM is reserved, not committed, and fiber stacks are reused).
constexpr uint32_t kMaxFuzzCpus = 8;

struct Cached {
  std::unique_ptr<sim::Machine> machine;
  // Raw storage for the kernel: `new uint8_t[]` without value-initialization, so the large
  // thread table is not zeroed (and faulted in) on every machine creation.
  std::unique_ptr<uint8_t[]> kernel_storage;
};
Cached g_cached[kMaxFuzzCpus + 1];

struct Env {
  tandem::Kernel* kernel;
};

void cpu_entry(void* env, uint32_t cpu) { kentry::cpu_main(static_cast<Env*>(env)->kernel, cpu); }
void interrupt(void*, uint32_t bit) { sim::deliver_interrupt(bit); }

sim::Machine& machine_for(const sim::MachineConfig& config) {
  Cached& c = g_cached[config.cpus];
  if (!c.machine) {
    c.machine = std::make_unique<sim::Machine>(config);
    c.kernel_storage.reset(new uint8_t[sizeof(tandem::Kernel) + alignof(tandem::Kernel)]);
  } else {
    c.machine->reconfigure(config);
  }
  return *c.machine;
}

std::string describe_threads(tandem::Kernel& kernel) {
  std::string out;
  kernel.for_each_thread([&](tandem::Thread* t) {
    char line[96];
    std::snprintf(line, sizeof(line), "; tid %u %s", t->tid, tandem::thread_state_name(t->state));
    out += line;
  });
  return out;
}

}  // namespace

sim::RunResult run_kernel(const KernelRun& run) {
  if (run.cpus < 1 || run.cpus > kMaxFuzzCpus) {
    std::fprintf(stderr, "fuzz: %u CPUs: targets use 1 to %u\n", run.cpus, kMaxFuzzCpus);
    __builtin_trap();
  }
  sim::MachineConfig config;
  config.cpus = run.cpus;
  config.seed = run.seed;
  config.strategy = run.strategy;
  config.max_steps = run.max_steps;
  sim::Machine& machine = machine_for(config);

  tandem::KernelConfig kconfig;
  kconfig.cpu_count = run.cpus;
  kconfig.max_threads = run.max_threads != 0 ? run.max_threads : tandem::kMaxThreads;
  kconfig.init = run.init;
  kconfig.init_arg = run.init_arg;
  void* storage = g_cached[run.cpus].kernel_storage.get();
  size_t space = sizeof(tandem::Kernel) + alignof(tandem::Kernel);
  storage = std::align(alignof(tandem::Kernel), sizeof(tandem::Kernel), storage, space);
  auto* kernel = new (storage) tandem::Kernel(kconfig);
  Env env{kernel};

  sim::install_hal(machine);
  sim::Machine::Hooks hooks;
  hooks.env = &env;
  hooks.cpu_entry = &cpu_entry;
  hooks.interrupt = &interrupt;
  sim::RunResult result = machine.run(hooks);

  // The same checks as sim::run_one (sim/harness/harness.cpp), in the same order.
  auto fail = [&](sim::Outcome outcome, const std::string& message) {
    if (result.outcome == sim::Outcome::Finished) {
      result.outcome = outcome;
      result.message = message;
    }
  };
  if (result.outcome == sim::Outcome::Deadlock || result.outcome == sim::Outcome::Hang) {
    result.message += describe_threads(*kernel);
  }
  if (result.outcome == sim::Outcome::Finished) {
    if (result.exit_status != 0) {
      char line[96];
      std::snprintf(line, sizeof(line), "PID 1 ended with wait status 0x%x", result.exit_status);
      fail(sim::Outcome::Failed, line);
    }
    if (const char* broken = kernel->check_quiescent_invariants())
      fail(sim::Outcome::Failed, std::string("kernel invariant: ") + broken);
    if (kernel->live_threads() != 0)
      fail(sim::Outcome::Failed, "leak: " + std::to_string(kernel->live_threads()) + " threads still exist" +
                                     describe_threads(*kernel));
    if (kernel->live_processes() != 0) fail(sim::Outcome::Failed, "leak: a process still exists");
    if (kernel->futexes().queued_waiters() != 0) fail(sim::Outcome::Failed, "leak: futex waiters still queued");
    if (kernel->heap().live_objects() != 0)
      fail(sim::Outcome::Failed, "leak: " + std::to_string(kernel->heap().live_objects()) + " kernel heap objects");
    if (machine.pages_in_use() != kernel->heap().pages_in_use())
      fail(sim::Outcome::Failed, "leak: " + std::to_string(machine.pages_in_use() - kernel->heap().pages_in_use()) +
                                     " physical pages");
  }
  kernel->~Kernel();
  return result;
}

void start_pid1(tandem::Kernel& kernel, uint64_t entry, uint64_t threads, uint64_t iterations, uint64_t data_size,
                uint64_t file_size_limit) {
  auto space_or_error = tandem::AddressSpace::create(kernel);
  if (space_or_error.is_error()) hal::panic("fuzz init: cannot create an address space");
  tandem::AddressSpace* space = space_or_error.value();
  if (space->map_anonymous(sim::kDataBase, data_size, hal::kPageRead | hal::kPageWrite, tandem::kMapPrivate)
          .is_error())
    hal::panic("fuzz init: cannot map the data region");
  hal::UserFrame frame{};
  frame.rip = entry;
  frame.rsp = sim::kDataBase + data_size - 64;
  frame.rdi = threads;
  frame.rsi = iterations;
  frame.rdx = sim::kDataBase;
  frame.rcx = data_size;
  auto process_or_error = kernel.create_user_process(space, frame);
  if (process_or_error.is_error()) hal::panic("fuzz init: cannot start PID 1");
  tandem::Process* process = process_or_error.value();
  if (file_size_limit != ~0ull) {
    // Nobody else can reach the process before it starts: plain writes, no scheduling point.
    process->rlimits[1] = tandem::Process::Rlimit{file_size_limit, file_size_limit};  // RLIMIT_FSIZE
    process->signal_actions.actions[tandem::sig::kSigxfsz - 1].handler = 1;            // SIG_IGN
  }
  kernel.start_user_process(process);
}

}  // namespace fuzz
