// Scheduling strategies: at every scheduling point, which simulated CPU runs next, and whether
// the running CPU takes its timer interrupt early.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sim {

// The machine's PRNG: splitmix64 seeding a xoshiro256** generator. Every random choice in a
// run comes from one of these, seeded from the run's seed.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next();
  // Uniform in [0, bound), bound > 0.
  uint64_t below(uint64_t bound) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64); }

 private:
  uint64_t m_s[4];
};

uint64_t mix_seed(uint64_t base, uint64_t index);

// One recorded choice: at scheduling point `step`, switch to CPU `cpu`, deliver the running
// CPU's timer interrupt early, or (at a spin-wait point only) stay on the spinning CPU. Replay
// follows the decisions; between them it stays on the running CPU, except at a spin-wait,
// where it moves on to the next CPU that can run, so that a decision list with decisions
// removed (shrinking) or made up (fuzzing) cannot starve the CPU a spinner waits for.
struct Decision {
  enum Kind : uint8_t { Switch = 0, EarlyTimer = 1, Stay = 2 };
  uint64_t step;
  uint32_t cpu;
  Kind kind;
  bool operator==(const Decision& o) const { return step == o.step && cpu == o.cpu && kind == o.kind; }
};

enum class StrategyKind { Random, Pct, RoundRobin, Replay };
const char* strategy_name(StrategyKind kind);
bool parse_strategy(const std::string& text, StrategyKind* out);

struct StrategyParams {
  StrategyKind kind = StrategyKind::Pct;
  uint32_t depth = 3;                   // PCT: d (d-1 priority change points)
  uint64_t expected_steps = 4000;       // PCT: k, the length the change points are spread over
  uint32_t early_timer_one_in = 512;    // chance of an early timer interrupt per point (0: never)
  const std::vector<Decision>* replay = nullptr;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  // A new schedule on `cpus` CPUs.
  virtual void begin(uint64_t seed, uint32_t cpus) = 0;
  // `current` is the running CPU (it may not be in `enabled` when it just halted); `enabled`
  // has a bit per CPU that can run. Returns the CPU to run, one of `enabled`.
  virtual uint32_t pick(uint64_t step, uint32_t current, uint64_t enabled) = 0;
  // The same at a spin-wait point (after spinning(current)). Replay overrides it.
  virtual uint32_t pick_after_spin(uint64_t step, uint32_t current, uint64_t enabled) {
    return pick(step, current, enabled);
  }
  // Whether `cpu` takes its armed timer interrupt now, ahead of time.
  virtual bool early_timer(uint64_t step, uint32_t cpu) = 0;
  // `cpu` spins waiting for another CPU (a spin-wait hint). Priority-based strategies must let
  // others run then, or a high-priority spinner starves the CPU it waits for forever.
  virtual void spinning(uint32_t cpu) { (void)cpu; }
};

std::unique_ptr<Strategy> make_strategy(const StrategyParams& params);

}  // namespace sim
