// The harness: puts a fresh kernel instance on a simulated machine, starts a scenario's user
// program as PID 1, runs one schedule and checks what must hold afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/cpus/machine.h"

namespace sim {

struct PeerPlan;

struct Scenario {
  const char* name;
  const char* summary;
  uint64_t entry;  // the main thread's entry point (register_entry)
  // Checks the arguments; returns an error message or null.
  const char* (*validate)(uint32_t threads, uint32_t iterations) = nullptr;
  // Networked scenarios: what the simulated peer does (sim/netpeer/peer.h). With it, the machine
  // gets a virtio-net card on its PCI bus wired to the peer (sim/netpeer/wire.h), the kernel
  // attaches the card before PID 1 starts, and the run also checks the peer's verdict and that
  // neither lwIP leaked anything.
  void (*net_plan)(uint32_t threads, uint32_t iterations, PeerPlan* plan) = nullptr;
};

// Scenarios register themselves at start-up.
void register_scenario(const Scenario& scenario);
const std::vector<Scenario>& scenarios();
const Scenario* find_scenario(const std::string& name);

struct Plantable {
  const char* name;
  hal::Plant plant;
  const char* summary;
  const char* scenario;  // a scenario that exercises the code the bug is planted in
};
const std::vector<Plantable>& plantable_bugs();
bool parse_plant(const std::string& name, uint8_t* plant);
const char* plant_name(uint8_t plant);

struct RunSpec {
  std::string scenario = "mutex";
  uint32_t cpus = 4;
  uint32_t threads = 4;
  uint32_t iterations = 10;
  uint64_t seed = 0;  // this schedule's own seed
  StrategyParams strategy;
  uint8_t plant = 0;
  uint64_t max_steps = 2'000'000;
  bool trace = false;
  bool spin_yield_futex = false;
  uint32_t max_threads = 0;  // 0: the build's table size
  // Networked scenarios: the wire's faults (sim/virtio/link.h's parse_link_faults syntax; ""
  // for none) and a planted wire bug for tests (NetWireConfig::silent_corruption).
  std::string net_faults;
  bool net_silent_corruption = false;
  // A cpio newc archive to mount as the read-only root, as the booted kernel mounts its
  // initramfs; empty: the usual empty tmpfs root.
  std::string root_archive;
};

// Whether the scenario named `name` uses the simulated network (one per process at a time:
// explore runs such schedules in processes, not threads).
bool is_networked(const std::string& name);

// A networked scenario's oracle: whether the guest kernel's lwIP has no TCP connection left in an
// active state (every one closed, none in LAST_ACK waiting for its final ACK). A plain read of
// lwIP's PCB list, which is safe because exactly one fiber runs at a time; scenarios use it to
// wait until the guest is quiet before PID 1 exits.
bool guest_tcp_idle();

// The user program's memory: one data region at a fixed address, passed to the main thread in
// rdx (size in rcx); threads and iterations arrive in rdi and rsi.
inline constexpr uint64_t kDataBase = 0x10000000;
inline constexpr uint64_t kDataSize = 4u << 20;

// Runs one schedule. Never throws; the result says what happened.
//
// A networked run that fails can leave the process's lwIP unusable for the next run (a CPU
// abandoned inside the stack lock keeps it held), so networked runs go to a child process (fork)
// unless this process was marked disposable: it then runs them itself and must stop at its first
// failure (explore's job processes do).
RunResult run_one(const RunSpec& spec);
void mark_process_disposable();

// The machine a thread reuses between schedules with the same shape (CPUs, strategy kind).
void reset_cached_machines();

}  // namespace sim
