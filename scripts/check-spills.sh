#!/usr/bin/env bash
# CI check on the built addon (native/build/Release/tfree_native.node):
#  1. the AVX2 and AVX-512 SGEMM microkernels (tfree_sgemm_ukernel_avx2_6x16, ..._avx512_14x32)
#     keep their accumulators in registers: no ymm/zmm register is stored to / loaded from / used
#     as an operand on the stack (%rsp or %rbp based addresses). Spilling the accumulators costs
#     ~3x (see the engine spec).
#  2. the objects compiled with -mavx2 / -mavx512* export no weak (COMDAT) symbols: the linker could otherwise
#     pick an AVX2-compiled copy of an inline function for the generic path and crash old CPUs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
addon="${1:-$root/native/build/Release/tfree_native.node}"
if [ ! -f "$addon" ]; then
  echo "check-spills: $addon not found (build it with: node scripts/build-native.mjs)" >&2
  exit 2
fi
if ! command -v objdump >/dev/null; then
  echo "check-spills: objdump not found (install binutils)" >&2
  exit 2
fi
dump="$(objdump -d --no-show-raw-insn "$addon")"
# check_kernel SYMBOL REGISTER-KIND MIN-FMAS
check_kernel() {
  local sym="$1" reg="$2" min="$3" body nfma stack
  body="$(awk -v s="<$sym>:" '$2 == s { on = 1; next } on && /^$/ { on = 0; done = 1 } on && !done { print }' <<<"$dump")"
  if [ -z "$body" ]; then
    echo "check-spills: symbol $sym not found in $addon" >&2
    exit 1
  fi
  nfma="$(grep -c "vfmadd[0-9]*ps.*%$reg" <<<"$body" || true)"
  # (a vbroadcastss of a scalar argument from the stack is not an accumulator spill)
  stack="$(grep -E "%$reg[0-9]+" <<<"$body" | grep -E '\(%(rsp|rbp)\)' | grep -v vbroadcastss || true)"
  if [ -n "$stack" ]; then
    echo "check-spills: FAIL: $sym spills $reg registers to the stack:" >&2
    echo "$stack" | head -20 >&2
    exit 1
  fi
  if [ "$nfma" -lt "$min" ]; then
    echo "check-spills: FAIL: $sym has only $nfma $reg FMAs (expected >= $min)" >&2
    exit 1
  fi
  echo "check-spills: ok: $sym has $nfma $reg FMAs and no $reg stack traffic"
}
if grep -q '<tfree_sgemm_ukernel_avx2_6x16>:' <<<"$dump"; then
  check_kernel tfree_sgemm_ukernel_avx2_6x16 ymm 12
  check_kernel tfree_sgemm_ukernel_avx512_14x32 zmm 28
else
  echo "check-spills: no x86 microkernels in this build (non-x86): nothing to check"
fi

objs="$(find "$root/native/build/Release" \( -path '*tfree_avx2*' -o -path '*tfree_avx512*' -o -path '*tfree_avxvnni*' \) -name '*.o' 2>/dev/null || true)"
if [ -n "$objs" ] && command -v nm >/dev/null; then
  # shellcheck disable=SC2086
  weak="$(nm -C --defined-only $objs | grep -E ' [WVuv] ' || true)"
  if [ -n "$weak" ]; then
    echo "check-spills: FAIL: AVX2/AVX-512 objects define weak symbols that could leak into the generic path:" >&2
    echo "$weak" | head -20 >&2
    exit 1
  fi
  echo "check-spills: ok: AVX2/AVX-512 objects define no weak symbols"
fi
