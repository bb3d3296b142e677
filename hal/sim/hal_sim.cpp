// hal/sim: the HAL contract implemented on the simulated machine of sim/cpus.
#include <hal.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hal/sim/sim_hal.h"
#include "hal/sim/user.h"
#include "sim/cpus/machine.h"
#include "sim/cpus/pci_bus.h"

namespace hal {

// A kernel context: its own fiber, or the CPU's boot fiber it adopted.
struct Context {
  sim::Fiber own;
  sim::Fiber* fiber = nullptr;
  size_t live_index = 0;
  std::string name;
};

// The software MMU: each address space maps virtual page numbers to entries (physical address
// and permissions) in an open-addressing hash table. A simulated program touches tens of pages,
// and a schedule creates and destroys address spaces by the thousand, so one small array beats
// a four-level radix tree of 4 KiB tables. Keys are never removed: an unmapped page keeps its
// slot with a zero entry.
struct PageTable;
void pt_destroy_now(PageTable* table);

struct PageTable {
  static constexpr uint64_t kPresent = 1ull << 63;
  struct Slot {
    uint64_t key;    // virtual page number + 1; 0 marks an empty slot
    uint64_t entry;  // kPresent | physical address | permission bits, or 0
  };
  std::vector<Slot> slots = std::vector<Slot>(32);
  size_t used = 0;
  size_t mapped = 0;
};

}  // namespace hal

namespace sim {

namespace {

// Each simulated CPU has a TLB: translations it has used stay cached until the kernel flushes
// them (tlb_flush_local, tlb_shootdown, switching address spaces), exactly as on x86. A cached
// translation that outlives its page-table entry is harmless until the page behind it is freed;
// an access through it after that is the bug a missing shootdown causes, and fails the run.
struct TlbEntry {
  const hal::PageTable* table = nullptr;  // null: empty
  uint64_t vpn = 0;
  uint64_t entry = 0;       // the page-table entry as it was cached
  uint32_t generation = 0;  // of the physical page, when cached
};
struct Tlb {
  static constexpr size_t kEntries = 64;  // direct-mapped by virtual page number
  TlbEntry entries[kEntries];
};

struct SimHal {
  std::vector<hal::Context*> live;       // contexts created during the current run
  std::vector<hal::PageTable*> tables;   // page tables created during the current run
  std::vector<Tlb> tlbs;                 // one per CPU
  uint32_t msi_next = 0;                 // MSI irqs handed out during the current run
  uint64_t shootdowns = 0;               // tlb_shootdown calls during the current run
  std::string console_input;             // typed by console_input(), not yet read by the kernel
};
thread_local SimHal t_hal;

Machine& machine() {
  Machine* m = Machine::current();
  if (m == nullptr) {
    std::fprintf(stderr, "sim: a HAL call outside a simulation run\n");
    std::abort();
  }
  return *m;
}

void cleanup(void*) {
  for (hal::Context* c : t_hal.live) {
    if (c->fiber == &c->own) machine().stacks().give(c->own.stack);
    delete c;
  }
  t_hal.live.clear();
  // A run that failed may leave address spaces behind.
  for (hal::PageTable* table : t_hal.tables) hal::pt_destroy_now(table);
  t_hal.tables.clear();
}

uint64_t* leaf(hal::PageTable* table, uint64_t virt, bool create) {
  const uint64_t key = (virt >> 12) + 1;
  for (;;) {
    const size_t mask = table->slots.size() - 1;
    for (size_t i = (key * 0x9e3779b97f4a7c15ull) >> 40 & mask;; i = (i + 1) & mask) {
      hal::PageTable::Slot& slot = table->slots[i];
      if (slot.key == key) return &slot.entry;
      if (slot.key != 0) continue;
      if (!create) return nullptr;
      if ((table->used + 1) * 4 <= table->slots.size() * 3) {
        slot.key = key;
        slot.entry = 0;
        ++table->used;
        return &slot.entry;
      }
      break;  // too full: grow, then probe again
    }
    std::vector<hal::PageTable::Slot> old(table->slots.size() * 2);
    old.swap(table->slots);
    const size_t grown_mask = table->slots.size() - 1;
    for (const hal::PageTable::Slot& slot : old) {
      if (slot.key == 0) continue;
      size_t i = (slot.key * 0x9e3779b97f4a7c15ull) >> 40 & grown_mask;
      while (table->slots[i].key != 0) i = (i + 1) & grown_mask;
      table->slots[i] = slot;
    }
  }
}

constexpr uint64_t kPhysMask = 0x000f'ffff'ffff'f000ull;

void tlb_invalidate(uint32_t cpu, const hal::PageTable* table, uint64_t virt, uint64_t length) {
  if (cpu >= t_hal.tlbs.size()) return;
  const uint64_t first = virt >> 12;
  const uint64_t last = length == 0 ? first : (virt + length - 1) >> 12;
  for (TlbEntry& e : t_hal.tlbs[cpu].entries) {
    if (e.table == table && e.vpn >= first && e.vpn <= last) e.table = nullptr;
  }
}

// Translates a user address for an access, through this CPU's TLB; null when it is not mapped
// with that permission (a page fault on hardware).
void* translate(uint64_t virt, uint32_t need) {
  Machine& m = machine();
  auto* table = static_cast<hal::PageTable*>(m.cpu().page_table);
  if (table == nullptr || virt >= hal::kUserTop) return nullptr;
  const uint64_t vpn = virt >> 12;
  TlbEntry* cached = nullptr;
  if (m.cpu_id() < t_hal.tlbs.size()) {
    cached = &t_hal.tlbs[m.cpu_id()].entries[vpn % Tlb::kEntries];
    if (cached->table == table && cached->vpn == vpn && (cached->entry & need) == need) {
      const uint64_t phys = cached->entry & kPhysMask;
      if (m.page_generation(phys) != cached->generation) {
        char message[200];
        std::snprintf(message, sizeof(message),
                      "stale TLB: CPU %u accessed 0x%llx through a translation to a physical page that has "
                      "been freed since (a missing TLB flush or shootdown)",
                      m.cpu_id(), static_cast<unsigned long long>(virt));
        m.fail(Outcome::Failed, message);
      }
      return static_cast<uint8_t*>(m.phys_to_virt(phys)) + (virt & 0xfff);
    }
  }
  uint64_t* entry = leaf(table, virt, false);
  if (entry == nullptr || (*entry & hal::PageTable::kPresent) == 0) return nullptr;
  const uint32_t flags = static_cast<uint32_t>(*entry & 7);
  if ((flags & need) != need) return nullptr;
  const uint64_t phys = *entry & kPhysMask;
  if (cached != nullptr) *cached = TlbEntry{table, vpn, *entry, m.page_generation(phys)};
  return static_cast<uint8_t*>(m.phys_to_virt(phys)) + (virt & 0xfff);
}

// Translates, offering a miss to the kernel's page-fault handler once.
void* translate_or_fault(uint64_t virt, uint32_t need) {
  void* p = translate(virt, need);
  if (p != nullptr) return p;
  const uint32_t access = (need & hal::kPageWrite) ? kentry::kFaultWrite : kentry::kFaultRead;
  if (!kentry::page_fault(virt, access)) return nullptr;
  return translate(virt, need);
}

bool copy_user(uint64_t user, void* kernel, size_t length, bool to_user) {
  if (user + length < user || user + length > hal::kUserTop) return false;
  auto* bytes = static_cast<uint8_t*>(kernel);
  while (length > 0) {
    const size_t chunk = std::min<size_t>(length, hal::kPageSize - (user & 0xfff));
    void* p = translate_or_fault(user, to_user ? hal::kPageWrite : hal::kPageRead);
    if (p == nullptr) return false;
    if (to_user) std::memcpy(p, bytes, chunk); else std::memcpy(bytes, p, chunk);
    user += chunk;
    bytes += chunk;
    length -= chunk;
  }
  return true;
}

kentry::Vector vector_of(uint32_t bit) {
  switch (bit) {
    case kIrqTimer: return kentry::Vector::Timer;
    case kIrqReschedule: return kentry::Vector::IpiReschedule;
    case kIrqTlb: return kentry::Vector::IpiTlbShootdown;
    case kIrqDevice: return kentry::Vector::Device;
    default: return kentry::Vector::IpiBacktrace;
  }
}

}  // namespace

// Outside a run (a kernel destroyed after its machine stopped) nothing is scheduled: no point.
void point(hal::Point kind) {
  if (Machine* m = Machine::current()) m->point(kind);
}

void* user_translate(uint64_t virt, uint32_t need) { return translate(virt, need); }

void install_hal(Machine& m) {
  t_hal.live.clear();
  t_hal.tlbs.assign(m.config().cpus, Tlb{});
  t_hal.msi_next = 0;
  t_hal.shootdowns = 0;
  t_hal.console_input.clear();
  m.set_cleanup(&cleanup, nullptr);
}

void console_input(const char* bytes, size_t length) {
  Machine& m = machine();
  t_hal.console_input.append(bytes, length);
  // As on hardware: the UART's interrupt goes to CPU 0, and the kernel hears of the input when
  // CPU 0 takes it (deliver_interrupt), at a scheduling point like any other interrupt.
  m.cpu(0).device_irqs |= 1ull << kConsoleIrq;
  m.raise(0, kIrqDevice);
}

void deliver_interrupt(uint32_t bit) {
  uint32_t irq = 0;
  if (bit == kIrqDevice) {
    // One device irq per delivery, lowest first; the rest stay pending behind kIrqDevice.
    SimCpu& c = machine().cpu();
    if (c.device_irqs == 0) return;
    irq = static_cast<uint32_t>(__builtin_ctzll(c.device_irqs));
    c.device_irqs &= c.device_irqs - 1;
    if (c.device_irqs != 0) machine().raise(c.id, kIrqDevice);
  }
  Fiber* fiber = machine().running_fiber();
  hal::UserFrame* user = nullptr;
  const bool was_user = fiber->in_user;
  if (was_user) {
    user = &static_cast<User*>(fiber->user)->frame();
    fiber->in_user = false;
  }
  if (bit == kIrqDevice && irq == kConsoleIrq) {
    // The console's interrupt is the HAL's own, as hal/real's UART interrupt is: the bytes are
    // already in t_hal.console_input, and core only hears that they arrived.
    kentry::console_input();
  } else {
    kentry::interrupt(vector_of(bit), irq, user);
  }
  fiber->in_user = was_user;
}

}  // namespace sim

// -------------------------------------------------------------------------------------------------
// The contract
// -------------------------------------------------------------------------------------------------

namespace hal {

using sim::machine;

u32 cpu_id() { return machine().cpu_id(); }
u32 cpu_count() { return machine().config().cpus; }

IrqFlags irq_save() {
  sim::SimCpu& c = machine().cpu();
  const IrqFlags previous = c.irq_enabled ? 1 : 0;
  c.irq_enabled = false;
  return previous;
}
void irq_restore(IrqFlags flags) {
  if (flags != 0) irq_enable(); else machine().cpu().irq_enabled = false;
}
void irq_enable() {
  machine().point(Point::Hal);
  machine().irq_enable();
}
void irq_disable() { machine().cpu().irq_enabled = false; }
bool irq_enabled() { return machine().cpu().irq_enabled; }

void cpu_idle_wait() {
  if (machine().cpu().irq_enabled) panic("cpu_idle_wait with interrupts enabled");
  machine().idle_wait();
}
void cpu_relax() { machine().point(Point::Relax); }

void cpu_local_set(void* p) { machine().cpu().local = p; }
void* cpu_local() {
  sim::Machine* m = sim::Machine::current();
  return m != nullptr ? m->cpu().local : nullptr;
}

void send_ipi(u32 cpu, Ipi kind) {
  sim::Machine& m = machine();
  m.point(Point::Hal);
  if (cpu >= m.config().cpus) panic("IPI to a CPU that does not exist");
  const uint32_t bit = kind == Ipi::Reschedule ? sim::kIrqReschedule
                       : kind == Ipi::TlbShootdown ? sim::kIrqTlb
                                                   : sim::kIrqBacktrace;
  m.raise(cpu, bit);
}

[[noreturn]] void panic(const char* message) {
  sim::Machine* m = sim::Machine::current();
  if (m == nullptr) {
    std::fprintf(stderr, "kernel panic outside a simulation: %s\n", message);
    std::abort();
  }
  char text[512];
  std::snprintf(text, sizeof(text), "kernel panic: %s", message);
  m->fail(sim::Outcome::Panic, text);
}

void shutdown(int wait_status) { machine().shutdown(wait_status); }
void start_secondary_cpus(void*) {}

void console_write(const char* bytes, size_t length) { machine().console(bytes, length); }
size_t console_read(char* bytes, size_t capacity) {
  // Input exists only when a test typed some (sim::console_input); otherwise there is none.
  std::string& input = sim::t_hal.console_input;
  const size_t n = std::min(capacity, input.size());
  std::memcpy(bytes, input.data(), n);
  input.erase(0, n);
  return n;
}

void random_bytes(void* out, size_t length) {
  auto* bytes = static_cast<uint8_t*>(out);
  for (size_t i = 0; i < length; ++i) bytes[i] = static_cast<uint8_t>(machine().rng().next());
}

u64 monotonic_ns() {
  machine().point(Point::Hal);
  return machine().now();
}
u64 realtime_ns() {
  // Virtual wall clock: 2026-01-01T00:00:00Z at boot.
  constexpr u64 kEpoch = 1767225600ull * 1'000'000'000ull;
  return kEpoch + monotonic_ns();
}
void timer_set_deadline(u64 deadline_ns) {
  machine().point(Point::Hal);
  machine().set_timer(deadline_ns);
}

Context* context_create(void (*entry)(void* arg), void* arg) {
  sim::Machine& m = machine();
  auto* c = new Context();
  c->own.stack = m.stacks().take();
  if (c->own.stack == nullptr) {
    delete c;
    return nullptr;
  }
  c->own.stack_size = m.stacks().stack_size();
  c->own.body = entry;
  c->own.arg = arg;
  sim::fiber_prepare(c->own);
  c->fiber = &c->own;
  c->live_index = sim::t_hal.live.size();
  sim::t_hal.live.push_back(c);
  m.register_fiber(c->own, nullptr);
  return c;
}

Context* context_adopt_current() {
  auto* c = new Context();
  c->fiber = machine().running_fiber();
  c->live_index = sim::t_hal.live.size();
  sim::t_hal.live.push_back(c);
  return c;
}

void context_set_name(Context* context, const char* name) {
  if (context != nullptr) machine().name_fiber(*context->fiber, name);
}

void context_destroy(Context* context) {
  if (context == nullptr) return;
  if (context->fiber == machine().running_fiber()) panic("destroying the running context");
  auto& live = sim::t_hal.live;
  live[context->live_index] = live.back();
  live[context->live_index]->live_index = context->live_index;
  live.pop_back();
  if (context->fiber == &context->own) machine().stacks().give(context->own.stack);
  delete context;
}

void context_switch(Context* from, Context* to) {
  sim::Machine& m = machine();
  if (from->fiber != m.running_fiber()) panic("context_switch from a context that is not running");
  m.switch_context(*from->fiber, *to->fiber);
}

void set_fs_base(u64 value) { machine().cpu().fs_base = value; }
u64 get_fs_base() { return machine().cpu().fs_base; }

[[noreturn]] void enter_user(const UserFrame& frame) { sim::run_user_entry(frame); }

u64 phys_alloc_page() { return machine().alloc_page(); }
void phys_free_page(u64 phys) { machine().free_page(phys); }
PhysStats phys_stats() {
  const u64 total = machine().config().ram_bytes / kPageSize;
  return PhysStats{total, total - machine().pages_in_use()};
}
void* phys_to_virt(u64 phys) {
  if (!machine().is_ram(phys)) panic("phys_to_virt of an address that is not RAM");
  return machine().phys_to_virt(phys);
}

PageTable* pt_create() {
  auto* table = new PageTable();
  sim::t_hal.tables.push_back(table);
  return table;
}
void pt_destroy(PageTable* table) {
  if (table == nullptr) return;
  // Freeing a page table that a CPU still has loaded (CR3) lets that CPU walk freed memory, and
  // a new address space allocated at the same place would inherit its stale TLB entries.
  sim::Machine& m = machine();
  for (uint32_t cpu = 0; cpu < m.config().cpus; ++cpu) {
    if (m.cpu(cpu).page_table == table) {
      char message[160];
      std::snprintf(message, sizeof(message), "a page table was destroyed while CPU %u still had it loaded", cpu);
      m.fail(sim::Outcome::Failed, message);
    }
  }
  auto& tables = sim::t_hal.tables;
  for (size_t i = 0; i < tables.size(); ++i) {
    if (tables[i] == table) {
      tables[i] = tables.back();
      tables.pop_back();
      break;
    }
  }
  pt_destroy_now(table);
}
void pt_destroy_now(PageTable* table) {
  for (uint32_t cpu = 0; cpu < sim::t_hal.tlbs.size(); ++cpu) sim::tlb_invalidate(cpu, table, 0, kUserTop);
  delete table;
}
bool pt_map(PageTable* table, u64 virt, u64 phys, u32 flags) {
  machine().point(Point::Hal);
  uint64_t* entry = sim::leaf(table, virt, true);
  if ((*entry & PageTable::kPresent) == 0) ++table->mapped;
  *entry = PageTable::kPresent | (phys & ~0xfffull) | (flags & 7);
  return true;
}
u64 pt_unmap(PageTable* table, u64 virt) {
  machine().point(Point::Hal);
  uint64_t* entry = sim::leaf(table, virt, false);
  if (entry == nullptr || (*entry & PageTable::kPresent) == 0) return 0;
  const u64 phys = *entry & 0x000f'ffff'ffff'f000ull;
  *entry = 0;
  --table->mapped;
  return phys;
}
bool pt_protect(PageTable* table, u64 virt, u32 flags) {
  machine().point(Point::Hal);
  uint64_t* entry = sim::leaf(table, virt, false);
  if (entry == nullptr || (*entry & PageTable::kPresent) == 0) return false;
  *entry = (*entry & ~7ull) | (flags & 7);
  return true;
}
bool pt_query(PageTable* table, u64 virt, u64* phys, u32* flags) {
  uint64_t* entry = sim::leaf(table, virt, false);
  if (entry == nullptr || (*entry & PageTable::kPresent) == 0) return false;
  if (phys != nullptr) *phys = *entry & 0x000f'ffff'ffff'f000ull;
  if (flags != nullptr) *flags = static_cast<u32>(*entry & 7);
  return true;
}
void pt_activate(PageTable* table) {
  // Loading CR3 flushes the TLB (tandem uses no global user pages and no PCIDs).
  sim::Machine& m = machine();
  if (m.cpu_id() < sim::t_hal.tlbs.size()) sim::t_hal.tlbs[m.cpu_id()] = sim::Tlb{};
  m.cpu().page_table = table;
}
void tlb_flush_local(u64 virt, u64 length) {
  sim::Machine& m = machine();
  sim::tlb_invalidate(m.cpu_id(), static_cast<PageTable*>(m.cpu().page_table), virt, length);
}
// The software MMU has no TLB yet, so there is nothing to invalidate; the call stays a
// scheduling point so that schedules explore other CPUs running between the page-table
// change and the end of the shootdown, as they do on hardware.
void tlb_shootdown(PageTable* table, u64 virt, u64 length) {
  sim::Machine& m = machine();
  m.point(Point::Hal);
  ++sim::t_hal.shootdowns;
  for (uint32_t cpu = 0; cpu < sim::t_hal.tlbs.size(); ++cpu) sim::tlb_invalidate(cpu, table, virt, length);
}

ShootdownStats tlb_shootdown_stats() { return ShootdownStats{sim::t_hal.shootdowns, 0, 0, 0}; }

bool copy_from_user(void* dst, u64 user_src, size_t length) {
  machine().point(Point::Hal);
  return sim::copy_user(user_src, dst, length, false);
}
bool copy_to_user(u64 user_dst, const void* src, size_t length) {
  machine().point(Point::Hal);
  return sim::copy_user(user_dst, const_cast<void*>(src), length, true);
}
bool user_cmpxchg32(u64 user_addr, u32 expected, u32 desired, u32* seen) {
  machine().point(Point::Hal);
  if ((user_addr & 3) != 0) return false;
  auto* p = static_cast<u32*>(sim::translate_or_fault(user_addr, kPageWrite));
  if (p == nullptr) return false;
  *seen = *p;
  if (*p == expected) *p = desired;
  return true;
}

// Devices: the simulated machine's PCI bus (sim/cpus/pci_bus.h). Every register access is a
// scheduling point, so other CPUs may run between a driver's register writes as on hardware.
u32 pci_config_read(PciAddress a, u32 offset, u32 size) {
  machine().point(Point::Hal);
  if ((size != 1 && size != 2 && size != 4) || offset >= 256 || (offset & (size - 1)) != 0) return ~0u;
  return sim::pci_config_read(a.bus, a.device, a.function, offset, size);
}
void pci_config_write(PciAddress a, u32 offset, u32 size, u32 value) {
  machine().point(Point::Hal);
  if ((size != 1 && size != 2 && size != 4) || offset >= 256 || (offset & (size - 1)) != 0) return;
  sim::pci_config_write(a.bus, a.device, a.function, offset, size, value);
}
// The handle is the physical address itself: the bus decodes it at each access.
u64 mmio_map(u64 phys, u64 length) {
  if (length == 0 || phys + length < phys || phys == 0) return 0;
  return phys;
}
static void check_mmio(u64 address, u32 size) {
  if ((size != 1 && size != 2 && size != 4 && size != 8) || (address & (size - 1)) != 0)
    panic("mmio access with a bad size or alignment");
}
u64 mmio_read(u64 address, u32 size) {
  sim::Machine& m = machine();
  m.point(Point::Hal);
  check_mmio(address, size);
  u64 value = 0;
  if (!sim::pci_mmio_read(address, size, &value)) {
    char message[128];
    std::snprintf(message, sizeof(message), "mmio read of 0x%llx: no device decodes it", static_cast<unsigned long long>(address));
    m.fail(sim::Outcome::Panic, message);
  }
  return value;
}
void mmio_write(u64 address, u32 size, u64 value) {
  sim::Machine& m = machine();
  m.point(Point::Hal);
  check_mmio(address, size);
  if (!sim::pci_mmio_write(address, size, value)) {
    char message[128];
    std::snprintf(message, sizeof(message), "mmio write of 0x%llx: no device decodes it", static_cast<unsigned long long>(address));
    m.fail(sim::Outcome::Panic, message);
  }
}
bool msi_allocate(u32 cpu, MsiMessage* message, u32* irq) {
  if (cpu >= machine().config().cpus || message == nullptr || irq == nullptr) return false;
  // The same numbering as hal/real: MSI irqs start after the 32 GSIs.
  if (sim::t_hal.msi_next == 32) return false;
  *irq = 32 + sim::t_hal.msi_next++;
  message->address = sim::kMsiAddressBase | (u64(cpu) << 12);
  message->data = *irq;
  return true;
}

}  // namespace hal
