// hal/real/src/tlb.cpp: TLB shootdowns (hal::tlb_shootdown).
//
// One shootdown is in flight at a time: the initiator takes g_busy, publishes the request, marks
// each CPU that has the page table loaded (PerCpu::active_pml4), sends those CPUs the shootdown
// IPI and spins until every one has flushed and acknowledged. Callers may hold kernel spinlocks
// with interrupts disabled, and so may the CPUs they wait for: a CPU spinning on a lock the
// initiator holds cannot take the IPI. That would deadlock, so every spin loop (hal::cpu_relax,
// which core's lock loops call, the HAL's own locks, and the wait for g_busy here) answers a
// pending request itself through tlb_service().
//
// Why skipping a CPU whose active_pml4 differs is safe: the initiator changed the page table
// before it reads active_pml4 (with a full fence between). A CPU that loads the table afterwards
// stores active_pml4 with a full fence before it writes CR3, and a CR3 write drops every
// non-global entry, so its page walks see the new entries. A CPU that switched away has no
// entries of the table left for the same reason. Without PCID, no CPU keeps entries of a table
// it has not loaded.
#include "arch.h"
#include "hal_real.h"

namespace hal::real {

namespace {

constexpr u64 kAddrMask = 0x000f'ffff'ffff'f000ull;

volatile u32 g_busy = 0;         // an initiator owns the request
volatile u32 g_in_flight = 0;    // a request is published: spin loops look at their flag
volatile u32 g_acks_missing = 0;  // marked CPUs that have not flushed yet
volatile u64 g_pml4 = 0;         // the request: page table (physical), range
volatile u64 g_virt = 0;
volatile u64 g_length = 0;
// Statistics, written by the initiator that owns g_busy.
u64 g_requests = 0, g_ipis = 0, g_wait_ns = 0, g_longest_wait_ns = 0;

}  // namespace

void tlb_service() {
  if (!__atomic_load_n(&g_in_flight, __ATOMIC_ACQUIRE)) return;
  PerCpu* cpu = this_cpu();
  // Taken with one exchange: a spin loop may call this with interrupts enabled (a page fault
  // waiting for the address space lock), and the shootdown IPI may then run it again inside
  // it. Testing the flag and clearing it later acknowledged the request twice, the count of
  // missing acknowledgements wrapped, and the initiator waited for ever holding its lock.
  if (!__atomic_exchange_n(&cpu->tlb_pending, 0u, __ATOMIC_ACQ_REL)) return;
  // A CPU that has switched to another table since it was marked has nothing to flush (the
  // CR3 write did it); flushing anyway would be harmless too.
  if ((read_cr3() & kAddrMask) == g_pml4) tlb_flush_local(g_virt, g_length);
  __atomic_sub_fetch(&g_acks_missing, 1u, __ATOMIC_ACQ_REL);
}

void note_active_table(u64 pml4) {
  // A full barrier (xchg): the store is visible before this CPU's next page walk, which the
  // CR3 write that follows starts afresh.
  __atomic_exchange_n(&this_cpu()->active_pml4, pml4, __ATOMIC_SEQ_CST);
}

}  // namespace hal::real

namespace hal {

using namespace hal::real;

void tlb_shootdown(PageTable* table, u64 virt, u64 length) {
  if (table == nullptr || length == 0) return;
  const u64 pml4 = virt_to_phys_direct(table);
  IrqFlags flags = irq_save();
  if ((read_cr3() & kAddrMask) == pml4) tlb_flush_local(virt, length);
  if (g_cpu_count > 1) {
    const u32 me = cpu_id();
    while (__atomic_exchange_n(&g_busy, 1u, __ATOMIC_ACQUIRE)) {
      while (__atomic_load_n(&g_busy, __ATOMIC_RELAXED)) spin_hook();
    }
    g_pml4 = pml4;
    g_virt = virt;
    g_length = length;
    // The caller's page-table changes happen before the reads of active_pml4 below.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    u64 targets = 0;
    u32 count = 0;
    for (u32 i = 0; i < g_cpu_count; ++i) {
      if (i == me || !g_cpus[i].online) continue;
      if (__atomic_load_n(&g_cpus[i].active_pml4, __ATOMIC_SEQ_CST) != pml4) continue;
      targets |= 1ull << i;
      ++count;
    }
    if (count != 0) {
      __atomic_store_n(&g_acks_missing, count, __ATOMIC_RELAXED);
      for (u32 i = 0; i < g_cpu_count; ++i) {
        if (targets & (1ull << i)) __atomic_store_n(&g_cpus[i].tlb_pending, 1u, __ATOMIC_RELAXED);
      }
      __atomic_store_n(&g_in_flight, 1u, __ATOMIC_RELEASE);
      const u64 asked_at = monotonic_ns();
      for (u32 i = 0; i < g_cpu_count; ++i) {
        if (targets & (1ull << i)) send_ipi(i, Ipi::TlbShootdown);
      }
      // This CPU is never a target of its own request, so only the watchdog matters here: a
      // target that never answers is a CPU stuck with interrupts off, which it reports.
      while (__atomic_load_n(&g_acks_missing, __ATOMIC_ACQUIRE) != 0) spin_hook();
      __atomic_store_n(&g_in_flight, 0u, __ATOMIC_RELEASE);
      const u64 waited = monotonic_ns() - asked_at;
      ++g_requests;
      g_ipis += count;
      g_wait_ns += waited;
      if (waited > g_longest_wait_ns) g_longest_wait_ns = waited;
    }
    __atomic_store_n(&g_busy, 0u, __ATOMIC_RELEASE);
  }
  irq_restore(flags);
}

ShootdownStats tlb_shootdown_stats() {
  // Read without g_busy: a report, not an invariant.
  return ShootdownStats{g_requests, g_ipis, g_wait_ns, g_longest_wait_ns};
}

}  // namespace hal
