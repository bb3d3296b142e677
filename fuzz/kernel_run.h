// Runs one fresh kernel on a simulated machine for a fuzz target, with the target's own init
// function (a kernel thread on CPU 0, as PID 1's builder is on hardware) and the same
// post-run checks as sim::run_one: kernel invariants, no threads, processes, futex waiters,
// heap objects or physical pages left behind.
//
// Why not sim::run_one: it caches one machine per host thread and builds a new one (fresh fiber
// stacks and RAM, every page faulted in again) whenever the CPU count changes, and fuzz inputs
// change it on almost every execution; that rebuild was 85% of syscall_seq's time. Here every
// CPU count keeps its own machine. It also lets a target choose what init does (elf_load loads
// the input as PID 1's image). The proposal to the simulator's owner is to give run_one a
// per-shape cache and an init hook, after which this file shrinks to a call.
#pragma once

#include <cstdint>

#include "core/kernel.h"
#include "sim/harness/harness.h"

namespace fuzz {

struct KernelRun {
  uint32_t cpus = 1;
  uint64_t seed = 0;
  sim::StrategyParams strategy;
  uint64_t max_steps = 200'000;
  uint32_t max_threads = 0;  // 0: the build's table size
  // Builds PID 1 (and anything else the target wants done in kernel mode). Must leave a
  // process whose exit ends the run, or the run deadlocks.
  void (*init)(tandem::Kernel& kernel, void* arg) = nullptr;
  void* init_arg = nullptr;
};

// Runs the kernel to the end and checks it; never throws.
sim::RunResult run_kernel(const KernelRun& run);

// What sim::run_one's init does for a scenario: PID 1 in a fresh address space with the data
// region mapped at sim::kDataBase (data_size bytes, sim::kDataSize as scenarios have it),
// entering `entry` with rdi = threads, rsi = iterations, rdx = data base and rcx = data size.
// Panics (a crash) when the kernel cannot do it. A file_size_limit other than ~0 becomes PID 1's
// RLIMIT_FSIZE (soft and hard) with SIGXFSZ ignored, so growing a file past it is EFBIG; it is
// set before PID 1 starts, without adding a scheduling point.
void start_pid1(tandem::Kernel& kernel, uint64_t entry, uint64_t threads, uint64_t iterations,
                uint64_t data_size = sim::kDataSize, uint64_t file_size_limit = ~0ull);

}  // namespace fuzz
