/* core/net/lwip/freestanding/string.h: the kernel's build of lwIP compiles without any hosted
 * header (-nostdlibinc). These are the string functions lwIP's core calls; the kernel provides
 * them in hal/real/src/rt.cpp. The simulator's build of lwIP uses the host's <string.h>. */
#ifndef TANDEM_LWIP_FREESTANDING_STRING_H
#define TANDEM_LWIP_FREESTANDING_STRING_H
#include <stddef.h>
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
int strncmp(const char* a, const char* b, size_t n);
#endif
