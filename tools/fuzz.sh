#!/usr/bin/env bash
# tools/fuzz.sh: libFuzzer campaigns over the simulator (./tandem fuzz ARGS forwards here).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=$ROOT/build/host
COV=$ROOT/build/fuzz-cov

declare -A SUMMARY=(
  [syscall_seq]="up to 40 syscalls (all implemented + ENOSYS numbers) on 1-4 threads/CPUs, resources, hostile args, fuzzed schedule"
  [futex_sched]="the futex scenarios (mutex condvar semaphore barrier rwlock join), small, schedule from the input"
  [elf_load]="arbitrary bytes as an ELF: parse, load into a fresh address space, check the initial stack from user mode"
  [cpio]="arbitrary bytes as a newc archive: walk, mount, look up paths from the input"
  [virtqueue]="a hostile virtio-net device against the driver: set-up quirks, raw used entries, faults, frames"
  [net_rx]="Ethernet frames (raw, or ARP and IPv4 templates with good checksums) through the fake card and driver into lwIP"
  [path_walk]="up to 24 path operations (stat, open, mkdir, symlink, unlink, rmdir, rename, readlink, chdir, getcwd) checked against a model of Linux's rules"
)
TARGETS=(syscall_seq futex_sched elf_load cpio virtqueue net_rx path_walk)
declare -A MAX_LEN=([syscall_seq]=512 [futex_sched]=512 [elf_load]=65536 [cpio]=8192 [virtqueue]=1024 [net_rx]=4096 [path_walk]=1024)

usage() {
  cat <<'USAGE'
usage: ./tandem fuzz TARGET [--time SECONDS] [--jobs J] [--coverage]
       ./tandem fuzz --list | --help

Builds the host preset (ASan + UBSan + libFuzzer) and runs a campaign on TARGET:
  seeds    fuzz/corpus/TARGET (read only); new inputs go to build/fuzz/TARGET/corpus
  crashes  build/fuzz/TARGET/crashes/ (each is minimized; the replay command is printed); an
           input that runs over 30 s is a crash (timeout-*), one over 10 s is kept as slow-unit-*
  --time SECONDS   total time (default 60)
  --jobs J         parallel fuzzing processes (default 1)
  --coverage       instead of fuzzing: build instrumented in build/fuzz-cov (plain cmake, no
                   preset) and write an llvm-cov report of core/ from the seeds, the campaign's
                   corpus and the regressions to build/fuzz-cov/report/ (index.html, core.txt);
                   TARGET "all" merges every target into one report
Replay one input:  build/host/fuzz/fuzz_TARGET FILE
Regressions (fuzz/regress/TARGET) and smoke runs: ctest --test-dir build/host -L fuzz
Exit status: 0 no crash, 1 crash found, 2 bad arguments.
USAGE
}
die() { echo "tandem fuzz: $*" >&2; exit 2; }
list() { for t in "${TARGETS[@]}"; do printf '  %-12s %s\n' "$t" "${SUMMARY[$t]}"; done; }

TARGET= TIME=60 JOBS=1 COVERAGE=0
[ $# -gt 0 ] || { usage >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help|help) usage; exit 0 ;;
    --list) list; exit 0 ;;
    --time) { [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ]; } || die "--time needs a positive number of seconds"
            TIME=$2; shift 2 ;;
    --jobs) { [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ]; } || die "--jobs needs a positive number"
            JOBS=$2; shift 2 ;;
    --coverage) COVERAGE=1; shift ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$TARGET" ] || die "one target only (got $TARGET and $1)"; TARGET=$1; shift ;;
  esac
done
[ -n "$TARGET" ] || die "no target given (./tandem fuzz --list)"
[ -n "${SUMMARY[$TARGET]+x}" ] || { [ "$TARGET" = all ] && [ "$COVERAGE" = 1 ]; } \
  || die "unknown target '$TARGET'; targets: ${TARGETS[*]} (and 'all' with --coverage)"

cd "$ROOT"
if [ "$COVERAGE" = 1 ]; then
  # One target, or all of them merged into one report (TARGET "all").
  if [ "$TARGET" = all ]; then cov_targets=("${TARGETS[@]}"); else cov_targets=("$TARGET"); fi
  flags="-fprofile-instr-generate -fcoverage-mapping"
  cmake -S . -B "$COV" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" -DTANDEM_TARGET=host -DTANDEM_SANITIZE=OFF \
    -DTANDEM_FUZZ=ON -DTANDEM_FUZZ_INSTRUMENT_CORE=OFF >/dev/null
  cmake --build "$COV" -j2 --target "${cov_targets[@]/#/fuzz_}" >/dev/null
  rm -rf "$COV/profiles" "$COV/report"; mkdir -p "$COV/profiles" "$COV/report"
  objects=()
  for t in "${cov_targets[@]}"; do
    dirs=("fuzz/corpus/$t")
    [ -d "build/fuzz/$t/corpus" ] && dirs+=("build/fuzz/$t/corpus")
    [ -d "fuzz/regress/$t" ] && dirs+=("fuzz/regress/$t")
    echo "$t: replaying ${dirs[*]}"
    LLVM_PROFILE_FILE="$COV/profiles/$t-%p.profraw" "$COV/fuzz/fuzz_$t" -runs=0 "${dirs[@]}" 2>&1 | grep -E "DONE|==fuzz" || true
    objects+=(-object "$COV/fuzz/fuzz_$t")
  done
  llvm-profdata merge -sparse "$COV"/profiles/*.profraw -o "$COV/profiles/merged.profdata"
  # llvm-cov takes the first binary as a positional argument and the others with -object.
  llvm-cov show "${objects[@]:1}" -instr-profile="$COV/profiles/merged.profdata" -format=html \
    -output-dir="$COV/report" "$ROOT/core" >/dev/null
  llvm-cov report "${objects[@]:1}" -instr-profile="$COV/profiles/merged.profdata" "$ROOT/core" \
    >"$COV/report/core.txt"
  echo "core/ coverage (${cov_targets[*]}): regions, functions, lines, branches:"
  tail -1 "$COV/report/core.txt"
  echo "coverage report: $COV/report/index.html and $COV/report/core.txt"
  exit 0
fi

cmake --preset host >/dev/null
cmake --build --preset host --target "fuzz_$TARGET" >/dev/null
BIN=$HOST/fuzz/fuzz_$TARGET
WORK=$ROOT/build/fuzz/$TARGET
mkdir -p "$WORK/corpus" "$WORK/crashes"
dict=()
[ -f "fuzz/dict/$TARGET.dict" ] && dict=(-dict="fuzz/dict/$TARGET.dict")
before=$(ls "$WORK/crashes" | grep -v -e '^minimized-' -e '^slow-unit-' | sort || true)
echo "fuzzing $TARGET for ${TIME}s with $JOBS job(s); new inputs in $WORK/corpus"
cd "$WORK"  # with -jobs, libFuzzer writes fuzz-N.log into the current directory
set +e
if [ "$JOBS" -gt 1 ]; then
  "$BIN" -max_total_time="$TIME" -jobs="$JOBS" -workers="$JOBS" -max_len="${MAX_LEN[$TARGET]}" -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$WORK/crashes/" "${dict[@]/#-dict=/-dict=$ROOT/}" "$WORK/corpus" "$ROOT/fuzz/corpus/$TARGET" >"$WORK/last.log" 2>&1 &
  pid=$!
  sleep 2
  tail -q -n +1 -F "$WORK"/fuzz-*.log 2>/dev/null | grep --line-buffered -E "INITED|pulse|DONE|==fuzz|ERROR" &
  tailer=$!
  wait $pid
  kill $tailer 2>/dev/null
else
  "$BIN" -max_total_time="$TIME" -max_len="${MAX_LEN[$TARGET]}" -timeout=30 -print_final_stats=1 -artifact_prefix="$WORK/crashes/" \
    "${dict[@]/#-dict=/-dict=$ROOT/}" "$WORK/corpus" "$ROOT/fuzz/corpus/$TARGET" 2>&1 \
    | tee "$WORK/last.log" | grep --line-buffered -E "INITED|pulse|DONE|==fuzz|ERROR|stat::"
fi
set -e
cd "$ROOT"
after=$(ls "$WORK/crashes" | grep -v -e '^minimized-' -e '^slow-unit-' | sort || true)
new=$(comm -13 <(echo "$before") <(echo "$after") | grep . || true)
[ -z "$new" ] && { echo "no crashes"; exit 0; }
for f in $new; do
  crash=$WORK/crashes/$f
  echo "CRASH: $crash"
  "$BIN" -minimize_crash=1 -max_total_time=60 -exact_artifact_path="$WORK/crashes/minimized-$f" "$crash" \
    >"$WORK/minimize-$f.log" 2>&1 || true
  [ -f "$WORK/crashes/minimized-$f" ] && crash=$WORK/crashes/minimized-$f && echo "minimized: $crash"
  echo "replay:  build/host/fuzz/fuzz_$TARGET $crash"
done
exit 1
