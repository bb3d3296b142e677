// hal/real/src/memory.cpp: the physical page allocator, the kernel's page tables, and the
// per-address-space page tables of the HAL contract.
#include "arch.h"

extern "C" char __kernel_phys_start[], __kernel_phys_end[];
extern "C" char __text_start[], __text_end[], __rodata_start[], __rodata_end[];

namespace hal::real {

namespace {

// Page-table entry bits.
constexpr u64 kPtePresent = 1ull << 0;
constexpr u64 kPteWrite = 1ull << 1;
constexpr u64 kPteUser = 1ull << 2;
constexpr u64 kPteWriteThrough = 1ull << 3;
constexpr u64 kPteNoCache = 1ull << 4;
constexpr u64 kPteLarge = 1ull << 7;
constexpr u64 kPteGlobal = 1ull << 8;
// Bits 9-11 are ignored by the MMU in every entry, present or not. A user leaf always carries
// kSoftMapped, so a PROT_NONE page (not present to the MMU, but mapped for core/) is told apart
// from an empty entry; kSoftExec remembers an exec request on CPUs without NX.
constexpr u64 kSoftMapped = 1ull << 9;
constexpr u64 kSoftExec = 1ull << 10;
constexpr u64 kPteNx = 1ull << 63;
constexpr u64 kAddrMask = 0x000f'ffff'ffff'f000ull;

// ---------------------------------------------------------------------------------------------
// Physical pages: ranges of free RAM handed out by a bump cursor, plus a free list of returned
// pages linked through their first word. The bump cursor means boot touches no page it does not
// hand out (QEMU then never backs untouched guest memory with host memory).
// ---------------------------------------------------------------------------------------------
constexpr u32 kMaxRanges = 64;
MemRange g_ranges[kMaxRanges];
u32 g_range_count = 0;
u32 g_range_index = 0;
u64 g_cursor = 0;
u64 g_free_list = 0;
u64 g_total_pages = 0;   // every page of the free ranges, fixed at start-up
u64 g_pages_in_use = 0;  // guarded by g_phys_lock
SpinLock g_phys_lock;

u64 g_kernel_pml4 = 0;
SpinLock g_kernel_pt_lock;

void add_range(u64 base, u64 end) {
  if (base >= end) return;
  if (g_range_count == kMaxRanges) {
    klog("warning: more than %u free memory ranges; ignoring [%lx, %lx)", kMaxRanges, base, end);
    return;
  }
  // Insertion sort by base: the bump cursor then hands out low memory first, which the boot
  // path relies on while only the first GiB is mapped.
  u32 i = g_range_count++;
  while (i > 0 && g_ranges[i - 1].base > base) {
    g_ranges[i] = g_ranges[i - 1];
    --i;
  }
  g_ranges[i] = {base, end};
}

u64* table_entries(u64 phys) { return phys_ptr<u64>(phys); }

// Walks to the entry for `virt` at level 1 (4 KiB page) under `pml4`, allocating intermediate
// tables with `table_flags` when `create`. Returns nullptr when an entry is missing (or cannot be
// allocated).
u64* walk(u64 pml4, u64 virt, bool create, u64 table_flags) {
  u64 table = pml4;
  for (int level = 3; level >= 1; --level) {
    u64* entries = table_entries(table);
    u64& e = entries[(virt >> (12 + 9 * level)) & 511];
    if (!(e & kPtePresent)) {
      if (!create) return nullptr;
      u64 page = phys_alloc_zeroed();
      if (!page) return nullptr;
      e = page | table_flags;
    } else if (e & kPteLarge) {
      return nullptr;  // user space never has large pages; kernel callers do not ask for them
    }
    table = e & kAddrMask;
  }
  return &table_entries(table)[(virt >> 12) & 511];
}

u64 leaf_nx(bool exec) { return (!exec && g_features.nx) ? kPteNx : 0; }

void check_user_page(u64 virt, const char* what) {
  if (virt >= kUserTop || (virt & (kPageSize - 1))) {
    klog("%s: bad user address %lx", what, virt);
    panic("page table call with a non-user or unaligned address");
  }
}

void free_table(u64 phys, int level) {
  if (level > 1) {
    u64* entries = table_entries(phys);
    for (u32 i = 0; i < 512; ++i) {
      if (entries[i] & kPtePresent) free_table(entries[i] & kAddrMask, level - 1);
    }
  }
  phys_free_page(phys);
}

}  // namespace

void phys_init(const MemRange* ram, u32 ram_count, const MemRange* reserved, u32 reserved_count) {
  for (u32 i = 0; i < ram_count; ++i) {
    // Low memory (below 1 MiB) holds the BIOS data, the PVH start info and the AP trampoline.
    u64 base = (ram[i].base + kPageSize - 1) & ~(kPageSize - 1);
    u64 end = ram[i].end & ~(kPageSize - 1);
    if (base < 0x100000) base = 0x100000;
    add_range(base, end);
  }
  // Cut every reserved range (kernel image, initrd, ...) out of the free ranges.
  for (u32 r = 0; r < reserved_count; ++r) {
    u64 rb = reserved[r].base & ~(kPageSize - 1);
    u64 re = (reserved[r].end + kPageSize - 1) & ~(kPageSize - 1);
    for (u32 i = 0; i < g_range_count; ++i) {
      MemRange range = g_ranges[i];
      if (re <= range.base || rb >= range.end) continue;
      // Remove range i, then add back the parts outside [rb, re).
      for (u32 j = i; j + 1 < g_range_count; ++j) g_ranges[j] = g_ranges[j + 1];
      --g_range_count;
      // They overlap, so rb < range.end and re > range.base: each part is empty or valid, and
      // add_range ignores an empty one.
      add_range(range.base, rb);
      add_range(re, range.end);
      i = u32(-1);  // the array changed: start over (the ranges are few)
    }
  }
  g_range_index = 0;
  g_cursor = g_range_count ? g_ranges[0].base : 0;
  u64 total = 0;
  for (u32 i = 0; i < g_range_count; ++i) total += g_ranges[i].end - g_ranges[i].base;
  g_total_pages = total / kPageSize;
  klog("memory: %lu KiB free in %u ranges", total / 1024, g_range_count);
}

u64 phys_alloc_zeroed() {
  u64 page = phys_alloc_page();
  if (page) {
    u64* p = phys_ptr<u64>(page);
    for (u32 i = 0; i < 512; ++i) p[i] = 0;
  }
  return page;
}

void paging_init(u64 top_of_ram) {
  const u64 k1g = 1ull << 30, k2m = 1ull << 21;
  u64 pml4 = phys_alloc_zeroed();
  if (!pml4) panic("out of memory building the kernel page tables");
  u64* top = table_entries(pml4);

  // Direct map of [0, max(4 GiB, top of RAM)): the 3-4 GiB window holds the LAPIC, IOAPIC and
  // PCI MMIO on q35, so it is mapped uncached.
  u64 span = top_of_ram > 4 * k1g ? top_of_ram : 4 * k1g;
  span = (span + k1g - 1) & ~(k1g - 1);
  const u64 kernel_leaf = kPtePresent | kPteWrite | kPteGlobal | leaf_nx(false);
  for (u64 gib = 0; gib * k1g < span; ++gib) {
    u64 virt = kDirectMapBase + gib * k1g;
    u64& l4 = top[(virt >> 39) & 511];
    if (!l4) {
      u64 t = phys_alloc_zeroed();
      if (!t) panic("out of memory building the direct map");
      l4 = t | kPtePresent | kPteWrite;
    }
    u64* pdpt = table_entries(l4 & kAddrMask);
    u64 cache = (gib == 3) ? (kPteNoCache | kPteWriteThrough) : 0;
    if (g_features.pdpe1gb) {
      pdpt[(virt >> 30) & 511] = gib * k1g | kernel_leaf | kPteLarge | cache;
    } else {
      u64 pd = phys_alloc_zeroed();
      if (!pd) panic("out of memory building the direct map");
      u64* pde = table_entries(pd);
      for (u32 i = 0; i < 512; ++i) pde[i] = gib * k1g + i * k2m | kernel_leaf | kPteLarge | cache;
      pdpt[(virt >> 30) & 511] = pd | kPtePresent | kPteWrite;
    }
  }

  // The kernel image with 4 KiB pages: text read-only and executable, rodata read-only, the rest
  // writable and not executable, so a stray write into code faults at once.
  u64 image_start = u64(__kernel_phys_start);
  u64 image_end = (u64(__kernel_phys_end) + kPageSize - 1) & ~(kPageSize - 1);
  for (u64 phys = image_start; phys < image_end; phys += kPageSize) {
    u64 virt = kKernelBase + phys;
    u64* pte = walk(pml4, virt, true, kPtePresent | kPteWrite);
    if (!pte) panic("out of memory mapping the kernel image");
    u64 flags = kPtePresent | kPteGlobal;
    if (virt >= u64(__text_start) && virt < u64(__text_end)) {
      // Executable, read-only.
    } else if (virt >= u64(__rodata_start) && virt < u64(__rodata_end)) {
      flags |= leaf_nx(false);
    } else {
      flags |= kPteWrite | leaf_nx(false);
    }
    *pte = phys | flags;
  }

  // The kernel stack region: its PML4 entry must exist before the first pt_create, because the
  // kernel half of every address space is a copy of these top-level entries.
  u64 stacks = phys_alloc_zeroed();
  if (!stacks) panic("out of memory for the stack region");
  top[(kStackRegionBase >> 39) & 511] = stacks | kPtePresent | kPteWrite;

  g_kernel_pml4 = pml4;
  write_cr3(pml4);
}

u64 kernel_pml4_phys() { return g_kernel_pml4; }

bool kernel_map_page(u64 virt, u64 phys, bool writable) {
  IrqFlags flags = g_kernel_pt_lock.lock();
  u64* pte = walk(g_kernel_pml4, virt, true, kPtePresent | kPteWrite);
  if (pte) *pte = phys | kPtePresent | kPteGlobal | (writable ? kPteWrite : 0) | leaf_nx(false);
  g_kernel_pt_lock.unlock(flags);
  return pte != nullptr;
}

bool kernel_map_mmio_page(u64 virt, u64 phys) {
  IrqFlags flags = g_kernel_pt_lock.lock();
  u64* pte = walk(g_kernel_pml4, virt, true, kPtePresent | kPteWrite);
  // PCD and PWT: uncached (PAT entry 3), as device registers must be.
  if (pte) *pte = phys | kPtePresent | kPteGlobal | kPteWrite | kPteNoCache | kPteWriteThrough | leaf_nx(false);
  g_kernel_pt_lock.unlock(flags);
  return pte != nullptr;
}

bool kernel_address_mapped(u64 virt) {
  u64 table = read_cr3() & kAddrMask;
  for (int level = 3; level >= 0; --level) {
    u64 e = table_entries(table)[(virt >> (12 + 9 * level)) & 511];
    if (!(e & kPtePresent)) return false;
    if (level == 0 || (e & kPteLarge)) return true;
    table = e & kAddrMask;
  }
  return false;
}

}  // namespace hal::real

namespace hal {

using namespace hal::real;

u64 phys_alloc_page() {
  IrqFlags flags = g_phys_lock.lock();
  u64 page = 0;
  if (g_free_list) {
    page = g_free_list;
    g_free_list = *phys_ptr<u64>(page);
  } else {
    while (g_range_index < g_range_count) {
      if (g_cursor < g_ranges[g_range_index].end) {
        page = g_cursor;
        g_cursor += kPageSize;
        break;
      }
      if (++g_range_index < g_range_count) g_cursor = g_ranges[g_range_index].base;
    }
  }
  if (page != 0) ++g_pages_in_use;
  g_phys_lock.unlock(flags);
  return page;
}

PhysStats phys_stats() {
  IrqFlags flags = g_phys_lock.lock();
  const PhysStats stats{g_total_pages, g_total_pages - g_pages_in_use};
  g_phys_lock.unlock(flags);
  return stats;
}

void phys_free_page(u64 phys) {
  if (!phys || (phys & (kPageSize - 1))) {
    klog("phys_free_page(%lx)", phys);
    panic("freeing a bad physical page address");
  }
  IrqFlags flags = g_phys_lock.lock();
  *phys_ptr<u64>(phys) = g_free_list;
  g_free_list = phys;
  --g_pages_in_use;
  g_phys_lock.unlock(flags);
}

void* phys_to_virt(u64 phys) { return phys_ptr<void>(phys); }

PageTable* pt_create() {
  u64 pml4 = phys_alloc_zeroed();
  if (!pml4) return nullptr;
  u64* dst = table_entries(pml4);
  const u64* src = table_entries(g_kernel_pml4);
  for (u32 i = 256; i < 512; ++i) dst[i] = src[i];
  return reinterpret_cast<PageTable*>(dst);
}

void pt_destroy(PageTable* table) {
  u64 pml4 = virt_to_phys_direct(table);
  if (pml4 == (read_cr3() & kAddrMask)) panic("pt_destroy of the active page table");
  u64* entries = table_entries(pml4);
  for (u32 i = 0; i < 256; ++i) {
    if (entries[i] & kPtePresent) free_table(entries[i] & kAddrMask, 3);
  }
  phys_free_page(pml4);
}

static u64 user_leaf(u64 phys, u32 flags) {
  u64 e = phys | kSoftMapped | ((flags & kPageExec) ? kSoftExec : 0);
  if (flags & (kPageRead | kPageWrite | kPageExec)) {
    e |= kPtePresent | kPteUser | leaf_nx(flags & kPageExec);
    if (flags & kPageWrite) e |= kPteWrite;
  }
  return e;
}

bool pt_map(PageTable* table, u64 virt, u64 phys, u32 flags) {
  check_user_page(virt, "pt_map");
  if (phys & ~kAddrMask) panic("pt_map: unaligned physical address");
  u64* pte = walk(virt_to_phys_direct(table), virt, true, kPtePresent | kPteWrite | kPteUser);
  if (!pte) return false;
  *pte = user_leaf(phys, flags);
  return true;
}

u64 pt_unmap(PageTable* table, u64 virt) {
  check_user_page(virt, "pt_unmap");
  u64* pte = walk(virt_to_phys_direct(table), virt, false, 0);
  if (!pte || !(*pte & kSoftMapped)) return 0;
  u64 phys = *pte & kAddrMask;
  *pte = 0;
  return phys;
}

bool pt_protect(PageTable* table, u64 virt, u32 flags) {
  check_user_page(virt, "pt_protect");
  u64* pte = walk(virt_to_phys_direct(table), virt, false, 0);
  if (!pte || !(*pte & kSoftMapped)) return false;
  *pte = user_leaf(*pte & kAddrMask, flags);
  return true;
}

bool pt_query(PageTable* table, u64 virt, u64* phys, u32* flags) {
  if (virt >= kUserTop) return false;
  u64* pte = walk(virt_to_phys_direct(table), virt & ~(kPageSize - 1), false, 0);
  if (!pte || !(*pte & kSoftMapped)) return false;
  u64 e = *pte;
  u32 f = 0;
  if (e & kPtePresent) {
    f |= kPageRead;
    if (e & kPteWrite) f |= kPageWrite;
    if (e & kSoftExec) f |= kPageExec;
  }
  if (phys) *phys = e & kAddrMask;
  if (flags) *flags = f;
  return true;
}

void pt_activate(PageTable* table) {
  u64 pml4 = table ? virt_to_phys_direct(table) : g_kernel_pml4;
  // Shootdowns target the CPUs whose active table matches (tlb.cpp): record it first.
  note_active_table(table ? pml4 : 0);
  if ((read_cr3() & kAddrMask) != pml4) write_cr3(pml4);
}

void tlb_flush_local(u64 virt, u64 length) {
  u64 start = virt & ~(kPageSize - 1);
  u64 end = virt + length;
  if (end < virt || length > 64 * kPageSize) {
    // Reloading CR3 drops every non-global entry, i.e. all of user space.
    write_cr3(read_cr3());
    return;
  }
  for (u64 p = start; p < end; p += kPageSize) asm volatile("invlpg (%0)" ::"r"(p) : "memory");
}

}  // namespace hal
