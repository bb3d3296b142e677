# hal/real/check-undefined.cmake: fails the build when the kernel image has undefined symbols.
#
# Run as a POST_BUILD step with -DELF=<image> -DNM=<nm>. A static kernel must resolve every
# symbol itself; an undefined one (typically a hosted library function pulled in by core/ or the
# HAL) would be a null call at run time. The image is deleted on failure so that the next build
# relinks and checks again instead of treating a bad image as up to date.
execute_process(COMMAND ${NM} -u ${ELF} OUTPUT_VARIABLE undefined RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  file(REMOVE ${ELF})
  message(FATAL_ERROR "${NM} -u ${ELF} failed")
endif()
string(STRIP "${undefined}" undefined)
if(NOT undefined STREQUAL "")
  file(REMOVE ${ELF})
  message(FATAL_ERROR "${ELF} has undefined symbols (a hosted dependency?):\n${undefined}")
endif()
