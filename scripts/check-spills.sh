#!/usr/bin/env bash
# CI check on the built addon (native/build/Release/tfree_native.node):
#  1. the AVX2 and AVX-512 SGEMM microkernels (tfree_sgemm_ukernel_avx2_6x16, ..._avx512_14x32)
#     and the attention register tiles of both (attn_tile_dot / attn_tile_axpy in ops_impl.h)
#     keep their accumulators in registers: no ymm/zmm register is stored to / loaded from / used
#     as an operand on the stack (%rsp or %rbp based addresses). Spilling the accumulators costs
#     ~3x (see the engine spec; the AVX2 attention tiles 4 x 4 spilled, 4 x 2 do not).
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
# check_attn NAMESPACE REGISTER-KIND: every attention register tile of that ops backend
# (attn_tile_dot<R, NV> and attn_tile_axpy<R> in ops_impl.h, never inlined, and their
# .constprop clones) keeps its accumulators in registers; the full-size tiles must be there.
check_attn() {
  local ns="$1" reg="$2" syms sym n=0
  syms="$(grep -oE "^[0-9a-f]+ <_ZN5tfree[0-9]+${ns}12_GLOBAL__N_1L1[34]attn_tile_(dot|axpy)[^>]*>:" <<<"$dump" | sed -E 's/^[0-9a-f]+ <(.*)>:$/\1/' || true)"
  for want in 'attn_tile_dotILi4E' 'attn_tile_axpyILi4E'; do
    if ! grep -q "$want" <<<"$syms"; then
      echo "check-spills: symbol $want... ($ns) not found in $addon" >&2
      exit 1
    fi
  done
  while read -r sym; do
    check_kernel "$sym" "$reg" 1 >/dev/null
    n=$((n + 1))
  done <<<"$syms"
  echo "check-spills: ok: $n $ns attention register tiles (attn_tile_dot/axpy) have no $reg stack traffic"
}
if grep -q '<tfree_sgemm_ukernel_avx2_6x16>:' <<<"$dump"; then
  check_kernel tfree_sgemm_ukernel_avx2_6x16 ymm 12
  check_kernel tfree_sgemm_ukernel_avx512_14x32 zmm 28
  check_attn avx2ops ymm
  check_attn avx512ops zmm
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
