#!/usr/bin/env bash
# tools/boot.sh: `./tandem boot` - boots the tandem kernel in QEMU with a program as PID 1.
#
# usage: ./tandem boot [--cpus N] [--mem SIZE] [--accel tcg|kvm] [--gdb] [--initrd FILE]
#                      [--timeout S] [--no-busybox] [--net] [--forward [tcp:|udp:]HOST:GUEST]
#                      -- PROGRAM [ARGS...]
#
#   PROGRAM      a tests/userspace program name (hello, cpus, exitcode, segv, threads): runs as
#                /bin/NAME; or a host path to a static x86-64 executable: copied to the same
#                path in the initramfs; or an absolute path already in the initramfs
#                (e.g. /bin/sh with busybox); a dynamically linked host tool with a busybox
#                applet of the same name (/bin/ls) runs as that applet
#   --cpus N     CPUs (default 1)                  --mem SIZE  RAM (default 512M)
#   --accel A    tcg (default) or kvm              --timeout S seconds before giving up (60)
#   --initrd F   boot this initramfs as is instead of building one
#   --no-busybox leave Debian's busybox-static out of the initramfs
#   --strace     the kernel logs every system call with its arguments and result
#   --kernel-args W  more words for the kernel's command line (e.g. "watchdog=30 futex=spin")
#   --stats      at exit, the kernel prints each CPU's busy and idle time, context switches,
#                IPIs, timer interrupts and system calls as a table (default: a summary line)
#   --initargs P with --initrd: PROGRAM's argv and environment come from the file P inside the
#                initramfs (NUL-terminated strings: argv, an empty string, envp), so they may
#                hold any bytes; the arguments after PROGRAM are then not allowed
#   --net        a virtio-net card on QEMU user networking (guest 10.0.2.15); host port 5555
#                forwards to the guest's 5555 unless --forward says otherwise
#   --forward [tcp:|udp:]HOST:GUEST  forward localhost:HOST to the guest's GUEST (repeatable;
#                implies --net)
#   --gdb        stop QEMU before the first instruction, its gdb stub on the first free
#                localhost port from 1234, and print the gdb command that connects
#
# The initramfs holds PROGRAM, Debian's busybox-static as /bin/busybox with a link per applet,
# and a minimal /etc (passwd, group, hostname, hosts). The serial console goes to stdout.
# Exit status: the program's (128+N when signal N killed it), 124 timeout, 125 kernel panic,
# 126 the machine stopped without a shutdown, 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "tandem boot: $*" >&2; exit 2; }

cpus=1
mem=512M
accel=tcg
gdb=0
initrd=
initargs=
strace=0
stats=0
kernel_args=
timeout_secs=60
busybox=1
net=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpus) cpus=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --accel) accel=${2:?}; shift 2 ;;
    --gdb) gdb=1; shift ;;
    --initrd) initrd=${2:?}; shift 2 ;;
    --initargs) initargs=${2:?}; shift 2 ;;
    --strace) strace=1; shift ;;
    --stats) stats=1; shift ;;
    --kernel-args) kernel_args=${2?--kernel-args needs words}; shift 2 ;;
    --timeout) timeout_secs=${2:?}; shift 2 ;;
    --no-busybox) busybox=0; shift ;;
    --net) net+=(--net); shift ;;
    --forward) net+=(--forward "${2:?}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { usage >&2; die "no PROGRAM given"; }
case "$accel" in tcg|kvm) ;; *) die "--accel must be tcg or kvm" ;; esac
[[ "$cpus" =~ ^[0-9]+$ ]] && [ "$cpus" -ge 1 ] && [ "$cpus" -le 64 ] || die "--cpus must be 1..64"
program=$1; shift

# Build the kernel (and the userspace programs) quietly; show the log only on failure.
mkdir -p "$ROOT/build/logs"
buildlog=$ROOT/build/logs/boot-build.log
if ! { cmake --preset kernel && cmake --build --preset kernel; } >"$buildlog" 2>&1; then
  tail -n 40 "$buildlog" >&2
  die "kernel build failed (full log: $buildlog)"
fi
kernel=$ROOT/build/kernel/hal/real/tandem.elf
userspace=$ROOT/build/kernel/hal/real/tests-qemu/userspace

work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-boot.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -n "$initrd" ]; then
  [ -f "$initrd" ] || die "no initramfs at $initrd"
  case "$program" in /*) init=$program ;; *) init=/bin/$program ;; esac
else
  root=$work/root
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
  if [ -x "$userspace/$program" ] && [[ "$program" != */* ]]; then
    cp "$userspace/$program" "$root/bin/$program"
    init=/bin/$program
  elif [ -f "$program" ] && [[ "$program" == /* ]] && [ "$busybox" = 1 ] &&
       head -c 4096 "$program" | grep -aq '/ld-linux' &&
       /bin/busybox --list 2>/dev/null | grep -qx "$(basename "$program")"; then
    # A dynamically linked host tool (/bin/ls) cannot run yet: use busybox's applet of that name.
    echo "tandem boot: $program is dynamically linked; using busybox's $(basename "$program")" >&2
    init=/bin/$(basename "$program")
  elif [ -f "$program" ]; then
    host=$(cd "$(dirname "$program")" && pwd)/$(basename "$program")
    mkdir -p "$root$(dirname "$host")"
    cp "$host" "$root$host"
    init=$host
  elif [[ "$program" == /* ]]; then
    init=$program  # expected inside the initramfs (a busybox applet link, say)
  else
    die "$program: not a tests/userspace program ($(ls "$userspace" 2>/dev/null | grep -v '\.' | tr '\n' ' ')) nor a file"
  fi
  links=()
  if [ "$busybox" = 1 ]; then
    bb=/bin/busybox
    [ -x "$bb" ] && "$bb" --list >/dev/null 2>&1 || die "busybox-static not found (apt-get install busybox-static, or --no-busybox)"
    cp "$bb" "$root/bin/busybox"

    for applet in $("$bb" --list); do
      [ -e "$root/bin/$applet" ] || links+=(--symlink "/bin/$applet:busybox")
    done
  fi
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  echo tandem >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost tandem\n::1\tlocalhost\n' >"$root/etc/hosts"
  initrd=$work/initramfs.cpio
  python3 "$ROOT/tools/mkinitramfs" -o "$initrd" --dir "$root" "${links[@]}"
fi

cmdline="init=$init"
[ "$strace" = 0 ] || cmdline+=" strace"
[ "$stats" = 0 ] || cmdline+=" stats"
[ -z "$kernel_args" ] || cmdline+=" $kernel_args"
if [ -n "$initargs" ]; then
  [ -n "$initrd" ] && [ $# -eq 0 ] || die "--initargs goes with --initrd and no arguments after PROGRAM"
  cmdline+=" initargs=$initargs"
elif [ $# -gt 0 ]; then
  cmdline+=" --"
  for arg in "$@"; do
    [[ "$arg" == *'"'* ]] && die "arguments cannot contain double quotes (kernel command line)"
    if [[ "$arg" == *" "* || -z "$arg" ]]; then cmdline+=" \"$arg\""; else cmdline+=" $arg"; fi
  done
fi
extra=()
[ "$accel" = kvm ] && extra+=(-accel kvm)
if [ "$gdb" = 1 ]; then
  # QEMU's -s listens on port 1234 of every interface; listen on localhost only, and on the
  # first free port from 1234 up, so that two debugging sessions on one machine do not collide.
  port=$(python3 -c '
import socket
for port in range(1234, 1334):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
')
  [ -n "$port" ] || die "no free TCP port in 1234-1333 for the gdb stub"
  extra+=(-gdb "tcp:127.0.0.1:$port" -S)
  timeout_secs=$((365 * 24 * 3600))
  # Software breakpoints work from the first instruction on: under TCG QEMU checks them as it
  # translates code, so a kernel address may be given before paging is on.
  echo "tandem boot: QEMU waits for gdb on localhost:$port; in another terminal:" >&2
  echo "  gdb -ex 'target remote localhost:$port' -ex 'break kentry::boot' -ex continue $kernel" >&2
fi
set +e
"$ROOT/qemu/run-kernel" --smp "$cpus" --mem "$mem" --initrd "$initrd" --append "$cmdline" \
  --timeout "$timeout_secs" "${net[@]}" "$kernel" -- "${extra[@]}"
exit $?
