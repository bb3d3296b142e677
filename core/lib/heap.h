// The kernel heap: size-class slabs carved from physical pages the HAL hands out.
//
// One heap belongs to one kernel instance, so a simulator that throws a kernel away throws its
// heap away with it. Objects are at most one page; larger structures are built from pages.
// The heap counts live objects and pages, so leak checks after a run are exact.
#pragma once

#include "core/lib/result.h"
#include "core/lib/spinlock.h"
#include "core/lib/types.h"

namespace tandem {

class Heap {
 public:
  static constexpr usize kMaxObject = 4096;

  Heap() = default;
  TANDEM_NONCOPYABLE(Heap);

  // Returns null when out of memory. Memory is not zeroed.
  void* allocate(usize size);
  void free(void* object, usize size);
  // Releases every page back to the HAL. Only when nothing is live.
  void release_all();

  usize live_objects() const { return m_live_objects; }
  usize pages_in_use() const { return m_pages; }

  template <typename T, typename... Args>
  T* make(Args&&... args) {
    void* memory = allocate(sizeof(T));
    if (memory == nullptr) return nullptr;
    return new (memory) T(forward<Args>(args)...);
  }
  template <typename T>
  void destroy(T* object) {
    if (object == nullptr) return;
    object->~T();
    free(object, sizeof(T));
  }

 private:
  static constexpr usize kClasses = 8;  // 32, 64, ..., 4096
  static usize class_of(usize size);
  struct FreeObject {
    FreeObject* next;
  };
  struct PageRecord {  // chain of pages held, for release_all
    PageRecord* next;
    u64 phys;
  };

  SpinLock m_lock{LockRank::Heap};
  FreeObject* m_free[kClasses] = {};
  u64 m_page_list_phys = 0;  // first page in the chain of owned pages (stored in-page)
  usize m_live_objects = 0;
  usize m_pages = 0;
};

}  // namespace tandem
