// Fibers over Boost.Context's fcontext: the simulated machine's kernel stacks.
//
// Switches are annotated for AddressSanitizer (Debian's Boost.Context does not do it), and a
// stack is unpoisoned before reuse, so sanitizer builds give no false reports when a run
// abandons fibers in the middle of their work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sim {

struct Fiber {
  void* context = nullptr;  // boost::context::detail::fcontext_t
  void* stack = nullptr;    // lowest address of the usable stack, null for a thread's own stack
  size_t stack_size = 0;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  void* asan_fake_stack = nullptr;
  const char* name = nullptr;  // for traces
  uint32_t trace_id = 0;
  // Simulated per-context state that travels with the kernel stack.
  uint64_t fs_base = 0;
  bool in_user = false;
  void* user = nullptr;  // the simulated user thread running on this fiber, if any
};

// Stacks are recycled: a schedule creates and discards fibers by the dozen.
class StackPool {
 public:
  explicit StackPool(size_t stack_size);
  ~StackPool();
  void* take();
  void give(void* stack);
  size_t stack_size() const { return m_stack_size; }

 private:
  size_t m_stack_size;
  std::vector<void*> m_free;
  std::vector<void*> m_all;
};

// Prepares `fiber` to start running body(arg) on its stack at the first switch to it.
void fiber_prepare(Fiber& fiber);
// Switches from the running fiber `from` to `to`. Returns when something switches back to
// `from`.
void fiber_switch(Fiber& from, Fiber& to);
// A fiber that will never run again: tell AddressSanitizer its stack is free.
void fiber_forget_stack(void* stack, size_t size);

}  // namespace sim
