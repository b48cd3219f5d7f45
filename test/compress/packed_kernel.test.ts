/**
 * The packed-matmul kernel on every backend (pure TS; native AVX-512 VNNI, its 256-bit AVX-VNNI
 * code, AVX2 and portable at 1 and 2 threads, the paths this CPU has), in both activation modes
 * (int16, int8), against a float64 dequantize-then-GEMV reference with the mode's error bound, odd
 * sizes, poisoned outputs, the TS twin against the portable native path (same float32 operations:
 * bit-identical), every SIMD path against the twin to float32 rounding, and each path bit-identical
 * at 1 and 2 threads and across repeated calls.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import { Rng } from '../../src/nn/index.js';
import { FORMAT_NAMES, dequantize, parseFormat, quantizeMatrix, type PackedMatrix } from '../../src/compress/index.js';
import { hasNative } from '../helpers/numeric.js';
import { familyPaths, kernelVariants, restoreNative, skippedPaths, usePath } from '../helpers/kernel_variants.js';

const backends = kernelVariants('packed');
const simdPaths = familyPaths('packed').filter((p) => p !== 'generic');
const nb = nativeBackend();

function run(k: Kernels, p: PackedMatrix, x: Float32Array, M: number, xOff = 0, outOff = 0, act8 = false): Float32Array {
  const out = new Float32Array(outOff + M * p.rows).fill(NaN);
  k.packedMatmul(M, p.rows, p.cols, x, xOff, p.codes, p.format.bits, p.levels, p.scales, p.format.scaleDtype === 'BF16', p.format.blockSize, out, outOff, act8);
  return out.subarray(outOff);
}

/**
 * float64 reference and the error bound of the kernel's rounding: int16 mode: x to 2^-16 of each
 * group's absmax, levels (unless integers) to 2^-14 of the largest; int8 mode: x to 1/254 of the
 * group's absmax, levels (unless integers) to 1/128 of the largest; plus float32 accumulation.
 */
function reference(p: PackedMatrix, x: Float32Array, M: number, xOff: number, act8: boolean): { ref: Float64Array; bound: Float64Array } {
  const W = dequantize(p);
  const S = dequantize({ ...p, levels: Float32Array.from(p.levels, () => 1) }); // block scale of each weight
  const K = p.cols;
  const U = p.format.blockSize % 64 === 0 ? 64 : p.format.blockSize; // activation groups
  let lmax = 0;
  for (const l of p.levels) lmax = Math.max(lmax, Math.abs(l));
  const integral = p.levels.every((l) => Number.isInteger(l) && Math.abs(l) <= (act8 ? 128 : 8191));
  const lerr = integral ? 0 : lmax / (act8 ? 128 : 16382);
  const xq = act8 ? 254 : 65534;
  const ref = new Float64Array(M * p.rows);
  const bound = new Float64Array(M * p.rows);
  for (let m = 0; m < M; m++) {
    const xm = x.subarray(xOff + m * K, xOff + (m + 1) * K);
    for (let n = 0; n < p.rows; n++) {
      let s = 0;
      let b = 0;
      let abs = 0;
      for (let g = 0; g < K / U; g++) {
        let amax = 0;
        for (let i = g * U; i < (g + 1) * U; i++) amax = Math.max(amax, Math.abs(xm[i]));
        for (let i = g * U; i < (g + 1) * U; i++) {
          const w = W[n * K + i];
          s += w * xm[i];
          abs += Math.abs(w * xm[i]);
          b += Math.abs(w) * (amax / xq) + Math.abs(xm[i]) * Math.abs(S[n * K + i]) * lerr * (1 + (act8 ? 1 / 64 : 0));
        }
      }
      ref[m * p.rows + n] = s;
      bound[m * p.rows + n] = 1.01 * b + 6e-7 * abs * (K / U + 2) + 1e-30;
    }
  }
  return { ref, bound };
}

const shapes: [number, number, number, number][] = [
  // M, N, K, block
  [1, 37, 128, 64],
  [1, 37, 512, 64], // GEMV, whole quads of chunks: the AVX2 int8-activation kernel's multi-row path (int8: 4 strips of 9 rows and one row alone; other formats 2 strips of 18 and one)
  [5, 9, 512, 64], // the same path for the fifth activation row (after a group of four)
  [3, 19, 192, 64],
  [5, 7, 96, 32],
  [2, 9, 128, 128],
  [1, 1, 8, 8],
  [2, 300, 512, 64], // large enough for the thread pool
  [2, 37, 128, 32], // block 32, K a multiple of 64: the AVX2 two-scales-per-chunk path
  [1, 300, 512, 32],
  [3, 41, 352, 32], // K = 5.5 chunks of 64: the AVX2 half-empty last chunk (the tiny HAT's MLP rows)
  [4, 260, 96, 32],
];

interface Case {
  label: string;
  act8: boolean;
  p: PackedMatrix;
  x: Float32Array;
  M: number;
  xOff: number;
  ref: Float64Array;
  bound: Float64Array;
}

let casesMemo: Case[] | undefined;

/** Every format x shape once (quantized and referenced once, shared by all backends). */
function cases(): Case[] {
  if (casesMemo) return casesMemo;
  const r = new Rng(11);
  casesMemo = [];
  for (const name of FORMAT_NAMES) {
    for (const [M, N, K, B] of shapes) {
      const f = parseFormat(name, { blockSize: B, scaleDtype: r.float() < 0.5 ? 'BF16' : 'F16' });
      const w = r.fillNormal(new Float32Array(N * K), 0, 0.1);
      const p = quantizeMatrix(w, N, K, f, { name: 'w', maxSamples: 4096 });
      const xOff = 3;
      const x = r.fillNormal(new Float32Array(xOff + M * K), 0, 1);
      for (const act8 of [false, true]) {
        casesMemo.push({ label: `${name} M${M} N${N} K${K} B${B} ${act8 ? 'int8' : 'int16'} activations`, act8, p, x, M, xOff, ...reference(p, x, M, xOff, act8) });
      }
    }
  }
  return casesMemo;
}

for (const be of backends) {
  test(`packedMatmul matches the float64 dequantize-then-GEMV reference [${be.name}]`, () => {
    be.setup();
    try {
      for (const c of cases()) {
        const out = run(be.k, c.p, c.x, c.M, c.xOff, 2, c.act8);
        assert.ok(out.some((v) => v !== 0), `${c.label}: all zeros`);
        for (let i = 0; i < c.ref.length; i++) {
          assert.ok(Math.abs(out[i] - c.ref[i]) <= c.bound[i], `${c.label} [${i}]: ${out[i]} vs ${c.ref[i]} (bound ${c.bound[i]})`);
        }
      }
    } finally {
      restoreNative();
    }
  });
}

test(`packedMatmul: the TS twin equals the portable native kernel bit for bit, and every SIMD path (${simdPaths.join(', ') || 'none'}) to float32 rounding, in both modes`, { skip: hasNative() ? false : 'native backend unavailable' }, () => {
  assert.ok('kernels' in nb);
  const r = new Rng(12);
  try {
    for (const name of FORMAT_NAMES) {
      for (const [M, N, K, B] of [
        [3, 21, 320, 64],
        [5, 13, 352, 32],
      ]) {
        const f = parseFormat(name, { blockSize: B });
        const p = quantizeMatrix(r.fillNormal(new Float32Array(N * K), 0, 0.05), N, K, f, { name: 'w', maxSamples: 4096 });
        const x = r.fillNormal(new Float32Array(M * K), 0, 2);
        for (const act8 of [false, true]) {
          const label = `${name} K${K} B${B} ${act8 ? 'int8' : 'int16'}`;
          const js = run(jsKernels, p, x, M, 0, 0, act8);
          assert.ok(js.some((v) => v !== 0), `${label}: all zeros`);
          usePath('packed', 'generic');
          assert.deepEqual(run(nb.kernels, p, x, M, 0, 0, act8), js, `${label}: generic != js`);
          for (const path of simdPaths) {
            usePath('packed', path);
            const av = run(nb.kernels, p, x, M, 0, 0, act8);
            for (let i = 0; i < js.length; i++) assert.ok(Math.abs(av[i] - js[i]) <= 1e-5 * (1 + Math.abs(js[i])), `${label} [${i}]: ${path} ${av[i]} vs js ${js[i]}`);
            // the NEON kernels compute the portable function exactly (exact sums, same float32 operations)
            if (path.startsWith('neon')) assert.deepEqual(av, js, `${label}: ${path} != js`);
          }
        }
      }
    }
  } finally {
    restoreNative();
  }
});

test('packedMatmul: int8 activations differ from the int16 mode by their rounding only', () => {
  // the two modes are different functions: check that act8 is honoured (differs) but stays close
  const p = quantizeMatrix(new Rng(15).fillNormal(new Float32Array(16 * 128), 0, 1), 16, 128, parseFormat('int4'), { name: 'w' });
  const x = new Rng(16).fillNormal(new Float32Array(128), 0, 1);
  for (const be of backends) {
    be.setup();
    try {
      const a = run(be.k, p, x, 1);
      const b = run(be.k, p, x, 1, 0, 0, true);
      let scale = 0;
      let maxd = 0;
      for (let i = 0; i < a.length; i++) {
        scale = Math.max(scale, Math.abs(a[i]));
        maxd = Math.max(maxd, Math.abs(a[i] - b[i]));
      }
      assert.ok(maxd > 0 && maxd < 0.05 * scale, `${be.name}: int8 vs int16 max diff ${maxd} (scale ${scale})`);
    } finally {
      restoreNative();
    }
  }
});

test('packedMatmul: NaN in x propagates to its row only; bad sizes throw', () => {
  const f = parseFormat('int4');
  const p = quantizeMatrix(new Rng(13).fillNormal(new Float32Array(8 * 64), 0, 1), 8, 64, f, { name: 'w' });
  const x = new Rng(14).fillNormal(new Float32Array(2 * 64), 0, 1);
  x[70] = NaN;
  for (const be of backends) {
    be.setup();
    try {
      for (const act8 of [false, true]) {
        const out = run(be.k, p, x, 2, 0, 0, act8);
        assert.ok(out.subarray(0, 8).every(Number.isFinite), be.name);
        assert.ok(out.subarray(8).every(Number.isNaN), be.name);
      }
      assert.throws(() => be.k.packedMatmul(1, 8, 64, x, 0, p.codes, 4, p.levels, p.scales, true, 48, new Float32Array(8), 0), /blockSize/);
      assert.throws(() => be.k.packedMatmul(1, 9, 64, x, 0, p.codes, 4, p.levels, p.scales, true, 64, new Float32Array(9), 0), /too short|codes/);
    } finally {
      restoreNative();
    }
  }
});

test('packedMatmul: each native path gives the same bits at 1 and 2 threads and on repeated calls', { skip: hasNative() ? false : 'native backend unavailable' }, (t) => {
  for (const m of skippedPaths('packed')) t.diagnostic(`path skipped: ${m}`);
  const r = new Rng(17);
  const variants = backends.filter((v) => v.path !== undefined);
  try {
    for (const name of ['int4', 'kmeans4', 'int8', 'kmeans2', 'bin1', 'ternary']) {
      for (const [M, N, K, B] of [
        [1, 300, 1024, 64],
        [3, 257, 704, 32],
        [5, 131, 1280, 128],
      ]) {
        const p = quantizeMatrix(r.fillNormal(new Float32Array(N * K), 0, 0.05), N, K, parseFormat(name, { blockSize: B }), { name: 'w', maxSamples: 4096 });
        const x = r.fillNormal(new Float32Array(M * K), 0, 1);
        for (const act8 of [false, true]) {
          const byPath = new Map<string, Float32Array>();
          for (const v of variants) {
            v.setup();
            const a = run(v.k, p, x, M, 0, 0, act8).slice();
            const b = run(v.k, p, x, M, 0, 0, act8);
            const label = `${name} M${M} N${N} K${K} B${B} act8=${act8} [${v.name}]`;
            assert.ok(a.some((y) => y !== 0) && a.every(Number.isFinite), `${label}: zero or non-finite output`);
            assert.deepEqual(b, a, `${label}: repeated call differs`);
            const prev = byPath.get(v.path ?? '');
            if (prev) assert.deepEqual(a, prev, `${label}: differs from the other thread count`);
            else byPath.set(v.path ?? '', a);
          }
        }
      }
    }
  } finally {
    restoreNative();
  }
});
