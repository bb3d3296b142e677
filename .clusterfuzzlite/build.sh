#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: honours $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $OUT.
# Locally: CC=clang CXX=clang++ CFLAGS= CXXFLAGS= LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out bash .clusterfuzzlite/build.sh
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${WORK:-/tmp}/tandem-cfl-build
mkdir -p "$OUT"
# With sanitizer/coverage flags in CFLAGS (ClusterFuzzLite) everything is instrumented already;
# without them (a local run), the fuzz build instruments core/ itself.
instrument=ON
case "${CFLAGS:-}" in *fuzzer-no-link*) instrument=OFF ;; esac
cmake -S "$SRC_DIR" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="${CFLAGS:-}" -DCMAKE_CXX_FLAGS="${CXXFLAGS:-}" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g" \
  -DTANDEM_TARGET=host -DTANDEM_SANITIZE=OFF -DTANDEM_FUZZ=ON \
  -DTANDEM_FUZZ_ENGINE_FLAGS="$LIB_FUZZING_ENGINE" -DTANDEM_FUZZ_INSTRUMENT_CORE=$instrument
targets="syscall_seq futex_sched elf_load cpio path_walk"
cmake --build "$BUILD" --target $(for t in $targets; do echo "fuzz_$t"; done)
for t in $targets; do
  cp "$BUILD/fuzz/fuzz_$t" "$OUT/$t"
  (cd "$SRC_DIR/fuzz/corpus/$t" && zip -q -r -j "$OUT/${t}_seed_corpus.zip" .)
  [ -f "$SRC_DIR/fuzz/dict/$t.dict" ] && cp "$SRC_DIR/fuzz/dict/$t.dict" "$OUT/$t.dict"
  case $t in elf_load) max_len=65536 ;; cpio) max_len=8192 ;; path_walk) max_len=1024 ;; *) max_len=512 ;; esac
  printf '[libfuzzer]\nmax_len = %s\n' "$max_len" > "$OUT/$t.options"
done
