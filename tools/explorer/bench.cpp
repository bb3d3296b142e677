// ./tandem bench sim: the simulator's speed and its power to find bugs.
//  (a) one scheduling point / one bare Boost.Context round trip, measured in the same run
//  (b) schedules per second, mutex, 4 CPUs, 4 threads, 10 iterations, one job
//  (c) the same for the anchor model (3 CPUs, 3 threads, 2 iterations)
//  (d) schedules to the first failure for each planted bug, median over 20 seeds, per strategy
#include "tools/explorer/bench.h"

#include <sys/utsname.h>

#include <algorithm>
#include <boost/context/detail/fcontext.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fmt/core.h>
#include <fstream>
#include <string>
#include <thread>
#include <nlohmann/json.hpp>

#include "sim/harness/explore.h"

namespace tandem_bench {

namespace {

using Clock = std::chrono::steady_clock;
namespace ctx = boost::context::detail;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A bare fcontext ping-pong: the floor under any fiber-based scheduler.
ctx::fcontext_t g_back;
void pong(ctx::transfer_t t) {
  for (;;) t = ctx::jump_fcontext(t.fctx, nullptr);
}

double round_trip_ns(uint64_t rounds) {
  std::vector<char> stack(64 * 1024);
  ctx::fcontext_t f = ctx::make_fcontext(stack.data() + stack.size(), stack.size(), pong);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < rounds; ++i) f = ctx::jump_fcontext(f, nullptr).fctx;
  return seconds_since(start) * 1e9 / static_cast<double>(rounds);
}

// Scheduling points on a machine without a kernel: every CPU loops over sched points and
// the random strategy picks a CPU at each one (so most points switch fibers).
struct PointLoop {
  uint64_t remaining;
};
void point_cpu(void* env, uint32_t) {
  auto* loop = static_cast<PointLoop*>(env);
  sim::Machine* m = sim::Machine::current();
  while (loop->remaining > 0) {
    --loop->remaining;
    m->point(hal::Point::Atomic);
  }
  m->shutdown(0);
  m->fail(sim::Outcome::Finished, "done");
}
void no_interrupt(void*, uint32_t) {}

double point_ns(uint64_t points, sim::StrategyKind kind, uint32_t cpus) {
  sim::MachineConfig config;
  config.cpus = cpus;
  config.strategy.kind = kind;
  config.strategy.early_timer_one_in = 0;
  config.max_steps = points * 2;
  sim::Machine machine(config);
  PointLoop loop{points};
  sim::Machine::Hooks hooks;
  hooks.env = &loop;
  hooks.cpu_entry = &point_cpu;
  hooks.interrupt = &no_interrupt;
  const auto start = Clock::now();
  const sim::RunResult r = machine.run(hooks);
  return seconds_since(start) * 1e9 / static_cast<double>(std::max<uint64_t>(r.steps, 1));
}

struct Rate {
  double per_second;
  double steps_per_schedule;
};

Rate schedules_per_second(const char* scenario, uint32_t cpus, uint32_t threads, uint32_t iterations, uint64_t schedules) {
  sim::ExploreSpec spec;
  spec.run.scenario = scenario;
  spec.run.cpus = cpus;
  spec.run.threads = threads;
  spec.run.iterations = iterations;
  spec.run.strategy.kind = sim::StrategyKind::Pct;
  spec.base_seed = 1;
  spec.schedules = schedules;
  spec.jobs = 1;
  const sim::ExploreResult r = sim::explore(spec);
  return Rate{r.schedules_run / r.seconds, static_cast<double>(r.total_steps) / static_cast<double>(r.schedules_run)};
}

// Schedules to the first failure; 0 when none failed within `limit`.
uint64_t schedules_to_failure(const char* scenario, uint8_t plant, sim::StrategyKind kind, uint64_t seed, uint64_t limit) {
  sim::ExploreSpec spec;
  spec.run.scenario = scenario;
  spec.run.plant = plant;
  spec.run.strategy.kind = kind;
  spec.base_seed = seed;
  spec.schedules = limit;
  spec.jobs = 1;
  const sim::ExploreResult r = sim::explore(spec);
  return r.first_failure_schedule ? *r.first_failure_schedule + 1 : 0;
}

std::string machine_description() {
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  return fmt::format("{}, {} cores", cpu, std::thread::hardware_concurrency());
}

}  // namespace

int run(const std::vector<std::string>& groups, bool quick) {
  for (const std::string& g : groups) {
    if (g != "sim") {
      std::fprintf(stderr, "bench: unknown group \"%s\" (groups: sim)\n", g.c_str());
      return 2;
    }
  }
  nlohmann::json results;
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%d", std::gmtime(&now));
  results["date"] = date;
  results["machine"] = machine_description();
  std::printf("tandem bench sim — %s — %s\n\n", date, results["machine"].get<std::string>().c_str());

  // (a)
  const double trip = round_trip_ns(quick ? 200'000 : 5'000'000);
  const double point_stay = point_ns(quick ? 200'000 : 5'000'000, sim::StrategyKind::Pct, 4);
  const double point_switch = point_ns(quick ? 200'000 : 5'000'000, sim::StrategyKind::Random, 4);
  std::printf("(a) bare Boost.Context round trip          %8.1f ns\n", trip);
  std::printf("    scheduling point, PCT (mostly stays)   %8.1f ns  = %.2f round trips\n", point_stay, point_stay / trip);
  std::printf("    scheduling point, random (switches)    %8.1f ns  = %.2f round trips   target <= 10\n", point_switch,
              point_switch / trip);
  results["a"] = {{"round_trip_ns", trip}, {"point_pct_ns", point_stay}, {"point_random_ns", point_switch},
                  {"ratio_pct", point_stay / trip}, {"ratio_random", point_switch / trip}};

  // (b), (c)
  const Rate mutex = schedules_per_second("mutex", 4, 4, 10, quick ? 2000 : 20000);
  std::printf("(b) mutex 4 CPUs x 4 threads x 10, 1 job   %8.0f schedules/s (%.0f points each)   target >= 5,000\n",
              mutex.per_second, mutex.steps_per_schedule);
  const Rate anchor = schedules_per_second("mutex", 3, 3, 2, quick ? 2000 : 50000);
  std::printf("(c) anchor 3 CPUs x 3 threads x 2, 1 job   %8.0f schedules/s (%.0f points each)   loom 14-19k, Relacy 340-410k; target >= 140-190k\n",
              anchor.per_second, anchor.steps_per_schedule);
  results["b"] = {{"schedules_per_second", mutex.per_second}, {"points_per_schedule", mutex.steps_per_schedule}};
  results["c"] = {{"schedules_per_second", anchor.per_second}, {"points_per_schedule", anchor.steps_per_schedule},
                  {"ratio_to_loom_low", anchor.per_second / 14000}, {"ratio_to_loom_high", anchor.per_second / 19000}};

  // (d)
  const int seeds = quick ? 3 : 20;
  const uint64_t limit = 10'000;
  std::printf("(d) schedules to the first failure (4 CPUs x 4 threads x 10), median over %d seeds, limit %llu:\n", seeds,
              static_cast<unsigned long long>(limit));
  std::printf("    %-32s %10s %10s %10s\n", "bug (scenario)", "pct", "random", "rr");
  for (const sim::Plantable& p : sim::plantable_bugs()) {
    std::printf("    %-32s", (std::string(p.name) + " (" + p.scenario + ")").c_str());
    for (sim::StrategyKind kind : {sim::StrategyKind::Pct, sim::StrategyKind::Random, sim::StrategyKind::RoundRobin}) {
      std::vector<uint64_t> found;
      int missed = 0;
      for (int s = 1; s <= seeds; ++s) {
        const uint64_t n = schedules_to_failure(p.scenario, static_cast<uint8_t>(p.plant), kind, static_cast<uint64_t>(s), limit);
        if (n == 0) ++missed; else found.push_back(n);
      }
      std::string cell;
      if (static_cast<int>(found.size()) * 2 <= seeds) {
        cell = fmt::format(">{}", limit);
      } else {
        // Seeds that never failed count as "more than the limit" in the median.
        std::vector<uint64_t> all = found;
        for (int i = 0; i < missed; ++i) all.push_back(limit + 1);
        std::sort(all.begin(), all.end());
        cell = fmt::format("{}", all[all.size() / 2]);
      }
      if (missed > 0) cell += fmt::format(" ({}/{})", seeds - missed, seeds);
      std::printf(" %10s", cell.c_str());
      results["d"][p.name][sim::strategy_name(kind)] = {{"median", cell}, {"found", seeds - missed}, {"seeds", seeds}};
    }
    std::printf("\n");
  }

  std::error_code ec;
  std::filesystem::create_directories("bench/results", ec);
  const std::string path = fmt::format("bench/results/sim-{}.json", date);
  std::ofstream(path) << results.dump(2) << "\n";
  std::printf("\nwritten to %s\n", path.c_str());
  return 0;
}

}  // namespace tandem_bench
