/**
 * View and layout ops (ops/shape.ts) on every backend: reshape / flatten / permute / transpose /
 * slice / expand / squeeze / unsqueeze / contiguous / concat / split, forward (exact: they only
 * move values) and gradients vs finite differences, composed views, and error messages.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { Rng, assertClose, forEachBackend, gradCheck, randTensor } from '../helpers/numeric.js';
import { fromTensor, refConcat, refExpand, refPermute, refReshape, refSlice, refSum, refTranspose, type Arr } from '../helpers/reference.js';

const exact = { rtol: 0, atol: 0 };

describe('views: forward', () => {
  forEachBackend('reshape (incl. -1, from non-contiguous) and flatten', () => {
    const rng = new Rng(1);
    const x = randTensor([2, 3, 4], rng);
    const xr = fromTensor(x);
    for (const s of [[6, 4], [4, -1], [24], [1, 2, 1, 12], [-1]] as number[][]) {
      const y = T.reshape(x, s);
      const shape = s.includes(-1) ? s.map((d) => (d === -1 ? 24 / s.filter((e) => e !== -1).reduce((a, b) => a * b, 1) : d)) : s;
      assertClose(y, refReshape(xr, shape), { ...exact, what: `reshape [${s.join(',')}]` });
      assert.equal(y.data, x.data, 'reshape of a contiguous tensor is a view');
    }
    const xt = T.transpose(x, 0, 2); // [4, 3, 2] non-contiguous
    const y = T.reshape(xt, [12, 2]);
    assertClose(y, refReshape(refTranspose(xr, 0, 2), [12, 2]), { ...exact, what: 'reshape of transposed' });
    assertClose(T.flatten(xt), refReshape(refTranspose(xr, 0, 2), [24]), { ...exact, what: 'flatten' });
    const xs = T.slice(x, 0, 1, 2); // contiguous with offset
    assertClose(T.reshape(xs, [3, 4]), refReshape(refSlice(xr, 0, 1, 2), [3, 4]), { ...exact, what: 'reshape of offset slice' });
  });

  forEachBackend('permute / transpose (all 3-D orders, negative axes)', () => {
    const rng = new Rng(2);
    const x = randTensor([2, 3, 5], rng);
    const xr = fromTensor(x);
    for (const p of [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
      [-1, 0, -2],
    ]) {
      const y = T.permute(x, p);
      assertClose(y, refPermute(xr, p), { ...exact, what: `permute [${p.join(',')}]` });
      assertClose(T.contiguous(y), refPermute(xr, p), { ...exact, what: `contiguous(permute [${p.join(',')}])` });
    }
    assertClose(T.transpose(x), refTranspose(xr, -2, -1), { ...exact, what: 'transpose default' });
    assertClose(T.transpose(x, 0, -1), refTranspose(xr, 0, 2), { ...exact, what: 'transpose 0,-1' });
    // double transpose of a view composes
    assertClose(T.transpose(T.permute(x, [2, 0, 1]), 0, 1), refTranspose(refPermute(xr, [2, 0, 1]), 0, 1), { ...exact, what: 'composed' });
  });

  forEachBackend('slice / split on every axis, empty and full ranges', () => {
    const rng = new Rng(3);
    const x = randTensor([4, 5, 3], rng);
    const xr = fromTensor(x);
    for (let ax = 0; ax < 3; ax++) {
      const n = x.shape[ax];
      for (const [s, e] of [
        [0, n],
        [1, n - 1],
        [n - 1, n],
        [2, 2],
      ]) {
        assertClose(T.slice(x, ax, s, e), refSlice(xr, ax, s, e), { ...exact, what: `slice axis ${ax} [${s},${e})` });
        assertClose(T.slice(x, ax - 3, s, e), refSlice(xr, ax, s, e), { ...exact, what: `slice axis ${ax - 3} [${s},${e})` });
      }
      const parts = T.split(x, n === 4 ? [1, 3] : n === 5 ? [2, 0, 3] : [1, 1, 1], ax);
      let at = 0;
      for (const p of parts) {
        assertClose(p, refSlice(xr, ax, at, at + p.shape[ax]), { ...exact, what: `split axis ${ax} part at ${at}` });
        at += p.shape[ax];
      }
    }
    // slice of a transposed view, slice of a slice
    const xt = T.transpose(x, 0, 1);
    assertClose(T.slice(T.slice(xt, 0, 1, 4), 1, 1, 3), refSlice(refSlice(refTranspose(xr, 0, 1), 0, 1, 4), 1, 1, 3), { ...exact, what: 'slice of slice of transpose' });
  });

  forEachBackend('expand / squeeze / unsqueeze', () => {
    const rng = new Rng(4);
    const x = randTensor([3, 1], rng);
    const xr = fromTensor(x);
    assertClose(T.expand(x, [3, 4]), refExpand(xr, [3, 4]), { ...exact, what: 'expand [3,1]->[3,4]' });
    assertClose(T.expand(x, [2, 3, 4]), refExpand(xr, [2, 3, 4]), { ...exact, what: 'expand [3,1]->[2,3,4]' });
    assertClose(T.contiguous(T.expand(x, [2, 3, 4])), refExpand(xr, [2, 3, 4]), { ...exact, what: 'contiguous(expand)' });
    const u = T.unsqueeze(x, 0);
    assert.deepEqual(u.shape, [1, 3, 1]);
    assert.deepEqual(T.unsqueeze(x, -1).shape, [3, 1, 1]);
    assert.deepEqual(T.unsqueeze(x, 1).shape, [3, 1, 1]);
    assert.deepEqual(T.squeeze(x, 1).shape, [3]);
    assert.deepEqual(T.squeeze(x, -1).toArray(), x.toArray());
    // squeeze / unsqueeze of a non-contiguous tensor keep the values
    const y = T.transpose(randTensor([2, 3], rng));
    assertClose(T.unsqueeze(y, 1), { shape: [3, 1, 2], data: fromTensor(y).data }, { ...exact, what: 'unsqueeze of transposed' });
    assert.throws(() => T.squeeze(y, 0), (e: Error) => e.message.includes('[3, 2]'));
  });

  forEachBackend('concat on every axis, with views and size-0 parts', () => {
    const rng = new Rng(5);
    for (let ax = 0; ax < 3; ax++) {
      const shapes = [2, 1, 3].map((n) => {
        const s = [2, 3, 4];
        s[ax] = n;
        return s;
      });
      const xs = shapes.map((s) => randTensor(s, rng));
      assertClose(T.concat(xs, ax), refConcat(xs.map(fromTensor), ax), { ...exact, what: `concat axis ${ax}` });
      assertClose(T.concat(xs, ax - 3), refConcat(xs.map(fromTensor), ax), { ...exact, what: `concat axis ${ax - 3}` });
    }
    const a = T.transpose(randTensor([4, 2], rng));
    const b = T.slice(randTensor([2, 6], rng), 1, 1, 4);
    const e = Tensor.zeros([2, 0]);
    assertClose(T.concat([a, e, b], 1), refConcat([fromTensor(a), fromTensor(e), fromTensor(b)], 1), { ...exact, what: 'concat of views' });
    assert.throws(() => T.concat([Tensor.zeros([2, 3]), Tensor.zeros([3, 3])], 1), (err: Error) => err.message.includes('[2, 3]') && err.message.includes('[3, 3]'));
    assert.throws(() => T.concat([], 0), /no tensors/);
  });

  forEachBackend('errors: reshape / permute / slice / expand / split mention the shapes', () => {
    const x = Tensor.zeros([2, 3]);
    assert.throws(() => T.reshape(x, [4, 2]), (e: Error) => e.message.includes('[2, 3]') && e.message.includes('[4, 2]'));
    assert.throws(() => T.reshape(x, [-1, 4]), (e: Error) => e.message.includes('[2, 3]'));
    assert.throws(() => T.permute(x, [0, 0]), /repeated/);
    assert.throws(() => T.permute(x, [0]), /rank-2/);
    assert.throws(() => T.slice(x, 1, 2, 5), (e: Error) => e.message.includes('[2, 3]'));
    assert.throws(() => T.expand(x, [2, 4]), (e: Error) => e.message.includes('[2, 3]') && e.message.includes('[2, 4]'));
    assert.throws(() => T.split(x, [1, 1], 1), (e: Error) => e.message.includes('[2, 3]'));
    assert.throws(() => T.transpose(x, 0, 2), /out of range/);
  });
});

describe('shape utilities', () => {
  forEachBackend('broadcastShapes, broadcastStrides, sumToShape, contiguousData, i32', () => {
    assert.deepEqual(T.broadcastShapes([2, 1, 3], [4, 1]), [2, 4, 3]);
    assert.deepEqual(T.broadcastShapes([], [3]), [3]);
    assert.deepEqual(T.broadcastShapes([1], []), [1]);
    assert.throws(() => T.broadcastShapes([2, 3], [3, 3], 'demo'), /demo: shapes \[2, 3\] and \[3, 3\] do not broadcast/);
    const x = Tensor.zeros([3, 1]);
    assert.deepEqual(T.broadcastStrides(x, [2, 3, 4]), [0, 1, 0]);
    const rng = new Rng(6);
    const g = randTensor([2, 3, 4], rng);
    for (const to of [[3, 4], [1, 4], [3, 1], [2, 1, 4], [1, 1, 1], [4], [], [2, 3, 4]] as number[][]) {
      const got = T.sumToShape(g.f32(), g.shape, to);
      // reference: sum over the leading dims and over dims where `to` has 1
      const lead = 3 - to.length;
      const axes = [...Array.from({ length: lead }, (_, i) => i), ...to.map((d, i) => (d === 1 && g.shape[i + lead] !== 1 ? i + lead : -1)).filter((a) => a >= 0)];
      const ref = refSum(fromTensor(g), axes);
      assertClose(got, ref.data, { rtol: 1e-6, atol: 1e-6, what: `sumToShape to [${to.join(',')}]` });
    }
    const v = T.transpose(randTensor([3, 5], rng));
    assertClose(T.contiguousData(v), fromTensor(v).data, { rtol: 0, atol: 0, what: 'contiguousData' });
    assert.deepEqual(Array.from(T.i32([3, -1, 7])), [3, -1, 7]);
  });
});

describe('views: gradients', () => {
  forEachBackend('reshape / flatten / permute / transpose gradients', () => {
    const rng = new Rng(11);
    const x = randTensor([2, 3, 4], rng);
    gradCheck((t) => T.reshape(t, [4, 6]), [x], { what: 'reshape' });
    gradCheck((t) => T.reshape(T.transpose(t, 0, 2), [3, 8]), [x], { what: 'reshape of transposed' });
    gradCheck((t) => T.flatten(T.permute(t, [1, 2, 0])), [x], { what: 'flatten of permuted' });
    for (const p of [
      [0, 2, 1],
      [2, 0, 1],
      [1, 2, 0],
    ]) {
      gradCheck((t) => T.permute(t, p), [x], { what: `permute [${p.join(',')}]` });
    }
    gradCheck((t) => T.transpose(T.transpose(t, 0, 1), 1, 2), [x], { what: 'transpose twice' });
    gradCheck((t) => T.contiguous(T.transpose(t, 0, 2)), [x], { what: 'contiguous(transpose)' });
  });

  forEachBackend('slice / split / squeeze / unsqueeze gradients (untouched elements get 0)', () => {
    const rng = new Rng(12);
    const x = randTensor([3, 4, 2], rng);
    for (let ax = 0; ax < 3; ax++) {
      const g = gradCheck((t) => T.slice(t, ax, 1, x.shape[ax]), [x], { what: `slice axis ${ax}` })[0];
      assert.ok(g !== null);
      const zeroed = refSlice({ shape: x.shape.slice(), data: Float64Array.from(g) }, ax, 0, 1);
      assert.ok(zeroed.data.every((v) => v === 0), `slice axis ${ax}: excluded entries get zero gradient`);
    }
    gradCheck((t) => T.slice(T.transpose(t, 0, 1), 0, 1, 3), [x], { what: 'slice of transposed' });
    gradCheck((t) => T.slice(T.slice(t, 1, 1, 4), 0, 0, 2), [x], { what: 'slice of slice' });
    gradCheck(
      (t) => {
        const [a, b, c] = T.split(t, [1, 2, 1], 1);
        return T.concat([T.mul(a, 2), T.mul(b, b), c], 1);
      },
      [x],
      { what: 'split parts recombined' },
    );
    gradCheck((t) => T.split(t, [2, 1], 0)[1], [x], { what: 'one split part' });
    gradCheck((t) => T.squeeze(T.slice(t, 0, 1, 2), 0), [x], { what: 'squeeze' });
    gradCheck((t) => T.unsqueeze(T.transpose(t, 0, 2), 1), [x], { what: 'unsqueeze of transposed' });
  });

  forEachBackend('expand gradient sums over broadcast dims (leading and size-1)', () => {
    const rng = new Rng(13);
    const x = randTensor([3, 1], rng);
    gradCheck((t) => T.expand(t, [3, 4]), [x], { what: 'expand [3,1]->[3,4]' });
    gradCheck((t) => T.expand(t, [2, 3, 5]), [x], { what: 'expand [3,1]->[2,3,5]' });
    const y = randTensor([1, 2, 1], rng);
    gradCheck((t) => T.expand(t, [4, 3, 2, 2]), [y], { what: 'expand [1,2,1]->[4,3,2,2]' });
    gradCheck((t) => T.mul(T.expand(t, [3, 3]), T.transpose(T.expand(t, [3, 3]))), [x], { what: 'expand used twice (outer product)' });
    const g = new Tensor(Float32Array.from([1, 2, 3]), [3, 1]).requireGrad();
    T.expand(g, [2, 3, 4]).backward(Tensor.ones([2, 3, 4]));
    assert.deepEqual(g.grad?.toArray(), [8, 8, 8]);
  });

  forEachBackend('concat gradient splits back, frozen parts get none', () => {
    const rng = new Rng(14);
    const a = randTensor([2, 3], rng);
    const b = randTensor([2, 1], rng);
    const c = randTensor([2, 2], rng);
    gradCheck((x, y, z) => T.concat([x, y, z], 1), [a, b, c], { what: 'concat axis 1' });
    gradCheck((x, y, z) => T.concat([T.transpose(x), T.transpose(y), T.transpose(z)], 0), [a, b, c], { what: 'concat of transposed, axis 0' });
    gradCheck((x, y, z) => T.concat([x, y, z], 1), [a, b, c], { wrt: [true, false, true], what: 'concat with frozen middle' });
    gradCheck((x) => T.concat([x, x], 0), [a], { what: 'concat of the same tensor twice' });
  });

  forEachBackend('a view of a leaf shares storage; writing through the leaf shows in the view', () => {
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = T.transpose(x);
    const s = T.slice(x, 1, 1, 3);
    (x.data as Float32Array)[1] = 42;
    assert.equal(v.toArray()[2], 42);
    assert.equal(s.toArray()[0], 42);
    const ref: Arr = { shape: [3, 2], data: Float64Array.from([1, 4, 42, 5, 3, 6]) };
    assertClose(v, ref, { ...exact, what: 'transposed view after write' });
  });
});
