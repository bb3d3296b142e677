#include "core/mm/address_space.h"

#include "core/kernel.h"

namespace tandem {

VmObject::Page* VmObject::find_page(u64 index) const {
  Page* found = nullptr;
  pages.for_each([&](Page* page) {
    if (page->index == index) found = page;
  });
  return found;
}

u64 VmObject::find(u64 index) const {
  u64 phys = 0;
  pages.for_each([&](Page* page) {
    if (page->index == index) phys = page->phys;
  });
  return phys;
}

Result<AddressSpace*> AddressSpace::create(Kernel& kernel) {
  hal::PageTable* table = hal::pt_create();
  if (table == nullptr) return Errno::kENOMEM;
  AddressSpace* space = kernel.heap().make<AddressSpace>(kernel, table);
  if (space == nullptr) {
    hal::pt_destroy(table);
    return Errno::kENOMEM;
  }
  return space;
}

void AddressSpace::destroy() {
  // Other CPUs that ran this address space's threads may still be finishing their switch away
  // from it; the table (and the pages it maps) must outlive that.
  for (u32 i = 0; i < m_kernel.config().cpu_count; ++i) {
    while (m_kernel.cpu(i).active_table.load(MemoryOrder::Acquire) == m_page_table) hal::cpu_relax();
  }
  {
    SpinLockGuard guard(m_lock);
    Vma* no_spare = nullptr;  // the whole range: nothing can be split
    unmap_range_locked(0, hal::kUserTop, &no_spare);
  }
  hal::pt_destroy(m_page_table);
  m_kernel.heap().destroy(this);
}

Vma* AddressSpace::find_vma(u64 address) {
  for (Vma* vma = m_vmas.front(); vma != nullptr; vma = m_vmas.next(vma)) {
    if (address < vma->start) return nullptr;
    if (address < vma->end) return vma;
  }
  return nullptr;
}

Result<void> AddressSpace::map_anonymous(u64 address, u64 length, u32 prot, u32 flags) {
  if (length == 0 || (address % hal::kPageSize) != 0) return Errno::kEINVAL;
  length = align_up(length, hal::kPageSize);
  if (address + length < address || address + length > hal::kUserTop) return Errno::kENOMEM;
  Heap& heap = m_kernel.heap();
  VmObject* object = heap.make<VmObject>();
  Vma* vma = heap.make<Vma>();
  Vma* spare = heap.make<Vma>();
  if (object == nullptr || vma == nullptr || spare == nullptr) {
    heap.destroy(object);
    heap.destroy(vma);
    heap.destroy(spare);
    return Errno::kENOMEM;
  }
  object->size = length;
  vma->start = address;
  vma->end = address + length;
  vma->prot = prot;
  vma->flags = flags;
  vma->object = object;
  vma->object_offset = 0;
  SpinLockGuard guard(m_lock);
  // MAP_FIXED semantics: whatever was there goes.
  unmap_range_locked(vma->start, vma->end, &spare);
  Vma* position = m_vmas.front();
  while (position != nullptr && position->start < vma->start) position = m_vmas.next(position);
  if (position == nullptr) m_vmas.push_back(vma); else m_vmas.insert_before(position, vma);
  guard.unlock();
  heap.destroy(spare);
  return {};
}

Result<void> AddressSpace::unmap(u64 address, u64 length) {
  if ((address % hal::kPageSize) != 0 || length == 0) return Errno::kEINVAL;
  length = align_up(length, hal::kPageSize);
  if (address + length < address || address + length > hal::kUserTop) return Errno::kEINVAL;
  Vma* spare = m_kernel.heap().make<Vma>();
  if (spare == nullptr) return Errno::kENOMEM;
  SpinLockGuard guard(m_lock);
  unmap_range_locked(address, address + length, &spare);
  guard.unlock();
  m_kernel.heap().destroy(spare);
  return {};
}

void AddressSpace::release_object(VmObject* object) {
  if (--object->refs > 0) return;
  Heap& heap = m_kernel.heap();
  while (VmObject::Page* page = object->pages.pop_front()) {
    free_page_frame(page);
    heap.destroy(page);
  }
  heap.destroy(object);
}

void AddressSpace::unmap_range_locked(u64 start, u64 end, Vma** spare) {
  Heap& heap = m_kernel.heap();
  Vma* vma = m_vmas.front();
  while (vma != nullptr) {
    Vma* following = m_vmas.next(vma);
    if (vma->end > start && vma->start < end) {
      const u64 cut_start = max(vma->start, start);
      const u64 cut_end = min(vma->end, end);
      // Only pages that were faulted in can be mapped, and every one of them is in the
      // object's page list: walk that list rather than every page of a mostly empty range.
      const u64 first = (vma->object_offset + (cut_start - vma->start)) / hal::kPageSize;
      const u64 last = (vma->object_offset + (cut_end - vma->start)) / hal::kPageSize;
      bool unmapped = false;
      vma->object->pages.for_each([&](VmObject::Page* page) {
        if (page->index < first || page->index >= last) return;
        const u64 address = vma->start + page->index * hal::kPageSize - vma->object_offset;
        if (hal::pt_unmap(m_page_table, address) != 0) unmapped = true;
      });
      // One shootdown for the whole cut, and before release_object below can free the pages:
      // another CPU running this address space must not reach them through a stale TLB entry.
      if (unmapped) {
        if (hal::planted(hal::Plant::MissingShootdown)) {
          // Planted bug: only this CPU forgets the translations; others keep stale ones.
          hal::tlb_flush_local(cut_start, cut_end - cut_start);
        } else {
          hal::tlb_shootdown(m_page_table, cut_start, cut_end - cut_start);
        }
      }
      if (cut_start == vma->start && cut_end == vma->end) {
        m_vmas.remove(vma);
        release_object(vma->object);
        heap.destroy(vma);
      } else if (cut_start == vma->start) {
        vma->object_offset += cut_end - vma->start;
        vma->start = cut_end;
      } else if (cut_end == vma->end) {
        vma->end = cut_start;
      } else {
        // A hole in the middle: the tail becomes a second mapping of the same object.
        // Only a range strictly inside one mapping gets here, once per call.
        Vma* tail = *spare;
        VERIFY(tail != nullptr);
        *spare = nullptr;
        *tail = Vma{};
        tail->start = cut_end;
        tail->end = vma->end;
        tail->prot = vma->prot;
        tail->flags = vma->flags;
        tail->object = vma->object;
        tail->object_offset = vma->object_offset + (cut_end - vma->start);
        ++vma->object->refs;
        vma->end = cut_start;
        if (following == nullptr) m_vmas.push_back(tail); else m_vmas.insert_before(following, tail);
      }
    }
    vma = following;
  }
}

bool AddressSpace::handle_fault(u64 address, u32 access) {
  if (address >= hal::kUserTop) return false;
  SpinLockGuard guard(m_lock);
  Vma* vma = find_vma(address);
  if (vma == nullptr) return false;
  if (access == kentry::kFaultWrite && (vma->prot & hal::kPageWrite) == 0) return false;
  if (access == kentry::kFaultExec && (vma->prot & hal::kPageExec) == 0) return false;
  if (access == kentry::kFaultRead && (vma->prot & (hal::kPageRead | hal::kPageWrite)) == 0) return false;
  const u64 page_address = align_down(address, hal::kPageSize);
  u64 mapped_phys = 0;
  u32 mapped_flags = 0;
  const u64 index = (vma->object_offset + (page_address - vma->start)) / hal::kPageSize;
  if (hal::pt_query(m_page_table, page_address, &mapped_phys, &mapped_flags)) {
    if (access == kentry::kFaultWrite && (mapped_flags & hal::kPageWrite) == 0) {
      // A write to a copy-on-write page: give this space its own copy, mapped writable.
      VmObject::Page* page = vma->object->find_page(index);
      if (page == nullptr || page->shared == nullptr || !break_cow_locked(page)) return false;
      hal::pt_unmap(m_page_table, page_address);
      // Every CPU running this space drops the read-only translation to the shared frame: the
      // other sharer may free it, and a stale entry would read it after that.
      hal::tlb_shootdown(m_page_table, page_address, hal::kPageSize);
      return hal::pt_map(m_page_table, page_address, page->phys, vma->prot);
    }
    // Another CPU filled it in meanwhile, or a stale TLB entry: flush and retry.
    hal::tlb_flush_local(page_address, hal::kPageSize);
    return (mapped_flags & vma->prot) == vma->prot || access == kentry::kFaultRead;
  }
  if (VmObject::Page* page = vma->object->find_page(index); page != nullptr && page->shared != nullptr) {
    // Shared with another space since fork: a read maps it read-only, a write copies first.
    if (access == kentry::kFaultWrite) {
      if (!break_cow_locked(page)) return false;
      return hal::pt_map(m_page_table, page_address, page->phys, vma->prot);
    }
    return hal::pt_map(m_page_table, page_address, page->phys, vma->prot & ~static_cast<u32>(hal::kPageWrite));
  }
  u64 phys = vma->object->find(index);
  if (phys == 0) {
    phys = hal::phys_alloc_page();
    if (phys == 0) return false;
    auto* record = m_kernel.heap().make<VmObject::Page>();
    if (record == nullptr) {
      hal::phys_free_page(phys);
      return false;
    }
    fill_bytes(hal::phys_to_virt(phys), 0, hal::kPageSize);
    record->index = index;
    record->phys = phys;
    vma->object->pages.push_back(record);
  }
  if (!hal::pt_map(m_page_table, page_address, phys, vma->prot)) return false;
  return true;
}

Result<FutexKey> AddressSpace::futex_key(u64 address, bool shared) {
  if ((address % sizeof(u32)) != 0) return Errno::kEINVAL;
  if (address >= hal::kUserTop) return Errno::kEFAULT;
  if (!shared) return FutexKey{reinterpret_cast<u64>(this), address, 1};
  SpinLockGuard guard(m_lock);
  Vma* vma = find_vma(address);
  if (vma == nullptr) return Errno::kEFAULT;
  if ((vma->flags & kMapShared) == 0) return FutexKey{reinterpret_cast<u64>(this), address, 2};
  return FutexKey{reinterpret_cast<u64>(vma->object), vma->object_offset + (address - vma->start), 3};
}

}  // namespace tandem
