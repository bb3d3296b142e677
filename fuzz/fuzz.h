// A small framework for libFuzzer targets over the simulator: a byte reader that never runs
// out (missing bytes read as zero), a decoder for schedules (Replay decision lists) and the
// post-run check that turns a kernel failure into a crash libFuzzer reports.
//
// A target is a few lines:
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
//     fuzz::FuzzInput in(data, size);
//     sim::RunSpec spec; spec.scenario = "mutex"; spec.cpus = in.take_range(1, 4);
//     std::vector<sim::Decision> decisions;
//     fuzz::take_schedule(in, spec, decisions);
//     fuzz::run_and_check(spec, fuzz::Accept::FinishedOnly);
//     return 0;
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sim/harness/harness.h"

namespace fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}

  size_t remaining() const { return m_size - m_pos; }
  bool empty() const { return m_pos >= m_size; }

  uint8_t take_u8() { return m_pos < m_size ? m_data[m_pos++] : 0; }
  uint16_t take_u16() { return static_cast<uint16_t>(take_u8() | (take_u8() << 8)); }
  uint32_t take_u32() { return take_u16() | (static_cast<uint32_t>(take_u16()) << 16); }
  uint64_t take_u64() { return take_u32() | (static_cast<uint64_t>(take_u32()) << 32); }
  bool take_bool() { return (take_u8() & 1) != 0; }
  // Uniform enough in [lo, hi] (inclusive), from one byte when the range fits in one.
  uint32_t take_range(uint32_t lo, uint32_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi) - lo + 1;
    const uint64_t raw = span <= 256 ? take_u8() : span <= 65536 ? take_u16() : take_u32();
    return lo + static_cast<uint32_t>(raw % span);
  }
  template <typename T, size_t N>
  const T& pick(const T (&items)[N]) {
    return items[take_range(0, N - 1)];
  }

 private:
  const uint8_t* m_data;
  size_t m_size;
  size_t m_pos = 0;
};

// Decodes up to `max` Replay decisions (3 bytes each: a 16-bit step gap, then a byte whose low
// bits pick the CPU and whose top bit asks for an early timer instead of a switch) and points
// the strategy at them. Replay keeps the running CPU when no decision applies, so an empty
// list is a plain deterministic schedule.
//
// Replay never lets a spinning CPU yield (it ignores Strategy::spinning), so a decision that
// switches away from a CPU holding a kernel spinlock would leave the new CPU spinning until the
// step budget ends: a false hang. After the input's decisions a fair tail follows: round-robin
// switches every kTailGap steps up to kTailDense, then every kTailSparseGap steps up to the
// budget, so every spinner's lock holder runs again soon (and long runs, which are rare, do not
// pay for thousands of decisions). The tail is built once per (CPUs, budget) and copied: built
// per input, it was a quarter of syscall_seq's time.
inline constexpr uint64_t kTailGap = 61;
inline constexpr uint64_t kTailDense = 100'000;
inline constexpr uint64_t kTailSparseGap = 997;
inline const std::vector<sim::Decision>& fair_tail(uint32_t cpus, uint64_t max_steps) {
  struct Cached {
    uint32_t cpus = 0;
    uint64_t max_steps = 0;
    std::vector<sim::Decision> tail;
  };
  static Cached cache[8];
  Cached& c = cache[cpus % 8];
  if (c.cpus != cpus || c.max_steps != max_steps) {
    c.cpus = cpus;
    c.max_steps = max_steps;
    c.tail.clear();
    uint32_t cpu = 0;
    for (uint64_t step = kTailGap; step < max_steps; step += step < kTailDense ? kTailGap : kTailSparseGap) {
      cpu = (cpu + 1) % cpus;
      c.tail.push_back(sim::Decision{step, cpu, sim::Decision::Switch});
    }
  }
  return c.tail;
}
inline void take_decisions(FuzzInput& in, uint32_t cpus, uint64_t max_steps, sim::StrategyParams& strategy,
                           std::vector<sim::Decision>& out, size_t max, uint32_t max_gap = 1024) {
  out.clear();
  uint64_t step = 0;
  for (size_t i = 0; i < max && in.remaining() >= 3; ++i) {
    step += 1 + in.take_u16() % max_gap;
    const uint8_t b = in.take_u8();
    out.push_back(sim::Decision{step, static_cast<uint32_t>(b & 0x7f) % cpus,
                                (b & 0x80) ? sim::Decision::EarlyTimer : sim::Decision::Switch});
  }
  if (cpus > 1) {
    // The tail's entries after the last decision (a binary search: the tail is sorted by step).
    const std::vector<sim::Decision>& tail = fair_tail(cpus, max_steps);
    size_t lo = 0, hi = tail.size();
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (tail[mid].step <= step) lo = mid + 1; else hi = mid;
    }
    out.insert(out.end(), tail.begin() + static_cast<std::ptrdiff_t>(lo), tail.end());
  }
  strategy.kind = sim::StrategyKind::Replay;
  strategy.replay = &out;
}
inline void take_decisions(FuzzInput& in, sim::RunSpec& spec, std::vector<sim::Decision>& out, size_t max,
                           uint32_t max_gap = 1024) {
  take_decisions(in, spec.cpus, spec.max_steps, spec.strategy, out, max, max_gap);
}

enum class Accept {
  FinishedOnly,          // anything but Finished is a crash
  FinishedOrExitStatus,  // also fine: PID 1 ended with a non-zero wait status (exit code, signal)
};

[[noreturn]] inline void crash(const sim::RunResult& r, const char* why) {
  std::fprintf(stderr, "\n==fuzz== %s: outcome %s after %llu steps: %s\n", why, sim::outcome_name(r.outcome),
               static_cast<unsigned long long>(r.steps), r.message.c_str());
  if (!r.console.empty()) std::fprintf(stderr, "==fuzz== console:\n%s\n", r.console.c_str());
  __builtin_trap();
}

inline bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// check() crashes (trap) unless a run's outcome is acceptable; run_and_check runs one schedule of a
// registered scenario on a fresh kernel first. Kernel panics, broken invariants, leaks, deadlocks and exhausted budgets are never accepted.
inline const sim::RunResult& check(const sim::RunResult& r, Accept accept) {
  switch (r.outcome) {
    case sim::Outcome::Finished:
      return r;
    case sim::Outcome::Failed:
      if (accept == Accept::FinishedOrExitStatus && starts_with(r.message, "PID 1 ended with wait status")) return r;
      crash(r, r.message.find("kernel invariant") != std::string::npos ? "kernel invariant broken"
               : r.message.find("leak") != std::string::npos           ? "kernel leak"
                                                                       : "run failed");
    case sim::Outcome::Panic:
      crash(r, "kernel panic");
    case sim::Outcome::Deadlock:
      crash(r, "deadlock");
    case sim::Outcome::Hang:
      crash(r, "hang (step budget exhausted)");
  }
  crash(r, "unknown outcome");
}
inline sim::RunResult run_and_check(const sim::RunSpec& spec, Accept accept) {
  sim::RunResult r = sim::run_one(spec);
  check(r, accept);
  return r;
}

}  // namespace fuzz
