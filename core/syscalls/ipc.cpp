// Pipe, event and readiness system calls: decode the arguments, then call core/ipc.
#include "core/ipc/ipc.h"
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/syscalls/dispatch.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

// Installs two new files and stores their descriptors at `out`; on any failure nothing stays
// installed and both files are closed.
Result<i64> install_pair(File* a, File* b, bool cloexec, u64 out) {
  FileTable* files = TRY(current_files());
  auto fa = files->install(a, cloexec);
  if (fa.is_error()) {
    a->release();
    b->release();
    return fa.error();
  }
  auto fb = files->install(b, cloexec);
  if (fb.is_error()) {
    (void)files->close(fa.value());
    b->release();
    return fb.error();
  }
  const i32 fds[2] = {fa.value(), fb.value()};
  if (!hal::copy_to_user(out, fds, sizeof(fds))) {
    (void)files->close(fds[0]);
    (void)files->close(fds[1]);
    return Errno::kEFAULT;
  }
  return 0;
}

Result<i64> do_pipe(SyscallArgs& args, u64 out, u64 flags) {
  if ((flags & ~static_cast<u64>(oflag::kCloExec | oflag::kNonBlock | oflag::kDirect)) != 0) return Errno::kEINVAL;
  File* read_end = nullptr;
  File* write_end = nullptr;
  TRY(pipe_create(args.kernel, static_cast<u32>(flags), &read_end, &write_end));
  return install_pair(read_end, write_end, (flags & oflag::kCloExec) != 0, out);
}

}  // namespace

Result<i64> sys_pipe(SyscallArgs& args) { return do_pipe(args, args.arg[0], 0); }
Result<i64> sys_pipe2(SyscallArgs& args) { return do_pipe(args, args.arg[0], args.arg[1]); }

}  // namespace tandem
