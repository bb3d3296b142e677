// hal/real/selftest/selftest.cpp: a kentry implementation that exercises hal/real by itself.
//
// It stands in for core/ so the HAL can be tested in QEMU without the kernel: physical pages,
// page tables, user copies with demand faults, contexts and FPU state, the timer, user mode
// (system calls, faults, interrupts taken in user mode), IPIs and NMIs across all CPUs. The
// command line picks a deliberate crash instead (selftest=panic|fault|overflow), to test that
// crashes are reported and end QEMU with the panic status.
//
// It ends with hal::shutdown: exit status 0 when every check passed; a failed check ends the run
// at once with status 1 and a "selftest FAILED" line.
#include <hal.h>

#include "arch.h"
#include "hal_real.h"

extern "C" char user_blob_start[], user_blob_end[];

namespace {

using namespace hal;
using hal::real::klog;

u32 g_checks = 0;

#define CHECK(cond)                                                           \
  do {                                                                        \
    ++g_checks;                                                               \
    if (!(cond)) {                                                            \
      klog("selftest FAILED: %s (%s:%d, cpu %u)", #cond, __FILE__, __LINE__, \
           hal::cpu_id());                                                    \
      hal::real::power_off(1);                                                \
    }                                                                         \
  } while (0)

constexpr u64 kUserCode = 0x400000;
constexpr u64 kUserReadOnly = 0x500000;
constexpr u64 kUserData = 0x600000;
constexpr u64 kUserStackTop = 0x80000000;
constexpr u64 kDemandBase = 0x10000000;  // page faults here are resolved by mapping a page
constexpr u64 kDemandEnd = 0x10010000;
constexpr u64 kFsMagic = 0xf5f5'0000'1234'5678ull;

struct PerCpuTest {
  volatile u32 counts[5];  // by kentry::Vector
  volatile bool timer_fired;
  volatile bool read_request;  // the CPU reads kShootdownPage through g_table (test_shootdown)
  volatile u64 read_value;
  volatile u32 reads_done;
};
PerCpuTest g_per[kMaxCpus];
volatile u32 g_ready = 0;

PageTable* g_table = nullptr;
u64 g_data_phys = 0;
u32 g_page_faults = 0;
Context* g_main_ctx = nullptr;
Context* g_user_ctx = nullptr;
Context* g_clobber_ctx = nullptr;
volatile bool g_periodic = false;
volatile u32 g_user_ticks = 0;
u32 g_user_faults = 0;
kentry::UserFault g_fault_kinds[4];
u64 g_fault_addresses[4];

bool has_arg(const char* cmdline, const char* arg) {
  for (const char* p = cmdline; *p; ++p) {
    const char* a = arg;
    const char* q = p;
    while (*a && *q == *a) ++a, ++q;
    if (!*a && (*q == 0 || *q == ' ') && (p == cmdline || p[-1] == ' ')) return true;
  }
  return false;
}

u64* data_word(u64 offset) {
  return static_cast<u64*>(phys_to_virt(g_data_phys)) + offset / 8;
}

void wait_for(volatile bool* flag) {
  while (!*flag) cpu_idle_wait();
}

// --- physical memory and page tables ---------------------------------------------------------

extern "C" char __kernel_phys_start[], __kernel_phys_end[];

void test_phys(const BootInfo& info) {
  constexpr u32 kCount = 512;
  static u64 pages[kCount];
  for (u32 i = 0; i < kCount; ++i) {
    pages[i] = phys_alloc_page();
    CHECK(pages[i] != 0 && (pages[i] & (kPageSize - 1)) == 0);
    CHECK(pages[i] >= 0x100000);
    // Never a page of the kernel image or of the initrd.
    CHECK(pages[i] + kPageSize <= u64(__kernel_phys_start) || pages[i] >= u64(__kernel_phys_end));
    CHECK(!info.initrd_size || pages[i] + kPageSize <= info.initrd_phys ||
          pages[i] >= info.initrd_phys + info.initrd_size);
    *static_cast<u64*>(phys_to_virt(pages[i])) = pages[i] ^ 0xa5a5;
  }
  for (u32 i = 0; i < kCount; ++i) {
    CHECK(*static_cast<u64*>(phys_to_virt(pages[i])) == (pages[i] ^ 0xa5a5));
  }
  for (u32 i = 0; i < kCount; ++i) phys_free_page(pages[i]);
  u64 again = phys_alloc_page();
  CHECK(again == pages[kCount - 1]);  // the free list returns the last freed page first
  phys_free_page(again);
}

u64 zeroed_page() {
  u64 p = phys_alloc_page();
  CHECK(p != 0);
  auto* w = static_cast<u64*>(phys_to_virt(p));
  for (u32 i = 0; i < 512; ++i) w[i] = 0;
  return p;
}

// Device access (src/pci.cpp) on QEMU's q35: the host bridge's identity through every access
// size, an absent function, the uncached window and the MMIO region, an MSI message.
void test_devices() {
  const PciAddress bridge{0, 0, 0};
  CHECK(pci_config_read(bridge, 0, 4) == 0x29c08086u);  // Intel 82G33/G31/P35/P31 (QEMU's q35 MCH)
  CHECK(pci_config_read(bridge, 0, 2) == 0x8086u);
  CHECK(pci_config_read(bridge, 2, 2) == 0x29c0u);
  CHECK(pci_config_read(bridge, 1, 1) == 0x80u);
  CHECK(pci_config_read(PciAddress{255, 31, 7}, 0, 4) == 0xffffffffu);
  CHECK(pci_config_read(bridge, 2, 4) == 0xffffffffu);  // misaligned: refused
  // The LAPIC sits in the uncached 3-4 GiB window: its id register through mmio_read.
  const u64 lapic = mmio_map(0xfee00000, 0x1000);
  CHECK(lapic == hal::real::kDirectMapBase + 0xfee00000);
  CHECK((mmio_read(lapic + 0x20, 4) >> 24) == hal::real::lapic_id());
  // Above 4 GiB: pages of the MMIO region, mapped, offset kept.
  const u64 high = mmio_map(0x10'0000'0123ull, 0x2000);
  CHECK(high >= hal::real::kMmioRegionBase && (high & 0xfff) == 0x123);
  CHECK(hal::real::kernel_address_mapped(high) && hal::real::kernel_address_mapped(high + 0x1fff));
  CHECK(mmio_map(0, 0) == 0);
  MsiMessage message{};
  u32 irq = 0;
  CHECK(msi_allocate(0, &message, &irq));
  CHECK(irq >= 32 && irq < 64 && message.data == 0x30 + irq);
  CHECK(message.address == (0xfee00000ull | (u64(hal::real::g_cpus[0].apic_id) << 12)));
}

void test_page_tables() {
  g_table = pt_create();
  CHECK(g_table != nullptr);
  u64 code = zeroed_page();
  u64 blob = u64(user_blob_end - user_blob_start);
  CHECK(blob <= kPageSize);
  for (u64 i = 0; i < blob; ++i) static_cast<u8*>(phys_to_virt(code))[i] = u8(user_blob_start[i]);
  CHECK(pt_map(g_table, kUserCode, code, kPageRead | kPageExec));
  g_data_phys = zeroed_page();
  CHECK(pt_map(g_table, kUserData, g_data_phys, kPageRead | kPageWrite));
  CHECK(pt_map(g_table, kUserStackTop - kPageSize, zeroed_page(), kPageRead | kPageWrite));
  u64 ro = zeroed_page();
  CHECK(pt_map(g_table, kUserReadOnly, ro, kPageRead | kPageWrite));

  u64 phys = 0;
  u32 flags = 0;
  CHECK(pt_query(g_table, kUserCode + 5, &phys, &flags));
  CHECK(phys == code && flags == (kPageRead | kPageExec));
  CHECK(pt_protect(g_table, kUserReadOnly, kPageRead));
  CHECK(pt_query(g_table, kUserReadOnly, &phys, &flags) && flags == kPageRead && phys == ro);
  CHECK(!pt_query(g_table, 0x700000, &phys, &flags));
  CHECK(!pt_protect(g_table, 0x700000, kPageRead));
  // PROT_NONE: mapped for core, inaccessible to the MMU.
  u64 none = zeroed_page();
  CHECK(pt_map(g_table, 0x701000, none, 0));
  CHECK(pt_query(g_table, 0x701000, &phys, &flags) && flags == 0 && phys == none);
  CHECK(pt_unmap(g_table, 0x701000) == none);
  CHECK(pt_unmap(g_table, 0x701000) == 0);
  phys_free_page(none);

  // A throwaway table: map, destroy, and its table pages come back.
  PageTable* other = pt_create();
  CHECK(other != nullptr);
  CHECK(pt_map(other, 0x7000'0000'0000ull, code, kPageRead));
  pt_destroy(other);
  pt_activate(g_table);
}

// --- user copies ---------------------------------------------------------------------------

void test_user_copies() {
  u64 value = 0x0123456789abcdefull, back = 0;
  CHECK(copy_to_user(kUserData + 0x100, &value, sizeof(value)));
  CHECK(copy_from_user(&back, kUserData + 0x100, sizeof(back)) && back == value);
  CHECK(*data_word(0x100) == value);

  // Demand paging: the copy faults, kentry::page_fault maps the page, the copy resumes.
  u32 faults = g_page_faults;
  char text[64];
  for (u32 i = 0; i < sizeof(text); ++i) text[i] = char('a' + i % 26);
  // Straddles two unmapped demand pages: two faults, each resolved.
  CHECK(copy_to_user(kDemandBase + 0x2000 - 20, text, sizeof(text)));
  CHECK(g_page_faults == faults + 2);
  char round[64] = {};
  CHECK(copy_from_user(round, kDemandBase + 0x2000 - 20, sizeof(round)));
  for (u32 i = 0; i < sizeof(text); ++i) CHECK(round[i] == text[i]);

  // Faults that nobody resolves become `false`.
  faults = g_page_faults;
  CHECK(!copy_from_user(&back, 0x30000000, 8));
  CHECK(!copy_to_user(kUserReadOnly, &value, 8));  // a write to a read-only page
  CHECK(g_page_faults > faults);
  CHECK(!copy_to_user(kUserData + kPageSize - 4, &value, 8));  // runs off the end of the page
  // Ranges outside user space never reach the MMU.
  faults = g_page_faults;
  CHECK(!copy_from_user(&back, 0xffff'8000'0000'0000ull, 8));
  CHECK(!copy_from_user(&back, kUserTop - 4, 8));
  CHECK(!copy_from_user(&back, ~0ull - 3, 8));
  CHECK(g_page_faults == faults);
  CHECK(copy_from_user(&back, 0x1234, 0));  // empty copies succeed

  u32 seen = 0;
  *data_word(0x200) = 5;
  CHECK(user_cmpxchg32(kUserData + 0x200, 5, 9, &seen) && seen == 5);
  CHECK(user_cmpxchg32(kUserData + 0x200, 5, 7, &seen) && seen == 9);
  CHECK(*data_word(0x200) == 9);
  CHECK(!user_cmpxchg32(0x30000000, 0, 1, &seen));
  CHECK(!user_cmpxchg32(kUserData + 2, 0, 1, &seen));  // misaligned
  CHECK(user_cmpxchg32(kDemandBase + 0x8000, 0, 1, &seen) && seen == 0);
}

// --- contexts --------------------------------------------------------------------------------

Context* g_ping = nullptr;
volatile u32 g_pings = 0;

void ping_entry(void* arg) {
  CHECK(arg == &g_pings);
  for (;;) {
    g_pings = g_pings + 1;
    context_switch(g_ping, g_main_ctx);
  }
}

void clobber_entry(void*) {
  for (;;) {
    // Another context with different vector state: the user's xmm0/xmm15 must not leak here, and
    // this context's values must not leak back.
    asm volatile("pxor %%xmm0, %%xmm0; pcmpeqd %%xmm15, %%xmm15" ::: "memory");
    context_switch(g_clobber_ctx, g_user_ctx);
  }
}

void test_contexts() {
  g_ping = context_create(ping_entry, const_cast<u32*>(&g_pings));
  CHECK(g_ping != nullptr);
  for (u32 i = 0; i < 1000; ++i) context_switch(g_main_ctx, g_ping);
  CHECK(g_pings == 1000);
  context_destroy(g_ping);
  Context* again = context_create(ping_entry, nullptr);
  CHECK(again == g_ping);  // the slot is reused
  context_destroy(again);

  set_fs_base(0x1000);
  CHECK(get_fs_base() == 0x1000);
  set_fs_base(0);
}

// --- time ------------------------------------------------------------------------------------

void test_time() {
  // delay_us never returns early. It may return late when a busy host deschedules this vCPU
  // (ctest -j8 made single tries exceed 50 ms), so the upper bound needs one good try of five.
  u64 shortest = ~0ull;
  for (u32 attempt = 0; attempt < 5 && shortest >= 50'000'000; ++attempt) {
    u64 a = monotonic_ns();
    real::delay_us(2000);
    u64 b = monotonic_ns();
    CHECK(b - a >= 2'000'000);
    if (b - a < shortest) shortest = b - a;
  }
  CHECK(shortest < 50'000'000);
  u64 year_2024 = 1704067200ull * 1'000'000'000ull;
  CHECK(realtime_ns() > year_2024);

  PerCpuTest& me = g_per[cpu_id()];
  me.timer_fired = false;
  u64 deadline = monotonic_ns() + 3'000'000;
  timer_set_deadline(deadline);
  wait_for(&me.timer_fired);
  CHECK(monotonic_ns() >= deadline);

  // A disarmed timer stays quiet; a deadline in the past fires at once.
  me.timer_fired = false;
  timer_set_deadline(monotonic_ns() + 1'000'000);
  timer_set_deadline(0);
  irq_enable();
  real::delay_us(5000);
  irq_disable();
  CHECK(!me.timer_fired);
  timer_set_deadline(1);
  wait_for(&me.timer_fired);

  u8 r1[16] = {}, r2[16] = {};
  random_bytes(r1, sizeof(r1));
  random_bytes(r2, sizeof(r2));
  bool differ = false;
  for (u32 i = 0; i < 16; ++i) differ |= r1[i] != r2[i];
  CHECK(differ);
}

// --- user mode -------------------------------------------------------------------------------

volatile bool g_user_done = false;

void user_thread(void*) {
  UserFrame frame{};
  frame.rip = kUserCode;
  frame.rsp = kUserStackTop;
  frame.rflags = 0x202;
  enter_user(frame);
}

void test_user_mode() {
  g_clobber_ctx = context_create(clobber_entry, nullptr);
  g_user_ctx = context_create(user_thread, nullptr);
  CHECK(g_clobber_ctx && g_user_ctx);
  context_set_name(g_user_ctx, "user thread");
  context_set_name(g_clobber_ctx, "clobber");
  context_switch(g_main_ctx, g_user_ctx);  // returns when the program makes call 60
  CHECK(g_user_done);
  CHECK(g_user_faults == 4);
  CHECK(g_fault_kinds[3] == kentry::UserFault::Segv);
  CHECK(g_fault_kinds[0] == kentry::UserFault::Ill);
  CHECK(g_fault_kinds[1] == kentry::UserFault::Segv && g_fault_addresses[1] == 0x30000000);
  CHECK(g_fault_kinds[2] == kentry::UserFault::Segv);
  context_destroy(g_user_ctx);
  context_destroy(g_clobber_ctx);
  set_fs_base(0);
}

// --- SMP -------------------------------------------------------------------------------------

void wait_count(volatile u32* counter, u32 target, const char* what) {
  u64 limit = monotonic_ns() + 20'000'000'000ull;  // generous: a busy host slows TCG down
  while (*counter < target) {
    if (monotonic_ns() > limit) {
      klog("selftest FAILED: timed out waiting for %s", what);
      real::power_off(1);
    }
    cpu_relax();
  }
}

void test_smp() {
  start_secondary_cpus(&g_per);
  u32 others = cpu_count() - 1;
  wait_count(&g_ready, others, "secondary CPUs");
  for (u32 cpu = 1; cpu < cpu_count(); ++cpu) {
    PerCpuTest& t = g_per[cpu];
    u32 before = t.counts[u32(kentry::Vector::IpiReschedule)];
    send_ipi(cpu, Ipi::Reschedule);
    wait_count(&t.counts[u32(kentry::Vector::IpiReschedule)], before + 1, "a reschedule IPI");
    before = t.counts[u32(kentry::Vector::IpiTlbShootdown)];
    send_ipi(cpu, Ipi::TlbShootdown);
    wait_count(&t.counts[u32(kentry::Vector::IpiTlbShootdown)], before + 1, "a shootdown IPI");
  }
  if (others) {
    u32 last = cpu_count() - 1;
    u32 before = g_per[last].counts[u32(kentry::Vector::IpiBacktrace)];
    send_ipi(last, Ipi::Backtrace);
    wait_count(&g_per[last].counts[u32(kentry::Vector::IpiBacktrace)], before + 1, "an NMI");
  }
  // The boot CPU can take an NMI too, with interrupts disabled.
  u32 before = g_per[0].counts[u32(kentry::Vector::IpiBacktrace)];
  send_ipi(0, Ipi::Backtrace);
  wait_count(&g_per[0].counts[u32(kentry::Vector::IpiBacktrace)], before + 1, "an NMI to self");
}

// A remote CPU caches a translation, CPU 0 points the page elsewhere and shoots the old one
// down: the remote CPU must then read the new page. QEMU's TLB keeps a stale translation until
// it is flushed, so without a working shootdown the second read returns the old page's value.
constexpr u64 kShootdownPage = 0x20000000;

u64 remote_read(u32 cpu) {
  PerCpuTest& t = g_per[cpu];
  u32 before = t.reads_done;
  t.read_request = true;
  send_ipi(cpu, Ipi::Reschedule);
  wait_count(&t.reads_done, before + 1, "a remote read");
  return t.read_value;
}

void test_shootdown() {
  if (cpu_count() < 2) return;
  u64 old_page = zeroed_page(), new_page = zeroed_page();
  *static_cast<u64*>(phys_to_virt(old_page)) = 0xaaaa;
  *static_cast<u64*>(phys_to_virt(new_page)) = 0xbbbb;
  CHECK(pt_map(g_table, kShootdownPage, old_page, kPageRead));
  for (u32 cpu = 1; cpu < cpu_count(); ++cpu) CHECK(remote_read(cpu) == 0xaaaa);
  CHECK(pt_unmap(g_table, kShootdownPage) == old_page);
  CHECK(pt_map(g_table, kShootdownPage, new_page, kPageRead));
  tlb_shootdown(g_table, kShootdownPage, kPageSize);
  for (u32 cpu = 1; cpu < cpu_count(); ++cpu) CHECK(remote_read(cpu) == 0xbbbb);
  // A protection change is shot down the same way: the page becomes unreadable everywhere.
  CHECK(pt_protect(g_table, kShootdownPage, 0));
  tlb_shootdown(g_table, kShootdownPage, kPageSize);
  for (u32 cpu = 1; cpu < cpu_count(); ++cpu) CHECK(remote_read(cpu) == ~0ull);
  CHECK(pt_unmap(g_table, kShootdownPage) == new_page);
  phys_free_page(old_page);
  phys_free_page(new_page);
}

// --- deliberate crashes ----------------------------------------------------------------------

[[gnu::noinline]] u64 recurse(u64 n) {
  volatile u8 pad[512];
  pad[0] = u8(n);
  return n ? recurse(n + 1) + pad[0] : 0;
}

void overflow_entry(void*) { recurse(1); }

}  // namespace

void kentry::boot(const BootInfo& info) {
  klog("selftest: %lu MiB, cmdline \"%s\", %u cpus", info.memory_bytes >> 20, info.cmdline,
       cpu_count());
  CHECK(info.memory_bytes > (64ull << 20));
  cpu_local_set(&g_per[0]);
  g_main_ctx = context_adopt_current();
  CHECK(g_main_ctx != nullptr);
  context_set_name(g_main_ctx, "selftest main");

  if (has_arg(info.cmdline, "selftest=panic")) {
    // With the other CPUs up and idle, so the panic also shows their backtraces.
    start_secondary_cpus(&g_per);
    wait_count(&g_ready, cpu_count() - 1, "secondary CPUs");
    panic("selftest: deliberate panic");
  }
  if (has_arg(info.cmdline, "selftest=fault")) {
    klog("selftest: writing to address 0x10 from the kernel");
    *reinterpret_cast<volatile u64*>(0x10) = 1;
  }
  if (has_arg(info.cmdline, "selftest=overflow")) {
    Context* c = context_create(overflow_entry, nullptr);
    context_switch(g_main_ctx, c);
  }

  if (info.initrd_size) {
    const auto* bytes = static_cast<const u8*>(phys_to_virt(info.initrd_phys));
    klog("selftest: initrd of %lu bytes at %lx starts with %02x%02x%02x%02x", info.initrd_size,
         info.initrd_phys, bytes[0], bytes[1], bytes[2], bytes[3]);
  }
  // An interrupt vector nobody uses is reported and ignored.
  asm volatile("int $0x77");

  test_phys(info);
  test_devices();
  test_page_tables();
  test_user_copies();
  test_contexts();
  test_time();
  test_user_mode();
  test_smp();
  test_shootdown();
  klog("selftest: all %u checks passed on %u cpus", g_checks, cpu_count());
  shutdown(0);
  panic("shutdown returned");
}

void kentry::cpu_main(void* kernel, u32 cpu) {
  CHECK(kernel == &g_per);
  CHECK(cpu_id() == cpu);
  cpu_local_set(&g_per[cpu]);
  CHECK(cpu_local() == &g_per[cpu]);
  CHECK(context_adopt_current() != nullptr);
  CHECK(!irq_enabled());
  g_per[cpu].timer_fired = false;
  timer_set_deadline(monotonic_ns() + 1'000'000);
  wait_for(&g_per[cpu].timer_fired);
  __atomic_add_fetch(&g_ready, 1, __ATOMIC_SEQ_CST);
  PerCpuTest& me = g_per[cpu];
  for (;;) {
    cpu_idle_wait();
    if (!me.read_request) continue;
    me.read_request = false;
    pt_activate(g_table);
    u64 value = 0;
    // A fault (the page made inaccessible) reads as all ones.
    me.read_value = copy_from_user(&value, kShootdownPage, sizeof(value)) ? value : ~0ull;
    __atomic_add_fetch(&me.reads_done, 1u, __ATOMIC_SEQ_CST);
  }
}

void kentry::interrupt(Vector vector, u32, UserFrame* user) {
  PerCpuTest& me = *static_cast<PerCpuTest*>(cpu_local());
  me.counts[u32(vector)] = me.counts[u32(vector)] + 1;
  if (vector == Vector::Timer) {
    me.timer_fired = true;
    // Only ticks taken in user mode count, but the timer is re-armed whatever mode it hit: on a
    // loaded host the first one may expire before the system call returns.
    if (user && g_periodic) {
      g_user_ticks = g_user_ticks + 1;
      *data_word(8) = g_user_ticks;
    }
    if (g_periodic) timer_set_deadline(monotonic_ns() + 1'000'000);
  }
}

// Console input is not exercised here: nobody types at the selftest.
void kentry::console_input() {}
void kentry::dump_state() {}

bool kentry::page_fault(u64 address, u32) {
  ++g_page_faults;
  if (address < kDemandBase || address >= kDemandEnd) return false;
  return pt_map(g_table, address & ~(kPageSize - 1), zeroed_page(), kPageRead | kPageWrite);
}

void kentry::user_fault(UserFault fault, u64 address, UserFrame& frame) {
  if (g_user_faults < 4) {
    g_fault_kinds[g_user_faults] = fault;
    g_fault_addresses[g_user_faults] = address;
  }
  ++g_user_faults;
  frame.rip = frame.r12;  // the program put the resume address there
}

void kentry::syscall(UserFrame& f) {
  switch (f.rax) {
    case 1: {
      char text[64] = {};
      CHECK(f.rsi < sizeof(text));
      CHECK(copy_from_user(text, f.rdi, f.rsi));
      klog("selftest: user program says \"%s\"", text);
      f.rax = f.rsi;
      break;
    }
    case 10:
      CHECK(f.rdi == 0x1234);
      break;
    case 2:
      context_switch(g_user_ctx, g_clobber_ctx);
      break;
    case 3:
      CHECK(f.rdi == 0x1122334455667788ull && f.rsi == 0x1122334455667788ull);
      break;
    case 5:
      g_user_ticks = 0;
      *data_word(8) = 0;
      g_periodic = true;
      timer_set_deadline(monotonic_ns() + 1'000'000);
      break;
    case 6:
      g_periodic = false;
      timer_set_deadline(0);
      CHECK(f.rdi == 0);  // registers and red zone intact
      CHECK(g_user_ticks >= 3);
      break;
    case 7:
      *data_word(0x10) = kFsMagic;
      set_fs_base(kUserData + 0x10);
      break;
    case 8:
      CHECK(f.rdi == kFsMagic);
      CHECK(f.fs_base == kUserData + 0x10);
      break;
    case 9:
      f.rip = 0x0000'9000'0000'0000ull;  // non-canonical
      break;
    case 11:
      CHECK(f.rdi == 0x33 && f.rsi == 0x2b);
      break;
    case 60:
      g_user_done = true;
      context_switch(g_user_ctx, g_main_ctx);
      panic("the finished user thread was resumed");
    default:
      klog("selftest: unknown call %lu", f.rax);
      CHECK(false);
  }
}
