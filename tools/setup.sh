#!/usr/bin/env bash
# tools/setup.sh: installs the Debian 12 packages tandem needs to build, test and run.
#
#   tools/setup.sh [--quiet] [GROUP...]      (no GROUP: every group)
#   tools/setup.sh --list [GROUP...]         print the packages, one a line, and exit
#
# Idempotent and cheap when there is nothing to do: one dpkg-query call finds what is missing,
# and only then does it run `apt-get update` (once) and `apt-get install` for exactly those
# packages. Uses sudo when not root. `./tandem setup`, `./tandem test` and `./tandem demo` call it.
# The lwip group also fetches Debian's lwIP source into third_party/lwip (apt-get source).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- the packages, by purpose --------------------------------------------------------------------
# Each group is a function so later issues can add a group (or a step, such as fetching a
# source package) in one place; add its name to ALL_GROUPS too.
ALL_GROUPS=(toolchain libs fuzz qemu erlang base lwip)

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
    # boot files) is the headline payload; /etc/protocols comes from netbase. Debian's Elixir
    # (1.14 on OTP 25, its scripts run by busybox's sh) is the elixir payload.
    erlang) echo erlang-base netbase elixir ;;
    # What the scripts themselves use: python3 for helper tools, git, and CA certificates so
    # apt and git can reach HTTPS mirrors.
    base) echo python3 git ca-certificates ;;
    # lwIP's source comes from Debian's source package (apt-get source, which needs dpkg-dev to
    # unpack it); see fetch_lwip below.
    lwip) echo dpkg-dev ;;
    *) return 1 ;;
  esac
}

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; echo "groups: ${ALL_GROUPS[*]}"; }

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

# Root runs apt directly; anyone else goes through sudo (which may ask for a password).
sudo=()
need_root() {
  [ "$(id -u)" = 0 ] && return 0
  if ! command -v sudo >/dev/null; then
    echo "setup: $1 needs root: run 'tools/setup.sh' as root, or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
}
export DEBIAN_FRONTEND=noninteractive
# Quiet apt unless it fails: its progress output is long and says nothing useful on success.
log=$(mktemp -t tandem-setup.XXXXXX)
trap 'rm -f "$log"' EXIT
apt_updated=0
apt_update() {
  if ! "${sudo[@]}" apt-get update >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: apt-get update failed: check the network and /etc/apt/sources.list, then rerun" >&2
    exit 1
  fi
  apt_updated=1
}

install_missing() {
  # One dpkg-query for all of them: it prints a status for each package dpkg knows about and
  # nothing for the others (which are certainly not installed), so anything without
  # "install ok installed" is missing.
  local installed missing=() p
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null \
                | awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
  for p in "${packages[@]}"; do
    grep -qxF "$p" <<<"$installed" || missing+=("$p")
  done

  if [ ${#missing[@]} -eq 0 ]; then
    [ "$quiet" = 1 ] || echo "setup: all ${#packages[@]} packages are installed (groups: ${groups[*]})"
    return 0
  fi

  need_root "installing ${missing[*]}"
  echo "setup: installing missing packages: ${missing[*]}"
  apt_update
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: apt-get install failed (output above): fix the cause, then rerun tools/setup.sh" >&2
    exit 1
  fi
  echo "setup: installed ${missing[*]}"
}

# ---- lwIP: Debian's source package into third_party/lwip (ignored by git) -------------------------
# The kernel builds lwIP's core from these sources with its own port files (core/net/lwip/).
# Nothing of lwIP is ever copied into the repository. A stamp file names the version fetched, so
# a second run costs one file read.
LWIP_VERSION=2.1.3+dfsg1
LWIP_DIR=$ROOT/third_party/lwip
LWIP_STAMP=$LWIP_DIR/.tandem-source

# A fresh Debian 12 has only `deb` entries; apt-get source needs a `deb-src` one for bookworm
# main. Adds /etc/apt/sources.list.d/tandem-deb-src.sources pointing at the same mirror as the
# existing `deb` entry for bookworm main (found through apt's own view of its index targets, so
# both one-line and deb822 source files count). Prints 1 when it added the entry.
ensure_deb_src() {
  local targets site
  targets=$(apt-get indextargets --format '$(CREATED_BY) $(SITE) $(RELEASE) $(COMPONENT)' 2>/dev/null | sort -u)
  if awk '$1 == "Sources" && $3 == "bookworm" && $4 == "main" { found = 1 } END { exit !found }' <<<"$targets"; then
    return 0
  fi
  site=$(awk '$1 == "Packages" && $3 == "bookworm" && $4 == "main" { print $2; exit }' <<<"$targets")
  if [ -z "$site" ]; then
    echo "setup: no 'deb' entry for bookworm main in /etc/apt/sources.list*: is this Debian 12?" >&2
    echo "setup: add a 'deb-src' line for bookworm main by hand, then rerun tools/setup.sh" >&2
    exit 1
  fi
  need_root "adding a deb-src entry for bookworm main"
  local file=/etc/apt/sources.list.d/tandem-deb-src.sources
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  {
    echo "# Added by tandem's tools/setup.sh: apt-get source lwip needs a deb-src entry."
    echo "Types: deb-src"
    echo "URIs: $site"
    echo "Suites: bookworm"
    echo "Components: main"
    [ -f "$keyring" ] && echo "Signed-By: $keyring"
  } | "${sudo[@]}" tee "$file" >/dev/null
  echo "setup: added $file (deb-src $site bookworm main)"
  apt_update
}

fetch_lwip() {
  if [ -f "$LWIP_STAMP" ] && [ "$(cat "$LWIP_STAMP")" = "lwip $LWIP_VERSION" ] \
     && [ -f "$LWIP_DIR/src/core/tcp.c" ]; then
    [ "$quiet" = 1 ] || echo "setup: lwIP $LWIP_VERSION source is in third_party/lwip"
    return 0
  fi
  ensure_deb_src
  # The Sources index may be missing even with the entry present (no update since it was added).
  if ! apt-cache showsrc lwip 2>/dev/null | grep -q '^Package: lwip$'; then
    [ "$apt_updated" = 1 ] || { need_root "apt-get update"; apt_update; }
  fi
  echo "setup: fetching lwIP $LWIP_VERSION (apt-get source lwip) into third_party/lwip"
  mkdir -p "$ROOT/third_party"
  local work
  work=$(mktemp -d "$ROOT/third_party/.lwip-fetch.XXXXXX")
  # apt-get source needs no root: it downloads into the current directory and unpacks there.
  if ! (cd "$work" && apt-get source lwip >"$log" 2>&1); then
    cat "$log" >&2
    rm -rf "$work"
    echo "setup: apt-get source lwip failed (output above)" >&2
    exit 1
  fi
  local unpacked=$work/lwip-$LWIP_VERSION
  if [ ! -f "$unpacked/src/core/tcp.c" ]; then
    echo "setup: apt-get source lwip did not unpack lwip-$LWIP_VERSION (got: $(ls "$work"))" >&2
    echo "setup: tandem's port is written for lwIP $LWIP_VERSION (Debian 12)" >&2
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$LWIP_DIR"
  mv "$unpacked" "$LWIP_DIR"
  echo "lwip $LWIP_VERSION" >"$LWIP_STAMP"
  rm -rf "$work"
  echo "setup: lwIP $LWIP_VERSION source is in third_party/lwip"
}

install_missing
for g in "${groups[@]}"; do
  case "$g" in
    lwip) fetch_lwip ;;
  esac
done
