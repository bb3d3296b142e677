// Booting on hardware: hal/real calls kentry::boot on CPU 0 once the machine is set up.
//
// The init kernel thread mounts the initramfs (a cpio newc archive from -initrd) as a read-only
// root, loads the program named by `init=PATH` on the command line (default /init, then
// /sbin/init) and starts it as PID 1 with the arguments that follow ` -- `. When PID 1 exits,
// the machine shuts down with its wait status. When no program can be started, the kernel
// says why and shuts down with exit status 127 (wait status 0x7f00, "command not found").
#include "core/exec/elf.h"
#include "core/fs/cpio.h"
#include "core/fs/vfs.h"
#include "core/kernel.h"
#include "core/lib/print.h"

namespace tandem {

namespace {

// The booted kernel's one instance lives in .bss, which costs nothing to "allocate"; the
// simulator builds its instances itself.
alignas(Kernel) u8 g_boot_kernel_storage[sizeof(Kernel)];

constexpr int kNoInitStatus = 0x7f00;  // exit status 127
constexpr usize kMaxCmdline = 1024;
constexpr usize kMaxInitArgs = 32;

struct BootParams {
  char cmdline[kMaxCmdline];
  u64 initrd_phys;
  u64 initrd_size;
};
BootParams g_boot_params;
CpioFs g_root;

bool cmdline_has(const char* cmdline, const char* word) {
  if (cmdline == nullptr) return false;
  const usize n = string_length(word);
  for (const char* p = cmdline; *p != 0; ++p) {
    if ((p == cmdline || p[-1] == ' ') && compare_bytes(p, word, n) == 0 && (p[n] == 0 || p[n] == ' ')) return true;
  }
  return false;
}

// Splits `line` in place at spaces (a "quoted word" may hold spaces); returns the number of words stored in words[].
usize split_words(char* line, char** words, usize capacity) {
  usize n = 0;
  char* p = line;
  while (*p != 0) {
    while (*p == ' ') *p++ = 0;
    if (*p == 0) break;
    if (n == capacity) break;
    // "double quotes" keep spaces inside one word, as Linux's command line parser does.
    if (*p == '"') {
      *p++ = 0;
      words[n++] = p;
      while (*p != 0 && *p != '"') ++p;
      if (*p == '"') *p++ = 0;
      continue;
    }
    words[n++] = p;
    while (*p != 0 && *p != ' ') ++p;
  }
  return n;
}

// /proc/self/exe names the program with its symbolic links resolved, as Linux's does.
void set_exe_path(Kernel& kernel, Process* process, const char* path) {
  copy_bytes(process->exe_path, path, min(string_length(path) + 1, sizeof(process->exe_path) - 1));
  auto vfs = kernel_vfs(kernel);
  if (vfs.is_error()) return;
  PathBuffer canonical(kernel);
  if (!canonical.ok()) return;
  auto found = vfs.value()->resolve(PathStart{vfs.value()->root(), "/"}, path, true, canonical.data());
  if (found.is_error()) return;
  found.value()->release();
  const usize n = min(string_length(canonical.data()), sizeof(process->exe_path) - 1);
  copy_bytes(process->exe_path, canonical.data(), n);
  process->exe_path[n] = 0;
}

void no_init(const char* why) {
  klog("init: %s; shutting down with exit status 127", why);
  hal::shutdown(kNoInitStatus);
}

void boot_init(Kernel& kernel, void*) {
  u32 online = 0;
  for (u32 i = 0; i < kernel.config().cpu_count; ++i) online += kernel.cpu(i).online ? 1 : 0;
  klog("init: %u of %u CPUs online", online, kernel.config().cpu_count);

  // The command line: kernel words, then ` -- ` and the init program's arguments.
  static char line[kMaxCmdline];
  copy_bytes(line, g_boot_params.cmdline, kMaxCmdline);
  char* words[kMaxInitArgs + 16];
  const usize count = split_words(line, words, kMaxInitArgs + 16);
  const char* init_path = nullptr;
  const char* argv[kMaxInitArgs + 2] = {};
  usize argc = 1;
  bool in_args = false;
  for (usize i = 0; i < count; ++i) {
    if (in_args) {
      if (argc <= kMaxInitArgs) argv[argc++] = words[i];
    } else if (compare_bytes(words[i], "--", 3) == 0) {
      in_args = true;
    } else if (compare_bytes(words[i], "init=", 5) == 0) {
      init_path = words[i] + 5;
    }
  }

  if (g_boot_params.initrd_size == 0) return no_init("no initramfs (boot with -initrd FILE)");
  const auto* archive = static_cast<const u8*>(hal::phys_to_virt(g_boot_params.initrd_phys));
  CpioError error;
  if (g_root.mount(archive, g_boot_params.initrd_size, &error).is_error()) {
    klog("initramfs: malformed cpio archive at byte %lu: %s", static_cast<unsigned long>(error.offset),
         error.reason);
    return no_init("cannot mount the initramfs");
  }
  // The VFS, built when PID 1's descriptors are made, takes this archive as its root.
  kernel.root_archive = &g_root;
  klog("initramfs: %lu bytes, %lu entries, mounted read-only at /",
       static_cast<unsigned long>(g_boot_params.initrd_size), static_cast<unsigned long>(g_root.entry_count()));

  static const char* const kDefaultInits[] = {"/init", "/sbin/init"};
  CpioFile file;
  bool found = false;
  if (init_path != nullptr) {
    auto r = g_root.lookup(init_path);
    if (r.is_error()) {
      klog("init: %s: %s", init_path, errno_name(r.error()));
      return no_init("the init program is not in the initramfs");
    }
    file = r.value();
    found = true;
  } else {
    for (const char* candidate : kDefaultInits) {
      auto r = g_root.lookup(candidate);
      if (r.ok()) {
        init_path = candidate;
        file = r.value();
        found = true;
        break;
      }
    }
    if (!found) return no_init("no init= on the command line and no /init or /sbin/init");
  }
  if (!file.is_regular()) {
    klog("init: %s is not a regular file", init_path);
    return no_init("cannot execute the init program");
  }
  argv[0] = init_path;
  argv[argc] = nullptr;
  static const char* const envp[] = {"HOME=/", "TERM=linux", "PATH=/sbin:/bin:/usr/sbin:/usr/bin", nullptr};

  auto info = elf_parse(file.data, file.size);
  if (info.is_error()) {
    klog("init: %s: not a static x86-64 ELF executable (%s)", init_path, errno_name(info.error()));
    return no_init("cannot execute the init program");
  }
  auto space_or_error = AddressSpace::create(kernel);
  if (space_or_error.is_error()) return no_init("out of memory for the init address space");
  AddressSpace* space = space_or_error.value();
  auto image = elf_load(*space, info.value(), file.data, file.size, argv, envp, init_path);
  if (image.is_error()) {
    klog("init: %s: loading failed (%s)", init_path, errno_name(image.error()));
    space->destroy();
    return no_init("cannot execute the init program");
  }
  auto process = kernel.create_user_process(space, image.value().frame);
  if (process.is_error()) {
    space->destroy();
    return no_init("cannot create PID 1");
  }
  Process* p = process.value();
  {
    SpinLockGuard guard(p->lock);
    p->brk_start = p->brk_current = p->brk_mapped_end = image.value().brk_start;
  }
  set_exe_path(kernel, p, init_path);
  klog("init: started %s as pid %u (%s, entry %lx)", init_path, p->pid,
       info.value().pie ? "static PIE" : "static", static_cast<unsigned long>(info.value().entry));
  // Last: from here on PID 1 runs, and may exit and be freed at any moment.
  kernel.start_user_process(p);
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
  if (info.cmdline != nullptr) {
    const usize n = min<usize>(string_length(info.cmdline), kMaxCmdline - 1);
    copy_bytes(g_boot_params.cmdline, info.cmdline, n);
    g_boot_params.cmdline[n] = 0;
  }
  g_boot_params.initrd_phys = info.initrd_phys;
  g_boot_params.initrd_size = info.initrd_size;
  auto* kernel = new (g_boot_kernel_storage) Kernel(config);
  klog("boot: %u CPUs, %lu MiB of memory, futex mode %s", config.cpu_count,
       static_cast<unsigned long>(info.memory_bytes >> 20),
       config.futex_mode == FutexMode::Blocking ? "blocking" : "spin-yield");
  hal::start_secondary_cpus(kernel);
  kernel->cpu_main(0);
}

}  // namespace kentry
