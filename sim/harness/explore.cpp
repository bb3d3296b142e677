#include "sim/harness/explore.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "sim/virtio/link.h"

namespace sim {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

RunSpec with_seed(const RunSpec& base, uint64_t seed) {
  RunSpec spec = base;
  spec.seed = seed;
  return spec;
}

}  // namespace

uint64_t schedule_seed(uint64_t base_seed, uint64_t index) { return mix_seed(base_seed, index); }

uint64_t calibrate_expected_steps(const RunSpec& spec, uint64_t base_seed) {
  RunSpec calibration = with_seed(spec, mix_seed(base_seed, ~0ull));
  calibration.strategy.kind = StrategyKind::RoundRobin;
  calibration.plant = 0;
  calibration.trace = false;
  const RunResult r = run_one(calibration);
  return std::max<uint64_t>(r.steps, 100);
}

ExploreResult explore(const ExploreSpec& spec, const Progress& progress) {
  ExploreResult result;
  const auto start = Clock::now();
  RunSpec base = spec.run;
  if (base.strategy.kind == StrategyKind::Pct) base.strategy.expected_steps = calibrate_expected_steps(base, spec.base_seed);

  // The schedules of this shard, in order.
  std::vector<uint64_t> indices;
  for (uint64_t i = spec.shard_index; i < spec.schedules; i += std::max<uint32_t>(spec.shard_count, 1)) indices.push_back(i);

  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<uint64_t> lowest_failure{~0ull};  // position in `indices`
  std::atomic<uint64_t> steps{0};
  std::atomic<uint64_t> digest{0};
  std::mutex mutex;
  std::vector<uint64_t> hashes;

  auto worker = [&] {
    std::vector<uint64_t> local_hashes;
    for (;;) {
      const size_t position = next.fetch_add(1);
      if (position >= indices.size() || position > lowest_failure.load()) break;
      const RunResult r = run_one(with_seed(base, schedule_seed(spec.base_seed, indices[position])));
      steps += r.steps;
      if (r.outcome == Outcome::Finished) digest += r.trace_hash;
      local_hashes.push_back(r.trace_hash);
      if (r.outcome != Outcome::Finished) {
        uint64_t current = lowest_failure.load();
        while (position < current && !lowest_failure.compare_exchange_weak(current, position)) {
        }
      }
      const size_t finished = done.fetch_add(1) + 1;
      if (progress && (finished % 64 == 0 || finished == indices.size())) {
        std::lock_guard<std::mutex> lock(mutex);
        progress(finished, indices.size());
      }
      if (local_hashes.size() >= 256) {
        std::lock_guard<std::mutex> lock(mutex);
        hashes.insert(hashes.end(), local_hashes.begin(), local_hashes.end());
        local_hashes.clear();
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    hashes.insert(hashes.end(), local_hashes.begin(), local_hashes.end());
  };

  const uint32_t jobs = std::max<uint32_t>(spec.jobs, 1);
  if (is_networked(base.scenario)) {
    // lwIP's state is process-wide (the kernel's and the peer's): one networked simulation per
    // process at a time, and a failed run may leave it unusable (run_one in harness.h). Job j
    // runs positions j, j + jobs, ... one after another in a child process, stops at its first
    // failure, and reports each schedule's (position, trace hash, steps, outcome) through a pipe.
    struct Record {
      uint64_t position, hash, steps, finished;
    };
    std::vector<int> fds;
    std::vector<pid_t> children;
    std::fflush(nullptr);
    for (uint32_t j = 0; j < jobs && j < indices.size(); ++j) {
      int p[2];
      if (pipe(p) != 0) {
        std::perror("explore: pipe");
        std::abort();
      }
      const pid_t pid = fork();
      if (pid < 0) {
        std::perror("explore: fork");
        std::abort();
      }
      if (pid == 0) {
        close(p[0]);
        mark_process_disposable();
        for (size_t position = j; position < indices.size(); position += jobs) {
          const RunResult r = run_one(with_seed(base, schedule_seed(spec.base_seed, indices[position])));
          const Record record{position, r.trace_hash, r.steps, r.outcome == Outcome::Finished ? 1u : 0u};
          if (write(p[1], &record, sizeof(record)) != static_cast<ssize_t>(sizeof(record))) _exit(2);
          if (r.outcome != Outcome::Finished) break;  // later positions of this job cannot be the lowest failure
        }
        _exit(0);
      }
      close(p[1]);
      fds.push_back(p[0]);
      children.push_back(pid);
    }
    std::vector<std::string> partial(fds.size());
    size_t open_fds = fds.size();
    while (open_fds > 0) {
      std::vector<pollfd> polls;
      std::vector<size_t> which;
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i] >= 0) {
          polls.push_back(pollfd{fds[i], POLLIN, 0});
          which.push_back(i);
        }
      }
      if (poll(polls.data(), polls.size(), -1) < 0) continue;
      for (size_t k = 0; k < polls.size(); ++k) {
        if (polls[k].revents == 0) continue;
        const size_t i = which[k];
        char buffer[4096];
        const ssize_t n = read(fds[i], buffer, sizeof(buffer));
        if (n <= 0) {
          close(fds[i]);
          fds[i] = -1;
          --open_fds;
          continue;
        }
        partial[i].append(buffer, static_cast<size_t>(n));
        while (partial[i].size() >= sizeof(Record)) {
          Record record;
          std::memcpy(&record, partial[i].data(), sizeof(record));
          partial[i].erase(0, sizeof(record));
          steps += record.steps;
          hashes.push_back(record.hash);
          if (record.finished) {
            digest += record.hash;
          } else if (record.position < lowest_failure.load()) {
            lowest_failure = record.position;
          }
          const size_t finished = done.fetch_add(1) + 1;
          if (progress && (finished % 64 == 0 || finished == indices.size())) progress(finished, indices.size());
        }
      }
    }
    for (pid_t pid : children) {
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "explore: a job's process ended abnormally (status 0x%x)\n", status);
        std::abort();
      }
    }
  } else if (jobs == 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (uint32_t j = 0; j < jobs; ++j) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  result.seconds = since(start);
  std::sort(hashes.begin(), hashes.end());
  result.distinct_interleavings = static_cast<uint64_t>(std::unique(hashes.begin(), hashes.end()) - hashes.begin());
  result.total_steps = steps.load();
  result.digest = digest.load();
  const uint64_t failing = lowest_failure.load();
  if (failing != ~0ull) {
    // Report the lowest-numbered failing schedule, rerun here so the report does not depend on
    // which job found it.
    result.failures = 1;
    result.schedules_run = failing + 1;
    result.first_failure_schedule = indices[failing];
    result.failing_spec = with_seed(base, schedule_seed(spec.base_seed, indices[failing]));
    result.failing_result = run_one(result.failing_spec);
  } else {
    result.schedules_run = indices.size();
  }
  return result;
}

Shrunk shrink(const RunSpec& spec, const std::vector<Decision>& decisions, Outcome outcome, uint64_t max_attempts,
              double max_seconds) {
  const auto start = Clock::now();
  RunSpec replay_spec = spec;
  replay_spec.strategy.kind = StrategyKind::Replay;
  Shrunk best;
  best.decisions = decisions;
  auto attempt = [&](const std::vector<Decision>& candidate) {
    replay_spec.strategy.replay = &candidate;
    ++best.attempts;
    RunResult r = run_one(replay_spec);
    return r;
  };
  best.result = attempt(best.decisions);
  if (best.result.outcome != outcome) return best;  // not reproducible this way: keep as is
  size_t chunk = std::max<size_t>(best.decisions.size() / 2, 1);
  while (chunk >= 1 && !best.decisions.empty()) {
    bool progressed = false;
    for (size_t i = 0; i < best.decisions.size();) {
      if (best.attempts >= max_attempts || since(start) > max_seconds) {
        chunk = 0;
        break;
      }
      std::vector<Decision> candidate;
      candidate.reserve(best.decisions.size());
      candidate.insert(candidate.end(), best.decisions.begin(), best.decisions.begin() + static_cast<long>(i));
      candidate.insert(candidate.end(), best.decisions.begin() + static_cast<long>(std::min(i + chunk, best.decisions.size())),
                       best.decisions.end());
      RunResult r = attempt(candidate);
      if (r.outcome == outcome) {
        best.decisions = std::move(candidate);
        best.result = std::move(r);
        progressed = true;
      } else {
        i += chunk;
      }
    }
    if (chunk == 0) break;
    if (!progressed) chunk /= 2;
  }
  // The final result with the final decisions (the loop's last success).
  best.result = attempt(best.decisions);
  return best;
}

// ---------------------------------------------------------------------------------------------
// Replay files
// ---------------------------------------------------------------------------------------------

namespace {

nlohmann::json decisions_json(const std::vector<Decision>& decisions) {
  nlohmann::json out = nlohmann::json::array();
  for (const Decision& d : decisions) {
    out.push_back({d.step, d.cpu, d.kind == Decision::Switch ? "switch" : d.kind == Decision::Stay ? "stay" : "timer"});
  }
  return out;
}

std::string hex(uint64_t v) {
  char buffer[24];
  std::snprintf(buffer, sizeof(buffer), "0x%016llx", static_cast<unsigned long long>(v));
  return buffer;
}

bool parse_outcome(const std::string& text, Outcome* out) {
  for (Outcome o : {Outcome::Finished, Outcome::Deadlock, Outcome::Hang, Outcome::Panic, Outcome::Failed}) {
    if (text == outcome_name(o)) {
      *out = o;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string write_replay_json(const ReplayFile& f) {
  nlohmann::json j;
  j["format"] = "tandem-replay-1";
  j["scenario"] = f.spec.scenario;
  j["cpus"] = f.spec.cpus;
  j["threads"] = f.spec.threads;
  j["iterations"] = f.spec.iterations;
  j["strategy"] = f.original_strategy;
  j["depth"] = f.spec.strategy.depth;
  j["expected_steps"] = f.spec.strategy.expected_steps;
  j["early_timer_one_in"] = f.spec.strategy.early_timer_one_in;
  j["seed"] = f.spec.seed;
  j["base_seed"] = f.base_seed;
  j["schedule"] = f.schedule_index;
  j["plant"] = plant_name(f.spec.plant);
  j["max_steps"] = f.spec.max_steps;
  j["futex_mode"] = f.spec.spin_yield_futex ? "spin-yield" : "blocking";
  j["max_threads"] = f.spec.max_threads;
  if (is_networked(f.spec.scenario)) j["net_faults"] = f.spec.net_faults;
  j["outcome"] = outcome_name(f.outcome);
  j["message"] = f.message;
  j["trace_hash"] = hex(f.trace_hash);
  j["steps"] = f.steps;
  j["decisions"] = decisions_json(f.decisions);
  if (f.has_shrunk) {
    j["shrunk"] = {{"outcome", outcome_name(f.shrunk_outcome)},
                   {"message", f.shrunk_message},
                   {"trace_hash", hex(f.shrunk_trace_hash)},
                   {"steps", f.shrunk_steps},
                   {"decisions", decisions_json(f.shrunk_decisions)}};
  }
  return j.dump(1) + "\n";
}

bool read_replay_json(const std::string& text, ReplayFile* f, std::string* error) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    *error = "not valid JSON";
    return false;
  }
  if (!j.is_object() || j.value("format", "") != "tandem-replay-1") {
    *error = "not a tandem replay file (\"format\": \"tandem-replay-1\" missing)";
    return false;
  }
  auto need = [&](const char* key, nlohmann::json::value_t type) -> bool {
    if (!j.contains(key)) {
      *error = std::string("missing field \"") + key + "\"";
      return false;
    }
    const auto t = j[key].type();
    const bool number = type == nlohmann::json::value_t::number_unsigned;
    if (number ? t != nlohmann::json::value_t::number_unsigned : t != type) {
      *error = std::string("field \"") + key + "\" has the wrong type";
      return false;
    }
    return true;
  };
  using V = nlohmann::json::value_t;
  for (const char* key : {"cpus", "threads", "iterations", "depth", "expected_steps", "early_timer_one_in", "seed",
                          "base_seed", "schedule", "max_steps", "steps"}) {
    if (!need(key, V::number_unsigned)) return false;
  }
  for (const char* key : {"scenario", "strategy", "plant", "outcome", "message", "trace_hash"}) {
    if (!need(key, V::string)) return false;
  }
  if (!need("decisions", V::array)) return false;
  f->spec.scenario = j["scenario"].get<std::string>();
  if (find_scenario(f->spec.scenario) == nullptr) {
    *error = "unknown scenario \"" + f->spec.scenario + "\"";
    return false;
  }
  f->spec.cpus = j["cpus"].get<uint32_t>();
  if (f->spec.cpus < 1 || f->spec.cpus > hal::kMaxCpus) {
    *error = "cpus must be between 1 and 64";
    return false;
  }
  f->spec.threads = j["threads"].get<uint32_t>();
  f->spec.iterations = j["iterations"].get<uint32_t>();
  if (const char* bad = find_scenario(f->spec.scenario)->validate(f->spec.threads, f->spec.iterations)) {
    *error = bad;
    return false;
  }
  f->original_strategy = j["strategy"].get<std::string>();
  StrategyKind kind;
  if (!parse_strategy(f->original_strategy, &kind)) {
    *error = "unknown strategy \"" + f->original_strategy + "\"";
    return false;
  }
  f->spec.strategy.kind = kind;
  f->spec.strategy.depth = j["depth"].get<uint32_t>();
  f->spec.strategy.expected_steps = j["expected_steps"].get<uint64_t>();
  f->spec.strategy.early_timer_one_in = j["early_timer_one_in"].get<uint32_t>();
  f->spec.seed = j["seed"].get<uint64_t>();
  f->base_seed = j["base_seed"].get<uint64_t>();
  f->schedule_index = j["schedule"].get<uint64_t>();
  if (!parse_plant(j["plant"].get<std::string>(), &f->spec.plant)) {
    *error = "unknown planted bug \"" + j["plant"].get<std::string>() + "\"";
    return false;
  }
  f->spec.max_steps = j["max_steps"].get<uint64_t>();
  if (f->spec.max_steps == 0 || f->spec.max_steps > 1'000'000'000ull) {
    *error = "max_steps out of range";
    return false;
  }
  f->spec.spin_yield_futex = j.value("futex_mode", "blocking") == "spin-yield";
  f->spec.max_threads = j.value("max_threads", 0u);
  if (j.contains("net_faults")) {
    if (!j["net_faults"].is_string()) {
      *error = "field \"net_faults\" has the wrong type";
      return false;
    }
    f->spec.net_faults = j["net_faults"].get<std::string>();
    LinkFaults faults;
    const std::string bad = parse_link_faults(f->spec.net_faults, &faults);
    if (!bad.empty()) {
      *error = "net_faults: " + bad;
      return false;
    }
  }
  if (!parse_outcome(j["outcome"].get<std::string>(), &f->outcome)) {
    *error = "unknown outcome \"" + j["outcome"].get<std::string>() + "\"";
    return false;
  }
  f->message = j["message"].get<std::string>();
  f->trace_hash = std::stoull(j["trace_hash"].get<std::string>(), nullptr, 16);
  f->steps = j["steps"].get<uint64_t>();
  auto parse_decisions = [&](const nlohmann::json& array, std::vector<Decision>* out) -> bool {
    uint64_t last = 0;
    for (const auto& item : array) {
      if (!item.is_array() || item.size() != 3 || !item[0].is_number_unsigned() || !item[1].is_number_unsigned() ||
          !item[2].is_string()) {
        *error = "a decision must be [step, cpu, \"switch\", \"stay\" or \"timer\"]";
        return false;
      }
      Decision d{item[0].get<uint64_t>(), item[1].get<uint32_t>(), Decision::Switch};
      const std::string kind_text = item[2].get<std::string>();
      if (kind_text == "timer") d.kind = Decision::EarlyTimer;
      else if (kind_text == "stay") d.kind = Decision::Stay;
      else if (kind_text != "switch") {
        *error = "a decision's kind must be \"switch\", \"stay\" or \"timer\"";
        return false;
      }
      if (d.cpu >= f->spec.cpus) {
        *error = "a decision names a CPU the machine does not have";
        return false;
      }
      if (d.step < last) {
        *error = "decisions must be in step order";
        return false;
      }
      last = d.step;
      out->push_back(d);
    }
    return true;
  };
  if (!parse_decisions(j["decisions"], &f->decisions)) return false;
  if (j.contains("shrunk")) {
    const auto& s = j["shrunk"];
    if (!s.is_object() || !s.contains("decisions") || !s["decisions"].is_array() || !s.contains("outcome") ||
        !s["outcome"].is_string() || !s.contains("trace_hash") || !s["trace_hash"].is_string()) {
      *error = "the \"shrunk\" section is malformed";
      return false;
    }
    f->has_shrunk = true;
    if (!parse_decisions(s["decisions"], &f->shrunk_decisions)) return false;
    if (!parse_outcome(s["outcome"].get<std::string>(), &f->shrunk_outcome)) {
      *error = "unknown shrunk outcome";
      return false;
    }
    f->shrunk_message = s.value("message", "");
    f->shrunk_trace_hash = std::stoull(s["trace_hash"].get<std::string>(), nullptr, 16);
    f->shrunk_steps = s.value("steps", 0ull);
  }
  return true;
}

RunResult replay(const ReplayFile& file, bool original) {
  RunSpec spec = file.spec;
  spec.strategy.kind = StrategyKind::Replay;
  const std::vector<Decision>& decisions = (original || !file.has_shrunk) ? file.decisions : file.shrunk_decisions;
  spec.strategy.replay = &decisions;
  spec.trace = true;
  return run_one(spec);
}

// ---------------------------------------------------------------------------------------------
// Pictures
// ---------------------------------------------------------------------------------------------

namespace {

std::string syscall_label(uint64_t nr) {
  switch (nr) {
    case 24: return "sched_yield";
    case 35: return "nanosleep";
    case 39: return "getpid";
    case 56: return "clone";
    case 60: return "exit";
    case 186: return "gettid";
    case 202: return "futex";
    case 218: return "set_tid_address";
    case 228: return "clock_gettime";
    case 230: return "clock_nanosleep";
    case 231: return "exit_group";
    default: return "syscall " + std::to_string(nr);
  }
}

std::string interrupt_label(uint64_t bit) {
  switch (bit) {
    case kIrqTimer: return "timer irq";
    case kIrqReschedule: return "resched ipi";
    case kIrqTlb: return "tlb ipi";
    default: return "nmi";
  }
}

std::string event_label(const RunResult& r, const TraceEvent& e) {
  const std::string who = e.fiber < r.fiber_names.size() ? r.fiber_names[e.fiber] : "?";
  switch (e.kind) {
    case TraceEvent::Run: return "> " + who;
    case TraceEvent::SyscallIn: return who + " " + syscall_label(e.detail) + "(";
    case TraceEvent::SyscallOut: return who + " ) " + syscall_label(e.detail);
    case TraceEvent::Interrupt: return who + " <" + interrupt_label(e.detail) + ">";
    case TraceEvent::Halt: return "hlt";
    case TraceEvent::Wake: return "wake";
    case TraceEvent::Note: return who;
  }
  return "?";
}

}  // namespace

std::string render_columns(const RunResult& r, uint32_t cpus, size_t rows) {
  const size_t width = 22;
  std::string out;
  char head[64];
  std::snprintf(head, sizeof(head), "%10s %10s ", "step", "time(us)");
  out += head;
  for (uint32_t c = 0; c < cpus; ++c) {
    std::string name = "CPU" + std::to_string(c);
    name.resize(width, ' ');
    out += "| " + name;
  }
  out += "\n";
  const size_t first = r.trace.size() > rows ? r.trace.size() - rows : 0;
  if (first > 0) out += "  ... " + std::to_string(first) + " earlier events (see --trace-out)\n";
  for (size_t i = first; i < r.trace.size(); ++i) {
    const TraceEvent& e = r.trace[i];
    char left[64];
    std::snprintf(left, sizeof(left), "%10llu %10.2f ", static_cast<unsigned long long>(e.step), e.time_ns / 1000.0);
    out += left;
    for (uint32_t c = 0; c < cpus; ++c) {
      std::string cell = c == e.cpu ? event_label(r, e) : "";
      if (cell.size() > width) cell.resize(width);
      cell.resize(width, ' ');
      out += "| " + cell;
    }
    out += "\n";
  }
  return out;
}

std::string render_chrome_trace(const RunResult& r, uint32_t cpus) {
  nlohmann::json events = nlohmann::json::array();
  for (uint32_t c = 0; c < cpus; ++c) {
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", c}, {"args", {{"name", "CPU " + std::to_string(c)}}}});
  }
  // A slice per stretch of one context on one CPU, instants for the rest.
  std::vector<const TraceEvent*> open(cpus, nullptr);
  auto close = [&](uint32_t cpu, uint64_t end_ns) {
    const TraceEvent* e = open[cpu];
    if (e == nullptr) return;
    const std::string who = e->fiber < r.fiber_names.size() ? r.fiber_names[e->fiber] : "?";
    events.push_back({{"name", who}, {"ph", "X"}, {"pid", 1}, {"tid", cpu}, {"ts", e->time_ns / 1000.0},
                      {"dur", std::max<double>((end_ns - e->time_ns) / 1000.0, 0.001)}, {"args", {{"step", e->step}}}});
    open[cpu] = nullptr;
  };
  for (const TraceEvent& e : r.trace) {
    if (e.cpu >= cpus) continue;
    if (e.kind == TraceEvent::Run) {
      close(e.cpu, e.time_ns);
      open[e.cpu] = &e;
    } else if (e.kind == TraceEvent::Halt) {
      close(e.cpu, e.time_ns);
    } else {
      events.push_back({{"name", event_label(r, e)}, {"ph", "i"}, {"s", "t"}, {"pid", 1}, {"tid", e.cpu},
                        {"ts", e.time_ns / 1000.0}, {"args", {{"step", e.step}}}});
    }
  }
  for (uint32_t c = 0; c < cpus; ++c) close(c, r.virtual_ns);
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ns"},
                        {"otherData", {{"outcome", outcome_name(r.outcome)}, {"message", r.message}}}};
  return doc.dump() + "\n";
}

}  // namespace sim
