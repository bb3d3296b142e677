// devfs, procfs and sysfs: file systems whose tree is a static table and whose files are
// devices or text generated at each read. Vnodes are made on lookup and freed on their last
// release; a directory like /sys/devices/system/cpu/cpuN or /proc/PID is one table entry
// with a parameter (the CPU or the process), so the table does not grow with the machine.
//
// Generated files are rendered from the start at every read and only the requested window is
// copied out, as Linux's seq_file does for small files; their st_size is 0, as on Linux.
#include "core/fs/file_table.h"
#include "core/fs/vfs.h"
#include "core/ipc/ipc.h"
#include "core/kernel.h"
#include "core/lib/print.h"

namespace tandem {

namespace {

// ---------------------------------------------------------------------------------------------
// Text output into a window of a virtual stream
// ---------------------------------------------------------------------------------------------

struct TextOut {
  const IoBuffer* out;
  u64 offset;    // stream position where the window starts
  usize length;  // window size
  u64 position = 0;
  usize written = 0;
  bool fault = false;

  void put(const char* text, usize n) {
    const u64 start = position;
    position += n;
    if (fault || position <= offset || start >= offset + length) return;
    const u64 from = start < offset ? offset - start : 0;
    const u64 to = min<u64>(n, offset + length - start);
    if (!out->put(written, text + from, to - from)) {
      fault = true;
      return;
    }
    written += to - from;
  }
  void puts(const char* text) { put(text, string_length(text)); }
  void printf(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char line[256];
    va_list args;
    va_start(args, fmt);
    const usize n = vformat(line, sizeof(line), fmt, args);
    va_end(args);
    put(line, min(n, sizeof(line) - 1));
  }
};

// "0-3", or "0" on one CPU: Linux's cpulist format.
void cpu_list(TextOut& t, u32 count) {
  if (count == 1) t.puts("0\n");
  else t.printf("0-%u\n", count - 1);
}

Process* process_by_pid(Kernel& kernel, u32 pid) {
  Thread* t = kernel.thread_by_tid(pid);
  if (t == nullptr || t->process == nullptr || t->process->pid != pid) return nullptr;
  return t->process;
}

// ---------------------------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------------------------

enum class Param : u8 { None, Cpu, Pid };

struct SynthNodeSpec;
using Generator = void (*)(TextOut& t, Kernel& kernel, u32 param);
using LinkTarget = usize (*)(char* out, usize capacity, Kernel& kernel, u32 param);

enum class Dev : u8 { None, Null, Zero, Full, Random, Console };

struct SynthNodeSpec {
  const char* name;  // "cpu#" for the per-CPU directory, "#" for /proc/PID
  i16 parent;        // index of the parent; -1 for the root (index 0)
  u32 mode;
  Generator generate = nullptr;
  LinkTarget link = nullptr;
  Dev device = Dev::None;
  u32 rdev = 0;
  Param param = Param::None;  // the parameter this entry introduces
};

// ---- devfs ----
const SynthNodeSpec kDevTable[] = {
    {"", -1, kIfDir | 0755},
    {"null", 0, kIfChr | 0666, nullptr, nullptr, Dev::Null, (1 << 8) | 3},
    {"zero", 0, kIfChr | 0666, nullptr, nullptr, Dev::Zero, (1 << 8) | 5},
    {"full", 0, kIfChr | 0666, nullptr, nullptr, Dev::Full, (1 << 8) | 7},
    {"random", 0, kIfChr | 0666, nullptr, nullptr, Dev::Random, (1 << 8) | 8},
    {"urandom", 0, kIfChr | 0666, nullptr, nullptr, Dev::Random, (1 << 8) | 9},
    {"tty", 0, kIfChr | 0666, nullptr, nullptr, Dev::Console, (5 << 8) | 0},
    {"console", 0, kIfChr | 0600, nullptr, nullptr, Dev::Console, (5 << 8) | 1},
};
constexpr i16 kDevConsole = 7;

// ---- procfs ----
void gen_cpuinfo(TextOut& t, Kernel& kernel, u32) {
  // The fields and their order as Linux's arch/x86/kernel/cpu/proc.c prints them. The values
  // describe QEMU's "max" CPU under TCG, which tandem does not probe (no CPUID in the HAL).
  const u32 cpus = kernel.config().cpu_count;
  for (u32 i = 0; i < cpus; ++i) {
    t.printf("processor\t: %u\n", i);
    t.puts("vendor_id\t: AuthenticAMD\ncpu family\t: 6\nmodel\t\t: 6\nmodel name\t: QEMU TCG CPU version 2.5+\n");
    t.puts("stepping\t: 3\ncpu MHz\t\t: 1000.000\ncache size\t: 512 KB\n");
    t.printf("physical id\t: 0\nsiblings\t: %u\ncore id\t\t: %u\ncpu cores\t: %u\napicid\t\t: %u\ninitial apicid\t: %u\n",
             cpus, i, cpus, i, i);
    t.puts("fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\n");
    t.puts("flags\t\t: fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 "
           "syscall nx lm rep_good nopl cpuid pni cx16 x2apic popcnt rdrand hypervisor lahf_lm\n");
    t.puts("bugs\t\t:\nbogomips\t: 2000.00\nTLB size\t: 1024 4K pages\nclflush size\t: 64\ncache_alignment\t: 64\n");
    t.puts("address sizes\t: 40 bits physical, 48 bits virtual\npower management:\n\n");
  }
}

void meminfo_line(TextOut& t, const char* label, u64 kib) {
  // Linux: the label padded to 16 columns, the value right-aligned in 8, then " kB".
  char line[64];
  usize n = string_length(label);
  copy_bytes(line, label, n);
  while (n < 16) line[n++] = ' ';
  line[n] = 0;
  t.puts(line);
  t.printf("%8lu kB\n", static_cast<unsigned long>(kib));
}

void gen_meminfo(TextOut& t, Kernel&, u32) {
  // Every page is the physical allocator's: there is no page cache to reclaim, so what is free
  // is also what is available.
  const hal::PhysStats stats = hal::phys_stats();
  meminfo_line(t, "MemTotal:", stats.total_pages * 4);
  meminfo_line(t, "MemFree:", stats.free_pages * 4);
  meminfo_line(t, "MemAvailable:", stats.free_pages * 4);
  meminfo_line(t, "Buffers:", 0);
  meminfo_line(t, "Cached:", 0);
  meminfo_line(t, "SwapCached:", 0);
  meminfo_line(t, "SwapTotal:", 0);
  meminfo_line(t, "SwapFree:", 0);
}

void gen_stat(TextOut& t, Kernel& kernel, u32) {
  // USER_HZ is 100: times in 10 ms ticks.
  const u32 cpus = kernel.config().cpu_count;
  u64 busy = 0, idle = 0, switches = 0;
  for (u32 i = 0; i < cpus; ++i) {
    busy += kernel.cpu(i).stats.busy_ns / 10'000'000;
    idle += kernel.cpu(i).stats.idle_ns / 10'000'000;
    switches += kernel.cpu(i).stats.context_switches;
  }
  t.printf("cpu  %lu 0 0 %lu 0 0 0 0 0 0\n", static_cast<unsigned long>(busy), static_cast<unsigned long>(idle));
  for (u32 i = 0; i < cpus; ++i) {
    t.printf("cpu%u %lu 0 0 %lu 0 0 0 0 0 0\n", i, static_cast<unsigned long>(kernel.cpu(i).stats.busy_ns / 10'000'000),
             static_cast<unsigned long>(kernel.cpu(i).stats.idle_ns / 10'000'000));
  }
  const u64 boot = (hal::realtime_ns() - hal::monotonic_ns()) / 1'000'000'000;
  t.printf("intr 0\nctxt %lu\nbtime %lu\nprocesses %u\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
           static_cast<unsigned long>(switches), static_cast<unsigned long>(boot), kernel.live_processes());
}

void gen_overcommit(TextOut& t, Kernel&, u32) { t.puts("0\n"); }

usize link_self(char* out, usize capacity, Kernel&, u32) {
  Thread* self = Kernel::current_thread();
  const u32 pid = self->process != nullptr ? self->process->pid : 0;
  return min(format(out, capacity, "%u", pid), capacity);
}

usize link_exe(char* out, usize capacity, Kernel& kernel, u32 pid) {
  Process* p = process_by_pid(kernel, pid);
  if (p == nullptr) return 0;
  const usize n = min(string_length(p->exe_path), capacity);
  copy_bytes(out, p->exe_path, n);
  return n;
}

usize link_cwd(char* out, usize capacity, Kernel& kernel, u32 pid) {
  Process* p = process_by_pid(kernel, pid);
  if (p == nullptr || p->files == nullptr) return 0;
  PathBuffer path(kernel);
  if (!path.ok()) return 0;
  auto length = p->files->cwd_path(path.data());
  if (length.is_error()) return 0;
  const usize n = min(length.value(), capacity);
  copy_bytes(out, path.data(), n);
  return n;
}

void gen_maps(TextOut& t, Kernel& kernel, u32 pid) {
  Process* p = process_by_pid(kernel, pid);
  if (p == nullptr || p->address_space == nullptr) return;
  // Copied out under the address-space lock, printed after it: printing touches user memory.
  // A shared mapping of a named object (a memfd) keeps the object alive until its name is
  // printed.
  struct Line {
    u64 start, end, offset;
    u32 prot, flags;
    VmObject* named;  // retained, or null
  };
  constexpr usize kMax = hal::kPageSize / sizeof(Line);
  auto* lines = static_cast<Line*>(kernel.heap().allocate(hal::kPageSize));
  if (lines == nullptr) return;
  usize count = 0;
  p->address_space->for_each_mapping([&](const Vma& vma) {
    if (count == kMax) return;
    VmObject* named = (vma.flags & kMapShared) != 0 && vma.object->name() != nullptr ? vma.object : nullptr;
    if (named != nullptr) named->retain();
    lines[count++] = Line{vma.start, vma.end, vma.object_offset, vma.prot, vma.flags, named};
  });
  for (usize i = 0; i < count; ++i) {
    const Line& l = lines[i];
    // Linux: "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " and, for a named mapping, spaces to
    // column 72, one more and the name (seq_pad). A memfd shows as "/memfd:NAME (deleted)".
    char line[128];
    const usize n = format(line, sizeof(line), "%08lx-%08lx %c%c%c%c %08lx 00:00 0 ", static_cast<unsigned long>(l.start),
                           static_cast<unsigned long>(l.end), (l.prot & hal::kPageRead) ? 'r' : '-',
                           (l.prot & hal::kPageWrite) ? 'w' : '-', (l.prot & hal::kPageExec) ? 'x' : '-',
                           (l.flags & kMapShared) ? 's' : 'p', static_cast<unsigned long>(l.offset));
    t.put(line, min(n, sizeof(line) - 1));
    if (l.named != nullptr) {
      for (usize column = n; column < 72; ++column) t.put(" ", 1);
      t.puts(" /");
      t.puts(l.named->name());
      t.puts(" (deleted)");
      l.named->release();
    }
    t.puts("\n");
  }
  kernel.heap().free(lines, hal::kPageSize);
}

void gen_mountinfo(TextOut& t, Kernel& kernel, u32) {
  Vfs* vfs = kernel.vfs.load();
  if (vfs == nullptr) return;
  // proc(5): mount ID, parent ID, major:minor, root, mount point, options, optional fields,
  // separator, file system type, source, super options.
  vfs->for_each_mount([&](u32 id, u32 parent, const char* path, FileSystem* fs) {
    const char* mode = fs->read_only ? "ro" : "rw";
    t.printf("%u %u 0:%u / %s %s,relatime - %s %s %s\n", id, parent, fs->device, path, mode, fs->type_name,
             fs->type_name, mode);
  });
}

void gen_pid_stat(TextOut& t, Kernel& kernel, u32 pid) {
  Process* p = process_by_pid(kernel, pid);
  if (p == nullptr) return;
  // The 52 fields of proc(5)'s /proc/PID/stat; what tandem does not track reads 0.
  const char* name = p->exe_path;
  for (const char* c = p->exe_path; *c != 0; ++c) {
    if (*c == '/') name = c + 1;
  }
  char comm[16];
  const usize n = min<usize>(string_length(name), 15);
  copy_bytes(comm, name, n);
  comm[n] = 0;
  u32 threads = 0;
  {
    SpinLockGuard guard(p->lock);
    threads = p->live_threads;
  }
  t.printf("%u (%s) R 0 %u %u 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 %u 0 0 0 0 ", pid, comm, pid, pid, threads);
  t.puts("18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
}

constexpr u32 kRo = 0444;
const SynthNodeSpec kProcTable[] = {
    {"", -1, kIfDir | 0555},                                                   // 0
    {"self", 0, kIfLnk | 0777, nullptr, link_self},                             // 1
    {"#", 0, kIfDir | 0555, nullptr, nullptr, Dev::None, 0, Param::Pid},        // 2
    {"exe", 2, kIfLnk | 0777, nullptr, link_exe},                               // 3
    {"cwd", 2, kIfLnk | 0777, nullptr, link_cwd},                               // 4
    {"maps", 2, kIfReg | kRo, gen_maps},                                        // 5
    {"mountinfo", 2, kIfReg | kRo, gen_mountinfo},                              // 6
    {"stat", 2, kIfReg | kRo, gen_pid_stat},                                    // 7
    {"cpuinfo", 0, kIfReg | kRo, gen_cpuinfo},                                  // 8
    {"meminfo", 0, kIfReg | kRo, gen_meminfo},                                  // 9
    {"stat", 0, kIfReg | kRo, gen_stat},                                        // 10
    {"sys", 0, kIfDir | 0555},                                                  // 11
    {"vm", 11, kIfDir | 0555},                                                  // 12
    {"overcommit_memory", 12, kIfReg | 0644, gen_overcommit},                   // 13
    {"mounts", 0, kIfLnk | 0777, nullptr, [](char* out, usize cap, Kernel&, u32) -> usize {
       const char text[] = "self/mounts";
       const usize n = min(sizeof(text) - 1, cap);
       copy_bytes(out, text, n);
       return n;
     }},                                                                        // 14
    {"mounts", 2, kIfReg | kRo, [](TextOut& t, Kernel& kernel, u32) {
       Vfs* vfs = kernel.vfs.load();
       if (vfs == nullptr) return;
       vfs->for_each_mount([&](u32, u32, const char* path, FileSystem* fs) {
         t.printf("%s %s %s %s,relatime 0 0\n", fs->type_name, path, fs->type_name, fs->read_only ? "ro" : "rw");
       });
     }},                                                                        // 15
};

// ---- sysfs ----
void gen_cpus_all(TextOut& t, Kernel& kernel, u32) { cpu_list(t, kernel.config().cpu_count); }
void gen_cpu_self(TextOut& t, Kernel&, u32 cpu) { t.printf("%u\n", cpu); }
void gen_zero(TextOut& t, Kernel&, u32) { t.puts("0\n"); }
void gen_one(TextOut& t, Kernel&, u32) { t.puts("1\n"); }

const SynthNodeSpec kSysTable[] = {
    {"", -1, kIfDir | 0755},                                                      // 0
    {"devices", 0, kIfDir | 0755},                                                // 1
    {"system", 1, kIfDir | 0755},                                                 // 2
    {"cpu", 2, kIfDir | 0755},                                                    // 3
    {"online", 3, kIfReg | kRo, gen_cpus_all},                                    // 4
    {"possible", 3, kIfReg | kRo, gen_cpus_all},                                  // 5
    {"present", 3, kIfReg | kRo, gen_cpus_all},                                   // 6
    {"cpu#", 3, kIfDir | 0755, nullptr, nullptr, Dev::None, 0, Param::Cpu},       // 7
    {"online", 7, kIfReg | 0644, gen_one},                                        // 8
    {"topology", 7, kIfDir | 0755},                                               // 9
    {"core_id", 9, kIfReg | kRo, gen_cpu_self},                                   // 10
    {"physical_package_id", 9, kIfReg | kRo, gen_zero},                           // 11
    {"die_id", 9, kIfReg | kRo, gen_zero},                                        // 12
    {"thread_siblings_list", 9, kIfReg | kRo, gen_cpu_self},                      // 13
    {"core_cpus_list", 9, kIfReg | kRo, gen_cpu_self},                            // 14
    {"core_siblings_list", 9, kIfReg | kRo, gen_cpus_all},                        // 15
    {"package_cpus_list", 9, kIfReg | kRo, gen_cpus_all},                         // 16
    {"die_cpus_list", 9, kIfReg | kRo, gen_cpus_all},                             // 17
    {"node", 2, kIfDir | 0755},                                                   // 18
    {"online", 18, kIfReg | kRo, gen_zero},                                       // 19
    {"possible", 18, kIfReg | kRo, gen_zero},                                     // 20
    {"has_cpu", 18, kIfReg | kRo, gen_zero},                                      // 21
    {"node0", 18, kIfDir | 0755},                                                 // 22
    {"cpulist", 22, kIfReg | kRo, gen_cpus_all},                                  // 23
};

struct SynthFs : FileSystem {
  const SynthNodeSpec* table;
  u32 count;
  // Console input taken from the HAL ahead of a read, so that poll can say whether there is
  // any (hal::console_read consumes what it returns). The HAL announces new input with
  // kentry::console_input(), which wakes every reader and poller through the VFS's readiness
  // queue: nothing here is looked at again until then.
  SpinLock input_lock{LockRank::Console};
  char input[256];
  usize input_length = 0;  // guarded by input_lock
};

// ---------------------------------------------------------------------------------------------
// The vnode
// ---------------------------------------------------------------------------------------------

class SynthNode final : public Vnode {
 public:
  SynthNode(SynthFs* fs, u16 index, u32 param)
      : Vnode(fs, ino_for(fs, index, param), fs->table[index].mode), m_index(index), m_param(param) {}

  static u64 ino_for(SynthFs* fs, u16 index, u32 param) { return (static_cast<u64>(param) << 16) | (index + 1u); }
  const SynthNodeSpec& spec() const { return sfs()->table[m_index]; }
  SynthFs* sfs() const { return static_cast<SynthFs*>(m_fs); }
  Kernel& kernel() const { return *m_fs->kernel; }

  Result<Vnode*> lookup(const char* name, usize length) override {
    if (!is_directory()) return Errno::kENOTDIR;
    for (u32 i = 1; i < sfs()->count; ++i) {
      const SynthNodeSpec& s = sfs()->table[i];
      if (s.parent != m_index) continue;
      u32 param = m_param;
      if (s.param == Param::Cpu) {
        if (length < 4 || compare_bytes(name, "cpu", 3) != 0) continue;
        auto n = parse_number(name + 3, length - 3);
        if (n.is_error() || n.value() >= kernel().config().cpu_count) continue;
        param = n.value();
      } else if (s.param == Param::Pid) {
        auto n = parse_number(name, length);
        if (n.is_error() || process_by_pid(kernel(), n.value()) == nullptr) continue;
        param = n.value();
      } else if (string_length(s.name) != length || compare_bytes(s.name, name, length) != 0) {
        continue;
      }
      return make(static_cast<u16>(i), param);
    }
    return Errno::kENOENT;
  }

  Vnode* parent() override {
    if (spec().parent < 0) {
      retain();
      return this;
    }
    auto r = make(static_cast<u16>(spec().parent), m_param);
    if (r.is_error()) {
      retain();
      return this;
    }
    return r.value();
  }

  Result<bool> readdir(u64* cookie, DirEntry* entry) override {
    if (!is_directory()) return Errno::kENOTDIR;
    if (*cookie < 2) {
      entry->ino = m_ino;
      entry->type = 4;
      entry->name[0] = '.';
      entry->name[1] = *cookie == 0 ? 0 : '.';
      entry->name[2] = 0;
      ++*cookie;
      return true;
    }
    // Cookie: (table index << 32 | instance) + 2. Per-CPU entries expand to one per CPU and
    // the per-process directory to one per live process (instance: the next pid to list).
    u64 position = *cookie - 2;
    for (u32 i = static_cast<u32>(position >> 32); i < sfs()->count; ++i) {
      const SynthNodeSpec& s = sfs()->table[i];
      const u32 instance = i == (position >> 32) ? static_cast<u32>(position & 0xffffffff) : 0;
      if (s.parent != m_index) continue;
      u32 param = m_param;
      if (s.param == Param::Cpu) {
        if (instance >= kernel().config().cpu_count) continue;
        param = instance;
        format(entry->name, sizeof(entry->name), "cpu%u", instance);
      } else if (s.param == Param::Pid) {
        const u32 pid = next_pid(instance);
        if (pid == 0) continue;
        entry->ino = ino_for(sfs(), static_cast<u16>(i), pid);
        entry->type = 4;
        format(entry->name, sizeof(entry->name), "%u", pid);
        *cookie = ((static_cast<u64>(i) << 32) | (pid + 1u)) + 2;
        return true;
      } else {
        if (instance > 0) continue;
        format(entry->name, sizeof(entry->name), "%s", s.name);
      }
      entry->ino = ino_for(sfs(), static_cast<u16>(i), param);
      entry->type = static_cast<u8>((s.mode & kIfMt) >> 12);
      *cookie = ((static_cast<u64>(i) << 32) | (instance + 1u)) + 2;
      return true;
    }
    *cookie = (static_cast<u64>(sfs()->count) << 32) + 2;
    return false;
  }

  // The smallest pid >= `from` of a live (not zombie) process, 0 when none.
  u32 next_pid(u32 from) {
    u32 best = 0;
    SpinLockGuard guard(kernel().process_tree_lock());
    kernel().for_each_process([&](Process* p) {
      if (!p->zombie && p->pid >= from && (best == 0 || p->pid < best)) best = p->pid;
    });
    return best;
  }

  Result<usize> read(u64 offset, const IoBuffer& out, usize length) override {
    if (is_directory()) return Errno::kEISDIR;
    switch (spec().device) {
      case Dev::Null: return usize{0};
      case Dev::Zero:
      case Dev::Full: return fill(out, length, false);
      case Dev::Random: return fill(out, length, true);
      case Dev::Console: return console_read(out, length);
      case Dev::None: break;
    }
    if (spec().generate == nullptr) return Errno::kEINVAL;
    TextOut t{&out, offset, length};
    spec().generate(t, kernel(), m_param);
    if (t.fault && t.written == 0) return Errno::kEFAULT;
    return t.written;
  }

  Result<usize> write(u64, const IoBuffer& in, usize length) override {
    switch (spec().device) {
      case Dev::Null:
      case Dev::Zero:
      case Dev::Random: return length;
      case Dev::Full: return Errno::kENOSPC;
      case Dev::Console: return console_write(in, length);
      case Dev::None: break;
    }
    return Errno::kEACCES;
  }

  Result<void> truncate(u64) override {
    // O_TRUNC on a device is ignored, as on Linux ("> /dev/null" works).
    if (spec().device != Dev::None) return {};
    return Errno::kEACCES;
  }

  Result<usize> readlink(char* out, usize capacity) override {
    if (!is_symlink()) return Errno::kEINVAL;
    const usize n = spec().link(out, capacity, kernel(), m_param);
    if (n == 0) return Errno::kENOENT;
    return n;
  }

  u64 rdev() override { return spec().rdev; }
  // Linux polls terminals; /dev/null and the memory devices have no poll, so epoll refuses them.
  bool pollable() override { return spec().device == Dev::Console; }
  // Writing never blocks; reading is ready only once input has arrived, as on a terminal.
  // Readiness changes only when input arrives, and kentry::console_input() tells pollers then:
  // next_event_ns() keeps its default (never), so a poll on the console sleeps until input or
  // its own timeout, without rescans in between.
  u32 poll_events() override {
    u32 events = pollev::kOut | pollev::kWrNorm;
    if (spec().device == Dev::Console && console_input_ready()) events |= pollev::kIn | pollev::kRdNorm;
    return events;
  }

  Result<i64> ioctl(File& file, u64 request, u64 argument) override {
    constexpr u64 kTcgets = 0x5401, kTcsets = 0x5402, kTcsetsw = 0x5403, kTcsetsf = 0x5404, kTiocgwinsz = 0x5413,
                  kTiocswinsz = 0x5414, kTiocgpgrp = 0x540f, kTiocspgrp = 0x5410;
    if (spec().device != Dev::Console) return Errno::kENOTTY;
    switch (request) {
      case kTiocgwinsz: {
        // The serial console has no size; 80x24 is what a terminal would say.
        const u16 winsize[4] = {24, 80, 0, 0};
        if (!hal::copy_to_user(argument, winsize, sizeof(winsize))) return Errno::kEFAULT;
        return 0;
      }
      case kTiocswinsz: return 0;
      case kTcgets: {
        // struct termios (kernel layout): iflag, oflag, cflag, lflag, line, cc[19]. A cooked
        // terminal: ICRNL | IXON, OPOST | ONLCR, B38400 | CS8 | CREAD | HUPCL,
        // ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN.
        struct Termios {
          u32 iflag, oflag, cflag, lflag;
          u8 line;
          u8 cc[19];
        } tio{};
        tio.iflag = 0400 | 02000;
        tio.oflag = 01 | 04;
        tio.cflag = 017 | 060 | 0200 | 02000;
        tio.lflag = 01 | 02 | 010 | 020 | 040 | 01000 | 04000 | 0100000;
        const u8 cc[] = {3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22};
        copy_bytes(tio.cc, cc, sizeof(cc));
        if (!hal::copy_to_user(argument, &tio, sizeof(tio))) return Errno::kEFAULT;
        return 0;
      }
      case kTcsets:
      case kTcsetsw:
      case kTcsetsf: return 0;  // accepted and ignored: the serial line has no modes
      case kTiocgpgrp: {
        Thread* self = Kernel::current_thread();
        const i32 pgrp = self->process != nullptr ? static_cast<i32>(self->process->pid) : 1;
        if (!hal::copy_to_user(argument, &pgrp, sizeof(pgrp))) return Errno::kEFAULT;
        return 0;
      }
      case kTiocspgrp: return 0;
      default: return Errno::kENOTTY;
    }
  }

  static Result<u32> parse_number(const char* text, usize length) {
    if (length == 0 || length > 9) return Errno::kENOENT;
    u32 value = 0;
    for (usize i = 0; i < length; ++i) {
      if (text[i] < '0' || text[i] > '9') return Errno::kENOENT;
      value = value * 10 + static_cast<u32>(text[i] - '0');
    }
    if (length > 1 && text[0] == '0') return Errno::kENOENT;
    return value;
  }

  Result<Vnode*> make(u16 index, u32 param) {
    SynthNode* node = kernel().heap().make<SynthNode>(sfs(), index, param);
    if (node == nullptr) return Errno::kENOMEM;
    return static_cast<Vnode*>(node);
  }

  bool m_owns_fs = false;

 protected:
  void destroy() override {
    Heap& heap = kernel().heap();
    if (m_owns_fs) {
      SynthFs* fs = sfs();
      heap.destroy(this);
      heap.destroy(fs);
      return;
    }
    heap.destroy(this);
  }

 private:
  static Result<usize> fill(const IoBuffer& out, usize length, bool random) {
    u8 chunk[256];
    if (!random) fill_bytes(chunk, 0, sizeof(chunk));
    usize done = 0;
    while (done < length) {
      const usize n = min(sizeof(chunk), length - done);
      if (random) hal::random_bytes(chunk, n);
      if (!out.put(done, chunk, n)) {
        if (done == 0) return Errno::kEFAULT;
        break;
      }
      done += n;
    }
    return done;
  }

  Result<usize> console_write(const IoBuffer& in, usize length) {
    char chunk[256];
    usize done = 0;
    while (done < length) {
      const usize n = min(sizeof(chunk), length - done);
      if (!in.get(chunk, done, n)) {
        if (done == 0) return Errno::kEFAULT;
        break;
      }
      hal::console_write(chunk, n);
      done += n;
    }
    return done;
  }

  // True when console input is waiting (fetched from the HAL into the buffer if need be).
  bool console_input_ready() {
    SynthFs* fs = sfs();
    SpinLockGuard guard(fs->input_lock);
    if (fs->input_length == 0) fs->input_length = hal::console_read(fs->input, sizeof(fs->input));
    return fs->input_length > 0;
  }

  // Takes up to `capacity` buffered (or newly arrived) input bytes.
  usize take_console_input(char* out, usize capacity) {
    SynthFs* fs = sfs();
    SpinLockGuard guard(fs->input_lock);
    if (fs->input_length == 0) fs->input_length = hal::console_read(fs->input, sizeof(fs->input));
    const usize n = min(capacity, fs->input_length);
    copy_bytes(out, fs->input, n);
    move_bytes(fs->input, fs->input + n, fs->input_length - n);
    fs->input_length -= n;
    return n;
  }

  // Blocks until some input arrives. (A non-blocking descriptor never gets here without input:
  // File::read answers EAGAIN first.) The wait is the readiness queue's: kentry::console_input()
  // wakes it, as it wakes poll, select and epoll. A reader also wakes when another file's
  // readiness changes, looks, and sleeps again; that costs a look per change, but the console
  // needs no wait queue of its own that the HAL's callback would have to find.
  Result<usize> console_read(const IoBuffer& out, usize length) {
    if (length == 0) return usize{0};
    Vfs* vfs = TRY(kernel_vfs(kernel()));
    ReadinessWaiter waiter{kernel(), *vfs};
    char chunk[256];
    for (;;) {
      // The sequence is read before the look: input that arrives after the look moves it, and
      // the sleep then returns at once instead of missing that input.
      waiter.begin();
      const usize got = take_console_input(chunk, min(sizeof(chunk), length));
      if (got > 0) {
        if (!out.put(0, chunk, got)) return Errno::kEFAULT;
        return got;
      }
      // A signal (or an exit) ends the wait: ERESTARTSYS, which the signal code restarts or
      // turns into EINTR, as for a pipe.
      if (!waiter.sleep(0)) return Errno::kERESTARTSYS;
    }
  }

  u16 m_index;
  u32 m_param;
};

Result<Vnode*> synth_create(Kernel& kernel, u32 device, const char* type, const SynthNodeSpec* table, u32 count,
                            bool read_only) {
  SynthFs* fs = kernel.heap().make<SynthFs>();
  if (fs == nullptr) return Errno::kENOMEM;
  fs->kernel = &kernel;
  fs->device = device;
  fs->type_name = type;
  fs->read_only = read_only;
  fs->table = table;
  fs->count = count;
  SynthNode* root = kernel.heap().make<SynthNode>(fs, 0, 0);
  if (root == nullptr) {
    kernel.heap().destroy(fs);
    return Errno::kENOMEM;
  }
  root->m_owns_fs = true;
  return static_cast<Vnode*>(root);
}

}  // namespace

Result<Vnode*> devfs_create(Kernel& kernel, u32 device, Vnode** console) {
  Vnode* root = TRY(synth_create(kernel, device, "devtmpfs", kDevTable, sizeof(kDevTable) / sizeof(kDevTable[0]), false));
  auto c = static_cast<SynthNode*>(root)->make(kDevConsole, 0);
  if (c.is_error()) {
    root->release();
    return c.error();
  }
  *console = c.value();
  return root;
}

Result<Vnode*> procfs_create(Kernel& kernel, u32 device) {
  return synth_create(kernel, device, "proc", kProcTable, sizeof(kProcTable) / sizeof(kProcTable[0]), false);
}

Result<Vnode*> sysfs_create(Kernel& kernel, u32 device) {
  return synth_create(kernel, device, "sysfs", kSysTable, sizeof(kSysTable) / sizeof(kSysTable[0]), false);
}

}  // namespace tandem
