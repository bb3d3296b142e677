#include "tools/explorer/bench.h"

#include <cstdio>

namespace tandem_bench {
int run(const std::vector<std::string>&, bool) {
  std::printf("bench: not written yet\n");
  return 0;
}
}  // namespace tandem_bench
