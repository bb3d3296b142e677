# core/net/lwip/lwip.cmake: lwIP's core as a static library, built from Debian's source package
# (third_party/lwip, fetched by tools/setup.sh) with tandem's port headers from this directory.
#
#   tandem_add_lwip(TARGET_NAME FREESTANDING_ON_OFF COMPILE_OPTIONS...)
#
# The top-level CMakeLists.txt calls it once per build tree: tandem_lwip_kernel (freestanding,
# the kernel's flags, no hosted headers at all) or tandem_lwip_sim (hosted, with the tree's
# sanitizers). Only lwIP's core is built: IPv4, TCP, UDP, ICMP, ARP/Ethernet, pbufs, memory,
# netifs, timeouts. Not its sockets/netconn APIs, apps or netif drivers.
set(TANDEM_LWIP_DIR ${CMAKE_SOURCE_DIR}/third_party/lwip)
set(TANDEM_LWIP_PORT_DIR ${CMAKE_SOURCE_DIR}/core/net/lwip)

if(NOT EXISTS ${TANDEM_LWIP_DIR}/src/core/tcp.c)
  message(FATAL_ERROR
    "lwIP's source is missing: ${TANDEM_LWIP_DIR}/src/core/tcp.c does not exist.\n"
    "tandem builds lwIP 2.1.3 from Debian's source package, fetched at set-up (never committed).\n"
    "Fetch it with:\n"
    "    ./tandem setup          (or: tools/setup.sh lwip)\n"
    "which adds a deb-src entry for bookworm main if needed and runs `apt-get source lwip`\n"
    "into third_party/lwip. Then configure again.")
endif()

set(TANDEM_LWIP_INCLUDES ${TANDEM_LWIP_PORT_DIR} ${TANDEM_LWIP_DIR}/src/include)

# tcp_in.c and tcp_out.c are built from copies with tandem's fixes of three lwIP 2.1.3 bugs
# (patch_lwip.cmake explains them), written into the build tree at configure time and rewritten
# when the source or the fix changes. Every lwIP build in the tree (kernel, simulator, fuzzers,
# the simulated peer) uses them.
set(TANDEM_LWIP_PATCHED_DIR ${CMAKE_BINARY_DIR}/lwip-fixed)
set(TANDEM_LWIP_PATCHED "")
foreach(which tcp_in tcp_out)
  set(in ${TANDEM_LWIP_DIR}/src/core/${which}.c)
  set(out ${TANDEM_LWIP_PATCHED_DIR}/${which}.c)
  execute_process(COMMAND ${CMAKE_COMMAND} -DWHICH=${which} -DIN=${in} -DOUT=${out}
                          -P ${TANDEM_LWIP_PORT_DIR}/patch_lwip.cmake
                  RESULT_VARIABLE patched)
  if(NOT patched EQUAL 0)
    message(FATAL_ERROR "fixing lwIP's ${which}.c failed (see above)")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${in} ${TANDEM_LWIP_PORT_DIR}/patch_lwip.cmake)
  list(APPEND TANDEM_LWIP_PATCHED ${out})
endforeach()

function(tandem_add_lwip name freestanding)
  file(GLOB core_sources ${TANDEM_LWIP_DIR}/src/core/*.c)
  list(REMOVE_ITEM core_sources ${TANDEM_LWIP_DIR}/src/core/tcp_in.c ${TANDEM_LWIP_DIR}/src/core/tcp_out.c)
  list(APPEND core_sources ${TANDEM_LWIP_PATCHED})
  file(GLOB ipv4_sources ${TANDEM_LWIP_DIR}/src/core/ipv4/*.c)
  add_library(${name} STATIC ${core_sources} ${ipv4_sources} ${TANDEM_LWIP_DIR}/src/netif/ethernet.c)
  # lwIP's headers are third-party: -isystem keeps their warnings out of tandem's builds.
  target_include_directories(${name} SYSTEM PUBLIC ${TANDEM_LWIP_INCLUDES})
  target_compile_options(${name} PRIVATE ${ARGN}
    # Every lwIP global into the sections core/net/stack.cpp restores (see lwip_sections.h).
    -include ${TANDEM_LWIP_PORT_DIR}/lwip_sections.h
    -w)
  set_target_properties(${name} PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS ON)
  if(freestanding)
    # No hosted header may leak in: clang's own freestanding headers (stddef, stdint, limits,
    # stdarg) and the few libc declarations lwIP's core includes, from freestanding/.
    target_compile_options(${name} PRIVATE -nostdlibinc)
    target_include_directories(${name} SYSTEM BEFORE PRIVATE ${TANDEM_LWIP_PORT_DIR}/freestanding)
  endif()
endfunction()
