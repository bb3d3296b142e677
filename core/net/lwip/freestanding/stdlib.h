/* core/net/lwip/freestanding/stdlib.h: see string.h beside it. lwIP's netif_find() parses an
 * interface number with atoi (hal/real/src/rt.cpp). */
#ifndef TANDEM_LWIP_FREESTANDING_STDLIB_H
#define TANDEM_LWIP_FREESTANDING_STDLIB_H
#include <stddef.h>
int atoi(const char* s);
#endif
