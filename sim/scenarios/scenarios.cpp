// The futex scenarios: user programs that use only system calls, each checking its own
// invariants (mutual exclusion, exact counters, progress). Layout of the data region (base in
// rdx): the first 16 KiB hold a scenario's shared words, thread slots follow.
#include <cstdint>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {

namespace {

using namespace ulib;

constexpr uint64_t kSlots = 16384;  // offset of the thread slots area; shared words before it
constexpr uint32_t kMaxScenarioThreads = 900;

// Shared words, by offset from base.
constexpr uint64_t kThreads = 0, kIterations = 8, kWord0 = 64;
uint64_t word(uint64_t base, unsigned i) { return base + kWord0 + 8ull * i; }

struct Program {
  uint64_t base;
  uint32_t threads;
  uint32_t iterations;
};

Program start_main(User& u) {
  Program p{u.start().rdx, static_cast<uint32_t>(u.start().rdi), static_cast<uint32_t>(u.start().rsi)};
  u.store64(p.base + kThreads, p.threads);
  u.store64(p.base + kIterations, p.iterations);
  return p;
}

// Spawns `count` workers at `entry` (arg: the worker's index), joins them all.
void run_workers(User& u, const Program& p, uint64_t entry, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    const int64_t tid = spawn(u, entry, i, slot_at(p.base + kSlots, i));
    if (tid < 0) u.fail("clone of worker %u failed with %lld", i, static_cast<long long>(tid));
  }
  for (uint32_t i = 0; i < count; ++i) join(u, slot_at(p.base + kSlots, i));
}

// The data region is at a fixed address (the harness maps it there), like a program's .data.
uint64_t worker_base(User&) { return kDataBase; }

const char* validate_threads(uint32_t threads, uint32_t iterations) {
  if (threads < 1 || threads > kMaxScenarioThreads) return "threads must be between 1 and 900";
  if (iterations < 1 || iterations > 1'000'000) return "iterations must be between 1 and 1000000";
  return nullptr;
}

// ------------------------------------------------------------------------------------------------
// mutex: Drepper's mutex 3 around a non-atomic increment.
// words: 0 mutex, 1 counter, 2 threads inside
// ------------------------------------------------------------------------------------------------
void mutex_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint64_t iterations = u.load64(base + kIterations);
  for (uint64_t i = 0; i < iterations; ++i) {
    mutex_lock(u, word(base, 0));
    if (u.fetch_add32(word(base, 2), 1) != 0) u.fail("mutex: two threads in the critical section");
    const uint32_t c = u.load32(word(base, 1));
    u.store32(word(base, 1), c + 1);
    u.fetch_add32(word(base, 2), static_cast<uint32_t>(-1));
    mutex_unlock(u, word(base, 0));
  }
}
const uint64_t kMutexWorker = register_entry("mutex.worker", mutex_worker);

void mutex_main(User& u) {
  const Program p = start_main(u);
  run_workers(u, p, kMutexWorker, p.threads);
  const uint32_t expected = p.threads * p.iterations;
  const uint32_t got = u.load32(word(p.base, 1));
  if (got != expected) u.fail("mutex: counter is %u, expected %u", got, expected);
  if (u.load32(word(p.base, 0)) != 0) u.fail("mutex: left locked");
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// condvar: producers and consumers over a bounded buffer, a mutex and two condition variables
// (sequence-counter condvars; the final broadcast requeues waiters onto the mutex).
// words: 0 mutex, 1 not_full seq, 2 not_empty seq, 3 count, 4 consumed items, 5 consumed sum,
//        6 producers, 7 total items
// ------------------------------------------------------------------------------------------------
constexpr uint32_t kBufferCapacity = 2;

void cond_wait(User& u, uint64_t cv, uint64_t m) {
  const uint32_t seq = u.load32(cv);
  mutex_unlock(u, m);
  futex_wait(u, cv, seq);
  mutex_lock(u, m);
}
void cond_signal(User& u, uint64_t cv) {
  u.fetch_add32(cv, 1);
  futex_wake(u, cv, 1);
}
void cond_broadcast(User& u, uint64_t cv, uint64_t m) {
  // Called with m held. Mark the mutex contended so its unlock wakes what we requeue onto it.
  const uint32_t seq = u.fetch_add32(cv, 1) + 1;
  u.exchange32(m, 2);
  futex_cmp_requeue(u, cv, 1, 0x7fffffff, m, seq);
}

void condvar_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint64_t index = thread_arg(u);
  const uint32_t producers = u.load32(word(base, 6));
  const uint32_t total = u.load32(word(base, 7));
  const uint32_t iterations = static_cast<uint32_t>(u.load64(base + kIterations));
  const uint64_t m = word(base, 0), not_full = word(base, 1), not_empty = word(base, 2), count = word(base, 3);
  if (index < producers) {
    for (uint32_t item = 1; item <= iterations; ++item) {
      mutex_lock(u, m);
      while (u.load32(count) >= kBufferCapacity) cond_wait(u, not_full, m);
      u.store32(count, u.load32(count) + 1);
      // Items are summed as they are consumed; the buffer holds only how many there are, and
      // each consumer takes the value from the matching producer sequence below.
      u.fetch_add32(word(base, 8), item);  // produced sum
      cond_signal(u, not_empty);
      mutex_unlock(u, m);
    }
    return;
  }
  for (;;) {
    mutex_lock(u, m);
    while (u.load32(count) == 0 && u.load32(word(base, 4)) < total) cond_wait(u, not_empty, m);
    if (u.load32(word(base, 4)) >= total) {
      mutex_unlock(u, m);
      return;
    }
    const uint32_t c = u.load32(count);
    if (c == 0 || c > kBufferCapacity) u.fail("condvar: buffer count %u out of range", c);
    u.store32(count, c - 1);
    const uint32_t consumed = u.load32(word(base, 4)) + 1;
    u.store32(word(base, 4), consumed);
    cond_signal(u, not_full);
    if (consumed == total) cond_broadcast(u, not_empty, m);
    mutex_unlock(u, m);
  }
}
const uint64_t kCondvarWorker = register_entry("condvar.worker", condvar_worker);

void condvar_main(User& u) {
  const Program p = start_main(u);
  const uint32_t threads = p.threads < 2 ? 2 : p.threads;
  const uint32_t producers = threads / 2;
  u.store32(word(p.base, 6), producers);
  u.store32(word(p.base, 7), producers * p.iterations);
  run_workers(u, p, kCondvarWorker, threads);
  const uint32_t consumed = u.load32(word(p.base, 4));
  if (consumed != producers * p.iterations) u.fail("condvar: consumed %u items, expected %u", consumed, producers * p.iterations);
  if (u.load32(word(p.base, 3)) != 0) u.fail("condvar: %u items left in the buffer", u.load32(word(p.base, 3)));
  const uint32_t sum = u.load32(word(p.base, 8));
  if (sum != producers * (p.iterations * (p.iterations + 1) / 2)) u.fail("condvar: produced sum %u is wrong", sum);
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// semaphore: a counting semaphore with 2 permits; at most 2 threads inside at once.
// words: 0 semaphore value, 1 inside, 2 passes
// ------------------------------------------------------------------------------------------------
constexpr uint32_t kPermits = 2;

void sem_wait(User& u, uint64_t sem) {
  for (;;) {
    uint32_t v = u.load32(sem);
    if (v > 0) {
      if (u.cas32(sem, v, v - 1)) return;
      continue;
    }
    futex_wait(u, sem, 0);
  }
}
void sem_post(User& u, uint64_t sem) {
  u.fetch_add32(sem, 1);
  futex_wake(u, sem, 1);
}

void semaphore_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint64_t iterations = u.load64(base + kIterations);
  for (uint64_t i = 0; i < iterations; ++i) {
    sem_wait(u, word(base, 0));
    const uint32_t inside = u.fetch_add32(word(base, 1), 1) + 1;
    if (inside > kPermits) u.fail("semaphore: %u threads inside, at most %u allowed", inside, kPermits);
    u.fetch_add32(word(base, 2), 1);
    u.fetch_add32(word(base, 1), static_cast<uint32_t>(-1));
    sem_post(u, word(base, 0));
  }
}
const uint64_t kSemaphoreWorker = register_entry("semaphore.worker", semaphore_worker);

void semaphore_main(User& u) {
  const Program p = start_main(u);
  u.store32(word(p.base, 0), kPermits);
  run_workers(u, p, kSemaphoreWorker, p.threads);
  const uint32_t passes = u.load32(word(p.base, 2));
  if (passes != p.threads * p.iterations) u.fail("semaphore: %u passes, expected %u", passes, p.threads * p.iterations);
  if (u.load32(word(p.base, 0)) != kPermits) u.fail("semaphore: %u permits at the end", u.load32(word(p.base, 0)));
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// barrier: a generation barrier; every round, no thread leaves before all arrived.
// words: 0 arrived, 1 generation, 2.. each thread's round
// ------------------------------------------------------------------------------------------------
void barrier_wait(User& u, uint64_t base, uint32_t threads) {
  const uint32_t generation = u.load32(word(base, 1));
  if (u.fetch_add32(word(base, 0), 1) == threads - 1) {
    u.store32(word(base, 0), 0);
    u.fetch_add32(word(base, 1), 1);
    futex_wake(u, word(base, 1), 0x7fffffff);
    return;
  }
  while (u.load32(word(base, 1)) == generation) futex_wait(u, word(base, 1), generation);
}

void barrier_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint32_t index = static_cast<uint32_t>(thread_arg(u));
  const uint32_t threads = static_cast<uint32_t>(u.load64(base + kThreads));
  const uint64_t rounds = u.load64(base + kIterations);
  for (uint32_t round = 1; round <= rounds; ++round) {
    u.store32(word(base, 2 + index), round);
    barrier_wait(u, base, threads);
    for (uint32_t other = 0; other < threads; ++other) {
      const uint32_t seen = u.load32(word(base, 2 + other));
      if (seen < round) u.fail("barrier: thread %u left round %u before thread %u arrived", index, round, other);
    }
    barrier_wait(u, base, threads);
  }
}
const uint64_t kBarrierWorker = register_entry("barrier.worker", barrier_worker);

void barrier_main(User& u) {
  const Program p = start_main(u);
  run_workers(u, p, kBarrierWorker, p.threads);
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// rwlock: readers share, writers exclude everyone; a writer updates two words that readers
// must always see equal.
// words: 0 state (bit 31 writer, low bits readers), 1 a, 2 b, 3 readers inside, 4 writers inside
// ------------------------------------------------------------------------------------------------
constexpr uint32_t kWriter = 1u << 31;

void read_lock(User& u, uint64_t state) {
  for (;;) {
    uint32_t s = u.load32(state);
    if ((s & kWriter) == 0) {
      if (u.cas32(state, s, s + 1)) return;
      continue;
    }
    futex_wait(u, state, s);
  }
}
void read_unlock(User& u, uint64_t state) {
  if (u.fetch_add32(state, static_cast<uint32_t>(-1)) == 1) futex_wake(u, state, 0x7fffffff);
}
void write_lock(User& u, uint64_t state) {
  for (;;) {
    uint32_t expected = 0;
    if (u.cas32(state, expected, kWriter)) return;
    futex_wait(u, state, expected);
  }
}
void write_unlock(User& u, uint64_t state) {
  u.store32(state, 0);
  futex_wake(u, state, 0x7fffffff);
}

void rwlock_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint32_t index = static_cast<uint32_t>(thread_arg(u));
  const uint64_t iterations = u.load64(base + kIterations);
  const uint64_t state = word(base, 0);
  const bool writer = index % 3 == 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    if (writer) {
      write_lock(u, state);
      if (u.fetch_add32(word(base, 4), 1) != 0 || u.load32(word(base, 3)) != 0)
        u.fail("rwlock: a writer is not alone");
      u.store32(word(base, 1), u.load32(word(base, 1)) + 1);
      u.store32(word(base, 2), u.load32(word(base, 2)) + 1);
      u.fetch_add32(word(base, 4), static_cast<uint32_t>(-1));
      write_unlock(u, state);
    } else {
      read_lock(u, state);
      u.fetch_add32(word(base, 3), 1);
      if (u.load32(word(base, 4)) != 0) u.fail("rwlock: a reader runs with a writer");
      const uint32_t a = u.load32(word(base, 1));
      const uint32_t b = u.load32(word(base, 2));
      if (a != b) u.fail("rwlock: a reader saw a half-done write (%u, %u)", a, b);
      u.fetch_add32(word(base, 3), static_cast<uint32_t>(-1));
      read_unlock(u, state);
    }
  }
}
const uint64_t kRwlockWorker = register_entry("rwlock.worker", rwlock_worker);

void rwlock_main(User& u) {
  const Program p = start_main(u);
  run_workers(u, p, kRwlockWorker, p.threads);
  const uint32_t writers = (p.threads + 2) / 3;
  if (u.load32(word(p.base, 1)) != writers * p.iterations)
    u.fail("rwlock: %u writes, expected %u", u.load32(word(p.base, 1)), writers * p.iterations);
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// join: threads exit at once or after some work; the main thread joins each one through the
// CLONE_CHILD_CLEARTID wake and checks that it really finished.
// words: 0.. each thread's done flag
// ------------------------------------------------------------------------------------------------
void join_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint32_t index = static_cast<uint32_t>(thread_arg(u));
  const uint64_t iterations = u.load64(base + kIterations);
  if (index % 2 == 1) {
    for (uint64_t i = 0; i < iterations; ++i) yield(u);
  }
  u.store32(word(base, index), 1);
  if (index % 3 == 2) u.syscall(nr::kExit, 0);  // explicit exit; the others return
}
const uint64_t kJoinWorker = register_entry("join.worker", join_worker);

void join_main(User& u) {
  const Program p = start_main(u);
  for (uint32_t i = 0; i < p.threads; ++i) {
    const int64_t tid = spawn(u, kJoinWorker, i, slot_at(p.base + kSlots, i));
    if (tid < 0) u.fail("join: clone failed with %lld", static_cast<long long>(tid));
  }
  for (uint32_t i = 0; i < p.threads; ++i) {
    join(u, slot_at(p.base + kSlots, i));
    if (u.load32(word(p.base, i)) != 1) u.fail("join: thread %u joined before it finished", i);
  }
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// tls: every thread's FS base (its TLS pointer) survives context switches, migrations,
// preemption and blocking, and arch_prctl(ARCH_SET_FS) changes only the caller's. The seed's
// kernel shared one FS base between the Erlang runtime's schedulers until it saved it per thread.
// words: 0 a mutex the threads contend on
// ------------------------------------------------------------------------------------------------
constexpr uint64_t kArchPrctl = 158, kArchSetFs = 0x1002, kArchGetFs = 0x1003;

void check_fs(User& u, uint64_t want, uint32_t index, const char* where) {
  const uint64_t fs = u.fs_base();
  if (fs != want) {
    u.fail("tls: thread %u sees FS base 0x%llx %s, expected 0x%llx", index, static_cast<unsigned long long>(fs), where,
           static_cast<unsigned long long>(want));
  }
  // The kernel's view (ARCH_GET_FS) agrees with the register.
  const uint64_t scratch = slot_at(kDataBase + kSlots, index).tls + 256;
  if (u.syscall(kArchPrctl, kArchGetFs, scratch) != 0) u.fail("tls: ARCH_GET_FS failed");
  if (u.load64(scratch) != want) u.fail("tls: thread %u: ARCH_GET_FS says 0x%llx %s", index,
                                         static_cast<unsigned long long>(u.load64(scratch)), where);
}

void tls_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint32_t index = static_cast<uint32_t>(thread_arg(u));
  const uint64_t iterations = u.load64(base + kIterations);
  const uint64_t tls = slot_at(base + kSlots, index).tls;
  for (uint64_t i = 0; i < iterations; ++i) {
    check_fs(u, tls, index, "after start or a lock");
    if (u.load64(u.fs_base()) != tls) u.fail("tls: thread %u's TLS block does not point to itself", index);
    yield(u);
    check_fs(u, tls, index, "after sched_yield");
    if (i % 2 == 1) {
      // Move the TLS pointer and back, as a runtime that switches TLS blocks would.
      if (u.syscall(kArchPrctl, kArchSetFs, tls + 64) != 0) u.fail("tls: ARCH_SET_FS failed");
      yield(u);
      check_fs(u, tls + 64, index, "after ARCH_SET_FS and a yield");
      if (u.syscall(kArchPrctl, kArchSetFs, tls) != 0) u.fail("tls: ARCH_SET_FS failed");
    }
    mutex_lock(u, word(base, 0));
    check_fs(u, tls, index, "inside the lock");
    mutex_unlock(u, word(base, 0));
  }
}
const uint64_t kTlsWorker = register_entry("tls.worker", tls_worker);

void tls_main(User& u) {
  const Program p = start_main(u);
  run_workers(u, p, kTlsWorker, p.threads);
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// munmap: readers on other CPUs have a page in their TLBs while the main thread unmaps it and
// maps a fresh one at the same address; afterwards every reader must see the new page. A
// kernel that does not shoot the old translation down lets them read the freed page.
// words: 0 readers that read the page, 1 remapped flag
// ------------------------------------------------------------------------------------------------
constexpr uint64_t kSysMmap = 9, kSysMunmap = 11;
constexpr uint64_t kProtRw = 3, kMapPrivateAnonymousFixed = 0x02 | 0x20 | 0x10;
// A page whose TLB slot differs from the shared words' page (the TLB is direct-mapped).
constexpr uint64_t kRemappedPage = kDataBase + (2u << 20) + 5 * 4096;

void munmap_reader(User& u) {
  const uint64_t base = worker_base(u);
  const uint32_t index = static_cast<uint32_t>(thread_arg(u));
  const uint64_t iterations = u.load64(base + kIterations);
  // Touch the page repeatedly so its translation is cached on this CPU.
  for (uint64_t i = 0; i < iterations; ++i) {
    const uint32_t v = u.load32(kRemappedPage);
    if (v != 1) u.fail("munmap: reader %u saw %u before the remap", index, v);
  }
  u.fetch_add32(word(base, 0), 1);
  // Spin (not block: blocking would switch address spaces and flush the TLB anyway).
  while (u.load32(word(base, 1)) == 0) u.relax();
  const uint32_t v = u.load32(kRemappedPage);
  if (v != 2) u.fail("munmap: reader %u read %u after the page was replaced (expected 2)", index, v);
}
const uint64_t kMunmapReader = register_entry("munmap.reader", munmap_reader);

void munmap_main(User& u) {
  const Program p = start_main(u);
  const uint32_t readers = p.threads > 1 ? p.threads - 1 : 1;
  u.store32(kRemappedPage, 1);
  for (uint32_t i = 0; i < readers; ++i) {
    if (spawn(u, kMunmapReader, i, slot_at(p.base + kSlots, i)) < 0) u.fail("munmap: clone failed");
  }
  while (u.load32(word(p.base, 0)) != readers) u.relax();
  if (u.syscall(kSysMunmap, kRemappedPage, 4096) != 0) u.fail("munmap: munmap failed");
  const int64_t at = u.syscall(kSysMmap, kRemappedPage, 4096, kProtRw, kMapPrivateAnonymousFixed,
                               static_cast<uint64_t>(-1), 0);
  if (at != static_cast<int64_t>(kRemappedPage)) u.fail("munmap: mmap MAP_FIXED returned %lld", static_cast<long long>(at));
  u.store32(kRemappedPage, 2);
  u.store32(word(p.base, 1), 1);
  for (uint32_t i = 0; i < readers; ++i) join(u, slot_at(p.base + kSlots, i));
  exit_group(u, 0);
}

// ------------------------------------------------------------------------------------------------
// exit-unmap: each thread's stack, TLS and tid word live in a mapping of their own, as glibc
// lays a thread out; the joiner unmaps it the moment CLONE_CHILD_CLEARTID's wake says the
// thread is gone, while the exiting thread may still be on its way out of the kernel on
// another CPU. Nothing of the dead thread may touch that memory afterwards (the simulated TLBs
// catch a stale access) and nothing may leak.
// words: 0 threads that ran
// ------------------------------------------------------------------------------------------------
constexpr uint64_t kThreadRegion = 4 * 4096;
constexpr uint64_t kRegionsBase = kDataBase + kDataSize + (1u << 20);  // outside the data region

void exit_unmap_worker(User& u) {
  const uint64_t base = worker_base(u);
  const uint64_t region = u.start().rsp & ~(kThreadRegion - 1);
  // Use the stack and TLS a little, as a thread does.
  for (uint64_t a = region + 1024; a < region + kThreadRegion - 128; a += 1024) u.store64(a, a);
  if (u.load64(u.fs_base()) != u.fs_base()) u.fail("exit-unmap: TLS does not point to itself");
  u.fetch_add32(word(base, 0), 1);
  if (thread_arg(u) % 2 == 0) yield(u);
}
const uint64_t kExitUnmapWorker = register_entry("exit-unmap.worker", exit_unmap_worker);

void exit_unmap_main(User& u) {
  const Program p = start_main(u);
  const uint32_t rounds = p.iterations < 3 ? p.iterations : 3;
  for (uint32_t round = 0; round < rounds; ++round) {
    for (uint32_t i = 0; i < p.threads; ++i) {
      const uint64_t region = kRegionsBase + static_cast<uint64_t>(i) * kThreadRegion;
      const int64_t at = u.syscall(kSysMmap, region, kThreadRegion, kProtRw, kMapPrivateAnonymousFixed,
                                   static_cast<uint64_t>(-1), 0);
      if (at != static_cast<int64_t>(region)) u.fail("exit-unmap: mmap returned %lld", static_cast<long long>(at));
      const ThreadSlot slot{region + kThreadRegion - 64, region + 64, region + 128};
      if (spawn(u, kExitUnmapWorker, i, slot) < 0) u.fail("exit-unmap: clone failed");
    }
    for (uint32_t i = 0; i < p.threads; ++i) {
      const uint64_t region = kRegionsBase + static_cast<uint64_t>(i) * kThreadRegion;
      join(u, ThreadSlot{region + kThreadRegion - 64, region + 64, region + 128});
      if (u.syscall(kSysMunmap, region, kThreadRegion) != 0) u.fail("exit-unmap: munmap failed");
    }
  }
  const uint32_t ran = u.load32(word(p.base, 0));
  if (ran != rounds * p.threads) u.fail("exit-unmap: %u threads ran, expected %u", ran, rounds * p.threads);
  exit_group(u, 0);
}

struct Registrar {
  Registrar() {
    register_scenario({"mutex", "Drepper's futex mutex around a non-atomic counter: mutual exclusion, exact count",
                       register_entry("mutex.main", mutex_main), validate_threads});
    register_scenario({"condvar", "producers and consumers on a bounded buffer with condition variables (requeue broadcast)",
                       register_entry("condvar.main", condvar_main), validate_threads});
    register_scenario({"semaphore", "a counting semaphore with 2 permits: never more than 2 inside, exact passes",
                       register_entry("semaphore.main", semaphore_main), validate_threads});
    register_scenario({"barrier", "a generation barrier: nobody leaves a round before everyone arrived",
                       register_entry("barrier.main", barrier_main), validate_threads});
    register_scenario({"rwlock", "a reader-writer lock: writers alone, readers never see half a write",
                       register_entry("rwlock.main", rwlock_main), validate_threads});
    register_scenario({"join", "thread join through the CLONE_CHILD_CLEARTID futex wake",
                       register_entry("join.main", join_main), validate_threads});
    register_scenario({"munmap", "readers keep a page in their TLBs while it is unmapped and replaced: they must see the new page",
                       register_entry("munmap.main", munmap_main), validate_threads});
    register_scenario({"exit-unmap", "joiners unmap a thread's stack and tid word the moment CLONE_CHILD_CLEARTID says it is gone",
                       register_entry("exit-unmap.main", exit_unmap_main), validate_threads});
    register_scenario({"tls", "each thread's FS base survives switches, migration and blocking; ARCH_SET_FS is per thread",
                       register_entry("tls.main", tls_main), validate_threads});
  }
};
const Registrar kRegistrar;

}  // namespace

// Forces this file's static registration when linked from a static library.
void link_scenarios() {}

}  // namespace sim
