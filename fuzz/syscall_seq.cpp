// syscall_seq: a program of up to kMaxOps system calls over every implemented syscall (and a
// few unimplemented numbers), split over 1-4 threads on 1-4 simulated CPUs, with a resource
// table in the spirit of syzkaller: futex words, data pointers, timeouts, thread slots and the
// results of earlier calls feed later arguments. Arguments are hostile now and then (bad,
// unaligned and kernel pointers, huge and negative values).
//
// The input is decoded on the host into a compact program; the user main thread copies it
// into simulated user memory (the harness cannot pass bytes) and every thread interprets its
// own slice from there. Every futex wait gets a timeout (a NULL one is replaced), so no thread
// can legitimately block forever: a deadlock or hang is a crash, as are panics, broken kernel
// invariants, leaks and wrong answers the interpreter checks (ENOSYS, getpid, errno range).
//
// Input: [shape] [schedule] [ops...]
//   shape byte: bits 0-1 cpus-1, bits 2-3 threads-1, bit 4 random schedule (else replay)
//   schedule: random: a u64 seed; replay: a count byte, then 3 bytes per decision (fuzz.h)
//   op: a selector byte (call), a thread byte, then each argument: a kind byte and 3 payload
//       bytes (see take_arg)
#include <cstdint>
#include <vector>

#include "core/syscalls/dispatch.h"
#include "fuzz/fuzz.h"
#include "sim/scenarios/ulib.h"

namespace {

using sim::User;

constexpr uint32_t kMaxOps = 40;
constexpr uint32_t kMaxSlices = 4;
constexpr uint32_t kMaxClones = 8;  // clones the program may make besides the initial threads
constexpr uint32_t kSlotCount = 8;
constexpr uint32_t kWords = 8;

// Data region layout (offsets from sim::kDataBase).
constexpr uint64_t kHeader = 0x0;         // u32 op count, u32 clone budget used
constexpr uint64_t kWordsLo = 0x100;      // futex words 0-3
constexpr uint64_t kWordsHi = 0x1ff8;     // futex words 4-7 (word 5 sits at the next page's start)
constexpr uint64_t kResults = 0x2000;     // i64 per op
constexpr uint64_t kTimespecs = 0x2400;   // 16 bytes per slice
constexpr uint64_t kOps = 0x2800;         // kOpBytes per op
constexpr uint64_t kScratch = 0x4000;     // 4 KiB the kernel may write into
constexpr uint64_t kScratchSize = 0x1000;
constexpr uint64_t kSlots = 0x8000;       // ulib thread slots

constexpr uint64_t kOpBytes = 32;  // header u64 + 3 u64 with two 32-bit args each

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
  kKinds = 12,
};

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
    sim::kDataBase + sim::kDataSize - 4,
    sim::kDataBase + sim::kDataSize - 12,  // a timespec straddling the end
    sim::kDataBase + sim::kDataSize,
    0x400000,               // "code": entry points
    0x00007ffffffff000ull,  // top of user space
    0x0000800000000000ull,  // first non-canonical
    1'000'000'000,
    999'999'999,
    0x100000000ull,
    0xdeadbeef,
    sim::kDataBase + 1,
    sim::kDataBase + 0x3ffff0,
};
constexpr uint32_t kInterestingCount = sizeof(kInterestingValues) / sizeof(kInterestingValues[0]);

constexpr uint32_t arg(uint32_t kind, uint32_t payload) { return (kind << 28) | (payload & 0x0fffffff); }

// Pseudo-operations (not system calls): user-mode stores to futex words.
constexpr uint32_t kOpStore = 1000, kOpAdd = 1001;

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

Op take_op(fuzz::FuzzInput& in, uint32_t slices) {
  Op op;
  const uint8_t sel = in.take_u8();
  op.slice = in.take_u8() % slices;
  auto word = [&] { return take_typed(in, arg(kWord, in.take_u8())); };
  auto data = [&] { return take_typed(in, arg(kData, in.take_u8() * 16u)); };
  switch (sel % 24) {
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
      op.nr = 2000;  // marker: the real number is args[0]
      op.args[0] = arg(kImm, in.pick(kUnimplemented));
      for (int i = 1; i < 6; ++i) op.args[i] = take_generic(in);
      break;
    }
  }
  return op;
}

struct Program {
  uint32_t cpus = 1;
  uint32_t threads = 1;
  std::vector<Op> ops;
};

thread_local const Program* t_program = nullptr;

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
    case kResult: return u.load64(base() + kResults + 8ull * (p % kMaxOps));
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
  }
  return p;
}

void run_slice(User& u, uint32_t slice) {
  const uint32_t count = u.load32(base() + kHeader);
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t op_addr = base() + kOps + kOpBytes * i;
    const uint64_t head = u.load64(op_addr);
    if ((head >> 32) != slice) continue;
    const uint32_t nr = static_cast<uint32_t>(head);
    uint32_t raw[6];
    for (int j = 0; j < 3; ++j) {
      const uint64_t w = u.load64(op_addr + 8 + 8 * j);
      raw[2 * j] = static_cast<uint32_t>(w);
      raw[2 * j + 1] = static_cast<uint32_t>(w >> 32);
    }
    uint64_t a[6];
    for (int j = 0; j < 6; ++j) a[j] = resolve(u, slice, raw[j]);
    int64_t r = 0;
    if (nr == kOpStore) {
      u.store32(a[0], static_cast<uint32_t>(a[1]));
    } else if (nr == kOpAdd) {
      r = u.fetch_add32(a[0], static_cast<uint32_t>(a[1]));
    } else if (nr == 2000) {
      // A number that gained a handler since (read, mmap...) is skipped: its semantics (it may
      // block for good) are not modelled here.
      if (tandem::syscall_name(a[0]) != nullptr) continue;
      r = u.syscall(a[0], a[1], a[2], a[3], a[4], a[5]);
      if (r != -38) u.fail("syscall %llu has no handler but returned %lld", static_cast<unsigned long long>(a[0]),
                           static_cast<long long>(r));
    } else if (nr == 56) {
      if (u.fetch_add32(base() + kHeader + 4, 1) >= kMaxClones) continue;
      const uint64_t flags = a[0] == 0 ? sim::ulib::kThreadFlags : a[0];
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
    u.store64(base() + kResults + 8ull * i, static_cast<uint64_t>(r));
  }
}

void worker(User& u) {
  const uint64_t rsp = u.start().rsp;
  uint32_t slice = 0;
  if (rsp >= base() + kSlots && rsp + 8 <= base() + kSlots + kSlotCount * sim::ulib::kSlotBytes && rsp % 8 == 0)
    slice = static_cast<uint32_t>(u.load64(rsp) % kMaxSlices);
  run_slice(u, slice);
}

void main_thread(User& u) {
  const Program& p = *t_program;
  u.store32(base() + kHeader, static_cast<uint32_t>(p.ops.size()));
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const Op& op = p.ops[i];
    const uint64_t at = base() + kOps + kOpBytes * i;
    u.store64(at, op.nr | static_cast<uint64_t>(op.slice) << 32);
    for (int j = 0; j < 3; ++j) u.store64(at + 8 + 8 * j, op.args[2 * j] | static_cast<uint64_t>(op.args[2 * j + 1]) << 32);
  }
  for (uint32_t t = 1; t < p.threads; ++t) {
    const int64_t tid = sim::ulib::spawn(u, g_worker_entry, t, sim::ulib::slot_at(base() + kSlots, t));
    if (tid <= 0) u.fail("spawning thread %u failed: %lld", t, static_cast<long long>(tid));
  }
  run_slice(u, 0);
}

Program decode(const uint8_t* data, size_t size, std::vector<sim::Decision>& decisions, sim::RunSpec& spec) {
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
    fuzz::take_decisions(in, spec, decisions, in.take_u8() % 16);
  }
  while (!in.empty() && p.ops.size() < kMaxOps) p.ops.push_back(take_op(in, p.threads));
  return p;
}

struct Registration {
  Registration() {
    g_worker_entry = sim::register_entry("fuzz-syscall-seq.worker", worker);
    sim::register_scenario({"fuzz-syscall-seq", "the syscall_seq fuzz target's interpreter (needs an input)",
                            sim::register_entry("fuzz-syscall-seq.main", main_thread)});
  }
} g_registration;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sim::RunSpec spec;
  spec.scenario = "fuzz-syscall-seq";
  spec.max_steps = 200'000;  // before decode: the schedule's fair tail runs up to it
  std::vector<sim::Decision> decisions;
  const Program program = decode(data, size, decisions, spec);
  spec.threads = program.threads;
  t_program = &program;
  fuzz::run_and_check(spec, fuzz::Accept::FinishedOrExitStatus);
  t_program = nullptr;
  return 0;
}
