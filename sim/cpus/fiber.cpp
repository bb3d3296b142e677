#include "sim/cpus/fiber.h"

#include <sys/mman.h>

#include <boost/context/detail/fcontext.hpp>
#include <cstdio>
#include <cstdlib>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TANDEM_SIM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TANDEM_SIM_ASAN 1
#endif

#ifdef TANDEM_SIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace ctx = boost::context::detail;

namespace sim {

namespace {

constexpr size_t kGuard = 4096;

void start_switch(Fiber& from, Fiber& to) {
#ifdef TANDEM_SIM_ASAN
  __sanitizer_start_switch_fiber(&from.asan_fake_stack, to.stack, to.stack_size);
#else
  (void)from;
  (void)to;
#endif
}

void finish_switch(Fiber& self) {
#ifdef TANDEM_SIM_ASAN
  __sanitizer_finish_switch_fiber(self.asan_fake_stack, nullptr, nullptr);
#else
  (void)self;
#endif
}

struct Transfer {
  Fiber* from;
  Fiber* to;
};

[[noreturn]] void fiber_main(ctx::transfer_t t) {
  auto* transfer = static_cast<Transfer*>(t.data);
  transfer->from->context = t.fctx;
  Fiber& self = *transfer->to;
  finish_switch(self);
  self.body(self.arg);
  std::fprintf(stderr, "sim: a fiber body returned\n");
  std::abort();
}

}  // namespace

StackPool::StackPool(size_t stack_size) : m_stack_size(stack_size) {}

StackPool::~StackPool() {
  for (void* stack : m_all) {
    fiber_forget_stack(stack, m_stack_size);
    munmap(static_cast<char*>(stack) - kGuard, m_stack_size + kGuard);
  }
}

void* StackPool::take() {
  if (!m_free.empty()) {
    void* stack = m_free.back();
    m_free.pop_back();
    return stack;
  }
  void* memory = mmap(nullptr, m_stack_size + kGuard, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  mprotect(memory, kGuard, PROT_NONE);  // a stack overflow faults instead of corrupting
  void* stack = static_cast<char*>(memory) + kGuard;
  m_all.push_back(stack);
  return stack;
}

void StackPool::give(void* stack) {
  fiber_forget_stack(stack, m_stack_size);
  m_free.push_back(stack);
}

void fiber_prepare(Fiber& fiber) {
  fiber.context = ctx::make_fcontext(static_cast<char*>(fiber.stack) + fiber.stack_size, fiber.stack_size,
                                     &fiber_main);
  fiber.asan_fake_stack = nullptr;
}

void fiber_switch(Fiber& from, Fiber& to) {
  Transfer transfer{&from, &to};
  start_switch(from, to);
  ctx::transfer_t t = ctx::jump_fcontext(to.context, &transfer);
  // Back in `from`: whoever switched to us passed its own Transfer; save its context.
  auto* back = static_cast<Transfer*>(t.data);
  back->from->context = t.fctx;
  finish_switch(from);
}

void fiber_forget_stack(void* stack, size_t size) {
#ifdef TANDEM_SIM_ASAN
  if (stack != nullptr) __asan_unpoison_memory_region(stack, size);
#else
  (void)stack;
  (void)size;
#endif
}

}  // namespace sim
