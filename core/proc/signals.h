// Per-process signal dispositions, recorded by rt_sigaction. Delivery comes later.
#pragma once

#include "core/lib/types.h"

namespace tandem {

inline constexpr u32 kSignalCount = 64;  // signals 1..64

// Linux's struct sigaction as the rt_sigaction system call sees it on x86-64.
struct KernelSigaction {
  u64 handler = 0;  // SIG_DFL = 0, SIG_IGN = 1, else a user function
  u64 flags = 0;
  u64 restorer = 0;
  u64 mask = 0;
};

struct SignalActions {
  KernelSigaction actions[kSignalCount];  // index: signal - 1
};

}  // namespace tandem
