// path_walk: VFS path resolution, differentially. The input is a program of up to 24 path
// operations (stat and lstat, open with and without O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY,
// mkdir, symlink, unlink, rmdir, rename, readlink, chdir, fchdir, getcwd, close) whose paths are
// built from colliding short names, ".", "..", doubled and trailing slashes, names of NAME_MAX
// and one byte more, odd bytes, absolute prefixes and padding to PATH_MAX - 1 or PATH_MAX bytes,
// relative to the cwd or to descriptors the program opened. PID 1 runs it in /tmp/w on tandem
// in the simulator, and every answer is checked against fuzz/path_model.h: Linux's rules of
// resolution (symbolic links in the middle and at the end, link bodies with trailing slashes,
// the 40-link limit, dead directories) and of each call's checks, in Linux's order. The model
// is itself checked against Linux by tests/unit/path_model_test.cpp, so a disagreement here is
// tandem's. Then the usual post-run checks: kernel invariants, no leaks.
//
// Input: the program, in path_model.h's encoding (decode()).
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz.h"
#include "fuzz/kernel_run.h"
#include "fuzz/path_model.h"
#include "hal/sim/user.h"

namespace {

using namespace pathwalk;

// Data region layout (offsets from sim::kDataBase): two path buffers, one buffer the kernel
// writes (stat, readlink, getcwd).
constexpr uint64_t kPathAt[2] = {0x0000, 0x1100};
constexpr uint64_t kOut = 0x2200;
constexpr uint64_t kRegionSize = 0x4000;
static_assert(kOut + kPathBuffer <= kRegionSize);

// Static, not on the user fiber (which the simulator may abandon at any point).
Program g_program;
Model g_model;
uint64_t g_entry = 0;

class SimExec {
 public:
  explicit SimExec(sim::User& u) : m_u(u) {}

  int64_t call(uint64_t nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
               uint64_t a5 = 0) {
    return m_u.syscall(nr, a0, a1, a2, a3, a4, a5);
  }
  // Eight bytes per store, the NUL included.
  uint64_t put(int which, const char* text, uint32_t length) {
    const uint64_t at = sim::kDataBase + kPathAt[which];
    for (uint32_t off = 0; off <= length; off += 8) {
      uint64_t w = 0;
      for (uint32_t b = 0; b < 8 && off + b <= length; ++b)
        w |= static_cast<uint64_t>(static_cast<uint8_t>(off + b < length ? text[off + b] : 0)) << (8 * b);
      m_u.store64(at + off, w);
    }
    return at;
  }
  uint64_t buffer() { return sim::kDataBase + kOut; }
  void get(uint64_t address, void* to, uint32_t length) {
    auto* out = static_cast<uint8_t*>(to);
    for (uint32_t off = 0; off < length; off += 8) {
      const uint64_t w = m_u.load64(address + off);
      for (uint32_t b = 0; b < 8 && off + b < length; ++b) out[off + b] = static_cast<uint8_t>(w >> (8 * b));
    }
  }
  [[noreturn]] void fail(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    static char message[1024];
    va_list args;
    va_start(args, format);
    std::vsnprintf(message, sizeof message, format, args);
    va_end(args);
    m_u.fail("path_walk: %s", message);
  }

 private:
  sim::User& m_u;
};

void main_thread(sim::User& u) {
  SimExec exec(u);
  const uint64_t work = exec.put(0, "/tmp/w", 6);
  if (const int64_t r = exec.call(sys::kMkdirat, static_cast<uint64_t>(kAtFdcwd), work, 0755); r != 0)
    u.fail("path_walk: mkdir /tmp/w: %lld", static_cast<long long>(r));
  if (const int64_t r = exec.call(sys::kChdir, work); r != 0)
    u.fail("path_walk: chdir /tmp/w: %lld", static_cast<long long>(r));
  g_model.reset(false);
  Interpreter<SimExec> interpreter(exec, g_model);
  interpreter.run(g_program);
  exec.call(sys::kExitGroup, 0);
  u.fail("path_walk: exit_group returned");
}

void init(tandem::Kernel& kernel, void*) { fuzz::start_pid1(kernel, g_entry, 1, 1, kRegionSize); }

struct Registration {
  Registration() { g_entry = sim::register_entry("fuzz-path-walk.main", main_thread); }
} g_registration;

// TANDEM_FUZZ_PRINT=1 prints each decoded program (to read a crash's input).
void print_program(const Program& p) {
  static const char* const kNames[] = {"stat", "open", "mkdir", "symlink", "unlink", "rmdir", "rename",
                                       "readlink", "chdir", "fchdir", "getcwd", "close"};
  std::fprintf(stderr, "program: %u ops\n", p.count);
  for (uint32_t i = 0; i < p.count; ++i) {
    const Op& op = p.ops[i];
    std::fprintf(stderr, "  %2u %-8s dirfd %u/%u slot %u flags %#llx size %u %s", i,
                 kNames[static_cast<uint32_t>(op.kind)], op.dirfd, op.dirfd2, op.slot,
                 static_cast<unsigned long long>(op.flags), op.size, describe(op.path, 0));
    if (op.path2.length != 0) std::fprintf(stderr, " %s", describe(op.path2, 1));
    std::fprintf(stderr, "\n");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  decode(in, g_program);
  static const bool print = std::getenv("TANDEM_FUZZ_PRINT") != nullptr;
  if (print) print_program(g_program);
  fuzz::KernelRun run;
  run.cpus = 1;
  run.max_steps = 2'000'000;
  run.init = &init;
  fuzz::check(fuzz::run_kernel(run), fuzz::Accept::FinishedOnly);
  return 0;
}
