/**
 * The activation-side lookup-table kernel (packedLutMatmul, 1- and 2-bit formats) on every backend
 * (pure TS; native AVX2 and portable at 1 and 2 threads) against a float64 dequantize-then-GEMV
 * reference with the bound of its table rounding, odd shapes (N not a multiple of the 32-row
 * tile), poisoned outputs; TS twin, portable and AVX2 bit for bit; PackedLinear's dispatch.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import { packedLutLayout } from '../../src/tensor/kernels/js_packed_lut.js';
import type { NativeExtrasInternal } from '../../src/tensor/kernels/native.js';
import { Rng } from '../../src/nn/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { FORMAT_NAMES, PackedLinear, dequantize, parseFormat, quantizeMatrix, readWeightBuffer, type PackedMatrix } from '../../src/compress/index.js';
import { openCheckpoint, writeSafetensors } from '../../src/io/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasNative } from '../helpers/numeric.js';
import { familyPaths, kernelVariants, restoreNative, skippedPaths, usePath } from '../helpers/kernel_variants.js';

const backends = kernelVariants('packedLut');
const nb = nativeBackend();

const LUT_FORMATS = FORMAT_NAMES.filter((f) => parseFormat(f).bits <= 2);

function run(k: Kernels, p: PackedMatrix, x: Float32Array, M: number, xOff = 0, outOff = 0): Float32Array {
  const L = packedLutLayout(p.rows, p.cols, p.format.bits, p.format.blockSize, p.codes, p.scales, (bytes) => k.weightBuffer(bytes));
  const out = new Float32Array(outOff + M * p.rows).fill(NaN);
  k.packedLutMatmul(M, p.rows, p.cols, x, xOff, L.codes, p.format.bits, p.levels, L.scales, p.format.blockSize, out, outOff);
  return out.subarray(outOff);
}

/**
 * float64 reference and the error bound of the kernel's rounding: each table entry (a sum over the
 * E = 4/bits activations of a nibble) is rounded to 1/254 of its group's largest entry, at most
 * maxL * max over the group's nibbles of sum |x|, where maxL is the largest level magnitude (plus
 * its int8 rounding); levels that are not integers are rounded to 1/128 of the largest; plus
 * float32 accumulation.
 */
function reference(p: PackedMatrix, x: Float32Array, M: number, xOff: number): { ref: Float64Array; bound: Float64Array } {
  const W = dequantize(p);
  const S = dequantize({ ...p, levels: Float32Array.from(p.levels, () => 1) }); // block scale of each weight
  const K = p.cols;
  const E = 4 / p.format.bits;
  let lmax = 0;
  for (const l of p.levels) lmax = Math.max(lmax, Math.abs(l));
  const integral = p.levels.every((l) => Number.isInteger(l) && Math.abs(l) <= 128);
  const lerr = integral ? 0 : lmax / 128;
  const ref = new Float64Array(M * p.rows);
  const bound = new Float64Array(M * p.rows);
  for (let m = 0; m < M; m++) {
    const xm = x.subarray(xOff + m * K, xOff + (m + 1) * K);
    const tmax: number[] = [];
    for (let u = 0; u < K / 64; u++) {
      let t = 0;
      for (let q = u * 64; q < (u + 1) * 64; q += E) {
        let s = 0;
        for (let i = 0; i < E; i++) s += Math.abs(xm[q + i]);
        t = Math.max(t, s * (lmax + lerr));
      }
      tmax.push(t);
    }
    for (let n = 0; n < p.rows; n++) {
      let s = 0;
      let b = 0;
      let abs = 0;
      for (let u = 0; u < K / 64; u++) {
        b += (64 / E) * 0.5 * (tmax[u] / 127) * Math.abs(S[n * K + u * 64]);
        for (let i = u * 64; i < (u + 1) * 64; i++) {
          const w = W[n * K + i];
          s += w * xm[i];
          abs += Math.abs(w * xm[i]);
          b += Math.abs(xm[i]) * Math.abs(S[n * K + i]) * lerr * (1 + 1 / 64);
        }
      }
      ref[m * p.rows + n] = s;
      bound[m * p.rows + n] = 1.01 * b + 6e-7 * abs * (K / 64 + 2) + 1e-30;
    }
  }
  return { ref, bound };
}

const shapes: [number, number, number, number][] = [
  // M, N, K, block
  [1, 37, 128, 64],
  [3, 19, 192, 64],
  [2, 9, 128, 128],
  [1, 300, 512, 64], // tables on every thread, tiles in one range
  [1, 999, 512, 64], // one range of tiles per thread (32 tiles, the last one of 7 rows)
  [2, 530, 384, 128], // 17 tiles: an odd count, ranges of single tiles at the end
  [5, 33, 64, 64],
  [4, 64, 320, 64],
];

interface Case {
  label: string;
  p: PackedMatrix;
  x: Float32Array;
  M: number;
  xOff: number;
  ref: Float64Array;
  bound: Float64Array;
}

let casesMemo: Case[] | undefined;
function cases(): Case[] {
  if (casesMemo) return casesMemo;
  const r = new Rng(31);
  casesMemo = [];
  for (const name of LUT_FORMATS) {
    for (const [M, N, K, B] of shapes) {
      const p = quantizeMatrix(r.fillNormal(new Float32Array(N * K), 0, 0.1), N, K, parseFormat(name, { blockSize: B }), { name: 'w', maxSamples: 4096 });
      const xOff = 3;
      const x = r.fillNormal(new Float32Array(xOff + M * K), 0, 1);
      casesMemo.push({ label: `${name} M${M} N${N} K${K} B${B}`, p, x, M, xOff, ...reference(p, x, M, xOff) });
    }
  }
  return casesMemo;
}

for (const be of backends) {
  test(`packedLutMatmul matches the float64 dequantize-then-GEMV reference [${be.name}]`, () => {
    be.setup();
    try {
      for (const c of cases()) {
        const out = run(be.k, c.p, c.x, c.M, c.xOff, 2);
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

test(`packedLutMatmul: TS twin, portable and every native path (${familyPaths('packedLut').join(', ') || 'none'}) agree bit for bit`, { skip: hasNative() ? false : 'native backend unavailable' }, (t) => {
  assert.ok('kernels' in nb);
  const ex = nb.extras as NativeExtrasInternal;
  for (const m of skippedPaths('packedLut')) t.diagnostic(`path skipped: ${m}`);
  try {
    for (const c of cases()) {
      const js = run(jsKernels, c.p, c.x, c.M, c.xOff);
      for (const path of familyPaths('packedLut')) {
        usePath('packedLut', path);
        for (const threads of [1, 2, 3]) {
          ex.setThreads(threads);
          assert.deepEqual(run(nb.kernels, c.p, c.x, c.M, c.xOff), js, `${c.label}: ${path} ${threads}T != js`);
        }
      }
    }
  } finally {
    restoreNative();
  }
});

test('packedLutMatmul: activation groups with inf, -inf, NaN, all zeros, huge and tiny values: every native path equals the TS twin', { skip: hasNative() ? false : 'native backend unavailable' }, () => {
  assert.ok('kernels' in nb);
  const ex = nb.extras as NativeExtrasInternal;
  const K = 640;
  const r = new Rng(36);
  const x = r.fillNormal(new Float32Array(2 * K), 0, 1);
  x[3] = Infinity; // group 0: an infinite entry
  x[64 + 5] = -Infinity; // group 1
  x[128 + 7] = NaN; // group 2
  x.fill(0, 192, 256); // group 3: all zeros
  x[260] = -0; // group 4: zeros and -0 but one value
  x.fill(0, 256, 320);
  x[300] = -0;
  x[310] = 2;
  for (let i = 320; i < 384; i++) x[i] *= 3e38; // group 5: sums overflow to inf
  for (let i = 384; i < 448; i++) x[i] *= 1e-40; // group 6: subnormal
  for (let i = 448; i < 512; i += 7) x[i] = i % 2 ? 1e38 : -1e38; // group 7: large, finite sums
  x[K + 64 * 9 + 1] = Infinity; // second row, last group
  for (const name of LUT_FORMATS) {
    const p = quantizeMatrix(r.fillNormal(new Float32Array(70 * K), 0, 0.1), 70, K, parseFormat(name), { name: 'w' });
    const js = run(jsKernels, p, x, 2);
    try {
      for (const path of familyPaths('packedLut')) {
        usePath('packedLut', path);
        for (const threads of [1, 2]) {
          ex.setThreads(threads);
          assert.deepEqual(run(nb.kernels, p, x, 2), js, `${name}: ${path} ${threads}T != js`);
        }
      }
    } finally {
      restoreNative();
    }
  }
});

test('weightBuffer: zeroed bytes of the asked length on every backend; packedLutLayout in it equals the plain layout', () => {
  const r = new Rng(7);
  const p = quantizeMatrix(r.fillNormal(new Float32Array(70 * 256), 0, 0.1), 70, 256, parseFormat('kmeans2'), { name: 'w', maxSamples: 4096 });
  const plain = packedLutLayout(70, 256, p.format.bits, p.format.blockSize, p.codes, p.scales);
  for (const k of [jsKernels, ...('kernels' in nb ? [nb.kernels] : [])]) {
    for (const n of [0, 100, (3 << 20) + 123]) {
      const b = k.weightBuffer(n);
      assert.ok(b instanceof Uint8Array && b.length === n, `${k.name} ${n}`);
      assert.ok(b.every((v) => v === 0), `${k.name} ${n}: not zeroed`);
      b.fill(7);
      assert.equal(b[n - 1], n ? 7 : undefined);
    }
    const L = packedLutLayout(70, 256, p.format.bits, p.format.blockSize, p.codes, p.scales, (bytes) => k.weightBuffer(bytes));
    assert.deepEqual(L.codes, plain.codes, k.name);
    assert.deepEqual(L.scales, plain.scales, k.name);
  }
});

test('readWeightBuffer: packed tensors of a checkpoint read into weightBuffer (3 MiB + 123 bytes: huge pages on native) equal the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tfree-wb-'));
  try {
    const n = (3 << 20) + 123;
    const codes = new Uint8Array(n);
    for (let i = 0; i < n; i++) codes[i] = Math.imul(i + 1, 2654435761) >>> 24;
    const scales = new Uint16Array(70001);
    for (let i = 0; i < scales.length; i++) scales[i] = Math.imul(i + 3, 40503) & 0x7bff;
    writeSafetensors(join(dir, 'w.safetensors'), { 'w.codes': { dtype: 'U8', shape: [n], data: codes }, 'w.scales': { dtype: 'F16', shape: [scales.length], data: scales } });
    const ck = openCheckpoint(join(dir, 'w.safetensors'));
    try {
      const c = readWeightBuffer(ck, 'w.codes');
      const sc = readWeightBuffer(ck, 'w.scales');
      assert.ok(c.data instanceof Uint8Array && sc.data instanceof Uint16Array);
      assert.deepEqual(c.data, codes);
      assert.deepEqual(sc.data, scales);
    } finally {
      ck.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packedLutMatmul: NaN in x propagates to its row only; bad arguments throw', () => {
  const p = quantizeMatrix(new Rng(33).fillNormal(new Float32Array(40 * 128), 0, 1), 40, 128, parseFormat('bin1'), { name: 'w' });
  const x = new Rng(34).fillNormal(new Float32Array(2 * 128), 0, 1);
  x[130] = NaN;
  const L = packedLutLayout(40, 128, 1, 64, p.codes, p.scales);
  for (const be of backends) {
    be.setup();
    try {
      const out = run(be.k, p, x, 2);
      assert.ok(out.subarray(0, 40).every(Number.isFinite), be.name);
      assert.ok(out.subarray(40).every(Number.isNaN), be.name);
      assert.throws(() => be.k.packedLutMatmul(1, 40, 128, x, 0, L.codes, 4, p.levels, L.scales, 64, new Float32Array(40), 0), /bits/);
      assert.throws(() => be.k.packedLutMatmul(1, 40, 128, x, 0, L.codes, 1, p.levels, L.scales, 32, new Float32Array(40), 0), /blockSize/);
      assert.throws(() => be.k.packedLutMatmul(1, 40, 128, x, 0, p.codes, 1, p.levels, L.scales, 64, new Float32Array(40), 0), /too short|codes/);
    } finally {
      restoreNative();
    }
  }
});

test('PackedLinear: the lookup-table path serves 1- and 2-bit formats in int8 mode, close to the decode kernel', () => {
  const r = new Rng(35);
  for (const name of ['bin1', 'kmeans2']) {
    const p = quantizeMatrix(r.fillNormal(new Float32Array(70 * 256), 0, 0.1), 70, 256, parseFormat(name), { name: 'w' });
    const x = new Tensor(r.fillNormal(new Float32Array(3 * 256), 0, 1), [3, 256]);
    const lut = new PackedLinear(p, null, 'lut', 'int8');
    lut.lut = true;
    const dec = new PackedLinear(p, null, 'dec', 'int8');
    dec.lut = false;
    assert.ok(lut.usesLut() && !dec.usesLut(), name);
    const a = lut.forward(x).f32();
    const b = dec.forward(x).f32();
    let scale = 0;
    let maxd = 0;
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(b[i]));
      maxd = Math.max(maxd, Math.abs(a[i] - b[i]));
    }
    assert.ok(maxd > 0 && maxd < 0.05 * scale, `${name}: lut vs decode max diff ${maxd} (scale ${scale})`);
    dec.act = 'int16';
    dec.lut = true;
    assert.ok(!dec.usesLut(), `${name}: int16 mode never takes the LUT path`);
  }
  // layouts the kernel does not compute keep the decode kernel: f16 scales, block 32, 4 bits
  for (const [name, opts] of [
    ['bin1', { scaleDtype: 'F16' as const }],
    ['kmeans2', { blockSize: 32 }],
    ['int4', {}],
  ] as const) {
    const p = quantizeMatrix(r.fillNormal(new Float32Array(8 * 128), 0, 0.1), 8, 128, parseFormat(name, opts), { name: 'w' });
    const l = new PackedLinear(p, null, 'x', 'int8');
    l.lut = true;
    assert.ok(!l.usesLut(), `${name} ${JSON.stringify(opts)}`);
  }
});

test('PackedLinear: after the lookup-table layout is built the layer holds one copy of the weight; `packed` and the gradient rebuild it exactly', () => {
  const r = new Rng(36);
  for (const name of ['bin1', 'kmeans2']) {
    const N = 70;
    const K = 256;
    const p = quantizeMatrix(r.fillNormal(new Float32Array(N * K), 0, 0.1), N, K, parseFormat(name), { name: 'w' });
    const orig = { codes: p.codes.slice(), scales: p.scales.slice(), levels: p.levels.slice() };
    const layer = new PackedLinear(p, null, 'lut', 'int8');
    layer.lut = true;
    const plainBytes = p.codes.byteLength + p.scales.byteLength + p.levels.byteLength;
    assert.equal(layer.residentBytes, plainBytes, name);
    const weightBytes = layer.weightBytes;
    const x = new Tensor(r.fillNormal(new Float32Array(2 * K), 0, 1), [2, K]);
    const y1 = layer.forward(x).f32().slice();
    // layout only (32-row tiles: N rounded up to 96 rows), not layout + plain codes
    const layoutBytes = Math.ceil(N / 32) * 32 * ((K * p.format.bits) / 8 + (K / p.format.blockSize) * 2);
    assert.equal(layer.residentBytes, layoutBytes + p.levels.byteLength, `${name}: the plain codes were not dropped`);
    assert.equal(layer.weightBytes, weightBytes, `${name}: weightBytes changed`);
    assert.deepEqual(layer.forward(x).f32(), y1, `${name}: second forward differs`);
    // asking for the packed matrix rebuilds it bit for bit
    const q = layer.packed;
    assert.deepEqual(q.codes, orig.codes, name);
    assert.deepEqual(q.scales, orig.scales, name);
    assert.deepEqual(q.levels, orig.levels, name);
    assert.deepEqual(layer.forward(x).f32(), y1, `${name}: forward after the rebuild differs`);
    // the gradient path (dequantize) works from the rebuilt matrix: equal to the plain decode layer's
    const fresh = new PackedLinear({ ...p, codes: orig.codes.slice(), scales: orig.scales.slice() }, null, 'dec', 'int8');
    fresh.lut = false;
    const layer2 = new PackedLinear({ ...p, codes: orig.codes.slice(), scales: orig.scales.slice() }, null, 'lut2', 'int8');
    layer2.lut = true;
    layer2.forward(x); // drops the plain codes
    const xg1 = new Tensor(x.f32().slice(), [2, K], undefined, 0, true);
    const xg2 = new Tensor(x.f32().slice(), [2, K], undefined, 0, true);
    const g = r.fillNormal(new Float32Array(2 * N), 0, 1);
    layer2.forward(xg1).backward(g);
    fresh.forward(xg2).backward(g);
    assert.ok(xg1.grad && xg2.grad, name);
    assert.deepEqual(xg1.grad.f32(), xg2.grad.f32(), `${name}: input gradient`);
  }
});
