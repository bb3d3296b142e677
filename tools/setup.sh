#!/usr/bin/env bash
# tools/setup.sh: installs the Debian 12 packages tandem needs to build, test and run.
#
#   tools/setup.sh [--quiet] [GROUP...]      (no GROUP: every group)
#   tools/setup.sh --list [GROUP...]         print the packages, one a line, and exit
#
# Idempotent and cheap when there is nothing to do: one dpkg-query call finds what is missing,
# and only then does it run `apt-get update` (once) and `apt-get install` for exactly those
# packages. Uses sudo when not root. `./tandem setup`, `./tandem test` and `./tandem demo` call it.
set -euo pipefail

# ---- the packages, by purpose --------------------------------------------------------------------
# Each group is a function so later issues can add a group (or a step, such as fetching a
# source package) in one place; add its name to ALL_GROUPS too.
ALL_GROUPS=(toolchain libs fuzz qemu erlang base)

group_packages() {
  case "$1" in
    # The compiler and build system: clang 14 builds everything (host and freestanding
    # kernel), lld links the kernel image, llvm gives llvm-nm (the kernel's undefined-symbol
    # check) and llvm-cov/llvm-profdata (fuzz coverage), binutils/file inspect the outputs.
    toolchain) echo cmake ninja-build clang lld llvm binutils file ;;
    # Host-side libraries for the simulator, its tools and the tests: Boost.Context fibers,
    # GoogleTest/GoogleMock (googletest ships the sources some CMake set-ups look for), Google
    # Benchmark, CLI11, nlohmann-json, fmt and xxHash (trace hashes).
    libs) echo libboost-context-dev libgtest-dev libgmock-dev googletest libbenchmark-dev \
                libcli11-dev nlohmann-json3-dev libfmt-dev libxxhash-dev ;;
    # libFuzzer and the sanitizer runtimes for clang 14 (not pulled in by `clang` itself).
    fuzz) echo libclang-rt-14-dev ;;
    # Booting the kernel: QEMU (TCG, -M q35), musl-gcc for static test programs (it drives gcc,
    # which also builds the dynamic half of the conformance suite), busybox as the first
    # payload, cpio to pack the initramfs.
    qemu) echo qemu-system-x86 musl-tools gcc busybox-static cpio ;;
    # The Erlang runtime as Debian ships it (beam.smp, erl_child_setup, inet_gethost, the OTP
    # boot files) is the headline payload; /etc/protocols comes from netbase.
    erlang) echo erlang-base netbase ;;
    # What the scripts themselves use: python3 for helper tools, git, and CA certificates so
    # apt and git can reach HTTPS mirrors.
    base) echo python3 git ca-certificates ;;
    *) return 1 ;;
  esac
}

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; echo "groups: ${ALL_GROUPS[*]}"; }

quiet=0
list_only=0
groups=()
while [ $# -gt 0 ]; do
  case "$1" in
    -q|--quiet) quiet=1 ;;
    --list) list_only=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "setup: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) groups+=("$1") ;;
  esac
  shift
done
[ ${#groups[@]} -gt 0 ] || groups=("${ALL_GROUPS[@]}")

packages=()
for g in "${groups[@]}"; do
  if ! pkgs=$(group_packages "$g"); then
    echo "setup: unknown group '$g' (groups: ${ALL_GROUPS[*]})" >&2
    exit 2
  fi
  # Word splitting is intended: a group is a space-separated list of package names.
  # shellcheck disable=SC2206
  packages+=($pkgs)
done

if [ "$list_only" = 1 ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

# One dpkg-query for all of them: it prints a status for each package dpkg knows about and
# nothing for the others (which are certainly not installed), so anything without
# "install ok installed" is missing.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null \
              | awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
missing=()
for p in "${packages[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  [ "$quiet" = 1 ] || echo "setup: all ${#packages[@]} packages are installed (groups: ${groups[*]})"
  exit 0
fi

# Root installs directly; anyone else goes through sudo (which may ask for a password).
sudo=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: installing them needs root: run 'tools/setup.sh' as root, or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "setup: installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Quiet apt unless it fails: its progress output is long and says nothing useful on success.
log=$(mktemp -t tandem-setup.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! "${sudo[@]}" apt-get update >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: apt-get update failed: check the network and /etc/apt/sources.list, then rerun" >&2
  exit 1
fi
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
       apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: apt-get install failed (output above): fix the cause, then rerun tools/setup.sh" >&2
  exit 1
fi
echo "setup: installed ${missing[*]}"
