#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/TARGET/): small hand-made inputs in each target's format.
Run from anywhere: python3 fuzz/gen_seeds.py"""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))

# ---- syscall_seq: [shape] [schedule] [ops]; shape bits 0-1 cpus-1, 2-3 threads-1, 4 random
def shape(cpus, threads, rnd=False):
    return [(cpus - 1) | (threads - 1) << 2 | (0x10 if rnd else 0)]

T = 0  # typed-argument selector byte (anything but 7 mod 8)
def op(sel, thread, *rest):
    return [sel, thread, *rest]

# selectors (see take_op): 0 yield, 1 nanosleep, 2 getpid, 3 gettid, 4 clone, 6 exit, 7 gettimeofday,
# 8 set_tid_address, 9 clock_gettime, 11 clock_getres, 12 clock_nanosleep, 13 exit_group,
# 14 futex wait, 17 futex wake, 19 requeue, 20 wake_op, 21 futex any, 22 store/add, 23 ENOSYS
simple = op(2, 0) + op(3, 0) + op(0, 0) + op(9, 0, 1, T, 0, T)  # getpid gettid yield clock_gettime
write("syscall_seq", "basic", shape(1, 1) + [0] + simple)
# futex wait on word 0 in thread 1 (bitset=0, private=1; word 0; value current; 1 ms timeout),
# wake from thread 0 after a store.
wait = op(14, 1, 0, 1, 0, T, 0, T, 0, T, 250, T, 1, T)
store = op(22, 0, 0, 0, 1)
wake = op(17, 0, 0, 0, T, 0, 1, T, 1, T, 1, T)
write("syscall_seq", "wait-wake", shape(2, 2) + [0] + wait + store + wake)
write("syscall_seq", "wait-wake-random", shape(4, 3, True) + list(struct.pack("<Q", 42)) + wait + store + wake + op(2, 2))
# clone from thread 0 (ulib's flags, slot 5 running slice 1), then sleep and exit_group(0).
clone = op(4, 0, 0, T, 5, 1, T, 5, T, 5, T, 0, T)
sleep = op(1, 1, 10, T, 0, T)
write("syscall_seq", "clone", shape(2, 2) + [0] + clone + sleep + op(3, 1) + op(13, 0, T))
# set_tid_address to a slot word, then exit; the other thread sleeps with clock_nanosleep.
write("syscall_seq", "tidaddr-exit", shape(2, 2) + [0] + op(8, 1, 3, T) + op(6, 1, T) + op(12, 0, 1, T, 0, T, 20, T, 0, T))
# requeue and wake_op between two words, with waiters on both.
write("syscall_seq", "requeue", shape(3, 4) + [0] + wait + op(14, 2, 0, 1, 4, T, 4, T, 200, T, 1, T)
      + op(19, 0, 1, 1, 0, T, 1, T, 0, T, 2, T, 4, T, 0, T) + op(20, 3, 1, 4, T, 1, T, 1, T, 0, T, 1, 1, 2, 3, 1, T))
# unimplemented numbers and hostile pointers
write("syscall_seq", "enosys", shape(1, 1) + [0] + op(23, 0, 3, 1, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
      + op(9, 0, 1, T, 7, 1, 8, 0, 0) + op(7, 0, 7, 1, 13, 0, 0, 7, 2, 1, 0, 0))

# ---- futex_sched: [scenario] [shape] [decisions: u16 gap, cpu byte]
for i, name in enumerate(["mutex", "condvar", "semaphore", "barrier", "rwlock", "join"]):
    write("futex_sched", name, [i, 0x15])
    write("futex_sched", name + "-switchy", [i, 0x1a] + [b for k in range(16) for b in (7 + k * 3, 0, k & 3)])
