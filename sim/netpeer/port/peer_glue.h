/* sim/netpeer/port/peer_glue.h: the C interface between the peer's renamed lwIP library and
 * sim/netpeer/peer.cpp. Every name here starts with tnp_ and survives the renaming. */
#ifndef TANDEM_NETPEER_GLUE_H
#define TANDEM_NETPEER_GLUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TNP_MAX_CONNECTIONS 64
#define TNP_MAX_POOLS 32

struct tnp_stats {
  uint32_t pool_count;
  uint32_t pool_used[TNP_MAX_POOLS];
  uint32_t timer_pool;   /* lwIP's cyclic timers hold this pool's entries for ever */
  uint32_t tcp_pcb_pool;
  uint32_t heap_used;
  uint32_t pool_errors;
  uint32_t active_pcbs;
  uint32_t time_wait_pcbs;
  uint32_t checksum_errors;
  uint32_t tcp_segments_sent;
};

/* Implemented by the library (addresses in host byte order). tnp_init runs lwip_init() and adds
 * the interface; call it only on state that was reset (peer.cpp does that). */
void tnp_init(const uint8_t mac[6], uint32_t address, uint32_t netmask, uint32_t gateway);
void tnp_input(const void* frame, size_t length);
void tnp_check_timeouts(void);
uint32_t tnp_sleeptime_ms(void);  /* 0xffffffff: no timeout */
int tnp_connect(int id, uint32_t address, uint16_t port);
long tnp_write(int id, const void* data, size_t length);  /* bytes queued, or a negative err_t */
size_t tnp_room(int id);  /* what tnp_write would take now */
int tnp_shutdown_tx(int id);
void tnp_release(int id);
int tnp_state(int id);  /* enum tcp_state, -1 when the connection has no PCB */
void tnp_get_stats(struct tnp_stats* out);
void tnp_describe(int id, char* out, size_t size);  /* the connection's PCB, for messages */

/* Implemented by sim/netpeer/peer.cpp. */
void tnp_output(const void* frame, size_t length);
uint32_t tnp_now_ms(void);
void tnp_on_connected(int id);
void tnp_on_recv(int id, const void* data, size_t length);  /* data NULL, length 0: the FIN */
void tnp_on_sent(int id, uint32_t length);
void tnp_on_error(int id, int err);

#ifdef __cplusplus
}
#endif

#endif /* TANDEM_NETPEER_GLUE_H */
