// AF_UNIX sockets (unix(7)): socketpair with SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET, SCM_RIGHTS
// descriptor passing, and named sockets. See unix.cpp for what is implemented and what is not.
#pragma once

#include "core/net/socket.h"

namespace tandem {

// socket(AF_UNIX, type, protocol): protocol 0 or PF_UNIX (EPROTONOSUPPORT otherwise); SOCK_RAW
// is SOCK_DGRAM as on Linux; other types ESOCKTNOSUPPORT. `flags`: O_NONBLOCK or 0.
Result<Socket*> unix_create(Kernel& kernel, i32 type, i32 protocol, u32 flags);
// socketpair(AF_UNIX, ...): two sockets connected to each other.
Result<void> unix_create_pair(Kernel& kernel, i32 type, i32 protocol, u32 flags, Socket** a, Socket** b);

}  // namespace tandem
