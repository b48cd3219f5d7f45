/**
 * Native vs JS agreement: every op runs on the same random inputs under both backends, forward
 * outputs and the gradients of every differentiable input (seeded with the same random output
 * gradient) are compared. Shapes are larger than in the per-op suites so that SIMD main loops,
 * tails and the thread pool are exercised. Skipped when the native addon is unavailable.
 *
 * Tolerances (|native - js| <= atol + rtol |js|): elementwise and data movement rtol 1e-5 /
 * atol 1e-6; reductions, matmul / linear, norms, softmax family, cross-entropy, attention and all
 * gradients rtol 1e-4 / atol 1e-4 x (typical magnitude of the compared values) — the JS kernels
 * accumulate in float64, native in f32 with a different summation order.
 */
import { describe, test } from 'node:test';
import * as T from '../../src/tensor/index.js';
import { Tensor, withBackend, type BackendName } from '../../src/tensor/index.js';
import { Rng, assertClose, hasNative, nativeUnavailableReason, randInts, randTensor, randTensorAwayFromZero } from '../helpers/numeric.js';

interface Tol {
  rtol: number;
  atol: number;
}
const EW: Tol = { rtol: 1e-5, atol: 1e-6 };
const ACC: Tol = { rtol: 1e-4, atol: 1e-4 };

interface AgreeCase {
  name: string;
  /** forward tolerance */
  tol: Tol;
  inputs: (rng: Rng) => Tensor[];
  fn: (...xs: Tensor[]) => Tensor;
  /** no gradient (comparison ops, integer outputs) */
  noGrad?: boolean;
}

function runOn(backend: BackendName, c: AgreeCase, inputs: readonly Tensor[], seed: number): { y: Float32Array; grads: (Float32Array | null)[] } {
  return withBackend(backend, () => {
    const leaves = inputs.map((t) => new Tensor(t.f32().slice(), t.shape, undefined, 0, !c.noGrad));
    const y = c.fn(...leaves);
    const yv = Float32Array.from(y.toArray());
    if (c.noGrad || !y.requiresGrad) return { y: yv, grads: leaves.map(() => null) };
    const rng = new Rng(seed);
    const g = new Float32Array(y.size);
    for (let i = 0; i < g.length; i++) g[i] = rng.uniform(-1, 1);
    y.backward(g);
    return { y: yv, grads: leaves.map((l) => (l.grad ? Float32Array.from(l.grad.toArray()) : null)) };
  });
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

const unary: [string, (x: Tensor) => Tensor, number, number][] = [
  ['neg', T.neg, -3, 3],
  ['exp', T.exp, -10, 10],
  ['log', T.log, 0.01, 10],
  ['sqrt', T.sqrt, 0.01, 10],
  ['rsqrt', T.rsqrt, 0.01, 10],
  ['silu', T.silu, -10, 10],
  ['gelu', T.gelu, -8, 8],
  ['geluTanh', T.geluTanh, -8, 8],
  ['tanh', T.tanh, -8, 8],
  ['elu', T.elu, -6, 6],
  ['relu', T.relu, -3, 3],
  ['sigmoid', T.sigmoid, -12, 12],
  ['abs', T.abs, -3, 3],
  ['square', T.square, -3, 3],
  ['reciprocal', T.reciprocal, 0.1, 4],
];

const cases: AgreeCase[] = [
  ...(['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const).map(
    (op): AgreeCase => ({
      name: `${op} broadcast [33,65] x [65] and transposed [65,33]^T`,
      tol: EW,
      inputs: (rng) => [randTensor([33, 65], rng), randTensorAwayFromZero([65], rng, 0.3, 2), randTensor([65, 33], rng)],
      fn: (a, b, c) => {
        const f = { add: T.add, sub: T.sub, mul: T.mul, div: T.div, maximum: T.maximum, minimum: T.minimum }[op];
        return T.add(f(a, b), f(T.transpose(c), T.expand(T.reshape(b, [1, 65]), [33, 65])));
      },
    }),
  ),
  { name: 'gt / eq', tol: { rtol: 0, atol: 0 }, noGrad: true, inputs: (rng) => [randTensor([7, 130], rng), randTensor([130], rng)], fn: (a, b) => T.add(T.gt(a, b), T.mul(T.eq(a, T.transpose(T.transpose(a))), 2)) },
  ...unary.map(
    ([name, f, lo, hi]): AgreeCase => ({
      name: `${name} [37, 41] (+ transposed)`,
      tol: EW,
      inputs: (rng) => [randTensor([37, 41], rng, lo, hi)],
      fn: (x) => T.add(f(x), T.transpose(f(T.transpose(x)))),
    }),
  ),
  { name: 'affine / pow / where', tol: EW, inputs: (rng) => [randTensor([19, 23], rng, 0.2, 2), randTensor([23], rng)], fn: (x, b) => T.where(T.gt(b, 0), T.pow(T.affine(x, 1.5, 0.25), 1.7), T.pow(x, -0.5)) },
  { name: 'sum / mean over axes', tol: ACC, inputs: (rng) => [randTensor([6, 70, 33], rng)], fn: (x) => T.add(T.sum(x, [0, 2]), T.mean(T.transpose(x, 0, 1), [1, 2])) },
  { name: 'max over inner and outer axes', tol: EW, inputs: (rng) => [randTensor([9, 257, 5], rng)], fn: (x) => T.add(T.sum(T.max(x, 1)), T.sum(T.max(x, 0))) },
  { name: 'matmul [67,129] @ [129,35]', tol: ACC, inputs: (rng) => [randTensor([67, 129], rng), randTensor([129, 35], rng)], fn: (a, b) => T.matmul(a, b) },
  { name: 'matmul transposed operands (trans flags)', tol: ACC, inputs: (rng) => [randTensor([129, 67], rng), randTensor([35, 129], rng)], fn: (a, b) => T.matmul(T.transpose(a), T.transpose(b)) },
  { name: 'matmul GEMV [1,300] @ [300,257] and [257,300] @ [300]', tol: ACC, inputs: (rng) => [randTensor([1, 300], rng), randTensor([300, 257], rng)], fn: (a, b) => T.add(T.sum(T.matmul(a, b)), T.sum(T.matmul(T.transpose(b), T.reshape(a, [300])))) },
  { name: 'matmul batched broadcast [2,1,17,40] @ [3,40,9]', tol: ACC, inputs: (rng) => [randTensor([2, 1, 17, 40], rng), randTensor([3, 40, 9], rng)], fn: (a, b) => T.matmul(a, b) },
  { name: 'matmul batch x matrix fold [4,33,64] @ [64,48]', tol: ACC, inputs: (rng) => [randTensor([4, 33, 64], rng), randTensor([64, 48], rng)], fn: (a, b) => T.matmul(a, b) },
  { name: 'linear [5,17,96] x [130,96]^T + b', tol: ACC, inputs: (rng) => [randTensor([5, 17, 96], rng), randTensor([130, 96], rng), randTensor([130], rng)], fn: (x, w, b) => T.linear(x, w, b) },
  { name: 'softmax / logSoftmax [13,1000], axis 0', tol: ACC, inputs: (rng) => [randTensor([13, 1000], rng, -8, 8)], fn: (x) => T.add(T.softmax(x), T.mul(T.logSoftmax(x, 0), 0.01)) },
  { name: 'rmsNorm [9,333]', tol: ACC, inputs: (rng) => [randTensor([9, 333], rng, -2, 2), randTensor([333], rng, 0.5, 1.5)], fn: (x, w) => T.rmsNorm(x, w) },
  { name: 'layerNorm [9,333] w + b, and none', tol: ACC, inputs: (rng) => [randTensor([9, 333], rng, -2, 2), randTensor([333], rng), randTensor([333], rng)], fn: (x, w, b) => T.add(T.layerNorm(x, w, b), T.layerNorm(x, null, null)) },
  {
    name: 'embedding / indexSelect',
    tol: EW,
    inputs: (rng) => [randTensor([50, 72], rng)],
    fn: (t) => {
      const ids = randInts([3, 11], new Rng(5), 0, 49);
      return T.add(T.sum(T.embedding(ids, t)), T.sum(T.indexSelect(t, 1, Int32Array.from([71, 0, 5, 5]))));
    },
  },
  {
    name: 'crossEntropy [17,500] ignore-index, mean',
    tol: ACC,
    inputs: (rng) => [randTensor([17, 500], rng, -5, 5)],
    fn: (x) => T.crossEntropy(x, Int32Array.from({ length: 17 }, (_, i) => (i % 4 === 1 ? -100 : (i * 37) % 500))),
  },
  {
    name: 'rope [2,9,4,64] rotaryDim 32 and full',
    tol: { rtol: 1e-5, atol: 1e-5 },
    inputs: (rng) => [randTensor([2, 9, 4, 64], rng)],
    fn: (x) => {
      const pos = Int32Array.from({ length: 18 }, (_, i) => i * 7);
      return T.add(T.rope(x, pos, { rotaryDim: 32 }), T.rope(x, pos));
    },
  },
  {
    name: 'attention GQA 8/2, causal + window + segments + mask, Tq 33 < Tk 65, D 64',
    tol: ACC,
    inputs: (rng) => [randTensor([2, 8, 33, 64], rng), randTensor([2, 2, 65, 64], rng), randTensor([2, 2, 65, 64], rng)],
    fn: (q, k, v) => {
      const r = new Rng(9);
      const mask = new Uint8Array(2 * 33 * 65);
      for (let i = 0; i < mask.length; i++) mask[i] = r.next() < 0.9 ? 1 : 0;
      const qSeg = Int32Array.from({ length: 66 }, (_, i) => ((i % 33) + 32 < 50 ? 0 : 1));
      const kSeg = Int32Array.from({ length: 130 }, (_, i) => (i % 65 < 50 ? 0 : 1));
      return T.attention(q, k, v, { causal: true, window: 24, mask, qSeg, kSeg });
    },
  },
  {
    name: 'attention plain, strided q/k/v, and decode Tq 1',
    tol: ACC,
    inputs: (rng) => [randTensor([1, 40, 4, 32], rng), randTensor([1, 40, 4, 32], rng), randTensor([1, 4, 40, 32], rng)],
    fn: (q, k, v) => T.add(T.sum(T.attention(T.transpose(q, 1, 2), T.transpose(k, 1, 2), v)), T.sum(T.attention(T.slice(T.transpose(q, 1, 2), 2, 39, 40), T.transpose(k, 1, 2), v, { causal: true }))),
  },
  {
    name: 'views: permute / contiguous / concat / expand-sum (copyStrided)',
    tol: EW,
    inputs: (rng) => [randTensor([7, 33, 5, 9], rng), randTensor([7, 1, 5, 9], rng)],
    fn: (a, b) => T.concat([T.contiguous(T.permute(a, [3, 1, 0, 2])), T.contiguous(T.permute(T.expand(b, [7, 4, 5, 9]), [3, 1, 0, 2]))], 1),
  },
];

describe('native vs js agreement', () => {
  const why = hasNative() ? null : `native backend unavailable: ${nativeUnavailableReason() ?? ''}`;
  for (const [ci, c] of cases.entries()) {
    test(c.name, why ? { skip: why } : {}, () => {
      const rng = new Rng(4242 + ci);
      const inputs = c.inputs(rng);
      const js = runOn('js', c, inputs, 99 + ci);
      const nat = runOn('native', c, inputs, 99 + ci);
      const scale = Math.max(1, maxAbs(js.y));
      assertClose(nat.y, js.y, { rtol: c.tol.rtol, atol: c.tol.atol * (c.tol === ACC ? scale : 1), what: `${c.name}: forward native vs js` });
      for (let k = 0; k < inputs.length; k++) {
        const a = nat.grads[k];
        const b = js.grads[k];
        if (a === null || b === null) {
          if (a !== b) throw new Error(`${c.name}: gradient ${k} present on one backend only`);
          continue;
        }
        assertClose(a, b, { rtol: ACC.rtol, atol: ACC.atol * Math.max(1, maxAbs(b)), what: `${c.name}: gradient of input ${k} native vs js` });
      }
    });
  }
});
