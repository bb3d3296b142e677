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
# 14 futex wait, 17 futex wake, 19 requeue, 20 wake_op, 21 futex any, 22 store/add, 23 ENOSYS,
# 24-27 any other implemented syscall (generic, resource arguments)
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
# generic ops: the selector's next byte picks an implemented number (index into the kernel's table,
# modulo its size), then six resource arguments (kind byte, two payload bytes): fd 1, data, size 16.
write("syscall_seq", "generic", shape(2, 2) + [0] + op(24, 0, 1, 0x08, 1, 0, 0x18, 0, 0, 0x28, 16, 0, T, 0, 0, T, 0, 0, T, 0, 0)
      + op(25, 1, 7, 0x20, 3, 0, 0x08, 1, 0, 0x28, 64, 0, T, 0, 0, T, 0, 0, T, 0, 0) + op(2, 0))
write("syscall_seq", "enosys", shape(1, 1) + [0] + op(23, 0, 3, 1, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
      + op(9, 0, 1, T, 7, 1, 8, 0, 0) + op(7, 0, 7, 1, 13, 0, 0, 7, 2, 1, 0, 0))

# ---- futex_sched: [scenario] [shape] [decisions: u16 gap, cpu byte]
for i, name in enumerate(["mutex", "condvar", "semaphore", "barrier", "rwlock", "join"]):
    write("futex_sched", name, [i, 0x15])
    write("futex_sched", name + "-switchy", [i, 0x1a] + [b for k in range(16) for b in (7 + k * 3, 0, k & 3)])

# ---- elf_load: real small static programs (musl-gcc, when installed) and handwritten ELFs
import subprocess, shutil, tempfile

def elf64(etype, entry, segments, interp=None):
    """A minimal x86-64 ELF: header, program headers, then each segment's bytes.
    segments: list of (vaddr, flags, data, memsz)."""
    phnum = len(segments) + (1 if interp else 0)
    off = 64 + 56 * phnum
    body, phdrs = b"", b""
    if interp:
        phdrs += struct.pack("<IIQQQQQQ", 3, 4, off, 0, 0, len(interp), len(interp), 1)
        body += interp
    for vaddr, flags, data, memsz in segments:
        pad = (-(off + len(body)) + vaddr) % 4096  # p_offset % align == p_vaddr % align
        body += b"\0" * pad
        phdrs += struct.pack("<IIQQQQQQ", 1, flags, off + len(body), vaddr, vaddr, len(data), memsz, 4096)
        body += data
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", etype, 62, 1, entry, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    return header + phdrs + body

code = b"\xb8\x3c\x00\x00\x00\x31\xff\x0f\x05"  # mov eax, 60; xor edi, edi; syscall
write("elf_load", "tiny-exec", elf64(2, 0x401000, [(0x401000, 5, code, len(code))]))
write("elf_load", "tiny-pie", elf64(3, 0x1000, [(0x1000, 5, code, len(code))]))
write("elf_load", "text-data-bss", elf64(2, 0x401000, [(0x401000, 5, code, len(code)), (0x402000, 6, b"data" * 8, 0x3000)]))
write("elf_load", "interp", elf64(3, 0x1000, [(0x1000, 5, code, len(code))], interp=b"/lib/ld-musl-x86_64.so.1\0"))
musl = shutil.which("musl-gcc")
if musl:
    src = os.path.join(HERE, "..", "tests", "userspace", "hello.c")
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in (("hello-static", ["-static"]), ("hello-static-pie", ["-static-pie", "-fPIE"])):
            out = os.path.join(tmp, name)
            if subprocess.call([musl, "-Os", "-s", *flags, "-o", out, src]) == 0:
                with open(out, "rb") as f:
                    write("elf_load", name, f.read())

# ---- cpio: [L] [L bytes of paths] [newc archive], archives as tools/mkinitramfs writes them
def entry(name, mode, data=b"", ino=1):
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
    out = b"070701" + b"".join(b"%08x" % f for f in fields) + encoded
    out += b"\0" * (-len(out) % 4)
    return out + data + b"\0" * (-len(data) % 4)

def archive(*entries):
    return b"".join(entries) + entry("TRAILER!!!", 0)

def cpio_seed(name, paths, arc):
    block = b"\0".join(p.encode() for p in paths)
    write("cpio", name, bytes([len(block)]) + block + arc)

tree = archive(entry(".", 0o40755), entry("bin", 0o40755), entry("bin/busybox", 0o100755, b"\x7fELF-ish"),
               entry("bin/sh", 0o120777, b"busybox"), entry("init", 0o100755, b"#!/bin/sh\n"),
               entry("sbin", 0o120777, b"/bin"), entry("loop", 0o120777, b"loop"),
               entry("dev", 0o40755), entry("dev/console", 0o20600))
cpio_seed("tree", ["/bin/sh", "/sbin/sh", "/init", "/loop", "bin/../init", "/dev/console", "/bin/sh/x", "/nope"], tree)
cpio_seed("empty", ["/"], archive())
cpio_seed("one-file", ["/hello", "hello", "./hello"], archive(entry("hello", 0o100644, b"hello\n")))
mkinit = os.path.join(HERE, "..", "tools", "mkinitramfs")
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "init"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    out = os.path.join(tmp, "out.cpio")
    if subprocess.call(["python3", mkinit, "-o", out, "--symlink", "/bin/sh:/init",
                        "--chardev", "/dev/console:5:1", os.path.join(tmp, "init") + ":/init"]) == 0:
        with open(out, "rb") as f:
            cpio_seed("mkinitramfs", ["/init", "/bin/sh", "/dev/console", "/dev"], f.read())

# ---- path_walk: ops [kind, descriptors, flags, path spec..., (second path)] (fuzz/path_model.h)
# kinds: 0 stat 1 open 2 mkdir 3 symlink 4 unlink 5 rmdir 6 rename 7 readlink 8 chdir 9 fchdir
# 10 getcwd 11 close; pieces: 0 a 1 b 2 c 3 d 4 l 5 m 6 . 7 .. 8 (empty) 9 f 10 odd 11 w 12 tmp
# 13 dev 14 NAME_MAX 15 NAME_MAX+1; spec: bits 0-2 pieces-1, 0x08 "/", 0x10 "/tmp/w/",
# 0x20 trailing slash, 0x40 empty path, 0x80 padded to PATH_MAX-1 or PATH_MAX (one more byte).
def pw_path(*pieces, absolute=False, work=False, slash=False, empty=False, padded=None):
    spec = max(len(pieces) - 1, 0) | (0x08 if absolute else 0) | (0x10 if work else 0) | (0x20 if slash else 0)
    spec |= (0x40 if empty else 0) | (0x80 if padded is not None else 0)
    if empty:
        return [spec]
    return [spec] + ([padded] if padded is not None else []) + list(pieces)

def pw_op(kind, path=None, path2=None, descriptors=0, flags=0):
    out = [kind, descriptors, flags]
    if path is not None:
        out += path
    if path2 is not None:
        out += path2
    return out

A, B, C, D, L, M, DOT, DOTDOT, EMPTY, F, ODD, W, TMP, DEV, LONG, TOOLONG = range(16)
O_CREAT, O_DIR = 8, 16
write("path_walk", "tree", pw_op(2, pw_path(A)) + pw_op(2, pw_path(A, B)) + pw_op(1, pw_path(A, F), flags=O_CREAT)
      + pw_op(3, pw_path(L), pw_path(A, B)) + pw_op(0, pw_path(L, DOTDOT, F)) + pw_op(0, pw_path(L), flags=1)
      + pw_op(7, pw_path(L)) + pw_op(10) + pw_op(8, pw_path(L)) + pw_op(10) + pw_op(0, pw_path(DOTDOT, F)))
write("path_walk", "links", pw_op(3, pw_path(L), pw_path(L)) + pw_op(0, pw_path(L)) + pw_op(1, pw_path(F), flags=O_CREAT)
      + pw_op(3, pw_path(M), pw_path(F, slash=True)) + pw_op(0, pw_path(M)) + pw_op(1, pw_path(M), flags=4)
      + pw_op(3, pw_path(A), pw_path(B)) + pw_op(1, pw_path(A), flags=O_CREAT) + pw_op(0, pw_path(B))
      + pw_op(3, pw_path(D), pw_path(TMP, W, absolute=True)) + pw_op(0, pw_path(D, L), flags=1))
write("path_walk", "rename", pw_op(2, pw_path(A)) + pw_op(2, pw_path(A, B)) + pw_op(6, pw_path(A), pw_path(A, B, C))
      + pw_op(6, pw_path(A, B), pw_path(B)) + pw_op(5, pw_path(A)) + pw_op(0, pw_path(B))
      + pw_op(1, pw_path(F), flags=O_CREAT) + pw_op(6, pw_path(F), pw_path(B)) + pw_op(6, pw_path(B), pw_path(F))
      + pw_op(6, pw_path(F), pw_path(DOTDOT, F)) + pw_op(6, pw_path(B), pw_path(DOTDOT, DOTDOT, B)))
write("path_walk", "limits", pw_op(0, pw_path(A, padded=0)) + pw_op(0, pw_path(DOT, padded=1))
      + pw_op(2, pw_path(LONG)) + pw_op(2, pw_path(TOOLONG)) + pw_op(0, pw_path(LONG, DOTDOT, LONG))
      + pw_op(0, pw_path(DOTDOT, W, DOT, EMPTY, work=True)) + pw_op(2, pw_path(ODD)) + pw_op(0, pw_path(empty=True))
      + pw_op(0, pw_path(empty=True), flags=2) + pw_op(0, pw_path(DEV, absolute=True)))
write("path_walk", "descriptors", pw_op(2, pw_path(A)) + pw_op(1, pw_path(A), descriptors=0x40, flags=O_DIR)
      + pw_op(2, pw_path(C), descriptors=1) + pw_op(9, descriptors=1) + pw_op(10) + pw_op(5, pw_path(C))
      + pw_op(5, pw_path(DOTDOT, A)) + pw_op(10) + pw_op(2, pw_path(D)) + pw_op(0, pw_path(DOT))
      + pw_op(0, pw_path(DOTDOT)) + pw_op(11, descriptors=0x40))
