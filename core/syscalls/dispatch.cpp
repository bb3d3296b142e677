#include "core/syscalls/dispatch.h"

#include "core/kernel.h"
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

}  // namespace

const char* syscall_name(u64 number) { return number < kSyscallCount ? kTable.entries[number].name : nullptr; }

void dispatch_syscall(Kernel& kernel, hal::UserFrame& frame) {
  const u64 number = frame.rax;
  SyscallArgs args{kernel, frame, {frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9}};
  i64 result;
  if (number >= kSyscallCount || kTable.entries[number].handler == nullptr) {
    result = -static_cast<i64>(Errno::kENOSYS);
  } else {
    Result<i64> r = kTable.entries[number].handler(args);
    result = r.is_error() ? -static_cast<i64>(r.error()) : r.value();
  }
  frame.rax = static_cast<u64>(result);
}

}  // namespace tandem
