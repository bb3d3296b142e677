// hal/real/src/context.cpp: kernel contexts (stack, saved registers, FS base, FPU state).
//
// Every context lives in a 64 KiB slot of the stack region:
//
//   [ guard page, unmapped ][ 32 KiB stack ][ Context + XSAVE area ][ unmapped rest ]
//
// A stack overflow runs into the guard page and faults; the page-fault handler cannot push onto
// the broken stack, so the CPU raises a double fault, which runs on its own IST stack and reports
// the overflow. Slots are populated on first use and never unmapped: a freed slot keeps its pages
// and goes on a free list. That avoids both a TLB shootdown on every thread exit and the danger
// of another CPU reusing a stale translation for a stack page that went back to the allocator.
#include "arch.h"

extern "C" void context_switch_asm(hal::u64* save_rsp, hal::u64 new_rsp);
extern "C" char context_start[];

namespace hal {

struct Context {
  u64 m_rsp;         // saved stack pointer while switched out
  u64 m_stack_top;   // becomes TSS.RSP0 and the SYSCALL stack while running
  u64 m_fs_base;     // user FS base of the thread
  u8* m_xsave;       // FPU/SSE/AVX state, 64-byte aligned
  Context* m_next_free;
  const char* m_name;  // for crash reports; owned by core
  u32 m_slot;
};

}  // namespace hal

namespace hal::real {

namespace {

constexpr u64 kGuardSize = kPageSize;
constexpr u64 kContextOffset = kGuardSize + kStackSize;
constexpr u64 kMaxContextArea = kSlotSize - kContextOffset;

SpinLock g_slot_lock;
u32 g_next_slot = 0;
Context* g_free_contexts = nullptr;

u64 slot_base(u32 slot) { return kStackRegionBase + u64(slot) * kSlotSize; }

// Maps `count` fresh pages at `virt`; false when memory runs out.
bool map_fresh(u64 virt, u64 count) {
  for (u64 i = 0; i < count; ++i) {
    u64 page = phys_alloc_page();
    if (!page || !kernel_map_page(virt + i * kPageSize, page, true)) return false;
  }
  return true;
}

u64 context_area_pages() {
  u64 bytes = ((sizeof(Context) + 63) & ~63ull) + g_features.xsave_size;
  return (bytes + kPageSize - 1) / kPageSize;
}

u32 take_slot_index() {
  IrqFlags flags = g_slot_lock.lock();
  u32 slot = g_next_slot++;
  g_slot_lock.unlock(flags);
  return slot;
}

Context* new_context() {
  IrqFlags flags = g_slot_lock.lock();
  Context* c = g_free_contexts;
  if (c) g_free_contexts = c->m_next_free;
  g_slot_lock.unlock(flags);
  if (c) return c;

  if (context_area_pages() * kPageSize > kMaxContextArea) panic("XSAVE area too large for a slot");
  u32 slot = take_slot_index();
  u64 base = slot_base(slot);
  if (!map_fresh(base + kGuardSize, kStackSize / kPageSize) ||
      !map_fresh(base + kContextOffset, context_area_pages())) {
    return nullptr;  // the slot index is lost; only when memory is exhausted
  }
  c = reinterpret_cast<Context*>(base + kContextOffset);
  c->m_slot = slot;
  c->m_stack_top = base + kGuardSize + kStackSize;
  c->m_xsave = reinterpret_cast<u8*>(base + kContextOffset + ((sizeof(Context) + 63) & ~63ull));
  // XSAVE writes only XSTATE_BV of the XSAVE header, and XRSTOR faults unless the rest of the
  // header is zero; the slot's fresh pages may hold anything.
  for (u32 i = 512; i < 576; ++i) c->m_xsave[i] = 0;
  return c;
}

void fpu_save(u8* area) {
  if (g_features.xsave) {
    asm volatile("xsave64 (%0)" ::"r"(area), "a"(u32(g_features.xcr0)),
                 "d"(u32(g_features.xcr0 >> 32))
                 : "memory");
  } else {
    asm volatile("fxsave64 (%0)" ::"r"(area) : "memory");
  }
}

void fpu_restore(const u8* area) {
  if (g_features.xsave) {
    asm volatile("xrstor64 (%0)" ::"r"(area), "a"(u32(g_features.xcr0)),
                 "d"(u32(g_features.xcr0 >> 32))
                 : "memory");
  } else {
    asm volatile("fxrstor64 (%0)" ::"r"(area) : "memory");
  }
}

}  // namespace

u64 slot_alloc_stack_top() {
  u64 base = slot_base(take_slot_index());
  if (!map_fresh(base + kGuardSize, kStackSize / kPageSize)) panic("out of memory for a stack");
  return base + kGuardSize + kStackSize;
}

u64 context_fs_base(Context* c) { return c->m_fs_base; }
const char* context_name(Context* c) { return c && c->m_name ? c->m_name : "unnamed"; }
void context_set_fs_base(Context* c, u64 fs) { c->m_fs_base = fs; }

}  // namespace hal::real

extern "C" [[noreturn]] void context_entry_returned() {
  hal::panic("a kernel context's entry function returned");
}

namespace hal {

using namespace hal::real;

Context* context_create(void (*entry)(void* arg), void* arg) {
  Context* c = new_context();
  if (!c) return nullptr;
  // The first switch to this context pops six callee-saved registers and returns into
  // context_start, which calls entry(arg) (R12, R13) with a 16-byte aligned stack.
  u64* frame = reinterpret_cast<u64*>(c->m_stack_top - 72);
  frame[0] = 0;              // r15
  frame[1] = 0;              // r14
  frame[2] = u64(arg);       // r13
  frame[3] = u64(entry);     // r12
  frame[4] = 0;              // rbx
  frame[5] = 0;              // rbp
  frame[6] = u64(context_start);
  c->m_rsp = u64(frame);
  c->m_fs_base = 0;
  c->m_next_free = nullptr;
  c->m_name = nullptr;
  // The new context starts with a copy of the creator's FPU state, as a thread or process made
  // by clone/fork does on Linux (control words such as MXCSR are inherited).
  fpu_save(c->m_xsave);
  return c;
}

Context* context_adopt_current() {
  Context* c = new_context();
  if (!c) return nullptr;
  PerCpu* cpu = this_cpu();
  // The caller runs on its CPU's boot stack, which becomes this context's stack; the slot's own
  // stack stays unused. The FPU area is written at the first switch away, before any restore.
  c->m_stack_top = cpu->boot_stack_top;
  c->m_rsp = 0;
  c->m_fs_base = rdmsr(kMsrFsBase);
  c->m_next_free = nullptr;
  c->m_name = nullptr;
  cpu->current = c;
  return c;
}

void context_set_name(Context* context, const char* name) { context->m_name = name; }

void context_destroy(Context* context) {
  if (!context) return;
  if (context == this_cpu()->current) panic("context_destroy of the running context");
  // An adopted context's slot stack was never used; restoring the slot's own top keeps every
  // free slot uniform.
  context->m_stack_top = slot_base(context->m_slot) + kPageSize + kStackSize;
  IrqFlags flags = g_slot_lock.lock();
  context->m_next_free = g_free_contexts;
  g_free_contexts = context;
  g_slot_lock.unlock(flags);
}

void context_switch(Context* from, Context* to) {
  if (from == to) return;
  IrqFlags flags = irq_save();
  PerCpu* cpu = this_cpu();
  cpu->progress = cpu->progress + 1;  // the watchdog's sign of life (soft lockups)
  fpu_save(from->m_xsave);
  cpu->current = to;
  cpu->kernel_rsp = to->m_stack_top;
  cpu->tss.rsp[0] = to->m_stack_top;
  if (to->m_fs_base != from->m_fs_base) wrmsr(kMsrFsBase, to->m_fs_base);
  fpu_restore(to->m_xsave);
  context_switch_asm(&from->m_rsp, to->m_rsp);
  // Back on `from`, switched to by some later context_switch on this or another CPU.
  irq_restore(flags);
}

void set_fs_base(u64 value) {
  if (value >= kUserTop) {
    // A non-canonical value would fault in wrmsr; a kernel one has no business in user TLS.
    klog("set_fs_base(%lx) ignored: not a user address", value);
    return;
  }
  wrmsr(kMsrFsBase, value);
  if (Context* c = this_cpu()->current) c->m_fs_base = value;
}

u64 get_fs_base() {
  Context* c = this_cpu()->current;
  return c ? c->m_fs_base : rdmsr(kMsrFsBase);
}

}  // namespace hal

namespace hal {

// Signal frames carry the legacy FXSAVE image (x87 and SSE), which every x86-64 CPU has; the
// AVX upper halves are not saved across a handler yet.
void user_fpu_save(void* area) { asm volatile("fxsave64 (%0)" ::"r"(area) : "memory"); }

void user_fpu_restore(void* area) {
  // MXCSR (bytes 24..27) with a reserved bit set would make FXRSTOR fault in the kernel.
  u32 mxcsr;
  __builtin_memcpy(&mxcsr, static_cast<u8*>(area) + 24, 4);
  mxcsr &= 0xffff;
  __builtin_memcpy(static_cast<u8*>(area) + 24, &mxcsr, 4);
  asm volatile("fxrstor64 (%0)" ::"r"(area) : "memory");
}

}  // namespace hal
