// core/net/inet.h: AF_INET sockets (SOCK_STREAM = TCP, SOCK_DGRAM = UDP) over lwIP's raw API.
//
// Each InetSocket owns one lwIP PCB. Every access to a PCB or to the socket's queues happens
// under the stack lock (core/net/stack.h), and lwIP's callbacks for the PCB run under it too,
// so the socket's state has exactly one lock. Blocking calls sleep on the socket's wait queue
// through Socket::wait_on with the stack lock; lwIP's callbacks wake them and note a readiness
// change that NetLock passes on to poll/select/epoll once the lock is dropped.
//
// TCP: received segments stay in lwIP's pbufs, queued on the socket, and the window is opened
// (tcp_recved) only as the program reads them, so a slow reader throttles its peer. A listening
// socket keeps a real accept queue: every connection lwIP completes becomes a socket at once
// (it may receive data before accept), and counts against the listener's backlog in lwIP
// (tcp_backlog_delayed) until accept() takes it, so SYNs beyond the backlog are dropped as on
// Linux and the client retransmits. The backlog is at most 255 (lwIP's u8 counter).
//
// Limits: kMaxInetSockets sockets at once (ENFILE beyond; the file table's EMFILE comes first
// for a process with too many descriptors); lwIP's pools (core/net/lwip/lwipopts.h) are sized
// above that, and running out of them is ENOBUFS. SO_SNDBUF and SO_RCVBUF are kept and reported
// as Linux does; TCP's windows are lwIP's fixed TCP_WND/TCP_SND_BUF, and SO_RCVBUF bounds a UDP
// socket's queue. SO_LINGER with a zero timeout resets the connection at close (RST); with a
// non-zero one close does not wait (the FIN goes out in the background).
#pragma once

#include "core/net/socket.h"

namespace tandem {

// Sockets of this family that may exist at once, system-wide.
inline constexpr u32 kMaxInetSockets = 1024;

// socket(AF_INET, type, protocol): SOCK_STREAM with 0 or IPPROTO_TCP, SOCK_DGRAM with 0 or
// IPPROTO_UDP. EPROTONOSUPPORT for another protocol, ESOCKTNOSUPPORT for another type (raw
// sockets are not provided), ENFILE past kMaxInetSockets, ENOBUFS when lwIP has no PCB left.
Result<Socket*> inet_create(Kernel& kernel, i32 type, i32 protocol, u32 flags);

// AF_INET sockets that were open after the last close (for tests, when no kernel runs).
u32 inet_socket_count();

// Option names at SOL_IP and SOL_TCP.
namespace ipopt {
inline constexpr i32 kTos = 1, kTtl = 2;
}
namespace tcpopt {
inline constexpr i32 kNoDelay = 1, kMaxSeg = 2, kKeepIdle = 4, kKeepIntvl = 5, kKeepCnt = 6;
}

}  // namespace tandem
