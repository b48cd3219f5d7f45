#!/usr/bin/env bash
# Loads the native addon under qemu-user as older x86-64 CPUs (Haswell: AVX2+FMA, no AVX-512;
# Nehalem: no AVX) and checks that `tfree info` runs and picks the path that CPU can execute.
# Catches code compiled with an ISA's flags running before dispatch has checked the CPU (an
# illegal instruction at load on CPUs without that ISA), which a CI machine with AVX-512 never sees.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -m)" != x86_64 ] || ! command -v qemu-x86_64 > /dev/null; then
  echo "test-isa-load: skipped (needs an x86_64 host and qemu-x86_64 from Debian's qemu-user)"
  exit 0
fi
if [ ! -f native/build/Release/tfree_native.node ]; then
  echo "test-isa-load: skipped (the native addon is not built)"
  exit 0
fi
node_bin="$(command -v node)"
fail=0
for pair in Haswell:avx2 Nehalem:generic; do
  cpu="${pair%%:*}"
  want="${pair##*:}"
  out="$(qemu-x86_64 -cpu "$cpu" "$node_bin" dist/src/cli/main.js info 2>&1)" || true
  if printf '%s\n' "$out" | grep -q "kernel path per family: ops=$want, gemm=$want,"; then
    echo "test-isa-load: $cpu ok (ops=$want, gemm=$want)"
  else
    echo "test-isa-load: $cpu FAILED (expected ops=$want, gemm=$want); tfree info printed:"
    printf '%s\n' "$out" | grep -v 'TCG doesn' | tail -5
    fail=1
  fi
done
exit $fail
