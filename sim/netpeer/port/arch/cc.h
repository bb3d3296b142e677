/* sim/netpeer/port/arch/cc.h: the peer's lwIP platform hooks (hosted, x86-64). The hooks are
 * implemented in C++ by sim/netpeer/peer.cpp; their names start with tnp_, which the symbol
 * renaming (sim/netpeer/netpeer.cmake) leaves alone. */
#ifndef TANDEM_NETPEER_ARCH_CC_H
#define TANDEM_NETPEER_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

#define BYTE_ORDER LITTLE_ENDIAN
#define LWIP_NO_INTTYPES_H 1
#define LWIP_NO_CTYPE_H 1
#define X8_F "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "zu"

#ifdef __cplusplus
extern "C" {
#endif
void tnp_diag(const char* format, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void tnp_assert(const char* message, const char* file, int line);
uint32_t tnp_rand(void);
#ifdef __cplusplus
}
#endif

#define LWIP_PLATFORM_DIAG(x) do { tnp_diag x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) tnp_assert((x), __FILE__, __LINE__)
#define LWIP_RAND() tnp_rand()

/* The pools and heap stay out of the state sections (lwip_init() rebuilds them). */
#define LWIP_DECLARE_MEMORY_ALIGNED(variable_name, size) \
  uint8_t variable_name[LWIP_MEM_ALIGN_BUFFER(size)] __attribute__((section(".bss.tandem_peer_memory")))

#endif /* TANDEM_NETPEER_ARCH_CC_H */
