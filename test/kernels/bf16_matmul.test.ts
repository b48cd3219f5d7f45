/**
 * The bf16-weight matmul (bf16Matmul, native/kernels.h Bf16Args) on every backend (pure TS; native
 * AMX-BF16 tiles (amx-bf16, bf16 activations, 16 rows or more; an opt-in path, also run under the
 * emulation of scripts/test-avx512-emu.sh), AVX-512 (vdpbf16ps for the bf16-activation mode when
 * the CPU has AVX512_BF16, AVX-512F widening otherwise), AVX2 widening and portable, at 1 and 2
 * threads, the paths this CPU has), in both
 * activation modes, against a float64 reference with the derived bound of float32 summation in any
 * order, (K + 1) 2^-24 sum |xr w| (plus 2^-126 per term for vdpbf16ps' flushing of denormals);
 * the bf16 mode also against the f32-activation function (activation rounding <= 2^-9 relative);
 * the TS twin against the portable kernel bit for bit; each path bit-identical at 1 and 2 threads
 * and repeated calls; poisoned outputs; NaN rows; Bf16Linear forward and its input gradient.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import { bf16Bits, bf16ToF32, toBf16 } from '../../src/tensor/kernels/js_bf16.js';
import { Bf16Linear, Rng } from '../../src/nn/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { hasNative } from '../helpers/numeric.js';
import { familyPaths, kernelVariants, restoreNative, skippedPaths, usePath } from '../helpers/kernel_variants.js';

const backends = kernelVariants('bf16');
const nb = nativeBackend();

function run(k: Kernels, M: number, N: number, K: number, x: Float32Array, xOff: number, w: Uint16Array, xBf16: boolean, outOff = 0): Float32Array {
  const out = new Float32Array(outOff + M * N).fill(NaN);
  k.bf16Matmul(M, N, K, x, xOff, w, out, outOff, xBf16);
  return out.subarray(outOff);
}

interface Ref {
  ref: Float64Array; // sum xr w in float64
  bound: Float64Array; // float32 summation bound
  refX: Float64Array; // sum x w (f32 activations)
  absX: Float64Array; // sum |x w|
}

function reference(M: number, N: number, K: number, x: Float32Array, xOff: number, w: Uint16Array, xBf16: boolean): Ref {
  const wf = bf16ToF32(w);
  const xr = Float64Array.from(x.subarray(xOff, xOff + M * K), (v) => (xBf16 ? bf16ToF32(Uint16Array.of(bf16Bits(v)))[0] : v));
  const r: Ref = { ref: new Float64Array(M * N), bound: new Float64Array(M * N), refX: new Float64Array(M * N), absX: new Float64Array(M * N) };
  const u = 2 ** -24;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      let sx = 0;
      let ax = 0;
      for (let k = 0; k < K; k++) {
        const wv = wf[n * K + k];
        s += xr[m * K + k] * wv;
        a += Math.abs(xr[m * K + k] * wv);
        sx += x[xOff + m * K + k] * wv;
        ax += Math.abs(x[xOff + m * K + k] * wv);
      }
      r.ref[m * N + n] = s;
      r.bound[m * N + n] = ((K + 1) * u) / (1 - (K + 1) * u) * a + (K + 1) * 2 ** -126;
      r.refX[m * N + n] = sx;
      r.absX[m * N + n] = ax;
    }
  }
  return r;
}

const shapes: [number, number, number][] = [
  // M, N, K
  [1, 37, 128],
  [3, 41, 333], // K not a multiple of any vector width
  [7, 70, 1024], // M > the 6 rows of one AVX-512 weight pass
  [1, 5, 7], // K below one vector
  [2, 300, 1024], // large enough for the thread pool
  [9, 33, 2112], // several L2 tiles of rows
];

interface Case {
  label: string;
  M: number;
  N: number;
  K: number;
  x: Float32Array;
  xOff: number;
  w: Uint16Array;
  xBf16: boolean;
  r: Ref;
}

let memo: Case[] | undefined;
function cases(): Case[] {
  if (memo) return memo;
  const rng = new Rng(41);
  memo = [];
  for (const [M, N, K] of shapes) {
    const w = toBf16(rng.fillNormal(new Float32Array(N * K), 0, 0.05));
    const xOff = 3;
    const x = rng.fillNormal(new Float32Array(xOff + M * K), 0, 1);
    for (const xBf16 of [false, true]) {
      memo.push({ label: `M${M} N${N} K${K} ${xBf16 ? 'bf16' : 'f32'} activations`, M, N, K, x, xOff, w, xBf16, r: reference(M, N, K, x, xOff, w, xBf16) });
    }
  }
  return memo;
}

for (const be of backends) {
  test(`bf16Matmul matches the float64 reference within the float32 summation bound [${be.name}]`, () => {
    be.setup();
    try {
      for (const c of cases()) {
        const out = run(be.k, c.M, c.N, c.K, c.x, c.xOff, c.w, c.xBf16, 2);
        assert.ok(out.some((v) => v !== 0), `${c.label}: all zeros`);
        for (let i = 0; i < out.length; i++) {
          assert.ok(Math.abs(out[i] - c.r.ref[i]) <= c.r.bound[i], `${c.label} [${i}]: ${out[i]} vs ${c.r.ref[i]} (bound ${c.r.bound[i]})`);
          if (c.xBf16) {
            // bf16 activations: each |x - bf16(x)| <= 2^-9 |x|
            const b = 2 ** -9 * c.r.absX[i] + c.r.bound[i];
            assert.ok(Math.abs(out[i] - c.r.refX[i]) <= b, `${c.label} [${i}]: ${out[i]} vs f32-activation ${c.r.refX[i]} (bound ${b})`);
          }
        }
      }
    } finally {
      restoreNative();
    }
  });
}

test('bf16Matmul: the TS twin equals the portable native kernel bit for bit; each path gives the same bits at 1 and 2 threads and on repeated calls', { skip: hasNative() ? false : 'native backend unavailable' }, (t) => {
  assert.ok('kernels' in nb);
  for (const m of skippedPaths('bf16')) t.diagnostic(`path skipped: ${m}`);
  t.diagnostic(`paths run: ${familyPaths('bf16').join(', ')} (amx-bf16 = AMX tiles, avx512-bf16 = vdpbf16ps for bf16 activations)`);
  try {
    for (const c of cases()) {
      const js = run(jsKernels, c.M, c.N, c.K, c.x, c.xOff, c.w, c.xBf16);
      usePath('bf16', 'generic');
      assert.deepEqual(run(nb.kernels, c.M, c.N, c.K, c.x, c.xOff, c.w, c.xBf16), js, `${c.label}: generic != js`);
      const byPath = new Map<string, Float32Array>();
      for (const v of backends.filter((b) => b.path !== undefined)) {
        v.setup();
        const a = run(v.k, c.M, c.N, c.K, c.x, c.xOff, c.w, c.xBf16).slice();
        assert.deepEqual(run(v.k, c.M, c.N, c.K, c.x, c.xOff, c.w, c.xBf16), a, `${c.label} [${v.name}]: repeated call differs`);
        const prev = byPath.get(v.path ?? '');
        if (prev) assert.deepEqual(a, prev, `${c.label} [${v.name}]: differs from the other thread count`);
        else byPath.set(v.path ?? '', a);
      }
    }
  } finally {
    restoreNative();
  }
});

// amx-bf16 (native/bf16_amx.cc): AMX-BF16 tiles for bf16 activations and M >= 16 (fewer rows and
// f32 activations go to the avx512-bf16 kernel). Its own shapes: tile tails in M (16-row tiles,
// 2 x 2 tiles per block), N (16-column tiles, 32-column blocks per task) and K (32 per TDPBF16PS,
// odd K), M below and above the 16-row threshold. How close it is to avx512-bf16 (both against the
// same float64 reference and bound), measured under the emulation (scripts/test-avx512-emu.sh,
// 2026-12-05, these shapes): max |amx-bf16 - avx512-bf16| = 1.91e-6 = 0.031 x bound (amx-bf16 from
// the float64 reference: 0.019 x bound), printed as a diagnostic on every run; the two differ only in
// the order of the float32 sums (and where TDPBF16PS flushes a tiny result). The assertion keeps the
// derived limit: both lie within the bound of the same reference, so at most 2 x bound apart.
const AMX_VS_AVX512_MAX = 2;
const amxSkip = familyPaths('bf16').includes('amx-bf16')
  ? false
  : 'bf16 amx-bf16: not supported by this CPU or build (needs amx-tile, amx-bf16, amx-permitted and avx512bf16: tfree info; or the emulation build of scripts/test-avx512-emu.sh)';
const amxShapes: [number, number, number][] = [
  // M, N, K
  [16, 16, 32], // one tile of each, one TDPBF16PS
  [15, 17, 31], // M below the threshold: the avx512-bf16 kernel, bit for bit
  [17, 33, 33], // one row / column / k past a tile
  [33, 47, 65], // 2 x 2 tiles and tails; K odd
  [48, 16, 1], // K = 1: one pair, its odd half zero
  [16, 5, 7], // N < 16, K < 32
  [20, 70, 100],
  [64, 64, 512], // whole tiles only
  [40, 300, 1024], // 10 column blocks: both threads busy
  [100, 3, 200],
];
test('bf16Matmul amx-bf16: tile tails within the float64 bound, NaN-poisoned outputs, 1 and 2 threads bit-identical; distance to avx512-bf16', { skip: amxSkip }, (t) => {
  const rng = new Rng(44);
  const amx = backends.filter((b) => b.path === 'amx-bf16');
  const avx = backends.find((b) => b.path === 'avx512-bf16');
  assert.equal(amx.length, 2);
  assert.ok(avx, 'amx-bf16 without avx512-bf16');
  let worstRef = 0;
  let worstAvx = 0;
  let maxDiff = 0;
  try {
    for (const [M, N, K] of amxShapes) {
      const label = `M${M} N${N} K${K}`;
      const w = toBf16(rng.fillNormal(new Float32Array(N * K), 0, 0.05));
      const xOff = 5;
      const x = rng.fillNormal(new Float32Array(xOff + M * K), 0, 1);
      const r = reference(M, N, K, x, xOff, w, true);
      const outs = amx.map((v) => {
        v.setup();
        return run(v.k, M, N, K, x, xOff, w, true, 3).slice();
      });
      assert.deepEqual(outs[1], outs[0], `${label}: 1 and 2 threads differ`);
      avx.setup();
      const ref2 = run(avx.k, M, N, K, x, xOff, w, true, 1).slice();
      if (M < 16) assert.deepEqual(outs[0], ref2, `${label}: below 16 rows amx-bf16 is the avx512-bf16 kernel`);
      for (let i = 0; i < M * N; i++) {
        const o = outs[0][i];
        assert.ok(Math.abs(o - r.ref[i]) <= r.bound[i], `${label} [${i}]: ${o} vs ${r.ref[i]} (bound ${r.bound[i]})`);
        worstRef = Math.max(worstRef, Math.abs(o - r.ref[i]) / r.bound[i]);
        worstAvx = Math.max(worstAvx, Math.abs(o - ref2[i]) / r.bound[i]);
        maxDiff = Math.max(maxDiff, Math.abs(o - ref2[i]));
      }
    }
    // NaN and infinity in the second row tile and the second column tile
    const [M, N, K] = [35, 40, 70];
    const w = toBf16(rng.fillNormal(new Float32Array(N * K), 0, 0.1));
    w[20 * K + 33] = 0x7fc0; // NaN weight: column 20
    w[37 * K + 3] = 0x7f80; // +inf weight: column 37 (inf or NaN: x changes sign along K)
    const x = rng.fillNormal(new Float32Array(M * K), 0, 1);
    x[17 * K + 69] = NaN; // activation row 17, the last k
    for (const v of amx) {
      v.setup();
      const out = run(v.k, M, N, K, x, 0, w, true);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          const o = out[m * N + n];
          if (m === 17 || n === 20) assert.ok(Number.isNaN(o), `${v.name} [${m}, ${n}]: ${o}, want NaN`);
          else if (n === 37) assert.ok(!Number.isFinite(o), `${v.name} [${m}, ${n}]: ${o}, want inf or NaN`);
          else assert.ok(Number.isFinite(o), `${v.name} [${m}, ${n}]: ${o}`);
        }
    }
  } finally {
    restoreNative();
  }
  t.diagnostic(`amx-bf16: max |out - float64 ref| / bound = ${worstRef.toPrecision(3)}; max |amx-bf16 - avx512-bf16| = ${maxDiff.toPrecision(3)} = ${worstAvx.toPrecision(3)} x bound`);
  assert.ok(worstAvx <= AMX_VS_AVX512_MAX, `amx-bf16 vs avx512-bf16: ${worstAvx} x bound`);
});

test('bf16Matmul: NaN in x or W propagates to its row / column only; bf16 rounding; bad sizes throw', () => {
  const rng = new Rng(42);
  const K = 100;
  const N = 9;
  const w = toBf16(rng.fillNormal(new Float32Array(N * K), 0, 0.1));
  w[4 * K + 17] = 0x7fc0; // NaN weight in row 4
  const x = rng.fillNormal(new Float32Array(3 * K), 0, 1);
  x[K + 5] = NaN; // activation row 1
  for (const be of backends) {
    be.setup();
    try {
      for (const xBf16 of [false, true]) {
        const out = run(be.k, 3, N, K, x, 0, w, xBf16);
        for (let m = 0; m < 3; m++)
          for (let n = 0; n < N; n++) {
            const nan = m === 1 || n === 4;
            assert.equal(Number.isNaN(out[m * N + n]), nan, `${be.name} xBf16=${xBf16} [${m}, ${n}]`);
          }
      }
      assert.throws(() => be.k.bf16Matmul(1, N, K, x, 0, w.subarray(1), new Float32Array(N), 0, false), /too short|w/);
    } finally {
      restoreNative();
    }
  }
  // nearest even, NaN kept, overflow to infinity
  assert.equal(bf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even (1.0)
  assert.equal(bf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie -> even (up)
  assert.equal(bf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.ok(Number.isNaN(bf16ToF32(Uint16Array.of(bf16Bits(NaN)))[0]));
  assert.equal(bf16ToF32(Uint16Array.of(bf16Bits(3.4028234663852886e38)))[0], Infinity);
});

test('Bf16Linear: forward is x W^T + b from the bf16 weight; the input gradient is g W (float64 reference)', () => {
  const rng = new Rng(43);
  const [M, K, N] = [5, 70, 600]; // N > 256: the backward widens W in two blocks
  const w = toBf16(rng.fillNormal(new Float32Array(N * K), 0, 0.1));
  const bias = Tensor.from(rng.fillNormal(new Float32Array(N), 0, 1), [N]);
  const layer = new Bf16Linear(w, N, K, bias, 'test');
  assert.equal(layer.weightBytes, 2 * N * K);
  const xd = rng.fillNormal(new Float32Array(M * K), 0, 1);
  const x = Tensor.from(xd, [M, K]);
  x.requiresGrad = true;
  const wf = bf16ToF32(w);
  for (const act of ['f32', 'bf16'] as const) {
    layer.act = act;
    const y = layer.forward(x);
    assert.deepEqual(y.shape, [M, N]);
    const yd = y.f32();
    const c = reference(M, N, K, xd, 0, w, act === 'bf16');
    for (let i = 0; i < M * N; i++) {
      const want = c.ref[i] + bias.f32()[i % N];
      assert.ok(Math.abs(yd[i] - want) <= c.bound[i] + 1e-6 * Math.abs(want) + 1e-7, `${act} [${i}]: ${yd[i]} vs ${want}`);
    }
  }
  layer.act = 'f32';
  const g = rng.fillNormal(new Float32Array(M * N), 0, 1);
  const y = layer.forward(x);
  y.backward(Tensor.from(g, [M, N]));
  const gx = x.grad?.f32();
  assert.ok(gx);
  for (let m = 0; m < M; m++)
    for (let k = 0; k < K; k++) {
      let s = 0;
      let a = 0;
      for (let n = 0; n < N; n++) {
        s += g[m * N + n] * wf[n * K + k];
        a += Math.abs(g[m * N + n] * wf[n * K + k]);
      }
      assert.ok(Math.abs(gx[m * K + k] - s) <= (N + 2) * 2 ** -24 * a + 1e-7, `gx [${m}, ${k}]: ${gx[m * K + k]} vs ${s}`);
    }
  assert.throws(() => new Bf16Linear(w, N, K + 1), /expected/);
  assert.throws(() => layer.forward(Tensor.from(new Float32Array(K + 1), [K + 1])), /does not end in/);
});
