// tests/conformance/launch.c: a static PID 1 that execs its arguments, so that a dynamically
// linked program (which tandem's init loader does not start itself) runs as PID 1 after exec.
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  execv(argv[1], argv + 1);
  perror("launch: execv");
  return 127;
}
