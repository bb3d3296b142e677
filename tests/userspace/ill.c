// Executes an invalid instruction (ud2): the kernel kills the program with SIGILL (runner
// status 132 = 128 + 4) and logs the fault; the machine then shuts down cleanly.
#include <stdio.h>

int main(void) {
  printf("about to execute ud2\n");
  fflush(stdout);
  __asm__ volatile("ud2");
  printf("still alive after ud2\n");
  return 0;
}
