# sim/netpeer/netpeer.cmake: the simulated network peer's own lwIP (included by the top-level
# CMakeLists.txt, host builds only, after core/net/lwip/lwip.cmake).
#
# The kernel's lwIP (tandem_lwip_sim) and the peer's are the same C sources with the same global
# names, and both live in the simulator process. So the peer's copy is built into a static library
# of its own (with the peer's lwipopts.h, arch/cc.h and C glue, sim/netpeer/port), and then every
# global symbol that library defines is renamed with a tandem_peer_ prefix by `objcopy
# --redefine-syms`, from the list `nm --defined-only --extern-only` prints at build time. References
# between the library's own objects are renamed with the definitions; references out of it (libc,
# the sanitizers' runtime, the tnp_ hooks peer.cpp defines) are not defined there and keep their
# names; the glue's tnp_ interface is excluded from the list on purpose.
set(TANDEM_NETPEER_DIR ${CMAKE_SOURCE_DIR}/sim/netpeer)

file(GLOB tandem_netpeer_core ${TANDEM_LWIP_DIR}/src/core/*.c)
# tcp_in.c and tcp_out.c with tandem's fixes, the same copies the kernel's lwIP uses
# (core/net/lwip/lwip.cmake, patch_lwip.cmake).
list(REMOVE_ITEM tandem_netpeer_core ${TANDEM_LWIP_DIR}/src/core/tcp_in.c ${TANDEM_LWIP_DIR}/src/core/tcp_out.c)
set(tandem_netpeer_patched ${TANDEM_LWIP_PATCHED})
file(GLOB tandem_netpeer_ipv4 ${TANDEM_LWIP_DIR}/src/core/ipv4/*.c)
add_library(tandem_netpeer_lwip_raw STATIC ${tandem_netpeer_core} ${tandem_netpeer_patched} ${tandem_netpeer_ipv4}
            ${TANDEM_LWIP_DIR}/src/netif/ethernet.c ${TANDEM_NETPEER_DIR}/port/peer_glue.c)
target_include_directories(tandem_netpeer_lwip_raw SYSTEM PRIVATE ${TANDEM_NETPEER_DIR}/port ${TANDEM_LWIP_DIR}/src/include)
target_compile_options(tandem_netpeer_lwip_raw PRIVATE -include ${TANDEM_NETPEER_DIR}/port/peer_sections.h -w)
set_target_properties(tandem_netpeer_lwip_raw PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS ON)

set(TANDEM_NETPEER_LIB ${CMAKE_BINARY_DIR}/sim/netpeer/libtandem_netpeer_lwip.a)
add_custom_command(
  OUTPUT ${TANDEM_NETPEER_LIB}
  COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DOBJCOPY=${CMAKE_OBJCOPY}
          -DIN=$<TARGET_FILE:tandem_netpeer_lwip_raw> -DOUT=${TANDEM_NETPEER_LIB}
          -P ${TANDEM_NETPEER_DIR}/rename_symbols.cmake
  DEPENDS tandem_netpeer_lwip_raw ${TANDEM_NETPEER_DIR}/rename_symbols.cmake
  COMMENT "Renaming the peer lwIP's symbols (tandem_peer_*)"
  VERBATIM)
add_custom_target(tandem_netpeer_lwip_renamed DEPENDS ${TANDEM_NETPEER_LIB})
add_library(tandem_netpeer_lwip INTERFACE)
target_link_libraries(tandem_netpeer_lwip INTERFACE ${TANDEM_NETPEER_LIB})
add_dependencies(tandem_netpeer_lwip tandem_netpeer_lwip_renamed)
