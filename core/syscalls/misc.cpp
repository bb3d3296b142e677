// Identity, CPU, TLS, limits and entropy system calls a C library needs at start-up:
// arch_prctl, set_robust_list, sched_getaffinity, sched_setaffinity, uname, getrandom,
// getuid, geteuid, getgid, getegid, prctl, getrlimit, setrlimit, prlimit64, sysinfo.
#include "core/fs/file_table.h"
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/syscalls/dispatch.h"

namespace tandem {

Result<i64> sys_arch_prctl(SyscallArgs& args) {
  constexpr u64 kArchSetGs = 0x1001, kArchSetFs = 0x1002, kArchGetFs = 0x1003, kArchGetGs = 0x1004;
  const u64 code = args.arg[0];
  const u64 address = args.arg[1];
  switch (code) {
    case kArchSetFs:
      if (address >= hal::kUserTop) return Errno::kEPERM;
      hal::set_fs_base(address);
      args.frame.fs_base = address;
      return 0;
    case kArchGetFs:
      TRY(copy_to_user(UserPtr<u64>(address), hal::get_fs_base()));
      return 0;
    case kArchSetGs:
    case kArchGetGs:
      return Errno::kEINVAL;  // user GS is not supported yet
    default:
      return Errno::kEINVAL;
  }
}

Result<i64> sys_set_robust_list(SyscallArgs& args) {
  if (args.arg[1] != 24) return Errno::kEINVAL;  // sizeof(struct robust_list_head)
  Kernel::current_thread()->robust_list_head = args.arg[0];
  return 0;
}

// rt_sigprocmask and rt_sigaction moved to core/syscalls/signal.cpp with signal delivery.

// getcpu(cpu, node, cache): the CPU the caller runs on now (it may move at once), node 0; the
// cache argument is unused since Linux 2.6.24. Either pointer may be null.
Result<i64> sys_getcpu(SyscallArgs& args) {
  const UserPtr<u32> cpu(args.arg[0]);
  const UserPtr<u32> node(args.arg[1]);
  if (!cpu.is_null()) TRY(copy_to_user(cpu, static_cast<u32>(hal::cpu_id())));
  if (!node.is_null()) TRY(copy_to_user(node, u32{0}));
  return 0;
}

namespace {

u64 online_cpu_mask() {
  const u32 cpus = hal::cpu_count();
  return cpus >= 64 ? ~0ull : ((1ull << cpus) - 1);
}

Result<Thread*> affinity_target(Kernel& kernel, u64 pid) {
  if (pid == 0) return Kernel::current_thread();
  if (pid > 0x7fffffff) return Errno::kESRCH;
  Thread* thread = kernel.thread_by_tid(static_cast<u32>(pid));
  if (thread == nullptr) return Errno::kESRCH;
  return thread;
}

}  // namespace

Result<i64> sys_sched_getaffinity(SyscallArgs& args) {
  const u64 length = args.arg[1];
  const UserPtr<u64> mask(args.arg[2]);
  // Linux: the buffer must hold nr_cpu_ids bits and be a whole number of longs.
  if (length * 8 < hal::cpu_count() || (length & (sizeof(u64) - 1)) != 0) return Errno::kEINVAL;
  Thread* thread = TRY(affinity_target(args.kernel, args.arg[0]));
  TRY(copy_to_user(mask, thread->affinity.load(MemoryOrder::Relaxed) & online_cpu_mask()));
  return static_cast<i64>(sizeof(u64));  // bytes written: the kernel's cpumask size
}

// sched_setaffinity(pid, length, mask): the thread runs only on the CPUs of `mask` that are
// online (EINVAL when none is). The scheduler honours it at the thread's next queueing; the
// caller itself moves at once when its CPU is no longer allowed.
Result<i64> sys_sched_setaffinity(SyscallArgs& args) {
  const u64 length = args.arg[1];
  const u64 address = args.arg[2];
  u64 mask = 0;
  // Bytes beyond the kernel's mask are ignored; a shorter mask leaves the rest zero.
  if (!hal::copy_from_user(&mask, address, min<u64>(length, sizeof(mask)))) return Errno::kEFAULT;
  Thread* thread = TRY(affinity_target(args.kernel, args.arg[0]));
  mask &= online_cpu_mask();
  if (mask == 0) return Errno::kEINVAL;
  thread->affinity.store(mask, MemoryOrder::Relaxed);
  if (thread == Kernel::current_thread() && ((mask >> hal::cpu_id()) & 1) == 0) args.kernel.yield();
  return 0;
}

// prctl: the task name (PR_SET_NAME, PR_GET_NAME: 16 bytes with the NUL); every other option
// is EINVAL, which is what Linux answers for an option it does not know.
Result<i64> sys_prctl(SyscallArgs& args) {
  constexpr u64 kPrSetName = 15, kPrGetName = 16;
  Thread* self = Kernel::current_thread();
  switch (args.arg[0]) {
    case kPrSetName: {
      char name[16] = {};
      // Copy up to 15 bytes, never past a NUL (the rest of the page may be unmapped).
      for (usize i = 0; i < sizeof(name) - 1; ++i) {
        if (!hal::copy_from_user(&name[i], args.arg[1] + i, 1)) return Errno::kEFAULT;
        if (name[i] == 0) break;
      }
      copy_bytes(self->comm, name, sizeof(name));
      return 0;
    }
    case kPrGetName: {
      char name[16];
      copy_bytes(name, self->comm, sizeof(name));
      name[15] = 0;
      if (!hal::copy_to_user(args.arg[1], name, sizeof(name))) return Errno::kEFAULT;
      return 0;
    }
    default:
      return Errno::kEINVAL;
  }
}

namespace {

constexpr u32 kRlimitNofile = 7;

Result<Process*> rlimit_target(Kernel& kernel, u64 pid) {
  if (pid == 0) return Kernel::current_thread()->process;
  if (pid > 0x7fffffff) return Errno::kESRCH;
  Thread* thread = kernel.thread_by_tid(static_cast<u32>(pid));
  if (thread == nullptr || thread->process == nullptr) return Errno::kESRCH;
  return thread->process;
}

// Reads *old (when asked) and sets the new limit (when given), atomically for the process.
Result<void> do_prlimit(Process* process, u32 resource, const Process::Rlimit* limit, Process::Rlimit* old) {
  if (resource >= Process::kRlimitCount) return Errno::kEINVAL;
  if (limit != nullptr) {
    if (limit->cur > limit->max) return Errno::kEINVAL;
    // Everyone is root (CAP_SYS_RESOURCE): any hard limit may be raised, except NOFILE's past
    // the file table's size (Linux's nr_open).
    if (resource == kRlimitNofile && limit->max != Process::kRlimInfinity && limit->max > FileTable::kMaxFds)
      return Errno::kEPERM;
    if (resource == kRlimitNofile && limit->max == Process::kRlimInfinity) return Errno::kEPERM;
  }
  SpinLockGuard guard(process->lock);
  if (old != nullptr) *old = process->rlimits[resource];
  if (limit != nullptr) {
    process->rlimits[resource] = *limit;
    if (resource == kRlimitNofile && process->files != nullptr) process->files->set_limit(static_cast<u32>(limit->cur));
  }
  return {};
}

}  // namespace

Result<i64> sys_prlimit64(SyscallArgs& args) {
  const u64 new_address = args.arg[2];
  const u64 old_address = args.arg[3];
  Process::Rlimit limit{}, old{};
  if (new_address != 0 && !hal::copy_from_user(&limit, new_address, sizeof(limit))) return Errno::kEFAULT;
  Process* process = TRY(rlimit_target(args.kernel, args.arg[0]));
  const u32 resource = args.arg[1] > 0xffffffff ? Process::kRlimitCount : static_cast<u32>(args.arg[1]);
  TRY(do_prlimit(process, resource, new_address != 0 ? &limit : nullptr, old_address != 0 ? &old : nullptr));
  if (old_address != 0 && !hal::copy_to_user(old_address, &old, sizeof(old))) return Errno::kEFAULT;
  return 0;
}

Result<i64> sys_getrlimit(SyscallArgs& args) {
  Process::Rlimit old{};
  const u32 resource = args.arg[0] > 0xffffffff ? Process::kRlimitCount : static_cast<u32>(args.arg[0]);
  TRY(do_prlimit(Kernel::current_thread()->process, resource, nullptr, &old));
  if (!hal::copy_to_user(args.arg[1], &old, sizeof(old))) return Errno::kEFAULT;
  return 0;
}

Result<i64> sys_setrlimit(SyscallArgs& args) {
  Process::Rlimit limit{};
  if (!hal::copy_from_user(&limit, args.arg[1], sizeof(limit))) return Errno::kEFAULT;
  const u32 resource = args.arg[0] > 0xffffffff ? Process::kRlimitCount : static_cast<u32>(args.arg[0]);
  TRY(do_prlimit(Kernel::current_thread()->process, resource, &limit, nullptr));
  return 0;
}

// sysinfo: uptime, memory from the physical allocator (no swap, no high memory), the number of
// processes; the load averages are zero (tandem keeps none yet).
Result<i64> sys_sysinfo(SyscallArgs& args) {
  struct Sysinfo {
    i64 uptime;
    u64 loads[3];
    u64 totalram, freeram, sharedram, bufferram, totalswap, freeswap;
    u16 procs;
    u16 pad;
    u64 totalhigh, freehigh;
    u32 mem_unit;
    char padding[4];
  };
  static_assert(sizeof(Sysinfo) == 112);
  Sysinfo info;
  fill_bytes(&info, 0, sizeof(info));
  const hal::PhysStats stats = hal::phys_stats();
  info.uptime = static_cast<i64>(hal::monotonic_ns() / 1'000'000'000);
  info.totalram = stats.total_pages * hal::kPageSize;
  info.freeram = stats.free_pages * hal::kPageSize;
  info.procs = static_cast<u16>(min<u32>(args.kernel.live_threads(), 0xffff));
  info.mem_unit = 1;
  TRY(copy_to_user(UserPtr<Sysinfo>(args.arg[0]), info));
  return 0;
}

Result<i64> sys_uname(SyscallArgs& args) {
  struct Utsname {
    char sysname[65], nodename[65], release[65], version[65], machine[65], domainname[65];
  };
  Utsname u;
  fill_bytes(&u, 0, sizeof(u));
  auto set = [](char* field, const char* text) { copy_bytes(field, text, string_length(text) + 1); };
  set(u.sysname, "Linux");
  set(u.nodename, "tandem");
  set(u.release, "6.1.0-tandem");
  set(u.version, "#1 SMP tandem");
  set(u.machine, "x86_64");
  set(u.domainname, "(none)");
  TRY(copy_to_user(UserPtr<Utsname>(args.arg[0]), u));
  return 0;
}

Result<i64> sys_getrandom(SyscallArgs& args) {
  constexpr u64 kGrndNonblock = 1, kGrndRandom = 2, kGrndInsecure = 4;
  const u64 address = args.arg[0];
  u64 length = args.arg[1];
  const u64 flags = args.arg[2];
  if (flags & ~(kGrndNonblock | kGrndRandom | kGrndInsecure)) return Errno::kEINVAL;
  if ((flags & (kGrndRandom | kGrndInsecure)) == (kGrndRandom | kGrndInsecure)) return Errno::kEINVAL;
  length = min<u64>(length, 0x1ffffff);  // Linux caps one call at 32 MiB - 1
  u8 buffer[256];
  u64 done = 0;
  while (done < length) {
    const usize chunk = min<u64>(sizeof(buffer), length - done);
    hal::random_bytes(buffer, chunk);
    if (!hal::copy_to_user(address + done, buffer, chunk)) {
      if (done == 0) return Errno::kEFAULT;
      break;
    }
    done += chunk;
  }
  return static_cast<i64>(done);
}

Result<i64> sys_getuid(SyscallArgs&) { return 0; }
Result<i64> sys_geteuid(SyscallArgs&) { return 0; }
Result<i64> sys_getgid(SyscallArgs&) { return 0; }
Result<i64> sys_getegid(SyscallArgs&) { return 0; }

}  // namespace tandem
