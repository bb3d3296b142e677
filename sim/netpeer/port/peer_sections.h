/* sim/netpeer/port/peer_sections.h: force-included before every source of the peer's lwIP
 * library. Every global of the peer's lwIP (and of its C glue) goes into two sections of its
 * own, whose bounds the linker names (__start_tandem_peer_data...), so sim/netpeer/peer.cpp can
 * put them back to their load-time image before each run: the same reset the kernel's lwIP uses
 * (core/net/lwip/lwip_sections.h), on different sections. */
#pragma clang section bss = "tandem_peer_bss" data = "tandem_peer_data"
