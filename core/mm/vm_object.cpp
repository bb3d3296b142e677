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
    index_free(m_root, m_height);
    m_root = nullptr;
    m_height = 0;
  }
  Heap& heap = m_heap;
  if (m_name != nullptr) heap.free(m_name, m_name_size);
  heap.destroy(this);
}

bool VmObject::begin_writable_map() {
  SpinLockGuard guard(m_lock);
  if (m_seals & seal::kAnyWrite) return false;
  m_writable_maps.fetch_add(1);
  return true;
}

Result<void> VmObject::add_seals_locked(u32 seals) {
  DEBUG_ASSERT(m_lock.held_by_current_cpu());
  if (m_seals & seal::kSeal) return Errno::kEPERM;
  if ((seals & seal::kWrite) && !(m_seals & seal::kWrite) && m_writable_maps.load() != 0) return Errno::kEBUSY;
  m_seals |= seals;
  return {};
}

VmObject::Page* VmObject::find_locked(u64 index) const {
  DEBUG_ASSERT(m_lock.held_by_current_cpu());
  return index_lookup(index);
}

VmObject::Page* VmObject::get_or_make_locked(u64 index, u64* zeroed) {
  if (Page* page = find_locked(index)) return page;
  const bool have_frame = zeroed != nullptr && *zeroed != 0;
  const u64 phys = have_frame ? *zeroed : hal::phys_alloc_page();
  if (phys == 0) return nullptr;
  Page* record = m_heap.make<Page>();
  if (record == nullptr || !index_insert(index, record)) {
    m_heap.destroy(record);
    if (!have_frame) hal::phys_free_page(phys);
    return nullptr;
  }
  if (have_frame) {
    *zeroed = 0;
  } else {
    fill_bytes(hal::phys_to_virt(phys), 0, hal::kPageSize);
  }
  record->index = index;
  record->phys = phys;
  m_pages.push_back(record);
  return record;
}

bool VmObject::adopt_page_unpublished(Page* page) {
  if (!index_insert(page->index, page)) return false;
  m_pages.push_back(page);
  return true;
}

VmObject::Page* VmObject::index_lookup(u64 index) const {
  if (m_root == nullptr || index >= capacity(m_height)) return nullptr;
  const RadixNode* node = m_root;
  for (u32 level = m_height; level > 1; --level) {
    node = static_cast<const RadixNode*>(node->slots[(index >> ((level - 1) * kRadixBits)) & (kRadixSlots - 1)]);
    if (node == nullptr) return nullptr;
  }
  return static_cast<Page*>(node->slots[index & (kRadixSlots - 1)]);
}

bool VmObject::index_insert(u64 index, Page* page) {
  if (m_root == nullptr) {
    m_root = m_heap.make<RadixNode>();
    if (m_root == nullptr) return false;
    m_height = 1;
  }
  // Taller until the index fits: the old root becomes the first child of a new one.
  while (index >= capacity(m_height)) {
    RadixNode* root = m_heap.make<RadixNode>();
    if (root == nullptr) return false;
    root->slots[0] = m_root;
    m_root = root;
    ++m_height;
  }
  RadixNode* node = m_root;
  for (u32 level = m_height; level > 1; --level) {
    void*& slot = node->slots[(index >> ((level - 1) * kRadixBits)) & (kRadixSlots - 1)];
    if (slot == nullptr) {
      slot = m_heap.make<RadixNode>();
      if (slot == nullptr) return false;
    }
    node = static_cast<RadixNode*>(slot);
  }
  node->slots[index & (kRadixSlots - 1)] = page;
  return true;
}

void VmObject::index_erase(u64 index) {
  if (m_root == nullptr || index >= capacity(m_height)) return;
  RadixNode* node = m_root;
  for (u32 level = m_height; level > 1; --level) {
    node = static_cast<RadixNode*>(node->slots[(index >> ((level - 1) * kRadixBits)) & (kRadixSlots - 1)]);
    if (node == nullptr) return;
  }
  node->slots[index & (kRadixSlots - 1)] = nullptr;
}

// Emptied nodes stay until the object goes (a file that shrinks and grows again reuses them).
// The tree is at most 11 levels tall (64-bit indices, 6 bits a level): recursion is bounded.
void VmObject::index_free(RadixNode* node, u32 height) {
  if (node == nullptr) return;
  if (height > 1) {
    for (void* child : node->slots) index_free(static_cast<RadixNode*>(child), height - 1);
  }
  m_heap.destroy(node);
}

void VmObject::free_page_locked(Page* page) {
  DEBUG_ASSERT(m_lock.held_by_current_cpu());
  m_pages.remove(page);
  index_erase(page->index);
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
