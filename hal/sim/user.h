// Simulated user mode. A user thread is a register frame in a simulated address space; its
// instruction pointer names one of the C++ entry points registered here, which runs on the
// thread's own fiber. User code reaches shared memory only through the helpers below, each a
// scheduling point that goes through the software MMU, and the kernel only through syscall(),
// which takes the same path as the SYSCALL instruction on hardware.
//
// A user thread can be stopped at any scheduling point and never resumed (exit_group, a fatal
// fault, the end of a run), so entry points must not keep host resources (heap memory, open
// files) in local variables: keep their state in simulated user memory.
#pragma once

#include <hal.h>

#include <cstdint>

namespace sim {

class User;
// Runs the entry point that frame.rip names, on the calling fiber, in user mode.
[[noreturn]] void run_user_entry(const hal::UserFrame& frame);

class User {
 public:
  explicit User(const hal::UserFrame& frame) : m_frame(frame), m_home(frame.rip) {}
  User(const User&) = delete;
  User& operator=(const User&) = delete;

  // The registers the thread started with (rsp, rdi... as the creator set them).
  const hal::UserFrame& start() const { return m_start; }

  int64_t syscall(uint64_t number, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                  uint64_t a4 = 0, uint64_t a5 = 0);
  // A system call made "from" instruction pointer `ip`: a thread created by it (clone) starts
  // there, as a child on hardware returns from clone at the caller's next instruction.
  int64_t syscall_at(uint64_t ip, uint64_t number, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                     uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0);

  uint32_t load32(uint64_t address);
  void store32(uint64_t address, uint32_t value);
  uint64_t load64(uint64_t address);
  void store64(uint64_t address, uint64_t value);
  // Atomic read-modify-write operations on a user word.
  bool cas32(uint64_t address, uint32_t& expected, uint32_t desired);
  uint32_t exchange32(uint64_t address, uint32_t value);
  uint32_t fetch_add32(uint64_t address, uint32_t delta);

  // The thread's FS base register (its TLS pointer).
  uint64_t fs_base();

  // A spin-wait hint (x86 `pause`): a scheduling point at which a priority-based strategy lets
  // other CPUs run, so a user-space spin loop cannot starve the CPU it waits for.
  void relax();

  // A scenario check failed: the run fails with this message.
  [[noreturn]] void fail(const char* format, ...) __attribute__((format(printf, 2, 3)));

  hal::UserFrame& frame() { return m_frame; }

 private:
  friend void run_user_entry(const hal::UserFrame& frame);
  void* access(uint64_t address, uint32_t size, bool write);
  // Signal delivery points the frame at a handler (or, for a restarted system call, two bytes
  // before the SYSCALL): runs handlers and restarts until the frame is back at `expected`.
  void settle(uint64_t expected, bool in_syscall);

  hal::UserFrame m_frame;
  hal::UserFrame m_start{};
  uint64_t m_home;  // the instruction pointer while this entry runs user code
};

using UserEntry = void (*)(User& user);

// Registers an entry point and returns the instruction pointer that names it. Call at start-up
// (e.g. from a static initializer), in a fixed order.
uint64_t register_entry(const char* name, UserEntry entry);
const char* entry_name(uint64_t ip);

}  // namespace sim
