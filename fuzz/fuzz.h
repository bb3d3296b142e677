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
// spec.strategy at them. Replay keeps the running CPU when no decision applies, so an empty
// list is a plain deterministic schedule.
//
// Replay never lets a spinning CPU yield (it ignores Strategy::spinning), so a decision that
// switches away from a CPU holding a kernel spinlock would leave the new CPU spinning until the
// step budget ends: a false hang. After the input's decisions a fair tail follows, one switch
// every kTailGap steps round-robin over the CPUs until spec.max_steps, so every spinner's lock
// holder runs again soon.
inline constexpr uint64_t kTailGap = 61;
inline void take_decisions(FuzzInput& in, sim::RunSpec& spec, std::vector<sim::Decision>& out, size_t max,
                           uint32_t max_gap = 1024) {
  out.clear();
  uint64_t step = 0;
  for (size_t i = 0; i < max && in.remaining() >= 3; ++i) {
    step += 1 + in.take_u16() % max_gap;
    const uint8_t b = in.take_u8();
    out.push_back(sim::Decision{step, static_cast<uint32_t>(b & 0x7f) % spec.cpus,
                                (b & 0x80) ? sim::Decision::EarlyTimer : sim::Decision::Switch});
  }
  if (spec.cpus > 1) {
    uint32_t cpu = 0;
    for (step += kTailGap; step < spec.max_steps; step += kTailGap) {
      cpu = (cpu + 1) % spec.cpus;
      out.push_back(sim::Decision{step, cpu, sim::Decision::Switch});
    }
  }
  spec.strategy.kind = sim::StrategyKind::Replay;
  spec.strategy.replay = &out;
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

// Runs one schedule on a fresh kernel and crashes (trap) unless the outcome is acceptable.
// Kernel panics, broken invariants, leaks, deadlocks and exhausted budgets are never accepted.
inline sim::RunResult run_and_check(const sim::RunSpec& spec, Accept accept) {
  sim::RunResult r = sim::run_one(spec);
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

}  // namespace fuzz
