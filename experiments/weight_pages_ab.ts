/**
 * Interleaved A/B of where packed weights live (issue 13): the same native kernel on a plain
 * Uint8Array copy of the codes and scales vs a `weightBuffer` copy (2 MiB transparent huge pages on
 * Linux), cold calls (a 128 MiB readSum before each, as in the bench's loop), alternating per round
 * (the order flips every round); 2 threads. Decode kernel (packedMatmul, int8 activations) for
 * int8 / int4 / kmeans4 and the LUT kernel (packedLutMatmul) for kmeans2 / bin1, at 4096x4096 and
 * 4096x11008. Prints min and median per side, huge/plain of the mins and the median per-round ratio.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/weight_pages_ab.js [--rounds 40]
 */
import { intArg, median } from './argv.js';
import { nativeBackend } from '../src/tensor/kernels/index.js';
import { parseFormat, quantizeMatrix } from '../src/compress/index.js';
import { packedLutLayout } from '../src/tensor/kernels/js_packed_lut.js';
import { Rng } from '../src/nn/index.js';

const nb = nativeBackend();
if (!('kernels' in nb)) throw new Error(`native backend unavailable: ${nb.error}`);
const { kernels: k, extras } = nb;
extras.setThreads(2);
const rounds = intArg('rounds', 40);
const rnd = (n: number, seed: number, s = 1): Float32Array => {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal(0, s);
  return a;
};
const flush = new Float32Array(32 * 2 ** 20).fill(1);
const plainAlloc = (bytes: number): Uint8Array => new Uint8Array(bytes);
const hugeAlloc = (bytes: number): Uint8Array => k.weightBuffer(bytes);
const copy = (src: Uint8Array | Uint16Array, alloc: (bytes: number) => Uint8Array): Uint8Array => {
  const b = alloc(src.byteLength);
  b.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return b;
};
const u16 = (b: Uint8Array): Uint16Array => new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);

for (const [K, N] of [
  [4096, 4096],
  [4096, 11008],
]) {
  const W = rnd(N * K, 21 + N, 0.05);
  const x = rnd(K, 22);
  const y = new Float32Array(N);
  for (const f of ['int8', 'int4', 'kmeans4', 'kmeans2-lut', 'bin1-lut']) {
    const lut = f.endsWith('-lut');
    const p = quantizeMatrix(W, N, K, parseFormat(lut ? f.slice(0, -4) : f), { name: 'w', maxSamples: 65536 });
    const bf16 = p.format.scaleDtype === 'BF16';
    const sides = [plainAlloc, hugeAlloc].map((alloc) => {
      if (lut) {
        const L = packedLutLayout(N, K, p.format.bits, p.format.blockSize, p.codes, p.scales, alloc);
        return (): void => k.packedLutMatmul(1, N, K, x, 0, L.codes, p.format.bits, p.levels, L.scales, p.format.blockSize, y, 0);
      }
      const codes = copy(p.codes, alloc);
      const scales = u16(copy(p.scales, alloc));
      return (): void => k.packedMatmul(1, N, K, x, 0, codes, p.format.bits, p.levels, scales, bf16, p.format.blockSize, y, 0, true);
    });
    const t: number[][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const h of r % 2 ? [0, 1] : [1, 0]) {
        extras.readSum(flush, 2);
        const s = performance.now();
        sides[h]();
        t[h].push(performance.now() - s);
      }
    }
    const ratios = t[0].map((v, i) => t[1][i] / v);
    process.stdout.write(
      `${K}x${N} ${f}: plain min ${Math.min(...t[0]).toFixed(3)} median ${median(t[0]).toFixed(3)} ms, huge min ${Math.min(...t[1]).toFixed(3)} median ${median(t[1]).toFixed(3)} ms; huge/plain min ${(Math.min(...t[1]) / Math.min(...t[0])).toFixed(3)}, median per-round ${median(ratios).toFixed(3)}\n`,
    );
  }
}
