#include "hal/sim/user.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "hal/sim/sim_hal.h"
#include "sim/cpus/machine.h"

namespace sim {

namespace {

struct EntryRecord {
  const char* name;
  UserEntry entry;
};

std::vector<EntryRecord>& registry() {
  static std::vector<EntryRecord> entries;
  return entries;
}

constexpr uint64_t kEntryBase = 0x400000;
constexpr uint64_t kEntryStride = 0x10;
constexpr uint64_t kSysExit = 60;

Machine& machine() { return *Machine::current(); }

}  // namespace

uint64_t register_entry(const char* name, UserEntry entry) {
  registry().push_back(EntryRecord{name, entry});
  return kEntryBase + (registry().size() - 1) * kEntryStride;
}

const char* entry_name(uint64_t ip) {
  if (ip < kEntryBase || (ip - kEntryBase) % kEntryStride != 0) return nullptr;
  const uint64_t index = (ip - kEntryBase) / kEntryStride;
  return index < registry().size() ? registry()[index].name : nullptr;
}

[[noreturn]] void run_user_entry(const hal::UserFrame& frame) {
  Machine& m = machine();
  const uint64_t ip = frame.rip;
  if (ip < kEntryBase || (ip - kEntryBase) % kEntryStride != 0 || (ip - kEntryBase) / kEntryStride >= registry().size()) {
    // On hardware a jump to a bad address faults; here the thread gets SIGSEGV the same way.
    User user(frame);
    Fiber* fiber = m.running_fiber();
    fiber->user = &user;
    kentry::user_fault(kentry::UserFault::Segv, ip, user.frame());
    m.fail(Outcome::Failed, "a user thread started at an address that names no entry point and survived SIGSEGV");
  }
  User user(frame);
  user.m_start = frame;
  Fiber* fiber = m.running_fiber();
  fiber->user = &user;
  fiber->in_user = true;
  m.cpu().fs_base = frame.fs_base;
  hal::irq_enable();
  registry()[(ip - kEntryBase) / kEntryStride].entry(user);
  // Returning from an entry point is a thread exit, as when a thread function returns.
  user.syscall(kSysExit, 0);
  m.fail(Outcome::Panic, "exit returned to user mode");
}

int64_t User::syscall(uint64_t number, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  return syscall_at(m_frame.rip, number, a0, a1, a2, a3, a4, a5);
}

int64_t User::syscall_at(uint64_t ip, uint64_t number, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                         uint64_t a4, uint64_t a5) {
  Machine& m = machine();
  m.point(hal::Point::SyscallIn);
  // A signal delivered at that point runs its handler first, as on hardware it would have run
  // before the SYSCALL instruction.
  if (m_frame.rip != m_home) settle(m_home, false);
  Fiber* fiber = m.running_fiber();
  const uint64_t saved_ip = m_frame.rip;
  m_frame.rip = ip;
  m_frame.rax = number;
  m_frame.rdi = a0;
  m_frame.rsi = a1;
  m_frame.rdx = a2;
  m_frame.r10 = a3;
  m_frame.r8 = a4;
  m_frame.r9 = a5;
  m_frame.fs_base = m.cpu().fs_base;
  fiber->in_user = false;
  m.note(TraceEvent::SyscallIn, number);
  kentry::syscall(m_frame);
  // The thread may be on another CPU and another fiber state now; it is the same fiber.
  Machine& after = machine();
  after.running_fiber()->in_user = true;
  settle(ip, true);
  const int64_t result = static_cast<int64_t>(m_frame.rax);
  after.note(TraceEvent::SyscallOut, number);
  m_frame.rip = saved_ip;
  after.point(hal::Point::SyscallOut);
  settle(saved_ip, false);  // a signal that arrived at the scheduling point above
  return result;
}

void User::settle(uint64_t expected, bool in_syscall) {
  constexpr uint64_t kSysRtSigreturn = 15;
  while (m_frame.rip != expected) {
    Machine& m = machine();
    Fiber* fiber = m.running_fiber();
    if (in_syscall && m_frame.rip == expected - 2) {
      // Restart (ERESTARTSYS with SA_RESTART or no handler): the kernel put the number back.
      m_frame.rip = expected;
      fiber->in_user = false;
      kentry::syscall(m_frame);
      machine().running_fiber()->in_user = true;
      continue;
    }
    const uint64_t ip = m_frame.rip;
    if (ip < kEntryBase || (ip - kEntryBase) % kEntryStride != 0 || (ip - kEntryBase) / kEntryStride >= registry().size()) {
      // A handler at an address that names no entry point: on hardware the jump faults, and so
      // it does here (SIGSEGV; a second one while the first is blocked kills the process).
      fiber->in_user = false;
      kentry::user_fault(kentry::UserFault::Segv, ip, m_frame);
      machine().running_fiber()->in_user = true;
      continue;
    }
    // The handler runs as a nested entry with the frame delivery built (rdi signal, rsi
    // siginfo, rdx ucontext, rsp the signal frame); returning from it is returning to the
    // restorer, which makes rt_sigreturn with the frame popped off (rsp + 8).
    User handler(m_frame);
    handler.m_start = m_frame;
    fiber->user = &handler;
    registry()[(ip - kEntryBase) / kEntryStride].entry(handler);
    Machine& after = machine();
    after.running_fiber()->user = this;
    m_frame.rsp = handler.m_frame.rsp + 8;
    m_frame.rax = kSysRtSigreturn;
    after.running_fiber()->in_user = false;
    after.point(hal::Point::SyscallIn);
    kentry::syscall(m_frame);
    machine().running_fiber()->in_user = true;
  }
}

void* User::access(uint64_t address, uint32_t size, bool write) {
  Machine& m = machine();
  m.point(hal::Point::User);
  // An interrupt at that point may have delivered a signal: its handler runs before the access.
  if (m_frame.rip != m_home) settle(m_home, false);
  // A resolved fault is retried as hardware retries the instruction; another CPU may take the
  // page away again in between (fork write-protects, munmap), so a few rounds are allowed.
  constexpr int kAttempts = 8;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if ((address & (size - 1)) == 0) {
      if (void* p = user_translate(address, write ? hal::kPageWrite : hal::kPageRead)) return p;
      if (attempt + 1 < kAttempts) {
        m.running_fiber()->in_user = false;
        const bool resolved = kentry::page_fault(address, write ? kentry::kFaultWrite : kentry::kFaultRead);
        machine().running_fiber()->in_user = true;
        if (resolved) continue;
      }
    }
    break;
  }
  // An access the kernel cannot resolve: SIGSEGV, as on hardware.
  m.running_fiber()->in_user = false;
  kentry::user_fault(kentry::UserFault::Segv, address, m_frame);
  machine().fail(Outcome::Failed, "a user thread survived a fatal memory fault (signals are not delivered yet)");
}

uint32_t User::load32(uint64_t address) {
  uint32_t v;
  std::memcpy(&v, access(address, 4, false), 4);
  return v;
}
void User::store32(uint64_t address, uint32_t value) { std::memcpy(access(address, 4, true), &value, 4); }
uint64_t User::load64(uint64_t address) {
  uint64_t v;
  std::memcpy(&v, access(address, 8, false), 8);
  return v;
}
void User::store64(uint64_t address, uint64_t value) { std::memcpy(access(address, 8, true), &value, 8); }

bool User::cas32(uint64_t address, uint32_t& expected, uint32_t desired) {
  auto* p = static_cast<uint32_t*>(access(address, 4, true));
  if (*p == expected) {
    *p = desired;
    return true;
  }
  expected = *p;
  return false;
}
uint32_t User::exchange32(uint64_t address, uint32_t value) {
  auto* p = static_cast<uint32_t*>(access(address, 4, true));
  const uint32_t old = *p;
  *p = value;
  return old;
}
uint32_t User::fetch_add32(uint64_t address, uint32_t delta) {
  auto* p = static_cast<uint32_t*>(access(address, 4, true));
  const uint32_t old = *p;
  *p = old + delta;
  return old;
}

void User::relax() { machine().point(hal::Point::Relax); }

uint64_t User::fs_base() {
  machine().point(hal::Point::User);
  return machine().cpu().fs_base;
}

void User::fail(const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof(buffer), format, args);
  va_end(args);
  machine().fail(Outcome::Failed, buffer);
}

}  // namespace sim
