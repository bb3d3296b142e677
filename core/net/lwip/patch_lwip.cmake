# core/net/lwip/patch_lwip.cmake (cmake -P): copies one of lwIP 2.1.3's sources (IN, named by
# WHICH: tcp_in or tcp_out) to OUT with tandem's fixes. lwip.cmake runs it at configure time for
# every build tree; the kernel's lwIP (freestanding and simulated) and the simulated peer's
# (sim/netpeer) are all built from the fixed copies. All three bugs were found by exploring the
# tcp-bulk scenario under the simulator's network faults (./tandem explore tcp-bulk --net-faults).
#
# tcp_in: an out-of-sequence segment is checked to start inside the receive window, but only the
# segment appended at the end of the out-of-order queue is trimmed to the window's right edge.
# One queued first (an empty queue), one that replaces a shorter segment with the same sequence
# number, or one that swallows every segment after it keeps its full length, so the queue can
# reach past the window; once the hole before it fills, tcp_receive() asserts "ooseq tcplen >
# rcv_wnd". A wire that duplicates, delays and reorders (the simulator's) reaches it. The fix trims
# every out-of-sequence segment to the window before it is queued.
#
# tcp_out: a retransmission timeout puts the unacknowledged queue in front of the unsent one,
# assuming every unacknowledged segment comes before every unsent one. A fast retransmission that
# could not go out (the receiver's window had closed) leaves the oldest segment at the head of the
# unsent queue, so the timeout then puts it behind newer ones: the queue is out of order, its head
# lies beyond the acknowledged point, and with a closed window the persist timer probes with the
# wrong byte for ever (a stalled connection). The fix merges the two queues in sequence order.
#
# tcp_out, second: tcp_split_unsent_seg() (the persist timer splits the unsent head to fit a small
# window) moves FIN and PSH to the second half but sets the first half's flags with TCPH_SET_FLAG,
# which only adds bits: both halves carry the FIN, and the receiver ends the stream early, losing
# the second half's bytes. The fix sets the first half's flags with TCPH_FLAGS_SET.
file(READ ${IN} text)
if(WHICH STREQUAL "tcp_in")
  set(anchor "        /* We get here if the incoming segment is out-of-sequence. */
")
  string(FIND "${text}" "${anchor}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${IN}: the out-of-sequence branch of lwIP 2.1.3's tcp_receive was not found; check tandem's fix in ${CMAKE_CURRENT_LIST_FILE}")
  endif()
  set(fix "${anchor}        /* tandem: trim to the receive window before queueing (core/net/lwip/patch_lwip.cmake). */
        if (TCP_SEQ_GT(seqno + (u32_t)TCP_TCPLEN(&inseg), pcb->rcv_nxt + (u32_t)pcb->rcv_wnd)) {
          if (TCPH_FLAGS(inseg.tcphdr) & TCP_FIN) {
            TCPH_FLAGS_SET(inseg.tcphdr, TCPH_FLAGS(inseg.tcphdr) & ~(unsigned int)TCP_FIN);
          }
          inseg.len = (u16_t)(pcb->rcv_nxt + pcb->rcv_wnd - seqno);
          pbuf_realloc(inseg.p, inseg.len);
          tcplen = TCP_TCPLEN(&inseg);
        }
")
  string(REPLACE "${anchor}" "${fix}" text "${text}")
elseif(WHICH STREQUAL "tcp_out")
  set(anchor "  /* concatenate unsent queue after unacked queue */
  seg->next = pcb->unsent;
#if TCP_OVERSIZE_DBGCHECK
  /* if last unsent changed, we need to update unsent_oversize */
  if (pcb->unsent == NULL) {
    pcb->unsent_oversize = seg->oversize_left;
  }
#endif /* TCP_OVERSIZE_DBGCHECK */
  /* unsent queue is the concatenated queue (of unacked, unsent) */
  pcb->unsent = pcb->unacked;
")
  string(FIND "${text}" "${anchor}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${IN}: tcp_rexmit_rto_prepare of lwIP 2.1.3 was not found; check tandem's fix in ${CMAKE_CURRENT_LIST_FILE}")
  endif()
  set(fix "  /* tandem: merge the two queues in sequence order (core/net/lwip/patch_lwip.cmake). */
  {
    struct tcp_seg *a = pcb->unacked, *b = pcb->unsent, *merged = NULL, **tail = &merged;
    while (a != NULL && b != NULL) {
      if (TCP_SEQ_LEQ(lwip_ntohl(a->tcphdr->seqno), lwip_ntohl(b->tcphdr->seqno))) {
        *tail = a;
        a = a->next;
      } else {
        *tail = b;
        b = b->next;
      }
      tail = &(*tail)->next;
    }
    *tail = a != NULL ? a : b;
#if TCP_OVERSIZE_DBGCHECK
    if (pcb->unsent == NULL) {
      pcb->unsent_oversize = seg->oversize_left;
    }
#endif /* TCP_OVERSIZE_DBGCHECK */
    pcb->unsent = merged;
  }
")
  string(REPLACE "${anchor}" "${fix}" text "${text}")
  # The second tcp_out fix (see the top): the first half of a split segment keeps only its own flags.
  set(anchor "  TCPH_SET_FLAG(useg->tcphdr, split_flags);\n")
  string(FIND "${text}" "${anchor}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${IN}: tcp_split_unsent_seg of lwIP 2.1.3 was not found; check tandem's fix in ${CMAKE_CURRENT_LIST_FILE}")
  endif()
  string(REPLACE "${anchor}" "  TCPH_FLAGS_SET(useg->tcphdr, split_flags); /* tandem: clear FIN and PSH (core/net/lwip/patch_lwip.cmake) */\n"
         text "${text}")
else()
  message(FATAL_ERROR "WHICH must be tcp_in or tcp_out")
endif()
file(WRITE ${OUT}.tmp "${text}")
file(RENAME ${OUT}.tmp ${OUT})
