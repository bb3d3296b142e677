// tandem-sim: explore schedules, replay failures, list scenarios, run benchmarks.
// ./tandem explore|replay|list|bench run this binary.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fmt/core.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "sim/harness/explore.h"
#include "sim/virtio/link.h"
#include "tools/explorer/bench.h"

namespace {

using namespace sim;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotReproduced = 3;

std::string scenario_list() {
  std::string out;
  for (const Scenario& s : scenarios()) out += fmt::format("  {:<10} {}\n", s.name, s.summary);
  return out;
}

std::string plant_list() {
  std::string out;
  for (const Plantable& p : plantable_bugs()) out += fmt::format("  {:<22} {} (try: explore {})\n", p.name, p.summary, p.scenario);
  return out;
}

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : m_enabled(enabled), m_start(std::chrono::steady_clock::now()) {}
  void update(uint64_t done, uint64_t total) {
    if (!m_enabled || total == 0) return;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
    const int width = 32;
    const int filled = static_cast<int>(width * done / total);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %llu/%llu schedules, %.0f/s   ", bar.c_str(), static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total), seconds > 0 ? done / seconds : 0.0);
    std::fflush(stderr);
  }
  void finish() {
    if (m_enabled) std::fprintf(stderr, "\r%80s\r", "");
  }

 private:
  bool m_enabled;
  std::chrono::steady_clock::time_point m_start;
};

std::string shell_quote(const std::string& s) {
  if (s.find_first_of(" \t'\"$\\") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// ---------------------------------------------------------------------------------------------

struct ExploreOptions {
  std::string scenario;
  uint32_t cpus = 4, threads = 4, iterations = 10, depth = 3, jobs = 0;
  uint64_t schedules = 1000, seed = 1, max_steps = 2'000'000;
  std::string strategy = "pct", shard, plant = "none", out = "failures", net_faults;
  bool json = false, sanitize = false, spin_yield = false;
  uint32_t early_timer = 512;
};

int run_explore(const ExploreOptions& o) {
  const Scenario* scenario = find_scenario(o.scenario);
  if (scenario == nullptr) {
    std::fprintf(stderr, "explore: unknown scenario \"%s\". Valid scenarios:\n%s", o.scenario.c_str(), scenario_list().c_str());
    return kExitUsage;
  }
  if (const char* bad = scenario->validate(o.threads, o.iterations)) {
    std::fprintf(stderr, "explore: %s\n", bad);
    return kExitUsage;
  }
  ExploreSpec spec;
  spec.run.scenario = o.scenario;
  spec.run.cpus = o.cpus;
  spec.run.threads = o.threads;
  spec.run.iterations = o.iterations;
  spec.run.max_steps = o.max_steps;
  spec.run.spin_yield_futex = o.spin_yield;
  if (!o.net_faults.empty()) {
    LinkFaults faults;
    const std::string bad = parse_link_faults(o.net_faults, &faults);
    if (!bad.empty()) {
      std::fprintf(stderr, "explore: --net-faults %s: %s\n", o.net_faults.c_str(), bad.c_str());
      return kExitUsage;
    }
    if (!is_networked(o.scenario)) {
      std::fprintf(stderr, "explore: --net-faults: %s does not use the simulated network (tcp-echo and tcp-bulk do)\n",
                   o.scenario.c_str());
      return kExitUsage;
    }
    spec.run.net_faults = o.net_faults;
  }
  if (!parse_strategy(o.strategy, &spec.run.strategy.kind) || spec.run.strategy.kind == StrategyKind::Replay) {
    std::fprintf(stderr, "explore: unknown strategy \"%s\" (random, pct or rr)\n", o.strategy.c_str());
    return kExitUsage;
  }
  spec.run.strategy.depth = o.depth;
  spec.run.strategy.early_timer_one_in = o.early_timer;
  if (!parse_plant(o.plant, &spec.run.plant)) {
    std::fprintf(stderr, "explore: unknown bug \"%s\". Plantable bugs:\n%s", o.plant.c_str(), plant_list().c_str());
    return kExitUsage;
  }
  spec.base_seed = o.seed;
  spec.schedules = o.schedules;
  spec.jobs = o.jobs != 0 ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  if (!o.shard.empty()) {
    unsigned index = 0, count = 0;
    char slash = 0;
    std::istringstream in(o.shard);
    if (!(in >> index >> slash >> count) || slash != '/' || count == 0 || index >= count || !in.eof()) {
      std::fprintf(stderr, "explore: --shard takes I/N with 0 <= I < N, e.g. --shard 0/4\n");
      return kExitUsage;
    }
    spec.shard_index = index;
    spec.shard_count = count;
  }

  ProgressBar bar(!o.json && isatty(STDERR_FILENO));
  ExploreResult r = explore(spec, [&](uint64_t done, uint64_t total) { bar.update(done, total); });
  bar.finish();

  std::string failure_path, replay_command;
  if (r.first_failure_schedule) {
    // Shrink, then write the replay file.
    const Shrunk shrunk = shrink(r.failing_spec, r.failing_result.decisions, r.failing_result.outcome);
    ReplayFile file;
    file.spec = r.failing_spec;
    file.original_strategy = o.strategy;
    file.base_seed = o.seed;
    file.schedule_index = *r.first_failure_schedule;
    file.outcome = r.failing_result.outcome;
    file.message = r.failing_result.message;
    file.trace_hash = r.failing_result.trace_hash;
    file.steps = r.failing_result.steps;
    file.decisions = r.failing_result.decisions;
    if (shrunk.result.outcome == r.failing_result.outcome) {
      file.has_shrunk = true;
      file.shrunk_decisions = shrunk.decisions;
      file.shrunk_outcome = shrunk.result.outcome;
      file.shrunk_message = shrunk.result.message;
      file.shrunk_trace_hash = shrunk.result.trace_hash;
      file.shrunk_steps = shrunk.result.steps;
    }
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    failure_path = fmt::format("{}/failure-{}-{}.json", o.out, o.scenario, r.failing_spec.seed);
    std::ofstream(failure_path) << write_replay_json(file);
    replay_command = "./tandem replay " + shell_quote(failure_path);
    if (!o.json) {
      std::printf("FAILED schedule %llu (seed %llu): %s: %s\n", static_cast<unsigned long long>(*r.first_failure_schedule),
                  static_cast<unsigned long long>(r.failing_spec.seed), outcome_name(r.failing_result.outcome),
                  r.failing_result.message.c_str());
      std::printf("shrunk from %zu to %zu decisions (%llu replays); replay file: %s\n", file.decisions.size(),
                  file.has_shrunk ? file.shrunk_decisions.size() : file.decisions.size(),
                  static_cast<unsigned long long>(shrunk.attempts), failure_path.c_str());
      std::printf("replay it with:\n  %s\n", replay_command.c_str());
    }
  }
  const double per_second = r.seconds > 0 ? r.schedules_run / r.seconds : 0;
  if (o.json) {
    nlohmann::json j = {{"scenario", o.scenario}, {"cpus", o.cpus}, {"threads", o.threads}, {"iterations", o.iterations},
                        {"schedules", r.schedules_run}, {"failures", r.failures}, {"seconds", r.seconds},
                        {"schedules_per_second", per_second}, {"strategy", o.strategy}, {"depth", o.depth},
                        {"seed", o.seed}, {"jobs", spec.jobs}, {"plant", o.plant}, {"net_faults", o.net_faults},
                        {"distinct_interleavings", r.distinct_interleavings}, {"total_steps", r.total_steps},
                        {"digest", fmt::format("0x{:016x}", r.digest)},
                        {"first_failure_schedule", r.first_failure_schedule ? nlohmann::json(*r.first_failure_schedule) : nlohmann::json(nullptr)}};
    if (r.first_failure_schedule) {
      j["failure"] = {{"outcome", outcome_name(r.failing_result.outcome)}, {"message", r.failing_result.message},
                      {"file", failure_path}, {"replay", replay_command}};
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s: %llu schedules, %llu failures, %.2f s, %.0f schedules/s, %llu distinct interleavings "
                "(%s, %u CPUs, %u threads, %u iterations, %u jobs)\n",
                o.scenario.c_str(), static_cast<unsigned long long>(r.schedules_run),
                static_cast<unsigned long long>(r.failures), r.seconds, per_second,
                static_cast<unsigned long long>(r.distinct_interleavings),
                o.strategy == "pct" ? fmt::format("pct depth {}", o.depth).c_str() : o.strategy.c_str(), o.cpus,
                o.threads, o.iterations, spec.jobs);
  }
  return r.failures > 0 ? kExitFailure : 0;
}

int run_replay(const std::string& path, const std::string& trace_out, bool original, size_t rows) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return kExitUsage;
  }
  std::stringstream text;
  text << in.rdbuf();
  ReplayFile file;
  std::string error;
  if (!read_replay_json(text.str(), &file, &error)) {
    std::fprintf(stderr, "replay: %s is not a valid replay file: %s\n", path.c_str(), error.c_str());
    return kExitUsage;
  }
  const bool shrunk = file.has_shrunk && !original;
  const RunResult r = replay(file, !shrunk);
  const uint64_t want_hash = shrunk ? file.shrunk_trace_hash : file.trace_hash;
  const Outcome want_outcome = shrunk ? file.shrunk_outcome : file.outcome;
  const std::string& want_message = shrunk ? file.shrunk_message : file.message;
  std::printf("%s", render_columns(r, file.spec.cpus, rows).c_str());
  std::printf("\nreplayed %s schedule of %s (seed %llu, %zu decisions, %llu steps): %s: %s\n",
              shrunk ? "the shrunk" : "the original", file.spec.scenario.c_str(),
              static_cast<unsigned long long>(file.spec.seed), shrunk ? file.shrunk_decisions.size() : file.decisions.size(),
              static_cast<unsigned long long>(r.steps), outcome_name(r.outcome), r.message.c_str());
  std::printf("trace hash 0x%016llx (recorded 0x%016llx)\n", static_cast<unsigned long long>(r.trace_hash),
              static_cast<unsigned long long>(want_hash));
  if (!trace_out.empty()) {
    std::ofstream(trace_out) << render_chrome_trace(r, file.spec.cpus);
    std::printf("Chrome trace written to %s (open it in the Perfetto UI)\n", trace_out.c_str());
  }
  const bool same = r.trace_hash == want_hash && r.outcome == want_outcome && r.message == want_message;
  if (!same) {
    std::printf("DIFFERENT: the replay did not reproduce the recorded run (expected %s: %s)\n", outcome_name(want_outcome),
                want_message.c_str());
    return kExitNotReproduced;
  }
  std::printf("reproduced exactly: same failure, same decision-trace hash\n");
  return kExitFailure;  // the failure reproduced
}

int run_list() {
  std::printf("Scenarios (./tandem explore SCENARIO):\n%s\nPlantable bugs (--plant NAME):\n%s", scenario_list().c_str(),
              plant_list().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tandem-sim: the deterministic SMP simulator's explorer, replayer and benchmarks"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show every command's options");

  ExploreOptions eo;
  CLI::App* explore_cmd = app.add_subcommand("explore", "Run many schedules of a scenario; write a replay file on failure");
  explore_cmd->add_option("scenario", eo.scenario, "Scenario to explore (see `list`)")->required();
  explore_cmd->add_option("--cpus", eo.cpus, "Simulated CPUs (1-64)")->check(CLI::Range(1, 64))->capture_default_str();
  explore_cmd->add_option("--threads", eo.threads, "User threads")->check(CLI::Range(1, 900))->capture_default_str();
  explore_cmd->add_option("--iterations", eo.iterations, "Work per thread (lock/unlock pairs for mutex)")->check(CLI::Range(1, 1000000))->capture_default_str();
  explore_cmd->add_option("--schedules", eo.schedules, "Schedules to run")->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))->capture_default_str();
  explore_cmd->add_option("--strategy", eo.strategy, "random, pct or rr")->capture_default_str();
  explore_cmd->add_option("--depth", eo.depth, "PCT depth d")->check(CLI::Range(1, 64))->capture_default_str();
  explore_cmd->add_option("--seed", eo.seed, "Base seed: schedule i draws its seed from (seed, i)")->capture_default_str();
  explore_cmd->add_option("--jobs", eo.jobs, "Parallel simulations (default: all cores)");
  explore_cmd->add_option("--shard", eo.shard, "Run only schedules i with i mod N = I (I/N)");
  explore_cmd->add_option("--plant", eo.plant, "Plant a bug into the kernel (see `list`)")->capture_default_str();
  explore_cmd->add_option("--out", eo.out, "Directory for failure files")->capture_default_str();
  explore_cmd->add_option("--max-steps", eo.max_steps, "Scheduling points before a run counts as hung")->check(CLI::Range(uint64_t{1000}, uint64_t{1000000000}))->capture_default_str();
  explore_cmd->add_option("--early-timer", eo.early_timer, "One early timer interrupt per N points on average (0: never)")->capture_default_str();
  explore_cmd->add_option("--net-faults", eo.net_faults,
                          "Faults on the simulated wire of networked scenarios, per frame and direction, e.g. "
                          "drop=0.05,dup=0.02,reorder=0.05,corrupt=0.01,delay=50us,jitter=20us (probabilities 0-1; "
                          "times in ns, us, ms or s); seeded by each schedule's seed, recorded in replay files");
  explore_cmd->add_flag("--spin-yield", eo.spin_yield, "Boot the kernel with the spin-yield futex strategy");
  explore_cmd->add_flag("--json", eo.json, "Print the summary as one JSON object");
  explore_cmd->add_flag("--sanitize", eo.sanitize, "Run the ASan+UBSan build (./tandem picks it)");

  std::string replay_path, trace_out;
  bool replay_original = false;
  size_t replay_rows = 60;
  CLI::App* replay_cmd = app.add_subcommand("replay", "Reproduce a failure from its replay file and show each CPU's work");
  replay_cmd->add_option("file", replay_path, "Replay file written by explore")->required();
  replay_cmd->add_option("--trace-out", trace_out, "Write Chrome trace-event JSON (opens in the Perfetto UI)");
  replay_cmd->add_flag("--original", replay_original, "Replay the original schedule, not the shrunk one");
  replay_cmd->add_option("--rows", replay_rows, "Trace events to print")->capture_default_str();

  app.add_subcommand("list", "List scenarios and plantable bugs");

  std::vector<std::string> groups;
  bool bench_quick = false;
  CLI::App* bench_cmd = app.add_subcommand("bench", "Run benchmarks, print a table, write JSON to bench/results/");
  bench_cmd->add_option("groups", groups, "Groups to run (default: all): sim");
  bench_cmd->add_flag("--quick", bench_quick, "Fewer repetitions (a smoke run)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (explore_cmd->parsed()) return run_explore(eo);
  if (replay_cmd->parsed()) return run_replay(replay_path, trace_out, replay_original, replay_rows);
  if (bench_cmd->parsed()) return tandem_bench::run(groups, bench_quick);
  return run_list();
}
