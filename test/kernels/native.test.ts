/**
 * Native addon kernels vs their pure-TypeScript twin (`jsKernels`, the reference) and, for GEMM,
 * also vs a float64 reference loop written here. Every kernel runs on random shapes including odd
 * and tail sizes (so the SIMD main loops, masked tails and the thread pool are all exercised) under
 * every kernel path this CPU has (avx512, avx2, neon, generic: cpuInfo().isas) x {1, 2 threads};
 * the GEMM, a kernel family of its own, under every implementation of the gemm family this CPU runs
 * (familyPaths('gemm'): avx512, or avx512-zmm on AMD Zen 4 where avx2 is the default; avx2; neon;
 * generic) x {1, 2 threads}. A path the CPU lacks is registered as a skipped test that names it,
 * and the paths that ran are printed. Outputs are poisoned with NaN before each call: kernels must overwrite every element
 * they own.
 *
 * Tolerances, |native - ref| <= atol + rtol * |ref|:
 *   elementwise / data movement (unary, binary, copy, affine, axpy, gather, rope, adamw): rtol 1e-5, atol 1e-6
 *   unary backward: rtol 2e-5, atol 2e-6 (x gy)
 *   GEMM: rtol = atol = 2e-5 * sqrt(K + 1) (f32 accumulation in blocked order vs float64)
 *   reductions, softmax family, norms, cross-entropy, attention: rtol 1e-4, atol 1e-5 x typical magnitude
 *   sumSquares: rtol 1e-9 (both accumulate in float64)
 *
 * When the addon is not built, every test is skipped (with the reason printed) instead of failing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative, type NativeExtrasInternal } from '../../src/tensor/kernels/native.js';
import { NATIVE_ISAS } from '../../src/tensor/kernels/index.js';
import { attnArgs } from '../helpers/numeric.js';
import { jsKernels } from '../../src/tensor/kernels/js.js';
import { BinaryOp, ReduceOp, UnaryOp, type AttentionArgs, type Kernels } from '../../src/tensor/kernels/types.js';

const loaded = loadNative();
const skipReason: string | false = 'error' in loaded ? `native addon unavailable: ${loaded.error}` : false;
if (skipReason) console.log(`# native kernel tests skipped: ${skipReason}`);
const native: Kernels | null = 'kernels' in loaded ? loaded.kernels : null;
const extras: NativeExtrasInternal | null = 'extras' in loaded ? (loaded.extras as NativeExtrasInternal) : null;
const js = jsKernels;

// ---------------------------------------------------------------------------------------------
// helpers

/** Deterministic PRNG (mulberry32). */
class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uni(a: number, b: number): number {
    return a + (b - a) * this.next();
  }
  int(a: number, b: number): number {
    return a + Math.floor(this.next() * (b - a + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  f32(n: number, a = -1, b = 1): Float32Array {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = this.uni(a, b);
    return x;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
}

interface Tol {
  rtol: number;
  atol: number;
}
const EW: Tol = { rtol: 1e-5, atol: 1e-6 };
const ACC: Tol = { rtol: 1e-4, atol: 1e-5 };

function poison(n: number): Float32Array {
  return new Float32Array(n).fill(NaN);
}

/** Asserts |a - e| <= atol + rtol |e| elementwise (NaN == NaN, infinities must match exactly). */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol, what: string, n = expected.length): void {
  assert.ok(actual.length >= n, `${what}: output length ${actual.length} < ${n}`);
  for (let i = 0; i < n; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) {
      if (!Number.isNaN(a)) assert.fail(`${what}[${i}]: got ${a}, expected NaN`);
      continue;
    }
    if (!Number.isFinite(e)) {
      if (a !== e) assert.fail(`${what}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    const err = Math.abs(a - e);
    if (!(err <= tol.atol + tol.rtol * Math.abs(e))) {
      assert.fail(`${what}[${i}]: got ${a}, expected ${e} (|diff| ${err.toExponential(2)} > ${tol.atol} + ${tol.rtol} |e|)`);
    }
  }
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i])) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/** Tolerance scaled to the typical magnitude of the expected values. */
function scaled(tol: Tol, expected: ArrayLike<number>): Tol {
  return { rtol: tol.rtol, atol: tol.atol * Math.max(1, maxAbs(expected)) };
}

interface Config {
  simd: string;
  threads: number;
}
/** The kernel paths this CPU and build run, best first (cpuInfo().isas is lowest first). */
const paths: string[] = extras ? [...extras.cpuInfo().isas].reverse() : [];
const configs: Config[] = paths.flatMap((simd) => [1, 2].map((threads) => ({ simd, threads })));
/** The GEMM's implementations this CPU and build run, best first (the gemm family). */
const gemmPaths: string[] = extras ? extras.familyPaths('gemm') : [];
if (extras) {
  console.log(`# native kernel paths tested: ${paths.join(', ')}; gemm: ${gemmPaths.join(', ')} (CPU features: ${extras.cpuInfo().features.join(' ')})`);
  for (const isa of NATIVE_ISAS.filter((i) => !paths.includes(i))) {
    test(`native kernels on the ${isa} path`, { skip: `this CPU or build lacks the ${isa} path` }, () => undefined);
  }
}

/** Registers one test per configuration; the body gets the native kernels with simd/threads set. */
function ktest(name: string, body: (k: Kernels, cfg: Config) => void): void {
  for (const cfg of configs) {
    test(`${name} [${cfg.simd}, ${cfg.threads}T]`, { skip: skipReason }, () => {
      assert.ok(native && extras);
      assert.equal(extras.setSimd(cfg.simd), cfg.simd);
      extras.setThreads(cfg.threads);
      assert.equal(extras.getThreads(), cfg.threads);
      body(native, cfg);
    });
  }
}

/**
 * Registers one test per implementation of the gemm family x {1, 2 threads}; the body gets the
 * native kernels with that GEMM forced (setKernelPath) at the best ISA cap.
 */
function gtest(name: string, body: (k: Kernels, cfg: Config) => void): void {
  for (const path of gemmPaths) {
    for (const threads of [1, 2]) {
      test(`${name} [gemm ${path}, ${threads}T]`, { skip: skipReason }, () => {
        assert.ok(native && extras);
        try {
          extras.setIsa(extras.cpuInfo().best);
          assert.equal(extras.setKernelPath('gemm', path), path);
          extras.setThreads(threads);
          assert.equal(extras.cpuInfo().paths.gemm, path);
          body(native, { simd: path, threads });
        } finally {
          extras.setIsa(extras.cpuInfo().best);
          extras.setThreads(2);
        }
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM

/** float64 reference: C_b = alpha op(A_b) op(B_b) + beta C_b */
function gemmRef(
  batch: number,
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  aOff: number,
  lda: number,
  sA: number,
  B: Float32Array,
  bOff: number,
  ldb: number,
  sB: number,
  beta: number,
  C: Float32Array,
  cOff: number,
  ldc: number,
  sC: number,
): void {
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const a = tA ? A[aOff + b * sA + k * lda + i] : A[aOff + b * sA + i * lda + k];
          const v = tB ? B[bOff + b * sB + j * ldb + k] : B[bOff + b * sB + k * ldb + j];
          s += a * v;
        }
        const ci = cOff + b * sC + i * ldc + j;
        C[ci] = beta === 0 ? alpha * s : alpha * s + beta * C[ci];
      }
    }
  }
}

interface GemmCase {
  batch: number;
  tA: boolean;
  tB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  bcastA: boolean;
  bcastB: boolean;
  pad: number;
  offs: number;
}

function runGemmCase(k: Kernels, c: GemmCase, rng: Rand): void {
  const { batch, tA, tB, M, N, K, alpha, beta } = c;
  const lda = (tA ? M : K) + c.pad;
  const ldb = (tB ? K : N) + c.pad;
  const ldc = N + c.pad;
  const aRows = tA ? K : M;
  const bRows = tB ? N : K;
  const sA = c.bcastA ? 0 : aRows * lda;
  const sB = c.bcastB ? 0 : bRows * ldb;
  const sC = M * ldc;
  const aOff = c.offs;
  const bOff = c.offs * 2;
  const cOff = c.offs * 3;
  const A = rng.f32(aOff + (c.bcastA ? 1 : batch) * aRows * lda + 3);
  const B = rng.f32(bOff + (c.bcastB ? 1 : batch) * bRows * ldb + 3);
  const C0 = rng.f32(cOff + batch * sC + 3);
  const Cn = beta === 0 ? poison(C0.length) : C0.slice();
  const Cr = C0.slice();
  const Cj = beta === 0 ? poison(C0.length) : C0.slice();
  k.gemm(batch, tA, tB, M, N, K, alpha, A, aOff, lda, sA, B, bOff, ldb, sB, beta, Cn, cOff, ldc, sC);
  gemmRef(batch, tA, tB, M, N, K, alpha, A, aOff, lda, sA, B, bOff, ldb, sB, beta, Cr, cOff, ldc, sC);
  js.gemm(batch, tA, tB, M, N, K, alpha, A, aOff, lda, sA, B, bOff, ldb, sB, beta, Cj, cOff, ldc, sC);
  const t = 2e-5 * Math.sqrt(K + 1);
  const what = `gemm ${JSON.stringify(c)}`;
  // compare only the elements C owns (padding columns and gaps are not written)
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < M; i++) {
      const o = cOff + b * sC + i * ldc;
      close(Cn.subarray(o, o + N), Cr.subarray(o, o + N), { rtol: t, atol: t }, `${what} vs f64 row ${b}/${i}`);
      close(Cn.subarray(o, o + N), Cj.subarray(o, o + N), { rtol: t, atol: t }, `${what} vs js row ${b}/${i}`);
    }
  }
  // the padding between rows must be untouched
  if (c.pad > 0 && M > 1 && beta !== 0) {
    const o = cOff + N;
    assert.equal(Cn[o], C0[o], `${what}: padding of C was written`);
  }
}

gtest('gemm: random shapes 1..70, all transposes, alpha/beta, batch broadcast, offsets', (k, cfg) => {
  const rng = new Rand(1234 + cfg.threads);
  const combos: [boolean, boolean][] = [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ];
  for (let it = 0; it < 60; it++) {
    const [tA, tB] = combos[it % 4];
    runGemmCase(
      k,
      {
        batch: rng.int(1, 3),
        tA,
        tB,
        M: rng.int(1, 70),
        N: rng.int(1, 70),
        K: rng.int(1, 70),
        alpha: rng.pick([1, 0.75, -1.5]),
        beta: rng.pick([0, 1, 0.5]),
        bcastA: rng.bool(0.3),
        bcastB: rng.bool(0.3),
        pad: rng.int(0, 3),
        offs: rng.int(0, 5),
      },
      rng,
    );
  }
});

gtest('gemm: larger shapes 100..300 (blocking edges, threads), all transposes', (k, cfg) => {
  const rng = new Rand(99 + cfg.threads);
  const shapes: [number, number, number][] = [
    [100, 300, 257],
    [257, 129, 300],
    [300, 17, 200],
    [6, 300, 300],
    [150, 160, 33],
  ];
  let i = 0;
  for (const [M, N, K] of shapes) {
    const tA = (i & 1) === 1;
    const tB = (i & 2) === 2;
    i++;
    runGemmCase(k, { batch: 1, tA, tB, M, N, K, alpha: 1, beta: 0, bcastA: false, bcastB: false, pad: 1, offs: 2 }, rng);
    runGemmCase(k, { batch: 2, tA: !tA, tB: !tB, M, N, K, alpha: 0.5, beta: 1, bcastA: true, bcastB: false, pad: 0, offs: 0 }, rng);
  }
});

gtest('gemm: GEMV paths (M == 1 and N == 1, both layouts), K == 0, alpha == 0', (k, cfg) => {
  const rng = new Rand(7 + cfg.threads);
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      for (const [M, N, K] of [
        [1, 1, 1],
        [1, 37, 53],
        [1, 300, 700],
        [1, 4100, 33],
        [53, 1, 41],
        [700, 1, 300],
        [1, 1, 1000],
      ] as [number, number, number][]) {
        for (const beta of [0, 0.5]) {
          runGemmCase(k, { batch: 2, tA, tB, M, N, K, alpha: 1.25, beta, bcastA: false, bcastB: true, pad: 2, offs: 1 }, rng);
        }
      }
    }
  }
  // K == 0: C = beta C (and C = 0 when beta == 0, even over NaN poison)
  const C = poison(12);
  k.gemm(1, false, false, 3, 4, 0, 1, new Float32Array(0), 0, 0, 0, new Float32Array(0), 0, 4, 0, 0, C, 0, 4, 0);
  close(C, new Float32Array(12), EW, 'K == 0, beta == 0');
  const C2 = new Float32Array(12).fill(2);
  k.gemm(1, false, false, 3, 4, 0, 1, new Float32Array(0), 0, 0, 0, new Float32Array(0), 0, 4, 0, 0.5, C2, 0, 4, 0);
  close(C2, new Float32Array(12).fill(1), EW, 'K == 0, beta == 0.5');
});

// ---------------------------------------------------------------------------------------------
// elementwise

const unaryRange: Record<UnaryOp, [number, number]> = {
  [UnaryOp.Neg]: [-3, 3],
  [UnaryOp.Exp]: [-20, 20],
  [UnaryOp.Log]: [1e-3, 50],
  [UnaryOp.Sqrt]: [0, 50],
  [UnaryOp.Rsqrt]: [1e-2, 50],
  [UnaryOp.Silu]: [-20, 20],
  [UnaryOp.Gelu]: [-10, 10],
  [UnaryOp.GeluTanh]: [-10, 10],
  [UnaryOp.Tanh]: [-10, 10],
  [UnaryOp.Elu]: [-6, 6],
  [UnaryOp.Relu]: [-3, 3],
  [UnaryOp.Sigmoid]: [-30, 30],
  [UnaryOp.Abs]: [-3, 3],
  [UnaryOp.Square]: [-3, 3],
  [UnaryOp.Recip]: [0.05, 4],
};
const unaryOps = Object.values(UnaryOp).filter((v): v is UnaryOp => typeof v === 'number');
const sizes = [1, 5, 7, 8, 9, 16, 31, 100, 1001, 20000, 70001];

function unaryInput(op: UnaryOp, n: number, rng: Rand): Float32Array {
  const [a, b] = unaryRange[op];
  const x = rng.f32(n, a, b);
  // sprinkle values near the kinks / polynomial switch points and tiny values
  const specials = [0.5, -0.5, 0.6249, 0.6251, 1e-4, -1e-4, 1e-20];
  for (let i = 0; i < Math.min(n, specials.length); i += 3) {
    const v = specials[i];
    if (v >= a && v <= b) x[i] = v;
  }
  if (op === UnaryOp.Recip) for (let i = 0; i < n; i++) if (rng.bool()) x[i] = -x[i];
  return x;
}

ktest('unary: every op, odd and tail sizes, in-place', (k) => {
  const rng = new Rand(5);
  for (const op of unaryOps) {
    for (const n of sizes) {
      const x = unaryInput(op, n, rng);
      const ref = poison(n);
      js.unary(op, x, ref, n);
      const out = poison(n + 3);
      k.unary(op, x, out, n);
      close(out, ref, EW, `unary ${UnaryOp[op]} n=${n}`);
      assert.ok(Number.isNaN(out[n]), `unary ${UnaryOp[op]} wrote past n`);
      const inplace = x.slice();
      k.unary(op, inplace, inplace, n);
      close(inplace, ref, EW, `unary ${UnaryOp[op]} in place n=${n}`);
    }
  }
});

ktest('unary: special values (0, +-Infinity, NaN, large) match the JS twin', (k) => {
  const x = new Float32Array([0, -0, Infinity, -Infinity, NaN, 1e30, -1e30, 88.5, 89, -87, -104, 1e-40]);
  for (const op of unaryOps) {
    const ref = poison(x.length);
    js.unary(op, x, ref, x.length);
    const out = poison(x.length);
    k.unary(op, x, out, x.length);
    close(out, ref, { rtol: 1e-5, atol: 1e-30 }, `unary ${UnaryOp[op]} specials`);
  }
});

ktest('unaryBackward: every op, accumulate false/true', (k) => {
  const rng = new Rand(6);
  for (const op of unaryOps) {
    for (const n of [1, 7, 9, 33, 1000, 20000]) {
      const x = unaryInput(op, n, rng);
      for (let i = 0; i < n; i++) if (x[i] === 0 && (op === UnaryOp.Relu || op === UnaryOp.Abs)) x[i] = 0.25;
      const y = poison(n);
      js.unary(op, x, y, n);
      const gy = rng.f32(n);
      for (const acc of [false, true]) {
        const g0 = rng.f32(n);
        const ref = acc ? g0.slice() : poison(n);
        js.unaryBackward(op, x, y, gy, ref, n, acc);
        const out = acc ? g0.slice() : poison(n);
        k.unaryBackward(op, x, y, gy, out, n, acc);
        close(out, ref, { rtol: 2e-5, atol: 2e-6 }, `unaryBackward ${UnaryOp[op]} n=${n} acc=${acc}`);
      }
    }
  }
});

/** bits of two f32 arrays equal (NaN payloads aside) */
function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]} (same bits)`);
}

ktest('swiglu / swigluBackward: the same bits as unary Silu + binary Mul (and their backward) of this backend, close to the JS twin', (k) => {
  const rng = new Rand(61);
  for (const n of [1, 7, 8, 9, 33, 1000, 70001]) {
    const gate = rng.f32(n, -12, 12);
    const up = rng.f32(n, -3, 3);
    const g = rng.f32(n, -2, 2);
    if (n > 8) gate.set([0, -0, 20, -20, 1e-30, -88, 88, 100], 0);
    const one = new Int32Array([1]);
    const shape = new Int32Array([n]);
    // composition: s = silu(gate); out = s * up; gUp = g * s; gS = g * up; gGate = silu'(gate) gS
    const s = poison(n);
    k.unary(UnaryOp.Silu, gate, s, n);
    const ref = poison(n);
    k.binary(BinaryOp.Mul, shape, s, 0, one, up, 0, one, ref);
    const refUp = poison(n);
    k.binary(BinaryOp.Mul, shape, g, 0, one, s, 0, one, refUp);
    const gS = poison(n);
    k.binary(BinaryOp.Mul, shape, g, 0, one, up, 0, one, gS);
    const refGate = poison(n);
    k.unaryBackward(UnaryOp.Silu, gate, s, gS, refGate, n, false);
    const out = poison(n + 1);
    k.swiglu(gate, up, out, n);
    assert.ok(Number.isNaN(out[n]), 'swiglu wrote past n');
    sameBits(out.subarray(0, n), ref, `swiglu n=${n}`);
    const gGate = poison(n + 1);
    const gUp = poison(n + 1);
    k.swigluBackward(gate, up, g, gGate, gUp, n);
    assert.ok(Number.isNaN(gGate[n]) && Number.isNaN(gUp[n]), 'swigluBackward wrote past n');
    sameBits(gGate.subarray(0, n), refGate, `swigluBackward gGate n=${n}`);
    sameBits(gUp.subarray(0, n), refUp, `swigluBackward gUp n=${n}`);
    // against the JS twin (exp in float64 there)
    const jo = poison(n);
    js.swiglu(gate, up, jo, n);
    close(out.subarray(0, n), jo, EW, `swiglu vs JS n=${n}`);
    const jg = poison(n);
    const ju = poison(n);
    js.swigluBackward(gate, up, g, jg, ju, n);
    close(gGate.subarray(0, n), jg, { rtol: 2e-5, atol: 2e-6 }, `swigluBackward gGate vs JS n=${n}`);
    close(gUp.subarray(0, n), ju, EW, `swigluBackward gUp vs JS n=${n}`);
  }
});

const binaryOps = Object.values(BinaryOp).filter((v): v is BinaryOp => typeof v === 'number');

interface View {
  data: Float32Array;
  off: number;
  strides: Int32Array;
}

/** A random strided view of `shape`: broadcast dims (stride 0), permuted / padded / flipped strides, offset. */
function randomView(shape: number[], rng: Rand, quantize: boolean): View {
  const rank = shape.length;
  const strides = new Int32Array(rank);
  const order = shape.map((_, i) => i);
  if (rng.bool(0.4)) order.reverse();
  let step = 1;
  for (const d of order) {
    if (shape[d] > 1 && rng.bool(0.25)) {
      strides[d] = 0;
      continue;
    }
    strides[d] = step;
    step *= shape[d] + (rng.bool(0.2) ? 1 : 0);
  }
  let lo = 0;
  let hi = 0;
  for (let d = 0; d < rank; d++) {
    if (rng.bool(0.15)) strides[d] = -strides[d];
    const ext = (shape[d] - 1) * strides[d];
    if (ext < 0) lo += ext;
    else hi += ext;
  }
  const off = -lo + rng.int(0, 3);
  const data = quantize ? new Float32Array(off + hi + 4).map(() => rng.int(-2, 2) * 0.5) : rng.f32(off + hi + 4, -2, 2);
  return { data, off, strides };
}

/** Rank 0..6 shape of at most ~20k elements; `big` adds a [300|1000, 77] tail (threaded path). */
function randomShape(rng: Rand, big: boolean): number[] {
  for (;;) {
    const rank = big ? rng.int(0, 1) : rng.int(0, 6);
    const shape: number[] = [];
    for (let d = 0; d < rank; d++) shape.push(rng.pick([1, 1, 2, 3, 5, 8, 9, 17]));
    if (big) shape.push(rng.pick([300, 1000]), 77);
    const total = shape.reduce((a, b) => a * b, 1);
    if (total <= (big ? 160000 : 20000)) return shape;
  }
}

ktest('binary: every op, rank 0..6, broadcasting, permuted / flipped strides, offsets, in-place', (k) => {
  const rng = new Rand(8);
  for (const op of binaryOps) {
    for (let it = 0; it < 25; it++) {
      const shape = randomShape(rng, it % 8 === 7);
      const total = shape.reduce((a, b) => a * b, 1);
      const quant = op === BinaryOp.Eq || op === BinaryOp.Gt || op === BinaryOp.Max || op === BinaryOp.Min;
      const a = randomView(shape, rng, quant);
      const b = randomView(shape, rng, quant);
      if (op === BinaryOp.Div) for (let i = 0; i < b.data.length; i++) if (Math.abs(b.data[i]) < 0.25) b.data[i] = 0.75;
      const sh = Int32Array.from(shape);
      const ref = poison(total);
      js.binary(op, sh, a.data, a.off, a.strides, b.data, b.off, b.strides, ref);
      const out = poison(total);
      k.binary(op, sh, a.data, a.off, a.strides, b.data, b.off, b.strides, out);
      close(out, ref, EW, `binary ${BinaryOp[op]} shape [${shape.join(',')}]`);
    }
    // in place: out aliases a (contiguous)
    const n = 70001;
    const a = rng.f32(n, -2, 2);
    const b = rng.f32(n, 0.5, 2);
    const strides = Int32Array.from([1]);
    const ref = poison(n);
    js.binary(op, Int32Array.from([n]), a, 0, strides, b, 0, strides, ref);
    k.binary(op, Int32Array.from([n]), a, 0, strides, b, 0, strides, a);
    close(a, ref, EW, `binary ${BinaryOp[op]} in place`);
  }
});

ktest('copyStrided: random views (broadcast, permuted, flipped, offset)', (k) => {
  const rng = new Rand(9);
  for (let it = 0; it < 60; it++) {
    const shape = randomShape(rng, it % 10 === 9);
    const total = shape.reduce((a, b) => a * b, 1);
    const x = randomView(shape, rng, false);
    const sh = Int32Array.from(shape);
    const ref = poison(total);
    js.copyStrided(sh, x.data, x.off, x.strides, ref);
    const out = poison(total);
    k.copyStrided(sh, x.data, x.off, x.strides, out);
    close(out, ref, { rtol: 0, atol: 0 }, `copyStrided [${shape.join(',')}]`);
  }
});

ktest('affine (incl. fill with alpha == 0 not reading a) and axpy', (k) => {
  const rng = new Rand(10);
  for (const n of sizes) {
    const a = rng.f32(n);
    for (const [alpha, beta] of [
      [1.5, -0.25],
      [0, 3],
      [-1, 0],
    ]) {
      const src = alpha === 0 ? poison(n) : a;
      const ref = poison(n);
      js.affine(src, ref, n, alpha, beta);
      const out = poison(n);
      k.affine(src, out, n, alpha, beta);
      close(out, ref, EW, `affine n=${n} alpha=${alpha}`);
    }
    const y0 = rng.f32(n);
    const ref = y0.slice();
    js.axpy(n, -0.75, a, ref);
    const out = y0.slice();
    k.axpy(n, -0.75, a, out);
    close(out, ref, EW, `axpy n=${n}`);
  }
});

// ---------------------------------------------------------------------------------------------
// reductions

ktest('reduce: sum and max (+argmax, first max on ties) over [outer, len, inner]', (k) => {
  const rng = new Rand(11);
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 7, 1],
    [5, 9, 1],
    [2, 1000, 1],
    [400, 100, 1],
    [1, 5, 3],
    [4, 7, 9],
    [3, 33, 300],
    [2, 0, 3],
    [60, 40, 20],
  ];
  for (const [outer, len, inner] of shapes) {
    for (const quant of [false, true]) {
      const n = outer * len * inner;
      const x = quant ? new Float32Array(n).map(() => rng.int(-3, 3)) : rng.f32(n, -5, 5);
      const m = outer * inner;
      const refS = poison(m);
      js.reduce(ReduceOp.Sum, x, refS, outer, len, inner, null);
      const outS = poison(m);
      k.reduce(ReduceOp.Sum, x, outS, outer, len, inner, null);
      close(outS, refS, { rtol: 1e-5, atol: 1e-5 * Math.sqrt(len + 1) * 5 }, `reduce sum ${outer}x${len}x${inner}`);
      const refM = poison(m);
      const refA = new Int32Array(m).fill(-7);
      js.reduce(ReduceOp.Max, x, refM, outer, len, inner, refA);
      const outM = poison(m);
      const outA = new Int32Array(m).fill(-9);
      k.reduce(ReduceOp.Max, x, outM, outer, len, inner, outA);
      close(outM, refM, { rtol: 0, atol: 0 }, `reduce max ${outer}x${len}x${inner}`);
      assert.deepEqual(Array.from(outA), Array.from(refA), `argmax ${outer}x${len}x${inner} quant=${quant}`);
      const outM2 = poison(m);
      k.reduce(ReduceOp.Max, x, outM2, outer, len, inner, null);
      close(outM2, refM, { rtol: 0, atol: 0 }, `reduce max (no argmax) ${outer}x${len}x${inner}`);
    }
  }
});

ktest('sumSquares: float64 accumulation', (k) => {
  const rng = new Rand(12);
  for (const n of [0, 1, 15, 16, 17, 1000, 100003]) {
    const x = rng.f32(n, -3, 3);
    const got = k.sumSquares(x, n);
    const ref = js.sumSquares(x, n);
    assert.ok(Math.abs(got - ref) <= 1e-9 * Math.max(1, ref), `sumSquares n=${n}: ${got} vs ${ref}`);
  }
});

// ---------------------------------------------------------------------------------------------
// softmax family, norms

const rowShapes: [number, number][] = [
  [1, 1],
  [3, 5],
  [4, 8],
  [7, 9],
  [5, 33],
  [2, 1000],
  [300, 129],
  [3, 5000],
];

ktest('softmax and log-softmax forward, backward (accumulate false/true)', (k) => {
  const rng = new Rand(13);
  for (const [rows, cols] of rowShapes) {
    const n = rows * cols;
    const x = rng.f32(n, -8, 8);
    for (const log of [false, true]) {
      const ref = poison(n);
      js.softmax(x, ref, rows, cols, log);
      const out = poison(n);
      k.softmax(x, out, rows, cols, log);
      close(out, ref, scaled(ACC, ref), `softmax ${rows}x${cols} log=${log}`);
      const gy = rng.f32(n);
      for (const acc of [false, true]) {
        const g0 = rng.f32(n);
        const gref = acc ? g0.slice() : poison(n);
        js.softmaxBackward(ref, gy, gref, rows, cols, log, acc);
        const gout = acc ? g0.slice() : poison(n);
        k.softmaxBackward(ref, gy, gout, rows, cols, log, acc);
        close(gout, gref, scaled(ACC, gref), `softmaxBackward ${rows}x${cols} log=${log} acc=${acc}`);
      }
    }
  }
});

ktest('rmsnorm forward and backward (gw null / accumulated, accumulate false/true)', (k) => {
  const rng = new Rand(14);
  for (const [rows, cols] of rowShapes) {
    const n = rows * cols;
    const x = rng.f32(n, -3, 3);
    const w = rng.f32(cols, 0.5, 1.5);
    const ref = poison(n);
    const rstdRef = poison(rows);
    js.rmsnorm(x, w, ref, rstdRef, rows, cols, 1e-5);
    const out = poison(n);
    const rstd = poison(rows);
    k.rmsnorm(x, w, out, rstd, rows, cols, 1e-5);
    close(out, ref, scaled(ACC, ref), `rmsnorm ${rows}x${cols}`);
    close(rstd, rstdRef, ACC, `rmsnorm rstd ${rows}x${cols}`);
    const gy = rng.f32(n);
    for (const acc of [false, true]) {
      for (const withGw of [false, true]) {
        const g0 = rng.f32(n);
        const gw0 = rng.f32(cols);
        const gref = acc ? g0.slice() : poison(n);
        const gwRef = withGw ? gw0.slice() : null;
        js.rmsnormBackward(x, w, rstdRef, gy, gref, gwRef, rows, cols, acc);
        const gout = acc ? g0.slice() : poison(n);
        const gw = withGw ? gw0.slice() : null;
        k.rmsnormBackward(x, w, rstdRef, gy, gout, gw, rows, cols, acc);
        close(gout, gref, scaled(ACC, gref), `rmsnormBackward gx ${rows}x${cols} acc=${acc}`);
        if (gw && gwRef) close(gw, gwRef, scaled(ACC, gwRef), `rmsnormBackward gw ${rows}x${cols}`);
      }
    }
  }
});

ktest('layernorm forward and backward (w/b null or not, gw/gb null or not, accumulate)', (k) => {
  const rng = new Rand(15);
  for (const [rows, cols] of rowShapes) {
    const n = rows * cols;
    const x = rng.f32(n, -3, 3);
    for (let i = 0; i < n; i++) x[i] += 2; // non-zero mean
    for (const affine of [false, true]) {
      const w = affine ? rng.f32(cols, 0.5, 1.5) : null;
      const b = affine ? rng.f32(cols) : null;
      const ref = poison(n);
      const meanRef = poison(rows);
      const rstdRef = poison(rows);
      js.layernorm(x, w, b, ref, meanRef, rstdRef, rows, cols, 1e-5);
      const out = poison(n);
      const mean = poison(rows);
      const rstd = poison(rows);
      k.layernorm(x, w, b, out, mean, rstd, rows, cols, 1e-5);
      close(out, ref, scaled(ACC, ref), `layernorm ${rows}x${cols} affine=${affine}`);
      close(mean, meanRef, scaled(ACC, meanRef), `layernorm mean ${rows}x${cols}`);
      close(rstd, rstdRef, scaled(ACC, rstdRef), `layernorm rstd ${rows}x${cols}`);
      const gy = rng.f32(n);
      for (const acc of [false, true]) {
        const g0 = rng.f32(n);
        const gw0 = rng.f32(cols);
        const gb0 = rng.f32(cols);
        const wantG = affine && !acc;
        const gref = acc ? g0.slice() : poison(n);
        const gwRef = wantG ? gw0.slice() : null;
        const gbRef = wantG ? gb0.slice() : null;
        js.layernormBackward(x, w, meanRef, rstdRef, gy, gref, gwRef, gbRef, rows, cols, acc);
        const gout = acc ? g0.slice() : poison(n);
        const gw = wantG ? gw0.slice() : null;
        const gb = wantG ? gb0.slice() : null;
        k.layernormBackward(x, w, meanRef, rstdRef, gy, gout, gw, gb, rows, cols, acc);
        close(gout, gref, scaled(ACC, gref), `layernormBackward gx ${rows}x${cols} affine=${affine} acc=${acc}`);
        if (gw && gwRef) close(gw, gwRef, scaled(ACC, gwRef), `layernormBackward gw ${rows}x${cols}`);
        if (gb && gbRef) close(gb, gbRef, scaled(ACC, gbRef), `layernormBackward gb ${rows}x${cols}`);
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// embedding, rope

ktest('gather and scatterAdd (duplicate ids)', (k) => {
  const rng = new Rand(16);
  for (const [rowsT, n, dim] of [
    [1, 1, 1],
    [10, 7, 3],
    [50, 33, 17],
    [300, 1000, 200],
    [5, 400, 96],
  ] as [number, number, number][]) {
    const table = rng.f32(rowsT * dim);
    const ids = new Int32Array(n).map(() => rng.int(0, rowsT - 1));
    const ref = poison(n * dim);
    js.gather(table, ids, ref, n, dim);
    const out = poison(n * dim);
    k.gather(table, ids, out, n, dim);
    close(out, ref, { rtol: 0, atol: 0 }, `gather ${n}x${dim}`);
    const gy = rng.f32(n * dim);
    const g0 = rng.f32(rowsT * dim);
    const gref = g0.slice();
    js.scatterAdd(gy, ids, gref, n, dim);
    const gout = g0.slice();
    k.scatterAdd(gy, ids, gout, n, dim);
    close(gout, gref, { rtol: 1e-5, atol: 1e-5 }, `scatterAdd ${n}x${dim}`);
  }
});

ktest('rope: full and partial rotary dims, inverse, in place', (k) => {
  const rng = new Rand(17);
  for (const [rows, heads, headDim, rotDim] of [
    [1, 1, 2, 2],
    [5, 3, 8, 8],
    [7, 2, 10, 6],
    [9, 4, 64, 64],
    [33, 3, 34, 18],
    [300, 4, 64, 32],
  ] as [number, number, number, number][]) {
    const h = rotDim / 2;
    const maxPos = 50;
    const cos = new Float32Array(maxPos * h);
    const sin = new Float32Array(maxPos * h);
    for (let p = 0; p < maxPos; p++) {
      for (let i = 0; i < h; i++) {
        const f = Math.pow(10000, (-2 * i) / rotDim);
        cos[p * h + i] = Math.cos(p * f);
        sin[p * h + i] = Math.sin(p * f);
      }
    }
    const n = rows * heads * headDim;
    const x = rng.f32(n);
    const pos = new Int32Array(rows).map(() => rng.int(0, maxPos - 1));
    for (const inverse of [false, true]) {
      const ref = poison(n);
      js.rope(x, ref, pos, cos, sin, rows, heads, headDim, rotDim, inverse);
      const out = poison(n);
      k.rope(x, out, pos, cos, sin, rows, heads, headDim, rotDim, inverse);
      close(out, ref, EW, `rope ${rows}x${heads}x${headDim} rot ${rotDim} inv=${inverse}`);
      const inplace = x.slice();
      k.rope(inplace, inplace, pos, cos, sin, rows, heads, headDim, rotDim, inverse);
      close(inplace, ref, EW, `rope in place ${rows}x${heads}x${headDim}`);
      // seqLen T: the head-major side [B, heads, T, headDim] is the permute of the token-major one, same bits
      for (const T of [1, rows].filter((t, i, a) => rows % t === 0 && a.indexOf(t) === i)) {
        const Bn = rows / T;
        const tmIdx = (b: number, t: number, hd: number): number => ((b * T + t) * heads + hd) * headDim;
        const hmIdx = (b: number, t: number, hd: number): number => ((b * heads + hd) * T + t) * headDim;
        const permuteTo = (src: Float32Array, toHM: boolean): Float32Array => {
          const dst = new Float32Array(n);
          for (let b = 0; b < Bn; b++) {
            for (let t = 0; t < T; t++) {
              for (let hd = 0; hd < heads; hd++) {
                const [s0, d0] = toHM ? [tmIdx(b, t, hd), hmIdx(b, t, hd)] : [hmIdx(b, t, hd), tmIdx(b, t, hd)];
                dst.set(src.subarray(s0, s0 + headDim), d0);
              }
            }
          }
          return dst;
        };
        const refTM = poison(n);
        k.rope(x, refTM, pos, cos, sin, rows, heads, headDim, rotDim, inverse);
        const outHM = poison(n);
        k.rope(x, outHM, pos, cos, sin, rows, heads, headDim, rotDim, inverse, T, true);
        assert.deepEqual(new Uint32Array(outHM.buffer), new Uint32Array(permuteTo(refTM, true).buffer), `rope toHeadMajor T=${T} bits`);
        const xHM = permuteTo(x, true);
        const outTM = poison(n);
        k.rope(xHM, outTM, pos, cos, sin, rows, heads, headDim, rotDim, inverse, T, false);
        assert.deepEqual(new Uint32Array(outTM.buffer), new Uint32Array(refTM.buffer), `rope from head-major T=${T} bits`);
        const jsHM = poison(n);
        js.rope(x, jsHM, pos, cos, sin, rows, heads, headDim, rotDim, inverse, T, true);
        close(outHM, jsHM, EW, `rope toHeadMajor T=${T} vs JS`);
        const jsTM = poison(n);
        js.rope(xHM, jsTM, pos, cos, sin, rows, heads, headDim, rotDim, inverse, T, false);
        close(outTM, jsTM, EW, `rope from head-major T=${T} vs JS`);
      }
    }
  }
  const x1 = new Float32Array(2 * 3 * 4);
  assert.throws(() => k.rope(x1, x1, new Int32Array(2), new Float32Array(100), new Float32Array(100), 2, 3, 4, 4, false, 2, true), /must not alias/);
  assert.throws(() => k.rope(x1, new Float32Array(24), new Int32Array(2), new Float32Array(100), new Float32Array(100), 2, 3, 4, 4, false, 3, true), /seqLen/);
});

// ---------------------------------------------------------------------------------------------
// attention

interface AttnCase {
  name: string;
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
  causal: boolean;
  window: number;
  qPos?: boolean;
  kPos?: boolean;
  seg?: boolean;
  mask?: boolean;
  /** make some query rows fully masked */
  dead?: boolean;
  /** segment length (default 7) */
  segLen?: number;
}

const attnCases: AttnCase[] = [
  { name: 'plain', B: 2, Hq: 2, Hkv: 2, Tq: 9, Tk: 9, D: 8, causal: false, window: 0 },
  { name: 'causal', B: 2, Hq: 3, Hkv: 3, Tq: 17, Tk: 17, D: 7, causal: true, window: 0 },
  { name: 'causal decode Tq < Tk', B: 2, Hq: 2, Hkv: 1, Tq: 3, Tk: 70, D: 16, causal: true, window: 0 },
  { name: 'causal + sliding window', B: 1, Hq: 4, Hkv: 2, Tq: 33, Tk: 33, D: 16, causal: true, window: 5 },
  { name: 'window only', B: 1, Hq: 2, Hkv: 2, Tq: 20, Tk: 20, D: 5, causal: false, window: 4 },
  { name: 'explicit qPos/kPos', B: 2, Hq: 2, Hkv: 2, Tq: 11, Tk: 13, D: 8, causal: true, window: 6, qPos: true, kPos: true },
  { name: 'segments (document reset)', B: 2, Hq: 2, Hkv: 1, Tq: 24, Tk: 24, D: 12, causal: true, window: 0, seg: true },
  { name: 'arbitrary mask', B: 2, Hq: 2, Hkv: 2, Tq: 10, Tk: 14, D: 9, causal: false, window: 0, mask: true },
  { name: 'GQA 8/2 + mask + segments', B: 1, Hq: 8, Hkv: 2, Tq: 16, Tk: 16, D: 16, causal: true, window: 0, seg: true, mask: true },
  { name: 'fully masked rows (mask)', B: 2, Hq: 2, Hkv: 2, Tq: 8, Tk: 8, D: 4, causal: false, window: 0, mask: true, dead: true },
  { name: 'fully masked rows (kPos in the future)', B: 1, Hq: 2, Hkv: 1, Tq: 6, Tk: 6, D: 8, causal: true, window: 0, qPos: true, kPos: true, dead: true },
  { name: 'long rows, one kv head (key-chunked backward)', B: 1, Hq: 2, Hkv: 1, Tq: 130, Tk: 200, D: 64, causal: true, window: 0 },
  { name: 'large D', B: 1, Hq: 1, Hkv: 1, Tq: 5, Tk: 6, D: 600, causal: false, window: 0 },
  // the tiled path (8+ query rows): partial row and key blocks, segments spanning whole blocks
  { name: 'tiled: long segments + causal + window, GQA, D 20', B: 2, Hq: 4, Hkv: 2, Tq: 150, Tk: 150, D: 20, causal: true, window: 70, seg: true, segLen: 100 },
  { name: 'tiled: cross positions + mask, D 64', B: 1, Hq: 2, Hkv: 2, Tq: 40, Tk: 130, D: 64, causal: true, window: 0, qPos: true, kPos: true, mask: true },
  { name: 'tiled: full attention, Tq < Tk, D 33', B: 2, Hq: 3, Hkv: 1, Tq: 70, Tk: 90, D: 33, causal: false, window: 0 },
  { name: 'tiled: causal decode-style Tq 9 < Tk 77, D 64', B: 1, Hq: 2, Hkv: 2, Tq: 9, Tk: 77, D: 64, causal: true, window: 0 },
  // segments only (the HAT encoder connector: word queries, byte keys, positions given but unused)
  { name: 'tiled: segments only, not causal, Tq 40 < Tk 130, D 64', B: 2, Hq: 2, Hkv: 2, Tq: 40, Tk: 130, D: 64, causal: false, window: 0, qPos: true, kPos: true, seg: true },
];

function attnInputs(c: AttnCase, rng: Rand) {
  const nq = c.B * c.Hq * c.Tq * c.D;
  const nk = c.B * c.Hkv * c.Tk * c.D;
  const q = rng.f32(nq, -2, 2);
  const k = rng.f32(nk, -2, 2);
  const v = rng.f32(nk, -2, 2);
  let qPos: Int32Array | null = null;
  let kPos: Int32Array | null = null;
  if (c.qPos) qPos = new Int32Array(c.B * c.Tq).map(() => rng.int(0, c.Tk + 3));
  if (c.kPos) kPos = new Int32Array(c.B * c.Tk).map(() => rng.int(0, c.Tk + 3));
  if (c.dead && qPos && kPos) {
    qPos[1] = -1; // before every key: nothing visible under causal
    qPos[4] = -5;
  }
  let qSeg: Int32Array | null = null;
  let kSeg: Int32Array | null = null;
  if (c.seg) {
    const len = c.segLen ?? 7;
    qSeg = new Int32Array(c.B * c.Tq).map((_, i) => Math.floor((i % c.Tq) / len));
    kSeg = new Int32Array(c.B * c.Tk).map((_, i) => Math.floor((i % c.Tk) / len));
  }
  let mask: Uint8Array | null = null;
  if (c.mask) {
    mask = new Uint8Array(c.B * c.Tq * c.Tk).map(() => (rng.bool(0.7) ? 1 : 0));
    if (c.dead) {
      mask.fill(0, 2 * c.Tk, 3 * c.Tk); // row 2 of batch 0
      mask.fill(0, (c.Tq + 5) * c.Tk, (c.Tq + 6) * c.Tk); // row 5 of batch 1
    }
  }
  return { q, k, v, qPos, kPos, qSeg, kSeg, mask };
}

/** The kernels' attention arguments of case c with the masking arrays attnInputs made. */
function caseArgs(c: AttnCase, scale: number, m: Pick<AttentionArgs, 'qPos' | 'kPos' | 'qSeg' | 'kSeg' | 'mask'>): AttentionArgs {
  return { B: c.B, Hq: c.Hq, Hkv: c.Hkv, Tq: c.Tq, Tk: c.Tk, D: c.D, scale, causal: c.causal, window: c.window, ...m };
}

ktest('attention forward: causal / window / positions / segments / mask / GQA / fully-masked rows', (kern) => {
  const rng = new Rand(18);
  for (const c of attnCases) {
    const { q, k, v, qPos, kPos, qSeg, kSeg, mask } = attnInputs(c, rng);
    const nq = c.B * c.Hq * c.Tq * c.D;
    const nl = c.B * c.Hq * c.Tq;
    const scale = 1 / Math.sqrt(c.D);
    const a = caseArgs(c, scale, { qPos, kPos, qSeg, kSeg, mask });
    const outRef = poison(nq);
    const lseRef = poison(nl);
    js.attention(q, k, v, outRef, lseRef, a);
    const out = poison(nq);
    const lse = poison(nl);
    kern.attention(q, k, v, out, lse, a);
    close(out, outRef, scaled(ACC, outRef), `attention out (${c.name})`);
    close(lse, lseRef, scaled(ACC, lseRef), `attention lse (${c.name})`);
    if (c.dead) {
      let dead = 0;
      for (let r = 0; r < nl; r++) {
        if (lse[r] !== -Infinity) continue;
        dead++;
        for (let d = 0; d < c.D; d++) assert.equal(out[r * c.D + d], 0, `fully masked row ${r} must output 0 (${c.name})`);
      }
      assert.ok(dead > 0, `case ${c.name} should have fully masked rows`);
    }
  }
});

ktest('attention backward: same variants, accumulates into gq/gk/gv, zero grads for fully-masked rows', (kern) => {
  const rng = new Rand(19);
  for (const c of attnCases) {
    const { q, k, v, qPos, kPos, qSeg, kSeg, mask } = attnInputs(c, rng);
    const nq = c.B * c.Hq * c.Tq * c.D;
    const nk = c.B * c.Hkv * c.Tk * c.D;
    const nl = c.B * c.Hq * c.Tq;
    const scale = 1 / Math.sqrt(c.D);
    const a = caseArgs(c, scale, { qPos, kPos, qSeg, kSeg, mask });
    const out = poison(nq);
    const lse = poison(nl);
    js.attention(q, k, v, out, lse, a);
    const gOut = rng.f32(nq);
    const gq0 = rng.f32(nq);
    const gk0 = rng.f32(nk);
    const gv0 = rng.f32(nk);
    const [gqR, gkR, gvR] = [gq0.slice(), gk0.slice(), gv0.slice()];
    js.attentionBackward(q, k, v, out, lse, gOut, gqR, gkR, gvR, a);
    const [gq, gk, gv] = [gq0.slice(), gk0.slice(), gv0.slice()];
    kern.attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, a);
    close(gq, gqR, scaled(ACC, gqR), `attention gq (${c.name})`);
    close(gk, gkR, scaled(ACC, gkR), `attention gk (${c.name})`);
    close(gv, gvR, scaled(ACC, gvR), `attention gv (${c.name})`);
    for (let r = 0; r < nl; r++) {
      if (lse[r] !== -Infinity) continue;
      for (let d = 0; d < c.D; d++) assert.equal(gq[r * c.D + d], gq0[r * c.D + d], `fully masked row ${r}: gq must be untouched (${c.name})`);
    }
  }
});

// Stored scores (attentionScoresSize > 0: the tiled path, no key-chunked backward): the forward
// writes the scores it computes into a NaN-poisoned array, the backward reads them instead of
// computing them again; out, lse, gq, gk, gv must be bit-identical to the calls without (an element
// the backward reads that the forward did not write would turn NaN), and close to the TS twin.
const scoreCases: AttnCase[] = [
  { name: 'small (one thread), causal, Tq 9', B: 1, Hq: 2, Hkv: 1, Tq: 9, Tk: 9, D: 8, causal: true, window: 0 },
  { name: 'causal, 4 key blocks, D 64 (a HAT byte layer)', B: 2, Hq: 4, Hkv: 4, Tq: 200, Tk: 200, D: 64, causal: true, window: 0 },
  { name: 'long segments + causal + window, GQA, D 20', B: 2, Hq: 8, Hkv: 4, Tq: 150, Tk: 150, D: 20, causal: true, window: 70, seg: true, segLen: 100 },
  { name: 'cross positions + mask, D 64', B: 4, Hq: 2, Hkv: 2, Tq: 40, Tk: 130, D: 64, causal: true, window: 0, qPos: true, kPos: true, mask: true },
  { name: 'full attention, Tq < Tk, D 33', B: 2, Hq: 8, Hkv: 4, Tq: 70, Tk: 90, D: 33, causal: false, window: 0 },
  { name: 'segments only, not causal (skipped key blocks)', B: 4, Hq: 2, Hkv: 2, Tq: 40, Tk: 130, D: 64, causal: false, window: 0, qPos: true, kPos: true, seg: true },
  { name: 'fully masked rows (mask)', B: 4, Hq: 2, Hkv: 2, Tq: 20, Tk: 20, D: 4, causal: false, window: 0, mask: true, dead: true },
];

ktest('attention stored scores: forward and backward bit-identical with and without, NaN-poisoned scores', (kern) => {
  const rng = new Rand(23);
  for (const c of scoreCases) {
    const { q, k, v, qPos, kPos, qSeg, kSeg, mask } = attnInputs(c, rng);
    const nq = c.B * c.Hq * c.Tq * c.D;
    const nk = c.B * c.Hkv * c.Tk * c.D;
    const nl = c.B * c.Hq * c.Tq;
    const scale = 1 / Math.sqrt(c.D);
    const a = caseArgs(c, scale, { qPos, kPos, qSeg, kSeg, mask });
    const n = kern.attentionScoresSize(a);
    assert.ok(n > 0, `stored scores expected for ${c.name}`);
    assert.equal(js.attentionScoresSize(a), 0);
    const scores = poison(n);
    const [out0, lse0, out1, lse1] = [poison(nq), poison(nl), poison(nq), poison(nl)];
    kern.attention(q, k, v, out0, lse0, a);
    kern.attention(q, k, v, out1, lse1, a, scores);
    sameBits(out1, out0, `attention out with scores (${c.name})`);
    sameBits(lse1, lse0, `attention lse with scores (${c.name})`);
    const gOut = rng.f32(nq);
    const g0 = [rng.f32(nq), rng.f32(nk), rng.f32(nk)];
    const [gqA, gkA, gvA] = g0.map((a) => a.slice());
    const [gqB, gkB, gvB] = g0.map((a) => a.slice());
    const [gqR, gkR, gvR] = g0.map((a) => a.slice());
    kern.attentionBackward(q, k, v, out0, lse0, gOut, gqA, gkA, gvA, a);
    kern.attentionBackward(q, k, v, out0, lse0, gOut, gqB, gkB, gvB, a, scores);
    js.attentionBackward(q, k, v, out0, lse0, gOut, gqR, gkR, gvR, a);
    sameBits(gqB, gqA, `attention gq with scores (${c.name})`);
    sameBits(gkB, gkA, `attention gk with scores (${c.name})`);
    sameBits(gvB, gvA, `attention gv with scores (${c.name})`);
    close(gqB, gqR, scaled(ACC, gqR), `attention gq with scores vs TS (${c.name})`);
    close(gkB, gkR, scaled(ACC, gkR), `attention gk with scores vs TS (${c.name})`);
    close(gvB, gvR, scaled(ACC, gvR), `attention gv with scores vs TS (${c.name})`);
  }
  // where none are kept (few kv groups, enough work: the key-chunked backward) a scores array is ignored
  const c = attnCases.find((x) => x.name.startsWith('long rows, one kv head'));
  assert.ok(c);
  const { q, k, v } = attnInputs(c, rng);
  const ac = caseArgs(c, 1 / Math.sqrt(c.D), { qPos: null, kPos: null, qSeg: null, kSeg: null, mask: null });
  assert.equal(kern.attentionScoresSize(ac), 0);
  const [o0, l0, o1, l1] = [poison(c.B * c.Hq * c.Tq * c.D), poison(c.B * c.Hq * c.Tq), poison(c.B * c.Hq * c.Tq * c.D), poison(c.B * c.Hq * c.Tq)];
  kern.attention(q, k, v, o0, l0, ac);
  kern.attention(q, k, v, o1, l1, ac, poison(4));
  sameBits(o1, o0, 'attention out, scores ignored');
  // too short an array is an error
  const d = scoreCases[1];
  const inp = attnInputs(d, rng);
  const ad = caseArgs(d, 0.125, { qPos: null, kPos: null, qSeg: null, kSeg: null, mask: null });
  const n = kern.attentionScoresSize(ad);
  const o = new Float32Array(d.B * d.Hq * d.Tq * d.D);
  const l = new Float32Array(d.B * d.Hq * d.Tq);
  assert.throws(() => kern.attention(inp.q, inp.k, inp.v, o, l, ad, new Float32Array(n - 1)), RangeError);
});

// ---------------------------------------------------------------------------------------------
// cross-entropy, optimiser

ktest('crossEntropy forward/backward with ignoreIndex, accumulate false/true', (k) => {
  const rng = new Rand(20);
  for (const [rows, cols] of rowShapes) {
    const n = rows * cols;
    const logits = rng.f32(n, -6, 6);
    const ignore = -100;
    const targets = new Int32Array(rows).map(() => (rng.bool(0.2) ? ignore : rng.int(0, cols - 1)));
    const lossRef = poison(rows);
    const lseRef = poison(rows);
    const cntRef = js.crossEntropy(logits, targets, lossRef, lseRef, rows, cols, ignore);
    const loss = poison(rows);
    const lse = poison(rows);
    const cnt = k.crossEntropy(logits, targets, loss, lse, rows, cols, ignore);
    assert.equal(cnt, cntRef, `crossEntropy count ${rows}x${cols}`);
    close(loss, lossRef, scaled(ACC, lossRef), `crossEntropy loss ${rows}x${cols}`);
    close(lse, lseRef, scaled(ACC, lseRef), `crossEntropy lse ${rows}x${cols}`);
    const gLoss = rng.f32(rows);
    for (const acc of [false, true]) {
      const g0 = rng.f32(n);
      const gref = acc ? g0.slice() : poison(n);
      js.crossEntropyBackward(logits, targets, lseRef, gLoss, gref, rows, cols, ignore, acc);
      const gout = acc ? g0.slice() : poison(n);
      k.crossEntropyBackward(logits, targets, lseRef, gLoss, gout, rows, cols, ignore, acc);
      close(gout, gref, scaled(ACC, gref), `crossEntropyBackward ${rows}x${cols} acc=${acc}`);
    }
  }
});

ktest('adamw step', (k) => {
  const rng = new Rand(21);
  for (const n of sizes) {
    const p0 = rng.f32(n);
    const g = rng.f32(n);
    const m0 = rng.f32(n, -0.1, 0.1);
    const v0 = rng.f32(n, 0, 0.01);
    const args = [n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1 - 0.9 ** 3, 1 - 0.999 ** 3] as const;
    const [pr, mr, vr] = [p0.slice(), m0.slice(), v0.slice()];
    js.adamw(pr, g, mr, vr, ...args);
    const [pn, mn, vn] = [p0.slice(), m0.slice(), v0.slice()];
    k.adamw(pn, g, mn, vn, ...args);
    close(pn, pr, EW, `adamw p n=${n}`);
    close(mn, mr, EW, `adamw m n=${n}`);
    close(vn, vr, EW, `adamw v n=${n}`);
    // gradScale: the same bits as affine(g, g, n, scale, 0) then the plain step, on this backend
    for (const gs of [0.03125, 0.37, 1]) {
      const gz = g.slice();
      if (n > 2) gz.set([-0, 0], 0);
      const gScaled = gz.slice();
      k.affine(gScaled, gScaled, n, gs, 0);
      const [pa, ma, va] = [p0.slice(), m0.slice(), v0.slice()];
      k.adamw(pa, gScaled, ma, va, ...args);
      const [pb, mb, vb] = [p0.slice(), m0.slice(), v0.slice()];
      k.adamw(pb, gz, mb, vb, ...args, gs);
      for (const [x, y, w] of [[pb, pa, 'p'], [mb, ma, 'm'], [vb, va, 'v']] as const) {
        assert.deepEqual(new Uint32Array(x.buffer), new Uint32Array(y.buffer), `adamw gradScale ${gs} ${w} n=${n} bits`);
      }
      const [pj, mj, vj] = [p0.slice(), m0.slice(), v0.slice()];
      js.adamw(pj, gz, mj, vj, ...args, gs);
      close(pb, pj, EW, `adamw gradScale ${gs} p vs JS n=${n}`);
      close(mb, mj, EW, `adamw gradScale ${gs} m vs JS n=${n}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// argument checking: bad calls throw instead of corrupting memory

test('bad arguments throw TypeError / RangeError naming the argument', { skip: skipReason }, () => {
  assert.ok(native);
  const k = native;
  const f = new Float32Array(16);
  const call = (fn: () => unknown, type: typeof TypeError | typeof RangeError, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof type && re.test((e as Error).message));
  // wrong types
  call(() => k.unary(UnaryOp.Exp, new Float64Array(4) as unknown as Float32Array, f, 4), TypeError, /'x'.*Float32Array/);
  call(() => k.gemm(1, 0 as unknown as boolean, false, 2, 2, 2, 1, f, 0, 2, 0, f, 0, 2, 0, 0, f, 0, 2, 0), TypeError, /'transA'/);
  call(() => k.gather(f, new Float32Array(2) as unknown as Int32Array, f, 2, 2), TypeError, /'ids'.*Int32Array/);
  call(() => k.attention(f, f, f, f, f, attnArgs({ B: 1, Hq: 1, Hkv: 1, Tq: 1, Tk: 1, D: 1, scale: 1, mask: new Int8Array(1) as unknown as Uint8Array })), TypeError, /'mask'/);
  // too short
  call(() => k.unary(UnaryOp.Exp, f, f, 17), RangeError, /'x' is too short/);
  call(() => k.gemm(1, false, false, 4, 4, 4, 1, f, 0, 4, 0, f, 0, 4, 0, 0, f, 1, 4, 0), RangeError, /'C' is too short/);
  call(() => k.gemm(2, false, false, 4, 4, 4, 1, f, 0, 4, 16, f, 0, 4, 0, 0, new Float32Array(64), 0, 4, 16), RangeError, /'A' is too short/);
  call(() => k.gemm(1, false, false, 4, 4, 4, 1, f, 0, 3, 0, f, 0, 4, 0, 0, f, 0, 4, 0), RangeError, /lda/);
  call(() => k.softmax(f, f, 5, 4, false), RangeError, /too short/);
  call(() => k.binary(BinaryOp.Add, Int32Array.from([4, 4]), f, 0, Int32Array.from([4, 1]), f, 1, Int32Array.from([4, 1]), f), RangeError, /'b' is too short/);
  call(() => k.binary(BinaryOp.Add, Int32Array.from([4, 4]), f, 0, Int32Array.from([4]), f, 0, Int32Array.from([4, 1]), f), RangeError, /aStrides/);
  call(() => k.copyStrided(Int32Array.from([4]), f, 0, Int32Array.from([-1]), f), RangeError, /< 0/);
  call(() => k.gather(f, Int32Array.from([0, 8]), f, 2, 2), RangeError, /'ids'\[1\] = 8/);
  call(() => k.scatterAdd(f, Int32Array.from([-1]), f, 1, 2), RangeError, /'ids'\[0\]/);
  call(() => k.crossEntropy(f, Int32Array.from([4, 0]), f, f, 2, 4, -100), RangeError, /'targets'\[0\]/);
  call(() => k.rope(f, f, Int32Array.from([9]), f, f, 1, 1, 4, 4, false), RangeError, /'pos'\[0\]/);
  call(() => k.attention(f, f, f, f, f, attnArgs({ B: 1, Hq: 3, Hkv: 2, Tq: 1, Tk: 1, D: 1, scale: 1 })), RangeError, /multiple of Hkv/);
  call(() => k.attention(f, f, f, f, f, attnArgs({ B: 1, Hq: 1, Hkv: 1, Tq: 4, Tk: 4, D: 2, scale: 1, mask: new Uint8Array(15) })), RangeError, /'mask' is too short/);
  call(() => k.unary(99 as UnaryOp, f, f, 4), RangeError, /op code/);
  call(() => k.unary(UnaryOp.Exp, f, f, 1.5), RangeError, /'n' must be an integer/);
  call(() => k.unary(UnaryOp.Exp, f, f, -1), RangeError, /'n' must be an integer/);
  // nothing was corrupted by the rejected calls
  assert.ok(f.every((v) => v === 0));
});

// ---------------------------------------------------------------------------------------------
// bit-identical results per path and seed, whatever the thread count

/** Large-enough (threaded) GEMMs and GEMVs: the split and the team GEMM of the SIMD drivers. */
function threadedGemms(kern: Kernels, rng: Rand, outs: Float32Array[]): void {
  for (const [M, N, K, tA, tB] of [
    [300, 257, 333, false, false],
    [129, 700, 515, true, true],
    [1, 1500, 700, false, true],
    [1, 900, 300, false, false],
  ] as const) {
    const A = rng.f32(M * K);
    const B = rng.f32(K * N);
    const C = poison(M * N);
    kern.gemm(1, tA, tB, M, N, K, 1, A, 0, tA ? M : K, 0, B, 0, tB ? K : N, 0, 0, C, 0, N, 0);
    outs.push(C);
  }
  {
    // beta != 0, N > NC and several k blocks: at 2 threads the SIMD drivers run this as a team GEMM
    // (the threads share the packed B blocks; >= 2^29 multiply-adds)
    const [M, N, K] = [600, 3100, 300];
    const A = rng.f32(M * K);
    const B = rng.f32(K * N);
    const C = rng.f32(M * N);
    kern.gemm(1, false, false, M, N, K, 0.5, A, 0, K, 0, B, 0, N, 0, 0.25, C, 0, N, 0);
    outs.push(C);
  }
}

/** Runs large-enough (threaded) GEMMs, a GEMV, softmax, rmsnorm, attention fwd/bwd, cross-entropy and AdamW. */
function threadedOutputs(kern: Kernels, seed: number): Float32Array[] {
  const rng = new Rand(seed);
  const outs: Float32Array[] = [];
  threadedGemms(kern, rng, outs);
  const [rows, cols] = [64, 1030];
  const x = rng.f32(rows * cols, -4, 4);
  const sm = poison(rows * cols);
  kern.softmax(x, sm, rows, cols, false);
  const rn = poison(rows * cols);
  const rstd = poison(rows);
  kern.rmsnorm(x, rng.f32(cols), rn, rstd, rows, cols, 1e-5);
  const targets = Int32Array.from({ length: rows }, () => rng.int(0, cols - 1));
  const losses = poison(rows);
  const lse = poison(rows);
  kern.crossEntropy(x, targets, losses, lse, rows, cols, -100);
  outs.push(sm, rn, rstd, losses, lse);
  const [Bt, H, T, D] = [2, 4, 70, 32];
  const n = Bt * H * T * D;
  const [q, k, v, gOut] = [rng.f32(n), rng.f32(n), rng.f32(n), rng.f32(n)];
  const o = poison(n);
  const l = poison(Bt * H * T);
  kern.attention(q, k, v, o, l, attnArgs({ B: Bt, Hq: H, Hkv: H, Tq: T, Tk: T, D, scale: 1 / Math.sqrt(D), causal: true }));
  const [gq, gk, gv] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  kern.attentionBackward(q, k, v, o, l, gOut, gq, gk, gv, attnArgs({ B: Bt, Hq: H, Hkv: H, Tq: T, Tk: T, D, scale: 1 / Math.sqrt(D), causal: true }));
  outs.push(o, l, gq, gk, gv);
  // one (batch, kv head) group: the backward splits the keys into chunks
  {
    const [Hq1, T1, D1] = [2, 150, 64];
    const nq = Hq1 * T1 * D1;
    const nk = T1 * D1;
    const [q1, gO1] = [rng.f32(nq), rng.f32(nq)];
    const [k1, v1] = [rng.f32(nk), rng.f32(nk)];
    const o1 = poison(nq);
    const l1 = poison(Hq1 * T1);
    kern.attention(q1, k1, v1, o1, l1, attnArgs({ B: 1, Hq: Hq1, Hkv: 1, Tq: T1, Tk: T1, D: D1, scale: 0.125, causal: true }));
    const [gq1, gk1, gv1] = [new Float32Array(nq), new Float32Array(nk), new Float32Array(nk)];
    kern.attentionBackward(q1, k1, v1, o1, l1, gO1, gq1, gk1, gv1, attnArgs({ B: 1, Hq: Hq1, Hkv: 1, Tq: T1, Tk: T1, D: D1, scale: 0.125, causal: true }));
    outs.push(o1, l1, gq1, gk1, gv1);
  }
  const np = 100003;
  const [pp, g, m, vv] = [rng.f32(np), rng.f32(np), rng.f32(np, 0, 0.1), rng.f32(np, 0, 0.1)];
  kern.adamw(pp, g, m, vv, np, 1e-3, 0.9, 0.999, 1e-8, 0.01, 0.1, 0.001);
  outs.push(pp, m, vv);
  return outs;
}

for (const isa of paths) {
  test(`bit-identical results at 1 and 2 threads and on a repeated run, same seed [${isa}]`, { skip: skipReason }, () => {
    assert.ok(native && extras);
    try {
      extras.setIsa(isa);
      extras.setThreads(1);
      const one = threadedOutputs(native, 4242);
      extras.setThreads(2);
      const two = threadedOutputs(native, 4242);
      const again = threadedOutputs(native, 4242);
      assert.equal(one.length, two.length);
      for (let i = 0; i < one.length; i++) {
        assert.ok(one[i].every((x) => Number.isFinite(x)), `output ${i}: non-finite value`);
        assert.ok(one[i].some((x) => x !== 0), `output ${i}: all zeros`);
        assert.deepEqual(two[i], one[i], `output ${i}: 2 threads differ from 1 thread on ${isa}`);
        assert.deepEqual(again[i], two[i], `output ${i}: a repeated run differs on ${isa}`);
      }
    } finally {
      extras.setIsa(extras.cpuInfo().best);
      extras.setThreads(2);
    }
  });
}

// The same per implementation of the gemm family: on AMD Zen 4 setIsa('avx512') runs the AVX2
// GEMM, and the AVX-512 one (avx512-zmm there) is tested here.
for (const path of gemmPaths) {
  test(`GEMM bit-identical at 1 and 2 threads and on a repeated run, same seed [gemm ${path}]`, { skip: skipReason }, () => {
    assert.ok(native && extras);
    const outputs = (): Float32Array[] => {
      const outs: Float32Array[] = [];
      threadedGemms(native, new Rand(4343), outs);
      return outs;
    };
    try {
      extras.setIsa(extras.cpuInfo().best);
      assert.equal(extras.setKernelPath('gemm', path), path);
      extras.setThreads(1);
      const one = outputs();
      extras.setThreads(2);
      const two = outputs();
      const again = outputs();
      for (let i = 0; i < one.length; i++) {
        assert.ok(one[i].every((x) => Number.isFinite(x)), `output ${i}: non-finite value`);
        assert.deepEqual(two[i], one[i], `output ${i}: 2 threads differ from 1 thread on gemm ${path}`);
        assert.deepEqual(again[i], two[i], `output ${i}: a repeated run differs on gemm ${path}`);
      }
    } finally {
      extras.setIsa(extras.cpuInfo().best);
      extras.setThreads(2);
    }
  });
}

// The AVX-512 GEMM (14x32 tiles) and the AVX2 one (6x16) sum each C element in the same k order
// (KC 256 blocks, one FMA per k), so the default may switch between them (AMD Zen 4 takes avx2)
// without changing a bit of a blocked GEMM. Their GEMV dot products (M == 1 with B transposed,
// N == 1 with A not) reduce 16 and 8 lanes: those differ in the last bits and are left out here.
const avx512Gemm = gemmPaths.find((p) => p === 'avx512' || p === 'avx512-zmm');
test(
  'gemm: the AVX-512 GEMM (avx512 / avx512-zmm) gives the bits of the AVX2 GEMM: tails of 14x32 and 6x16 tiles, k blocks, transposes, beta != 0, batch, 1 and 2 threads, axpy GEMVs',
  { skip: skipReason || (avx512Gemm !== undefined && gemmPaths.includes('avx2') ? false : `needs the avx512 (or avx512-zmm) and avx2 gemm paths; this CPU or build runs ${gemmPaths.join(', ') || 'none'}`) },
  () => {
    assert.ok(native && extras && avx512Gemm !== undefined);
    const rng = new Rand(2027);
    const shapes: [number, number, number][] = [
      [2, 2, 1],
      [15, 33, 7],
      [13, 31, 17],
      [29, 65, 257],
      [43, 17, 513],
      [100, 300, 257],
      [7, 200, 95],
      [300, 2, 40],
      [1, 300, 257], // GEMV, axpy form (B not transposed) only
      [250, 1, 99], // GEMV, axpy form (A transposed) only
    ];
    const run = (path: string, threads: number, c: GemmCase, A: Float32Array, B: Float32Array, C0: Float32Array): Float32Array => {
      assert.equal(extras.setKernelPath('gemm', path), path);
      extras.setThreads(threads);
      const C = c.beta === 0 ? poison(C0.length) : C0.slice();
      const lda = c.tA ? c.M : c.K;
      const ldb = c.tB ? c.K : c.N;
      native.gemm(c.batch, c.tA, c.tB, c.M, c.N, c.K, c.alpha, A, 0, lda, c.M * c.K, B, 0, ldb, c.bcastB ? 0 : c.K * c.N, c.beta, C, 0, c.N, c.M * c.N);
      return C;
    };
    let compared = 0;
    try {
      extras.setIsa(extras.cpuInfo().best);
      for (const [M, N, K] of shapes) {
        for (const [tA, tB] of [
          [false, false],
          [false, true],
          [true, false],
          [true, true],
        ] as const) {
          if (M === 1 && tB) continue; // GEMV dot form
          if (N === 1 && !tA) continue;
          for (const beta of [0, 0.5]) {
            const c: GemmCase = { batch: 2, tA, tB, M, N, K, alpha: 0.75, beta, bcastA: false, bcastB: beta !== 0, pad: 0, offs: 0 };
            const A = rng.f32(2 * M * K);
            const B = rng.f32(2 * K * N);
            const C0 = rng.f32(2 * M * N);
            for (const threads of [1, 2]) {
              const wide = run(avx512Gemm, threads, c, A, B, C0);
              const narrow = run('avx2', threads, c, A, B, C0);
              assert.ok(wide.every((x) => Number.isFinite(x)), `${JSON.stringify(c)}: non-finite output`);
              assert.deepEqual(wide, narrow, `${avx512Gemm} vs avx2, ${threads}T: ${JSON.stringify(c)}`);
              compared++;
            }
          }
        }
      }
      // one GEMM large enough for the team GEMM at 2 threads (threads share packed B blocks)
      const big: GemmCase = { batch: 1, tA: false, tB: true, M: 600, N: 3100, K: 300, alpha: 0.5, beta: 0.25, bcastA: false, bcastB: false, pad: 0, offs: 0 };
      const [A, B, C0] = [rng.f32(600 * 300), rng.f32(300 * 3100), rng.f32(600 * 3100)];
      assert.deepEqual(run(avx512Gemm, 2, big, A, B, C0), run('avx2', 2, big, A, B, C0), `${avx512Gemm} vs avx2: team GEMM 600x3100x300`);
      compared++;
    } finally {
      extras.setIsa(extras.cpuInfo().best);
      extras.setThreads(2);
    }
    assert.equal(compared, 8 * 4 * 2 * 2 + 2 * 2 * 2 * 2 + 1);
  },
);

// ---------------------------------------------------------------------------------------------
// extras, dispatch

test('extras: threads, simd, fmaPeak, readSum, noop, OpenBLAS (when installed)', { skip: skipReason }, () => {
  assert.ok(native && extras);
  const initial = extras.getThreads();
  assert.ok(initial >= 1);
  extras.setThreads(2);
  assert.equal(extras.getThreads(), 2);
  extras.setThreads(1);
  assert.equal(extras.getThreads(), 1);
  const info = extras.cpuInfo();
  assert.ok(info.isas.includes(extras.simd()));
  assert.ok(info.isas.includes('generic'));
  for (const isa of NATIVE_ISAS) if (!info.isas.includes(isa)) assert.throws(() => extras.setIsa(isa), RangeError);
  assert.throws(() => extras.setIsa('avx9000'), RangeError);
  assert.equal(extras.cpuAvx2, info.isas.includes('avx2'));
  for (const isa of info.isas) assert.ok(extras.fmaPeak(10000, 1, isa) > 0, isa);
  assert.ok(extras.fmaPeak(10000, 1) > 0);
  const i8 = extras.int8Peak(10000, 1);
  const hasVnni = info.features.includes('avx512vnni') || info.features.includes('avxvnni');
  if (hasVnni) assert.ok(i8 !== null && i8.gops > 0 && info.features.includes(i8.isa), JSON.stringify(i8));
  else assert.equal(i8, null);
  const x = new Float32Array(100003).fill(0.5);
  for (const t of [1, 2]) {
    extras.setThreads(t);
    assert.equal(extras.readSum(x, t), 50001.5);
  }
  extras.noop(x);
  const blas = extras.openblasLoad();
  if (blas === null) {
    console.log('# OpenBLAS not installed: openblasSgemm/openblasSgemv not compared');
  } else {
    assert.match(blas, /OpenBLAS/);
    const rng = new Rand(22);
    const [M, N, K] = [37, 45, 29];
    const A = rng.f32(M * K);
    const B = rng.f32(K * N);
    const C1 = poison(M * N);
    const C2 = poison(M * N);
    extras.openblasSgemm(M, N, K, A, B, C1, 1);
    native.gemm(1, false, false, M, N, K, 1, A, 0, K, 0, B, 0, N, 0, 0, C2, 0, N, 0);
    close(C2, C1, { rtol: 1e-5, atol: 1e-5 }, 'native gemm vs OpenBLAS');
    const y1 = poison(M);
    const y2 = poison(M);
    const xv = rng.f32(K);
    extras.openblasSgemv(M, K, A, xv, y1, 1);
    native.gemm(1, false, true, 1, M, K, 1, xv, 0, K, 0, A, 0, K, 0, 0, y2, 0, M, 0);
    close(y2, y1, { rtol: 1e-5, atol: 1e-5 }, 'native gemv vs OpenBLAS sgemv');
  }
  extras.setThreads(initial);
});

test('TFREE_SIMD=generic and TFREE_THREADS are honoured at load time (child process)', { skip: skipReason }, () => {
  const loader = fileURLToPath(new URL('../../src/tensor/kernels/native.js', import.meta.url));
  const script = `
    const m = await import(${JSON.stringify(loader)});
    const r = m.loadNative();
    if ('error' in r) { console.log('ERR ' + r.error); process.exit(1); }
    const x = new Float32Array([1, 2, 3]), o = new Float32Array(3);
    r.kernels.unary(1, x, o, 3);
    console.log(JSON.stringify({ simd: r.extras.simd(), threads: r.extras.getThreads(), e: Array.from(o) }));`;
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, TFREE_ISA: undefined, TFREE_SIMD: 'generic', TFREE_THREADS: '1' },
    encoding: 'utf8',
  });
  assert.equal(res.status, 0, res.stderr + res.stdout);
  const info = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as { simd: string; threads: number; e: number[] };
  assert.equal(info.simd, 'generic');
  assert.equal(info.threads, 1);
  close(info.e, [Math.E, Math.exp(2), Math.exp(3)], EW, 'exp in the generic child');
});
