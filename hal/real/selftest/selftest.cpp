// Minimal bring-up stub (replaced by the full selftest below once boot works).
#include <hal.h>
#include "arch.h"
#include "hal_real.h"

using namespace hal;

static volatile u32 g_up = 0;

void kentry::boot(const BootInfo& info) {
  real::klog("selftest: boot, %lu MiB", info.memory_bytes >> 20);
  __atomic_add_fetch(&g_up, 1, __ATOMIC_SEQ_CST);
  start_secondary_cpus(nullptr);
  while (__atomic_load_n(&g_up, __ATOMIC_SEQ_CST) < cpu_count()) cpu_relax();
  real::power_off(0);
}
void kentry::cpu_main(void*, u32) {
  __atomic_add_fetch(&g_up, 1, __ATOMIC_SEQ_CST);
  for (;;) cpu_idle_wait();
}
void kentry::syscall(UserFrame&) {}
void kentry::interrupt(Vector, u32, UserFrame*) {}
bool kentry::page_fault(u64, u32) { return false; }
void kentry::user_fault(UserFault, u64, UserFrame&) {}
