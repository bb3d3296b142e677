// syscall_seq: a program of up to kMaxOps system calls over every implemented syscall (and a
// few unimplemented numbers), split over 1-4 threads on 1-4 simulated CPUs, with a resource
// table in the spirit of syzkaller: futex words, data pointers, paths, file descriptors,
// timeouts, thread slots and the results of earlier calls (fds, mapping addresses, pids) feed
// later arguments. Arguments are hostile now and then (bad, unaligned and kernel pointers, huge
// and negative values).
//
// The syscalls with a template below get typed arguments; every other number in the kernel's
// table (tandem::syscall_name, read at start-up) is reachable through the generic op, so a
// syscall added to core/syscalls/table.h is fuzzed from the next build on.
//
// The input is decoded on the host into a compact program that the user threads read straight
// from host memory (g_program): copying it into simulated memory cost hundreds of scheduling
// points per input. Results of calls are kept on the host too. Every futex wait gets a
// timeout (a NULL one is replaced); a program with generic calls, which may block for good (a
// read on an empty pipe), also gets a watchdog thread that ends the process with exit_group
// after kWatchdogNs of virtual time. So a deadlock or hang is a crash, as are panics, broken
// kernel invariants, leaks and wrong answers the interpreter checks (ENOSYS, getpid, errno range).
//
// Input: [shape] [schedule] [ops...]
//   shape byte: bits 0-1 cpus-1, bits 2-3 threads-1, bit 4 random schedule (else replay)
//   schedule: random: a u64 seed; replay: a count byte, then 3 bytes per decision (fuzz.h)
//   op: a selector byte (call), a thread byte, then each argument: a kind byte and 3 payload
//       bytes (see take_arg)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/syscalls/dispatch.h"
#include "fuzz/fuzz.h"
#include "fuzz/kernel_run.h"
#include "sim/scenarios/ulib.h"

namespace {

using sim::User;

constexpr uint32_t kMaxOps = 40;
constexpr uint32_t kMaxSlices = 4;
constexpr uint32_t kMaxClones = 8;  // clones the program may make besides the initial threads
constexpr uint32_t kSlotCount = 8;
constexpr uint32_t kWords = 8;

// Data region layout (offsets from sim::kDataBase).
constexpr uint64_t kWordsLo = 0x100;      // futex words 0-3
constexpr uint64_t kWordsHi = 0x1ff8;     // futex words 4-7 (word 5 sits at the next page's start)
constexpr uint64_t kTimespecs = 0x2400;   // 16 bytes per slice, then the watchdog's
constexpr uint64_t kPaths = 0x2800;       // kPathBytes per slice
constexpr uint64_t kPathBytes = 0x200;
constexpr uint64_t kScratch = 0x4000;     // 4 KiB the kernel may write into
constexpr uint64_t kScratchSize = 0x1000;
constexpr uint64_t kSlots = 0x8000;       // ulib thread slots; slot kSlotCount is the watchdog's
// The region mapped for the program: the layout above and a little more. Not the scenarios'
// 4 MiB: a read, write or getrandom with a large length copies until the region ends, in
// 256-byte chunks, and with 4 MiB one such call took a third of all fuzzing time.
constexpr uint64_t kRegionSize = 0x20000;
static_assert(kSlots + (kSlotCount + 1) * sim::ulib::kSlotBytes <= kRegionSize);

// The watchdog's sleep: far longer than any op takes (timeouts are at most ~1 ms), and free in
// steps, as virtual time jumps ahead while every CPU is idle.
constexpr uint64_t kWatchdogNs = 50'000'000;

uint64_t base() { return sim::kDataBase; }
uint64_t word_addr(uint32_t i) {
  i %= kWords;
  return base() + (i < 4 ? kWordsLo + 4 * i : kWordsHi + 4 * (i - 4));
}

// Argument kinds: 4 bits of kind, 28 bits of payload.
enum ArgKind : uint32_t {
  kImm = 0,          // the payload
  kInteresting = 1,  // kInterestingValues[payload]
  kData = 2,         // a pointer into the scratch area, possibly unaligned
  kWord = 3,         // a futex word's address
  kWordValue = 4,    // a futex word's current value plus a small delta
  kResult = 5,       // an earlier call's result
  kTimeout = 6,      // a relative timespec of at most 1 ms, written just before the call
  kAbsTimeout = 7,   // now + at most 1 ms on the monotonic (or realtime) clock
  kSlot = 8,         // a thread slot's stack top (with the child's slice stored there)
  kTidWord = 9,      // a thread slot's tid word
  kNeg = 10,         // -payload
  kFutexOp = 11,     // an encoded FUTEX_OP: payload op:4 cmp:4 oparg:10 cmparg:10
  kFd = 12,          // a file descriptor: 0-15, or (bit 7) an earlier call's result
  kPath = 13,        // a NUL-terminated path from kPathStrings, written just before the call
  kSize = 14,        // a length: 0-4096, a page multiple, or one that overflows
  kKinds = 15,
};

constexpr const char* kPathStrings[] = {
    "/", "/dev/null", "/dev/console", "/tmp", "/tmp/fuzz", "/bin/sh", "/init", ".", "..", "",
    "/proc/self/maps", "a/../b", "//bin///sh", "/bin/sh/x", "fuzz-file",
    "/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
};
constexpr uint32_t kPathCount = sizeof(kPathStrings) / sizeof(kPathStrings[0]);

constexpr uint64_t kInterestingValues[] = {
    0,
    1,
    ~0ull,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    1ull << 63,
    0x7fffffffffffffffull,
    0xffff800000000000ull,  // kernel half
    0xffffffff80000000ull,  // kernel image
    0x1000,                 // the null page
    sim::kDataBase - 4,     // just before the data region
    sim::kDataBase + kRegionSize - 4,
    sim::kDataBase + kRegionSize - 12,  // a timespec straddling the end
    sim::kDataBase + kRegionSize,
    0x400000,               // "code": entry points
    0x00007ffffffff000ull,  // top of user space
    0x0000800000000000ull,  // first non-canonical
    1'000'000'000,
    999'999'999,
    0x100000000ull,
    0xdeadbeef,
    sim::kDataBase + 1,
    sim::kDataBase + kRegionSize - 0x10,
};
constexpr uint32_t kInterestingCount = sizeof(kInterestingValues) / sizeof(kInterestingValues[0]);

constexpr uint32_t arg(uint32_t kind, uint32_t payload) { return (kind << 28) | (payload & 0x0fffffff); }

// Pseudo-operations (not system calls): user-mode stores to futex words, a number that must be
// ENOSYS (the real number in args[0]).
constexpr uint32_t kOpStore = 1000, kOpAdd = 1001, kOpEnosys = 2000;
// memfd_create(name, flags), ftruncate to a size, and two MAP_SHARED views of the file at a page
// offset (one with the fuzzed protection, one PROT_READ|PROT_EXEC, as the Erlang JIT makes
// them): a store through a writable view must read back through the other inside the file.
// The descriptor is the result, so later generic ops read, write, truncate and map it.
constexpr uint32_t kOpMemfd = 1002;
// socketpair(AF_UNIX, STREAM/DGRAM/SEQPACKET | flags, 0, sv): the result is sv[0], and sv[1] is
// remembered as its peer (g_peer), so kOpRights can use either end.
constexpr uint32_t kOpSocketPair = 1003;
// sendmsg with 0-2 descriptors in SCM_RIGHTS, or recvmsg with a control buffer of 0, 20, 24 or
// 64 bytes (MSG_CTRUNC cases included): the first received descriptor is the result, so files
// that travelled through a socket feed later ops. The control data that comes back is checked.
constexpr uint32_t kOpRights = 1004;

// Numbers the generic op never calls: they have a template (their waits get timeouts, clone
// children need an entry point), or they would run the interpreter again in a new process or
// image (fork, vfork, execve, execveat, clone3), which it is not written for.
constexpr uint32_t kNotGeneric[] = {56, 57, 58, 59, 60, 202, 231, 322, 435};

// The implemented numbers the generic op picks from, read from the kernel's table once.
struct Implemented {
  uint32_t numbers[tandem::kSyscallCount];
  uint32_t count = 0;
  Implemented() {
    for (uint32_t nr = 0; nr < tandem::kSyscallCount; ++nr) {
      if (tandem::syscall_name(nr) == nullptr) continue;
      bool excluded = false;
      for (uint32_t x : kNotGeneric) excluded |= x == nr;
      if (!excluded) numbers[count++] = nr;
    }
  }
};
const Implemented& implemented() {
  static const Implemented table;
  return table;
}

struct Op {
  uint32_t nr = 0;
  uint32_t slice = 0;
  uint32_t args[6] = {};
};

// ---- decoding (host side) ---------------------------------------------------------------------

uint32_t take_generic(fuzz::FuzzInput& in) {
  const uint32_t kind = in.take_u8() % kKinds;
  const uint32_t payload = in.take_u8() | (in.take_u8() << 8) | (in.take_u8() << 16);
  return arg(kind, kind == kInteresting ? payload % kInterestingCount : payload);
}

// Each argument: one byte chooses typed (usually) or generic hostile (1 in 8), then payload.
uint32_t take_typed(fuzz::FuzzInput& in, uint32_t typed) {
  const uint8_t b = in.take_u8();
  if ((b & 7) == 7) return take_generic(in);
  return typed;
}

uint32_t small(fuzz::FuzzInput& in) { return in.take_u8(); }

// A generic argument with the kinds that name resources, for syscalls without a template.
uint32_t take_resource(fuzz::FuzzInput& in) {
  static constexpr uint32_t kResourceKinds[] = {kImm, kFd, kFd, kData, kPath, kSize, kResult, kInteresting, kNeg};
  const uint8_t b = in.take_u8();
  if ((b & 7) == 7) return take_generic(in);
  const uint32_t kind = kResourceKinds[(b >> 3) % (sizeof(kResourceKinds) / sizeof(kResourceKinds[0]))];
  const uint32_t payload = in.take_u8() | (in.take_u8() << 8);
  return arg(kind, kind == kInteresting ? payload % kInterestingCount : kind == kImm ? payload & 0xff : payload);
}

Op take_op(fuzz::FuzzInput& in, uint32_t slices) {
  Op op;
  const uint8_t sel = in.take_u8();
  op.slice = in.take_u8() % slices;
  auto word = [&] { return take_typed(in, arg(kWord, in.take_u8())); };
  auto data = [&] { return take_typed(in, arg(kData, in.take_u8() * 16u)); };
  switch (sel % 30) {
    case 0: op.nr = 24; break;  // sched_yield
    case 1:                     // nanosleep(req, rem)
      op.nr = 35;
      op.args[0] = take_typed(in, arg(kTimeout, small(in)));
      op.args[1] = data();
      break;
    case 2: op.nr = 39; break;   // getpid
    case 3: op.nr = 186; break;  // gettid
    case 4:                      // clone(flags, stack, ptid, ctid, tls)
    case 5:
      op.nr = 56;
      op.args[0] = take_typed(in, arg(kImm, 0));  // 0: ulib's thread flags (see resolve)
      op.args[1] = take_typed(in, arg(kSlot, small(in)));
      op.args[2] = take_typed(in, arg(kTidWord, small(in)));
      op.args[3] = take_typed(in, arg(kTidWord, small(in)));
      op.args[4] = take_typed(in, arg(kData, small(in) * 8u));
      break;
    case 6:  // exit(code)
      op.nr = 60;
      op.args[0] = take_typed(in, arg(kImm, 0));
      break;
    case 7:  // gettimeofday(tv, tz)
      op.nr = 96;
      op.args[0] = data();
      op.args[1] = data();
      break;
    case 8:  // set_tid_address(tidptr)
      op.nr = 218;
      op.args[0] = take_typed(in, arg(kTidWord, small(in)));
      break;
    case 9:  // clock_gettime(clock, tp)
    case 10:
      op.nr = 228;
      op.args[0] = take_typed(in, arg(kImm, small(in) % 12));
      op.args[1] = data();
      break;
    case 11:  // clock_getres
      op.nr = 229;
      op.args[0] = take_typed(in, arg(kImm, small(in) % 12));
      op.args[1] = data();
      break;
    case 12:  // clock_nanosleep(clock, flags, req, rem)
      op.nr = 230;
      op.args[0] = take_typed(in, arg(kImm, small(in) % 12));
      op.args[1] = take_typed(in, arg(kImm, small(in) & 1));
      op.args[2] = take_typed(in, arg(kTimeout, small(in)));
      op.args[3] = data();
      break;
    case 13:  // exit_group(code)
      op.nr = 231;
      op.args[0] = take_typed(in, arg(kImm, 0));
      break;
    case 14:  // futex wait / wait_bitset
    case 15:
    case 16: {
      op.nr = 202;
      const bool bitset = in.take_bool();
      const bool priv = in.take_bool();
      const bool rt = bitset && in.take_bool();
      op.args[0] = word();
      op.args[1] = take_typed(in, arg(kImm, (bitset ? 9 : 0) | (priv ? 128 : 0) | (rt ? 256 : 0)));
      op.args[2] = take_typed(in, arg(kWordValue, op.args[0] >> 28 == kWord ? (op.args[0] & 0xff) : small(in)));
      op.args[3] = bitset ? take_typed(in, arg(kAbsTimeout, small(in) * 2 + rt)) : take_typed(in, arg(kTimeout, small(in)));
      op.args[5] = take_typed(in, arg(kImm, in.take_u8() | 1));  // bitset
      break;
    }
    case 17:  // futex wake / wake_bitset
    case 18: {
      op.nr = 202;
      const bool bitset = in.take_bool();
      op.args[0] = word();
      op.args[1] = take_typed(in, arg(kImm, (bitset ? 10 : 1) | (in.take_bool() ? 128 : 0)));
      op.args[2] = take_typed(in, arg(kImm, small(in) % 5));
      op.args[5] = take_typed(in, arg(kImm, in.take_u8() | 1));
      break;
    }
    case 19: {  // futex requeue / cmp_requeue
      op.nr = 202;
      const bool cmp = in.take_bool();
      op.args[0] = word();
      op.args[1] = take_typed(in, arg(kImm, (cmp ? 4 : 3) | (in.take_bool() ? 128 : 0)));
      op.args[2] = take_typed(in, arg(kImm, small(in) % 3));
      op.args[3] = take_typed(in, arg(kImm, small(in) % 4));
      op.args[4] = word();
      op.args[5] = take_typed(in, arg(kWordValue, op.args[0] & 0xff));
      break;
    }
    case 20: {  // futex wake_op
      op.nr = 202;
      op.args[0] = word();
      op.args[1] = take_typed(in, arg(kImm, 5 | (in.take_bool() ? 128 : 0)));
      op.args[2] = take_typed(in, arg(kImm, small(in) % 3));
      op.args[3] = take_typed(in, arg(kImm, small(in) % 3));
      op.args[4] = word();
      // FUTEX_OP(op, oparg, cmp, cmparg): op 4 bits (8: oparg is a shift), cmp 4 bits, 12-bit args.
      op.args[5] = take_typed(in, arg(kFutexOp, (in.take_u8() % 16u) << 24 | (in.take_u8() % 8u) << 20 |
                                                    (in.take_u8() & 0x3ffu) << 10 | (in.take_u8() & 0x3ffu)));
      break;
    }
    case 21: {  // futex: anything (other commands, PI: ENOSYS)
      op.nr = 202;
      op.args[0] = word();
      op.args[1] = take_typed(in, arg(kImm, in.take_u8() | (in.take_u8() & 1) << 8));
      op.args[2] = take_generic(in);
      op.args[3] = take_typed(in, arg(kTimeout, small(in)));
      op.args[4] = word();
      op.args[5] = take_generic(in);
      break;
    }
    case 22: {  // user stores to futex words
      op.nr = in.take_bool() ? kOpAdd : kOpStore;
      op.args[0] = arg(kWord, in.take_u8());
      op.args[1] = arg(kImm, in.take_u8() % 4);
      break;
    }
    case 23: {  // a number with no handler: must be ENOSYS
      // Whether a number has a handler is the kernel's table's business (tandem::syscall_name):
      // numbers that gain one simply drop out of the ENOSYS check.
      static constexpr uint32_t kUnimplemented[] = {0, 1, 9, 13, 57, 59, 62, 200, 234, 334, 435, 511, 512, 100000};
      op.nr = kOpEnosys;  // the real number is args[0]
      op.args[0] = arg(kImm, in.pick(kUnimplemented));
      for (int i = 1; i < 6; ++i) op.args[i] = take_generic(in);
      break;
    }
    case 27: {  // memfd_create and MAP_SHARED views of it (kOpMemfd)
      op.nr = kOpMemfd;
      op.args[0] = arg(kPath, small(in));                          // the name
      op.args[1] = take_typed(in, arg(kImm, small(in) & 0x7));      // MFD_* flags
      op.args[2] = take_typed(in, arg(kImm, small(in) % 4 * 4096)); // file size
      op.args[3] = arg(kImm, small(in));                           // prot of view 1, unmap bits
      op.args[4] = arg(kImm, small(in) % 3);                       // offset in pages
      break;
    }
    case 28: {  // socketpair (kOpSocketPair)
      op.nr = kOpSocketPair;
      op.args[0] = take_typed(in, arg(kImm, small(in) % 3));        // stream, dgram, seqpacket
      op.args[1] = take_typed(in, arg(kImm, small(in) & 3));        // SOCK_NONBLOCK, SOCK_CLOEXEC
      break;
    }
    case 29: {  // sendmsg/recvmsg with SCM_RIGHTS (kOpRights)
      op.nr = kOpRights;
      op.args[0] = take_typed(in, arg(kFd, 0x80 | (small(in) % kMaxOps) << 8));  // a socketpair's result
      op.args[1] = arg(kImm, in.take_u8() | in.take_u8() << 8);     // mode bits, see run_slice
      op.args[2] = take_typed(in, arg(kFd, small(in)));
      op.args[3] = take_typed(in, arg(kFd, small(in)));
      op.args[4] = take_typed(in, arg(kSize, small(in) % 64));
      break;
    }
    default: {  // 24-26: any other implemented syscall, with resource arguments
      const Implemented& table = implemented();
      if (table.count == 0) break;  // sched_yield
      op.nr = table.numbers[in.take_u8() % table.count];
      for (uint32_t& a : op.args) a = take_resource(in);
      break;
    }
  }
  return op;
}

bool is_generic(uint32_t nr) {
  switch (nr) {
    case 24: case 35: case 39: case 56: case 60: case 96: case 186: case 202: case 218: case 228: case 229:
    case 230: case 231: case kOpStore: case kOpAdd: case kOpEnosys: case kOpMemfd:
      return false;
    default:
      return true;
  }
}

struct Program {
  uint32_t cpus = 1;
  uint32_t threads = 1;
  bool watchdog = false;
  std::vector<Op> ops;
};

// The run's program and its host-side state. One run at a time per process; user threads may be
// stopped at any point and never resumed, so nothing here owns resources.
const Program* g_program = nullptr;
int64_t g_results[kMaxOps];
int32_t g_peer[64];  // the other end of a socketpair made by kOpSocketPair, by descriptor
uint32_t g_clones = 0;   // clones made by the program's own clone ops
uint32_t g_entries = 0;  // entry-point starts: a signal handler that lands on one must not loop

// ---- interpretation (simulated user mode) ------------------------------------------------------

uint64_t g_worker_entry = 0;

uint64_t slot_stack(uint32_t i) { return sim::ulib::slot_at(base() + kSlots, i % kSlotCount).stack_top; }

// Writes a timespec for slice `slice` and returns its address.
uint64_t put_timespec(User& u, uint32_t slice, uint64_t sec, uint64_t nsec) {
  const uint64_t ts = base() + kTimespecs + 16ull * slice;
  u.store64(ts, sec);
  u.store64(ts + 8, nsec);
  return ts;
}

uint64_t resolve(User& u, uint32_t slice, uint32_t a) {
  const uint32_t kind = a >> 28, p = a & 0x0fffffff;
  switch (kind) {
    case kImm: return p;
    case kInteresting: return kInterestingValues[p % kInterestingCount];
    case kData: return base() + kScratch + p % kScratchSize;
    case kWord: return word_addr(p & 0xff);
    case kWordValue: return u.load32(word_addr(p & 0xff)) + ((p >> 8) % 3 == 2 ? 1 : 0);
    case kResult: return static_cast<uint64_t>(g_results[p % kMaxOps]);
    case kTimeout: return put_timespec(u, slice, 0, (p & 0xff) * 4000ull);  // up to ~1 ms
    case kAbsTimeout: {
      const uint64_t clock = (p & 1) ? 0 : 1;  // realtime : monotonic
      const uint64_t ts = base() + kTimespecs + 16ull * slice;
      u.syscall(sim::ulib::nr::kClockGettime, clock, ts);
      uint64_t sec = u.load64(ts), nsec = u.load64(ts + 8) + ((p >> 1) & 0xff) * 4000ull;
      if (nsec >= 1'000'000'000) sec += 1, nsec -= 1'000'000'000;
      return put_timespec(u, slice, sec, nsec);
    }
    case kSlot: {
      const uint64_t top = slot_stack(p & 0xff);
      u.store64(top, (p >> 8) % kMaxSlices);
      return top;
    }
    case kTidWord: return sim::ulib::slot_at(base() + kSlots, (p & 0xff) % kSlotCount).tid_word;
    case kNeg: return static_cast<uint64_t>(-static_cast<int64_t>(p));
    case kFutexOp:
      return static_cast<uint64_t>((p >> 24) & 0xf) << 28 | ((p >> 20) & 0xf) << 24 | ((p >> 10) & 0x3ff) << 12 | (p & 0x3ff);
    case kFd: return (p & 0x80) ? static_cast<uint64_t>(g_results[(p >> 8) % kMaxOps]) : p % 16;
    case kPath: {
      const char* path = kPathStrings[p % kPathCount];
      const uint64_t at = base() + kPaths + kPathBytes * slice;
      // Eight bytes per store, the terminating NUL included.
      for (uint64_t off = 0;; off += 8) {
        uint64_t w = 0;
        bool end = false;
        for (int b = 0; b < 8 && !end; ++b) {
          const char c = path[off + b];
          w |= static_cast<uint64_t>(static_cast<uint8_t>(c)) << (8 * b);
          end = c == 0;
        }
        u.store64(at + off, w);
        if (end) break;
      }
      return at;
    }
    case kSize: {
      // Small lengths, page multiples, and lengths that overflow: never megabytes, which the
      // kernel would copy in 256-byte chunks until the data region ends (tens of thousands of
      // scheduling points for one call, with nothing new to learn).
      static constexpr uint64_t kLarge[] = {4096, 8192, 65536, kRegionSize, 1ull << 47, 1ull << 63, ~0ull, 0x7ffff000};
      return (p & 0x8000) ? kLarge[p % 8] : p % 4097;
    }
  }
  return p;
}

uint64_t g_watchdog_entry = 0;

void run_slice(User& u, uint32_t slice) {
  const Program& program = *g_program;
  for (uint32_t i = 0; i < program.ops.size(); ++i) {
    const Op& op = program.ops[i];
    if (op.slice != slice) continue;
    const uint32_t nr = op.nr;
    uint64_t a[6];
    for (int j = 0; j < 6; ++j) a[j] = resolve(u, slice, op.args[j]);
    int64_t r = 0;
    if (nr == kOpStore) {
      u.store32(a[0], static_cast<uint32_t>(a[1]));
    } else if (nr == kOpAdd) {
      r = u.fetch_add32(a[0], static_cast<uint32_t>(a[1]));
    } else if (nr == kOpEnosys) {
      // A number that gained a handler since (read, mmap...) is the generic op's business.
      if (tandem::syscall_name(a[0]) != nullptr) continue;
      r = u.syscall(a[0], a[1], a[2], a[3], a[4], a[5]);
      if (r != -38) u.fail("syscall %llu has no handler but returned %lld", static_cast<unsigned long long>(a[0]),
                           static_cast<long long>(r));
    } else if (nr == kOpMemfd) {
      r = u.syscall(319, a[0], a[1]);
      if (r >= 0) {
        const uint64_t fd = static_cast<uint64_t>(r), size = a[2], prot = a[3] & 7, offset = a[4] * 4096;
        const uint64_t length = 2 * 4096;
        const int64_t truncated = u.syscall(77, fd, size);
        const int64_t v1 = u.syscall(9, 0, length, prot, 0x01, fd, offset);  // MAP_SHARED
        const int64_t v2 = u.syscall(9, 0, length, 0x1 | 0x4, 0x01, fd, offset);
        // Touch only inside the file (past its end is SIGBUS), and only with one thread: another
        // could guess the descriptor's number and truncate or write the file in between.
        const bool alone = g_program->threads == 1 && g_clones == 0;
        if (alone && truncated == 0 && v1 > 0 && v2 > 0 && (prot & 2) && size > offset) {
          const uint32_t value = 0x5eed0000u | i;
          u.store32(static_cast<uint64_t>(v1) + 8, value);
          if (u.load32(static_cast<uint64_t>(v2) + 8) != value)
            u.fail("memfd views disagree: wrote %#x through one, read %#x through the other", value,
                   u.load32(static_cast<uint64_t>(v2) + 8));
        }
        if (v1 > 0 && (a[3] & 8)) u.syscall(11, static_cast<uint64_t>(v1), length);
        if (v2 > 0 && (a[3] & 16)) u.syscall(11, static_cast<uint64_t>(v2), length);
      }
    } else if (nr == kOpSocketPair) {
      static constexpr uint64_t kTypes[] = {1, 2, 5};
      const uint64_t sv = base() + kScratch + 0xe00 + 0x40 * slice;
      const uint64_t flags = ((a[1] & 1) ? 04000 : 0) | ((a[1] & 2) ? 02000000 : 0);
      r = u.syscall(53, 1, kTypes[a[0] % 3] | flags, 0, sv);
      if (r == 0) {
        const uint32_t f0 = u.load32(sv), f1 = u.load32(sv + 4);
        if (f0 < 64) g_peer[f0] = static_cast<int32_t>(f1);
        if (f1 < 64) g_peer[f1] = static_cast<int32_t>(f0);
        r = f0;
      }
    } else if (nr == kOpRights) {
      // mode: bit 0 recv (else send), bit 1 the peer end, bits 2-3 descriptors sent (0-2) or
      // control room (0, 20, 24, 64), bits 4-7 MSG_DONTWAIT, MSG_PEEK, MSG_CMSG_CLOEXEC,
      // MSG_WAITALL / MSG_NOSIGNAL.
      const uint64_t mode = a[1];
      int64_t sock = static_cast<int64_t>(a[0]);
      if ((mode & 2) && sock >= 0 && sock < 64 && g_peer[sock] >= 0) sock = g_peer[sock];
      const uint64_t area = base() + kScratch + 0xc00 + 0x100 * (slice % 2);  // msghdr, iovec, control
      const uint64_t msg = area, iov = area + 0x40, ctl = area + 0x60, data = base() + kScratch;
      const uint64_t len = a[4] % 256;
      u.store64(iov, data);
      u.store64(iov + 8, len);
      u.store64(msg, 0);
      u.store64(msg + 8, 0);
      u.store64(msg + 16, iov);
      u.store64(msg + 24, 1);
      u.store64(msg + 48, 0);
      const uint32_t k = (mode >> 2) & 3;
      if ((mode & 1) == 0) {
        const uint32_t n = k % 3;
        u.store64(msg + 32, n == 0 ? 0 : ctl);
        u.store64(msg + 40, n == 0 ? 0 : 16 + 8 * ((n + 1) / 2));
        u.store64(ctl, 16 + 4 * n);
        u.store32(ctl + 8, 1);   // SOL_SOCKET
        u.store32(ctl + 12, 1);  // SCM_RIGHTS
        u.store32(ctl + 16, static_cast<uint32_t>(a[2]));
        u.store32(ctl + 20, static_cast<uint32_t>(a[3]));
        const uint64_t flags = ((mode & 0x10) ? 0x40 : 0) | ((mode & 0x80) ? 0x4000 : 0);
        r = u.syscall(46, static_cast<uint64_t>(sock), msg, flags);
      } else {
        static constexpr uint64_t kRoom[] = {0, 20, 24, 64};
        const uint64_t room = kRoom[k];
        u.store64(msg + 32, room == 0 ? 0 : ctl);
        u.store64(msg + 40, room);
        u.store64(ctl, 0);
        const uint64_t flags = ((mode & 0x10) ? 0x40 : 0) | ((mode & 0x20) ? 0x2 : 0) |
                               ((mode & 0x40) ? 0x40000000 : 0) | ((mode & 0x80) ? 0x100 : 0);
        r = u.syscall(47, static_cast<uint64_t>(sock), msg, flags);
        // What came back must be well formed (checked when no other thread shares the memory).
        const bool alone = g_program->threads == 1 && g_clones == 0;
        if (r >= 0 && alone) {
          const uint64_t used = u.load64(msg + 40);
          if (used > room) u.fail("recvmsg: msg_controllen %llu above the room %llu", static_cast<unsigned long long>(used),
                                  static_cast<unsigned long long>(room));
          if (used >= 16) {
            const uint64_t clen = u.load64(ctl);
            if (u.load32(ctl + 8) != 1 || u.load32(ctl + 12) != 1 || clen < 20 || (clen - 16) % 4 != 0 || clen > used)
              u.fail("recvmsg: a malformed SCM_RIGHTS header (len %llu, used %llu)", static_cast<unsigned long long>(clen),
                     static_cast<unsigned long long>(used));
            r = u.load32(ctl + 16);  // the first received descriptor feeds later ops
          }
        }
      }
    } else if (nr == 56) {
      if (g_clones++ >= kMaxClones) continue;
      const uint64_t flags = a[0] == 0 ? sim::ulib::kThreadFlags : a[0];
      // Without CLONE_THREAD, clone is fork (core/proc/fork.cpp): the child would run the
      // interpreter in a second process, which it is not written for (as fork and vfork above).
      if ((flags & 0x10000) == 0) continue;
      r = u.syscall_at(g_worker_entry, 56, flags, a[1], a[2], a[3], a[4]);
    } else {
      if (nr == 202) {
        // Every wait gets a timeout: nobody may block forever on a word no one wakes.
        const uint32_t cmd = a[1] & 0x7f;
        if ((cmd == 0 || cmd == 9) && a[3] == 0) a[3] = put_timespec(u, slice, 0, 100'000);
      }
      r = u.syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (nr == 39 && r != 1) u.fail("getpid returned %lld in PID 1", static_cast<long long>(r));
      if (nr == 186 && r <= 0) u.fail("gettid returned %lld", static_cast<long long>(r));
    }
    if (r < 0 && r < -4095) u.fail("syscall %u returned %lld, not a result or -errno", nr, static_cast<long long>(r));
    g_results[i] = r;
  }
}

bool entered_too_often() { return ++g_entries > kMaxSlices + kMaxClones + 2; }

void worker(User& u) {
  if (entered_too_often()) return;
  const uint64_t rsp = u.start().rsp;
  uint32_t slice = 0;
  if (rsp >= base() + kSlots && rsp + 8 <= base() + kSlots + kSlotCount * sim::ulib::kSlotBytes && rsp % 8 == 0)
    slice = static_cast<uint32_t>(u.load64(rsp) % kMaxSlices);
  run_slice(u, slice);
}

// Ends the process after kWatchdogNs whatever the other threads are blocked in.
void watchdog(User& u) {
  if (entered_too_often()) return;
  const uint64_t ts = put_timespec(u, kMaxSlices, 0, kWatchdogNs);
  for (int i = 0; i < 4; ++i) {
    if (u.syscall(sim::ulib::nr::kNanosleep, ts, 0) == 0) break;  // else EINTR: sleep again
  }
  sim::ulib::exit_group(u, 0);
}

void main_thread(User& u) {
  if (entered_too_often()) return;
  const Program& p = *g_program;
  if (p.watchdog) sim::ulib::spawn(u, g_watchdog_entry, 0, sim::ulib::slot_at(base() + kSlots, kSlotCount));
  // A spawn may fail (a generic call cannot have run yet, but the thread table may be small):
  // the slice then simply does not run.
  for (uint32_t t = 1; t < p.threads; ++t) sim::ulib::spawn(u, g_worker_entry, t, sim::ulib::slot_at(base() + kSlots, t));
  run_slice(u, 0);
}

Program decode(const uint8_t* data, size_t size, std::vector<sim::Decision>& decisions, fuzz::KernelRun& spec) {
  fuzz::FuzzInput in(data, size);
  Program p;
  const uint8_t shape = in.take_u8();
  p.cpus = 1 + (shape & 3);
  p.threads = 1 + ((shape >> 2) & 3);
  spec.cpus = p.cpus;
  if (shape & 0x10) {
    spec.strategy.kind = sim::StrategyKind::Random;
    spec.seed = in.take_u64();
  } else {
    fuzz::take_decisions(in, spec.cpus, spec.max_steps, spec.strategy, decisions, in.take_u8() % 16);
  }
  while (!in.empty() && p.ops.size() < kMaxOps) {
    p.ops.push_back(take_op(in, p.threads));
    p.watchdog |= is_generic(p.ops.back().nr);
  }
  return p;
}

// TANDEM_FUZZ_PRINT=1 prints each decoded program (to understand a crash's input).
void print_program(const Program& p, const fuzz::KernelRun& run) {
  std::fprintf(stderr, "program: %u cpus, %u threads, %s schedule, watchdog %s, %zu ops\n", p.cpus, p.threads,
               run.strategy.kind == sim::StrategyKind::Random ? "random" : "replay", p.watchdog ? "yes" : "no",
               p.ops.size());
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const Op& op = p.ops[i];
    const char* name = op.nr == kOpStore ? "store" : op.nr == kOpAdd ? "add" : op.nr == kOpEnosys ? "enosys" : op.nr == kOpMemfd ? "memfd" : op.nr == kOpSocketPair ? "socketpair-op" : op.nr == kOpRights ? "scm-rights"
                                                                    : tandem::syscall_name(op.nr);
    std::fprintf(stderr, "  %2zu t%u %-16s", i, op.slice, name != nullptr ? name : "?");
    for (uint32_t a : op.args) std::fprintf(stderr, " %u:%x", a >> 28, a & 0x0fffffff);
    std::fprintf(stderr, "\n");
  }
}

uint64_t g_main_entry = 0;

struct Registration {
  Registration() {
    g_worker_entry = sim::register_entry("fuzz-syscall-seq.worker", worker);
    g_watchdog_entry = sim::register_entry("fuzz-syscall-seq.watchdog", watchdog);
    g_main_entry = sim::register_entry("fuzz-syscall-seq.main", main_thread);
  }
} g_registration;

// Files stay under 16 MiB (RLIMIT_FSIZE, SIGXFSZ ignored: growing one further is EFBIG). A length
// may be any value the input names, a pointer too, and moving a quarter-gigabyte sparse memfd to
// the console is legitimate work (8 scheduling points a page) that the step budget would call
// a hang. A generic prlimit64 can still raise the limit again.
constexpr uint64_t kFileSizeLimit = 16ull << 20;

void init(tandem::Kernel& kernel, void*) {
  fuzz::start_pid1(kernel, g_main_entry, g_program->threads, 1, kRegionSize, kFileSizeLimit);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::KernelRun run;
  // Before decode: the schedule's fair tail runs up to it. The watchdog thread ends the process
  // after kWatchdogNs, but processes the program forks are not its threads: they run their
  // slices to the end, up to about a second of virtual time, which is over 500,000 steps when
  // every CPU is busy (fuzz/regress/syscall_seq/forked-children-busy-one-second).
  run.max_steps = 2'000'000;
  static std::vector<sim::Decision> decisions;  // reused: its fair tail has thousands of entries
  const Program program = decode(data, size, decisions, run);
  run.init = &init;
  static const bool print = std::getenv("TANDEM_FUZZ_PRINT") != nullptr;
  if (print) print_program(program, run);
  g_program = &program;
  for (int64_t& r : g_results) r = 0;
  for (int32_t& p : g_peer) p = -1;
  g_clones = 0;
  g_entries = 0;
  if (print) {
    if (const char* steps = std::getenv("TANDEM_FUZZ_MAX_STEPS")) run.max_steps = std::strtoull(steps, nullptr, 0);
  }
  const sim::RunResult result = fuzz::run_kernel(run);
  if (print)
    std::fprintf(stderr, "outcome %s after %llu steps, %llu ns\n", sim::outcome_name(result.outcome),
                 static_cast<unsigned long long>(result.steps), static_cast<unsigned long long>(result.virtual_ns));
  fuzz::check(result, fuzz::Accept::FinishedOrExitStatus);
  g_program = nullptr;
  return 0;
}
