#!/usr/bin/env bash
# CI check on the built addon (native/build/Release/tfree_native.node):
#  1. the AVX2 SGEMM microkernel (symbol tfree_sgemm_ukernel_avx2_6x16) keeps its accumulators in
#     registers: no ymm register is stored to / loaded from / used as an operand on the stack
#     (%rsp or %rbp based addresses). Spilling the 12 accumulators costs ~3x (see the engine spec).
#  2. the objects compiled with -mavx2 / -mavx512* export no weak (COMDAT) symbols: the linker could otherwise
#     pick an AVX2-compiled copy of an inline function for the generic path and crash old CPUs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
addon="${1:-$root/native/build/Release/tfree_native.node}"
sym=tfree_sgemm_ukernel_avx2_6x16
if [ ! -f "$addon" ]; then
  echo "check-spills: $addon not found (build it with: node scripts/build-native.mjs)" >&2
  exit 2
fi
if ! command -v objdump >/dev/null; then
  echo "check-spills: objdump not found (install binutils)" >&2
  exit 2
fi
body="$(objdump -d --no-show-raw-insn "$addon" | awk -v s="<$sym>:" '$2 == s { on = 1; next } on && /^$/ { on = 0; done = 1 } on && !done { print }')"
if [ -z "$body" ]; then
  echo "check-spills: symbol $sym not found in $addon" >&2
  exit 1
fi
nfma="$(grep -c 'vfmadd[0-9]*ps.*%ymm' <<<"$body" || true)"
stack="$(grep -E '%ymm[0-9]+' <<<"$body" | grep -E '\(%(rsp|rbp)\)' || true)"
if [ -n "$stack" ]; then
  echo "check-spills: FAIL: $sym spills ymm registers to the stack:" >&2
  echo "$stack" | head -20 >&2
  exit 1
fi
if [ "$nfma" -lt 12 ]; then
  echo "check-spills: FAIL: $sym has only $nfma ymm FMAs (expected >= 12)" >&2
  exit 1
fi
echo "check-spills: ok: $sym has $nfma ymm FMAs and no ymm stack traffic"

objs="$(find "$root/native/build/Release" \( -path '*tfree_avx2*' -o -path '*tfree_avx512*' \) -name '*.o' 2>/dev/null || true)"
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
