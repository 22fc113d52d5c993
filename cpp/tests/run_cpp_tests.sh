#!/usr/bin/env bash
# Builds and runs the C++ kernel tests (cpp/tests/test_kernels.cpp) twice:
#   x86-64  natively: scalar + AVX2 (only isa_avx2*.cpp get -mavx2 -mfma -mf16c) + AVX-512
#           (isa_avx512*.cpp: F, DQ, BW, VL; run where the CPU has them, else reported skipped);
#   aarch64 with Debian's cross compiler, static, under qemu-aarch64: scalar + NEON.
# On an aarch64 host the NEON binary is built and run natively instead, without x86-64.
# No flag tunes for the host CPU: the kernel set is chosen at run time.
#
# Usage: cpp/tests/run_cpp_tests.sh [BUILD_DIR]      (default: build/cpp-tests in the repo)
# Environment: CXX (g++), CROSS_CXX (aarch64-linux-gnu-g++), QEMU (qemu-aarch64),
#              TEST_ARGS (extra arguments for both test binaries, e.g. --verbose).
# Exits non-zero if any build or run fails; prints each run's final "N passed, M failed".
set -u -o pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$repo/build/cpp-tests}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
CXX=${CXX:-g++}
CROSS_CXX=${CROSS_CXX:-aarch64-linux-gnu-g++}
QEMU=${QEMU:-qemu-aarch64}
read -r -a test_args <<< "${TEST_ARGS:-}"

flags=(-O2 -std=c++17 -ffp-contract=off -Wall -Wextra -I"$repo/cpp/include" -I"$repo/cpp/src")
common=("$repo"/cpp/src/{isa_scalar,dispatch,threadpool,api}.cpp "$repo/cpp/tests/test_kernels.cpp")
avx512=(-mavx2 -mfma -mf16c -mavx512f -mavx512dq -mavx512bw -mavx512vl)
host=$(uname -m)

build_x86_64() {
  mkdir -p "$out/x86_64" &&
    "$CXX" "${flags[@]}" -DXENT_HAVE_AVX2 -mavx2 -mfma -mf16c -c "$repo/cpp/src/isa_avx2.cpp" -o "$out/x86_64/isa_avx2.o" &&
    "$CXX" "${flags[@]}" -DXENT_HAVE_AVX2 -mavx2 -mfma -mf16c -c "$repo/cpp/src/isa_avx2_sigopt.cpp" \
      -o "$out/x86_64/isa_avx2_sigopt.o" &&
    "$CXX" "${flags[@]}" -DXENT_HAVE_AVX2 "${avx512[@]}" -c "$repo/cpp/src/isa_avx512.cpp" -o "$out/x86_64/isa_avx512.o" &&
    "$CXX" "${flags[@]}" -DXENT_HAVE_AVX2 "${avx512[@]}" -c "$repo/cpp/src/isa_avx512_sigopt.cpp" \
      -o "$out/x86_64/isa_avx512_sigopt.o" &&
    "$CXX" "${flags[@]}" -DXENT_HAVE_AVX2 "${common[@]}" "$out/x86_64/"isa_avx{2,2_sigopt,512,512_sigopt}.o \
      -pthread -o "$out/x86_64/test_kernels"
}

build_aarch64() {
  local cxx=$CROSS_CXX extra=(-static)
  [[ $host == aarch64 ]] && cxx=$CXX && extra=()
  mkdir -p "$out/aarch64" &&
    "$cxx" "${flags[@]}" -DXENT_HAVE_NEON "${extra[@]}" "${common[@]}" "$repo/cpp/src/isa_neon.cpp" \
      "$repo/cpp/src/isa_neon_sigopt.cpp" -pthread \
      -o "$out/aarch64/test_kernels"
}

# Runs build function $2 for target $1, logging to $out/$1.build.log; shows the log on failure.
build() {
  local log="$out/$1.build.log"
  if "$2" > "$log" 2>&1; then
    [[ -s $log ]] && echo "[$1] built, with compiler messages: $log"
    return 0
  fi
  echo "[$1] BUILD FAILED:"
  cat "$log"
  return 1
}

# Runs a test binary, showing and logging its output; records its last line.
declare -A summary
run() {
  local name=$1
  shift
  echo "=== $name: $*"
  "$@" "${test_args[@]}" 2>&1 | tee "$out/$name.log"
  local rc=$?
  summary[$name]="$(tail -n 1 "$out/$name.log") (exit $rc)"
  return $rc
}

status=0
start=$SECONDS
targets=()
if [[ $host == x86_64 ]]; then
  # the cross build runs in the background while the native one is built and run
  build aarch64 build_aarch64 > "$out/aarch64.build.out" 2>&1 &
  arm_build=$!
  targets+=(x86_64)
  if build x86_64 build_x86_64; then
    run x86_64 "$out/x86_64/test_kernels" || status=1
  else
    status=1
    summary[x86_64]="build failed"
  fi
  wait "$arm_build"
  arm_rc=$?
  cat "$out/aarch64.build.out"
  targets+=(aarch64)
  if [[ $arm_rc == 0 ]]; then
    run aarch64 "$QEMU" "$out/aarch64/test_kernels" || status=1
  else
    status=1
    summary[aarch64]="build failed"
  fi
elif [[ $host == aarch64 ]]; then
  targets+=(aarch64)
  if build aarch64 build_aarch64; then
    run aarch64 "$out/aarch64/test_kernels" || status=1
  else
    status=1
    summary[aarch64]="build failed"
  fi
else
  echo "unsupported host architecture: $host" >&2
  exit 2
fi

echo "=== summary ($((SECONDS - start)) s)"
for t in "${targets[@]}"; do echo "$t: ${summary[$t]}"; done
exit $status
