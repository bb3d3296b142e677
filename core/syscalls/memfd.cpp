// memfd_create(2): an anonymous in-memory file (core/fs/tmpfs.cpp, tmpfs_create_memfd) whose
// pages MAP_SHARED mappings share (core/syscalls/memory.cpp), as the Erlang JIT uses it: one
// writable and one executable view of the same code.
#include "core/fs/vfs.h"
#include "core/kernel.h"
#include "core/syscalls/dispatch.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

constexpr u64 kMfdCloexec = 0x1, kMfdAllowSealing = 0x2, kMfdHugetlb = 0x4;
constexpr u64 kMfdAllFlags = kMfdCloexec | kMfdAllowSealing | kMfdHugetlb;
constexpr u64 kMfdHugeShift = 26, kMfdHugeMask = 0x3f;  // a huge page size's log2, with MFD_HUGETLB
constexpr char kPrefix[] = "memfd:";
constexpr usize kPrefixLength = sizeof(kPrefix) - 1;
constexpr usize kNameMaxLength = kNameMax - kPrefixLength;  // 249, Linux's MFD_NAME_MAX_LEN

}  // namespace

Result<i64> sys_memfd_create(SyscallArgs& args) {
  const u64 name_address = args.arg[0];
  const u64 flags = static_cast<u32>(args.arg[1]);
  // Decode, in Linux's order (mm/memfd.c): flags, then the name.
  if ((flags & kMfdHugetlb) == 0) {
    if (flags & ~kMfdAllFlags) return Errno::kEINVAL;
  } else if (flags & ~(kMfdAllFlags | (kMfdHugeMask << kMfdHugeShift))) {
    return Errno::kEINVAL;
  }
  // "memfd:" and the name, at most 249 bytes before its NUL. Read a byte at a time, as
  // strnlen_user does: the name may end just before an unmapped page.
  char name[kPrefixLength + kNameMaxLength + 1];
  copy_bytes(name, kPrefix, kPrefixLength);
  usize length = 0;
  for (;;) {
    char c;
    if (!hal::copy_from_user(&c, name_address + length, 1)) return Errno::kEFAULT;
    if (c == 0) break;
    if (length == kNameMaxLength) return Errno::kEINVAL;
    name[kPrefixLength + length++] = c;
  }
  name[kPrefixLength + length] = 0;
  // hugetlbfs does not exist here; such a memfd cannot be made (Linux fails it too when no
  // huge pages are configured, at the first mapping or here).
  if (flags & kMfdHugetlb) return Errno::kEINVAL;
  // MFD_ALLOW_SEALING is accepted; seals themselves (fcntl F_ADD_SEALS) are not implemented
  // and answer EINVAL, as fcntl does for commands it does not know.
  FileTable* files = TRY(current_files());
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  Vnode* vnode = TRY(tmpfs_create_memfd(args.kernel, name));
  // The file reference below holds the vnode from here on.
  auto file = vfs->open_vnode(vnode, oflag::kRdWr | oflag::kLargeFile);
  vnode->release();
  if (file.is_error()) return file.error();
  auto fd = files->install(file.value(), (flags & kMfdCloexec) != 0);
  if (fd.is_error()) {
    file.value()->release();
    return fd.error();
  }
  return fd.value();
}

}  // namespace tandem
