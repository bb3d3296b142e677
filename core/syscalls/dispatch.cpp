#include "core/syscalls/dispatch.h"

#include "core/kernel.h"
#include "core/lib/print.h"
#include "core/syscalls/table.h"

namespace tandem {

namespace {

struct Entry {
  SyscallHandler handler = nullptr;
  const char* name = nullptr;
};

struct Table {
  Entry entries[kSyscallCount];
  constexpr Table() {
#define TANDEM_TABLE_ENTRY(number, n)       \
  static_assert((number) < kSyscallCount);  \
  entries[number] = Entry{&sys_##n, #n};
    TANDEM_SYSCALLS(TANDEM_TABLE_ENTRY)
#undef TANDEM_TABLE_ENTRY
  }
};

constexpr Table kTable;

// One line per call, after it returns (a blocking call shows up when it wakes): who, what with
// which raw arguments, and the result or the error's name.
void trace_syscall(u64 number, const u64* a, i64 result) {
  const Thread* self = Kernel::current_thread();
  const u32 pid = self->process != nullptr ? self->process->pid : 0;
  const char* name = number < kSyscallCount ? kTable.entries[number].name : nullptr;
  char unknown[24];
  if (name == nullptr) {
    format(unknown, sizeof(unknown), "syscall_%lu", static_cast<unsigned long>(number));
    name = unknown;
  }
  if (result < 0 && result >= -4095) {
    klog("strace: %u/%u %s(%lx, %lx, %lx, %lx, %lx, %lx) = -%s", pid, self->tid, name,
         static_cast<unsigned long>(a[0]), static_cast<unsigned long>(a[1]), static_cast<unsigned long>(a[2]),
         static_cast<unsigned long>(a[3]), static_cast<unsigned long>(a[4]), static_cast<unsigned long>(a[5]),
         errno_name(static_cast<Errno>(-result)));
  } else {
    klog("strace: %u/%u %s(%lx, %lx, %lx, %lx, %lx, %lx) = %ld", pid, self->tid, name,
         static_cast<unsigned long>(a[0]), static_cast<unsigned long>(a[1]), static_cast<unsigned long>(a[2]),
         static_cast<unsigned long>(a[3]), static_cast<unsigned long>(a[4]), static_cast<unsigned long>(a[5]),
         static_cast<long>(result));
  }
}

}  // namespace

const char* syscall_name(u64 number) { return number < kSyscallCount ? kTable.entries[number].name : nullptr; }

void dispatch_syscall(Kernel& kernel, hal::UserFrame& frame) {
  const u64 number = frame.rax;
  SyscallArgs args{kernel, frame, {frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9}};
  i64 result;
  if (number >= kSyscallCount || kTable.entries[number].handler == nullptr) {
    result = -static_cast<i64>(Errno::kENOSYS);
  } else {
    Thread* self = Kernel::current_thread();
    self->syscall_arg0.poke(args.arg[0]);
    self->syscall_nr.poke(static_cast<u32>(number));
    Result<i64> r = kTable.entries[number].handler(args);
    self->syscall_nr.poke(~0u);
    result = r.is_error() ? -static_cast<i64>(r.error()) : r.value();
  }
  frame.rax = static_cast<u64>(result);
  if (kernel.config().trace_syscalls) trace_syscall(number, args.arg, result);
}

}  // namespace tandem
