#include "core/mm/vm_object.h"

namespace tandem {

VmObject* VmObject::create(Heap& heap, Kind kind, u64 size, const char* name) {
  VmObject* object = heap.make<VmObject>(heap, kind, size);
  if (object == nullptr || name == nullptr) return object;
  const usize length = string_length(name);
  object->m_name = static_cast<char*>(heap.allocate(length + 1));
  if (object->m_name == nullptr) {
    heap.destroy(object);
    return nullptr;
  }
  copy_bytes(object->m_name, name, length + 1);
  object->m_name_size = length + 1;
  return object;
}

void VmObject::release() {
  if (m_refs.fetch_sub(1) != 1) return;
  // The last reference: nobody else can reach the object, but the lock is taken anyway so the
  // page-list accessors keep their contract.
  {
    SpinLockGuard guard(m_lock);
    free_pages_from_locked(0);
  }
  Heap& heap = m_heap;
  if (m_name != nullptr) heap.free(m_name, m_name_size);
  heap.destroy(this);
}

VmObject::Page* VmObject::find_locked(u64 index) const {
  DEBUG_ASSERT(m_lock.held_by_current_cpu());
  Page* found = nullptr;
  m_pages.for_each([&](Page* page) {
    if (page->index == index) found = page;
  });
  return found;
}

VmObject::Page* VmObject::get_or_make_locked(u64 index) {
  if (Page* page = find_locked(index)) return page;
  const u64 phys = hal::phys_alloc_page();
  if (phys == 0) return nullptr;
  Page* record = m_heap.make<Page>();
  if (record == nullptr) {
    hal::phys_free_page(phys);
    return nullptr;
  }
  fill_bytes(hal::phys_to_virt(phys), 0, hal::kPageSize);
  record->index = index;
  record->phys = phys;
  m_pages.push_back(record);
  return record;
}

void VmObject::free_page_locked(Page* page) {
  DEBUG_ASSERT(m_lock.held_by_current_cpu());
  m_pages.remove(page);
  bool free_frame = true;
  if (SharedFrame* frame = page->shared) {
    page->shared = nullptr;
    if (frame->refs.fetch_sub(1) == 1) {
      m_heap.destroy(frame);
    } else {
      free_frame = false;  // another object still uses the frame
    }
  }
  if (free_frame) hal::phys_free_page(page->phys);
  m_heap.destroy(page);
}

void VmObject::free_pages_from_locked(u64 first) {
  m_pages.for_each([&](Page* page) {
    if (page->index >= first) free_page_locked(page);
  });
}

bool VmObject::has_pages_from_locked(u64 first) const {
  bool any = false;
  m_pages.for_each([&](Page* page) {
    if (page->index >= first) any = true;
  });
  return any;
}

}  // namespace tandem
