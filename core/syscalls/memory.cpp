// Memory system calls: brk, mmap, munmap, mprotect, madvise. Anonymous mappings are memory
// objects of their own (shared ones shared across fork); MAP_SHARED of an in-memory file
// (tmpfs, memfd) maps the file's own object, so every such mapping and the file's read and
// write see the same pages; MAP_PRIVATE of a file is a private copy of its bytes.
#include "core/exec/elf.h"
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/syscalls/dispatch.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

constexpr u64 kProtRead = 1, kProtWrite = 2, kProtExec = 4;
constexpr u64 kProtMask = kProtRead | kProtWrite | kProtExec;
constexpr u64 kMapSharedFlag = 0x01, kMapPrivateFlag = 0x02, kMapSharedValidate = 0x03, kMapTypeMask = 0x0f,
              kMapFixed = 0x10, kMapAnonymous = 0x20, kMapGrowsdown = 0x100, kMapDenywrite = 0x800,
              kMapExecutable = 0x1000, kMapLocked = 0x2000, kMapNoreserve = 0x4000, kMapPopulate = 0x8000,
              kMapNonblock = 0x10000, kMapStack = 0x20000, kMapHugetlb = 0x40000,
              kMapFixedNoreplace = 0x100000;
constexpr u64 kMapKnown = kMapTypeMask | kMapFixed | kMapAnonymous | kMapGrowsdown | kMapDenywrite |
                          kMapExecutable | kMapLocked | kMapNoreserve | kMapPopulate | kMapNonblock |
                          kMapStack | kMapFixedNoreplace;
constexpr u64 kMmapMinAddress = 0x10000;
constexpr u64 kBrkMax = 1ull << 32;  // the heap may grow 4 GiB past the image

u32 page_flags(u64 prot) {
  return static_cast<u32>(((prot & kProtRead) ? hal::kPageRead : 0) | ((prot & kProtWrite) ? hal::kPageWrite : 0) |
                          ((prot & kProtExec) ? hal::kPageExec : 0));
}

AddressSpace& current_space() {
  AddressSpace* space = Kernel::current_thread()->process->address_space;
  VERIFY(space != nullptr);
  return *space;
}

}  // namespace

Result<i64> sys_brk(SyscallArgs& args) {
  const u64 requested = args.arg[0];
  Process* process = Kernel::current_thread()->process;
  AddressSpace& space = current_space();
  SpinLockGuard guard(process->lock);
  // brk never fails on Linux: it returns the old break when it cannot move it.
  if (process->brk_start == 0 || requested < process->brk_start || requested > process->brk_start + kBrkMax)
    return static_cast<i64>(process->brk_current);
  const u64 new_mapped_end = align_up(requested, hal::kPageSize);
  if (new_mapped_end > process->brk_mapped_end) {
    // Grow only into free space: map_anywhere within exactly the new range fails when anything
    // (an mmap) is already there.
    const u64 grow = new_mapped_end - process->brk_mapped_end;
    auto placed = space.map_anywhere(grow, hal::kPageRead | hal::kPageWrite, kMapPrivate,
                                     process->brk_mapped_end, new_mapped_end);
    if (placed.is_error()) return static_cast<i64>(process->brk_current);
    VERIFY(placed.value() == process->brk_mapped_end);
  } else if (new_mapped_end < process->brk_mapped_end) {
    (void)space.unmap(new_mapped_end, process->brk_mapped_end - new_mapped_end);
  }
  process->brk_mapped_end = new_mapped_end;
  process->brk_current = requested;
  return static_cast<i64>(requested);
}

namespace {

// Private file mappings are filled with the file's bytes when they are made: a private copy,
// which is exactly MAP_PRIVATE's meaning as long as the file does not change underneath, and
// what ld.so needs to map shared libraries. Files without a memory object (the read-only cpio
// root) are mapped this way even when MAP_SHARED, read-only (the copy cannot be told apart).
// Only the file's data is copied: its holes (pages of a tmpfs file or memfd never written) read
// as zeros, which the fresh mapping already is, so a large sparse file costs what it holds.
Result<void> fill_from_file(AddressSpace& space, Vnode* vnode, u64 address, u64 length, u64 offset) {
  const u64 size = vnode->size();
  if (offset >= size) return {};
  const u64 end = offset + min<u64>(length, size - offset);
  u8 buffer[512];
  for (u64 position = offset; position < end;) {
    auto data = vnode->seek_data_or_hole(position, false);
    if (data.is_error() || data.value() >= end) break;
    const u64 hole = min(end, TRY(vnode->seek_data_or_hole(data.value(), true)));
    if (hole <= data.value()) break;  // the file shrank meanwhile
    for (u64 at = data.value(); at < hole;) {
      const usize chunk = min<u64>(hole - at, sizeof(buffer));
      const usize got = TRY(vnode->read(at, IoBuffer::from_kernel(buffer), chunk));
      if (got == 0) return {};
      TRY(space.write(address + (at - offset), buffer, got));
      at += got;
    }
    position = hole;
  }
  return {};
}

}  // namespace

Result<i64> sys_mmap(SyscallArgs& args) {
  const u64 address = args.arg[0];
  const u64 length = args.arg[1];
  const u64 prot = args.arg[2];
  const u64 flags = args.arg[3];
  const i32 fd = static_cast<i32>(args.arg[4]);
  const u64 offset = args.arg[5];
  // Decode, in Linux's order (mm/mmap.c, do_mmap).
  if (length == 0) return Errno::kEINVAL;
  if (offset % hal::kPageSize != 0) return Errno::kEINVAL;
  const u64 type = flags & kMapTypeMask;
  if (type != kMapSharedFlag && type != kMapPrivateFlag && type != kMapSharedValidate) return Errno::kEINVAL;
  if (type == kMapSharedValidate && (flags & ~kMapKnown) != 0) return Errno::kEOPNOTSUPP;
  if (prot & ~kProtMask) return Errno::kEINVAL;
  if (flags & kMapHugetlb) return Errno::kEINVAL;
  const u64 rounded = align_up(length, hal::kPageSize);
  if (rounded < length || rounded > hal::kUserTop) return Errno::kENOMEM;
  if (offset + rounded < offset) return Errno::kEOVERFLOW;
  // A file: a regular file open for reading (and for writing, to share writes).
  Vnode* vnode = nullptr;
  File* file = nullptr;
  if (!(flags & kMapAnonymous)) {
    FileTable* files = TRY(current_files());
    file = TRY(files->get(fd));
  }
  FileRef file_ref(file);
  VmObject* object = nullptr;  // a shared file mapping's object (our reference)
  u32 map_flags = type == kMapPrivateFlag ? kMapPrivate : kMapShared;
  if (file != nullptr) {
    vnode = file->vnode();
    if (vnode == nullptr || !vnode->is_regular()) return Errno::kENODEV;
    if (!file->readable()) return Errno::kEACCES;
    if (type != kMapPrivateFlag) {
      // mmap(2): EACCES for a shared writable mapping of a file not open for writing. (Its
      // "append-only" is the inode attribute, chattr +a, which tandem has not; O_APPEND is no
      // obstacle on Linux either.)
      if ((prot & kProtWrite) && !file->writable()) return Errno::kEACCES;
      object = vnode->vm_object();
      if (object == nullptr && (prot & kProtWrite)) return Errno::kENODEV;
    }
    if (object != nullptr) {
      // Without write access to the file, mprotect may not make the mapping writable later.
      if (!file->writable()) map_flags |= kMapNoWrite;
      vnode = nullptr;  // nothing to copy: the mapping reaches the file's pages
    } else {
      map_flags = kMapPrivate | kMapFileCopy;
    }
  }
  // From here on a failure must drop the object reference, unless a mapping took it over.
  struct ObjectRef {
    VmObject* object;
    ~ObjectRef() {
      if (object != nullptr) object->release();
    }
  } object_ref{object};
  AddressSpace& space = current_space();
  const bool fixed = (flags & (kMapFixed | kMapFixedNoreplace)) != 0;
  u64 placed = 0;
  if (fixed) {
    if (address % hal::kPageSize != 0) return Errno::kEINVAL;
    if (address + rounded < address || address + rounded > hal::kUserTop) return Errno::kENOMEM;
    if (address < kMmapMinAddress) return Errno::kEPERM;
    if (flags & kMapFixed) {
      if (object != nullptr) {
        TRY(space.map_object(address, rounded, page_flags(prot), map_flags, object, offset));
        object_ref.object = nullptr;
      } else {
        TRY(space.map_anonymous(address, rounded, page_flags(prot), map_flags));
      }
      placed = address;
    } else {
      // MAP_FIXED_NOREPLACE: only into free space.
      auto result =
          space.map_anywhere(rounded, page_flags(prot), map_flags, address, address + rounded, object, offset);
      if (result.is_error()) return Errno::kEEXIST;
      object_ref.object = nullptr;
      placed = result.value();
    }
  } else {
    // A hint is used when that range is free; otherwise top-down below kMmapTop.
    bool done = false;
    if (address != 0 && address % hal::kPageSize == 0 && address >= kMmapMinAddress &&
        address + rounded > address && address + rounded <= hal::kUserTop) {
      auto result =
          space.map_anywhere(rounded, page_flags(prot), map_flags, address, address + rounded, object, offset);
      if (result.ok()) {
        placed = result.value();
        done = true;
      }
    }
    if (!done) {
      placed = TRY(space.map_anywhere(rounded, page_flags(prot), map_flags, kMmapMinAddress, kMmapTop, object, offset));
    }
    object_ref.object = nullptr;
  }
  if (vnode != nullptr) {
    auto filled = fill_from_file(space, vnode, placed, length, offset);
    if (filled.is_error()) {
      (void)space.unmap(placed, rounded);
      return filled.error();
    }
  }
  return static_cast<i64>(placed);
}

Result<i64> sys_munmap(SyscallArgs& args) {
  const u64 address = args.arg[0];
  const u64 length = args.arg[1];
  if (address % hal::kPageSize != 0 || length == 0) return Errno::kEINVAL;
  TRY(current_space().unmap(address, length));
  return 0;
}

Result<i64> sys_mprotect(SyscallArgs& args) {
  const u64 address = args.arg[0];
  const u64 length = args.arg[1];
  const u64 prot = args.arg[2];
  constexpr u64 kProtGrowsdown = 0x01000000, kProtGrowsup = 0x02000000;
  if (prot & ~(kProtMask | kProtGrowsdown | kProtGrowsup)) return Errno::kEINVAL;
  if (address % hal::kPageSize != 0) return Errno::kEINVAL;
  if (length == 0) return 0;
  if (align_up(length, hal::kPageSize) < length) return Errno::kENOMEM;
  TRY(current_space().protect(address, length, page_flags(prot)));
  return 0;
}

Result<i64> sys_madvise(SyscallArgs& args) {
  const u64 address = args.arg[0];
  const u64 length = args.arg[1];
  const i64 advice = static_cast<i64>(static_cast<i32>(args.arg[2]));
  // madvise(2)'s advice values as Linux 6.1 knows them.
  enum : i64 {
    kNormal = 0, kRandom = 1, kSequential = 2, kWillneed = 3, kDontneed = 4, kFree = 8, kRemove = 9,
    kDontfork = 10, kDofork = 11, kMergeable = 12, kUnmergeable = 13, kHugepage = 14, kNohugepage = 15,
    kDontdump = 16, kDodump = 17, kWipeonfork = 18, kKeeponfork = 19, kCold = 20, kPageout = 21,
    kPopulateRead = 22, kPopulateWrite = 23, kDontneedLocked = 24, kCollapse = 25,
  };
  bool known = false;
  switch (advice) {
    case kNormal: case kRandom: case kSequential: case kWillneed: case kDontneed: case kFree: case kRemove:
    case kDontfork: case kDofork: case kMergeable: case kUnmergeable: case kHugepage: case kNohugepage:
    case kDontdump: case kDodump: case kKeeponfork: case kCold: case kPageout: case kPopulateRead:
    case kPopulateWrite: case kDontneedLocked: case kCollapse:
      known = true;
      break;
    // MADV_WIPEONFORK would need fork to zero the range in the child; refused as kernels
    // before it refuse it, rather than silently giving the child the data. MADV_HWPOISON and
    // MADV_SOFT_OFFLINE (memory-failure testing) are not supported either.
    default: break;
  }
  if (!known) return Errno::kEINVAL;
  if (address % hal::kPageSize != 0) return Errno::kEINVAL;
  const u64 end = align_up(address + length, hal::kPageSize);
  if (address + length < address || end < address) return Errno::kEINVAL;
  if (end == address) return 0;
  if (end > hal::kUserTop) return Errno::kENOMEM;
  AddressSpace& space = current_space();
  switch (advice) {
    case kDontneed:
    case kDontneedLocked:
    case kFree:
      // MADV_FREE may keep or drop the pages until they are written again; dropping them now
      // is one of the outcomes it allows.
      TRY(space.discard(address, end - address));
      return 0;
    case kRemove:
      // Punching a hole in a shared file mapping (tmpfs) is not supported; on anything else
      // Linux refuses it too.
      TRY(space.check_mapped(address, end - address));
      return Errno::kEOPNOTSUPP;
    default:
      // The other advice only steers paging, merging, huge pages or core dumps: accepted.
      TRY(space.check_mapped(address, end - address));
      return 0;
  }
}

}  // namespace tandem
