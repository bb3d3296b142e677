// 8 threads x 10,000 increments under one pthread mutex: the counter must come out exact.
#include <pthread.h>
#include <stdio.h>

enum { kThreads = 8, kIterations = 10000 };
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void* worker(void* arg) {
  (void)arg;
  for (int i = 0; i < kIterations; ++i) {
    pthread_mutex_lock(&lock);
    ++counter;
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
  return counter == kThreads * kIterations ? 0 : 1;
}
