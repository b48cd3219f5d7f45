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
  formatNameForRules,
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

/** Rounding of torch.round / numpy.round: to the nearest integer, ties to even (written here independently of the library). */
function torchRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

const EPS = 1e-5; // QuantizerArgs.eps of the reference

/**
 * float64 re-implementation of the reference's rules (1-Bit-Wonder `quantizer.py`: SymmetricInt,
 * Nonlinear, Ternary, Binary quantizers, per 1 x B block, `relative_scale` clamped at eps), with
 * the scale rounded to its stored dtype before the codes are chosen. Returns each weight's level
 * index in the format's level table (int: the integer q; ternary: q; bin: -1/0/+1 as sign();
 * k-means: the centroid index) and the reconstruction.
 */
function referenceCodes(w: Float32Array, rows: number, cols: number, f: QuantFormat, centroids: Float32Array | null): { q: Int32Array; rec: Float64Array } {
  const B = f.blockSize;
  const q = new Int32Array(w.length);
  const rec = new Float64Array(w.length);
  const qmax = 2 ** (f.bits - 1) - 1;
  for (let blk = 0; blk < (rows * cols) / B; blk++) {
    const x = Array.from(w.subarray(blk * B, (blk + 1) * B));
    const absmax = Math.max(...x.map(Math.abs));
    const absmean = x.reduce((s, v) => s + Math.abs(v), 0) / B;
    let s = Math.max(f.scaleMode === 'absmax' ? absmax : absmean, EPS);
    if (f.kind === 'int' && f.scaleMode !== 'meanstep') s /= qmax;
    s = roundScale(f, s);
    const gamma = f.centre === 'tensor' ? Array.from(w).reduce((a, v) => a + v, 0) / w.length : x.reduce((a, v) => a + v, 0) / B;
    x.forEach((v, i) => {
      let c: number;
      let r: number;
      if (f.kind === 'int') r = s * (c = torchRound(Math.max(-qmax, Math.min(qmax, v / s))));
      else if (f.kind === 'ternary') r = s * (c = torchRound(Math.max(-1, Math.min(1, v / s))));
      else if (f.kind === 'bin') r = s * (c = Math.sign(v - gamma));
      else {
        c = nearestIndex(centroids!, v / s);
        r = s * centroids![c];
      }
      q[blk * B + i] = c;
      rec[blk * B + i] = r;
    });
  }
  return { q, rec };
}

/** float64 reference of a format's reconstruction (k-means: given centroids). */
function reference(w: Float32Array, rows: number, cols: number, f: QuantFormat, centroids: Float32Array | null): Float64Array {
  return referenceCodes(w, rows, cols, f, centroids).rec;
}

/** Index of the nearest centroid; a value exactly between two takes the lower (torch.bucketize, right=False). */
function nearestIndex(c: Float32Array, v: number): number {
  let k = 0;
  while (k + 1 < c.length && v > (c[k] + c[k + 1]) / 2) k++;
  return k;
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

/** Weights rounded to bf16 (as the reference trains them): exact ties w/s = m + 1/2 occur. */
function bf16Weights(n: number, seed: number, std: number): Float32Array {
  const w = gaussian(n, seed, std);
  for (let i = 0; i < n; i++) w[i] = bf16BitsToNumber(numberToBf16Bits(w[i]));
  return w;
}

test('format names compute the reference rules: codes equal a float64 re-implementation of 1-Bit-Wonder exactly', () => {
  const rows = 64;
  const cols = 256;
  const sets: [string, Float32Array][] = [
    ['gaussian', gaussian(rows * cols, 11, 0.02)],
    ['heavy-tailed', heavyTailed(rows * cols, 12)],
    ['bf16', bf16Weights(rows * cols, 13, 0.03)],
  ];
  // a block with |w| < eps everywhere: the reference floors the statistic at 1e-5
  sets[0][1].fill(3e-7, 0, 64).fill(-2e-7, 0, 17);
  const names = [...FORMAT_NAMES, 'int3:absmean', 'int4:absmean', 'int8:absmean', 'int4:meanstep', 'int8:meanstep', 'bin1:tensormean', 'int2:absmax', 'kmeans2:absmax', 'kmeans4:absmean'];
  let ties = 0;
  for (const [label, w] of sets) {
    for (const name of names) {
      const f = parseFormat(name);
      const c = quantizeCodes(w, rows, cols, f, { name: 'w' });
      const ref = referenceCodes(w, rows, cols, f, f.kind === 'kmeans' ? c.levels : null);
      let bad = 0;
      for (let i = 0; i < w.length; i++) {
        const got = f.kind === 'kmeans' ? c.codes[i] : c.levels[c.codes[i]];
        if (got !== ref.q[i]) bad++;
      }
      assert.equal(bad, 0, `${label} ${name}: ${bad} of ${w.length} codes differ from the reference rule`);
      if (f.kind === 'int' && f.scaleMode === 'absmax') {
        const sv = Array.from(c.scales, (b) => bf16BitsToNumber(b));
        for (let i = 0; i < w.length; i++) if (Math.abs(w[i] / sv[Math.floor(i / 64)]) % 1 === 0.5) ties++;
      }
    }
  }
  assert.ok(ties > 0, 'the data must hold exact ties (w/s = m + 1/2) for the rounding rule to be tested');
});

test('reference details: absmean int clips at mean|w|, ties go to even, bin1 centres each block, meanstep keeps the old rule', () => {
  // int4:absmean: s = mean|w| / 7, so the grid spans +-mean|w| and larger weights clip to +-7
  const w = Float32Array.from({ length: 64 }, (_, i) => ((i % 2 === 0 ? 1 : -1) * (1 + (i % 8))) / 8);
  const mean = w.reduce((a, v) => a + Math.abs(v), 0) / 64;
  const c = quantizeCodes(w, 1, 64, parseFormat('int4:absmean'), {});
  assert.equal(bf16BitsToNumber(c.scales[0]), bf16BitsToNumber(numberToBf16Bits(mean / 7)));
  assert.equal(c.levels[c.codes[63]], -7, 'a weight beyond mean|w| clips to -qmax');
  const old = quantizeCodes(w, 1, 64, parseFormat('int4:meanstep'), {});
  assert.equal(bf16BitsToNumber(old.scales[0]), bf16BitsToNumber(numberToBf16Bits(mean)), 'meanstep: the step is mean|w|');
  // ternary: w/s = +-0.5 exactly (mean|w| = 1) rounds to 0 (ties to even), +-1.5 clips to +-1
  const t = Float32Array.from({ length: 64 }, (_, i) => [0.5, -0.5, 1.5, -1.5][i % 4]);
  const ct = quantizeCodes(t, 1, 64, parseFormat('ternary'), {});
  assert.deepEqual(Array.from(ct.codes.subarray(0, 4), (k) => ct.levels[k]), [0, 0, 1, -1]);
  // int8 absmax with s = 2^-8: 2.5 s -> 2, 3.5 s -> 4, -2.5 s -> -2
  const x = new Float32Array(64);
  x[0] = 127 / 256;
  x[1] = 2.5 / 256;
  x[2] = 3.5 / 256;
  x[3] = -2.5 / 256;
  const ci = quantizeCodes(x, 1, 64, parseFormat('int8'), {});
  assert.deepEqual(Array.from(ci.codes.subarray(0, 4), (k) => ci.levels[k]), [127, 2, 4, -2]);
  // bin1: two blocks with different means; each is centred by its own mean
  const b = new Float32Array(128);
  for (let i = 0; i < 64; i++) b[i] = 1 + (i % 2 === 0 ? 0.1 : -0.1);
  for (let i = 64; i < 128; i++) b[i] = -1 + (i % 2 === 0 ? 0.1 : -0.1);
  const cb = quantizeCodes(b, 1, 128, parseFormat('bin1'), {});
  for (let i = 0; i < 128; i++) assert.equal(cb.levels[cb.codes[i]], i % 2 === 0 ? 1 : -1, `weight ${i}`);
  // bin1:tensormean (rules 1): one mean (0) for the tensor, so the first block is all +1, the second all -1
  const ct2 = quantizeCodes(b, 1, 128, parseFormat('bin1:tensormean'), {});
  for (let i = 0; i < 128; i++) assert.equal(ct2.levels[ct2.codes[i]], i < 64 ? 1 : -1, `tensormean weight ${i}`);
  assert.throws(() => parseFormat('int4:tensormean'), /tensormean is a variant of bin1 only/);
  // names written under quantization rules 1 map to the variant that computed them
  assert.deepEqual(['int4:absmean', 'int8:absmean', 'int2', 'bin1', 'kmeans4', 'int4'].map((n) => formatNameForRules(n, 1)), ['int4:meanstep', 'int8:meanstep', 'int2', 'bin1:tensormean', 'kmeans4', 'int4']);
  assert.equal(formatNameForRules('int4:absmean', 2), 'int4:absmean');
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
  assert.throws(() => parseFormat('int4:rms'), /scale mode must be absmax, absmean or meanstep/);
  assert.throws(() => parseFormat('kmeans4:meanstep'), /meanstep is a scale mode of the int formats only/);
  assert.throws(() => parseFormat('int4', { blockSize: 12 }), /multiple of 8/);
  assert.throws(() => quantizeMatrix(new Float32Array(2 * 96), 2, 96, parseFormat('int4'), { name: 'layers.0.w' }), (e: Error) => e instanceof FormatError && /tensor "layers.0.w": block size 64 does not divide the row length 96/.test(e.message));
  const w = gaussian(64, 7);
  w[5] = NaN;
  assert.throws(() => quantizeMatrix(w, 1, 64, parseFormat('int8'), { name: 'x' }), /tensor "x": value 5 is NaN/);
  assert.equal(parseFormat('int2').scaleMode, 'absmean');
  assert.equal(parseFormat('int2:absmax').name, 'int2:absmax');
  assert.equal(parseFormat('kmeans4').scaleMode, 'absmax');
});
