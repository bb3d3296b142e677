#include "core/mm/address_space.h"

#include "core/kernel.h"

namespace tandem {

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
  // Mappings never overlap: one that contains the address is the answer, wherever it came from.
  if (m_vma_hint != nullptr && address >= m_vma_hint->start && address < m_vma_hint->end) return m_vma_hint;
  for (Vma* vma = m_vmas.front(); vma != nullptr; vma = m_vmas.next(vma)) {
    if (address < vma->start) return nullptr;
    if (address < vma->end) {
      m_vma_hint = vma;
      return vma;
    }
  }
  return nullptr;
}

Result<void> AddressSpace::map_anonymous(u64 address, u64 length, u32 prot, u32 flags) {
  if (length == 0 || (address % hal::kPageSize) != 0) return Errno::kEINVAL;
  VmObject* object = VmObject::create(m_kernel.heap(), VmObject::Kind::Anonymous, align_up(length, hal::kPageSize));
  if (object == nullptr) return Errno::kENOMEM;
  auto mapped = map_object(address, length, prot, flags, object, 0);
  if (mapped.is_error()) object->release();
  return mapped;
}

Result<void> AddressSpace::map_object(u64 address, u64 length, u32 prot, u32 flags, VmObject* object, u64 offset) {
  if (length == 0 || (address % hal::kPageSize) != 0 || (offset % hal::kPageSize) != 0) return Errno::kEINVAL;
  length = align_up(length, hal::kPageSize);
  if (address + length < address || address + length > hal::kUserTop) return Errno::kENOMEM;
  Heap& heap = m_kernel.heap();
  Vma* vma = heap.make<Vma>();
  Vma* spare = heap.make<Vma>();
  if (vma == nullptr || spare == nullptr) {
    heap.destroy(vma);
    heap.destroy(spare);
    return Errno::kENOMEM;
  }
  vma->start = address;
  vma->end = address + length;
  vma->prot = prot;
  vma->flags = flags;
  vma->object = object;
  vma->object_offset = offset;
  SpinLockGuard guard(m_lock);
  if (writable_shared(*vma) && !object->begin_writable_map()) {
    // The file is sealed against writes (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE): only a read-only
    // view, which can never become writable.
    if (prot & hal::kPageWrite) {
      guard.unlock();
      heap.destroy(vma);
      heap.destroy(spare);
      return Errno::kEPERM;
    }
    vma->flags |= kMapNoWrite;
  }
  // MAP_FIXED semantics: whatever was there goes.
  unmap_range_locked(vma->start, vma->end, &spare);
  insert_locked(vma);
  guard.unlock();
  heap.destroy(spare);
  return {};
}

void AddressSpace::insert_locked(Vma* vma) {
  Vma* position = m_vmas.front();
  while (position != nullptr && position->start < vma->start) position = m_vmas.next(position);
  if (position == nullptr) m_vmas.push_back(vma); else m_vmas.insert_before(position, vma);
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

bool AddressSpace::unmap_pages_locked(Vma* vma, u64 start, u64 end, bool drop) {
  // Only pages that were faulted in can be mapped, and every one of them is in the object:
  // visit those, not every page of a mostly empty range.
  const u64 first = (vma->object_offset + (start - vma->start)) / hal::kPageSize;
  const u64 last = (vma->object_offset + (end - vma->start)) / hal::kPageSize;
  VmObject* object = vma->object;
  SpinLockGuard object_guard(object->lock());
  bool unmapped = false;
  object->for_each_in_range_locked(first, last, [&](VmObject::Page* page) {
    const u64 address = vma->start + page->index * hal::kPageSize - vma->object_offset;
    if (hal::pt_unmap(m_page_table, address) != 0) unmapped = true;
  });
  // One shootdown for the whole range, and before any page below is freed: another CPU
  // running this address space must not reach them through a stale TLB entry.
  if (unmapped) {
    if (hal::planted(hal::Plant::MissingShootdown)) {
      // Planted bug: only this CPU forgets the translations; others keep stale ones.
      hal::tlb_flush_local(start, end - start);
    } else {
      hal::tlb_shootdown(m_page_table, start, end - start);
    }
  }
  if (drop) {
    object->for_each_in_range_locked(first, last, [&](VmObject::Page* page) { object->free_page_locked(page); });
  }
  return unmapped;
}

void AddressSpace::unmap_range_locked(u64 start, u64 end, Vma** spare) {
  Heap& heap = m_kernel.heap();
  Vma* vma = m_vmas.front();
  while (vma != nullptr) {
    Vma* following = m_vmas.next(vma);
    if (vma->end > start && vma->start < end) {
      const u64 cut_start = max(vma->start, start);
      const u64 cut_end = min(vma->end, end);
      unmap_pages_locked(vma, cut_start, cut_end, false);
      if (cut_start == vma->start && cut_end == vma->end) {
        m_vmas.remove(vma);
        if (m_vma_hint == vma) m_vma_hint = nullptr;
        if (writable_shared(*vma)) vma->object->note_writable_map(false);
        vma->object->release();
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
        vma->object->retain();
        if (writable_shared(*tail)) vma->object->note_writable_map(true);
        vma->end = cut_start;
        if (following == nullptr) m_vmas.push_back(tail); else m_vmas.insert_before(following, tail);
      }
    }
    vma = following;
  }
}

AddressSpace::FaultResult AddressSpace::handle_fault(u64 address, u32 access) {
  if (address >= hal::kUserTop) return FaultResult::Invalid;
  // A fault that needs a fresh page gets one zeroed before the locks are taken, and tries
  // again: zeroing 4 KiB under the address-space lock kept every other faulting thread of the
  // process (and, under emulation, their CPUs) waiting.
  u64 zeroed = 0;
  FaultStep step = fault_locked(address, access, &zeroed);
  if (step == FaultStep::NeedPage) {
    zeroed = hal::phys_alloc_page();
    if (zeroed == 0) return FaultResult::OutOfMemory;
    fill_bytes(hal::phys_to_virt(zeroed), 0, hal::kPageSize);
    // The mapping may have changed meanwhile: this looks again from the start.
    step = fault_locked(address, access, &zeroed);
  }
  if (zeroed != 0) hal::phys_free_page(zeroed);
  switch (step) {
    case FaultStep::Resolved: return FaultResult::Resolved;
    case FaultStep::OutOfMemory: return FaultResult::OutOfMemory;
    default: return FaultResult::Invalid;
  }
}

AddressSpace::FaultStep AddressSpace::fault_locked(u64 address, u32 access, u64* zeroed) {
  constexpr FaultStep kFailed = FaultStep::Failed, kNoMemory = FaultStep::OutOfMemory;
  // pt_map fails only for want of a page-table page.
  auto mapped = [](bool ok) { return ok ? FaultStep::Resolved : FaultStep::OutOfMemory; };
  SpinLockGuard guard(m_lock);
  Vma* vma = find_vma(address);
  if (vma == nullptr) return kFailed;
  if (access == kentry::kFaultWrite && (vma->prot & hal::kPageWrite) == 0) return kFailed;
  if (access == kentry::kFaultExec && (vma->prot & hal::kPageExec) == 0) return kFailed;
  if (access == kentry::kFaultRead && (vma->prot & (hal::kPageRead | hal::kPageWrite)) == 0) return kFailed;
  const u64 page_address = align_down(address, hal::kPageSize);
  u64 mapped_phys = 0;
  u32 mapped_flags = 0;
  const u64 index = (vma->object_offset + (page_address - vma->start)) / hal::kPageSize;
  VmObject* object = vma->object;
  // Under the object's lock: another address space (a shared mapping) or the file's write
  // path may be adding pages to the same object right now.
  SpinLockGuard object_guard(object->lock());
  if (object->kind() == VmObject::Kind::File && index >= align_up(object->size_locked(), hal::kPageSize) / hal::kPageSize) {
    // Past the end of the file: Linux raises SIGBUS (classify_fault tells user_fault so).
    // Nothing is allocated.
    return kFailed;
  }
  if (hal::pt_query(m_page_table, page_address, &mapped_phys, &mapped_flags)) {
    if (access == kentry::kFaultWrite && (mapped_flags & hal::kPageWrite) == 0) {
      // A write to a copy-on-write page: give this space its own copy, mapped writable.
      VmObject::Page* page = object->find_locked(index);
      if (page == nullptr || page->shared == nullptr) return kFailed;
      const u64 shared_frame = page->phys;
      if (!object->break_cow_locked(page)) return kNoMemory;
      if (page->phys == shared_frame) {
        // The other sharers were gone (a forked child that exec'd or exited): the frame is ours
        // and only becomes writable. Other CPUs' read-only entries for it can stay: a write
        // through one faults, and the path above flushes it. No shootdown: beam.smp takes
        // about 180 such faults after forking erl_child_setup, and each shootdown waited for
        // every CPU running the process. This CPU drops its own entry now.
        const bool ok = hal::pt_map(m_page_table, page_address, page->phys, vma->prot);
        hal::tlb_flush_local(page_address, hal::kPageSize);
        return mapped(ok);
      }
      hal::pt_unmap(m_page_table, page_address);
      // Every CPU running this space drops the read-only translation to the shared frame: the
      // other sharer may free it, and a stale entry would read it after that.
      hal::tlb_shootdown(m_page_table, page_address, hal::kPageSize);
      return mapped(hal::pt_map(m_page_table, page_address, page->phys, vma->prot));
    }
    // Another CPU filled it in meanwhile, or a stale TLB entry: flush and retry. An entry that
    // still lacks what the mapping allows is no memory shortage: the access fails.
    hal::tlb_flush_local(page_address, hal::kPageSize);
    return (mapped_flags & vma->prot) == vma->prot || access == kentry::kFaultRead ? FaultStep::Resolved : kFailed;
  }
  VmObject::Page* page = object->find_locked(index);
  if (page != nullptr && page->shared != nullptr) {
    // Shared with another space since fork: a read maps it read-only, a write copies first.
    if (access == kentry::kFaultWrite) {
      if (!object->break_cow_locked(page)) return kNoMemory;
      return mapped(hal::pt_map(m_page_table, page_address, page->phys, vma->prot));
    }
    return mapped(hal::pt_map(m_page_table, page_address, page->phys, vma->prot & ~static_cast<u32>(hal::kPageWrite)));
  }
  if (page == nullptr) {
    if (zeroed != nullptr && *zeroed == 0) return FaultStep::NeedPage;
    page = object->get_or_make_locked(index, zeroed);
    if (page == nullptr) return kNoMemory;
    return mapped(hal::pt_map(m_page_table, page_address, page->phys, vma->prot));
  }
  if (!hal::pt_map(m_page_table, page_address, page->phys, vma->prot)) return kNoMemory;
  map_around_locked(*vma, page_address);
  return FaultStep::Resolved;
}

void AddressSpace::map_around_locked(const Vma& vma, u64 page_address) {
  // Fault-around (Linux does it for file pages): the neighbours of a page the object already
  // held (a loaded ELF segment, a file's data) are mapped now, exactly as their own faults
  // would map them, so a program walking through them takes one fault per 64 KiB, not one per
  // page. Nothing is allocated; pages shared copy-on-write are left to their faults.
  constexpr u64 kWindow = 16 * hal::kPageSize;
  if ((vma.prot & (hal::kPageRead | hal::kPageWrite | hal::kPageExec)) == 0) return;
  const u64 from = max(vma.start, align_down(page_address, kWindow));
  const u64 to = min(vma.end, align_down(page_address, kWindow) + kWindow);
  VmObject* object = vma.object;
  for (u64 at = from; at < to; at += hal::kPageSize) {
    if (at == page_address) continue;
    VmObject::Page* page = object->find_locked((vma.object_offset + (at - vma.start)) / hal::kPageSize);
    if (page == nullptr || page->shared != nullptr || hal::pt_query(m_page_table, at, nullptr, nullptr)) continue;
    if (!hal::pt_map(m_page_table, at, page->phys, vma.prot)) return;
  }
}

FaultKind AddressSpace::classify_fault(u64 address) {
  if (address >= hal::kUserTop) return FaultKind::Unmapped;
  SpinLockGuard guard(m_lock);
  Vma* vma = find_vma(address);
  if (vma == nullptr) return FaultKind::Unmapped;
  VmObject* object = vma->object;
  if (object->kind() == VmObject::Kind::File) {
    const u64 index = (vma->object_offset + (align_down(address, hal::kPageSize) - vma->start)) / hal::kPageSize;
    SpinLockGuard object_guard(object->lock());
    if (index >= align_up(object->size_locked(), hal::kPageSize) / hal::kPageSize) return FaultKind::BeyondFile;
  }
  return FaultKind::Forbidden;
}

Result<void> AddressSpace::check_mapped(u64 address, u64 length) {
  const u64 end = address + length;
  SpinLockGuard guard(m_lock);
  u64 covered = address;
  for (Vma* v = m_vmas.front(); v != nullptr && covered < end; v = m_vmas.next(v)) {
    if (v->end <= covered) continue;
    if (v->start > covered) break;
    covered = v->end;
  }
  if (covered < end) return Errno::kENOMEM;
  return {};
}

Result<void> AddressSpace::discard(u64 address, u64 length) {
  const u64 end = address + length;
  VERIFY(address % hal::kPageSize == 0 && end % hal::kPageSize == 0 && end >= address);
  SpinLockGuard guard(m_lock);
  u64 covered = address;
  bool hole = false;
  for (Vma* v = m_vmas.front(); v != nullptr; v = m_vmas.next(v)) {
    if (v->end <= address) continue;
    if (v->start >= end) break;
    if (v->start > covered) hole = true;
    covered = v->end;
    const u64 from = max(v->start, address);
    const u64 to = min(v->end, end);
    // Private anonymous pages go: the next touch faults in a zeroed page, as Linux's
    // zap_page_range leaves it. Shared pages belong to their object (other mappings and the
    // file see them) and are only unmapped here. A private copy of a file keeps its pages.
    const bool drop = (v->flags & (kMapShared | kMapFileCopy)) == 0;
    unmap_pages_locked(v, from, to, drop);
  }
  if (hole || covered < end) return Errno::kENOMEM;
  return {};
}

Result<FutexKey> AddressSpace::futex_key(u64 address, bool shared) {
  if ((address % sizeof(u32)) != 0) return Errno::kEINVAL;
  if (address >= hal::kUserTop) return Errno::kEFAULT;
  if (!shared) return FutexKey{reinterpret_cast<u64>(this), address, 1};
  SpinLockGuard guard(m_lock);
  Vma* vma = find_vma(address);
  if (vma == nullptr) return Errno::kEFAULT;
  if ((vma->flags & kMapShared) == 0) return FutexKey{reinterpret_cast<u64>(this), address, 2};
  // Keyed by the object, which every address space sharing it names alike; the mapping holds a
  // reference, so the object cannot go (and its address be reused) while this lock is held.
  return FutexKey{reinterpret_cast<u64>(vma->object), vma->object_offset + (address - vma->start), 3};
}

}  // namespace tandem
