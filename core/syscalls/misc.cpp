// Identity, CPU, TLS and entropy system calls a static C library needs at start-up:
// arch_prctl, set_robust_list, sched_getaffinity, uname,
// getrandom, getuid, geteuid, getgid, getegid.
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

Result<i64> sys_sched_getaffinity(SyscallArgs& args) {
  const u64 pid = args.arg[0];
  const u64 length = args.arg[1];
  const UserPtr<u64> mask(args.arg[2]);
  const u32 cpus = hal::cpu_count();
  // Linux: the buffer must hold nr_cpu_ids bits and be a whole number of longs.
  if (length * 8 < cpus || (length & (sizeof(u64) - 1)) != 0) return Errno::kEINVAL;
  if (pid != 0 && args.kernel.thread_by_tid(static_cast<u32>(pid)) == nullptr) return Errno::kESRCH;
  const u64 bits = cpus >= 64 ? ~0ull : ((1ull << cpus) - 1);
  TRY(copy_to_user(mask, bits));
  return static_cast<i64>(sizeof(u64));  // bytes written: the kernel's cpumask size
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
