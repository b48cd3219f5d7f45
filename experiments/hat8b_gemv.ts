/**
 * The backbone's batch-1 GEMVs at HAT-8B shapes against the read probe (issue 14): L layers of
 * Llama-3.1-8B projections (q 4096x4096, k and v 1024x4096, o 4096x4096, gate and up 14336x4096,
 * down 4096x14336) as packed matrices (random codes, bf16 scales: the kernel's speed does not
 * depend on the values), run one after the other as one backbone step runs them, interleaved with
 * `readSum` over a buffer of the same bytes (DRAM-resident beyond a few layers: 0.43 GiB at L = 4).
 * Prints best and median wall ms and the best CPU ms of each, and the kernel's share of the read
 * probe's speed.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/hat8b_gemv.js [--threads 1] [--layers 4]
 *      [--format int4] [--reps 9]
 */
import { loadNative } from '../src/tensor/kernels/native.js';
import { fixedLevels, parseFormat } from '../src/compress/index.js';
import { arg, intArg } from './argv.js';

const TH = intArg('threads', 1);
const L = intArg('layers', 4);
const F = parseFormat(arg('format', 'int4'));
const REPS = intArg('reps', 9);

const nat = loadNative();
if (!('kernels' in nat)) throw new Error(`needs the native addon: ${nat.error}`);
const K = nat.kernels;
nat.extras.setThreads(TH);

function randBytes(n: number, seed: number): Uint8Array {
  const a = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    a[i] = x & 255;
  }
  return a;
}
const SHAPES: [number, number][] = [
  [4096, 4096],
  [1024, 4096],
  [1024, 4096],
  [4096, 4096],
  [14336, 4096],
  [14336, 4096],
  [4096, 14336],
];
// int formats: their fixed levels; k-means: 2^bits ascending levels (not two's complement: the table decode)
const levels = F.kind === 'kmeans' ? Float32Array.from({ length: 2 ** F.bits }, (_, i) => (i - (2 ** F.bits - 1) / 2) * 0.3) : fixedLevels(F);
const mats: { N: number; Kk: number; codes: Uint8Array; scales: Uint16Array; x: Float32Array; out: Float32Array }[] = [];
let bytes = 0;
for (let l = 0; l < L; l++) {
  for (const [N, Kk] of SHAPES) {
    const codes = randBytes((N * Kk * F.bits) / 8, l * 7 + N);
    const scales = new Uint16Array((N * Kk) / F.blockSize).fill(0x3c00);
    mats.push({ N, Kk, codes, scales, x: Float32Array.from({ length: Kk }, (_, i) => Math.sin(i)), out: new Float32Array(N) });
    bytes += codes.byteLength + scales.byteLength;
  }
}
const probe = new Float32Array(Math.ceil(bytes / 4)).fill(1);
const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e3;
};
const tk: number[] = [];
const tr: number[] = [];
const ck: number[] = [];
const cr: number[] = [];
for (let r = 0; r < REPS; r++) {
  let t = performance.now();
  let c = cpuMs();
  for (const m of mats) K.packedMatmul(1, m.N, m.Kk, m.x, 0, m.codes, F.bits, levels, m.scales, F.scaleDtype === 'BF16', F.blockSize, m.out, 0, true);
  tk.push(performance.now() - t);
  ck.push(cpuMs() - c);
  t = performance.now();
  c = cpuMs();
  nat.extras.readSum(probe, TH);
  tr.push(performance.now() - t);
  cr.push(cpuMs() - c);
}
const sorted = (a: number[]): number[] => a.slice().sort((x, y) => x - y);
const [a, b, c2, d] = [sorted(tk), sorted(tr), sorted(ck), sorted(cr)];
const r2 = (v: number): number => Math.round(v * 100) / 100;
process.stdout.write(
  `${JSON.stringify({
    format: F.name,
    layers: L,
    threads: TH,
    gib: r2(bytes / 2 ** 30),
    gemv_ms_best: r2(a[0]),
    gemv_ms_median: r2(a[a.length >> 1]),
    gemv_cpu_ms_best: r2(c2[0]),
    read_ms_best: r2(b[0]),
    read_ms_median: r2(b[b.length >> 1]),
    read_cpu_ms_best: r2(d[0]),
    gemv_gb_s: r2(bytes / a[0] / 1e6),
    read_gb_s: r2(bytes / b[0] / 1e6),
    share_of_read_best: r2(b[0] / a[0]),
    share_of_read_median: r2(b[b.length >> 1] / a[a.length >> 1]),
  })}\n`,
);
