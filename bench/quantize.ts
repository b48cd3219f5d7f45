/**
 * Quantizer kernels (kernels().quantizeBlocks): CPU time per weight of the native kernel and its
 * TS twin on the same [1024, 4096] matrix (seeded uniform weights), one thread, int4 / kmeans4 /
 * int8 / bin1 (k-means with 15 fixed midpoints: the code search, not the fit). CPU seconds of
 * this process, not wall time, so a loaded machine changes the figures less; each kernel runs
 * twice interleaved with the other, the faster run counts.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/quantize.js
 */
import { jsKernels, nativeBackend, type Kernels } from '../src/tensor/index.js';
import { QuantKind, QuantScaleMode } from '../src/tensor/kernels/js_quant.js';
import { SCALE_EPS } from '../src/compress/index.js';

const nb = nativeBackend();
if (!('kernels' in nb)) {
  process.stderr.write(`quantize bench skipped: ${nb.error}\n`);
  process.exit(0);
}
nb.extras.setThreads(1);
const N = 1024;
const K = 4096;
const w = new Float32Array(N * K);
let x = 1;
for (let i = 0; i < w.length; i++) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  w[i] = (x / 2 ** 32 - 0.5) * 0.04;
}
const mid = new Float64Array(15);
for (let i = 0; i < 15; i++) mid[i] = -0.9 + i * 0.12;
const cases: [string, QuantKind, number, QuantScaleMode, Float64Array | null][] = [
  ['int4', QuantKind.Int, 4, QuantScaleMode.Absmax, null],
  ['kmeans4', QuantKind.Kmeans, 4, QuantScaleMode.Absmax, mid],
  ['int8', QuantKind.Int, 8, QuantScaleMode.Absmax, null],
  ['bin1', QuantKind.Bin, 1, QuantScaleMode.Absmean, null],
];
process.stdout.write('| format | native CPU ns/weight | TS twin CPU ns/weight | ratio |\n|---|---:|---:|---:|\n');
for (const [name, kind, bits, mode, m] of cases) {
  const best = { native: Infinity, js: Infinity };
  const order: ['native' | 'js', Kernels][] = [
    ['native', nb.kernels],
    ['js', jsKernels],
    ['native', nb.kernels],
    ['js', jsKernels],
  ];
  for (const [label, k] of order) {
    const codes = new Uint8Array((N * K * bits) / 8);
    const scales = new Uint16Array((N * K) / 64);
    const c0 = process.cpuUsage();
    k.quantizeBlocks(w, N, K, kind, bits, 64, mode, true, SCALE_EPS, m, NaN, codes, scales);
    const c = process.cpuUsage(c0);
    best[label] = Math.min(best[label], ((c.user + c.system) * 1e3) / w.length);
  }
  process.stdout.write(`| ${name} | ${best.native.toFixed(2)} | ${best.js.toFixed(2)} | ${(best.js / best.native).toFixed(1)} |\n`);
}
