// futex_sched: the futex scenarios (mutex, condvar, semaphore, barrier, rwlock, join), small,
// under a schedule taken from the input: a Replay decision list (switch to CPU c at step s, or
// take the timer early). The scenarios are correct, so anything but Finished is a crash.
//
// Input: [scenario byte] [shape byte] [decision: u16 step gap, cpu/timer byte]...
//   shape byte: bits 0-1 cpus-1 (at least 2), bits 2-3 threads-1 (at least 2), bits 4-5 iterations-1
#include <cstdint>
#include <vector>

#include "fuzz/fuzz.h"
#include "fuzz/kernel_run.h"

namespace {
constexpr const char* kScenarios[] = {"mutex", "condvar", "semaphore", "barrier", "rwlock", "join"};

struct Shape {
  uint64_t entry;
  uint32_t threads;
  uint32_t iterations;
};
void init(tandem::Kernel& kernel, void* arg) {
  const auto* shape = static_cast<const Shape*>(arg);
  fuzz::start_pid1(kernel, shape->entry, shape->threads, shape->iterations);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  // The scenario's own program, run as sim::run_one would, on the fuzz harness's machines.
  const sim::Scenario* scenario = sim::find_scenario(in.pick(kScenarios));
  if (scenario == nullptr) __builtin_trap();
  const uint8_t bits = in.take_u8();
  fuzz::KernelRun run;
  run.cpus = 2 + (bits & 3) % 3;  // 2-4
  Shape shape{scenario->entry, 2u + ((bits >> 2) & 3u) % 3u, 1u + ((bits >> 4) & 3u)};  // 2-4 threads, 1-4 iterations
  run.max_steps = 200'000;
  run.init = &init;
  run.init_arg = &shape;
  static std::vector<sim::Decision> decisions;  // reused: its fair tail has thousands of entries
  fuzz::take_decisions(in, run.cpus, run.max_steps, run.strategy, decisions, 256, 256);
  fuzz::check(fuzz::run_kernel(run), fuzz::Accept::FinishedOnly);
  return 0;
}
