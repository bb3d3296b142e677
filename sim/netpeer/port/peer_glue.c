/* sim/netpeer/port/peer_glue.c: the peer's side of its own lwIP, in C, compiled into the same
 * renamed library as that lwIP (sim/netpeer/netpeer.cmake). Only the tnp_ functions below (and
 * the tnp_ hooks they call, defined by sim/netpeer/peer.cpp) keep their names: everything else
 * this file and lwIP define is renamed, so the kernel's lwIP never sees it. See peer_glue.h. */
#include "peer_glue.h"

#include <stdio.h>
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

static struct netif g_netif;
static struct tcp_pcb* g_pcbs[TNP_MAX_CONNECTIONS];
static uint8_t g_frame[2048];

u32_t sys_now(void) { return tnp_now_ms(); }

static err_t link_output(struct netif* netif, struct pbuf* p) {
  (void)netif;
  if (p->tot_len > sizeof(g_frame)) return ERR_IF;
  pbuf_copy_partial(p, g_frame, p->tot_len, 0);
  tnp_output(g_frame, p->tot_len);
  return ERR_OK;
}

static err_t netif_setup(struct netif* netif) {
  netif->name[0] = 'p';
  netif->name[1] = 'r';
  netif->mtu = 1500;
  netif->hwaddr_len = 6;
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
  netif->output = etharp_output;
  netif->linkoutput = link_output;
  return ERR_OK;
}

void tnp_init(const uint8_t mac[6], uint32_t address, uint32_t netmask, uint32_t gateway) {
  lwip_init();
  ip4_addr_t a, m, g;
  ip4_addr_set_u32(&a, lwip_htonl(address));
  ip4_addr_set_u32(&m, lwip_htonl(netmask));
  ip4_addr_set_u32(&g, lwip_htonl(gateway));
  memcpy(g_netif.hwaddr, mac, 6);
  netif_add(&g_netif, &a, &m, &g, NULL, netif_setup, ethernet_input);
  netif_set_default(&g_netif);
  netif_set_up(&g_netif);
  netif_set_link_up(&g_netif);
}

void tnp_input(const void* frame, size_t length) {
  if (length == 0 || length > 0xffff) return;
  struct pbuf* p = pbuf_alloc(PBUF_RAW, (u16_t)length, PBUF_POOL);
  if (p == NULL) return; /* as a card with no buffer: dropped, TCP retransmits */
  pbuf_take(p, frame, (u16_t)length);
  if (g_netif.input(p, &g_netif) != ERR_OK) pbuf_free(p);
}

void tnp_check_timeouts(void) { sys_check_timeouts(); }
uint32_t tnp_sleeptime_ms(void) { return sys_timeouts_sleeptime(); }

static err_t on_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err) {
  const int id = (int)(intptr_t)arg;
  if (p == NULL) {
    tnp_on_recv(id, NULL, 0);
    return ERR_OK;
  }
  for (struct pbuf* q = p; q != NULL; q = q->next) tnp_on_recv(id, q->payload, q->len);
  tcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  (void)err;
  return ERR_OK;
}

static err_t on_sent(void* arg, struct tcp_pcb* pcb, u16_t length) {
  (void)pcb;
  tnp_on_sent((int)(intptr_t)arg, length);
  return ERR_OK;
}

static void on_error(void* arg, err_t err) {
  const int id = (int)(intptr_t)arg;
  g_pcbs[id] = NULL; /* lwIP has freed the PCB already */
  tnp_on_error(id, err);
}

static err_t on_connected(void* arg, struct tcp_pcb* pcb, err_t err) {
  (void)pcb;
  (void)err;
  tnp_on_connected((int)(intptr_t)arg);
  return ERR_OK;
}

int tnp_connect(int id, uint32_t address, uint16_t port) {
  if (id < 0 || id >= TNP_MAX_CONNECTIONS || g_pcbs[id] != NULL) return ERR_ARG;
  struct tcp_pcb* pcb = tcp_new();
  if (pcb == NULL) return ERR_MEM;
  tcp_arg(pcb, (void*)(intptr_t)id);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_error);
  tcp_nagle_disable(pcb);
  ip_addr_t remote;
  ip_addr_set_ip4_u32(&remote, lwip_htonl(address));
  const err_t err = tcp_connect(pcb, &remote, port, on_connected);
  if (err != ERR_OK) {
    tcp_abort(pcb);
    return err;
  }
  g_pcbs[id] = pcb;
  return ERR_OK;
}

long tnp_write(int id, const void* data, size_t length) {
  struct tcp_pcb* pcb = g_pcbs[id];
  if (pcb == NULL) return ERR_CONN;
  size_t room = tcp_sndbuf(pcb);
  if (length > room) length = room;
  if (length > 0xffff) length = 0xffff;
  if (length == 0 || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 4) return 0;
  const err_t err = tcp_write(pcb, data, (u16_t)length, TCP_WRITE_FLAG_COPY);
  if (err == ERR_MEM) return 0;
  if (err != ERR_OK) return err;
  tcp_output(pcb);
  return (long)length;
}

size_t tnp_room(int id) {
  struct tcp_pcb* pcb = g_pcbs[id];
  if (pcb == NULL || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 4) return 0;
  return tcp_sndbuf(pcb);
}

int tnp_shutdown_tx(int id) {
  struct tcp_pcb* pcb = g_pcbs[id];
  if (pcb == NULL) return ERR_CONN;
  return tcp_shutdown(pcb, 0, 1);
}

void tnp_release(int id) {
  struct tcp_pcb* pcb = g_pcbs[id];
  if (pcb == NULL) return;
  g_pcbs[id] = NULL;
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

int tnp_state(int id) {
  struct tcp_pcb* pcb = g_pcbs[id];
  return pcb == NULL ? -1 : (int)pcb->state;
}

void tnp_describe(int id, char* out, size_t size) {
  struct tcp_pcb* pcb = g_pcbs[id];
  if (pcb == NULL) {
    snprintf(out, size, "no PCB");
    return;
  }
  snprintf(out, size,
           "state %d, snd_nxt %u, lastack %u, snd_wnd %u, rcv_nxt %u, rcv_wnd %u, unsent %s, unacked %s, ooseq %s, "
           "rtime %d, nrtx %u, persist %u, flags 0x%x, cwnd %u, rto_end %u, first unsent %u+%u",
           (int)pcb->state, (unsigned)pcb->snd_nxt, (unsigned)pcb->lastack, (unsigned)pcb->snd_wnd, (unsigned)pcb->rcv_nxt,
           (unsigned)pcb->rcv_wnd, pcb->unsent ? "yes" : "no", pcb->unacked ? "yes" : "no", pcb->ooseq ? "yes" : "no",
           (int)pcb->rtime, (unsigned)pcb->nrtx, (unsigned)pcb->persist_backoff, (unsigned)pcb->flags,
           (unsigned)pcb->cwnd, (unsigned)pcb->rto_end, pcb->unsent ? (unsigned)lwip_ntohl(pcb->unsent->tcphdr->seqno) : 0u,
           pcb->unsent ? (unsigned)pcb->unsent->len : 0u);
}

void tnp_get_stats(struct tnp_stats* out) {
  memset(out, 0, sizeof(*out));
  out->pool_count = MEMP_MAX < TNP_MAX_POOLS ? MEMP_MAX : TNP_MAX_POOLS;
  for (uint32_t i = 0; i < out->pool_count; ++i) {
    out->pool_used[i] = lwip_stats.memp[i]->used;
    out->pool_errors += lwip_stats.memp[i]->err;
  }
  out->timer_pool = MEMP_SYS_TIMEOUT;
  out->tcp_pcb_pool = MEMP_TCP_PCB;
  out->heap_used = lwip_stats.mem.used;
  out->pool_errors += lwip_stats.mem.err;
  for (struct tcp_pcb* pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) ++out->active_pcbs;
  for (struct tcp_pcb* pcb = tcp_tw_pcbs; pcb != NULL; pcb = pcb->next) ++out->time_wait_pcbs;
  out->checksum_errors = lwip_stats.tcp.chkerr + lwip_stats.ip.chkerr + lwip_stats.udp.chkerr;
  out->tcp_segments_sent = lwip_stats.tcp.xmit;
}
