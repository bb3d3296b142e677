// 8 threads x 10,000 increments under one pthread mutex: the counter must come out exact, and
// the threads should have run on more than one CPU (each records where it ran with getcpu).
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

enum { kThreads = 8, kIterations = 10000 };
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static unsigned long cpus_seen;  // a bit per CPU, set under the lock

static void* worker(void* arg) {
  (void)arg;
  for (int i = 0; i < kIterations; ++i) {
    pthread_mutex_lock(&lock);
    ++counter;
    const int cpu = sched_getcpu();
    if (cpu >= 0 && cpu < 64) cpus_seen |= 1ul << cpu;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

int main(void) {
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
      printf("pthread_create failed\n");
      return 1;
    }
  }
  for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
  printf("counter: %ld (expected %d)\n", counter, kThreads * kIterations);
  printf("ran on %d CPUs\n", __builtin_popcountl(cpus_seen));
  return counter == kThreads * kIterations ? 0 : 1;
}
