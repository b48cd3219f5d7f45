#!/usr/bin/env bash
# Every bench group plus BoxTE whole epochs and evaluation, as the README's speed summary reports
# them. Run from a built checkout (npm ci) on a quiet machine; peers: Debian python3-torch and
# libopenblas-dev, and onnxruntime-node (installed here without saving when missing).
#   bash scripts/bench-all.sh [OUTFILE]          (default bench/results/all-<commit>-<HHMM>.txt)
# ICEWS14 for the BoxTE rows: TFREE_ICEWS14=DIR (default ../shared/data/icews14; skipped when absent).
# BENCH_GROUPS="peak sgemm packed hat" picks the engine groups.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
data=${TFREE_ICEWS14:-../shared/data/icews14}
out=${1:-bench/results/all-$(git rev-parse --short HEAD 2>/dev/null || echo tree)-$(date -u +%H%M).txt}
mkdir -p "$(dirname "$out")"
if ! node -e "require.resolve('onnxruntime-node')" 2>/dev/null; then
  ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save --no-audit --no-fund onnxruntime-node@1.30.0 > /dev/null 2>&1 \
    || echo "onnxruntime-node not installed: the ORT column stays empty"
fi
{
  echo "tfree $(git rev-parse --short HEAD 2>/dev/null) at $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
  node dist/src/cli/main.js info
  for g in ${BENCH_GROUPS:-peak sgemm packed hat}; do node dist/bench/main.js --only "$g"; done
  if [ -d "$data" ]; then
    TFREE_ICEWS14="$data" node dist/bench/main.js --only kg
    TFREE_THREADS=2 node dist/experiments/boxte_speed_ab.js --root "$root" --data "$data" --epochs 2 --rounds 2
    TFREE_THREADS=2 node dist/experiments/boxte_speed_ab.js --root "$root" --data "$data" --dim 1000 --epochs 1 --rounds 2
    for i in 1 2; do
      s=$EPOCHREALTIME
      node dist/src/cli/main.js kg eval --model models/boxte-icews14/boxte-icews14-d154.safetensors --data "$data" --json
      awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN { printf "kg eval of the bundled model: %.2f s wall (process start to exit)\n", b - a }'
    done
  else
    echo "no ICEWS14 at $data: BoxTE rows skipped"
  fi
  echo "done $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
