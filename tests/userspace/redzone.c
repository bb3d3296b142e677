// The 128 bytes below a thread's stack pointer belong to its code (the x86-64 System V red
// zone): a leaf function may keep data there without moving the stack pointer. The seed's
// kernel pushed its preemption trampoline onto the interrupted user stack and corrupted them
// (wrong md5 results). Here 16 threads on fewer CPUs, preempted by the timer, run a leaf
// function whose working set lives in the red zone, and every result must be exact.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

enum { kThreads = 16, kRounds = 1000000, kWords = 12 };

// A leaf function: no calls, so the compiler keeps `scratch` below the stack pointer (the
// volatile accesses make every value round-trip through that memory).
__attribute__((noinline)) static uint64_t mix(uint64_t seed) {
  volatile uint64_t scratch[kWords];
  for (int i = 0; i < kWords; ++i) scratch[i] = seed * (uint64_t)(2 * i + 1) + (uint64_t)i;
  uint64_t h = 1469598103934665603ull;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < kWords; ++i) {
      h = (h ^ scratch[i]) * 1099511628211ull;
      scratch[i] = h ^ (scratch[(i + 5) % kWords] >> 3);
    }
  }
  return h;
}

static uint64_t expected[kThreads];
static int failures[kThreads];

static void* worker(void* arg) {
  const int index = (int)(intptr_t)arg;
  for (int r = 0; r < kRounds; ++r) {
    // Seeds vary so the work is not hoisted; every eighth call repeats the checked one.
    const uint64_t got = mix((uint64_t)index * 1000003u + (uint64_t)(r & 7));
    if ((r & 7) == 0 && got != expected[index]) ++failures[index];
  }
  return NULL;
}

int main(void) {
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) expected[i] = mix((uint64_t)i * 1000003u);
  for (int i = 0; i < kThreads; ++i) {
    if (pthread_create(&threads[i], NULL, worker, (void*)(intptr_t)i) != 0) {
      printf("pthread_create failed\n");
      return 1;
    }
  }
  int total = 0;
  for (int i = 0; i < kThreads; ++i) {
    pthread_join(threads[i], NULL);
    total += failures[i];
  }
  printf("redzone: %d wrong results in %d checked calls\n", total, kThreads * kRounds / 8);
  return total == 0 ? 0 : 1;
}
