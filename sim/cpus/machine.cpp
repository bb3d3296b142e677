#include "sim/cpus/machine.h"

#include <pthread.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace sim {

thread_local Machine* Machine::s_current = nullptr;
thread_local hal::u8 g_planted = 0;

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::Finished: return "finished";
    case Outcome::Deadlock: return "deadlock";
    case Outcome::Hang: return "hang";
    case Outcome::Panic: return "panic";
    case Outcome::Failed: return "failed";
  }
  return "?";
}

namespace {
size_t default_stack_bytes() {
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
  return size_t{512} << 10;
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
  return size_t{512} << 10;
#endif
  return size_t{128} << 10;
}
}  // namespace

Machine::Machine(const MachineConfig& config) : m_config(config) {
  if (m_config.cpus < 1 || m_config.cpus > hal::kMaxCpus) {
    std::fprintf(stderr, "sim: %u CPUs: the simulator supports 1 to %u\n", m_config.cpus, hal::kMaxCpus);
    std::abort();
  }
  m_strategy = make_strategy(m_config.strategy);
  m_stacks = std::make_unique<StackPool>(m_config.stack_bytes != 0 ? m_config.stack_bytes : default_stack_bytes());
  m_cpus.resize(m_config.cpus);
  void* ram = mmap(nullptr, m_config.ram_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) {
    std::perror("sim: reserving simulated RAM");
    std::abort();
  }
  m_ram = static_cast<uint8_t*>(ram);
  m_generation.assign(m_config.ram_bytes / hal::kPageSize, 0);
  // The host thread's own stack, for AddressSanitizer's fiber bookkeeping.
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* base = nullptr;
    size_t size = 0;
    pthread_attr_getstack(&attr, &base, &size);
    m_main.stack = base;
    m_main.stack_size = size;
    pthread_attr_destroy(&attr);
  }
}

void Machine::reconfigure(const MachineConfig& config) {
  const size_t stack_bytes = m_config.stack_bytes;
  const size_t ram_bytes = m_config.ram_bytes;
  const uint32_t cpus = m_config.cpus;
  m_config = config;
  m_config.stack_bytes = stack_bytes;
  m_config.ram_bytes = ram_bytes;
  m_config.cpus = cpus;
  m_strategy = make_strategy(m_config.strategy);
}

Machine::~Machine() {
  munmap(m_ram, m_config.ram_bytes);
}

uint32_t Machine::register_fiber(Fiber& fiber, const char* name) {
  fiber.trace_id = m_fiber_ids++;
  fiber.name = name;
  if (m_config.trace) m_result.fiber_names.emplace_back(name != nullptr ? name : "?");
  return fiber.trace_id;
}

void Machine::name_fiber(Fiber& fiber, const char* name) {
  fiber.name = name;
  if (m_config.trace && fiber.trace_id < m_result.fiber_names.size()) m_result.fiber_names[fiber.trace_id] = name;
}

void Machine::note(TraceEvent::Kind kind, uint64_t detail) {
  if (!m_config.trace) return;
  SimCpu& c = cpu();
  m_result.trace.push_back(TraceEvent{m_step, m_now, c.id, kind, c.current->trace_id, detail});
}

void Machine::trace_run() { note(TraceEvent::Run, 0); }

RunResult Machine::run(const Hooks& hooks) {
  s_current = this;
  g_planted = m_config.plant;
  m_hooks = hooks;
  m_result = RunResult{};
  m_step = 0;
  m_last_pick_step = ~0ull;
  m_now = 0;
  m_earliest_deadline = 0;
  m_shutdown = false;
  m_finished = false;
  m_console.clear();
  m_ram_next = 0;
  m_free_pages.clear();
  m_pages_in_use = 0;
  m_fiber_ids = 0;
  m_rng.reseed(mix_seed(m_config.seed, 0x5eedull));
  m_strategy->begin(m_config.seed, m_config.cpus);
  m_awake = m_config.cpus == 64 ? ~0ull : ((1ull << m_config.cpus) - 1);
  for (uint32_t i = 0; i < m_config.cpus; ++i) {
    SimCpu& c = m_cpus[i];
    c = SimCpu{};
    c.id = i;
    c.boot.stack = m_stacks->take();
    c.boot.stack_size = m_stacks->stack_size();
    c.boot.body = &Machine::cpu_boot;
    c.boot.arg = &c;
    fiber_prepare(c.boot);
    register_fiber(c.boot, nullptr);
    c.current = &c.boot;
  }
  if (m_config.trace) {
    for (uint32_t i = 0; i < m_config.cpus; ++i) m_result.fiber_names[i] = "cpu" + std::to_string(i) + " idle";
  }
  m_running = m_strategy->pick(0, 0, m_awake);
  if (m_running != 0) record(Decision::Switch, m_running);
  trace_run();
  fiber_switch(m_main, *m_cpus[m_running].current);

  // The run is over: every fiber is abandoned where it stood.
  m_external = nullptr;
  m_external_arg = nullptr;
  m_external_deadline = 0;
  if (m_cleanup != nullptr) m_cleanup(m_cleanup_arg);
  for (SimCpu& c : m_cpus) m_stacks->give(c.boot.stack);
  m_result.steps = m_step;
  m_result.virtual_ns = m_now;
  m_result.console = m_console;
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  // Field by field: the struct's padding bytes are not part of the trace.
  for (const Decision& d : m_result.decisions) {
    const uint64_t packed[2] = {d.step, (static_cast<uint64_t>(d.cpu) << 8) | d.kind};
    XXH3_64bits_update(state, packed, sizeof(packed));
  }
  XXH3_64bits_update(state, &m_step, sizeof(m_step));
  const uint8_t outcome = static_cast<uint8_t>(m_result.outcome);
  XXH3_64bits_update(state, &outcome, 1);
  m_result.trace_hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  s_current = nullptr;
  g_planted = 0;
  return std::move(m_result);
}

void Machine::cpu_boot(void* arg) {
  auto* c = static_cast<SimCpu*>(arg);
  Machine* m = s_current;
  m->m_hooks.cpu_entry(m->m_hooks.env, c->id);
  m->fail(Outcome::Panic, "a CPU's boot code returned");
}

void Machine::record(Decision::Kind kind, uint32_t cpu) {
  m_result.decisions.push_back(Decision{m_step, cpu, kind});
}

void Machine::point(hal::Point kind) {
  ++m_step;
  m_now += m_config.step_ns;
  if (m_step > m_config.max_steps) {
    char message[160];
    std::snprintf(message, sizeof(message),
                  "no end after %llu scheduling points (a livelock, or a wait that never ends on a busy CPU)",
                  static_cast<unsigned long long>(m_config.max_steps));
    fail(Outcome::Hang, message);
  }
  if (m_earliest_deadline != 0 && m_now >= m_earliest_deadline) wake_due_timers();
  if (m_external_deadline != 0 && m_now >= m_external_deadline) run_external();
  SimCpu* c = &cpu();
  if (c->irq_enabled) {
    if (c->timer_deadline != 0 && m_strategy->early_timer(m_step, m_running)) {
      record(Decision::EarlyTimer, m_running);
      m_now = std::max(m_now, c->timer_deadline);
      wake_due_timers();
    }
    if (c->pending != 0) deliver(*c);
  }
  const bool spinning = kind == hal::Point::Relax;
  if (spinning) m_strategy->spinning(m_running);
  reschedule(spinning);
}

void Machine::deliver(SimCpu& first) {
  SimCpu* c = &first;
  while (c->irq_enabled && c->pending != 0) {
    const uint32_t bit = c->pending & (0u - c->pending);
    c->pending &= ~bit;
    c->irq_enabled = false;
    note(TraceEvent::Interrupt, bit);
    m_hooks.interrupt(m_hooks.env, bit);
    // The handler may have switched threads and come back on another CPU; the return from
    // the interrupt re-enables interrupts wherever it runs, as iret does.
    c = &cpu();
    c->irq_enabled = true;
  }
}

bool Machine::wake_due_timers() {
  bool any = false;
  uint64_t earliest = 0;
  for (SimCpu& c : m_cpus) {
    if (c.timer_deadline == 0) continue;
    if (m_now >= c.timer_deadline) {
      c.timer_deadline = 0;
      c.pending |= kIrqTimer;
      if (c.halted) {
        c.halted = false;
        m_awake |= 1ull << c.id;
      }
      any = true;
    } else if (earliest == 0 || c.timer_deadline < earliest) {
      earliest = c.timer_deadline;
    }
  }
  m_earliest_deadline = earliest;
  return any;
}

void Machine::run_external() {
  m_external_deadline = 0;
  if (m_external == nullptr) return;
  const uint64_t next = m_external(m_external_arg, m_now);
  // A deadline in the past runs at the next point; one event may have queued another meanwhile.
  if (next != 0) external_due(next);
}

void Machine::set_timer(uint64_t deadline) {
  cpu().timer_deadline = deadline;
  uint64_t earliest = 0;
  for (SimCpu& c : m_cpus) {
    if (c.timer_deadline != 0 && (earliest == 0 || c.timer_deadline < earliest)) earliest = c.timer_deadline;
  }
  m_earliest_deadline = earliest;
}

void Machine::raise(uint32_t target, uint32_t bit) {
  SimCpu& c = m_cpus[target];
  c.pending |= bit;
  if (c.halted) {
    c.halted = false;
    m_awake |= 1ull << target;
  }
}

void Machine::irq_enable() {
  SimCpu& c = cpu();
  c.irq_enabled = true;
  if (c.pending != 0) deliver(c);
}

void Machine::reschedule(bool spinning) {
  uint64_t mask = m_awake;
  while (mask == 0) {
    // Every CPU is halted: jump to the next timer or external event, or stop.
    if (m_shutdown && m_config.end_idle_after_shutdown) {
      m_result.outcome = Outcome::Finished;
      finish();
    }
    if (m_earliest_deadline == 0 && m_external_deadline == 0) {
      if (m_shutdown) {
        m_result.outcome = Outcome::Finished;
        finish();
      }
      fail(Outcome::Deadlock, "every CPU is halted with no timer armed and no interrupt pending: the remaining threads wait forever");
    }
    const bool external_first =
        m_external_deadline != 0 && (m_earliest_deadline == 0 || m_external_deadline < m_earliest_deadline);
    if (external_first) {
      m_now = std::max(m_now, m_external_deadline);
      run_external();
    } else {
      m_now = std::max(m_now, m_earliest_deadline);
      wake_due_timers();
    }
    mask = m_awake;
  }
  // Every choice of CPU gets a step of its own, so (step, CPU) decisions are unambiguous for
  // replay even where one scheduling point leads to a second choice (an interrupt handler that
  // switched threads returns into the point that delivered it).
  if (m_step == m_last_pick_step) {
    ++m_step;
    m_now += m_config.step_ns;
  }
  m_last_pick_step = m_step;
  const bool can_stay = (mask >> m_running) & 1;
  const uint32_t next = spinning && can_stay ? m_strategy->pick_after_spin(m_step, m_running, mask)
                                             : m_strategy->pick(m_step, m_running, mask);
  if (next != m_running) {
    record(Decision::Switch, next);
    switch_cpu(next);
  } else if (spinning) {
    // Replay would move on from a spinner by default: record that we did not.
    record(Decision::Stay, next);
  }
}

void Machine::switch_cpu(uint32_t next) {
  Fiber& from = *m_cpus[m_running].current;
  m_running = next;
  Fiber& to = *m_cpus[next].current;
  trace_run();
  if (&from != &to) fiber_switch(from, to);
}

void Machine::idle_wait() {
  SimCpu& c = cpu();
  c.irq_enabled = true;
  if (c.pending != 0) {
    deliver(c);
    cpu().irq_enabled = false;
    return;
  }
  c.halted = true;
  m_awake &= ~(1ull << c.id);
  note(TraceEvent::Halt, 0);
  // Halting is a scheduling point of its own, so every step has at most one choice of CPU
  // and a recording of (step, CPU) pairs is unambiguous.
  ++m_step;
  m_now += m_config.step_ns;
  reschedule(false);
  // Resumed: something woke this CPU.
  SimCpu& self = cpu();
  self.halted = false;
  note(TraceEvent::Wake, self.pending);
  deliver(self);
  self.irq_enabled = false;
}

void Machine::switch_context(Fiber& from, Fiber& to) {
  SimCpu& c = cpu();
  c.current = &to;
  from.fs_base = c.fs_base;
  c.fs_base = to.fs_base;
  trace_run();
  fiber_switch(from, to);
}

void Machine::shutdown(int status) {
  m_shutdown = true;
  m_result.exit_status = status;
}

void Machine::fail(Outcome outcome, const char* message) {
  if (m_result.message.empty()) {
    m_result.outcome = outcome;
    m_result.message = message;
  }
  finish();
}

void Machine::finish() {
  m_finished = true;
  fiber_switch(*m_cpus[m_running].current, m_main);
  std::fprintf(stderr, "sim: a finished run was resumed\n");
  std::abort();
}

uint64_t Machine::alloc_page() {
  uint64_t phys;
  if (!m_free_pages.empty()) {
    phys = m_free_pages.back();
    m_free_pages.pop_back();
  } else {
    if (m_ram_next + hal::kPageSize > m_config.ram_bytes) return 0;
    phys = kRamBase + m_ram_next;
    m_ram_next += hal::kPageSize;
  }
  ++m_pages_in_use;
  return phys;
}

void Machine::free_page(uint64_t phys) {
  if (!is_ram(phys) || (phys % hal::kPageSize) != 0) fail(Outcome::Panic, "freeing a physical page that is not RAM");
  --m_pages_in_use;
  ++m_generation[(phys - kRamBase) / hal::kPageSize];
  m_free_pages.push_back(phys);
}

}  // namespace sim
