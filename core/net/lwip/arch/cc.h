/* core/net/lwip/arch/cc.h: lwIP's compiler and platform hooks for tandem.
 *
 * The same header serves the freestanding kernel and the hosted simulator: nothing here depends
 * on the target. lwIP is compiled as C; its platform hooks are implemented in C++ by
 * core/net/stack.cpp (extern "C"). */
#ifndef TANDEM_LWIP_ARCH_CC_H
#define TANDEM_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

/* x86-64 (both targets). */
#define BYTE_ORDER LITTLE_ENDIAN

/* No <inttypes.h> or <ctype.h> in the kernel: lwIP's own character helpers, and the format
 * strings tandem's formatter understands (core/lib/print.h: %u %d %x with l/z modifiers). */
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
/* lwIP's diagnostics go to the kernel log; its assertions are internal invariants of lwIP (bad
 * input reaches LWIP_ERROR, which returns an error, never this), so a failed one is a kernel bug
 * and takes tandem's VERIFY path (hal::panic with the place). */
void tandem_lwip_diag(const char* format, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void tandem_lwip_assert(const char* message, const char* file, int line);
/* Randomness (initial local ports) from hal::random_bytes: seeded in the simulator. */
uint32_t tandem_lwip_rand(void);
/* LWIP_HOOK_IP4_INPUT (lwipopts.h): sees every IPv4 packet; returns 0 (lwIP goes on with it). */
struct pbuf;
struct netif;
int tandem_lwip_ip4_input_hook(struct pbuf* p, struct netif* input_netif);
#ifdef __cplusplus
}
#endif

#define LWIP_PLATFORM_DIAG(x) do { tandem_lwip_diag x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) tandem_lwip_assert((x), __FILE__, __LINE__)
#define LWIP_RAND() tandem_lwip_rand()

/* lwIP's pools and heap are large static arrays (see lwipopts.h) that lwip_init() rebuilds from
 * scratch. They go to an ordinary .bss subsection, not into the state sections that
 * core/net/stack.cpp restores when a kernel instance is thrown away (lwip_sections.h). */
#define LWIP_DECLARE_MEMORY_ALIGNED(variable_name, size) \
  uint8_t variable_name[LWIP_MEM_ALIGN_BUFFER(size)] __attribute__((section(".bss.tandem_lwip_memory")))

#endif /* TANDEM_LWIP_ARCH_CC_H */
