// Per-kernel AF_UNIX state, held by value in Kernel (no heap: nothing to leak or tear down when
// a simulated kernel is thrown away, and no global shared by simulations running side by side).
#pragma once

#include "core/lib/spinlock.h"
#include "core/lib/types.h"

namespace tandem {

struct UnixBinding;  // core/net/unix.cpp

struct UnixDomain {
  // The bound names (path sockets by their vnode, abstract names by their bytes).
  SpinLock names_lock{LockRank::Wait};
  UnixBinding* names = nullptr;  // guarded by names_lock
  u32 autobind_next = 0;         // guarded by names_lock
  // Serializes sends that carry AF_UNIX sockets through SCM_RIGHTS with the check that they
  // close no reference cycle (see unix.cpp). Taken before any endpoint lock.
  SpinLock rights_lock{LockRank::Process};
  u64 walk_epoch = 0;  // guarded by rights_lock
};

}  // namespace tandem
