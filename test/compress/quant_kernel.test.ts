/**
 * The quantizer kernels (kernels().quantizeBlocks, kernels().kmeansLloyd): the TS twin
 * (src/tensor/kernels/js_quant.ts) and the native kernel (native/quant_generic.cc) give the same
 * bits at 1 and 2 threads, on random and edge inputs, writing every element of their (poisoned)
 * outputs; a non-finite weight is reported at the same index by both. The rules themselves are
 * checked against float64 references in quantize.test.ts (which runs under both backends).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { withBackend } from '../../src/tensor/index.js';
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import { QuantKind, QuantScaleMode, midpoints } from '../../src/tensor/kernels/js_quant.js';
import { Rng } from '../../src/nn/index.js';
import { SCALE_EPS, kmeans1d, parseFormat, partialShuffle, type QuantFormat } from '../../src/compress/index.js';
import { hasNative } from '../helpers/numeric.js';

const nb = nativeBackend();
const skip = hasNative() ? false : 'native backend unavailable';

const KIND = { int: QuantKind.Int, kmeans: QuantKind.Kmeans, bin: QuantKind.Bin, ternary: QuantKind.Ternary } as const;
const MODE = { absmax: QuantScaleMode.Absmax, absmean: QuantScaleMode.Absmean, meanstep: QuantScaleMode.Meanstep } as const;

interface Out {
  ret: number;
  codes: Uint8Array;
  scales: Uint16Array;
}

function runQ(k: Kernels, w: Float32Array, rows: number, cols: number, f: QuantFormat, mid: Float64Array | null, centre: number, poison: number, scalesOnly = false): Out {
  const codes = new Uint8Array((rows * cols * f.bits) / 8).fill(poison);
  const scales = new Uint16Array((rows * cols) / f.blockSize).fill(0x7fc0 ^ poison);
  const ret = k.quantizeBlocks(w, rows, cols, KIND[f.kind], f.bits, f.blockSize, MODE[f.scaleMode], f.scaleDtype === 'BF16', SCALE_EPS, mid, centre, scalesOnly ? null : codes, scales);
  return { ret, codes, scales };
}

/** Random weights with edge cases mixed in: zero blocks, constant blocks, exact half-steps, huge and tiny values. */
function weights(r: Rng, rows: number, cols: number, B: number, sd: number): Float32Array {
  const w = r.fillNormal(new Float32Array(rows * cols), 0, sd);
  const nBlocks = (rows * cols) / B;
  for (let b = 0; b < nBlocks; b++) {
    const off = b * B;
    const kind = b % 11;
    if (kind === 1) w.fill(0, off, off + B);
    else if (kind === 2) w.fill(0.375, off, off + B);
    else if (kind === 3) for (let i = 0; i < B; i++) w[off + i] = ((i % 15) - 7) * 0.5; // steps and half-steps of a 7-level grid
    else if (kind === 4) w[off] = 7e4; // f16 scale overflow
    else if (kind === 5) for (let i = 0; i < B; i++) w[off + i] *= 1e-7; // below the scale floor
    else if (kind === 6) for (let i = 0; i < B; i++) w[off + i] = i % 2 === 0 ? -1 : 1;
  }
  return w;
}

const FORMATS: [string, { blockSize?: number; scaleDtype?: 'BF16' | 'F16' }][] = [
  ['int8', {}],
  ['int4', { blockSize: 32 }],
  ['int4:absmean', {}],
  ['int4:meanstep', { scaleDtype: 'F16' }],
  ['int3', { blockSize: 16 }],
  ['int2', {}],
  ['kmeans4', {}],
  ['kmeans3', { blockSize: 32, scaleDtype: 'F16' }],
  ['kmeans2', {}],
  ['kmeans1', {}],
  ['kmeans8', { blockSize: 32 }],
  ['bin1', {}],
  ['bin1:tensormean', { blockSize: 128 }],
  ['ternary', { scaleDtype: 'F16' }],
];

test('quantizeBlocks: the TS twin and the native kernel agree bit for bit at 1 and 2 threads, every output written', { skip }, () => {
  if (!('kernels' in nb)) return;
  const nk = nb.kernels;
  const t0 = nb.extras.getThreads();
  const r = new Rng(5);
  try {
    for (const [spec, opts] of FORMATS) {
      const f = parseFormat(spec, opts);
      for (const [rows, cols, sd] of [
        [1, 256, 0.05],
        [7, 384, 1],
        [33, 512, 0.02],
        [130, 256, 3],
      ]) {
        const cols2 = Math.ceil(cols / f.blockSize) * f.blockSize;
        const w = weights(r, rows, cols2, f.blockSize, sd);
        let mid: Float64Array | null = null;
        if (f.kind === 'kmeans') {
          const c = new Float32Array(2 ** f.bits);
          for (let i = 0; i < c.length; i++) c[i] = -1 + (2 * i) / (c.length - 1) + 0.01 * r.normal();
          c.sort();
          mid = midpoints(c);
        }
        let centre = NaN;
        if (f.kind === 'bin' && f.centre === 'tensor') centre = w.reduce((a, b) => a + b, 0) / w.length;
        const label = `${f.name} B${f.blockSize} ${f.scaleDtype} [${rows}, ${cols2}]`;
        const js = runQ(jsKernels, w, rows, cols2, f, mid, centre, 0x5a);
        assert.equal(js.ret, -1, label);
        assert.ok(js.codes.some((c) => c !== 0) && js.codes.some((c) => c !== 0xff), `${label}: degenerate codes`);
        // scales only: same scales, codes untouched
        const so = runQ(jsKernels, w, rows, cols2, f, null, centre, 0x11, true);
        assert.deepEqual(so.scales, js.scales, `${label}: scales-only call`);
        assert.ok(so.codes.every((c) => c === 0x11), `${label}: scales-only call wrote codes`);
        for (const th of [1, 2]) {
          nb.extras.setThreads(th);
          const nat = runQ(nk, w, rows, cols2, f, mid, centre, 0xa5);
          assert.equal(nat.ret, -1, label);
          assert.deepEqual(nat.scales, js.scales, `${label}: scales differ at ${th} thread(s)`);
          assert.deepEqual(nat.codes, js.codes, `${label}: codes differ at ${th} thread(s)`);
          const nso = runQ(nk, w, rows, cols2, f, null, centre, 0x11, true);
          assert.deepEqual(nso.scales, js.scales, `${label}: native scales-only call`);
          assert.ok(nso.codes.every((c) => c === 0x11), `${label}: native scales-only call wrote codes`);
        }
      }
    }
  } finally {
    nb.extras.setThreads(t0);
  }
});

test('quantizeBlocks: a non-finite weight is reported at its index by both, before anything is written', { skip }, () => {
  if (!('kernels' in nb)) return;
  const t0 = nb.extras.getThreads();
  const r = new Rng(6);
  const f = parseFormat('int4');
  try {
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const at of [0, 5 * 512 + 17, 63 * 512 + 511]) {
        const w = r.fillNormal(new Float32Array(64 * 512), 0, 1);
        w[at] = bad;
        w[at + (at < 63 * 512 ? 700 : -700)] = NaN; // a second one: the first is reported
        const first = Math.min(at, at + (at < 63 * 512 ? 700 : -700));
        const js = runQ(jsKernels, w, 64, 512, f, null, NaN, 0x5a);
        assert.equal(js.ret, first);
        assert.ok(js.codes.every((c) => c === 0x5a), 'twin wrote codes');
        for (const th of [1, 2]) {
          nb.extras.setThreads(th);
          const nat = runQ(nb.kernels, w, 64, 512, f, null, NaN, 0x5a);
          assert.equal(nat.ret, first, `${bad} at ${at}, ${th} thread(s)`);
          assert.ok(nat.codes.every((c) => c === 0x5a), 'native wrote codes');
        }
      }
    }
  } finally {
    nb.extras.setThreads(t0);
  }
});

test('quantizeBlocks: argument errors are thrown, not written past', { skip }, () => {
  if (!('kernels' in nb)) return;
  const w = new Float32Array(64).fill(1);
  for (const k of [jsKernels, nb.kernels]) {
    assert.throws(() => k.quantizeBlocks(w, 2, 64, 0, 4, 64, 0, true, SCALE_EPS, null, NaN, new Uint8Array(64), new Uint16Array(2)), RangeError);
    assert.throws(() => k.quantizeBlocks(w, 1, 64, 0, 4, 48, 0, true, SCALE_EPS, null, NaN, new Uint8Array(32), new Uint16Array(2)), RangeError);
    assert.throws(() => k.quantizeBlocks(w, 1, 64, 1, 4, 64, 0, true, SCALE_EPS, null, NaN, new Uint8Array(32), new Uint16Array(1)), RangeError);
  }
});

test('kmeansLloyd: the TS twin and the native kernel give the same centroids, assignments and iterations', { skip }, () => {
  if (!('kernels' in nb)) return;
  const t0 = nb.extras.getThreads();
  const r = new Rng(8);
  try {
    for (const [n, k, weighted] of [
      [1, 4, false],
      [5000, 16, false],
      [20000, 8, true],
      [3000, 4, true],
      [4000, 2, false], // k = 2^bits: the native kernel's branch-free search, 1 bit
      [4000, 3, true], // k not a power of two: the binary search
      [6000, 5, false],
      [2000, 16, false], // few distinct values and tied starting centroids (equal midpoints)
    ] as const) {
      const tied = n === 2000;
      const x = new Float64Array(n);
      for (let i = 0; i < n; i++) x[i] = tied ? [-1, 0, 0.25, 2][i % 4] : i % 97 === 0 ? 0.5 : Math.fround(r.normal() * (i % 3 === 0 ? 2 : 0.3));
      const wt = new Float64Array(n).fill(1);
      if (weighted) for (let i = 0; i < n; i++) wt[i] = i % 13 === 0 ? 0 : Math.abs(r.normal());
      const c0 = new Float64Array(k);
      for (let j = 0; j < k; j++) c0[j] = tied ? [-1, -1, 0, 0][j % 4] + Math.floor(j / 4) : -1.5 + (3 * j) / k;
      const cj = c0.slice();
      const aj = new Int32Array(n).fill(-1);
      const itj = jsKernels.kmeansLloyd(x, wt, n, cj, k, 100, 1e-4, aj);
      assert.ok(itj >= 2, `n=${n}: ${itj} iterations`);
      assert.ok(cj.every(Number.isFinite) && cj.some((v, j) => v !== c0[j]), `n=${n}: centroids did not move`);
      for (const th of [1, 2]) {
        nb.extras.setThreads(th);
        const cn = c0.slice();
        const an = new Int32Array(n).fill(-1);
        const itn = nb.kernels.kmeansLloyd(x, wt, n, cn, k, 100, 1e-4, an);
        assert.equal(itn, itj, `n=${n} k=${k}: iterations`);
        assert.deepEqual(cn, cj, `n=${n} k=${k}: centroids`);
        assert.deepEqual(an, aj, `n=${n} k=${k}: assignments`);
      }
    }
  } finally {
    nb.extras.setThreads(t0);
  }
});

test('partialShuffle: the sparse (map) and dense (array) forms draw the same positions; kmeans1d is the same under both backends', () => {
  for (const [n0, n] of [
    [10, 10],
    [1000, 50],
    [100000, 300],
  ]) {
    const a = partialShuffle(n0, n, new Rng(3), false);
    const b = partialShuffle(n0, n, new Rng(3), true);
    assert.deepEqual(b, a, `n0=${n0} n=${n}`);
    assert.equal(new Set(a).size, n);
  }
  if (!('kernels' in nb)) return;
  const r = new Rng(9);
  const v = r.fillNormal(new Float32Array(50000), 0, 1);
  const nat = kmeans1d(v, 16, { seed: 'w', maxSamples: 4096 });
  const js = withBackend('js', () => kmeans1d(v, 16, { seed: 'w', maxSamples: 4096 }));
  assert.deepEqual(nat, js);
});
