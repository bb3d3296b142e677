// Prints a greeting and exits 0: the smallest test that PID 1 runs and talks to the console.
#include <stdio.h>

int main(void) {
  printf("hello from tandem\n");
  return 0;
}
