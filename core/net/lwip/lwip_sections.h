/* core/net/lwip/lwip_sections.h: force-included (-include) before every lwIP source file by the
 * build, never by tandem's own code.
 *
 * lwIP keeps its state in C globals (PCB lists, the netif list, timeouts, tcp_ticks, the ISN,
 * port counters, statistics...), and lwip_init() resets only part of them. The simulator throws
 * kernel instances away and builds new ones in the same process, so each must find lwIP exactly
 * as a fresh process would. Rather than list every global (and miss one), all of lwIP's
 * initialised and zero-initialised variables go into two sections of their own; the linker
 * names their bounds (__start_tandem_lwip_data / __stop_..., the same for _bss), and
 * core/net/stack.cpp restores the data section's load-time image and zeroes the bss section
 * before lwip_init(). The big pools are kept out of them (arch/cc.h). */
#pragma clang section bss = "tandem_lwip_bss" data = "tandem_lwip_data"
