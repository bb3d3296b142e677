// Schedule exploration: runs many schedules of one scenario, in parallel or sharded, and
// reports the lowest-numbered failure, whatever the machine; shrinks failures; reads and writes
// replay files.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/harness/harness.h"

namespace sim {

struct ExploreSpec {
  RunSpec run;              // everything but the seed, which each schedule draws
  uint64_t base_seed = 0;
  uint64_t schedules = 1000;
  uint32_t jobs = 1;
  uint32_t shard_index = 0;
  uint32_t shard_count = 1;
};

struct ExploreResult {
  uint64_t schedules_run = 0;  // schedules run up to and including the first failure
  uint64_t failures = 0;
  double seconds = 0;
  uint64_t distinct_interleavings = 0;
  uint64_t total_steps = 0;
  // The sum of every schedule's trace hash: the same for the same schedules, whatever --jobs is.
  uint64_t digest = 0;
  std::optional<uint64_t> first_failure_schedule;
  RunSpec failing_spec;
  RunResult failing_result;
};

// The seed of schedule i.
uint64_t schedule_seed(uint64_t base_seed, uint64_t index);
// PCT spreads its change points over the expected length of a run: measured once from a
// calibration run that depends only on the spec, so every job and shard agrees.
uint64_t calibrate_expected_steps(const RunSpec& spec, uint64_t base_seed);

using Progress = std::function<void(uint64_t done, uint64_t total)>;
ExploreResult explore(const ExploreSpec& spec, const Progress& progress = {});

struct Shrunk {
  std::vector<Decision> decisions;
  RunResult result;
  uint64_t attempts = 0;
};
// Removes decisions while the run still fails the same way.
Shrunk shrink(const RunSpec& spec, const std::vector<Decision>& decisions, Outcome outcome,
              uint64_t max_attempts = 4000, double max_seconds = 30);

// Replay files (JSON).
struct ReplayFile {
  RunSpec spec;  // with the original strategy's name in original_strategy
  std::string original_strategy;
  uint64_t base_seed = 0;
  uint64_t schedule_index = 0;
  Outcome outcome = Outcome::Failed;
  std::string message;
  uint64_t trace_hash = 0;
  uint64_t steps = 0;
  std::vector<Decision> decisions;
  bool has_shrunk = false;
  std::vector<Decision> shrunk_decisions;
  Outcome shrunk_outcome = Outcome::Failed;
  std::string shrunk_message;
  uint64_t shrunk_trace_hash = 0;
  uint64_t shrunk_steps = 0;
};
std::string write_replay_json(const ReplayFile& file);
// Parses a replay file; on error returns false and explains in *error.
bool read_replay_json(const std::string& text, ReplayFile* file, std::string* error);

// Runs a replay (shrunk decisions unless `original`), with tracing on.
RunResult replay(const ReplayFile& file, bool original);

// Per-CPU columns of the last `rows` trace events, and Chrome trace-event JSON.
std::string render_columns(const RunResult& result, uint32_t cpus, size_t rows);
std::string render_chrome_trace(const RunResult& result, uint32_t cpus);

}  // namespace sim
