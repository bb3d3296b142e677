#!/usr/bin/env bash
# tools/elixir.sh: `./tandem elixir` - runs Debian's own `elixir` command on the tandem kernel in
# QEMU: busybox's sh runs Debian's /usr/bin/elixir script, which runs Debian's erl script, which
# execs erlexec, which execs beam.smp (all unmodified, all as PID 1).
#
# usage: ./tandem elixir [--cpus N] [--mem SIZE] [--timeout S] (-e EXPR | -- ARGS...)
#
#   --cpus N         CPUs (default 8)                 --mem SIZE    RAM (default 1024M)
#   --timeout S      seconds before giving up (default 300)
#   --strace         the kernel logs every system call (to find what the scripts or runtime miss)
#   --kernel-args W  more words for the kernel's command line (e.g. "watchdog=30")
#   --stats          at exit, a table of each CPU's busy/idle time, switches and IPIs
#   --initrd-out F   only write the initramfs to F and print the kernel command line that
#                    boots it (for tests that run qemu/run-kernel themselves); no build, no boot
#   -e EXPR          evaluate EXPR: the same as `-- -e EXPR` (--eval EXPR too)
#   -- ARGS...       the arguments of the elixir command, as on Debian (e.g. -- --version,
#                    -- -e 'IO.puts(1)' -e 'System.halt(2)')
#
# PID 1 is busybox's sh running `exec elixir ARGS...` with PATH=/usr/bin:/bin. The payload is the
# host's installed erlang-base, elixir and busybox-static (tools/mkinitramfs --payload elixir):
# nothing is patched. The kernel does not run `#!` scripts itself: exec of a script fails with
# ENOEXEC, and busybox's sh then runs the script with itself, as POSIX asks of a shell.
# Exit status: the program's (System.halt(N) gives N; 128+N when signal N killed it),
# 124 timeout, 125 kernel panic, 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "tandem elixir: $*" >&2; exit 2; }
# shellcheck source=tools/payload-root.sh
source "$ROOT/tools/payload-root.sh"

cpus=8
mem=1024M
timeout_secs=300
initrd_out=
strace=()
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpus) cpus=${2:?--cpus needs a value}; shift 2 ;;
    --mem) mem=${2:?--mem needs a value}; shift 2 ;;
    --strace) strace+=(--strace); shift ;;
    --stats) strace+=(--stats); shift ;;
    --initrd-out) initrd_out=${2:?--initrd-out needs a file}; shift 2 ;;
    --kernel-args) strace+=(--kernel-args "${2?--kernel-args needs words}"); shift 2 ;;
    --timeout) timeout_secs=${2:?--timeout needs a value}; shift 2 ;;
    -e|--eval) [ $# -ge 2 ] || die "$1 needs an expression"; args+=(-e "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; args+=("$@"); break ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
[[ "$cpus" =~ ^[0-9]+$ ]] && [ "$cpus" -ge 1 ] && [ "$cpus" -le 64 ] || die "--cpus must be 1..64"
[[ "$timeout_secs" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
[ ${#args[@]} -gt 0 ] || { usage >&2; die "give -e EXPR or -- ARGS (the elixir command's arguments)"; }

[ -n "$initrd_out" ] || bash "$ROOT/tools/setup.sh" --quiet toolchain qemu erlang base

[ -f /usr/lib/elixir/bin/elixir ] || die "no /usr/lib/elixir/bin/elixir (install elixir: ./tandem setup)"

payload_root elixir

# PID 1's argv and environment, NUL-separated (any bytes may appear in an expression): sh looks
# elixir up in PATH as a user's shell would, and each script execs the next program.
sh_args=(/bin/sh -c 'exec elixir "$@"' elixir "${args[@]}")
env=("HOME=/" "TERM=dumb" "PATH=/usr/bin:/bin")
write_init_args sh_args env
pack_initramfs elixir /bin/sh

exec bash "$ROOT/tools/boot.sh" ${strace[@]+"${strace[@]}"} --cpus "$cpus" --mem "$mem" --timeout "$timeout_secs" \
  --initrd "$work/initramfs.cpio" --initargs /etc/tandem/init.args -- /bin/sh
