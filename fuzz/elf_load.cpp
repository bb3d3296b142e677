// elf_load: the ELF loader (core/exec/elf.h) over arbitrary bytes, in the simulator. A kernel
// thread (the init hook, where boot.cpp loads PID 1 on hardware) parses the input; when it is
// valid, loads it into a fresh AddressSpace and starts it as PID 1, with the entry point
// replaced by a checker that reads the initial stack from user mode (argc, argv, envp and
// AT_ENTRY in the auxiliary vector) and exits. When parsing or loading fails, a PID 1 that
// exits at once ends the run.
//
// Crashes: a parse error other than ENOEXEC, a load error other than ENOEXEC or ENOMEM, a
// wrong initial stack, and everything the simulator catches (panics, leaked pages or heap
// objects after a failed load, broken invariants).
//
// Input: the file's bytes.
#include <cstdint>
#include <cstdio>

#include "core/exec/elf.h"
#include "core/kernel.h"
#include "core/mm/address_space.h"
#include "fuzz/fuzz.h"
#include "fuzz/kernel_run.h"
#include "sim/scenarios/ulib.h"

namespace {

using sim::User;

struct ElfRun {
  const uint8_t* data = nullptr;
  size_t size = 0;
  uint64_t entry = 0;  // the ELF's entry point, when loaded
};
ElfRun g_run;

uint64_t g_checker_entry = 0;
uint64_t g_exit_entry = 0;

constexpr const char* kArgv[] = {"/fuzz/elf", nullptr};
constexpr const char* kEnvp[] = {"HOME=/", nullptr};
constexpr uint64_t kAtNull = 0, kAtEntry = 9;

// PID 1 of a loaded image: the initial stack must be Linux's (argc, argv, NULL, envp, NULL,
// auxv pairs up to AT_NULL).
void checker(User& u) {
  uint64_t sp = u.start().rsp;
  if (sp % 16 != 0) u.fail("initial rsp %#llx is not 16-byte aligned", static_cast<unsigned long long>(sp));
  const uint64_t argc = u.load64(sp);
  if (argc != 1) u.fail("argc is %llu, not 1", static_cast<unsigned long long>(argc));
  const uint64_t argv0 = u.load64(sp + 8);
  if (u.load64(sp + 16) != 0) u.fail("argv is not NULL-terminated");
  // The first bytes of argv[0] as the kernel copied them.
  // User loads are aligned words: read the two that hold argv[0]'s first two bytes.
  auto byte_at = [&](uint64_t address) { return static_cast<char>(u.load64(address & ~7ull) >> (8 * (address & 7))); };
  if (byte_at(argv0) != '/' || byte_at(argv0 + 1) != 'f')
    u.fail("argv[0] does not hold the path passed to elf_load");
  if (u.load64(sp + 24) == 0) u.fail("envp is empty");
  if (u.load64(sp + 32) != 0) u.fail("envp is not NULL-terminated");
  uint64_t at = sp + 40;
  bool saw_entry = false;
  for (int i = 0; i < 64; ++i, at += 16) {
    const uint64_t type = u.load64(at), value = u.load64(at + 8);
    if (type == kAtNull) break;
    if (type == kAtEntry) {
      saw_entry = true;
      if (value != g_run.entry)
        u.fail("AT_ENTRY %#llx, the ELF's entry is %#llx", static_cast<unsigned long long>(value),
               static_cast<unsigned long long>(g_run.entry));
    }
  }
  if (!saw_entry) u.fail("no AT_ENTRY in the auxiliary vector");
  sim::ulib::exit_group(u, 0);
}

void exit_now(User& u) { sim::ulib::exit_group(u, 0); }

void init(tandem::Kernel& kernel, void*) {
  auto info = tandem::elf_parse(g_run.data, g_run.size);
  if (info.is_error()) {
    if (info.error() != tandem::Errno::kENOEXEC) hal::panic("fuzz elf_load: elf_parse failed with an errno other than ENOEXEC");
    fuzz::start_pid1(kernel, g_exit_entry, 1, 1);
    return;
  }
  auto space_or_error = tandem::AddressSpace::create(kernel);
  if (space_or_error.is_error()) hal::panic("fuzz elf_load: cannot create an address space");
  tandem::AddressSpace* space = space_or_error.value();
  auto image = tandem::elf_load(*space, info.value(), g_run.data, g_run.size, kArgv, kEnvp, kArgv[0]);
  if (image.is_error()) {
    if (image.error() != tandem::Errno::kENOEXEC && image.error() != tandem::Errno::kENOMEM)
      hal::panic("fuzz elf_load: elf_load failed with an errno other than ENOEXEC or ENOMEM");
    space->destroy();
    fuzz::start_pid1(kernel, g_exit_entry, 1, 1);
    return;
  }
  hal::UserFrame frame = image.value().frame;
  if (frame.rip != info.value().entry) hal::panic("fuzz elf_load: the first frame does not enter at the ELF's entry");
  g_run.entry = frame.rip;
  frame.rip = g_checker_entry;
  if (kernel.spawn_user(space, frame).is_error()) hal::panic("fuzz elf_load: cannot start PID 1");
}

struct Registration {
  Registration() {
    g_checker_entry = sim::register_entry("fuzz-elf-load.checker", checker);
    g_exit_entry = sim::register_entry("fuzz-elf-load.exit", exit_now);
  }
} g_registration;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_run = ElfRun{data, size, 0};
  fuzz::KernelRun run;
  run.cpus = 1;
  run.strategy.kind = sim::StrategyKind::Replay;  // no decisions: one CPU runs everything in order
  static const std::vector<sim::Decision> kNone;
  run.strategy.replay = &kNone;
  run.max_steps = 2'000'000;  // a load copies the file in page-sized pieces; big files take steps
  run.init = &init;
  fuzz::check(fuzz::run_kernel(run), fuzz::Accept::FinishedOnly);
  g_run = ElfRun{};
  return 0;
}
