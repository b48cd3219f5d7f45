#!/usr/bin/env bash
# ARM64 NEON kernels on an x86 machine: cross-compiles them with Debian's aarch64-linux-gnu-g++
# (the flags binding.gyp uses for arm64; +dotprod on packed_neon_dot.cc only) together with the
# portable kernels and the test driver native/test/neon_test.cc, and runs the driver under
# qemu-user twice:
#   -cpu max         asimddp present: GEMM/GEMV, every fused op, packed (sdot and plain paths), LUT;
#   -cpu cortex-a53  ARMv8.0, no asimddp: the runtime check must say so; packed and LUT again.
# Then cross-builds the whole addon for arm64 with node-gyp (binding.gyp's arm64 conditions), so an
# arm64 build break shows here. Prints "neon: ..." lines and a summary; exit 1 on a failure.
# Skips (one line, exit 0) when the cross compiler or qemu-aarch64 is missing
# (Debian: apt-get install g++-aarch64-linux-gnu qemu-user). Runs on an arm64 host too (no qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
CXX=${TFREE_AARCH64_CXX:-aarch64-linux-gnu-g++}
QEMU=${TFREE_QEMU_AARCH64:-qemu-aarch64}
native=0
if [ "$(uname -m)" = aarch64 ] && ! command -v "$CXX" >/dev/null 2>&1; then
  CXX=${CXX_NATIVE:-g++}
  native=1
fi
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "neon: skipped ($CXX not found; Debian: apt-get install g++-aarch64-linux-gnu qemu-user)"
  exit 0
fi
if [ "$native" = 0 ] && ! command -v "$QEMU" >/dev/null 2>&1; then
  echo "neon: skipped ($QEMU not found; Debian: apt-get install qemu-user)"
  exit 0
fi
out=native/build/neon
mkdir -p "$out"
# as binding.gyp's arm64 build: -ffp-contract=off keeps the portable kernels' float32 operations
# unfused (GCC contracts a*b+c into fmadd on aarch64 even with -std=c++17)
FLAGS=(-O3 -std=c++17 -fno-exceptions -fPIC -pthread -ffp-contract=off -Wall -Wextra)
headers=(native/kernels.h native/threadpool.h native/ops_impl.h native/gemm_driver.h native/cpu.h native/dispatch.h)
objs=()
pids=()
ok=1
compile() {  # src obj extra-flags...: skipped when the object is newer than the source and headers
  local src=$1 obj=$2
  shift 2
  objs+=("$obj")
  local stale=0
  [ -f "$obj" ] || stale=1
  for f in "$src" "${headers[@]}" scripts/test-neon.sh; do [ "$f" -nt "$obj" ] && stale=1; done
  [ "$stale" = 0 ] && return 0
  if [ "${#pids[@]}" -ge 3 ]; then  # at most 3 compilers at a time
    wait "${pids[0]}" || ok=0
    pids=("${pids[@]:1}")
  fi
  "$CXX" "${FLAGS[@]}" "$@" -c "$src" -o "$obj" &
  pids+=($!)
}
for s in cpu dispatch avx2_stub threadpool gemm_generic ops_generic packed_generic packed_lut_generic bf16_generic gemm_neon ops_neon packed_neon packed_lut_neon; do
  compile "native/$s.cc" "$out/$s.o"
done
compile native/packed_neon_dot.cc "$out/packed_neon_dot.o" -march=armv8.2-a+dotprod
compile native/test/neon_test.cc "$out/neon_test.o" -O2
for p in "${pids[@]}"; do wait "$p" || ok=0; done
if [ "$ok" = 0 ]; then
  echo "neon: FAIL (cross-compiling the NEON kernels or the test driver failed)"
  exit 1
fi
if ! "$CXX" -static -pthread -o "$out/neon_test" "${objs[@]}" 2>/dev/null; then
  "$CXX" -pthread -o "$out/neon_test" "${objs[@]}"  # no static libc: qemu needs -L (below)
fi
build_s=$(( $(date +%s) - start ))
fail=0
# the 8x12 micro-kernel's k-loop (the backward branch with the by-lane fmla's) must not touch the
# stack: GCC spilling an accumulator cost the AVX2 kernel 3x (docs/design.md)
OBJDUMP=${CXX%g++}objdump
[ "$native" = 1 ] && OBJDUMP=objdump
loop_awk='
# prints the backward-branch loop with the most by-lane fmla'\''s of one disassembled function
{ line[NR] = $0; a = $1; sub(/:$/, "", a); idx[a] = NR }
END {
  bf = -1
  for (i = 1; i <= NR; i++) {
    if (line[i] ~ /\tb\.[a-z]+\t[0-9a-f]+ </) {
      split(line[i], p, "\t"); split(p[length(p) > 3 ? 4 : 3], q, " ")
      t = q[1]
      if ((t in idx) && idx[t] < i) {
        n = 0
        for (j = idx[t]; j <= i; j++) if (line[j] ~ /fmla.*\.s\[/) n++
        if (n > bf) { bf = n; s0 = idx[t]; s1 = i }
      }
    }
  }
  if (bf >= 0) for (j = s0; j <= s1; j++) print line[j]
}
'
if command -v "$OBJDUMP" >/dev/null 2>&1; then
  loop=$("$OBJDUMP" -d --no-show-raw-insn -C "$out/gemm_neon.o" | awk '/ukernel_8x12.*>:$/{f=1;next} f&&/^$/{f=0} f' | awk "$loop_awk")
  nf=$(printf '%s\n' "$loop" | grep -c 'fmla' || true)
  ns=$(printf '%s\n' "$loop" | grep -c '\bsp\b' || true)
  if [ "$nf" -ge 24 ] && [ "$ns" = 0 ]; then
    echo "neon: gemm 8x12 micro-kernel k-loop: $nf fmla, no stack access"
  else
    echo "neon: FAIL gemm 8x12 micro-kernel k-loop: $nf fmla, $ns stack accesses (accumulator spills?)"
    fail=1
  fi
fi
run() {  # cpu args...
  local cpu=$1
  shift
  if [ "$native" = 1 ]; then
    "$out/neon_test" "$@"
  else
    "$QEMU" -cpu "$cpu" -L /usr/aarch64-linux-gnu "$out/neon_test" "$@"
  fi
}
# the +dotprod object exports no weak (COMDAT) symbols: the linker could pick such a copy of an
# inline function for code that runs on CPUs without dotprod (as check-spills.sh checks for AVX2)
NM=${CXX%g++}nm
[ "$native" = 1 ] && NM=nm
if command -v "$NM" >/dev/null 2>&1; then
  weak=$("$NM" -C "$out/packed_neon_dot.o" | grep -E ' [WVu] ' || true)
  if [ -z "$weak" ]; then
    echo "neon: packed_neon_dot.o (+dotprod) exports no weak symbols"
  else
    echo "neon: FAIL packed_neon_dot.o (+dotprod) exports weak symbols: $weak"
    fail=1
  fi
fi
echo "neon: qemu -cpu max (ARMv8.x with asimddp)"
run max --expect-dotprod yes || fail=1
if [ "$native" = 0 ]; then
  echo "neon: qemu -cpu cortex-a53 (ARMv8.0, no asimddp)"
  run cortex-a53 --groups dispatch,packed,lut --expect-dotprod no || fail=1
fi
# the whole addon cross-builds for arm64 with node-gyp (binding.gyp's arm64 conditions: NEON
# libraries, +dotprod on one file, -ffp-contract=off) in a copy of native/ (incremental: make
# rebuilds what changed); without node-gyp or Node headers, object files of the addon sources only
if [ "$native" = 0 ]; then
  prefix=""
  if command -v node >/dev/null 2>&1; then prefix=$(node -p "require('path').resolve(process.execPath, '../..')"); fi
  gyp="$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
  if [ -n "${npm_config_node_gyp:-}" ] && [ -f "$npm_config_node_gyp" ]; then gyp=$npm_config_node_gyp; fi
  if [ -n "$prefix" ] && [ -f "$prefix/include/node/node_api.h" ] && [ -f "$gyp" ]; then
    src="$out/gyp"
    mkdir -p "$src"
    cp -pu native/*.cc native/*.h native/binding.gyp "$src/"
    log="$out/gyp.log"
    if ( cd "$src" && export CC="${CXX%++}cc" CXX="$CXX" LINK="$CXX" AR="${CXX%g++}ar" npm_config_nodedir="$prefix" &&
         { [ -f build/Makefile ] && [ build/Makefile -nt binding.gyp ] || node "$gyp" configure --arch=arm64 --nodedir="$prefix" --loglevel=error; } &&
         node "$gyp" build --jobs=2 --loglevel=error ) >"$log" 2>&1 &&
       file "$src/build/Release/tfree_native.node" | grep -q aarch64; then
      echo "neon: addon cross-builds for arm64 with node-gyp ($src/build/Release/tfree_native.node, $(file -b "$src/build/Release/tfree_native.node" | cut -d, -f1-2))"
    else
      tail -20 "$log"
      echo "neon: FAIL the addon does not cross-build for arm64 (log: $log)"
      fail=1
    fi
  elif [ -n "$prefix" ] && [ -f "$prefix/include/node/node_api.h" ]; then
    pids=()
    objs=()
    FLAGS=(-O3 -std=c++17 -fno-exceptions -fPIC -pthread -ffp-contract=off -w)
    for s in addon boxte; do compile "native/$s.cc" "$out/addon_$s.o" -I "$prefix/include/node"; done
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    if [ "$ok" = 1 ]; then
      echo "neon: addon sources compile for aarch64 (object files; node-gyp not found)"
    else
      echo "neon: FAIL addon sources do not compile for aarch64"
      fail=1
    fi
  else
    echo "neon: addon cross-build skipped (no Node headers found)"
  fi
fi
total_s=$(( $(date +%s) - start ))
if [ "$fail" = 0 ]; then
  echo "neon: PASS in ${total_s} s (build ${build_s} s)"
else
  echo "neon: FAILED in ${total_s} s"
  exit 1
fi
