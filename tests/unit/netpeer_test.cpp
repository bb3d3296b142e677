// The simulated network (sim/netpeer, sim/virtio/link.h) under the tcp-echo and tcp-bulk
// scenarios: seeded schedules pass with and without faults on the wire; the same seed gives the
// same run twice in one process (the peer's lwIP and the kernel's are reset between runs), also
// after other runs; a wire that corrupts payload behind the checksums' back is caught by the
// scenario's end-to-end check; and the replay file carries the faults.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ostream>
#include <string>

#include "sim/harness/explore.h"
#include "sim/harness/harness.h"

namespace sim {
namespace {

constexpr const char* kFaults = "drop=0.05,dup=0.02,reorder=0.05,corrupt=0.01";

RunSpec spec_for(const std::string& scenario, uint64_t seed, const std::string& faults, StrategyKind kind) {
  RunSpec spec;
  spec.scenario = scenario;
  spec.cpus = 2 + seed % 3;
  spec.threads = scenario == "tcp-bulk" ? 2 : 4;
  spec.iterations = scenario == "tcp-bulk" ? 4 : 10;  // tcp-bulk: 100 KiB per connection
  spec.seed = mix_seed(20261127, seed);
  spec.strategy.kind = kind;
  spec.strategy.depth = 3;
  spec.strategy.expected_steps = 20'000;
  spec.net_faults = faults;
  return spec;
}

std::string describe(const RunResult& r) { return std::string(outcome_name(r.outcome)) + ": " + r.message; }

struct Shape {
  const char* scenario;
  const char* faults;
};

void PrintTo(const Shape& shape, std::ostream* out) { *out << shape.scenario << " faults=" << shape.faults; }

class NetScenario : public ::testing::TestWithParam<Shape> {};

TEST_P(NetScenario, PassesSeededSchedules) {
  const Shape shape = GetParam();
  for (uint64_t seed = 0; seed < 6; ++seed) {
    const StrategyKind kind = seed % 3 == 0 ? StrategyKind::Random : seed % 3 == 1 ? StrategyKind::Pct : StrategyKind::RoundRobin;
    const RunResult r = run_one(spec_for(shape.scenario, seed, shape.faults, kind));
    EXPECT_EQ(r.outcome, Outcome::Finished) << shape.scenario << " seed " << seed << ": " << describe(r);
  }
}

TEST_P(NetScenario, SameSeedSameTrace) {
  const Shape shape = GetParam();
  const RunSpec spec = spec_for(shape.scenario, 7, shape.faults, StrategyKind::Pct);
  const RunResult first = run_one(spec);
  // Another run in between: nothing of it may reach the next one.
  (void)run_one(spec_for(shape.scenario, 8, kFaults, StrategyKind::Random));
  const RunResult second = run_one(spec);
  EXPECT_EQ(first.outcome, Outcome::Finished) << describe(first);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_EQ(first.steps, second.steps);
  EXPECT_EQ(first.virtual_ns, second.virtual_ns);
  EXPECT_EQ(first.decisions.size(), second.decisions.size());
}

INSTANTIATE_TEST_SUITE_P(Net, NetScenario,
                         ::testing::Values(Shape{"tcp-echo", ""}, Shape{"tcp-echo", kFaults}, Shape{"tcp-bulk", ""},
                                           Shape{"tcp-bulk", kFaults}),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           std::string name = std::string(info.param.scenario) + (info.param.faults[0] ? "_faults" : "_clean");
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

// In one process, one run after another (as explore's job processes run them): the peer's lwIP
// and the kernel's are reset between runs, so a run repeats exactly after others.
TEST(NetScenario, RunsRepeatInOneProcess) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    mark_process_disposable();
    const RunSpec a = spec_for("tcp-echo", 11, kFaults, StrategyKind::Pct);
    const RunResult first = run_one(a);
    const RunResult other = run_one(spec_for("tcp-bulk", 12, kFaults, StrategyKind::Random));
    const RunResult second = run_one(a);
    const bool same = first.outcome == Outcome::Finished && other.outcome == Outcome::Finished &&
                      first.trace_hash == second.trace_hash && first.steps == second.steps;
    _exit(same ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

TEST(NetScenario, FaultsChangeTheRun) {
  const RunResult clean = run_one(spec_for("tcp-echo", 3, "", StrategyKind::Pct));
  const RunResult faulty = run_one(spec_for("tcp-echo", 3, "drop=0.2", StrategyKind::Pct));
  EXPECT_EQ(faulty.outcome, Outcome::Finished) << describe(faulty);
  EXPECT_NE(clean.trace_hash, faulty.trace_hash);
}

TEST(NetScenario, SilentCorruptionIsCaught) {
  for (const char* scenario : {"tcp-echo", "tcp-bulk"}) {
    RunSpec spec = spec_for(scenario, 1, "", StrategyKind::Random);
    spec.net_silent_corruption = true;
    const RunResult r = run_one(spec);
    EXPECT_EQ(r.outcome, Outcome::Failed) << scenario << ": " << describe(r);
    EXPECT_NE(r.message.find("came back as"), std::string::npos) << scenario << ": " << r.message;
  }
}

TEST(NetScenario, BadFaultsAreAFailureNotACrash) {
  const RunResult r = run_one(spec_for("tcp-echo", 1, "drop=2", StrategyKind::Random));
  EXPECT_EQ(r.outcome, Outcome::Failed);
  EXPECT_NE(r.message.find("bad network faults"), std::string::npos) << r.message;
}

TEST(NetScenario, ReplayFileCarriesTheFaults) {
  // A run cut short by the step budget fails (a hang): its replay file must reproduce it, faults
  // and all.
  RunSpec spec = spec_for("tcp-echo", 2, kFaults, StrategyKind::Random);
  spec.max_steps = 9'000;
  const RunResult r = run_one(spec);
  ASSERT_EQ(r.outcome, Outcome::Hang) << describe(r);
  ReplayFile file;
  file.spec = spec;
  file.original_strategy = "random";
  file.outcome = r.outcome;
  file.message = r.message;
  file.trace_hash = r.trace_hash;
  file.steps = r.steps;
  file.decisions = r.decisions;
  ReplayFile read;
  std::string error;
  ASSERT_TRUE(read_replay_json(write_replay_json(file), &read, &error)) << error;
  EXPECT_EQ(read.spec.net_faults, kFaults);
  const RunResult again = replay(read, true);
  EXPECT_EQ(again.outcome, r.outcome);
  EXPECT_EQ(again.message, r.message);
  EXPECT_EQ(again.trace_hash, r.trace_hash);
}

}  // namespace
}  // namespace sim
