# tools/payload-root.sh: sourced by tools/erlang.sh and tools/elixir.sh, the parts of a payload
# boot they share: the work directory and its root's /etc files, PID 1's argv and environment
# (/etc/tandem/init.args, which the kernel reads for `initargs=`), and the initramfs.
# The caller sets ROOT and initrd_out (empty: build and boot; a file: --initrd-out).

# payload_root NAME: sets work (build/NAME, or with --initrd-out a temporary directory removed at
# exit) and makes a fresh $work/root with /etc/passwd, /etc/group and /etc/hostname.
payload_root() {
  work=$ROOT/build/$1
  if [ -n "$initrd_out" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-$1.XXXXXX")
    trap 'rm -rf "$work"' EXIT
  fi
  rm -rf "$work/root"
  mkdir -p "$work/root/etc/tandem"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$work/root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/root/etc/group"
  echo tandem >"$work/root/etc/hostname"
}

# write_init_args ARGV_ARRAY ENV_ARRAY (array names): PID 1's argv and environment, each string
# NUL-terminated and an empty string between the two lists, so any bytes (an expression with
# spaces or quotes) pass unchanged.
write_init_args() {
  local -n init_argv_=$1 init_env_=$2
  {
    printf '%s\0' "${init_argv_[@]}"
    printf '\0'
    printf '%s\0' "${init_env_[@]}"
  } >"$work/root/etc/tandem/init.args"
}

# pack_initramfs PAYLOAD INIT: packs $work/root with tools/mkinitramfs --payload PAYLOAD into
# $work/initramfs.cpio. With --initrd-out it writes that file instead, prints the kernel command
# line that boots it (INIT as PID 1) and exits.
pack_initramfs() {
  if [ -n "$initrd_out" ]; then
    python3 "$ROOT/tools/mkinitramfs" -o "$initrd_out" --payload "$1" --dir "$work/root"
    echo "init=$2 initargs=/etc/tandem/init.args"
    exit 0
  fi
  python3 "$ROOT/tools/mkinitramfs" -o "$work/initramfs.cpio" --payload "$1" --dir "$work/root"
}
