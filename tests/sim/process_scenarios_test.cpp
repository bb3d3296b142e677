// The process and signal scenarios (sim/scenarios/process_scenarios.cpp) pass many schedules
// under every strategy.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "sim/harness/explore.h"

namespace sim {
namespace {

struct ProcessCase {
  const char* scenario;
  StrategyKind strategy;
};

class ProcessScenario : public ::testing::TestWithParam<ProcessCase> {};

TEST_P(ProcessScenario, Passes2000Schedules) {
  const ProcessCase c = GetParam();
  ExploreSpec spec;
  spec.run.scenario = c.scenario;
  spec.run.cpus = 4;
  spec.run.threads = 3;
  spec.run.iterations = 4;
  spec.run.strategy.kind = c.strategy;
  spec.run.strategy.depth = 3;
  spec.base_seed = 20261126;
  spec.schedules = 2000;
  spec.jobs = 1;
  if (const char* total = std::getenv("GTEST_TOTAL_SHARDS")) spec.shard_count = static_cast<uint32_t>(std::atoi(total));
  if (const char* index = std::getenv("GTEST_SHARD_INDEX")) spec.shard_index = static_cast<uint32_t>(std::atoi(index));
  if (spec.shard_count == 0) spec.shard_count = 1;
  const ExploreResult r = explore(spec);
  EXPECT_EQ(r.failures, 0u) << c.scenario << " under " << strategy_name(c.strategy) << ": schedule "
                            << r.first_failure_schedule.value_or(0) << ": " << outcome_name(r.failing_result.outcome)
                            << ": " << r.failing_result.message;
  EXPECT_GT(r.distinct_interleavings, 1u) << "the strategy explored one interleaving only";
}

std::vector<ProcessCase> process_cases() {
  std::vector<ProcessCase> cases;
  for (const char* scenario : {"fork-cow", "signal-futex"}) {
    for (StrategyKind k : {StrategyKind::Random, StrategyKind::Pct, StrategyKind::RoundRobin}) cases.push_back({scenario, k});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllStrategies, ProcessScenario, ::testing::ValuesIn(process_cases()),
                         [](const ::testing::TestParamInfo<ProcessCase>& info) {
                           std::string name = std::string(info.param.scenario) + "_" + strategy_name(info.param.strategy);
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace sim
