// Booting on hardware: hal/real calls kentry::boot on CPU 0 once the machine is set up.
#include "core/kernel.h"
#include "core/lib/print.h"

namespace tandem {

namespace {

// The booted kernel's one instance lives in .bss, which costs nothing to "allocate"; the
// simulator builds its instances itself.
alignas(Kernel) u8 g_boot_kernel_storage[sizeof(Kernel)];

bool cmdline_has(const char* cmdline, const char* word) {
  if (cmdline == nullptr) return false;
  const usize n = string_length(word);
  for (const char* p = cmdline; *p != 0; ++p) {
    if ((p == cmdline || p[-1] == ' ') && compare_bytes(p, word, n) == 0 && (p[n] == 0 || p[n] == ' ')) return true;
  }
  return false;
}

void boot_init(Kernel& kernel, void*) {
  // Loading PID 1 from the initramfs comes with the ELF loader; until then the kernel reports
  // that every CPU came up and shuts down cleanly.
  u32 online = 0;
  for (u32 i = 0; i < kernel.config().cpu_count; ++i) online += kernel.cpu(i).online ? 1 : 0;
  klog("init: %u of %u CPUs online; no init program yet, shutting down", online, kernel.config().cpu_count);
  hal::shutdown(0);
}

}  // namespace

}  // namespace tandem

namespace kentry {

[[noreturn]] void boot(const hal::BootInfo& info) {
  using namespace tandem;
  KernelConfig config;
  config.cpu_count = hal::cpu_count();
  config.futex_mode = cmdline_has(info.cmdline, "futex=spin") ? FutexMode::SpinYield : FutexMode::Blocking;
  config.init = &boot_init;
  auto* kernel = new (g_boot_kernel_storage) Kernel(config);
  klog("boot: %u CPUs, %lu MiB of memory, futex mode %s", config.cpu_count,
       static_cast<unsigned long>(info.memory_bytes >> 20),
       config.futex_mode == FutexMode::Blocking ? "blocking" : "spin-yield");
  hal::start_secondary_cpus(kernel);
  kernel->cpu_main(0);
}

}  // namespace kentry
