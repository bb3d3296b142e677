# sim/netpeer/patch_tcp_in.cmake (cmake -P): copies lwIP 2.1.3's src/core/tcp_in.c (IN) to OUT with
# one fix, for the peer's copy of lwIP only (see netpeer.cmake).
#
# The bug: an out-of-order segment that has the same sequence number as a queued one but more
# data replaces it whole, without the trim to the receive window's right edge that every other
# insertion makes. When the segment it replaces was the last one, already trimmed to the window,
# the queue then reaches past the window, and once the hole before it fills tcp_receive() asserts
# "ooseq tcplen > rcv_wnd". A wire that duplicates and reorders (the simulator's) reaches it; the
# fix trims the incoming segment to the window first, as the append-at-the-end case does (the same
# bug as lwIP's savannah patch #10106).
file(READ ${IN} text)
set(anchor "              if (inseg.len > next->len) {
                /* The incoming segment is larger than the old
                   segment. We replace some segments with the new
                   one. */
")
string(FIND "${text}" "${anchor}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${IN}: the out-of-order replacement code of lwIP 2.1.3 was not found; check the peer's fix in ${CMAKE_CURRENT_LIST_FILE}")
endif()
set(fix "${anchor}                /* tandem's peer: trim to the receive window first (patch_tcp_in.cmake). */
                if (TCP_SEQ_GT(seqno + (u32_t)TCP_TCPLEN(&inseg), pcb->rcv_nxt + (u32_t)pcb->rcv_wnd)) {
                  if (TCPH_FLAGS(inseg.tcphdr) & TCP_FIN) {
                    TCPH_FLAGS_SET(inseg.tcphdr, TCPH_FLAGS(inseg.tcphdr) & ~(unsigned int)TCP_FIN);
                  }
                  inseg.len = (u16_t)(pcb->rcv_nxt + pcb->rcv_wnd - seqno);
                  pbuf_realloc(inseg.p, inseg.len);
                }
                if (inseg.len <= next->len) {
                  break;
                }
")
string(REPLACE "${anchor}" "${fix}" text "${text}")
file(WRITE ${OUT}.tmp "${text}")
file(RENAME ${OUT}.tmp ${OUT})
