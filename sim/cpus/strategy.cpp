#include "sim/cpus/strategy.h"

#include <algorithm>
#include <cmath>

namespace sim {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint32_t lowest(uint64_t mask) { return static_cast<uint32_t>(__builtin_ctzll(mask)); }

uint32_t nth_set_bit(uint64_t mask, uint64_t n) {
  for (; n > 0; --n) mask &= mask - 1;
  return lowest(mask);
}

// Early timer interrupts at a rate of one in N eligible points: instead of a coin flip at every
// point, draw how many points to skip (a geometric distribution, the same process) once per
// interrupt.
class EarlyTimers {
 public:
  explicit EarlyTimers(uint32_t one_in) : m_one_in(one_in) {}
  void begin(Rng& rng) { m_left = draw(rng); }
  bool fire(Rng& rng) {
    if (m_one_in == 0) return false;
    if (m_left > 0) {
      --m_left;
      return false;
    }
    m_left = draw(rng);
    return true;
  }

 private:
  uint64_t draw(Rng& rng) {
    if (m_one_in <= 1) return 0;
    // Inverse transform: floor(ln(U) / ln(1 - 1/N)), U uniform in (0, 1].
    const double u = (static_cast<double>(rng.next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    return static_cast<uint64_t>(std::log(u) / std::log1p(-1.0 / m_one_in));
  }
  uint32_t m_one_in;
  uint64_t m_left = 0;
};

class RandomStrategy final : public Strategy {
 public:
  explicit RandomStrategy(const StrategyParams& p) : m_early(p.early_timer_one_in) {}
  void begin(uint64_t seed, uint32_t) override {
    m_rng.reseed(seed);
    m_early.begin(m_rng);
  }
  uint32_t pick(uint64_t, uint32_t, uint64_t enabled) override {
    return nth_set_bit(enabled, m_rng.below(static_cast<uint64_t>(__builtin_popcountll(enabled))));
  }
  bool early_timer(uint64_t, uint32_t) override { return m_early.fire(m_rng); }

 private:
  Rng m_rng;
  EarlyTimers m_early;
};

// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010):
// random distinct priorities, always run the highest-priority enabled CPU, and at d-1 random
// steps drop the running CPU's priority below all others. A bug of depth d is found with
// probability at least 1/(n k^(d-1)) per schedule.
class PctStrategy final : public Strategy {
 public:
  explicit PctStrategy(const StrategyParams& p) : m_params(p), m_early(p.early_timer_one_in) {}
  void begin(uint64_t seed, uint32_t cpus) override {
    m_rng.reseed(seed);
    m_early.begin(m_rng);
    m_priority.assign(cpus, 0);
    std::vector<uint32_t> order(cpus);
    for (uint32_t i = 0; i < cpus; ++i) order[i] = i;
    for (uint32_t i = cpus; i > 1; --i) std::swap(order[i - 1], order[m_rng.below(i)]);
    const uint32_t d = std::max<uint32_t>(m_params.depth, 1);
    for (uint32_t i = 0; i < cpus; ++i) m_priority[order[i]] = d + i;
    m_change_points.clear();
    for (uint32_t i = 0; i + 1 < d; ++i) m_change_points.push_back(1 + m_rng.below(std::max<uint64_t>(m_params.expected_steps, 1)));
    std::sort(m_change_points.begin(), m_change_points.end());
    m_next_change = 0;
    update_top();
  }
  uint32_t pick(uint64_t step, uint32_t current, uint64_t enabled) override {
    while (m_next_change < m_change_points.size() && m_change_points[m_next_change] <= step) {
      // The i-th change point gives the running CPU priority d-1-i: lower than every initial one.
      m_priority[current] = static_cast<uint32_t>(m_change_points.size() - m_next_change - 1);
      ++m_next_change;
      update_top();
    }
    // Priorities change rarely and the set of enabled CPUs changes only when one halts or
    // wakes: remember the answer for the last set.
    if (enabled == m_cached_enabled) return m_cached_best;
    uint32_t best = lowest(enabled);
    for (uint64_t m = enabled & (enabled - 1); m != 0; m &= m - 1) {
      const uint32_t c = lowest(m);
      if (m_priority[c] > m_priority[best]) best = c;
    }
    m_cached_enabled = enabled;
    m_cached_best = best;
    return best;
  }
  void update_top() { m_cached_enabled = 0; }
  bool early_timer(uint64_t, uint32_t) override { return m_early.fire(m_rng); }
  void spinning(uint32_t cpu) override {
    // A spinner drops below every other CPU (keeping the relative order of the rest), as if it
    // had yielded; the CPU it waits for then gets to run.
    uint32_t lowest_priority = m_priority[cpu];
    for (uint32_t p : m_priority) lowest_priority = std::min(lowest_priority, p);
    if (m_priority[cpu] == lowest_priority) return;
    for (uint32_t& p : m_priority) ++p;
    m_priority[cpu] = lowest_priority;
    update_top();
  }

 private:
  StrategyParams m_params;
  Rng m_rng;
  EarlyTimers m_early;
  std::vector<uint32_t> m_priority;
  std::vector<uint64_t> m_change_points;
  size_t m_next_change = 0;
  uint64_t m_cached_enabled = 0;  // 0: nothing cached
  uint32_t m_cached_best = 0;
};

// Round-robin with a quantum drawn once per schedule.
class RoundRobinStrategy final : public Strategy {
 public:
  explicit RoundRobinStrategy(const StrategyParams& p) : m_early(p.early_timer_one_in) {}
  void begin(uint64_t seed, uint32_t cpus) override {
    m_rng.reseed(seed);
    m_early.begin(m_rng);
    m_cpus = cpus;
    m_quantum = 1 + m_rng.below(48);
    m_used = 0;
  }
  uint32_t pick(uint64_t, uint32_t current, uint64_t enabled) override {
    if ((enabled >> current) & 1) {
      if (++m_used < m_quantum) return current;
    }
    m_used = 0;
    for (uint32_t i = 1; i <= m_cpus; ++i) {
      const uint32_t c = (current + i) % m_cpus;
      if ((enabled >> c) & 1) return c;
    }
    return current;
  }
  bool early_timer(uint64_t, uint32_t) override { return m_early.fire(m_rng); }

 private:
  Rng m_rng;
  EarlyTimers m_early;
  uint32_t m_cpus = 1;
  uint64_t m_quantum = 1;
  uint64_t m_used = 0;
};

// Replays recorded decisions. Between decisions it keeps the running CPU when it can, or takes
// the lowest enabled one: the same rule the recording relies on, so an unshrunk recording
// reproduces its run exactly and a shrunk one stays meaningful.
class ReplayStrategy final : public Strategy {
 public:
  explicit ReplayStrategy(const StrategyParams& p) : m_decisions(p.replay) {}
  void begin(uint64_t, uint32_t) override { m_next = 0; }
  uint32_t pick(uint64_t step, uint32_t current, uint64_t enabled) override {
    return choose(step, current, enabled, ((enabled >> current) & 1) ? current : lowest(enabled));
  }
  uint32_t pick_after_spin(uint64_t step, uint32_t current, uint64_t enabled) override {
    // By default a spinner gives way to the next CPU that can run.
    uint32_t next = current;
    for (uint32_t i = 1; i <= 64; ++i) {
      const uint32_t c = (current + i) % 64;
      if ((enabled >> c) & 1) {
        next = c;
        break;
      }
    }
    return choose(step, current, enabled, next);
  }
  bool early_timer(uint64_t step, uint32_t cpu) override {
    skip_past(step);
    if (m_next < m_decisions->size() && (*m_decisions)[m_next].step == step &&
        (*m_decisions)[m_next].kind == Decision::EarlyTimer) {
      const bool match = (*m_decisions)[m_next].cpu == cpu;
      ++m_next;
      return match;
    }
    return false;
  }

 private:
  uint32_t choose(uint64_t step, uint32_t current, uint64_t enabled, uint32_t fallback) {
    skip_past(step);
    if (m_next < m_decisions->size() && (*m_decisions)[m_next].step == step) {
      const Decision& d = (*m_decisions)[m_next];
      if (d.kind == Decision::Switch) {
        ++m_next;
        if ((enabled >> d.cpu) & 1) return d.cpu;
      } else if (d.kind == Decision::Stay) {
        ++m_next;
        if ((enabled >> current) & 1) return current;
      }
    }
    return fallback;
  }
  void skip_past(uint64_t step) {
    while (m_next < m_decisions->size() && (*m_decisions)[m_next].step < step) ++m_next;
  }
  const std::vector<Decision>* m_decisions;
  size_t m_next = 0;
};

}  // namespace

void Rng::reseed(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : m_s) s = splitmix64(x);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(m_s[1] * 5, 7) * 9;
  const uint64_t t = m_s[1] << 17;
  m_s[2] ^= m_s[0];
  m_s[3] ^= m_s[1];
  m_s[1] ^= m_s[2];
  m_s[0] ^= m_s[3];
  m_s[2] ^= t;
  m_s[3] = rotl(m_s[3], 45);
  return result;
}

uint64_t mix_seed(uint64_t base, uint64_t index) {
  uint64_t x = base ^ (index * 0xd1b54a32d192ed03ull);
  return splitmix64(x);
}

const char* strategy_name(StrategyKind kind) {
  switch (kind) {
    case StrategyKind::Random: return "random";
    case StrategyKind::Pct: return "pct";
    case StrategyKind::RoundRobin: return "rr";
    case StrategyKind::Replay: return "replay";
  }
  return "?";
}

bool parse_strategy(const std::string& text, StrategyKind* out) {
  if (text == "random") *out = StrategyKind::Random;
  else if (text == "pct") *out = StrategyKind::Pct;
  else if (text == "rr") *out = StrategyKind::RoundRobin;
  else if (text == "replay") *out = StrategyKind::Replay;
  else return false;
  return true;
}

std::unique_ptr<Strategy> make_strategy(const StrategyParams& params) {
  switch (params.kind) {
    case StrategyKind::Random: return std::make_unique<RandomStrategy>(params);
    case StrategyKind::Pct: return std::make_unique<PctStrategy>(params);
    case StrategyKind::RoundRobin: return std::make_unique<RoundRobinStrategy>(params);
    case StrategyKind::Replay: return std::make_unique<ReplayStrategy>(params);
  }
  return nullptr;
}

}  // namespace sim
