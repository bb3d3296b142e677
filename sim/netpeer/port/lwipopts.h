/* sim/netpeer/port/lwipopts.h: the simulated network peer's lwIP configuration (a second,
 * independent copy of lwIP's core in the simulator process; see sim/netpeer/peer.h for how it
 * coexists with the kernel's). One Ethernet interface, IPv4, TCP and ARP, NO_SYS and the raw API,
 * checksums generated and checked in software (the wire corrupts frames). Sized for a few dozen
 * client connections, nothing like the kernel's 1,024 sockets. */
#ifndef TANDEM_NETPEER_LWIPOPTS_H
#define TANDEM_NETPEER_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_TIMERS 1
#define LWIP_CALLBACK_API 1

#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_FORWARD 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define ARP_TABLE_SIZE 4
#define ARP_QUEUEING 1
#define ETH_PAD_SIZE 0
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_SINGLE_NETIF 1
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define SO_REUSE 1
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1

#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_UDP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_ICMP 1
#define LWIP_CHECKSUM_ON_COPY 0

#define TCP_MSS 1460
#define TCP_WND (16 * TCP_MSS)
#define TCP_SND_BUF (16 * TCP_MSS)
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_TIMESTAMPS 0
#define LWIP_WND_SCALE 0

#define MEMP_NUM_TCP_PCB 80
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_UDP_PCB 4
#define MEMP_NUM_TCP_SEG 2048
#define MEMP_NUM_PBUF 256
#define MEMP_NUM_REASSDATA 8
#define IP_REASS_MAX_PBUFS 32
#define MEMP_NUM_FRAG_PBUF 32
#define MEMP_NUM_ARP_QUEUE 64
#define PBUF_POOL_SIZE 512
#define PBUF_POOL_BUFSIZE 1536
#define MEM_SIZE (2 * 1024 * 1024)
#define MEM_ALIGNMENT 8
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0

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

#endif /* TANDEM_NETPEER_LWIPOPTS_H */
