/* core/net/lwip/lwipopts.h: tandem's configuration of lwIP 2.1.3 (Debian's source package,
 * fetched into third_party/lwip by tools/setup.sh; nothing of lwIP is in this repository).
 *
 * One lwIP per kernel: NO_SYS (no threads, no lwIP locking: core/net/stack.cpp serialises every
 * call under one spin lock), the raw API only (tandem's own sockets in core/net/inet.cpp sit on
 * it; lwIP's sockets and netconn APIs are off), IPv4 with TCP, UDP, ICMP and ARP, the loopback
 * interface for 127.0.0.1. Memory is static (pools and one heap), sized for at least 1,024
 * sockets and 100 parallel connections each moving 100 KiB; see the figures below.
 *
 * This header is C: lwIP's sources are C, and core/ C++ includes it through lwIP's headers. */
#ifndef TANDEM_LWIPOPTS_H
#define TANDEM_LWIPOPTS_H

/* ---- Threading and APIs ---------------------------------------------------------------- */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0  /* the stack lock (core/net/stack.h) is the only protection */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_TIMERS 1           /* sys_check_timeouts() from the kernel tick; time is sys_now() */
#define LWIP_CALLBACK_API 1

/* ---- Protocols ------------------------------------------------------------------------- */
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 0             /* QEMU user networking: 10.0.2.15/24, gateway 10.0.2.2 */
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_FORWARD 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define IP_SOF_BROADCAST 0
#define LWIP_BROADCAST_PING 0
#define ARP_TABLE_SIZE 16
#define ARP_QUEUEING 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define ETH_PAD_SIZE 0

/* 127.0.0.1: lwIP's own loopback interface (netif_init adds it). With NO_SYS, looped packets
 * wait in a queue until netif_poll_all(), which the stack calls before it drops its lock. */
#define LWIP_NETIF_LOOPBACK 1
#define LWIP_HAVE_LOOPIF 1
#define LWIP_LOOPBACK_MAX_PBUFS 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_SINGLE_NETIF 0

/* SO_REUSEADDR (ip_set_option(pcb, SOF_REUSEADDR)) and TCP keepalive tuning per socket. */
#define SO_REUSE 1
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1

/* Checksums: generated and checked in software everywhere, loopback included (the simulator
 * corrupts frames; the checksums must catch it). These are lwIP's defaults, stated here. */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_UDP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_ICMP 1
#define LWIP_CHECKSUM_ON_COPY 0

/* ---- TCP ------------------------------------------------------------------------------- */
#define TCP_MSS 1460
/* 16 full segments each way per connection (about 23 KiB): 100 connections keep 2.3 MB in flight
 * in each direction, which the heap and the pbuf pool below hold with room to spare. */
#define TCP_WND (16 * TCP_MSS)
#define TCP_SND_BUF (16 * TCP_MSS)
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_SNDLOWAT (TCP_SND_BUF / 2)
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_BYTES 0
#define TCP_OOSEQ_MAX_PBUFS 0
#define TCP_LISTEN_BACKLOG 1   /* tcp_backlog_delayed/accepted: pending connections count */
#define TCP_DEFAULT_LISTEN_BACKLOG 0xff
#define LWIP_TCP_TIMESTAMPS 0
#define LWIP_WND_SCALE 0
#define LWIP_TCP_SACK_OUT 0

/* ---- Memory ---------------------------------------------------------------------------- */
/* Sockets: 1,024 system-wide by default, each with at most one PCB, plus accepted-but-pending
 * connections of listeners and TIME_WAIT PCBs (lwIP recycles the oldest of those when the pool
 * runs dry). Exhaustion is an ordinary error (ERR_MEM -> ENOBUFS), never a crash. */
#define MEMP_NUM_TCP_PCB 2048
#define MEMP_NUM_TCP_PCB_LISTEN 1024
#define MEMP_NUM_UDP_PCB 1024
#define MEMP_NUM_TCP_SEG 8192
#define MEMP_NUM_PBUF 2048           /* PBUF_REF/ROM headers */
#define MEMP_NUM_REASSDATA 8
#define IP_REASS_MAX_PBUFS 64
#define MEMP_NUM_FRAG_PBUF 64
#define MEMP_NUM_ARP_QUEUE 64
/* Received frames (the NIC glue copies each into a pool pbuf) and TCP out-of-order data. */
#define PBUF_POOL_SIZE 2048
#define PBUF_POOL_BUFSIZE 1536
/* The heap: TCP send data (tcp_write copies) and loopback copies. 100 connections x 23 KiB
 * queued to send plus the same looped back and unread is about 4.7 MB. */
#define MEM_SIZE (12 * 1024 * 1024)
#define MEM_ALIGNMENT 8
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_USE_POOLS 0
#define MEMP_OVERFLOW_CHECK 0
#define MEM_OVERFLOW_CHECK 0
#define MEM_SANITY_CHECK 0

/* Every IPv4 packet lwIP takes in (loopback or card) passes core/net/stack.cpp's digest (a test
 * proves that a reset kernel instance replays the same traffic byte for byte). Never consumes. */
#define LWIP_HOOK_IP4_INPUT(p, inp) tandem_lwip_ip4_input_hook((p), (inp))

/* ---- Statistics (the reset test compares memp counters) -------------------------------- */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define MEM_STATS 1
#define MEMP_STATS 1
#define SYS_STATS 0
#define LINK_STATS 1
#define ETHARP_STATS 1
#define IP_STATS 1
#define IPFRAG_STATS 1
#define ICMP_STATS 1
#define UDP_STATS 1
#define TCP_STATS 1

#endif /* TANDEM_LWIPOPTS_H */
