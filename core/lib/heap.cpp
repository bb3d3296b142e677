#include "core/lib/heap.h"

#include <hal.h>

namespace tandem {

namespace {
// Every page the heap owns starts with a link to the next owned page, so the whole heap can be
// returned to the HAL without a side table. Objects are carved from the rest of the page,
// except for the 4096-byte class, whose pages are tracked in a small directory page instead.
constexpr usize kHeader = 16;
}

usize Heap::class_of(usize size) {
  usize c = 0;
  usize capacity = 32;
  while (capacity < size) {
    capacity <<= 1;
    ++c;
  }
  return c;
}

void* Heap::allocate(usize size) {
  if (size == 0) size = 1;
  if (size > kMaxObject) return nullptr;
  const usize c = class_of(size);
  const usize object_size = usize{32} << c;
  SpinLockGuard guard(m_lock);
  if (m_free[c] == nullptr) {
    // A whole-page object cannot share its page with the chain header: give it two pages'
    // worth of bookkeeping by allocating a header page per 255 big objects would be more
    // frugal; one header page per big page keeps the code simple and is rare.
    const u64 phys = hal::phys_alloc_page();
    if (phys == 0) return nullptr;
    auto* page = static_cast<u8*>(hal::phys_to_virt(phys));
    ++m_pages;
    if (object_size == kMaxObject) {
      const u64 header_phys = hal::phys_alloc_page();
      if (header_phys == 0) {
        hal::phys_free_page(phys);
        --m_pages;
        return nullptr;
      }
      ++m_pages;
      auto* header = static_cast<u64*>(hal::phys_to_virt(header_phys));
      header[0] = m_page_list_phys;
      header[1] = phys;  // the data page this header accounts for
      m_page_list_phys = header_phys;
      auto* object = reinterpret_cast<FreeObject*>(page);
      object->next = nullptr;
      m_free[c] = object;
    } else {
      auto* header = reinterpret_cast<u64*>(page);
      header[0] = m_page_list_phys;
      header[1] = 0;
      m_page_list_phys = phys;
      const usize first = object_size < kHeader ? kHeader : align_up(kHeader, object_size);
      for (usize offset = hal::kPageSize; offset >= first + object_size;) {
        offset -= object_size;
        auto* object = reinterpret_cast<FreeObject*>(page + offset);
        object->next = m_free[c];
        m_free[c] = object;
      }
    }
  }
  FreeObject* object = m_free[c];
  m_free[c] = object->next;
  ++m_live_objects;
  return object;
}

void Heap::free(void* object, usize size) {
  if (object == nullptr) return;
  if (size == 0) size = 1;
  VERIFY(size <= kMaxObject);
  const usize c = class_of(size);
  SpinLockGuard guard(m_lock);
  VERIFY(m_live_objects > 0);
  auto* free_object = static_cast<FreeObject*>(object);
  free_object->next = m_free[c];
  m_free[c] = free_object;
  --m_live_objects;
}

void Heap::release_all() {
  VERIFY(m_live_objects == 0);
  u64 phys = m_page_list_phys;
  while (phys != 0) {
    auto* header = static_cast<u64*>(hal::phys_to_virt(phys));
    const u64 next = header[0];
    if (header[1] != 0) hal::phys_free_page(header[1]);
    hal::phys_free_page(phys);
    phys = next;
  }
  m_page_list_phys = 0;
  m_pages = 0;
  for (auto& list : m_free) list = nullptr;
}

}  // namespace tandem
