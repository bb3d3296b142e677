// Address spaces: the user half of a process's memory, as a list of mappings (VMAs) over
// memory objects, with pages filled in on demand by the page-fault handler.
#pragma once

#include <hal.h>

#include "core/lib/atomic.h"
#include "core/lib/heap.h"
#include "core/lib/list.h"
#include "core/lib/result.h"
#include "core/lib/spinlock.h"

namespace tandem {

class Kernel;

// A memory object: the pages behind one or more mappings. Anonymous objects start empty and
// get zeroed pages on first touch. Shared mappings of one object see the same pages, and
// shared futexes on them are keyed by (object, offset).
// A physical page that several private objects share after fork until one of them writes
// (copy-on-write). `refs` counts the sharing objects; the last one to let go frees the page.
struct SharedFrame {
  Atomic<u32> refs{1};
};

struct VmObject {
  struct Page {
    ListNode node;
    u64 index;
    u64 phys;
    SharedFrame* shared = nullptr;  // non-null: copy-on-write, map read-only until broken
  };
  u32 refs = 1;
  u64 size = 0;  // bytes
  IntrusiveList<Page, &Page::node> pages;  // guarded by the owning address space lock

  u64 find(u64 index) const;
  Page* find_page(u64 index) const;
};

enum MapFlags : u32 {
  kMapShared = 1u << 0,
  kMapPrivate = 1u << 1,
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
  Result<void> unmap(u64 address, u64 length);

  // Defined in core/mm/address_space_ops.cpp (loader and mmap/mprotect support):
  // Maps anonymous memory at the highest free range of `length` bytes in [lowest, highest);
  // ENOMEM when none is free. Returns the address.
  Result<u64> map_anywhere(u64 length, u32 prot, u32 flags, u64 lowest, u64 highest);
  // mprotect: changes the protection of [address, address + length), which must be fully
  // mapped (ENOMEM otherwise); splits mappings at the edges.
  Result<void> protect(u64 address, u64 length, u32 prot);
  // The protection of the mapping at `address`, 0 when none.
  u32 protection_at(u64 address);
  // Kernel-side write into the space's memory regardless of protection (the ELF loader and
  // the initial stack); pages are filled in as needed. EFAULT where nothing is mapped.
  Result<void> write(u64 address, const void* source, usize length);

  // Resolves a fault on `address`; false when it is not a valid access.
  bool handle_fault(u64 address, u32 access);

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
  Vma* find_vma(u64 address);
  void release_object(VmObject* object);
  // Unmaps [start, end). A cut strictly inside one mapping splits it in two: *spare (allocated
  // by the caller before anything changed, so running out of memory fails cleanly) becomes the
  // tail, and is set to null when used.
  void unmap_range_locked(u64 start, u64 end, Vma** spare);
  Result<void> split_locked(Vma* vma, u64 at);  // [start, at) stays in vma; the rest is new
  // Copy-on-write (core/mm/cow.cpp). break_cow_locked gives `page` its own frame (copying
  // unless it is the last sharer); free_page_frame drops this object's hold on the frame.
  bool break_cow_locked(VmObject::Page* page);
  void free_page_frame(VmObject::Page* page);

  Kernel& m_kernel;
  hal::PageTable* m_page_table;
  SpinLock m_lock{LockRank::AddressSpace};
  IntrusiveList<Vma, &Vma::node> m_vmas;  // sorted by start, guarded by m_lock
};

}  // namespace tandem
