// AddressSpace operations for the ELF loader and the memory system calls: placing mappings,
// changing protections and writing into a space from the kernel.
#include "core/kernel.h"
#include "core/mm/address_space.h"

namespace tandem {

Result<u64> AddressSpace::map_anywhere(u64 length, u32 prot, u32 flags, u64 lowest, u64 highest) {
  if (length == 0) return Errno::kEINVAL;
  length = align_up(length, hal::kPageSize);
  if (length == 0 || length > highest - lowest) return Errno::kENOMEM;
  Heap& heap = m_kernel.heap();
  VmObject* object = heap.make<VmObject>();
  Vma* vma = heap.make<Vma>();
  if (object == nullptr || vma == nullptr) {
    heap.destroy(object);
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
  Vma* position = nullptr;  // insert before this one
  for (Vma* v = m_vmas.front(); v != nullptr; v = m_vmas.next(v)) {
    consider(v->start);
    gap_start = max(gap_start, v->end);
  }
  consider(highest);
  if (!found) {
    heap.destroy(object);
    heap.destroy(vma);
    return Errno::kENOMEM;
  }
  object->size = length;
  vma->start = best;
  vma->end = best + length;
  vma->prot = prot;
  vma->flags = flags;
  vma->object = object;
  vma->object_offset = 0;
  position = m_vmas.front();
  while (position != nullptr && position->start < vma->start) position = m_vmas.next(position);
  if (position == nullptr) m_vmas.push_back(vma); else m_vmas.insert_before(position, vma);
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
  ++vma->object->refs;
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
  for (Vma* v = m_vmas.front(); v != nullptr && covered < end; v = m_vmas.next(v)) {
    if (v->end <= covered) continue;
    if (v->start > covered) break;
    covered = v->end;
  }
  if (covered < end) return Errno::kENOMEM;
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
    bool changed = false;
    for (u64 page = v->start; page < v->end; page += hal::kPageSize) {
      if (hal::pt_protect(m_page_table, page, prot)) changed = true;
    }
    // Other CPUs running this address space may hold the old permissions in their TLBs.
    if (changed) hal::tlb_shootdown(m_page_table, v->start, v->end - v->start);
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
    u64 phys = vma->object->find(index);
    if (phys == 0) {
      // Filled in like a first touch, but not mapped: the fault handler maps it with the
      // mapping's protection when the program touches it.
      phys = hal::phys_alloc_page();
      if (phys == 0) return Errno::kENOMEM;
      auto* record = m_kernel.heap().make<VmObject::Page>();
      if (record == nullptr) {
        hal::phys_free_page(phys);
        return Errno::kENOMEM;
      }
      fill_bytes(hal::phys_to_virt(phys), 0, hal::kPageSize);
      record->index = index;
      record->phys = phys;
      vma->object->pages.push_back(record);
    }
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
