// memfd_create(2): an anonymous in-memory file (core/fs/tmpfs.cpp, tmpfs_create_memfd) whose
// pages MAP_SHARED mappings share (core/syscalls/memory.cpp), as the Erlang JIT uses it: one
// writable and one executable view of the same code. And its seals (fcntl F_ADD_SEALS,
// F_GET_SEALS), which tmpfs's write and truncate and the address space's mmap and mprotect
// honour.
#include "core/fs/vfs.h"
#include "core/kernel.h"
#include "core/mm/vm_object.h"
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
  FileTable* files = TRY(current_files());
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  Vnode* vnode = TRY(tmpfs_create_memfd(args.kernel, name, (flags & kMfdAllowSealing) != 0));
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

Result<i64> file_seals(File& file, u32 command, u64 argument) {
  constexpr u32 kAddSeals = 1033;
  // Linux's memfd_add_seals: write access first, then the seal bits, then the file's kind.
  if (command == kAddSeals) {
    if (!file.writable()) return Errno::kEPERM;
    if (static_cast<u32>(argument) & ~seal::kAll) return Errno::kEINVAL;
  }
  Vnode* vnode = file.vnode();
  VmObject* object = vnode != nullptr && vnode->is_regular() ? vnode->vm_object() : nullptr;
  if (object == nullptr) return Errno::kEINVAL;
  i64 seals = 0;
  Errno error = static_cast<Errno>(0);
  {
    SpinLockGuard guard(object->lock());
    if (command == kAddSeals) {
      auto added = object->add_seals_locked(static_cast<u32>(argument));
      if (added.is_error()) error = added.error();
    } else {
      seals = static_cast<i64>(object->seals_locked());
    }
  }
  object->release();
  if (error != static_cast<Errno>(0)) return error;
  return seals;
}

}  // namespace tandem
