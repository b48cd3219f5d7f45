/**
 * Formats and quantizers: every format's round trip against an independent float64 reference of
 * its rule, packing, effective bits, k-means vs int on heavy-tailed weights, and bad inputs.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { bf16BitsToNumber, f16BitsToNumber, numberToBf16Bits, numberToF16Bits } from '../../src/io/index.js';
import { Rng } from '../../src/nn/index.js';
import {
  FORMAT_NAMES,
  FormatError,
  dequantize,
  formatSize,
  kmeans1d,
  packCodes,
  parseFormat,
  quantizeCodes,
  quantizeMatrix,
  unpackCodes,
  type QuantFormat,
} from '../../src/compress/index.js';

function gaussian(n: number, seed: number, std = 1): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), 0, std);
}

/** Laplace-distributed values with a few large outliers: heavy-tailed, like trained weights. */
function heavyTailed(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r.float() - 0.5;
    out[i] = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.02;
    if (r.float() < 0.002) out[i] *= 8;
  }
  return out;
}

function roundScale(f: QuantFormat, s: number): number {
  return f.scaleDtype === 'BF16' ? bf16BitsToNumber(numberToBf16Bits(s)) : f16BitsToNumber(numberToF16Bits(s));
}

/** float64 reference of a format's reconstruction (k-means: given centroids). */
function reference(w: Float32Array, rows: number, cols: number, f: QuantFormat, centroids: Float32Array | null): Float64Array {
  const B = f.blockSize;
  const out = new Float64Array(w.length);
  let mu = 0;
  for (const v of w) mu += v;
  mu /= w.length;
  for (let blk = 0; blk < (rows * cols) / B; blk++) {
    const x = Array.from(w.subarray(blk * B, (blk + 1) * B));
    const absmax = Math.max(...x.map(Math.abs));
    const absmean = x.reduce((s, v) => s + Math.abs(v), 0) / B;
    const qmax = 2 ** (f.bits - 1) - 1;
    let s = f.scaleMode === 'absmax' ? absmax : absmean;
    if (f.kind === 'int' && f.scaleMode === 'absmax') s /= qmax;
    s = roundScale(f, s);
    x.forEach((v, i) => {
      let r: number;
      if (s === 0) r = f.kind === 'kmeans' ? s * nearest(centroids!, 0) : 0;
      else if (f.kind === 'int') r = s * Math.max(-qmax, Math.min(qmax, Math.round(v / s)));
      else if (f.kind === 'ternary') r = s * Math.round(Math.max(-1, Math.min(1, v / s)));
      else if (f.kind === 'bin') r = v - mu >= 0 ? s : -s;
      else r = s * nearest(centroids!, v / s);
      out[blk * B + i] = r;
    });
  }
  return out;
}

function nearest(c: Float32Array, v: number): number {
  let best = c[0];
  for (const x of c) if (Math.abs(x - v) < Math.abs(best - v) - 1e-12) best = x;
  return best;
}

function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

test('every format: dequantize(quantize(W)) equals the float64 reference of its rule', () => {
  const rows = 6;
  const cols = 128;
  const w = gaussian(rows * cols, 1, 0.05);
  for (const name of FORMAT_NAMES) {
    for (const scaleDtype of ['BF16', 'F16'] as const) {
      const f = parseFormat(name, { scaleDtype });
      const p = quantizeMatrix(w, rows, cols, f, { name: 'w' });
      const got = dequantize(p);
      const ref = reference(w, rows, cols, f, f.kind === 'kmeans' ? p.levels : null);
      let bad = 0;
      for (let i = 0; i < got.length; i++) if (Math.abs(got[i] - ref[i]) > 1e-6 * Math.abs(ref[i]) + 1e-12) bad++;
      assert.equal(bad, 0, `${name}/${scaleDtype}: ${bad} reconstructions differ from the reference`);
      const err = mse(w, got);
      assert.ok(err > 0 && err < 0.05 ** 2 * 1.2, `${name}: round-trip MSE ${err}`);
    }
  }
});

test('round-trip error falls with the bits for int and k-means', () => {
  const w = gaussian(16 * 256, 2);
  const errs = (kind: string, bits: number[]): number[] => bits.map((b) => mse(w, dequantize(quantizeMatrix(w, 16, 256, parseFormat(`${kind}${b}`), { name: 'w' }))));
  for (const e of [errs('int', [2, 3, 4, 8]), errs('kmeans', [1, 2, 3, 4, 8])]) {
    for (let i = 1; i < e.length; i++) assert.ok(e[i] < e[i - 1], `errors not decreasing: ${e.join(', ')}`);
  }
});

test('k-means beats int at equal bits on heavy-tailed weights', () => {
  const rows = 32;
  const cols = 256;
  const w = heavyTailed(rows * cols, 3);
  for (const bits of [2, 3, 4]) {
    const ei = mse(w, dequantize(quantizeMatrix(w, rows, cols, parseFormat(`int${bits}`), { name: 'w' })));
    const ek = mse(w, dequantize(quantizeMatrix(w, rows, cols, parseFormat(`kmeans${bits}`), { name: 'w' })));
    assert.ok(ek < ei, `${bits} bits: k-means MSE ${ek} >= int MSE ${ei}`);
  }
});

test('packing: MSB-first codes round-trip for every bit width; study layout for 4 bits', () => {
  const r = new Rng(4);
  for (const bits of [1, 2, 3, 4, 8]) {
    const rows = 3;
    const cols = 40;
    const codes = new Uint8Array(rows * cols).map(() => r.int(2 ** bits));
    const packed = packCodes(codes, rows, cols, bits);
    assert.equal(packed.length, (rows * cols * bits) / 8);
    assert.deepEqual(unpackCodes(packed, rows, cols, bits), codes);
  }
  const p = packCodes(Uint8Array.from([0xa, 0x3, 0x1, 0xf, 0, 0, 0, 0]), 1, 8, 4);
  assert.deepEqual(Array.from(p.subarray(0, 2)), [0xa3, 0x1f]);
});

test('effective bits per weight include scales and codebooks', () => {
  const cases: [string, number][] = [
    ['int8', 8.25],
    ['int4', 4.25],
    ['int2', 2.25],
    ['bin1', 1.25],
    ['ternary', 2.25],
  ];
  for (const [name, bpw] of cases) assert.equal(formatSize(parseFormat(name), 4096, 4096).bitsPerWeight, bpw);
  const k4 = formatSize(parseFormat('kmeans4'), 4096, 4096);
  assert.equal(k4.codebookBytes, 64);
  assert.ok(Math.abs(k4.bitsPerWeight - (4.25 + 512 / (4096 * 4096))) < 1e-12);
  assert.equal(formatSize(parseFormat('int4', { blockSize: 128 }), 8, 128).bitsPerWeight, 4.125);
});

test('k-means: seeded, ascending, and weighted fits follow the weights', () => {
  const v = gaussian(5000, 5);
  const a = kmeans1d(v, 8, { seed: 1 }).centroids;
  const b = kmeans1d(v, 8, { seed: 1 }).centroids;
  assert.deepEqual(a, b);
  for (let i = 1; i < a.length; i++) assert.ok(a[i] >= a[i - 1]);
  // all importance on the positive values: both centroids move to the positive side
  const wts = Float32Array.from(v, (x) => (x > 0 ? 1 : 0));
  const c = kmeans1d(v, 2, { seed: 1, weights: wts }).centroids;
  assert.ok(c[0] > 0 && c[1] > c[0], `weighted centroids ${Array.from(c).join(', ')}`);
  // a fixed codebook is used as given
  const f = parseFormat('kmeans2');
  const book = Float32Array.from([-1.5, -0.5, 0.5, 1.5]);
  assert.deepEqual(quantizeCodes(gaussian(64, 6), 1, 64, f, { codebook: book }).levels, book);
});

test('bad inputs: unknown format, bad mode, block size that does not divide the row, non-finite weights', () => {
  assert.throws(() => parseFormat('kmeans5'), (e: Error) => e instanceof FormatError && /kmeans supports 1, 2, 3, 4, 8 bits/.test(e.message));
  assert.throws(() => parseFormat('fp4'), (e: Error) => e instanceof FormatError && /unknown format "fp4"/.test(e.message));
  assert.throws(() => parseFormat('int4:rms'), /scale mode must be absmax or absmean/);
  assert.throws(() => parseFormat('int4', { blockSize: 12 }), /multiple of 8/);
  assert.throws(() => quantizeMatrix(new Float32Array(2 * 96), 2, 96, parseFormat('int4'), { name: 'layers.0.w' }), (e: Error) => e instanceof FormatError && /tensor "layers.0.w": block size 64 does not divide the row length 96/.test(e.message));
  const w = gaussian(64, 7);
  w[5] = NaN;
  assert.throws(() => quantizeMatrix(w, 1, 64, parseFormat('int8'), { name: 'x' }), /tensor "x": value 5 is NaN/);
  assert.equal(parseFormat('int2').scaleMode, 'absmean');
  assert.equal(parseFormat('int2:absmax').name, 'int2:absmax');
  assert.equal(parseFormat('kmeans4').scaleMode, 'absmax');
});
