#pragma once

#include <string>
#include <vector>

namespace tandem_bench {
// Runs the named benchmark groups (all when empty); prints a table and writes JSON.
int run(const std::vector<std::string>& groups, bool quick);
}
