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
  after.note(TraceEvent::SyscallOut, number);
  m_frame.rip = saved_ip;
  after.point(hal::Point::SyscallOut);
  return static_cast<int64_t>(m_frame.rax);
}

void* User::access(uint64_t address, uint32_t size, bool write) {
  Machine& m = machine();
  m.point(hal::Point::User);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if ((address & (size - 1)) == 0) {
      if (void* p = user_translate(address, write ? hal::kPageWrite : hal::kPageRead)) return p;
      if (attempt == 0) {
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
