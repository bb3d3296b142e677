// Address spaces: the user half of a process's memory, as a list of mappings (VMAs) over
// memory objects, with pages filled in on demand by the page-fault handler.
#pragma once

#include <hal.h>

#include "core/lib/atomic.h"
#include "core/lib/heap.h"
#include "core/lib/list.h"
#include "core/lib/result.h"
#include "core/lib/spinlock.h"
#include "core/mm/vm_object.h"

namespace tandem {

class Kernel;

enum MapFlags : u32 {
  kMapShared = 1u << 0,
  kMapPrivate = 1u << 1,
  // A private mapping of a file, filled with a copy of the file's bytes when it was made:
  // MADV_DONTNEED keeps its pages (Linux would re-read the file; zeros would be wrong).
  kMapFileCopy = 1u << 2,
  // A shared mapping of a file not open for writing, or made read-only after the file was
  // sealed against writes: mprotect may not add PROT_WRITE (EACCES, as Linux's cleared
  // VM_MAYWRITE).
  kMapNoWrite = 1u << 3,
};

// What a fault the address space could not resolve means for the signal it raises.
enum class FaultKind : u8 {
  Unmapped,    // SIGSEGV, SEGV_MAPERR
  Forbidden,   // SIGSEGV, SEGV_ACCERR: a mapping is there but its protection refuses the access
  BeyondFile,  // SIGBUS, BUS_ADRERR: a shared file mapping past the end of its file
};

struct Vma {
  ListNode node;
  u64 start;
  u64 end;
  u32 prot;   // hal::PageFlags
  u32 flags;  // MapFlags
  VmObject* object;
  u64 object_offset;
};

// A shared mapping that is or may become writable (Linux's VM_SHARED with VM_MAYWRITE): what a
// write seal (F_SEAL_WRITE) must wait out, and what VmObject counts. mprotect does not change
// it: a read-only view of a descriptor open for writing still counts, as on Linux.
inline bool writable_shared(const Vma& vma) { return (vma.flags & kMapShared) && !(vma.flags & kMapNoWrite); }

// What a futex word is identified by: a private key names (address space, address); a shared
// key on a shared mapping names (memory object, offset), so it matches across address spaces.
struct FutexKey {
  u64 space_or_object = 0;
  u64 address_or_offset = 0;
  u32 kind = 0;  // 1: private, 2: shared on a private mapping, 3: shared object
  bool operator==(const FutexKey& other) const {
    return space_or_object == other.space_or_object &&
           address_or_offset == other.address_or_offset && kind == other.kind;
  }
};

class AddressSpace {
 public:
  static Result<AddressSpace*> create(Kernel& kernel);
  void destroy();  // unmaps and frees everything; must not be active on any CPU

  // Maps anonymous zero-filled memory at a fixed page-aligned address.
  Result<void> map_anonymous(u64 address, u64 length, u32 prot, u32 flags);
  // Maps `object` from byte `offset` (page-aligned) at a fixed address, replacing what was
  // there (MAP_FIXED). On success the mapping owns the caller's reference to the object; on
  // failure the caller still does. A shared mapping of a write-sealed file: EPERM when
  // writable, else it is made kMapNoWrite.
  Result<void> map_object(u64 address, u64 length, u32 prot, u32 flags, VmObject* object, u64 offset);
  Result<void> unmap(u64 address, u64 length);

  // Defined in core/mm/address_space_ops.cpp (loader and mmap/mprotect support):
  // Maps anonymous memory at the highest free range of `length` bytes in [lowest, highest);
  // ENOMEM when none is free. Returns the address.
  // With `object` non-null, maps it from byte `offset` instead (ownership as map_object).
  Result<u64> map_anywhere(u64 length, u32 prot, u32 flags, u64 lowest, u64 highest, VmObject* object = nullptr,
                           u64 offset = 0);
  // madvise(MADV_DONTNEED) over [address, address + length): private anonymous pages are
  // dropped (the next touch reads zeros), shared pages are only unmapped (they stay in their
  // object). ENOMEM when part of the range is not mapped (the mapped parts are still done).
  Result<void> discard(u64 address, u64 length);
  // ENOMEM unless [address, address + length) is fully mapped (madvise's check).
  Result<void> check_mapped(u64 address, u64 length);
  // Why an access to `address` could not be resolved (the signal user_fault raises).
  FaultKind classify_fault(u64 address);
  // mprotect: changes the protection of [address, address + length), which must be fully
  // mapped (ENOMEM otherwise); splits mappings at the edges.
  Result<void> protect(u64 address, u64 length, u32 prot);
  // The protection of the mapping at `address`, 0 when none.
  u32 protection_at(u64 address);
  // Kernel-side write into the space's memory regardless of protection (the ELF loader and
  // the initial stack); pages are filled in as needed. EFAULT where nothing is mapped.
  Result<void> write(u64 address, const void* source, usize length);

  // Resolves a fault on `address`. Invalid: the access is not allowed (a signal is due);
  // OutOfMemory: allowed, but no frame or page-table page was left for it.
  enum class FaultResult : u8 { Resolved, Invalid, OutOfMemory };
  FaultResult handle_fault(u64 address, u32 access);

  Result<FutexKey> futex_key(u64 address, bool shared);

  // fork (core/mm/cow.cpp): a copy of this space in which private mappings share their pages
  // copy-on-write with this one, and shared mappings share their objects.
  Result<AddressSpace*> clone();

  // Calls f(const Vma&) for every mapping in address order, under the space's lock: f must not
  // touch user memory or block (/proc/self/maps copies what it needs first).
  template <typename F>
  void for_each_mapping(F&& f) {
    SpinLockGuard guard(m_lock);
    m_vmas.for_each([&](Vma* vma) { f(*vma); });
  }

  hal::PageTable* page_table() const { return m_page_table; }
  usize vma_count() const { return m_vmas.size(); }

 // Use create(); public only so the kernel heap can construct it.
  AddressSpace(Kernel& kernel, hal::PageTable* table) : m_kernel(kernel), m_page_table(table) {}

 private:
  // handle_fault's work under the locks. NeedPage: a fresh page is needed and `zeroed` points
  // at 0; the caller zeroes a frame outside the locks and calls again with it.
  enum class FaultStep : u8 { Resolved, Failed, OutOfMemory, NeedPage };
  FaultStep fault_locked(u64 address, u32 access, u64* zeroed);
  void map_around_locked(const Vma& vma, u64 page_address);
  Vma* find_vma(u64 address);
  // Unmaps [start, end). A cut strictly inside one mapping splits it in two: *spare (allocated
  // by the caller before anything changed, so running out of memory fails cleanly) becomes the
  // tail, and is set to null when used.
  void unmap_range_locked(u64 start, u64 end, Vma** spare);
  Result<void> split_locked(Vma* vma, u64 at);  // [start, at) stays in vma; the rest is new
  // Unmaps from this space's page table every page of `vma`'s object in [start, end) (within
  // the mapping) and shoots the range down; true when anything was mapped. Takes the object's
  // lock; with `drop`, private pages in the range also leave the object (freed).
  bool unmap_pages_locked(Vma* vma, u64 start, u64 end, bool drop);
  // Inserts `vma` into the sorted list.
  void insert_locked(Vma* vma);

  Kernel& m_kernel;
  hal::PageTable* m_page_table;
  SpinLock m_lock{LockRank::AddressSpace};
  IntrusiveList<Vma, &Vma::node> m_vmas;  // sorted by start, guarded by m_lock
  // The mapping find_vma() found last (guarded by m_lock; cleared when a mapping is removed):
  // faults come in runs on the same mapping, and beam.smp has a few hundred of them, so the
  // walk along the list cost more than the rest of a fault.
  Vma* m_vma_hint = nullptr;
};

}  // namespace tandem
