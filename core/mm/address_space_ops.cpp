// AddressSpace operations for the ELF loader and the memory system calls: placing mappings,
// changing protections and writing into a space from the kernel.
#include "core/kernel.h"
#include "core/mm/address_space.h"

namespace tandem {

Result<u64> AddressSpace::map_anywhere(u64 length, u32 prot, u32 flags, u64 lowest, u64 highest,
                                       VmObject* given, u64 offset) {
  if (length == 0 || offset % hal::kPageSize != 0) return Errno::kEINVAL;
  length = align_up(length, hal::kPageSize);
  if (length == 0 || length > highest - lowest) return Errno::kENOMEM;
  Heap& heap = m_kernel.heap();
  // The caller's object, or a new anonymous one (freed again on failure).
  VmObject* object = given != nullptr ? given : VmObject::create(heap, VmObject::Kind::Anonymous, length);
  Vma* vma = heap.make<Vma>();
  auto drop_object = [&] {
    if (given == nullptr && object != nullptr) object->release();
  };
  if (object == nullptr || vma == nullptr) {
    drop_object();
    heap.destroy(vma);
    return Errno::kENOMEM;
  }
  SpinLockGuard guard(m_lock);
  // Top-down: the highest gap below `highest` that fits.
  u64 best = 0;
  bool found = false;
  u64 gap_start = lowest;
  auto consider = [&](u64 gap_end) {
    gap_end = min(gap_end, highest);
    if (gap_end > gap_start && gap_end - gap_start >= length) {
      best = gap_end - length;
      found = true;
    }
  };
  for (Vma* v = m_vmas.front(); v != nullptr; v = m_vmas.next(v)) {
    consider(v->start);
    gap_start = max(gap_start, v->end);
  }
  consider(highest);
  if (!found) {
    guard.unlock();
    drop_object();
    heap.destroy(vma);
    return Errno::kENOMEM;
  }
  vma->start = best;
  vma->end = best + length;
  vma->prot = prot;
  vma->flags = flags;
  vma->object = object;
  vma->object_offset = offset;
  if (writable_shared(*vma) && !object->begin_writable_map()) {
    // The file is sealed against writes: only a read-only view, which stays one.
    if (prot & hal::kPageWrite) {
      guard.unlock();
      drop_object();
      heap.destroy(vma);
      return Errno::kEPERM;
    }
    vma->flags |= kMapNoWrite;
  }
  insert_locked(vma);
  return best;
}

Result<void> AddressSpace::split_locked(Vma* vma, u64 at) {
  VERIFY(at > vma->start && at < vma->end && at % hal::kPageSize == 0);
  Vma* tail = m_kernel.heap().make<Vma>();
  if (tail == nullptr) return Errno::kENOMEM;
  tail->start = at;
  tail->end = vma->end;
  tail->prot = vma->prot;
  tail->flags = vma->flags;
  tail->object = vma->object;
  tail->object_offset = vma->object_offset + (at - vma->start);
  vma->object->retain();
  if (writable_shared(*tail)) vma->object->note_writable_map(true);
  vma->end = at;
  Vma* following = m_vmas.next(vma);
  if (following == nullptr) m_vmas.push_back(tail); else m_vmas.insert_before(following, tail);
  return {};
}

Result<void> AddressSpace::protect(u64 address, u64 length, u32 prot) {
  if (address % hal::kPageSize != 0) return Errno::kEINVAL;
  if (length == 0) return {};
  const u64 end = align_up(address + length, hal::kPageSize);
  if (end <= address || end > hal::kUserTop) return Errno::kENOMEM;
  SpinLockGuard guard(m_lock);
  // Decode: the whole range must be mapped, without holes.
  u64 covered = address;
  bool write_forbidden = false;
  for (Vma* v = m_vmas.front(); v != nullptr && covered < end; v = m_vmas.next(v)) {
    if (v->end <= covered) continue;
    if (v->start > covered) break;
    covered = v->end;
    if (v->flags & kMapNoWrite) write_forbidden = true;
  }
  if (covered < end) return Errno::kENOMEM;
  if (write_forbidden && (prot & hal::kPageWrite)) return Errno::kEACCES;
  // Invoke: split at the edges, then change every mapping inside.
  for (Vma* v = m_vmas.front(); v != nullptr; v = m_vmas.next(v)) {
    if (v->end <= address) continue;
    if (v->start >= end) break;
    if (v->start < address) {
      TRY(split_locked(v, address));
      continue;  // the next iteration visits the tail
    }
    if (v->end > end) TRY(split_locked(v, end));
    v->prot = prot;
    // Only pages that were faulted in can be mapped, and each is in the object: visit those,
    // not every page of a large, mostly empty reservation (beam.smp changes the protection of
    // such ranges hundreds of times while it starts, and each walk held the lock).
    bool lost = false;  // some mapped page lost an access it had
    {
      VmObject* object = v->object;
      const u64 first = v->object_offset / hal::kPageSize;
      const u64 last = first + (v->end - v->start) / hal::kPageSize;
      SpinLockGuard object_guard(object->lock());
      object->for_each_in_range_locked(first, last, [&](VmObject::Page* page) {
        const u64 at = v->start + page->index * hal::kPageSize - v->object_offset;
        // A page shared copy-on-write stays read-only until its write fault copies it.
        const u32 now = page->shared != nullptr ? (prot & ~static_cast<u32>(hal::kPageWrite)) : prot;
        u32 old_flags = 0;
        if (hal::pt_query(m_page_table, at, nullptr, &old_flags) && (old_flags & ~now) != 0) lost = true;
        (void)hal::pt_protect(m_page_table, at, now);
      });
    }
    // Other CPUs running this address space may hold the old permissions in their TLBs. Only a
    // lost access needs them dropped now: an entry that grants less than the page table makes
    // the CPU fault, and the fault path flushes that CPU's entry and retries. beam.smp's
    // allocators commit reserved memory (PROT_NONE to read-write) all the time, and each
    // shootdown waits until every CPU running the process has answered its IPI.
    if (lost) hal::tlb_shootdown(m_page_table, v->start, v->end - v->start);
  }
  return {};
}

u32 AddressSpace::protection_at(u64 address) {
  SpinLockGuard guard(m_lock);
  Vma* vma = find_vma(address);
  return vma == nullptr ? 0 : vma->prot;
}

Result<void> AddressSpace::write(u64 address, const void* source, usize length) {
  const u8* bytes = static_cast<const u8*>(source);
  SpinLockGuard guard(m_lock);
  while (length > 0) {
    Vma* vma = find_vma(address);
    if (vma == nullptr) return Errno::kEFAULT;
    const u64 page_address = align_down(address, hal::kPageSize);
    const u64 index = (vma->object_offset + (page_address - vma->start)) / hal::kPageSize;
    // Filled in like a first touch, but not mapped: the fault handler maps it with the
    // mapping's protection when the program touches it.
    VmObject* object = vma->object;
    SpinLockGuard object_guard(object->lock());
    VmObject::Page* page = object->get_or_make_locked(index);
    if (page == nullptr) return Errno::kENOMEM;
    // A page still shared copy-on-write with another process gets its own frame first, and
    // this space's read-only translation of the shared frame goes.
    if (page->shared != nullptr) {
      if (!object->break_cow_locked(page)) return Errno::kENOMEM;
      if (hal::pt_unmap(m_page_table, page_address) != 0) hal::tlb_shootdown(m_page_table, page_address, hal::kPageSize);
    }
    const u64 phys = page->phys;
    const u64 in_page = address - page_address;
    const usize chunk = min<u64>(length, hal::kPageSize - in_page);
    copy_bytes(static_cast<u8*>(hal::phys_to_virt(phys)) + in_page, bytes, chunk);
    bytes += chunk;
    address += chunk;
    length -= chunk;
  }
  return {};
}

}  // namespace tandem
