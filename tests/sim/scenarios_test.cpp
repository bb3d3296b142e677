// The simulator's own guarantees: every correct scenario passes many schedules under every
// strategy; every planted bug is found; runs are deterministic within and across processes;
// a found failure replays exactly.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

#include "sim/harness/explore.h"

namespace sim {
namespace {

ExploreSpec spec_for(const std::string& scenario, StrategyKind strategy, uint64_t schedules) {
  ExploreSpec spec;
  spec.run.scenario = scenario;
  spec.run.cpus = 4;
  spec.run.threads = 4;
  spec.run.iterations = 5;
  spec.run.strategy.kind = strategy;
  spec.run.strategy.depth = 3;
  spec.base_seed = 20261126;
  spec.schedules = schedules;
  spec.jobs = 1;
  // GoogleTest's sharding variables split the schedules, as --shard does.
  if (const char* total = std::getenv("GTEST_TOTAL_SHARDS")) spec.shard_count = static_cast<uint32_t>(std::atoi(total));
  if (const char* index = std::getenv("GTEST_SHARD_INDEX")) spec.shard_index = static_cast<uint32_t>(std::atoi(index));
  if (spec.shard_count == 0) spec.shard_count = 1;
  return spec;
}

struct Case {
  const char* scenario;
  StrategyKind strategy;
  uint32_t threads;
  uint32_t iterations;
};

class CorrectScenario : public ::testing::TestWithParam<Case> {};

TEST_P(CorrectScenario, Passes2000Schedules) {
  const Case c = GetParam();
  ExploreSpec spec = spec_for(c.scenario, c.strategy, 2000);
  spec.run.threads = c.threads;
  spec.run.iterations = c.iterations;
  const ExploreResult r = explore(spec);
  EXPECT_EQ(r.failures, 0u) << c.scenario << " under " << strategy_name(c.strategy) << ": schedule "
                            << r.first_failure_schedule.value_or(0) << ": " << outcome_name(r.failing_result.outcome)
                            << ": " << r.failing_result.message;
  EXPECT_GT(r.distinct_interleavings, 1u) << "the strategy explored one interleaving only";
}

std::vector<Case> all_cases() {
  struct Shape {
    const char* scenario;
    uint32_t threads;
    uint32_t iterations;
  };
  const Shape shapes[] = {{"mutex", 4, 5},    {"condvar", 4, 5},    {"semaphore", 4, 5},    {"barrier", 4, 5},
                          {"rwlock", 4, 5},   {"join", 4, 5},       {"tls", 4, 5},          {"munmap", 4, 5},
                          {"exit-unmap", 4, 5}, {"pipe", 4, 5},     {"epoll", 4, 5},        {"fork-cow", 3, 4},
                          {"signal-futex", 3, 4}};
  std::vector<Case> cases;
  for (const Shape& shape : shapes) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct, StrategyKind::RoundRobin})
      cases.push_back({shape.scenario, k, shape.threads, shape.iterations});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllStrategies, CorrectScenario, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = std::string(info.param.scenario) + "_" + strategy_name(info.param.strategy);
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

class PlantedBug : public ::testing::TestWithParam<const char*> {};

// Found within 10,000 schedules by random or PCT exploration (whichever finds it first; how
// fast each strategy finds each bug is measured by `./tandem bench sim`), then replayed.
TEST_P(PlantedBug, FoundWithin10000SchedulesAndReplays) {
  const char* scenario = nullptr;
  for (const Plantable& p : plantable_bugs()) {
    if (std::string(p.name) == GetParam()) scenario = p.scenario;
  }
  ASSERT_NE(scenario, nullptr) << GetParam();
  ExploreResult r;
  for (StrategyKind kind : {StrategyKind::Random, StrategyKind::Pct}) {
    ExploreSpec spec = spec_for(scenario, kind, 10000);
    spec.shard_count = 1;
    spec.shard_index = 0;
    spec.run.iterations = 10;
    ASSERT_TRUE(parse_plant(GetParam(), &spec.run.plant));
    r = explore(spec);
    if (r.failures == 1) break;
  }
  ASSERT_EQ(r.failures, 1u) << GetParam() << " was not found in 10,000 schedules by random or PCT";
  EXPECT_NE(r.failing_result.outcome, Outcome::Finished);

  // The failure file round-trips and replays to the same failure and trace hash, both the
  // original schedule and the shrunk one.
  const Shrunk shrunk = shrink(r.failing_spec, r.failing_result.decisions, r.failing_result.outcome, 500, 20);
  EXPECT_LE(shrunk.decisions.size(), r.failing_result.decisions.size());
  ReplayFile file;
  file.spec = r.failing_spec;
  file.original_strategy = strategy_name(r.failing_spec.strategy.kind);
  file.outcome = r.failing_result.outcome;
  file.message = r.failing_result.message;
  file.trace_hash = r.failing_result.trace_hash;
  file.steps = r.failing_result.steps;
  file.decisions = r.failing_result.decisions;
  file.has_shrunk = true;
  file.shrunk_decisions = shrunk.decisions;
  file.shrunk_outcome = shrunk.result.outcome;
  file.shrunk_message = shrunk.result.message;
  file.shrunk_trace_hash = shrunk.result.trace_hash;
  file.shrunk_steps = shrunk.result.steps;
  ReplayFile loaded;
  std::string error;
  ASSERT_TRUE(read_replay_json(write_replay_json(file), &loaded, &error)) << error;
  const RunResult original = replay(loaded, true);
  EXPECT_EQ(original.outcome, file.outcome);
  EXPECT_EQ(original.message, file.message);
  EXPECT_EQ(original.trace_hash, file.trace_hash);
  const RunResult small = replay(loaded, false);
  EXPECT_EQ(small.outcome, file.shrunk_outcome);
  EXPECT_EQ(small.trace_hash, file.shrunk_trace_hash);
  EXPECT_FALSE(small.trace.empty()) << "replays record a per-CPU trace";
}

INSTANTIATE_TEST_SUITE_P(Plants, PlantedBug, ::testing::Values("futex-check-unlocked", "futex-wake-no-lock", "lost-ipi", "missing-shootdown"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

TEST(Determinism, SameSeedSameTraceHash) {
  RunSpec spec;
  spec.scenario = "condvar";
  spec.seed = 99;
  spec.strategy.kind = StrategyKind::Random;
  const RunResult a = run_one(spec);
  const RunResult b = run_one(spec);
  ASSERT_EQ(a.outcome, Outcome::Finished) << a.message;
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.steps, b.steps);
  spec.seed = 100;
  EXPECT_NE(run_one(spec).trace_hash, a.trace_hash);
}

TEST(Determinism, ResultsDoNotDependOnJobs) {
  ExploreSpec spec = spec_for("mutex", StrategyKind::Pct, 300);
  spec.shard_count = 1;
  spec.shard_index = 0;
  const ExploreResult one = explore(spec);
  spec.jobs = 3;
  const ExploreResult three = explore(spec);
  EXPECT_EQ(one.digest, three.digest);
  EXPECT_EQ(one.distinct_interleavings, three.distinct_interleavings);
}

TEST(Determinism, SameDigestInTwoProcesses) {
  auto digest_of_process = [] {
    const std::string command = std::string(TANDEM_SIM_BINARY) +
                                " explore semaphore --schedules 200 --seed 5 --jobs 2 --json";
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    std::string out;
    std::array<char, 4096> buffer{};
    while (pipe && fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) out += buffer.data();
    const size_t at = out.find("\"digest\":\"");
    return at == std::string::npos ? std::string("none: ") + out : out.substr(at + 10, 18);
  };
  const std::string first = digest_of_process();
  EXPECT_EQ(first.rfind("0x", 0), 0u) << first;
  EXPECT_EQ(first, digest_of_process());
}

TEST(Shards, CoverTheRangeExactlyOnce) {
  ExploreSpec spec = spec_for("join", StrategyKind::Random, 90);
  spec.shard_count = 1;
  spec.shard_index = 0;
  const ExploreResult whole = explore(spec);
  uint64_t digest = 0, schedules = 0;
  for (uint32_t i = 0; i < 3; ++i) {
    spec.shard_count = 3;
    spec.shard_index = i;
    const ExploreResult part = explore(spec);
    digest += part.digest;
    schedules += part.schedules_run;
  }
  EXPECT_EQ(schedules, 90u);
  EXPECT_EQ(digest, whole.digest);
}

TEST(ReplayFile, MalformedFilesAreRejectedWithAReason) {
  ReplayFile f;
  std::string error;
  for (const char* text : {"", "{", "[]", "{\"format\":\"tandem-replay-1\"}",
                           "{\"format\":\"tandem-replay-1\",\"cpus\":\"four\"}"}) {
    error.clear();
    EXPECT_FALSE(read_replay_json(text, &f, &error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

TEST(Hang, SpinYieldFutexModeStillTerminates) {
  RunSpec spec;
  spec.scenario = "mutex";
  spec.spin_yield_futex = true;
  spec.strategy.kind = StrategyKind::Random;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    spec.seed = seed;
    const RunResult r = run_one(spec);
    EXPECT_EQ(r.outcome, Outcome::Finished) << r.message;
  }
}

}  // namespace
}  // namespace sim

namespace sim {
namespace {

// Replay keeps the running CPU between decisions, but gives way at a spin-wait: so a decision
// list with decisions removed (shrinking) or invented (fuzzing) never starves a lock holder.
TEST(Replay, ListsWithoutDecisionsStillFinish) {
  const std::vector<Decision> none;
  for (const char* scenario : {"mutex", "condvar", "semaphore", "barrier", "rwlock", "join"}) {
    RunSpec spec;
    spec.scenario = scenario;
    spec.cpus = 4;
    spec.strategy.kind = StrategyKind::Replay;
    spec.strategy.replay = &none;
    const RunResult r = run_one(spec);
    EXPECT_EQ(r.outcome, Outcome::Finished) << scenario << ": " << r.message;
  }
}

}  // namespace
}  // namespace sim

namespace sim {
namespace {

// The networked scenarios through explore: job processes instead of threads, the same digest
// whatever --jobs is, with faults on the wire.
TEST(Network, ExploreWithFaultsPassesAndDoesNotDependOnJobs) {
  for (const char* scenario : {"tcp-echo", "tcp-bulk"}) {
    ExploreSpec spec = spec_for(scenario, StrategyKind::Pct, 8);
    spec.shard_count = 1;
    spec.shard_index = 0;
    spec.run.threads = 2;
    spec.run.iterations = scenario == std::string("tcp-bulk") ? 2 : 5;
    spec.run.net_faults = "drop=0.05,dup=0.02,reorder=0.05,corrupt=0.01";
    const ExploreResult one = explore(spec);
    EXPECT_EQ(one.failures, 0u) << scenario << ": " << outcome_name(one.failing_result.outcome) << ": "
                                << one.failing_result.message;
    spec.jobs = 2;
    const ExploreResult two = explore(spec);
    EXPECT_EQ(one.digest, two.digest) << scenario;
    EXPECT_EQ(one.total_steps, two.total_steps) << scenario;
  }
}

std::string run_command(const std::string& arguments, int* status) {
  const std::string command = std::string(TANDEM_SIM_BINARY) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  std::array<char, 4096> buffer{};
  while (pipe != nullptr && fgets(buffer.data(), buffer.size(), pipe) != nullptr) out += buffer.data();
  const int raw = pipe != nullptr ? pclose(pipe) : -1;
  *status = raw >= 0 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

TEST(Network, NetFaultsOptionIsValidated) {
  int status = 0;
  std::string out = run_command("explore tcp-echo --net-faults drop=1.5 --schedules 1", &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("probability"), std::string::npos) << out;
  out = run_command("explore tcp-echo --net-faults loss=0.1 --schedules 1", &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("not a fault"), std::string::npos) << out;
  out = run_command("explore mutex --net-faults drop=0.1 --schedules 1", &status);
  EXPECT_EQ(status, 2) << out;
  out = run_command("explore tcp-echo --net-faults drop=0.05,dup=0.02,reorder=0.05 --schedules 4 --jobs 2", &status);
  EXPECT_EQ(status, 0) << out;
}

// A failure found under faults (a step budget too small for the run: a hang) is written with its
// faults, and the replay reproduces it exactly.
TEST(Network, FailureUnderFaultsReplays) {
  char dir[] = "/tmp/tandem-net-replay-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  int status = 0;
  const std::string out = run_command(std::string("explore tcp-echo --threads 2 --net-faults drop=0.1,corrupt=0.02 "
                                                  "--schedules 3 --jobs 1 --max-steps 6000 --strategy random --out ") +
                                          dir,
                                      &status);
  EXPECT_EQ(status, 1) << out;
  const size_t at = out.find(std::string(dir) + "/failure-tcp-echo-");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string path = out.substr(at, out.find(".json", at) + 5 - at);
  const std::string replayed = run_command("replay --rows 1 " + path, &status);
  EXPECT_EQ(status, 1) << replayed;
  EXPECT_NE(replayed.find("reproduced exactly"), std::string::npos) << replayed;
  const std::string original = run_command("replay --original --rows 1 " + path, &status);
  EXPECT_EQ(status, 1) << original;
  EXPECT_NE(original.find("reproduced exactly"), std::string::npos) << original;
  std::system((std::string("rm -rf ") + dir).c_str());
}

}  // namespace
}  // namespace sim
