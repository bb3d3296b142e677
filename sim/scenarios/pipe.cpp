// Pipe scenarios: producer threads write fixed-size records through one pipe to a consumer
// that checks every record (its producer, its sequence number and a sample of its bytes) and the
// exact total, then sees end-of-file once the write end is closed. Records are 4 KiB, which is
// PIPE_BUF, so each write is atomic; with the default 4 threads x 10 records the 160 KiB do not
// fit the 64 KiB pipe, so writers block on a full pipe and the reader on an empty one.
//
// "pipe" reads with blocking reads; "epoll" reads a non-blocking read end and waits in
// epoll_wait whenever it is empty.
#include <cstdint>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {

namespace {

using namespace ulib;

namespace sys {
constexpr uint64_t kRead = 0, kWrite = 1, kClose = 3, kPipe2 = 293, kEpollCreate1 = 291, kEpollCtl = 233,
                   kEpollWait = 232;
}
constexpr uint64_t kONonblock = 04000;
constexpr int64_t kEagain = -11;

constexpr uint64_t kRecord = 4096;
constexpr uint32_t kMaxProducers = 64;

// Layout of the data region (from kDataBase).
constexpr uint64_t kFdsAt = 0x0;           // read fd, write fd
constexpr uint64_t kIterationsAt = 0x8;
constexpr uint64_t kNextSeqAt = 0x100;     // one word per producer: the next sequence expected
constexpr uint64_t kEventsAt = 0x800;      // epoll_event scratch
constexpr uint64_t kReadBufferAt = 0x8000;  // one record being reassembled
constexpr uint64_t kRecordsAt = 0x10000;   // one 4 KiB record buffer per producer
constexpr uint64_t kSlotsAt = 0x80000;

uint64_t at(uint64_t offset) { return kDataBase + offset; }
uint64_t pattern(uint32_t producer) { return 0x0101010101010101ull * (producer + 1); }

void producer(User& u) {
  const uint32_t id = static_cast<uint32_t>(thread_arg(u));
  const uint32_t w = u.load32(at(kFdsAt) + 4);
  const uint64_t iterations = u.load64(at(kIterationsAt));
  const uint64_t record = at(kRecordsAt) + id * kRecord;
  for (uint64_t s = 0; s < iterations; ++s) {
    const uint64_t header = (static_cast<uint64_t>(id) << 32) | s;
    u.store64(record, header);
    u.store64(record + 8, ~header);
    const int64_t n = u.syscall(sys::kWrite, w, record, kRecord);
    if (n != static_cast<int64_t>(kRecord)) u.fail("pipe: producer %u write %llu returned %lld", id,
                                                  static_cast<unsigned long long>(s), static_cast<long long>(n));
  }
}
const uint64_t kProducer = register_entry("pipe.producer", producer);

// Checks one record at `address`: a header naming a producer and its next sequence number, and
// the producer's byte pattern at sampled offsets.
void check_record(User& u, uint64_t address, uint32_t producers) {
  const uint64_t header = u.load64(address);
  if (u.load64(address + 8) != ~header) u.fail("pipe: a torn record header (%llx)", static_cast<unsigned long long>(header));
  const uint32_t id = static_cast<uint32_t>(header >> 32);
  const uint32_t seq = static_cast<uint32_t>(header);
  if (id >= producers) u.fail("pipe: a record from producer %u of %u", id, producers);
  const uint32_t expected = u.load32(at(kNextSeqAt) + 4 * id);
  if (seq != expected) u.fail("pipe: producer %u record %u arrived when %u was due", id, seq, expected);
  u.store32(at(kNextSeqAt) + 4 * id, expected + 1);
  for (uint64_t offset = 16; offset < kRecord; offset += 504) {
    const uint64_t word = u.load64(address + (offset & ~7ull));
    if (word != pattern(id)) u.fail("pipe: producer %u record %u byte %llu is wrong", id, seq, static_cast<unsigned long long>(offset));
  }
}

void run_pipe(User& u, bool use_epoll) {
  const uint32_t producers = static_cast<uint32_t>(u.start().rdi);
  const uint64_t iterations = u.start().rsi;
  u.store64(at(kIterationsAt), iterations);
  if (u.syscall(sys::kPipe2, at(kFdsAt), use_epoll ? kONonblock : 0) != 0) u.fail("pipe: pipe2 failed");
  const uint32_t r = u.load32(at(kFdsAt)), w = u.load32(at(kFdsAt) + 4);
  if (use_epoll) {
    // The write end must block: only the read end is non-blocking. pipe2 set both, so the
    // write end goes back to blocking with F_SETFL.
    if (u.syscall(72, w, 4, 0) != 0) u.fail("pipe: F_SETFL failed");
  }
  int64_t ep = -1;
  if (use_epoll) {
    ep = u.syscall(sys::kEpollCreate1, 0);
    if (ep < 0) u.fail("pipe: epoll_create1 failed with %lld", static_cast<long long>(ep));
    u.store32(at(kEventsAt), 1);  // EPOLLIN
    u.store32(at(kEventsAt) + 4, 0);  // epoll_event is packed: data is not 8-byte aligned
    u.store32(at(kEventsAt) + 8, 0);
    if (u.syscall(sys::kEpollCtl, static_cast<uint64_t>(ep), 1, r, at(kEventsAt)) != 0) u.fail("pipe: epoll_ctl failed");
  }
  for (uint32_t i = 0; i < producers; ++i) {
    u.store32(at(kNextSeqAt) + 4 * i, 0);
    const uint64_t record = at(kRecordsAt) + i * kRecord;
    for (uint64_t offset = 16; offset < kRecord; offset += 8) u.store64(record + offset, pattern(i));
  }
  for (uint32_t i = 0; i < producers; ++i) {
    const int64_t tid = spawn(u, kProducer, i, slot_at(at(kSlotsAt), i));
    if (tid < 0) u.fail("pipe: clone failed with %lld", static_cast<long long>(tid));
  }
  // Reads come in sizes that do not divide a record (1500, 2500, then the rest), so the pipe
  // is left holding partial records and the writers meet room that is not a whole record:
  // a write of PIPE_BUF bytes must still go in whole.
  const uint64_t total = producers * iterations * kRecord;
  static constexpr uint64_t kChunks[] = {1500, 2500, kRecord};
  uint64_t received = 0, fill = 0, turn = 0;
  while (received < total) {
    const uint64_t want = kChunks[turn++ % 3] < kRecord - fill ? kChunks[(turn - 1) % 3] : kRecord - fill;
    const int64_t n = u.syscall(sys::kRead, r, at(kReadBufferAt) + fill, want);
    if (use_epoll && n == kEagain) {
      const int64_t e = u.syscall(sys::kEpollWait, static_cast<uint64_t>(ep), at(kEventsAt), 1, static_cast<uint64_t>(-1));
      if (e != 1) u.fail("pipe: epoll_wait returned %lld", static_cast<long long>(e));
      continue;
    }
    if (n <= 0 || static_cast<uint64_t>(n) > want)
      u.fail("pipe: read of %llu returned %lld after %llu bytes", static_cast<unsigned long long>(want),
             static_cast<long long>(n), static_cast<unsigned long long>(received));
    fill += static_cast<uint64_t>(n);
    received += static_cast<uint64_t>(n);
    if (fill == kRecord) {
      check_record(u, at(kReadBufferAt), producers);
      fill = 0;
    }
  }
  for (uint32_t i = 0; i < producers; ++i) join(u, slot_at(at(kSlotsAt), i));
  for (uint32_t i = 0; i < producers; ++i) {
    if (u.load32(at(kNextSeqAt) + 4 * i) != iterations) u.fail("pipe: producer %u records missing", i);
  }
  if (u.syscall(sys::kClose, w) != 0) u.fail("pipe: close of the write end failed");
  const int64_t eof = u.syscall(sys::kRead, r, at(kReadBufferAt), kRecord);
  if (eof != 0) u.fail("pipe: read after the last writer closed returned %lld, not 0 (EOF)", static_cast<long long>(eof));
  u.syscall(sys::kClose, r);
  if (ep >= 0) u.syscall(sys::kClose, static_cast<uint64_t>(ep));
  exit_group(u, 0);
}

void pipe_main(User& u) { run_pipe(u, false); }
void epoll_main(User& u) { run_pipe(u, true); }

const char* validate(uint32_t threads, uint32_t iterations) {
  if (threads < 1 || threads > kMaxProducers) return "threads (producers) must be between 1 and 64";
  if (iterations < 1 || iterations > 10'000) return "iterations (records per producer) must be between 1 and 10000";
  return nullptr;
}

struct Registrar {
  Registrar() {
    register_scenario({"pipe", "producers write 4 KiB records through a pipe; the reader checks every record and EOF",
                       register_entry("pipe.main", pipe_main), validate});
    register_scenario({"epoll", "the pipe scenario with a non-blocking reader waiting in epoll_wait",
                       register_entry("epoll.main", epoll_main), validate});
  }
};
const Registrar kRegistrar;

}  // namespace

}  // namespace sim
