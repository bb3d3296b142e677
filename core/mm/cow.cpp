// Copy-on-write for fork: AddressSpace::clone and the frame sharing behind it.
//
// After clone, a private mapping's pages belong to two objects (the parent's and the child's),
// each page record pointing at one SharedFrame that counts the sharers. Both spaces map the page
// read-only; the first write fault in either breaks the sharing: the writer copies the page into
// a frame of its own, unless it is the last sharer, which simply takes the frame over.
//
// Why the count needs no lock shared by the two spaces: a sharer only ever drops its own hold
// (fetch_sub) and only clone, under the lock of a space that holds the frame, adds one. A sharer
// that reads refs == 1 is therefore alone for good. Two writers that copy at the same time both
// drop their hold; whichever takes the count to zero frees the original frame.
#include "core/kernel.h"
#include "core/mm/address_space.h"

namespace tandem {

bool VmObject::break_cow_locked(Page* page) {
  DEBUG_ASSERT(m_lock.held_by_current_cpu());
  SharedFrame* frame = page->shared;
  VERIFY(frame != nullptr);
  if (frame->refs.load() == 1) {
    // The other sharers are gone: the frame is ours.
    page->shared = nullptr;
    m_heap.destroy(frame);
    return true;
  }
  const u64 copy = hal::phys_alloc_page();
  if (copy == 0) return false;
  copy_bytes(hal::phys_to_virt(copy), hal::phys_to_virt(page->phys), hal::kPageSize);
  const u64 original = page->phys;
  page->phys = copy;
  page->shared = nullptr;
  if (frame->refs.fetch_sub(1) == 1) {
    // The other sharer copied at the same time and let go first: the original is ours to free.
    m_heap.destroy(frame);
    hal::phys_free_page(original);
  }
  return true;
}

Result<AddressSpace*> AddressSpace::clone() {
  AddressSpace* child = TRY(create(m_kernel));
  Heap& heap = m_kernel.heap();
  // Split mappings share one object: remember which child object each parent object became.
  constexpr u32 kMaxObjects = 256;
  struct Pair {
    VmObject* from;
    VmObject* to;
  };
  Pair* pairs = static_cast<Pair*>(heap.allocate(sizeof(Pair) * kMaxObjects));
  if (pairs == nullptr) {
    child->destroy();
    return Errno::kENOMEM;
  }
  u32 pair_count = 0;
  bool failed = false;
  bool protected_any = false;
  {
    SpinLockGuard guard(m_lock);
    for (Vma* v = m_vmas.front(); v != nullptr && !failed; v = m_vmas.next(v)) {
      Vma* copy = heap.make<Vma>();
      if (copy == nullptr) {
        failed = true;
        break;
      }
      *copy = Vma{};
      copy->start = v->start;
      copy->end = v->end;
      copy->prot = v->prot;
      copy->flags = v->flags;
      copy->object_offset = v->object_offset;
      if (v->flags & kMapShared) {
        // Shared mappings stay shared: the child maps the very same object.
        v->object->retain();
        if (writable_shared(*v)) v->object->note_writable_map(true);
        copy->object = v->object;
      } else {
        VmObject* object = nullptr;
        for (u32 i = 0; i < pair_count; ++i) {
          if (pairs[i].from == v->object) object = pairs[i].to;
        }
        if (object != nullptr) {
          object->retain();
        } else if (pair_count == kMaxObjects ||
                   (object = VmObject::create(heap, VmObject::Kind::Anonymous, 0)) == nullptr) {
          heap.destroy(copy);
          failed = true;
          break;
        } else {
          pairs[pair_count++] = Pair{v->object, object};
          // The child's object is not reachable by anyone else yet; the parent's is locked, as
          // the parent's own threads may be faulting in it through another mapping.
          SpinLockGuard object_guard(v->object->lock());
          object->set_size_locked_unpublished(v->object->size_locked());
          v->object->pages_locked().for_each([&](VmObject::Page* page) {
            if (failed) return;
            auto* record = heap.make<VmObject::Page>();
            if (page->shared == nullptr) page->shared = heap.make<SharedFrame>();
            if (record == nullptr || page->shared == nullptr) {
              heap.destroy(record);
              failed = true;
              return;
            }
            page->shared->refs.fetch_add(1);
            record->index = page->index;
            record->phys = page->phys;
            record->shared = page->shared;
            if (!object->adopt_page_unpublished(record)) {
              // The child's object never got it: drop the hold just taken, keep the parent's.
              page->shared->refs.fetch_sub(1);
              heap.destroy(record);
              failed = true;
            }
          });
        }
        copy->object = object;
        // The parent's own writable mappings of these pages become read-only: its next write
        // faults and copies, so the child keeps the contents of the moment of fork.
        if (v->prot & hal::kPageWrite) {
          const u32 read_only = v->prot & ~static_cast<u32>(hal::kPageWrite);
          SpinLockGuard object_guard(v->object->lock());
          v->object->pages_locked().for_each([&](VmObject::Page* page) {
            const u64 offset = page->index * hal::kPageSize;
            if (offset < v->object_offset || offset - v->object_offset >= v->end - v->start) return;
            const u64 address = v->start + (offset - v->object_offset);
            if (hal::pt_protect(m_page_table, address, read_only)) protected_any = true;
          });
        }
      }
      child->m_vmas.push_back(copy);
    }
    // Every CPU running a thread of this space must drop its writable translations before the
    // fork returns, or a sibling thread's write would still reach the now shared page.
    if (protected_any) hal::tlb_shootdown(m_page_table, 0, hal::kUserTop);
  }
  heap.free(pairs, sizeof(Pair) * kMaxObjects);
  if (failed) {
    child->destroy();
    return Errno::kENOMEM;
  }
  return child;
}

}  // namespace tandem
