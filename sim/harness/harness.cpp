#include "sim/harness/harness.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "core/fs/cpio.h"
#include "core/kernel.h"
#include "core/mm/address_space.h"
#include "core/net/netdev.h"
#include "core/net/stack.h"
#include "hal/sim/sim_hal.h"
#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "sim/netpeer/wire.h"
#include "sim/virtio/net_device.h"

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
  // Networked runs: what the card and the stack hold once attached (they stay until the kernel
  // instance is thrown away), so the leak checks count only what the scenario left.
  bool networked = false;
  size_t net_heap_objects = 0;
  size_t net_pages = 0;
};

// The guest's card: QEMU's default MAC, in the slot the virtio tests use.
constexpr uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr uint32_t kNetSlot = 3;

void cpu_entry(void* env, uint32_t cpu) { kentry::cpu_main(static_cast<Env*>(env)->kernel, cpu); }
void interrupt(void*, uint32_t bit) { deliver_interrupt(bit); }

// The first thing the kernel runs (a kernel thread on CPU 0): builds PID 1's address space
// and starts the scenario's main thread in it.
void init_main(tandem::Kernel& kernel, void* arg) {
  auto* env = static_cast<Env*>(arg);
  if (env->networked) {
    // As boot_init does on hardware: the card becomes lwIP's interface, 10.0.2.15/24 via 10.0.2.2.
    tandem::NetDevice* nic = tandem::netdev_probe(kernel);
    if (nic == nullptr) hal::panic("init: the simulated virtio-net card was not found");
    if (tandem::net_stack_attach_device(kernel, *nic, tandem::NetConfig{}).is_error()) hal::panic("init: the card cannot join the stack");
    env->net_heap_objects = kernel.heap().live_objects();
    env->net_pages = Machine::current()->pages_in_use() - kernel.heap().pages_in_use();
  }
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

namespace {

bool g_disposable = false;

// RunResult through a pipe (run_isolated).
template <typename T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}
void put_string(std::string& out, const std::string& text) {
  put<uint64_t>(out, text.size());
  out += text;
}
template <typename T>
void put_vector(std::string& out, const std::vector<T>& items) {
  put<uint64_t>(out, items.size());
  if (!items.empty()) out.append(reinterpret_cast<const char*>(items.data()), items.size() * sizeof(T));
}
struct Reader {
  const std::string& in;
  size_t at = 0;
  bool ok = true;
  template <typename T>
  T get() {
    T value{};
    if (at + sizeof(T) > in.size()) {
      ok = false;
      return value;
    }
    std::memcpy(&value, in.data() + at, sizeof(T));
    at += sizeof(T);
    return value;
  }
  std::string get_string() {
    const uint64_t n = get<uint64_t>();
    if (!ok || at + n > in.size()) {
      ok = false;
      return {};
    }
    std::string text = in.substr(at, n);
    at += n;
    return text;
  }
  template <typename T>
  std::vector<T> get_vector() {
    const uint64_t n = get<uint64_t>();
    if (!ok || n > (in.size() - at) / sizeof(T)) {
      ok = false;
      return {};
    }
    std::vector<T> items(n);
    if (n != 0) std::memcpy(items.data(), in.data() + at, n * sizeof(T));
    at += n * sizeof(T);
    return items;
  }
};

std::string serialize(const RunResult& r) {
  std::string out;
  put(out, r.outcome);
  put_string(out, r.message);
  put(out, r.steps);
  put(out, r.virtual_ns);
  put(out, r.exit_status);
  put_vector(out, r.decisions);
  put(out, r.trace_hash);
  put_vector(out, r.trace);
  put<uint64_t>(out, r.fiber_names.size());
  for (const std::string& name : r.fiber_names) put_string(out, name);
  put_string(out, r.console);
  return out;
}

bool deserialize(const std::string& in, RunResult* r) {
  Reader read{in};
  r->outcome = read.get<Outcome>();
  r->message = read.get_string();
  r->steps = read.get<uint64_t>();
  r->virtual_ns = read.get<uint64_t>();
  r->exit_status = read.get<int>();
  r->decisions = read.get_vector<Decision>();
  r->trace_hash = read.get<uint64_t>();
  r->trace = read.get_vector<TraceEvent>();
  const uint64_t names = read.get<uint64_t>();
  for (uint64_t i = 0; read.ok && i < names; ++i) r->fiber_names.push_back(read.get_string());
  r->console = read.get_string();
  return read.ok && read.at == in.size();
}

RunResult run_isolated(const RunSpec& spec) {
  RunResult failed;
  failed.outcome = Outcome::Panic;
  int p[2];
  if (pipe(p) != 0) {
    failed.message = "cannot create a pipe for the run's process";
    return failed;
  }
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    failed.message = "cannot fork the run's process";
    return failed;
  }
  if (pid == 0) {
    close(p[0]);
    g_disposable = true;
    const std::string bytes = serialize(run_one(spec));
    for (size_t at = 0; at < bytes.size();) {
      const ssize_t n = write(p[1], bytes.data() + at, bytes.size() - at);
      if (n <= 0) _exit(2);
      at += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(p[1]);
  std::string bytes;
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(p[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  RunResult r;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !deserialize(bytes, &r)) {
    char line[128];
    std::snprintf(line, sizeof(line), "the run's process died (wait status 0x%x) before it reported", status);
    failed.message = line;
    return failed;
  }
  return r;
}

std::string describe_link(const Link& link) {
  const Link::Stats& s = link.stats();
  char line[160];
  std::snprintf(line, sizeof(line), "%llu frames, %llu dropped, %llu duplicated, %llu reordered, %llu corrupted",
                static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.dropped),
                static_cast<unsigned long long>(s.duplicated), static_cast<unsigned long long>(s.reordered),
                static_cast<unsigned long long>(s.corrupted));
  return line;
}

}  // namespace

void mark_process_disposable() { g_disposable = true; }

void register_scenario(const Scenario& scenario) { scenario_registry().push_back(scenario); }
const std::vector<Scenario>& scenarios() { return scenario_registry(); }
bool guest_tcp_idle() { return tcp_active_pcbs == nullptr; }

bool is_networked(const std::string& name) {
  const Scenario* s = find_scenario(name);
  return s != nullptr && s->net_plan != nullptr;
}

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
  const bool networked = scenario->net_plan != nullptr;
  if (networked && !g_disposable) return run_isolated(spec);
  config.end_idle_after_shutdown = networked;
  NetWireConfig wire_config;
  if (networked) {
    const std::string bad = parse_link_faults(spec.net_faults, &wire_config.faults);
    if (!bad.empty()) {
      RunResult r;
      r.outcome = Outcome::Failed;
      r.message = "bad network faults: " + bad;
      return r;
    }
    scenario->net_plan(spec.threads, spec.iterations, &wire_config.plan);
    wire_config.seed = spec.seed;
    wire_config.silent_corruption = spec.net_silent_corruption;
  }
  tandem::CpioFs root_archive;
  if (!spec.root_archive.empty()) {
    tandem::CpioError error;
    if (root_archive.mount(reinterpret_cast<const uint8_t*>(spec.root_archive.data()), spec.root_archive.size(), &error)
            .is_error()) {
      RunResult r;
      r.outcome = Outcome::Failed;
      r.message = "bad root archive at byte " + std::to_string(error.offset) + ": " + error.reason;
      return r;
    }
  }
  Machine& machine = machine_for(config);

  tandem::KernelConfig kconfig;
  kconfig.cpu_count = spec.cpus;
  kconfig.max_threads = spec.max_threads != 0 ? spec.max_threads : tandem::kMaxThreads;
  kconfig.futex_mode = spec.spin_yield_futex ? tandem::FutexMode::SpinYield : tandem::FutexMode::Blocking;
  Env env{nullptr, &spec, scenario};
  env.networked = networked;
  kconfig.init = &init_main;
  kconfig.init_arg = &env;
  void* storage = t_cached->kernel_storage.get();
  size_t space = sizeof(tandem::Kernel) + alignof(tandem::Kernel);
  storage = std::align(alignof(tandem::Kernel), sizeof(tandem::Kernel), storage, space);
  auto* kernel = new (storage) tandem::Kernel(kconfig);
  env.kernel = kernel;
  if (root_archive.mounted()) kernel->root_archive = &root_archive;

  install_hal(machine);
  std::unique_ptr<VirtioNetDevice> device;
  std::unique_ptr<NetWire> wire;
  if (networked) {
    device = std::make_unique<VirtioNetDevice>(kGuestMac);
    pci_plug(kNetSlot, device.get());
    wire = std::make_unique<NetWire>(machine, *device, wire_config);
    set_current_wire(wire.get());
  }
  Machine::Hooks hooks;
  hooks.env = &env;
  hooks.cpu_entry = &cpu_entry;
  hooks.interrupt = &interrupt;
  RunResult result = machine.run(hooks);
  set_current_wire(nullptr);

  // Checks after every schedule.
  auto fail = [&](Outcome outcome, const std::string& message) {
    if (result.outcome == Outcome::Finished) {
      result.outcome = outcome;
      result.message = message;
    }
  };
  if (result.outcome == Outcome::Deadlock || result.outcome == Outcome::Hang) {
    result.message += describe_threads(*kernel);
    if (networked) result.message += "; network: " + wire->peer().summary();
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
    if (kernel->heap().live_objects() != env.net_heap_objects)
      fail(Outcome::Failed, "leak: " + std::to_string(kernel->heap().live_objects() - env.net_heap_objects) + " kernel heap objects");
    if (machine.pages_in_use() != kernel->heap().pages_in_use() + env.net_pages)
      fail(Outcome::Failed, "leak: " + std::to_string(machine.pages_in_use() - kernel->heap().pages_in_use() - env.net_pages) + " physical pages");
  }
  if (networked && std::getenv("TANDEM_NET_VERBOSE") != nullptr) {
    std::fprintf(stderr, "net: seed %llu: %s, %llu steps, %.3f s virtual; %s; to the peer: %s; to the guest: %s; card full %llu times\n",
                 static_cast<unsigned long long>(spec.seed), outcome_name(result.outcome),
                 static_cast<unsigned long long>(result.steps), result.virtual_ns / 1e9, wire->peer().summary().c_str(),
                 describe_link(wire->to_peer()).c_str(), describe_link(wire->to_guest()).c_str(),
                 static_cast<unsigned long long>(wire->refused_by_card()));
  }
  if (networked && result.outcome == Outcome::Finished) {
    NetPeer& peer = wire->peer();
    if (!peer.failure().empty()) fail(Outcome::Failed, peer.failure());
    if (!peer.done()) fail(Outcome::Failed, "the peer did not finish: " + peer.summary());
    const std::string peer_leak = peer.leak_check();
    if (!peer_leak.empty()) fail(Outcome::Failed, peer_leak);
  }
  kernel->~Kernel();
  if (networked) {
    // The guest's lwIP as ~Kernel found it (core/net/stack.h): no PCB, no pbuf, no heap left.
    const tandem::NetRunReport report = tandem::net_last_run_report();
    if (result.outcome == Outcome::Finished && report.valid) {
      const tandem::NetMemoryStats& m = report.memory;
      std::string leak;
      if (m.tcp_pcbs != 0) leak += std::to_string(m.tcp_pcbs) + " TCP PCBs; ";
      if (m.heap_used != 0) leak += std::to_string(m.heap_used) + " heap bytes; ";
      for (uint32_t i = 0; i < m.pool_count && i < MEMP_MAX; ++i) {
        if (i == MEMP_SYS_TIMEOUT || i == MEMP_TCP_PCB || i == MEMP_TCP_PCB_LISTEN) continue;  // timers; PCBs above
        if (m.pool_used[i] != 0) leak += std::to_string(m.pool_used[i]) + " of pool " + std::to_string(i) + "; ";
      }
      if (!leak.empty()) fail(Outcome::Failed, "guest lwIP leak: " + leak);
    }
    wire.reset();
    pci_unplug(kNetSlot);
  }
  return result;
}

void reset_cached_machines() { t_cached.reset(); }

}  // namespace sim
