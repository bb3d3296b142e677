// Reads a kernel address: the kernel kills the program with SIGSEGV (runner status 139).
#include <stdio.h>

int main(void) {
  printf("about to fault\n");
  fflush(stdout);
  volatile unsigned long* p = (volatile unsigned long*)0xffffffff80000000ul;
  return (int)*p;
}
