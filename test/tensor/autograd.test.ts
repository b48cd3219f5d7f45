/**
 * The autograd engine (tensor.ts) on every backend: accumulation across backward() calls,
 * tensors used more than once, diamond graphs, noGrad, graph release vs retainGraph, detach,
 * frozen leaves, aliasing of gradient buffers, deep graphs, and error messages.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { Rng, assertClose, forEachBackend, gradCheck, randTensor } from '../helpers/numeric.js';
import { fromTensor, refMap } from '../helpers/reference.js';

/** The accumulated gradient as a plain array (undefined when none). */
function gradOf(t: Tensor): number[] | undefined {
  const g: Tensor | null = t.grad;
  return g?.toArray();
}

function leaf(values: number[], shape?: number[]): Tensor {
  return Tensor.from(values, shape).requireGrad();
}

describe('autograd engine', () => {
  forEachBackend('gradients accumulate across two backward() calls until reset', () => {
    const x = leaf([1, 2, 3]);
    T.sum(T.mul(x, 3)).backward();
    assert.deepEqual(gradOf(x), [3, 3, 3]);
    T.sum(T.mul(x, x)).backward();
    assert.deepEqual(gradOf(x), [5, 7, 9]);
    x.grad = null;
    T.sum(T.mul(x, 2)).backward();
    assert.deepEqual(gradOf(x), [2, 2, 2]);
  });

  forEachBackend('retainGraph keeps nodes so the same graph can be back-propagated twice', () => {
    const x = leaf([1, -2]);
    const h = T.mul(x, x);
    const y = T.sum(h);
    y.backward(undefined, true);
    assert.ok(y.node !== null && h.node !== null, 'nodes retained');
    y.backward(undefined, true);
    assert.deepEqual(gradOf(x), [4, -8]);
    y.backward();
    assert.deepEqual(gradOf(x), [6, -12]);
    assert.equal(y.node, null);
    assert.equal(h.node, null);
  });

  forEachBackend('backward releases every processed node (saved activations become garbage)', () => {
    const rng = new Rng(1);
    const x = randTensor([2, 3], rng).requireGrad();
    const w = randTensor([4, 3], rng).requireGrad();
    const a = T.linear(x, w);
    const b = T.tanh(a);
    const c = T.softmax(b);
    const loss = T.mean(c);
    for (const t of [a, b, c, loss]) assert.ok(t.node !== null);
    assert.equal(loss.node?.op, 'mean');
    loss.backward();
    for (const t of [a, b, c, loss]) assert.equal(t.node, null);
    assert.ok(x.grad !== null && w.grad !== null);
    assert.equal(x.node, null, 'leaves have no node');
  });

  forEachBackend('a tensor used twice: x*x, add(x, x), x used by two ops', () => {
    const x = leaf([1.5, -2, 0.25]);
    T.mul(x, x).backward(Tensor.ones([3]));
    assert.deepEqual(gradOf(x), [3, -4, 0.5]);
    const y = leaf([1, 2, 3]);
    T.add(y, y).backward(Float32Array.from([1, 2, 3]));
    assert.deepEqual(gradOf(y), [2, 4, 6]);
    const z = leaf([0.5, 1]);
    T.sum(T.add(T.exp(z), T.mul(z, 4))).backward();
    assertClose(z.grad ?? [], refMap(fromTensor(z), (v) => Math.exp(v) + 4), { rtol: 1e-6, atol: 1e-6, what: 'two consumers' });
    const rng = new Rng(2);
    gradCheck((t) => T.mul(t, t), [randTensor([3, 2], rng)], { what: 'x*x' });
    gradCheck((t) => T.add(t, t), [randTensor([3, 2], rng)], { what: 'add(x, x)' });
    gradCheck((t) => T.matmul(t, T.transpose(t)), [randTensor([3, 2], rng)], { what: 'x @ x^T' });
    gradCheck((t) => T.sub(t, t), [randTensor([2], rng)], { what: 'x - x' });
  });

  forEachBackend('diamond graphs and shared subexpressions', () => {
    const rng = new Rng(3);
    // x -> a -> (b, c) -> d: gradient reaches a from both paths before a's backward runs
    const diamond = (x: Tensor, w: Tensor): Tensor => {
      const a = T.matmul(x, w);
      const b = T.tanh(a);
      const c = T.mul(a, a);
      const d = T.add(T.mul(b, c), T.softmax(a));
      return T.sum(T.concat([d, a], 0), 0);
    };
    gradCheck(diamond, [randTensor([2, 3], rng), randTensor([3, 4], rng)], { what: 'diamond' });
    // a deeper lattice: each level combines the two previous
    gradCheck(
      (x) => {
        let p = x;
        let q = T.sigmoid(x);
        for (let i = 0; i < 5; i++) {
          const r = T.add(T.mul(p, 0.5), T.tanh(q));
          p = q;
          q = r;
        }
        return T.add(p, q);
      },
      [randTensor([4], rng)],
      { what: 'lattice' },
    );
    // manual check: y = (x+1)*(x+1) + (x+1) with a = x + 1 shared
    const x = leaf([2, -1]);
    const a = T.add(x, 1);
    T.add(T.mul(a, a), a).backward(Tensor.ones([2]));
    assert.deepEqual(gradOf(x), [7, 1]);
  });

  forEachBackend('noGrad records nothing, nests, restores on throw', () => {
    const x = leaf([1, 2]);
    const y = T.noGrad(() => T.mul(x, x));
    assert.equal(y.node, null);
    assert.equal(y.requiresGrad, false);
    assert.equal(T.isGradEnabled(), true);
    T.noGrad(() => {
      assert.equal(T.isGradEnabled(), false);
      T.noGrad(() => assert.equal(T.isGradEnabled(), false));
      assert.equal(T.isGradEnabled(), false);
      const z = T.softmax(T.matmul(T.reshape(x, [1, 2]), T.reshape(x, [2, 1])));
      assert.equal(z.node, null);
    });
    assert.equal(T.isGradEnabled(), true);
    assert.throws(() =>
      T.noGrad(() => {
        throw new Error('boom');
      }),
    );
    assert.equal(T.isGradEnabled(), true);
    assert.equal(T.noGrad(() => 42), 42);
    assert.throws(() => y.backward(Tensor.ones([2])), /does not require grad/);
  });

  forEachBackend('detach stops gradients and shares storage', () => {
    const x = leaf([1, 2, 3]);
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.data, x.data);
    T.sum(T.mul(d, x)).backward();
    assert.deepEqual(gradOf(x), [1, 2, 3], 'only the non-detached factor contributes');
    const h = T.mul(x, 2);
    const hd = h.detach();
    assert.equal(hd.node, null);
    assert.throws(() => T.sum(hd).backward(), /does not require grad/);
  });

  forEachBackend('leaves without requiresGrad get no grad; mixed graphs', () => {
    const rng = new Rng(4);
    const w = randTensor([3, 2], rng).requireGrad();
    const x = randTensor([4, 3], rng);
    const b = randTensor([2], rng);
    const y = T.add(T.matmul(x, w), b);
    assert.equal(y.requiresGrad, true);
    T.sum(y).backward();
    assert.equal(x.grad, null);
    assert.equal(b.grad, null);
    assert.ok(w.grad !== null);
    // an op on frozen inputs only records nothing
    const z = T.mul(x, 2);
    assert.equal(z.requiresGrad, false);
    assert.equal(z.node, null);
    const frozen = randTensor([2], rng).requireGrad(false);
    assert.equal(T.exp(frozen).node, null);
  });

  forEachBackend('gradient buffers never alias the caller gradient or each other', () => {
    const g = Float32Array.from([1, 2, 3]);
    const copy = g.slice();
    const a = leaf([1, 1, 1]);
    const b = leaf([2, 2, 2]);
    T.add(a, b).backward(g);
    assert.deepEqual(Array.from(g), Array.from(copy), 'caller gradient unchanged');
    assert.notEqual(a.grad?.data, g);
    assert.notEqual(b.grad?.data, g);
    assert.notEqual(a.grad?.data, b.grad?.data);
    (a.grad?.data as Float32Array)[0] = 100;
    assert.equal(gradOf(b)?.[0], 1);
    // leaf as root, and pass-through ops (reshape / contiguous) returning g itself
    const c = leaf([5, 6]);
    const gc = Float32Array.from([1, 1]);
    c.backward(gc);
    assert.notEqual(c.grad?.data, gc);
    const r = leaf([1, 2, 3, 4]);
    const gr = Tensor.ones([2, 2]);
    T.reshape(r, [2, 2]).backward(gr);
    T.reshape(r, [2, 2]).backward(gr);
    assert.deepEqual(gr.toArray(), [1, 1, 1, 1], 'gradient tensor unchanged after accumulation');
    assert.deepEqual(gradOf(r), [2, 2, 2, 2]);
    // gradient tensor given as a (non-contiguous) view
    const s = leaf([1, 2, 3, 4, 5, 6], [2, 3]);
    T.transpose(s).backward(T.transpose(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3])));
    assert.deepEqual(gradOf(s), [1, 2, 3, 4, 5, 6]);
  });

  forEachBackend('a deep chain (20000 ops) back-propagates without stack overflow', () => {
    const x = leaf([0.5]);
    let y = x;
    for (let i = 0; i < 20000; i++) y = T.add(y, 1e-4);
    T.sum(y).backward();
    assert.deepEqual(gradOf(x), [1]);
  });

  forEachBackend('backward errors mention the shapes', () => {
    const x = leaf([1, 2, 3]);
    const y = T.mul(x, 2);
    assert.throws(() => y.backward(), (e: Error) => e.message.includes('[3]') && e.message.includes('scalar'));
    assert.throws(() => y.backward(Float32Array.from([1, 2])), (e: Error) => e.message.includes('[3]') && e.message.includes('2 elements'));
    assert.throws(() => Tensor.from([1, 2]).backward(Float32Array.of(1, 1)), /does not require grad/);
    // op shape errors across the ops name both shapes
    const a = Tensor.zeros([2, 3]);
    const b = Tensor.zeros([3, 2]);
    for (const f of [() => T.add(a, b), () => T.matmul(a, a), () => T.concat([a, b], 0), () => T.linear(a, b)]) {
      assert.throws(f, (e: Error) => e.message.includes('[2, 3]'));
    }
  });

  forEachBackend('scalar loss from mean / crossEntropy / sum drives a small MLP to the numeric gradient', () => {
    const rng = new Rng(5);
    const x = randTensor([4, 3], rng);
    const targets = Int32Array.from([0, 2, 1, -100]);
    gradCheck(
      (w1, b1, w2) => {
        const h = T.gelu(T.linear(x, w1, b1));
        const logits = T.matmul(T.layerNorm(h, null, null), T.transpose(w2));
        return T.add(T.crossEntropy(logits, targets), T.mul(T.mean(T.square(w1)), 0.1));
      },
      [randTensor([5, 3], rng), randTensor([5], rng), randTensor([3, 5], rng)],
      { what: 'MLP loss' },
    );
  });
});
