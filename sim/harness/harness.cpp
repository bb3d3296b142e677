#include "sim/harness/harness.h"

#include <cstdio>
#include <memory>
#include <new>

#include "core/kernel.h"
#include "core/mm/address_space.h"
#include "hal/sim/sim_hal.h"

namespace sim {

namespace {

std::vector<Scenario>& scenario_registry() {
  static std::vector<Scenario> list;
  return list;
}

struct Env {
  tandem::Kernel* kernel;
  const RunSpec* spec;
  const Scenario* scenario;
};

void cpu_entry(void* env, uint32_t cpu) { kentry::cpu_main(static_cast<Env*>(env)->kernel, cpu); }
void interrupt(void*, uint32_t bit) { deliver_interrupt(bit); }

// The first thing the kernel runs (a kernel thread on CPU 0): builds PID 1's address space
// and starts the scenario's main thread in it.
void init_main(tandem::Kernel& kernel, void* arg) {
  auto* env = static_cast<Env*>(arg);
  auto space_or_error = tandem::AddressSpace::create(kernel);
  if (space_or_error.is_error()) hal::panic("init: cannot create an address space");
  tandem::AddressSpace* space = space_or_error.value();
  if (space->map_anonymous(kDataBase, kDataSize, hal::kPageRead | hal::kPageWrite, tandem::kMapPrivate).is_error())
    hal::panic("init: cannot map the data region");
  hal::UserFrame frame{};
  frame.rip = env->scenario->entry;
  frame.rsp = kDataBase + kDataSize - 64;
  frame.rdi = env->spec->threads;
  frame.rsi = env->spec->iterations;
  frame.rdx = kDataBase;
  frame.rcx = kDataSize;
  if (kernel.spawn_user(space, frame).is_error()) hal::panic("init: cannot start PID 1");
}

struct Cached {
  std::unique_ptr<Machine> machine;
  MachineConfig config;
  std::unique_ptr<uint8_t[]> kernel_storage;
};
thread_local std::unique_ptr<Cached> t_cached;

Machine& machine_for(const MachineConfig& config) {
  if (!t_cached || t_cached->config.cpus != config.cpus || t_cached->config.stack_bytes != config.stack_bytes ||
      t_cached->config.ram_bytes != config.ram_bytes) {
    t_cached = std::make_unique<Cached>();
    t_cached->machine = std::make_unique<Machine>(config);
    t_cached->kernel_storage = std::make_unique<uint8_t[]>(sizeof(tandem::Kernel) + alignof(tandem::Kernel));
  } else {
    // Same shape: only the per-run parameters change.
    t_cached->machine->reconfigure(config);
  }
  t_cached->config = config;
  return *t_cached->machine;
}

std::string describe_threads(tandem::Kernel& kernel) {
  std::string out;
  kernel.for_each_thread([&](tandem::Thread* t) {
    char line[160];
    if (t->wait_node.linked() && t->futex_bucket != nullptr) {
      std::snprintf(line, sizeof(line), "; tid %u %s on futex 0x%llx", t->tid, tandem::thread_state_name(t->state),
                    static_cast<unsigned long long>(t->futex_key.address_or_offset));
    } else {
      std::snprintf(line, sizeof(line), "; tid %u %s", t->tid, tandem::thread_state_name(t->state));
    }
    out += line;
  });
  return out;
}

}  // namespace

void register_scenario(const Scenario& scenario) { scenario_registry().push_back(scenario); }
const std::vector<Scenario>& scenarios() { return scenario_registry(); }
const Scenario* find_scenario(const std::string& name) {
  for (const Scenario& s : scenario_registry()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

const std::vector<Plantable>& plantable_bugs() {
  static const std::vector<Plantable> list = {
      {"futex-check-unlocked", hal::Plant::FutexCheckUnlocked,
       "futex wait compares the word and enqueues without holding the bucket lock (a lost wake-up)", "mutex"},
      {"futex-wake-no-lock", hal::Plant::FutexWakeNoLock,
       "futex wake decides there are no waiters without taking the bucket lock", "mutex"},
      {"lost-ipi", hal::Plant::LostIpi,
       "the idle loop checks for work with interrupts enabled, so a wake-up IPI can arrive before the halt", "mutex"},
      {"missing-shootdown", hal::Plant::MissingShootdown,
       "munmap flushes only the calling CPU's TLB: other CPUs keep translations to freed pages", "munmap"},
  };
  return list;
}

bool parse_plant(const std::string& name, uint8_t* plant) {
  if (name.empty() || name == "none") {
    *plant = 0;
    return true;
  }
  for (const Plantable& p : plantable_bugs()) {
    if (name == p.name) {
      *plant = static_cast<uint8_t>(p.plant);
      return true;
    }
  }
  return false;
}

const char* plant_name(uint8_t plant) {
  for (const Plantable& p : plantable_bugs()) {
    if (static_cast<uint8_t>(p.plant) == plant) return p.name;
  }
  return "none";
}

RunResult run_one(const RunSpec& spec) {
  const Scenario* scenario = find_scenario(spec.scenario);
  if (scenario == nullptr) {
    RunResult r;
    r.outcome = Outcome::Failed;
    r.message = "unknown scenario " + spec.scenario;
    return r;
  }
  MachineConfig config;
  config.cpus = spec.cpus;
  config.seed = spec.seed;
  config.strategy = spec.strategy;
  config.max_steps = spec.max_steps;
  config.trace = spec.trace;
  config.plant = spec.plant;
  Machine& machine = machine_for(config);

  tandem::KernelConfig kconfig;
  kconfig.cpu_count = spec.cpus;
  kconfig.max_threads = spec.max_threads != 0 ? spec.max_threads : tandem::kMaxThreads;
  kconfig.futex_mode = spec.spin_yield_futex ? tandem::FutexMode::SpinYield : tandem::FutexMode::Blocking;
  Env env{nullptr, &spec, scenario};
  kconfig.init = &init_main;
  kconfig.init_arg = &env;
  void* storage = t_cached->kernel_storage.get();
  size_t space = sizeof(tandem::Kernel) + alignof(tandem::Kernel);
  storage = std::align(alignof(tandem::Kernel), sizeof(tandem::Kernel), storage, space);
  auto* kernel = new (storage) tandem::Kernel(kconfig);
  env.kernel = kernel;

  install_hal(machine);
  Machine::Hooks hooks;
  hooks.env = &env;
  hooks.cpu_entry = &cpu_entry;
  hooks.interrupt = &interrupt;
  RunResult result = machine.run(hooks);

  // Checks after every schedule.
  auto fail = [&](Outcome outcome, const std::string& message) {
    if (result.outcome == Outcome::Finished) {
      result.outcome = outcome;
      result.message = message;
    }
  };
  if (result.outcome == Outcome::Deadlock || result.outcome == Outcome::Hang) {
    result.message += describe_threads(*kernel);
  }
  if (result.outcome == Outcome::Finished) {
    if (result.exit_status != 0) {
      char line[96];
      std::snprintf(line, sizeof(line), "PID 1 ended with wait status 0x%x", result.exit_status);
      fail(Outcome::Failed, line);
    }
    if (const char* broken = kernel->check_quiescent_invariants()) fail(Outcome::Failed, std::string("kernel invariant: ") + broken);
    if (kernel->live_threads() != 0) fail(Outcome::Failed, "leak: " + std::to_string(kernel->live_threads()) + " threads still exist" + describe_threads(*kernel));
    if (kernel->live_processes() != 0) fail(Outcome::Failed, "leak: a process still exists");
    if (kernel->futexes().queued_waiters() != 0) fail(Outcome::Failed, "leak: futex waiters still queued");
    // Idle threads' contexts are the CPUs' own; everything else the heap handed out is back.
    if (kernel->heap().live_objects() != 0) fail(Outcome::Failed, "leak: " + std::to_string(kernel->heap().live_objects()) + " kernel heap objects");
    if (machine.pages_in_use() != kernel->heap().pages_in_use())
      fail(Outcome::Failed, "leak: " + std::to_string(machine.pages_in_use() - kernel->heap().pages_in_use()) + " physical pages");
  }
  kernel->~Kernel();
  return result;
}

void reset_cached_machines() { t_cached.reset(); }

}  // namespace sim
