/**
 * Reductions (ops/reduce.ts) on every backend: sum / mean over every axis subset with and without
 * keepdim, max / maxWithIndex / argmax (first maximum on ties), on contiguous and strided inputs;
 * forward vs float64 (rtol 1e-5, atol 1e-5: f32 accumulation of up to ~100 terms) and gradients
 * vs finite differences.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { Rng, assertClose, forEachBackend, gradCheck, randTensor } from '../helpers/numeric.js';
import { fromTensor, refMax, refMean, refSum } from '../helpers/reference.js';

const tol = { rtol: 1e-5, atol: 1e-5 };

/** All subsets of [0, rank) plus negative-axis spellings and the "all" default. */
function axisSets(rank: number): (number[] | undefined)[] {
  const out: (number[] | undefined)[] = [undefined];
  for (let m = 0; m < 1 << rank; m++) {
    const s: number[] = [];
    for (let i = 0; i < rank; i++) if (m & (1 << i)) s.push(i);
    out.push(s);
  }
  out.push([-1], [0, -1], [-2, -1]);
  return out;
}

describe('sum / mean', () => {
  forEachBackend('sum and mean over every axis subset, keepdim on/off, strided input', () => {
    const rng = new Rng(21);
    const base = randTensor([3, 4, 5], rng);
    const views: [string, Tensor][] = [
      ['contiguous', base],
      ['transposed', T.transpose(base, 0, 2)],
      ['sliced', T.slice(base, 1, 1, 4)],
      ['expanded', T.expand(T.slice(base, 0, 0, 1), [2, 4, 5])],
    ];
    for (const [name, x] of views) {
      const xr = fromTensor(x);
      for (const axes of axisSets(3)) {
        for (const keep of [false, true]) {
          const w = `${name} axes ${axes === undefined ? 'all' : `[${axes.join(',')}]`} keepdim ${keep}`;
          assertClose(T.sum(x, axes, keep), refSum(xr, axes, keep), { ...tol, what: `sum ${w}` });
          assertClose(T.mean(x, axes, keep), refMean(xr, axes, keep), { ...tol, what: `mean ${w}` });
        }
      }
      assertClose(T.sum(x, 1), refSum(xr, [1]), { ...tol, what: `sum single number axis ${name}` });
    }
  });

  forEachBackend('sum of odd sizes, size-1 dims, rank 0 and 1', () => {
    const rng = new Rng(22);
    for (const shape of [[1], [17], [1, 1, 1], [2, 1, 33], [131]] as number[][]) {
      const x = randTensor(shape, rng);
      assertClose(T.sum(x), refSum(fromTensor(x)), { ...tol, what: `sum all [${shape.join(',')}]` });
      assertClose(T.mean(x, -1, true), refMean(fromTensor(x), [-1], true), { ...tol, what: `mean last [${shape.join(',')}]` });
    }
    const s = Tensor.scalar(2.5);
    assert.deepEqual(T.sum(s).shape, []);
    assert.equal(T.sum(s).item(), 2.5);
    assert.equal(T.mean(s).item(), 2.5);
    // sum over no axes is a copy, not an alias
    const x = randTensor([2, 2], rng);
    const y = T.sum(x, []);
    assert.notEqual(y.data, x.data);
    assertClose(y, fromTensor(x), { rtol: 0, atol: 0, what: 'sum over []' });
  });

  forEachBackend('sum / mean gradients', () => {
    const rng = new Rng(23);
    const x = randTensor([2, 3, 4], rng);
    for (const axes of [undefined, [0], [1], [2], [0, 2], [1, 2], [-1]] as (number[] | undefined)[]) {
      for (const keep of [false, true]) {
        gradCheck((t) => T.sum(t, axes, keep), [x], { what: `sum grad ${String(axes)} ${keep}` });
        gradCheck((t) => T.mean(T.transpose(t, 0, 2), axes, keep), [x], { what: `mean grad of transposed ${String(axes)} ${keep}` });
      }
    }
  });
});

describe('max / argmax', () => {
  forEachBackend('max values and indices over each axis, keepdim, strided input', () => {
    const rng = new Rng(31);
    const base = randTensor([4, 5, 3], rng);
    for (const [name, x] of [
      ['contiguous', base],
      ['permuted', T.permute(base, [2, 0, 1])],
      ['sliced', T.slice(base, 2, 1, 3)],
    ] as [string, Tensor][]) {
      const xr = fromTensor(x);
      for (let ax = -3; ax < 3; ax++) {
        for (const keep of [false, true]) {
          const r = refMax(xr, ax, keep);
          const got = T.maxWithIndex(x, ax, keep);
          assertClose(got.values, r.values, { rtol: 0, atol: 0, what: `max ${name} axis ${ax}` });
          assert.equal(got.indices.dtype, 'i32');
          assertClose(got.indices, r.indices, { rtol: 0, atol: 0, what: `argmax ${name} axis ${ax}` });
          assertClose(T.max(x, ax, keep), r.values, { rtol: 0, atol: 0, what: `max() ${name} axis ${ax}` });
          assertClose(T.argmax(x, ax, keep), r.indices, { rtol: 0, atol: 0, what: `argmax() ${name} axis ${ax}` });
        }
      }
    }
  });

  forEachBackend('ties pick the first index; -Infinity rows; argmax defaults to last axis', () => {
    const x = Tensor.from([1, 3, 3, 0, -Infinity, -Infinity, -Infinity, -Infinity, 5, 5, 5, 5], [3, 4]);
    assert.deepEqual(T.argmax(x).toArray(), [1, 0, 0]);
    assert.deepEqual(T.max(x, 1).toArray(), [3, -Infinity, 5]);
    assert.deepEqual(T.argmax(x, 0).toArray(), [2, 2, 2, 2]);
    const g = x.clone().requireGrad();
    (g.data as Float32Array).set([1, 3, 3, 0, 1, 2, 0, 0, 5, 5, 5, 5]);
    T.max(g, 1).backward(Float32Array.from([1, 2, 3]));
    assert.deepEqual(g.grad?.toArray(), [0, 1, 0, 0, 0, 2, 0, 0, 3, 0, 0, 0]);
    assert.throws(() => T.max(Tensor.zeros([2, 0]), 1), /empty/);
  });

  forEachBackend('max gradient vs finite differences (no near-ties)', () => {
    const rng = new Rng(33);
    // distinct values on a 0.1 grid, shuffled: ties are >= 0.1 apart, well beyond eps
    const n = 24;
    const vals = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [vals[i], vals[j]] = [vals[j], vals[i]];
    }
    const x = Tensor.from(vals, [2, 3, 4]);
    for (let ax = 0; ax < 3; ax++) {
      gradCheck((t) => T.max(t, ax), [x], { what: `max grad axis ${ax}` });
      gradCheck((t) => T.max(T.transpose(t, 0, 2), ax, true), [x], { what: `max grad transposed axis ${ax}` });
    }
  });
});
