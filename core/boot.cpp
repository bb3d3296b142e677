// Booting on hardware: hal/real calls kentry::boot on CPU 0 once the machine is set up.
//
// The init kernel thread mounts the initramfs (a cpio newc archive from -initrd) as a read-only
// root, loads the program named by `init=PATH` on the command line (default /init, then
// /sbin/init) and starts it as PID 1 with the arguments that follow ` -- ` (or with the argv
// and environment read from `initargs=PATH`). PID 1 is built as execve builds a program, so it
// may be dynamically linked. When PID 1 exits,
// the machine shuts down with its wait status. When no program can be started, the kernel
// says why and shuts down with exit status 127 (wait status 0x7f00, "command not found").
#include "core/exec/elf.h"
#include "core/exec/exec.h"
#include "core/fs/cpio.h"
#include "core/fs/vfs.h"
#include "core/kernel.h"
#include "core/lib/print.h"
#include "core/net/netdev.h"
#include "core/net/stack.h"
#include "core/syscalls/fs_util.h"

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

void no_init(const char* why) {
  klog("init: %s; shutting down with exit status 127", why);
  hal::shutdown(kNoInitStatus);
}

// Init's argv and envp from `initargs=PATH`: a file in the initramfs holding NUL-terminated
// strings, argv first, then an empty string, then envp. Any bytes may appear in an argument
// (an Erlang expression with quotes and spaces), and there is no command-line length limit.
constexpr usize kMaxInitFileArgs = 1024;
const char* g_file_argv[kMaxInitFileArgs + 1];
const char* g_file_envp[kMaxInitFileArgs + 1];

bool read_init_args(const char* path, const char** argv0) {
  auto r = g_root.lookup(path);
  if (r.is_error() || !r.value().is_regular()) {
    klog("init: initargs=%s: %s", path, r.is_error() ? errno_name(r.error()) : "not a regular file");
    return false;
  }
  const CpioFile file = r.value();
  const auto* data = reinterpret_cast<const char*>(file.data);
  if (file.size == 0 || data[file.size - 1] != 0) {
    klog("init: initargs=%s: the last string is not NUL-terminated", path);
    return false;
  }
  usize argc = 0, envc = 0;
  bool in_env = false;
  for (u64 at = 0; at < file.size;) {
    const char* word = data + at;
    const usize length = string_length(word);
    at += length + 1;
    if (!in_env && length == 0) {
      in_env = true;
      continue;
    }
    usize& n = in_env ? envc : argc;
    if (n == kMaxInitFileArgs) {
      klog("init: initargs=%s: more than %lu arguments or variables", path, static_cast<unsigned long>(n));
      return false;
    }
    (in_env ? g_file_envp : g_file_argv)[n++] = word;
  }
  if (argc == 0) {
    klog("init: initargs=%s: no argv[0]", path);
    return false;
  }
  g_file_argv[argc] = nullptr;
  g_file_envp[envc] = nullptr;
  *argv0 = g_file_argv[0];
  return true;
}

void boot_init(Kernel& kernel, void*) {
  u32 online = 0;
  for (u32 i = 0; i < kernel.config().cpu_count; ++i) online += kernel.cpu(i).online ? 1 : 0;
  klog("init: %u of %u CPUs online", online, kernel.config().cpu_count);
  // The network card, if the machine has one (core/net/netdev.h), becomes lwIP's Ethernet
  // interface (core/net/stack.h: 10.0.2.15/24 via 10.0.2.2, or ip= and gw= on the command
  // line). Silent when there is none.
  if (NetDevice* nic = netdev_probe(kernel)) {
    NetConfig config;
    if (!parse_net_config(g_boot_params.cmdline, &config)) klog("net: malformed ip= or gw=; using 10.0.2.15/24 via 10.0.2.2");
    auto attached = net_stack_attach_device(kernel, *nic, config);
    if (attached.is_error()) klog("net: the card cannot join the stack: %s", errno_name(attached.error()));
  }

  // The command line: kernel words, then ` -- ` and the init program's arguments.
  static char line[kMaxCmdline];
  copy_bytes(line, g_boot_params.cmdline, kMaxCmdline);
  char* words[kMaxInitArgs + 16];
  const usize count = split_words(line, words, kMaxInitArgs + 16);
  const char* init_path = nullptr;
  const char* args_path = nullptr;
  static const char* argv[kMaxInitArgs + 2] = {};
  usize argc = 1;
  bool in_args = false;
  for (usize i = 0; i < count; ++i) {
    if (in_args) {
      if (argc <= kMaxInitArgs) argv[argc++] = words[i];
    } else if (compare_bytes(words[i], "--", 3) == 0) {
      in_args = true;
    } else if (compare_bytes(words[i], "init=", 5) == 0) {
      init_path = words[i] + 5;
    } else if (compare_bytes(words[i], "initargs=", 9) == 0) {
      args_path = words[i] + 9;
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

  static const char* const kDefaultEnvp[] = {"HOME=/", "TERM=linux", "PATH=/sbin:/bin:/usr/sbin:/usr/bin", nullptr};
  const char* const* init_argv = argv;
  const char* const* init_envp = kDefaultEnvp;
  if (args_path != nullptr) {
    const char* argv0 = nullptr;
    if (!read_init_args(args_path, &argv0)) return no_init("cannot read the init arguments");
    init_argv = g_file_argv;
    init_envp = g_file_envp;
    if (init_path == nullptr) init_path = argv0;
  }
  if (init_path == nullptr) {
    static const char* const kDefaultInits[] = {"/init", "/sbin/init"};
    for (const char* candidate : kDefaultInits) {
      if (g_root.lookup(candidate).ok()) {
        init_path = candidate;
        break;
      }
    }
    if (init_path == nullptr) return no_init("no init= on the command line and no /init or /sbin/init");
  }
  if (init_path[0] != '/') {
    klog("init: %s: the init program must be named by an absolute path", init_path);
    return no_init("cannot execute the init program");
  }
  if (args_path == nullptr) {
    argv[0] = init_path;
    argv[argc] = nullptr;
  }

  // PID 1 is built exactly as execve builds a program: static or dynamically linked (its
  // PT_INTERP interpreter loaded too), with /proc/self/exe naming it.
  PathBuffer canonical(kernel);
  if (!canonical.ok()) return no_init("out of memory for the init path");
  KernelArgs args(init_argv, init_envp);
  ExecImage image;
  auto space = exec_build(kernel, kAtFdCwd, init_path, true, args, &image, canonical.data());
  if (space.is_error()) {
    klog("init: %s: %s", init_path, errno_name(space.error()));
    return no_init(space.error() == Errno::kENOENT ? "the init program is not in the initramfs"
                                                   : "cannot execute the init program");
  }
  auto process = kernel.create_user_process(space.value(), image.frame);
  if (process.is_error()) {
    space.value()->destroy();
    return no_init("cannot create PID 1");
  }
  Process* p = process.value();
  {
    SpinLockGuard guard(p->lock);
    set_comm_from_path(p->threads.front(), init_path);
    p->brk_start = p->brk_current = p->brk_mapped_end = image.brk_start;
    const usize length = min<usize>(string_length(canonical.data()), sizeof(p->exe_path) - 1);
    copy_bytes(p->exe_path, canonical.data(), length);
    p->exe_path[length] = 0;
  }
  klog("init: started %s as pid %u (entry %lx)", init_path, p->pid, static_cast<unsigned long>(image.frame.rip));
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
  config.trace_syscalls = cmdline_has(info.cmdline, "strace");
  config.cpu_report = cmdline_has(info.cmdline, "stats") ? KernelConfig::CpuReport::Table : KernelConfig::CpuReport::Summary;
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
  // PCI devices are probed while CPU 0 is the only one running: probing changes the machine's
  // memory map (BAR sizing, memory decoding, bus mastering), and QEMU 7.2's TCG races such a
  // change against another CPU's MMIO access (a local APIC write on a timer tick): QEMU itself
  // crashes (SIGSEGV in memory_region_access_valid), one boot in about twenty on 8 CPUs. Nothing
  // after the probe changes the map. boot_init attaches the card to the stack later.
  netdev_probe(*kernel);
  hal::start_secondary_cpus(kernel);
  kernel->cpu_main(0);
}

}  // namespace kentry
