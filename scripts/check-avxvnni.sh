#!/usr/bin/env bash
# Builds native/tests/avxvnni_driver.cc with the AVX-VNNI packed kernel (packed_avxvnni.cc, VEX
# vpdpbusd, the flags of binding.gyp) and runs it: natively when the CPU has AVX-VNNI, else under
# qemu-x86_64 -cpu max (Debian qemu-user; QEMU 7.2 lacks AVX-VNNI and says so), else it says it
# skipped. x86-64 only. Not part of .ci/run (no CPU there has AVX-VNNI so far).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cd "$root/native"
base=(-O2 -std=c++17 -fno-exceptions -pthread)
g++ "${base[@]}" -c packed_generic.cc -o "$out/g.o"
g++ "${base[@]}" -c threadpool.cc -o "$out/t.o"
g++ "${base[@]}" -mavx2 -mfma -c packed_avx2.cc -o "$out/a2.o"
g++ "${base[@]}" -mavx2 -mfma -mf16c -mavxvnni -c packed_avxvnni.cc -o "$out/v.o"
g++ "${base[@]}" -c tests/avxvnni_driver.cc -o "$out/d.o"
g++ -pthread "$out"/*.o -o "$out/avxvnni_driver"
if grep -qw avx_vnni /proc/cpuinfo 2>/dev/null; then
  echo "check-avxvnni: native run (CPU has AVX-VNNI)"
  "$out/avxvnni_driver"
elif command -v qemu-x86_64 >/dev/null; then
  echo "check-avxvnni: under $(qemu-x86_64 --version | head -1) -cpu max (this CPU lacks AVX-VNNI)"
  rc=0
  qemu-x86_64 -cpu max "$out/avxvnni_driver" || rc=$?
  if [ "$rc" -eq 132 ]; then
    # SIGILL: this QEMU does not emulate VEX vpdpbusd (QEMU 7.2 does not)
    echo "check-avxvnni: NOT VERIFIED: the emulator lacks AVX-VNNI (SIGILL); run on an AVX-VNNI CPU or a newer QEMU"
    exit 0
  fi
  exit "$rc"
else
  echo "check-avxvnni: skipped (no AVX-VNNI on this CPU and no qemu-x86_64)"
fi
