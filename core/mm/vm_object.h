// Memory objects: the pages behind mappings and in-memory files.
//
// A VmObject is anonymous memory (one per private mapping, or shared by every mapping of a
// MAP_SHARED|MAP_ANONYMOUS region and its forks) or the data of an in-memory file (tmpfs and
// memfd, Linux's shmem): the file's read and write and every MAP_SHARED mapping of it reach
// the same physical pages, so a store through one mapping is what read() returns and what a
// second mapping in another address space sees.
//
// Pages are found through a radix tree over their index (64 slots a node, as tall as the
// highest index needs), so a fault or a file read costs a few pointer steps however many pages
// the object holds; the list beside it keeps iteration (unmap, fork, free) proportional to the
// pages that exist.
//
// Locking. An object may be reached from several address spaces and from a file's read/write
// path at once, so it has its own lock, ranked just above AddressSpace: the fault path holds
// its address space's lock and then takes the object's. Its page list and `size` are guarded
// by it. Never copy to or from user memory under it: the copy may fault, and the fault takes
// an address-space lock (lower rank) and, when the user buffer maps this very object, this
// lock again. File I/O looks a page up under it and copies after dropping it, under the file
// system's lock, which keeps truncate from freeing the page meanwhile (core/fs/tmpfs.cpp).
#pragma once

#include <hal.h>

#include "core/lib/atomic.h"
#include "core/lib/heap.h"
#include "core/lib/list.h"
#include "core/lib/result.h"
#include "core/lib/spinlock.h"

namespace tandem {

// File seals (fcntl(2) F_ADD_SEALS, Linux 6.1's set), kept on a file's object.
namespace seal {
inline constexpr u32 kSeal = 0x1, kShrink = 0x2, kGrow = 0x4, kWrite = 0x8, kFutureWrite = 0x10;
inline constexpr u32 kAll = kSeal | kShrink | kGrow | kWrite | kFutureWrite;
inline constexpr u32 kAnyWrite = kWrite | kFutureWrite;
}  // namespace seal

// A physical page that several private objects share after fork until one of them writes
// (copy-on-write). `refs` counts the sharing objects; the last one to let go frees the page.
struct SharedFrame {
  Atomic<u32> refs{1};
};

class VmObject {
 public:
  enum class Kind : u8 {
    Anonymous,  // zero-filled on first touch; size is the mapping's length
    File,       // an in-memory file's data: a fault at or past `size` is SIGBUS
  };

  struct Page {
    ListNode node;
    u64 index;
    u64 phys;
    SharedFrame* shared = nullptr;  // non-null: copy-on-write, map read-only until broken
  };

  // A new object with one reference, or null when the heap is exhausted. `name` (may be null)
  // is what /proc/PID/maps shows for shared mappings of it ("memfd:vmem"); it is copied.
  static VmObject* create(Heap& heap, Kind kind, u64 size, const char* name = nullptr);

  void retain() { m_refs.fetch_add(1); }
  // Drops a reference; the last one frees every page (copy-on-write frames once their last
  // sharer lets go) and the object. The caller must have unmapped the pages it mapped.
  void release();
  // More than `owners` references: some mapping (or fork's copy of one) holds the object.
  bool referenced_beyond(u32 owners) const { return m_refs.load() > owners; }

  Kind kind() const { return m_kind; }
  const char* name() const { return m_name; }
  SpinLock& lock() { return m_lock; }

  // Shared mappings that may write the object (address_space.h, writable_shared): F_SEAL_WRITE
  // is refused while there are any. A new one starts with begin_writable_map, which refuses
  // (false) under a write seal and counts it under the lock, so a seal and such a mapping never
  // both succeed; copies of one (split, fork) count with note_writable_map.
  bool begin_writable_map();
  void note_writable_map(bool added) {
    if (added) m_writable_maps.fetch_add(1); else m_writable_maps.fetch_sub(1);
  }

  // The rest is called with lock() held.
  u32 seals_locked() const { return m_seals; }
  // F_ADD_SEALS after its argument checks: EPERM once sealed, EBUSY for a write seal while a
  // writable shared mapping exists.
  Result<void> add_seals_locked(u32 seals);
  u64 size_locked() const { return m_size; }
  void set_size_locked(u64 size) { m_size = size; }
  Page* find_locked(u64 index) const;
  // The page at `index`, made (zero-filled) when missing; null when out of memory. A caller
  // may pass in `*zeroed` a frame it already filled with zeros: a new page takes it (and
  // clears *zeroed) instead of allocating and filling one under the lock.
  Page* get_or_make_locked(u64 index, u64* zeroed = nullptr);
  // Unlinks and frees one page record and its frame (or its hold on a copy-on-write frame).
  void free_page_locked(Page* page);
  // Frees every page at or past `first`.
  void free_pages_from_locked(u64 first);
  // Whether any page exists at or past `first`.
  bool has_pages_from_locked(u64 first) const;
  // The lowest index in [first, last) that has a page, or `last` when none does (SEEK_DATA).
  u64 next_page_index_locked(u64 first, u64 last) const {
    if (last <= first) return last;
    u64 best = last;
    if (last - first < m_pages.size()) {
      for (u64 index = first; index < last; ++index) {
        if (index_lookup(index) != nullptr) return index;
      }
      return last;
    }
    m_pages.for_each([&](const Page* page) {
      if (page->index >= first && page->index < best) best = page->index;
    });
    return best;
  }
  IntrusiveList<Page, &Page::node>& pages_locked() { return m_pages; }
  // Calls f(Page*) for every page with first <= index < last, by index when the range is
  // shorter than the page list, else along the list. f may free the page it is given.
  template <typename F>
  void for_each_in_range_locked(u64 first, u64 last, F&& f) {
    if (last <= first) return;
    if (last - first < m_pages.size()) {
      for (u64 index = first; index < last; ++index) {
        if (Page* page = index_lookup(index)) f(page);
      }
    } else {
      m_pages.for_each([&](Page* page) {
        if (page->index >= first && page->index < last) f(page);
      });
    }
  }
  usize page_count_locked() const { return m_pages.size(); }

  // memfd_create with MFD_ALLOW_SEALING, before anyone else can reach the object.
  void allow_sealing_unpublished() { m_seals = 0; }
  // For fork's copy of an object, before anyone else can reach it (no lock needed).
  void set_size_locked_unpublished(u64 size) { m_size = size; }
  // Adds a page record; false (nothing added) when the index cannot grow.
  bool adopt_page_unpublished(Page* page);

  // Copy-on-write (core/mm/cow.cpp): gives `page` a frame of its own, copying unless this
  // object is the last sharer. False when out of memory.
  bool break_cow_locked(Page* page);

  // Use create(); public only so the kernel heap can construct it.
  VmObject(Heap& heap, Kind kind, u64 size) : m_heap(heap), m_kind(kind), m_size(size) {}

 private:
  static constexpr u32 kRadixBits = 6;
  static constexpr u64 kRadixSlots = 1ull << kRadixBits;
  struct RadixNode {
    void* slots[kRadixSlots] = {};  // RadixNode* above the last level, Page* in it
  };
  static u64 capacity(u32 height) { return height * kRadixBits >= 64 ? ~0ull : 1ull << (height * kRadixBits); }
  Page* index_lookup(u64 index) const;
  bool index_insert(u64 index, Page* page);  // false when a node cannot be allocated
  void index_erase(u64 index);
  void index_free(RadixNode* node, u32 height);

  Heap& m_heap;
  Kind m_kind;
  Atomic<u32> m_refs{1};
  char* m_name = nullptr;  // heap copy, NUL-terminated
  usize m_name_size = 0;
  SpinLock m_lock{LockRank::VmObject};
  u64 m_size;  // bytes; guarded by m_lock
  IntrusiveList<Page, &Page::node> m_pages;  // guarded by m_lock
  RadixNode* m_root = nullptr;               // guarded by m_lock; covers capacity(m_height)
  u32 m_height = 0;
  // Files start sealed against sealing (F_SEAL_SEAL), as Linux's shmem inodes do; memfd_create
  // with MFD_ALLOW_SEALING clears it.
  u32 m_seals = seal::kSeal;  // guarded by m_lock
  Atomic<u32> m_writable_maps{0};
};

}  // namespace tandem
