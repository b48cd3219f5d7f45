/**
 * Direct kernel-level tests of the Kernels contract (kernels/types.ts), run on the pure-TS
 * kernels (js.ts) and, when it loads, on the native addon. Every output buffer is poisoned with
 * NaN first and every element of the written region must be overwritten (regions outside it,
 * e.g. ldc padding or elements past n, must stay untouched); `accumulate` flags and the gemm
 * alpha / beta are checked against float64 references.
 *
 * Tolerances: elementwise rtol 2e-5 / atol 2e-6; GEMM, reductions, norms, attention rtol 1e-4 /
 * atol 1e-5 (f32 accumulation in the native kernels; js accumulates in float64).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryOp, ReduceOp, UnaryOp, jsKernels, type Kernels } from '../../src/tensor/index.js';
import { Rng, assertClose, attnArgs, hasNative, nativeUnavailableReason } from '../helpers/numeric.js';
import { nativeBackend } from '../../src/tensor/index.js';
import { arr, refLayerNorm, refRmsNorm, refSoftmax, unaryDerivRef, unaryRef } from '../helpers/reference.js';

const ew = { rtol: 2e-5, atol: 2e-6 };
const red = { rtol: 1e-4, atol: 1e-5 };

function forEachKernels(name: string, fn: (k: Kernels) => void): void {
  test(`${name} [js]`, () => fn(jsKernels));
  if (hasNative()) {
    const n = nativeBackend();
    test(`${name} [native]`, () => {
      assert.ok('kernels' in n);
      fn(n.kernels);
    });
  } else {
    test(`${name} [native]`, { skip: `native backend unavailable: ${nativeUnavailableReason() ?? ''}` }, () => {});
  }
}

function rand(n: number, rng: Rng, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

function nanArray(n: number): Float32Array {
  return new Float32Array(n).fill(NaN);
}

/** Asserts no NaN is left in out[from, to). */
function assertWritten(out: ArrayLike<number>, what: string, from = 0, to = out.length): void {
  for (let i = from; i < to; i++) if (Number.isNaN(out[i])) assert.fail(`${what}: element ${i} was not written (still NaN poison)`);
}

function assertUntouched(out: ArrayLike<number>, what: string, from: number, to: number): void {
  for (let i = from; i < to; i++) if (!Number.isNaN(out[i])) assert.fail(`${what}: element ${i} outside the output region was written`);
}

// ---- GEMM ------------------------------------------------------------------------------------

describe('gemm', () => {
  forEachKernels('all transpose flags, padded leading dims, offsets, batch strides (incl. 0), alpha, beta, NaN poison', (k) => {
    const rng = new Rng(1);
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 9, 5], // GEMV path
      [1, 33, 17],
      [7, 1, 3],
      [5, 3, 1],
      [13, 17, 9],
      [16, 16, 16],
      [3, 40, 2],
    ];
    for (const [M, N, K] of shapes) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          for (const [alpha, beta] of [
            [1, 0],
            [0.5, 0],
            [1, 1],
            [-2, 0.25],
          ] as const) {
            const batch = 3;
            const padA = 2;
            const padB = 1;
            const padC = 3;
            const lda = (tA ? M : K) + padA;
            const ldb = (tB ? K : N) + padB;
            const ldc = N + padC;
            const rowsA = tA ? K : M;
            const rowsB = tB ? N : K;
            const aOff = 5;
            const bOff = 2;
            const cOff = 4;
            const strideA = rowsA * lda + 1;
            const strideB = rng.next() < 0.3 ? 0 : rowsB * ldb; // 0: one B broadcast over the batch
            const strideC = M * ldc + 2;
            const A = rand(aOff + batch * strideA, rng);
            const B = rand(bOff + batch * Math.max(strideB, rowsB * ldb) + ldb, rng);
            const C = nanArray(cOff + batch * strideC + 4);
            const C0 = rand(C.length, rng);
            if (beta !== 0) C.set(C0);
            else {
              // poison only the written region: NaN must not propagate when beta == 0
              for (let b = 0; b < batch; b++) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) C[cOff + b * strideC + i * ldc + j] = NaN;
            }
            const before = C.slice();
            k.gemm(batch, tA, tB, M, N, K, alpha, A, aOff, lda, strideA, B, bOff, ldb, strideB, beta, C, cOff, ldc, strideC);
            const ref = new Float64Array(batch * M * N);
            const got = new Float64Array(batch * M * N);
            for (let b = 0; b < batch; b++) {
              for (let i = 0; i < M; i++) {
                for (let j = 0; j < N; j++) {
                  let s = 0;
                  for (let kk = 0; kk < K; kk++) {
                    const a = tA ? A[aOff + b * strideA + kk * lda + i] : A[aOff + b * strideA + i * lda + kk];
                    const bb = tB ? B[bOff + b * strideB + j * ldb + kk] : B[bOff + b * strideB + kk * ldb + j];
                    s += a * bb;
                  }
                  const ci = cOff + b * strideC + i * ldc + j;
                  ref[(b * M + i) * N + j] = alpha * s + (beta !== 0 ? beta * before[ci] : 0);
                  got[(b * M + i) * N + j] = C[ci];
                }
              }
            }
            const what = `gemm M${M} N${N} K${K} tA ${tA} tB ${tB} alpha ${alpha} beta ${beta} strideB ${strideB}`;
            assertWritten(got, what);
            assertClose(got, ref, { ...red, what });
            // everything outside the C blocks (ldc padding, gaps between batches) is untouched
            for (let i = 0; i < C.length; i++) {
              const b = Math.floor((i - cOff) / strideC);
              const r = i - cOff - b * strideC;
              const inside = i >= cOff && b < batch && r < M * ldc && r % ldc < N;
              if (!inside && !Object.is(C[i], before[i])) assert.fail(`${what}: C[${i}] outside the output blocks changed`);
            }
          }
        }
      }
    }
  });

  forEachKernels('a larger GEMM (blocking / threading paths) with every transpose pair and padded ldc', (k) => {
    const rng = new Rng(14);
    const [M, N, K] = [130, 150, 140];
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const lda = (tA ? M : K) + 1;
        const ldb = (tB ? K : N) + 3;
        const ldc = N + 2;
        const A = rand((tA ? K : M) * lda, rng);
        const B = rand((tB ? N : K) * ldb, rng);
        const C = nanArray(M * ldc);
        k.gemm(1, tA, tB, M, N, K, 1, A, 0, lda, 0, B, 0, ldb, 0, 0, C, 0, ldc, 0);
        const got = new Float64Array(M * N);
        const ref = new Float64Array(M * N);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let kk = 0; kk < K; kk++) s += (tA ? A[kk * lda + i] : A[i * lda + kk]) * (tB ? B[j * ldb + kk] : B[kk * ldb + j]);
            ref[i * N + j] = s;
            got[i * N + j] = C[i * ldc + j];
          }
          for (let j = N; j < ldc; j++) assert.ok(Number.isNaN(C[i * ldc + j]), 'ldc padding untouched');
        }
        assertWritten(got, `large gemm tA ${tA} tB ${tB}`);
        assertClose(got, ref, { rtol: 1e-4, atol: 1e-4, what: `large gemm tA ${tA} tB ${tB}` });
      }
    }
  });

  forEachKernels('IEEE propagation: 0 * Inf and 0 * NaN give NaN (no zero-skipping)', (k) => {
    for (const tB of [false, true]) {
      const C = nanArray(1);
      k.gemm(1, false, tB, 1, 1, 2, 1, Float32Array.of(0, 1), 0, 2, 0, Float32Array.of(Infinity, 1), 0, tB ? 2 : 1, 0, 0, C, 0, 1, 0);
      assert.ok(Number.isNaN(C[0]), `0 * Inf must be NaN (transB ${tB}), got ${C[0]}`);
      const D = nanArray(1);
      k.gemm(1, true, tB, 1, 1, 2, 1, Float32Array.of(0, 1), 0, 1, 0, Float32Array.of(NaN, 1), 0, tB ? 2 : 1, 0, 0, D, 0, 1, 0);
      assert.ok(Number.isNaN(D[0]), `0 * NaN must be NaN (transA, transB ${tB}), got ${D[0]}`);
    }
  });

  forEachKernels('K = 0 gives alpha*0 + beta*C; batch 0 writes nothing', (k) => {
    const C = Float32Array.from([NaN, NaN]);
    k.gemm(1, false, false, 1, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0, C, 0, 2, 0);
    assert.deepEqual(Array.from(C), [0, 0]);
    const D = Float32Array.from([3, 4]);
    k.gemm(1, false, false, 1, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0.5, D, 0, 2, 0);
    assert.deepEqual(Array.from(D), [1.5, 2]);
    const E = Float32Array.from([NaN]);
    k.gemm(0, false, false, 1, 1, 1, 1, Float32Array.of(1), 0, 1, 0, Float32Array.of(1), 0, 1, 0, 0, E, 0, 1, 0);
    assert.ok(Number.isNaN(E[0]));
  });
});

// ---- elementwise -----------------------------------------------------------------------------

const unaryNames: [UnaryOp, string, number, number][] = [
  [UnaryOp.Neg, 'neg', -3, 3],
  [UnaryOp.Exp, 'exp', -5, 5],
  [UnaryOp.Log, 'log', 0.1, 5],
  [UnaryOp.Sqrt, 'sqrt', 0.1, 5],
  [UnaryOp.Rsqrt, 'rsqrt', 0.1, 5],
  [UnaryOp.Silu, 'silu', -8, 8],
  [UnaryOp.Gelu, 'gelu', -6, 6],
  [UnaryOp.GeluTanh, 'geluTanh', -6, 6],
  [UnaryOp.Tanh, 'tanh', -6, 6],
  [UnaryOp.Elu, 'elu', -4, 4],
  [UnaryOp.Relu, 'relu', -3, 3],
  [UnaryOp.Sigmoid, 'sigmoid', -8, 8],
  [UnaryOp.Abs, 'abs', -3, 3],
  [UnaryOp.Square, 'square', -3, 3],
  [UnaryOp.Recip, 'reciprocal', 0.2, 3],
];

describe('elementwise kernels', () => {
  forEachKernels('unary: every op, poisoned out, only n elements written, in place', (k) => {
    const rng = new Rng(2);
    for (const [op, name, lo, hi] of unaryNames) {
      for (const n of [1, 7, 8, 33, 100]) {
        const x = rand(n + 3, rng, lo, hi);
        const out = nanArray(n + 3);
        k.unary(op, x, out, n);
        assertWritten(out, `unary ${name} n ${n}`, 0, n);
        assertUntouched(out, `unary ${name} n ${n}`, n, n + 3);
        const ref = Array.from(x.subarray(0, n), (v) => unaryRef[name](v));
        assertClose(out.subarray(0, n), ref, { ...ew, what: `unary ${name} n ${n}` });
        const inplace = x.slice();
        k.unary(op, inplace, inplace, n);
        assertClose(inplace.subarray(0, n), out.subarray(0, n), { rtol: 0, atol: 0, what: `unary ${name} in place` });
      }
    }
  });

  forEachKernels('unaryBackward: accumulate false overwrites poison, true adds', (k) => {
    const rng = new Rng(3);
    for (const [op, name, lo, hi] of unaryNames) {
      const n = 37;
      const x = rand(n, rng, lo, hi);
      if (name === 'relu' || name === 'abs' || name === 'elu') for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 1e-3) x[i] = 0.5;
      const y = Float32Array.from(x, (v) => unaryRef[name](v));
      const gy = rand(n, rng);
      const gx = nanArray(n);
      k.unaryBackward(op, x, y, gy, gx, n, false);
      assertWritten(gx, `unaryBackward ${name}`);
      const ref = Array.from(x, (v, i) => gy[i] * unaryDerivRef[name](v));
      assertClose(gx, ref, { rtol: 1e-4, atol: 1e-5, what: `unaryBackward ${name}` });
      const acc = rand(n, rng);
      const acc0 = acc.slice();
      k.unaryBackward(op, x, y, gy, acc, n, true);
      assertClose(acc, Array.from(ref, (v, i) => v + acc0[i]), { rtol: 1e-4, atol: 1e-5, what: `unaryBackward ${name} accumulate` });
    }
  });

  forEachKernels('binary: every op over strided / broadcast layouts, ranks 0..8, aliasing out = a', (k) => {
    const rng = new Rng(4);
    const f: Record<number, (a: number, b: number) => number> = {
      [BinaryOp.Add]: (a, b) => a + b,
      [BinaryOp.Sub]: (a, b) => a - b,
      [BinaryOp.Mul]: (a, b) => a * b,
      [BinaryOp.Div]: (a, b) => a / b,
      [BinaryOp.Max]: (a, b) => Math.max(a, b),
      [BinaryOp.Min]: (a, b) => Math.min(a, b),
      [BinaryOp.Gt]: (a, b) => (a > b ? 1 : 0),
      [BinaryOp.Eq]: (a, b) => (a === b ? 1 : 0),
    };
    const layouts: { shape: number[]; as: number[]; bs: number[] }[] = [
      { shape: [], as: [], bs: [] },
      { shape: [9], as: [1], bs: [0] },
      { shape: [9], as: [2], bs: [1] },
      { shape: [3, 5], as: [5, 1], bs: [1, 3] },
      { shape: [3, 5], as: [0, 1], bs: [1, 0] },
      { shape: [2, 3, 4], as: [12, 4, 1], bs: [0, 4, 1] },
      { shape: [2, 1, 3, 17], as: [51, 51, 17, 1], bs: [0, 0, 0, 1] },
      { shape: [2, 2, 2, 3], as: [1, 2, 4, 8], bs: [12, 6, 3, 1] },
      { shape: [2, 1, 2, 3, 1, 2], as: [24, 24, 12, 4, 4, 1], bs: [0, 0, 6, 2, 0, 1] },
      { shape: [2, 2, 1, 2, 2, 1, 2, 3], as: [48, 24, 24, 12, 6, 6, 3, 1], bs: [1, 0, 0, 2, 0, 0, 4, 8] },
    ];
    for (const op of Object.keys(f).map(Number) as BinaryOp[]) {
      for (const { shape, as, bs } of layouts) {
        const n = shape.reduce((x, y) => x * y, 1);
        const span = (s: number[]): number => 1 + shape.reduce((acc, d, i) => acc + (d - 1) * s[i], 0);
        const aOff = 1;
        const bOff = 2;
        const a = rand(aOff + span(as), rng, 0.5, 2);
        const b = rand(bOff + span(bs), rng, 0.5, 2);
        if (op === BinaryOp.Eq) for (let i = 0; i < Math.min(a.length, b.length); i += 2) b[i] = a[i];
        const out = nanArray(n);
        k.binary(op, Int32Array.from(shape), a, aOff, Int32Array.from(as), b, bOff, Int32Array.from(bs), out);
        assertWritten(out, `binary ${op} [${shape.join(',')}]`);
        const ref = new Float64Array(n);
        const idx = new Array<number>(shape.length).fill(0);
        for (let i = 0; i < n; i++) {
          let pa = aOff;
          let pb = bOff;
          for (let d = 0; d < shape.length; d++) {
            pa += idx[d] * as[d];
            pb += idx[d] * bs[d];
          }
          ref[i] = f[op](a[pa], b[pb]);
          for (let d = shape.length - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
          }
        }
        assertClose(out, ref, { rtol: 1e-6, atol: 1e-7, what: `binary op ${op} [${shape.join(',')}] strides a [${as.join(',')}] b [${bs.join(',')}]` });
      }
      // out aliasing a (a contiguous with the output's shape)
      const a = rand(12, rng, 0.5, 2);
      const b = rand(4, rng, 0.5, 2);
      const expect = Array.from(a, (v, i) => f[op](v, b[i % 4]));
      k.binary(op, Int32Array.from([3, 4]), a, 0, Int32Array.from([4, 1]), b, 0, Int32Array.from([0, 1]), a);
      assertClose(a, expect, { rtol: 1e-6, atol: 1e-7, what: `binary op ${op} in place` });
    }
  });

  forEachKernels('copyStrided, affine (alpha 0 does not read a), axpy', (k) => {
    const rng = new Rng(5);
    const x = rand(60, rng);
    // [3, 4, 5] permuted view of a [5, 3, 4] block at offset 0 -> strides [4, 1, 12]
    const out = nanArray(60);
    k.copyStrided(Int32Array.from([3, 4, 5]), x, 0, Int32Array.from([4, 1, 12]), out);
    assertWritten(out, 'copyStrided');
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) for (let l = 0; l < 5; l++) assert.equal(out[(i * 4 + j) * 5 + l], x[i * 4 + j + l * 12]);
    const o1 = nanArray(1);
    k.copyStrided(new Int32Array(0), x, 7, new Int32Array(0), o1);
    assert.equal(o1[0], x[7]);
    const o2 = nanArray(6);
    k.copyStrided(Int32Array.from([2, 3]), x, 3, Int32Array.from([0, 2]), o2);
    assert.deepEqual(Array.from(o2), [x[3], x[5], x[7], x[3], x[5], x[7]]);
    const af = nanArray(20);
    k.affine(x, af, 17, 1.5, -0.25);
    assertWritten(af, 'affine', 0, 17);
    assertUntouched(af, 'affine', 17, 20);
    assertClose(af.subarray(0, 17), Array.from(x.subarray(0, 17), (v) => v * 1.5 - 0.25), { ...ew, what: 'affine' });
    const fill = nanArray(9);
    k.affine(nanArray(9), fill, 9, 0, 3.5);
    assert.ok(fill.every((v) => v === 3.5), 'affine alpha 0 fills beta without reading a');
    const y = rand(21, rng);
    const y0 = y.slice();
    k.axpy(19, -0.75, x, y);
    assertClose(y.subarray(0, 19), Array.from(y0.subarray(0, 19), (v, i) => v - 0.75 * x[i]), { ...ew, what: 'axpy' });
    assert.deepEqual(Array.from(y.subarray(19)), Array.from(y0.subarray(19)));
  });
});

// ---- reductions and row kernels --------------------------------------------------------------

describe('reduction and row kernels', () => {
  forEachKernels('reduce sum / max (+ argmax, first max on ties), sumSquares in float64', (k) => {
    const rng = new Rng(6);
    for (const [outer, len, inner] of [
      [1, 1, 1],
      [3, 7, 1],
      [1, 33, 5],
      [4, 5, 6],
      [2, 100, 3],
    ]) {
      const x = rand(outer * len * inner, rng);
      if (len > 2) x[1 * inner] = x[0]; // a tie at l = 0 and l = 1 in the first column
      for (const op of [ReduceOp.Sum, ReduceOp.Max]) {
        const out = nanArray(outer * inner);
        const am = new Int32Array(outer * inner).fill(-1);
        k.reduce(op, x, out, outer, len, inner, op === ReduceOp.Max ? am : null);
        assertWritten(out, `reduce ${op}`);
        const ref = new Float64Array(outer * inner);
        const refIdx = new Int32Array(outer * inner);
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < inner; j++) {
            let s = op === ReduceOp.Sum ? 0 : -Infinity;
            for (let l = 0; l < len; l++) {
              const v = x[(o * len + l) * inner + j];
              if (op === ReduceOp.Sum) s += v;
              else if (v > s) {
                s = v;
                refIdx[o * inner + j] = l;
              }
            }
            ref[o * inner + j] = s;
          }
        }
        assertClose(out, ref, { ...red, what: `reduce ${op === ReduceOp.Sum ? 'sum' : 'max'} ${outer}x${len}x${inner}` });
        if (op === ReduceOp.Max) assert.deepEqual(Array.from(am), Array.from(refIdx), 'argmax');
      }
    }
    const big = rand(100001, rng, 100, 101);
    let ss = 0;
    for (const v of big) ss += v * v;
    const got = k.sumSquares(big, big.length);
    assert.ok(Math.abs(got - ss) <= 1e-9 * ss, `sumSquares ${got} vs ${ss}`);
    assert.equal(k.sumSquares(big, 0), 0);
  });

  forEachKernels('softmax / log-softmax forward and backward (accumulate)', (k) => {
    const rng = new Rng(7);
    for (const [rows, cols] of [
      [1, 1],
      [3, 7],
      [2, 33],
      [4, 128],
    ]) {
      for (const log of [false, true]) {
        const x = rand(rows * cols, rng, -6, 6);
        const y = nanArray(rows * cols);
        k.softmax(x, y, rows, cols, log);
        assertWritten(y, 'softmax');
        assertClose(y, refSoftmax(arr([rows, cols], x), -1, log), { ...ew, what: `softmax log ${log} ${rows}x${cols}` });
        const gy = rand(rows * cols, rng);
        const gx = nanArray(rows * cols);
        k.softmaxBackward(y, gy, gx, rows, cols, log, false);
        assertWritten(gx, 'softmaxBackward');
        const ref = new Float64Array(rows * cols);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let j = 0; j < cols; j++) s += log ? gy[r * cols + j] : gy[r * cols + j] * y[r * cols + j];
          for (let j = 0; j < cols; j++) {
            const i = r * cols + j;
            ref[i] = log ? gy[i] - Math.exp(y[i]) * s : y[i] * (gy[i] - s);
          }
        }
        assertClose(gx, ref, { ...red, what: `softmaxBackward log ${log}` });
        const acc = rand(rows * cols, rng);
        const acc0 = acc.slice();
        k.softmaxBackward(y, gy, acc, rows, cols, log, true);
        assertClose(acc, Array.from(ref, (v, i) => v + acc0[i]), { ...red, what: `softmaxBackward accumulate log ${log}` });
      }
    }
  });

  forEachKernels('rmsnorm / layernorm forward (stats written) and backward (gx accumulate, gw/gb accumulate)', (k) => {
    const rng = new Rng(8);
    for (const [rows, cols] of [
      [1, 1],
      [3, 7],
      [2, 64],
      [5, 33],
    ]) {
      const x = rand(rows * cols, rng, -2, 2);
      const w = rand(cols, rng, 0.5, 1.5);
      const b = rand(cols, rng);
      const gy = rand(rows * cols, rng);
      // rmsnorm
      const y = nanArray(rows * cols);
      const rstd = nanArray(rows);
      k.rmsnorm(x, w, y, rstd, rows, cols, 1e-6);
      assertWritten(y, 'rmsnorm out');
      assertWritten(rstd, 'rmsnorm rstd');
      assertClose(y, refRmsNorm(arr([rows, cols], x), arr([cols], w), 1e-6), { ...red, what: 'rmsnorm' });
      const gx = nanArray(rows * cols);
      const gw0 = rand(cols, rng);
      const gw = gw0.slice();
      k.rmsnormBackward(x, w, rstd, gy, gx, gw, rows, cols, false);
      assertWritten(gx, 'rmsnormBackward gx');
      // reference by float64 differentiation of y = x * rs * w
      const rgx = new Float64Array(rows * cols);
      const rgw = Float64Array.from(gw0);
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let j = 0; j < cols; j++) ss += x[r * cols + j] ** 2;
        const rs = 1 / Math.sqrt(ss / cols + 1e-6);
        let dot = 0;
        for (let j = 0; j < cols; j++) dot += gy[r * cols + j] * w[j] * x[r * cols + j];
        for (let j = 0; j < cols; j++) {
          const i = r * cols + j;
          rgx[i] = gy[i] * w[j] * rs - (x[i] * rs ** 3 * dot) / cols;
          rgw[j] += gy[i] * x[i] * rs;
        }
      }
      assertClose(gx, rgx, { ...red, what: 'rmsnormBackward gx' });
      assertClose(gw, rgw, { ...red, what: 'rmsnormBackward gw accumulates' });
      const gxa = rand(rows * cols, rng);
      const gxa0 = gxa.slice();
      k.rmsnormBackward(x, w, rstd, gy, gxa, null, rows, cols, true);
      assertClose(gxa, Array.from(rgx, (v, i) => v + gxa0[i]), { ...red, what: 'rmsnormBackward accumulate, gw null' });
      // layernorm with and without w / b
      for (const [wn, ww, bb] of [
        ['w+b', w, b],
        ['none', null, null],
        ['w', w, null],
      ] as [string, Float32Array | null, Float32Array | null][]) {
        const ly = nanArray(rows * cols);
        const mean = nanArray(rows);
        const lr = nanArray(rows);
        k.layernorm(x, ww, bb, ly, mean, lr, rows, cols, 1e-5);
        assertWritten(ly, `layernorm ${wn}`);
        assertWritten(mean, 'layernorm mean');
        assertWritten(lr, 'layernorm rstd');
        assertClose(ly, refLayerNorm(arr([rows, cols], x), ww && arr([cols], ww), bb && arr([cols], bb), 1e-5), { ...red, what: `layernorm ${wn}` });
        const lgx = nanArray(rows * cols);
        const lgw = ww ? rand(cols, rng) : null;
        const lgb = bb ? rand(cols, rng) : null;
        const lgw0 = lgw?.slice();
        const lgb0 = lgb?.slice();
        k.layernormBackward(x, ww, mean, lr, gy, lgx, lgw, lgb, rows, cols, false);
        assertWritten(lgx, 'layernormBackward gx');
        const rgx2 = new Float64Array(rows * cols);
        const rgw2 = lgw0 ? Float64Array.from(lgw0) : null;
        const rgb2 = lgb0 ? Float64Array.from(lgb0) : null;
        for (let r = 0; r < rows; r++) {
          let mu = 0;
          for (let j = 0; j < cols; j++) mu += x[r * cols + j];
          mu /= cols;
          let v = 0;
          for (let j = 0; j < cols; j++) v += (x[r * cols + j] - mu) ** 2;
          const rs = 1 / Math.sqrt(v / cols + 1e-5);
          let sg = 0;
          let sgx = 0;
          for (let j = 0; j < cols; j++) {
            const g = gy[r * cols + j] * (ww ? ww[j] : 1);
            sg += g;
            sgx += g * (x[r * cols + j] - mu) * rs;
          }
          for (let j = 0; j < cols; j++) {
            const i = r * cols + j;
            const xh = (x[i] - mu) * rs;
            const g = gy[i] * (ww ? ww[j] : 1);
            rgx2[i] = rs * (g - sg / cols - (xh * sgx) / cols);
            if (rgw2) rgw2[j] += gy[i] * xh;
            if (rgb2) rgb2[j] += gy[i];
          }
        }
        assertClose(lgx, rgx2, { ...red, what: `layernormBackward gx ${wn}` });
        if (lgw && rgw2) assertClose(lgw, rgw2, { ...red, what: 'layernormBackward gw accumulates' });
        if (lgb && rgb2) assertClose(lgb, rgb2, { ...red, what: 'layernormBackward gb accumulates' });
        const acc = rand(rows * cols, rng);
        const acc0 = acc.slice();
        k.layernormBackward(x, ww, mean, lr, gy, acc, null, null, rows, cols, true);
        assertClose(acc, Array.from(rgx2, (v, i) => v + acc0[i]), { ...red, what: `layernormBackward accumulate ${wn}` });
      }
    }
  });
});

// ---- gather, rope, attention, cross-entropy, adamw -------------------------------------------

describe('gather / rope / attention / cross-entropy / adamw kernels', () => {
  forEachKernels('gather writes rows, scatterAdd accumulates (repeated ids)', (k) => {
    const rng = new Rng(9);
    for (const dim of [1, 5, 64]) {
      const table = rand(7 * dim, rng);
      const ids = Int32Array.from([6, 0, 3, 3, 6]);
      const out = nanArray(ids.length * dim);
      k.gather(table, ids, out, ids.length, dim);
      assertWritten(out, 'gather');
      for (let i = 0; i < ids.length; i++) for (let j = 0; j < dim; j++) assert.equal(out[i * dim + j], table[ids[i] * dim + j]);
      const g = rand(ids.length * dim, rng);
      const gt = rand(7 * dim, rng);
      const gt0 = gt.slice();
      k.scatterAdd(g, ids, gt, ids.length, dim);
      const ref = Float64Array.from(gt0);
      for (let i = 0; i < ids.length; i++) for (let j = 0; j < dim; j++) ref[ids[i] * dim + j] += g[i * dim + j];
      assertClose(gt, ref, { ...ew, what: `scatterAdd dim ${dim}` });
    }
  });

  forEachKernels('rope: rotate-half forward, in place, inverse undoes it, tail copied', (k) => {
    const rng = new Rng(10);
    for (const [heads, D, rot] of [
      [2, 8, 8],
      [3, 10, 4],
      [1, 64, 64],
      [2, 6, 0],
    ]) {
      const rows = 3;
      const h = rot / 2;
      const maxPos = 20;
      const cos = new Float32Array(maxPos * Math.max(h, 1));
      const sin = new Float32Array(maxPos * Math.max(h, 1));
      for (let p = 0; p < maxPos; p++) {
        for (let i = 0; i < h; i++) {
          cos[p * h + i] = Math.cos(p * Math.pow(10000, (-2 * i) / rot));
          sin[p * h + i] = Math.sin(p * Math.pow(10000, (-2 * i) / rot));
        }
      }
      const pos = Int32Array.from([0, 7, 19]);
      const x = rand(rows * heads * D, rng);
      const out = nanArray(x.length);
      k.rope(x, out, pos, cos, sin, rows, heads, D, rot, false);
      assertWritten(out, `rope D ${D} rot ${rot}`);
      const ref = new Float64Array(x.length);
      for (let r = 0; r < rows; r++) {
        for (let hd = 0; hd < heads; hd++) {
          const o = (r * heads + hd) * D;
          for (let i = 0; i < D; i++) ref[o + i] = x[o + i];
          for (let i = 0; i < h; i++) {
            const c = cos[pos[r] * h + i];
            const s = sin[pos[r] * h + i];
            ref[o + i] = x[o + i] * c - x[o + i + h] * s;
            ref[o + i + h] = x[o + i + h] * c + x[o + i] * s;
          }
        }
      }
      assertClose(out, ref, { ...ew, what: `rope D ${D} rot ${rot}` });
      const inplace = x.slice();
      k.rope(inplace, inplace, pos, cos, sin, rows, heads, D, rot, false);
      assertClose(inplace, out, { rtol: 0, atol: 0, what: 'rope in place' });
      const back = nanArray(x.length);
      k.rope(out, back, pos, cos, sin, rows, heads, D, rot, true);
      assertClose(back, x, { rtol: 1e-5, atol: 1e-6, what: 'rope inverse undoes forward' });
    }
  });

  forEachKernels('attention: out / lse poisoned, fully masked rows give lse -Infinity and 0; backward accumulates', (k) => {
    const rng = new Rng(11);
    const [B, Hq, Hkv, Tq, Tk, D] = [2, 4, 2, 3, 5, 8];
    const q = rand(B * Hq * Tq * D, rng);
    const kk = rand(B * Hkv * Tk * D, rng);
    const v = rand(B * Hkv * Tk * D, rng);
    const mask = new Uint8Array(B * Tq * Tk).fill(1);
    for (let j = 0; j < Tk; j++) mask[(1 * Tq + 1) * Tk + j] = 0; // b 1, row 1 fully masked
    const scale = 1 / Math.sqrt(D);
    const qPos = Int32Array.from([2, 3, 4, 2, 3, 4]);
    const out = nanArray(q.length);
    const lse = nanArray(B * Hq * Tq);
    k.attention(q, kk, v, out, lse, attnArgs({ B, Hq, Hkv, Tq, Tk, D, scale, causal: true, qPos, mask }));
    assertWritten(out, 'attention out');
    assertWritten(lse, 'attention lse');
    const refOut = new Float64Array(q.length);
    const refLse = new Float64Array(lse.length);
    for (let b = 0; b < B; b++) {
      for (let hh = 0; hh < Hq; hh++) {
        const kh = Math.floor(hh / (Hq / Hkv));
        for (let i = 0; i < Tq; i++) {
          const li = (b * Hq + hh) * Tq + i;
          const s: number[] = [];
          const js: number[] = [];
          for (let j = 0; j < Tk; j++) {
            if (j > qPos[b * Tq + i] || mask[(b * Tq + i) * Tk + j] === 0) continue;
            let d = 0;
            for (let e = 0; e < D; e++) d += q[li * D + e] * kk[((b * Hkv + kh) * Tk + j) * D + e];
            s.push(d * scale);
            js.push(j);
          }
          if (js.length === 0) {
            refLse[li] = -Infinity;
            continue;
          }
          const mx = Math.max(...s);
          const z = s.reduce((acc, x) => acc + Math.exp(x - mx), 0);
          refLse[li] = mx + Math.log(z);
          for (let n = 0; n < js.length; n++) {
            const p = Math.exp(s[n] - refLse[li]);
            for (let e = 0; e < D; e++) refOut[li * D + e] += p * v[((b * Hkv + kh) * Tk + js[n]) * D + e];
          }
        }
      }
    }
    assertClose(out, refOut, { ...red, what: 'attention out' });
    assertClose(lse, refLse, { ...red, what: 'attention lse' });
    // backward accumulates onto what is already in gq / gk / gv
    const gOut = rand(q.length, rng);
    const fresh = [new Float32Array(q.length), new Float32Array(kk.length), new Float32Array(v.length)];
    k.attentionBackward(q, kk, v, out, lse, gOut, fresh[0], fresh[1], fresh[2], attnArgs({ B, Hq, Hkv, Tq, Tk, D, scale, causal: true, qPos, mask }));
    for (const g of fresh) assertWritten(g, 'attentionBackward');
    const pre = [rand(q.length, rng), rand(kk.length, rng), rand(v.length, rng)];
    const acc = pre.map((a) => a.slice());
    k.attentionBackward(q, kk, v, out, lse, gOut, acc[0], acc[1], acc[2], attnArgs({ B, Hq, Hkv, Tq, Tk, D, scale, causal: true, qPos, mask }));
    for (let t = 0; t < 3; t++) assertClose(acc[t], Array.from(fresh[t], (x, i) => x + pre[t][i]), { ...red, what: `attentionBackward accumulates (input ${t})` });
    // the fully masked row's q gets no gradient
    for (let hh = 0; hh < Hq; hh++) for (let e = 0; e < D; e++) assert.equal(fresh[0][(((1 * Hq + hh) * Tq + 1) * D) + e], 0);
  });

  forEachKernels('crossEntropy losses / lse / count, backward with ignore rows and accumulate', (k) => {
    const rng = new Rng(12);
    for (const [rows, cols] of [
      [1, 1],
      [4, 7],
      [3, 260],
    ]) {
      const logits = rand(rows * cols, rng, -4, 4);
      const targets = Int32Array.from({ length: rows }, (_, r) => (r === 1 ? -7 : rng.int(0, cols - 1)));
      const losses = nanArray(rows);
      const lse = nanArray(rows);
      const count = k.crossEntropy(logits, targets, losses, lse, rows, cols, -7);
      assert.equal(count, rows > 1 ? rows - 1 : 1);
      assertWritten(losses, 'crossEntropy losses');
      const refL = new Float64Array(rows);
      const refLse = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        let mx = -Infinity;
        for (let j = 0; j < cols; j++) mx = Math.max(mx, logits[r * cols + j]);
        let s = 0;
        for (let j = 0; j < cols; j++) s += Math.exp(logits[r * cols + j] - mx);
        refLse[r] = mx + Math.log(s);
        refL[r] = targets[r] === -7 ? 0 : refLse[r] - logits[r * cols + targets[r]];
      }
      assertClose(losses, refL, { ...red, what: 'crossEntropy losses' });
      for (let r = 0; r < rows; r++) if (targets[r] !== -7) assertClose([lse[r]], [refLse[r]], { ...red, what: 'crossEntropy lse' });
      const gLoss = rand(rows, rng);
      const gl = nanArray(rows * cols);
      k.crossEntropyBackward(logits, targets, lse, gLoss, gl, rows, cols, -7, false);
      assertWritten(gl, 'crossEntropyBackward');
      const refG = new Float64Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        if (targets[r] === -7) continue;
        for (let j = 0; j < cols; j++) refG[r * cols + j] = gLoss[r] * (Math.exp(logits[r * cols + j] - refLse[r]) - (j === targets[r] ? 1 : 0));
      }
      assertClose(gl, refG, { ...red, what: 'crossEntropyBackward' });
      const acc = rand(rows * cols, rng);
      const acc0 = acc.slice();
      k.crossEntropyBackward(logits, targets, lse, gLoss, acc, rows, cols, -7, true);
      assertClose(acc, Array.from(refG, (x, i) => x + acc0[i]), { ...red, what: 'crossEntropyBackward accumulate (ignored rows untouched)' });
    }
  });

  forEachKernels('adamw matches the float64 update over several steps', (k) => {
    const rng = new Rng(13);
    const n = 37;
    const p = rand(n, rng);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    const rp = Float64Array.from(p);
    const rm = new Float64Array(n);
    const rv = new Float64Array(n);
    const [lr, b1, b2, eps, wd] = [1e-2, 0.9, 0.999, 1e-8, 0.1];
    for (let step = 1; step <= 5; step++) {
      const g = rand(n, rng);
      const bc1 = 1 - b1 ** step;
      const bc2 = 1 - b2 ** step;
      k.adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
      for (let i = 0; i < n; i++) {
        rm[i] = b1 * rm[i] + (1 - b1) * g[i];
        rv[i] = b2 * rv[i] + (1 - b2) * g[i] * g[i];
        rp[i] -= (lr * (rm[i] / bc1)) / (Math.sqrt(rv[i] / bc2) + eps) + lr * wd * rp[i];
      }
    }
    assertClose(m, rm, { ...ew, what: 'adamw m' });
    assertClose(v, rv, { rtol: 1e-4, atol: 1e-7, what: 'adamw v' });
    assertClose(p, rp, { rtol: 1e-5, atol: 1e-6, what: 'adamw p' });
  });
});
