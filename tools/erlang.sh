#!/usr/bin/env bash
# tools/erlang.sh: `./tandem erlang` - boots Debian's own Erlang runtime (beam.smp, unmodified)
# as PID 1 of the tandem kernel in QEMU.
#
# usage: ./tandem erlang [--cpus N] [--mem SIZE] [--schedulers N] [--net] [--forward HOST:GUEST]...
#                        [--timeout S] [--eval EXPR | -- ARGS...]
#
#   --cpus N         CPUs (default 8)                 --mem SIZE    RAM (default 1024M)
#   --schedulers N   Erlang scheduler threads (default: as many as CPUs)
#   --net            add a virtio-net device (QEMU user networking, the guest is 10.0.2.15)
#   --forward H:G    forward host TCP port H to guest port G (implies --net; default 5555:5555)
#   --timeout S      seconds before giving up (default 300)
#   --strace         the kernel logs every system call (to find what the runtime misses)
#   --kernel-args W  more words for the kernel's command line (e.g. "watchdog=30")
#   --initrd-out F   only write the initramfs to F and print the kernel command line that
#                    boots it (for tests that run qemu/run-kernel themselves); no build, no boot
#   --stats          at exit, a table of each CPU's busy/idle time, switches and IPIs
#   --eval EXPR      run EXPR with -noshell (end it with halt() or halt(N))
#   --echo-server S  run the gen_tcp echo server of tools/erlang/echo-server.erl on port 5555 for
#                    S seconds (0: until the machine is stopped); implies --net
#   -- ARGS...       init arguments for the runtime after `-boot start_clean`, as given to erl
#   (neither)        the Erlang shell on the serial console
#
# beam.smp is started directly, as the `erl` script would start it: BINDIR in the environment,
# `-- -root /usr/lib/erlang -bindir ERTS/bin -- -boot start_clean ...`. The payload is the
# host's installed erlang-base (tools/mkinitramfs --payload erlang): nothing is patched.
# Exit status: the runtime's (halt(N) gives N; 128+N when signal N killed it), 124 timeout,
# 125 kernel panic, 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "tandem erlang: $*" >&2; exit 2; }
# shellcheck source=tools/payload-root.sh
source "$ROOT/tools/payload-root.sh"

cpus=8
mem=1024M
schedulers=
net=0
forwards=()
timeout_secs=300
eval_expr=
have_eval=0
initrd_out=
strace=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpus) cpus=${2:?--cpus needs a value}; shift 2 ;;
    --mem) mem=${2:?--mem needs a value}; shift 2 ;;
    --schedulers) schedulers=${2:?--schedulers needs a value}; shift 2 ;;
    --net) net=1; shift ;;
    --forward) net=1; forwards+=("${2:?--forward needs HOST:GUEST}"); shift 2 ;;
    --strace) strace+=(--strace); shift ;;
    --stats) strace+=(--stats); shift ;;
    --initrd-out) initrd_out=${2:?--initrd-out needs a file}; shift 2 ;;
    --kernel-args) strace+=(--kernel-args "${2?--kernel-args needs words}"); shift 2 ;;
    --timeout) timeout_secs=${2:?--timeout needs a value}; shift 2 ;;
    --eval) eval_expr=${2?--eval needs an expression}; have_eval=1; shift 2 ;;
    --echo-server)
      [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--echo-server needs a number of seconds"
      eval_expr=$(grep -v '^%' "$ROOT/tools/erlang/echo-server.erl" | sed "s/DURATION_MS/$(( $2 * 1000 ))/")
      have_eval=1 net=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
[[ "$cpus" =~ ^[0-9]+$ ]] && [ "$cpus" -ge 1 ] && [ "$cpus" -le 64 ] || die "--cpus must be 1..64"
[ -n "$schedulers" ] || schedulers=$cpus
[[ "$schedulers" =~ ^[0-9]+$ ]] && [ "$schedulers" -ge 1 ] && [ "$schedulers" -le 1024 ] ||
  die "--schedulers must be 1..1024"
[[ "$timeout_secs" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
[ "$have_eval" = 0 ] || [ $# -eq 0 ] || die "--eval and -- ARGS exclude each other"
for f in "${forwards[@]}"; do
  [[ "$f" =~ ^[0-9]+:[0-9]+$ ]] || die "--forward $f: expected HOST:GUEST port numbers"
done

[ -n "$initrd_out" ] || bash "$ROOT/tools/setup.sh" --quiet toolchain qemu erlang base

erts=$(ls -d /usr/lib/erlang/erts-*/ 2>/dev/null | sort | tail -n 1)
erts=${erts%/}
[ -x "$erts/bin/beam.smp" ] || die "no beam.smp under /usr/lib/erlang (install erlang-base)"

payload_root erlang

# beam.smp's argv and environment, NUL-separated (any bytes may appear in an expression).
beam=$erts/bin/beam.smp
args=("$beam" -S "$schedulers:$schedulers" -- -root /usr/lib/erlang -bindir "$erts/bin" -- -boot start_clean)
if [ "$have_eval" = 1 ]; then
  args+=(-noshell -eval "$eval_expr")
else
  args+=("$@")
fi
env=("BINDIR=$erts/bin" "ROOTDIR=/usr/lib/erlang" "EMU=beam" "PROGNAME=erl" "HOME=/" "TERM=dumb"
     "PATH=$erts/bin:/usr/bin:/bin")
write_init_args args env
pack_initramfs erlang "$beam"

boot=(${strace[@]+"${strace[@]}"} --cpus "$cpus" --mem "$mem" --timeout "$timeout_secs" --initrd "$work/initramfs.cpio"
      --initargs /etc/tandem/init.args)
if [ "$net" = 1 ]; then
  boot+=(--net)
  for f in "${forwards[@]}"; do boot+=(--forward "$f"); done
fi
exec bash "$ROOT/tools/boot.sh" "${boot[@]}" -- "$beam"
