#!/usr/bin/env bash
# The AVX-512 kernels on a CPU without AVX-512: builds the whole addon once more (g++ directly,
# native/build/emu512/tfree_native.node) with every AVX-512 / AVX-512 VNNI / AVX-512 BF16 / AVX-VNNI
# file compiled for AVX2 + FMA + F16C and force-included native/emu/avx512_emu.h, which emulates
# their intrinsics with portable code; -DTFREE_EMU_AVX512 makes cpu.cc report those features and
# turns BoxTE's AVX-512 loops (boxte.cc, AVX512_FN) into AVX2-target code with the same intrinsics.
# The AMX-BF16 kernel (bf16_amx.cc) likewise, with native/emu/amx_emu.h (a per-thread tile state);
# cpu.cc then reports amx-tile / amx-bf16 / amx-permitted too, and bf16's opt-in amx-bf16 is listed.
# Runs native/emu/emu_selftest.cc first (each emulated intrinsic against the scalar reference of
# native/emu/avx512_ref.h, special values, every immediate, masked accesses at a page end), and
# native/emu/amx_selftest.cc (the tile instructions against native/emu/amx_ref.h).
# Then runs the kernel test suites with that addon (TFREE_NATIVE_PATH) and TFREE_ISA=avx512: they
# run every path of each family that the addon reports (gemm avx512, or avx512-zmm when the host is
# an AMD family 0x19 CPU, where avx2 is the default GEMM; packed avx512-vnni / avx512-ymm /
# avxvnni, packedLut avx512, bf16 amx-bf16 / avx512-bf16 / avx512, ops and BoxTE at avx512) against
# the TS twins and float64 references, with the bit-identity the tests require on real hardware.
# What this proves and what not: docs/design.md ("AVX-512 under emulation").
# Prints "avx512-emu: ..." lines and a summary; exit 1 on a failure. Skips (one line, exit 0) on a
# CPU that is not x86_64 or lacks AVX2 / FMA / F16C, or without g++ / Node headers / the TS build.
#   TFREE_EMU_ONLY=build    build the addon only
#   TFREE_EMU_TESTS="..."   run-tests.mjs filters instead of the default set (below)
#   TFREE_EMU_COVERAGE=1    build with --coverage (native/build/emu512cov) and print which functions
#                           of the emulated files and of boxte.cc's AVX-512 loops never ran (gcov)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
if [ "$(uname -m)" != x86_64 ]; then
  echo "avx512-emu: skipped (not x86_64)"
  exit 0
fi
for f in avx2 fma f16c; do
  if ! grep -qw "$f" /proc/cpuinfo 2>/dev/null; then
    echo "avx512-emu: skipped (this CPU lacks $f)"
    exit 0
  fi
done
CXX=${CXX:-g++}
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "avx512-emu: skipped ($CXX not found)"
  exit 0
fi
prefix=$(node -p "require('path').resolve(process.execPath, '../..')")
if [ ! -f "$prefix/include/node/node_api.h" ]; then
  echo "avx512-emu: skipped (no Node headers under $prefix/include/node)"
  exit 0
fi
out=native/build/emu512
COV=()
if [ "${TFREE_EMU_COVERAGE:-}" = 1 ]; then  # gcov of the emulated files and boxte.cc (slower)
  out=native/build/emu512cov
  COV=(--coverage)
fi
mkdir -p "$out"
EMU=native/emu/avx512_emu.h
# binding.gyp's flags (node-gyp's Release defaults included); -Wno-psabi: 64-byte vectors passed
# without AVX-512 change the ABI of (internal, always-inlined) functions, nothing exported
FLAGS=(-O3 -std=c++17 -fno-exceptions -fno-rtti -fPIC -pthread -m64 -fno-omit-frame-pointer -Wall -Wextra
  -Wno-unused-parameter -Wno-psabi -DNODE_GYP_MODULE_NAME=tfree_native -DBUILDING_NODE_EXTENSION
  -DTFREE_EMU_AVX512 -I "$prefix/include/node")
EMUFLAGS=(-mavx2 -mfma -mf16c -include "$EMU")
AMXEMU=native/emu/amx_emu.h
headers=(native/*.h "$EMU" "$AMXEMU")
objs=()
pids=()
ok=1
compile() {  # src obj extra-flags...: skipped when the object is newer than the source, headers and this script
  local src=$1 obj=$2
  shift 2
  objs+=("$obj")
  local stale=0
  [ -f "$obj" ] || stale=1
  for f in "$src" "${headers[@]}" scripts/test-avx512-emu.sh; do [ "$f" -nt "$obj" ] && stale=1; done
  [ "$stale" = 0 ] && return 0
  if [ "${#pids[@]}" -ge "${TFREE_EMU_JOBS:-2}" ]; then  # at most 2 compilers at a time
    wait "${pids[0]}" || ok=0
    pids=("${pids[@]:1}")
  fi
  "$CXX" "${FLAGS[@]}" "$@" -c "$src" -o "$obj" 2>"$obj.log" &
  pids+=($!)
}
# the production build's files and flags (binding.gyp), except the emulated ones
for s in addon cpu dispatch threadpool gemm_generic ops_generic packed_generic packed_lut_generic bf16_generic quant_generic neon_stub; do
  compile "native/$s.cc" "$out/$s.o"
done
compile native/boxte.cc "$out/boxte.o" -include "$EMU" ${COV[@]+"${COV[@]}"}  # AVX512_FN: target("avx2,fma,f16c") in this build
for s in gemm_avx2 ops_avx2 packed_avx2 packed_lut_avx2 bf16_avx2; do
  compile "native/$s.cc" "$out/$s.o" -mavx2 -mfma
done
# AVX-512 F/BW/VL/DQ, AVX-512 VNNI, AVX-512 BF16, AVX-VNNI kernel files (emulated; also the coverage list below)
emulated=(gemm_avx512 ops_avx512 packed_lut_avx512 bf16_avx512 packed_avx512 bf16_avx512bf16 packed_avxvnni)
for s in "${emulated[@]}" probe_vnni; do
  compile "native/$s.cc" "$out/$s.o" "${EMUFLAGS[@]}" ${COV[@]+"${COV[@]}"}
done
# AMX-TILE / AMX-BF16 (emulated: the tile intrinsics of native/emu/amx_emu.h, a per-thread tile state)
compile native/bf16_amx.cc "$out/bf16_amx.o" -mavx2 -mfma -mf16c -include "$AMXEMU" ${COV[@]+"${COV[@]}"}
for p in "${pids[@]}"; do wait "$p" || ok=0; done
if [ "$ok" = 0 ]; then
  for o in "${objs[@]}"; do [ -s "$o.log" ] && grep -m5 -B2 -A3 'error' "$o.log"; done
  echo "avx512-emu: FAIL (compiling the emulation build failed; logs: $out/*.o.log)"
  exit 1
fi
addon="$out/tfree_native.node"
relink=0
[ -f "$addon" ] || relink=1
for o in "${objs[@]}"; do [ "$o" -nt "$addon" ] && relink=1; done
if [ "$relink" = 1 ]; then
  "$CXX" -shared -pthread -rdynamic -m64 ${COV[@]+"${COV[@]}"} -o "$addon" "${objs[@]}" -ldl
fi
build_s=$(( $(date +%s) - start ))
nw=$(cat "$out"/*.o.log 2>/dev/null | grep -c 'warning:' || true)
echo "avx512-emu: built $addon in ${build_s} s ($nw compiler warnings: $out/*.o.log)"
[ "${TFREE_EMU_ONLY:-}" = build ] && exit 0
fail=0
# the emulation itself: every emulated intrinsic against a scalar reference written apart from it
st="$out/emu_selftest"
if [ ! -f "$st" ] || [ native/emu/emu_selftest.cc -nt "$st" ] || [ native/emu/selftest_rng.h -nt "$st" ] || [ native/emu/avx512_ref.h -nt "$st" ] || [ "$EMU" -nt "$st" ]; then
  "$CXX" -O2 -std=c++17 -mavx2 -mfma -mf16c -ffp-contract=off -Wall -Wextra -Wno-psabi -include "$EMU" -I native/emu \
    native/emu/emu_selftest.cc -o "$st"
fi
"$st" || fail=1
# and the tile instructions against theirs (native/emu/amx_ref.h)
ast="$out/amx_selftest"
if [ ! -f "$ast" ] || [ native/emu/amx_selftest.cc -nt "$ast" ] || [ native/emu/selftest_rng.h -nt "$ast" ] || [ native/emu/amx_ref.h -nt "$ast" ] || [ "$AMXEMU" -nt "$ast" ]; then
  "$CXX" -O2 -std=c++17 -mavx2 -mfma -mf16c -ffp-contract=off -Wall -Wextra -include "$AMXEMU" -I native/emu \
    native/emu/amx_selftest.cc -o "$ast"
fi
"$ast" || fail=1
# the build is what it claims: no AVX-512 / VNNI / BF16 instruction in any object (so nothing ran on
# real hardware by accident, and the process cannot SIGILL here)
if command -v objdump >/dev/null 2>&1; then
  bad=$(for o in "${objs[@]}"; do objdump -d --no-show-raw-insn "$o" | grep -qE '%zmm|%k[0-7]|vpdpbusd|vdpbf16|vcvtne2ps2bf16|%tmm|tilecfg|tilerelease' && echo "$o"; done || true)
  if [ -z "$bad" ]; then
    echo "avx512-emu: no AVX-512 / VNNI / BF16 / AMX instruction in the build's objects (objdump)"
  else
    echo "avx512-emu: FAIL objects with AVX-512 / AMX instructions: $bad"
    fail=1
  fi
fi
if [ ! -f dist/src/cli/main.js ]; then
  echo "avx512-emu: FAIL dist/ is missing: build the TypeScript first (npx tsc -p tsconfig.json)"
  exit 1
fi
export TFREE_NATIVE_PATH="$PWD/$addon" TFREE_ISA=avx512
# the AVX-512 GEMM is listed: as avx512 (the default), or as avx512-zmm (listed, not the default) on a
# host of AMD family 0x19 (dispatch.cc splits_512: Zen 4 runs its avx2 GEMM; Zen 3 has no AVX-512 but
# is the same family), and the gemm tests run it under either name
gemmpaths=$(node --input-type=module -e "const m = await import('./dist/src/tensor/kernels/native.js'); const r = m.loadNative(); console.log('error' in r ? r.error : r.extras.familyPaths('gemm').join(' '))")
case "${gemmpaths%% *}" in
  avx512) gemmwant=avx512 ;;
  avx512-zmm) gemmwant=avx2 ;;
  *)
    gemmwant=avx512
    echo "avx512-emu: FAIL gemm paths do not start with avx512 or avx512-zmm: $gemmpaths"
    fail=1
    ;;
esac
echo "avx512-emu: gemm paths: $gemmpaths"
# the emulated paths must be the ones in force
info=$(node dist/src/cli/main.js info)
want="ops=avx512, gemm=$gemmwant, packed=avx512-vnni, packedLut=avx512, boxte=avx512, bf16=avx512-bf16"
if printf '%s\n' "$info" | grep -q "kernel path per family: $want"; then
  echo "avx512-emu: tfree info: $(printf '%s\n' "$info" | grep 'kernel path per family')"
else
  printf '%s\n' "$info"
  echo "avx512-emu: FAIL tfree info does not show the emulated paths in force ($want)"
  fail=1
fi
# amx-bf16 is listed (opt-in: not the default until measured on a real AMX CPU, dispatch.cc)
bf16paths=$(node --input-type=module -e "const m = await import('./dist/src/tensor/kernels/native.js'); const r = m.loadNative(); console.log('error' in r ? r.error : r.extras.familyPaths('bf16').join(' '))")
if [ "${bf16paths%% *}" = amx-bf16 ]; then
  echo "avx512-emu: bf16 paths: $bf16paths"
else
  echo "avx512-emu: FAIL bf16 paths do not start with amx-bf16: $bf16paths"
  fail=1
fi
# The suites that run native kernels. Each kernel test runs every path of its family that the addon
# reports (kernels/ and tensor/: ops at avx512, avx2, generic, the GEMM on each gemm path; compress/: packed avx512-vnni,
# avx512-ymm, avxvnni and packedLut avx512; kernels/bf16: avx512-bf16, avx512; boxte:
# the BoxTE kernels at avx512) against the TS twins and float64 references; hat/ runs whole models
# on the paths in force (TFREE_ISA=avx512).
logs="$out/logs"
mkdir -p "$logs"
rm -f "$logs"/*.log
read -r -a groups <<<"${TFREE_EMU_TESTS:-kernels/ compress/ tensor/ boxte hat/}"
for g in "${groups[@]}"; do
  log="$logs/$(printf '%s' "$g" | tr -c 'A-Za-z0-9_-' _).log"
  t0=$(date +%s)
  rc=0
  node scripts/run-tests.mjs "$g" >"$log" 2>&1 || rc=$?
  n=$(grep -m1 -E '^ℹ tests ' "$log" | awk '{print $3}')
  p=$(grep -m1 -E '^ℹ pass ' "$log" | awk '{print $3}')
  f=$(grep -m1 -E '^ℹ fail ' "$log" | awk '{print $3}')
  s=$(grep -m1 -E '^ℹ skipped ' "$log" | awk '{print $3}')
  if [ "$rc" = 0 ] && [ "${f:-1}" = 0 ]; then
    echo "avx512-emu: test $g: ${p:-?}/${n:-?} pass, ${s:-0} skipped ($(( $(date +%s) - t0 )) s)"
  else
    grep -E '^✖' "$log" | sort -u | head -20
    echo "avx512-emu: FAIL test $g: ${f:-?} of ${n:-?} fail (log: $log)"
    fail=1
  fi
done
# subtests per emulated path (their names carry the path)
all=$(cat "$logs"/*.log)
count() { printf '%s\n' "$all" | grep -cE "^✔ .*$1" || true; }
echo "avx512-emu: passed per path: ops avx512 $(count '\[avx512, [12]T\]'); gemm avx512 $(count '\[gemm avx512, [12]T\]'), avx512-zmm $(count '\[gemm avx512-zmm, [12]T\]') (+ $(count '\[gemm avx512(-zmm)?\]') thread checks);" \
  "packed avx512-vnni $(count 'native packed avx512-vnni '), avx512-ymm $(count 'native packed avx512-ymm '), avxvnni $(count 'native packed avxvnni ');" \
  "packedLut avx512 $(count 'native packedLut avx512 ');" \
  "bf16 amx-bf16 $(count 'native bf16 amx-bf16 '), avx512-bf16 $(count 'native bf16 avx512-bf16 '), avx512 $(count 'native bf16 avx512 ')" \
  "(+ the tests that loop over every path inside, e.g. BoxTE's)"
if [ "${#COV[@]}" -gt 0 ] && command -v gcov >/dev/null 2>&1; then
  # functions with no executed line, per emulated file (boxte.cc: its AVX-512 functions only)
  for s in "${emulated[@]}" bf16_amx boxte; do
    never=$(gcov -f -n -m -o "$out" "$out/$s.o" 2>/dev/null |
      awk '/^Function /{f=$0; next} /^Lines executed:0.00%/{if (f != "") print f} {f=""}' |
      sed -e "s/^Function '//" -e "s/'\$//" -e 's/(anonymous namespace):://g' -e 's/(.*//' -e 's/.* //' |
      awk -v s="$s" '!/^(tfemu_|tfe_|std::|__gnu)/ && (s != "boxte" || /avx512|16|2$/)' | sort -u | tr '\n' ' ' || true)
    echo "avx512-emu: coverage $s.cc: functions never run: ${never:-none}"
  done
fi
total_s=$(( $(date +%s) - start ))
if [ "$fail" = 0 ]; then
  echo "avx512-emu: PASS in ${total_s} s (build ${build_s} s)"
else
  echo "avx512-emu: FAILED in ${total_s} s"
  exit 1
fi
