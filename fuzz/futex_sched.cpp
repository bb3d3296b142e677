// futex_sched: the futex scenarios (mutex, condvar, semaphore, barrier, rwlock, join), small,
// under a schedule taken from the input: a Replay decision list (switch to CPU c at step s, or
// take the timer early). The scenarios are correct, so anything but Finished is a crash.
//
// Input: [scenario byte] [shape byte] [decision: u16 step gap, cpu/timer byte]...
//   shape byte: bits 0-1 cpus-1 (at least 2), bits 2-3 threads-1 (at least 2), bits 4-5 iterations-1
#include <cstdint>
#include <vector>

#include "fuzz/fuzz.h"

namespace {
constexpr const char* kScenarios[] = {"mutex", "condvar", "semaphore", "barrier", "rwlock", "join"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  sim::RunSpec spec;
  spec.scenario = in.pick(kScenarios);
  const uint8_t shape = in.take_u8();
  spec.cpus = 2 + (shape & 3) % 3;            // 2-4
  spec.threads = 2 + ((shape >> 2) & 3) % 3;  // 2-4
  spec.iterations = 1 + ((shape >> 4) & 3);   // 1-4
  spec.max_steps = 200'000;
  std::vector<sim::Decision> decisions;
  fuzz::take_decisions(in, spec, decisions, 256, 256);
  fuzz::run_and_check(spec, fuzz::Accept::FinishedOnly);
  return 0;
}
