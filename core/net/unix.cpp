// AF_UNIX sockets: being written (the socket layer is committed first).
#include "core/net/unix.h"

namespace tandem {

Result<Socket*> unix_create(Kernel&, i32, i32, u32) { return Errno::kEAFNOSUPPORT; }
Result<void> unix_create_pair(Kernel&, i32, i32, u32, Socket**, Socket**) { return Errno::kEAFNOSUPPORT; }

}  // namespace tandem
