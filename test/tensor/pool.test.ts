/**
 * The gradient buffer pool (src/tensor/pool.ts) and BackwardOptions.freeActivations: recycled
 * buffers come back zeroed, are handed out once, are recycled at all, and a model's gradients
 * over several steps with recycling equal (bit for bit) those of a run without it; the ops that
 * take unzeroed buffers (allocF32(n, false)) write every element of them (NaN-poisoned buffers
 * change no bit of the results); gradients that several inputs share are recycled too.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { HUGE_MIN_FLOATS, allocF32, clearPool, freshF32, poisonUnzeroedF32, pooledSize, releaseF32 } from '../../src/tensor/pool.js';
import { Rng, forEachBackend, randTensor } from '../helpers/numeric.js';

/** A small residual MLP with attention-free mixing, every op family of the hot path. */
function lossOf(x: Tensor, w1: Tensor, w2: Tensor, g: Tensor): Tensor {
  const h = T.rmsNorm(x, g, 1e-6);
  const a = T.silu(T.linear(h, w1));
  const b = T.mul(a, T.linear(h, w1));
  const y = T.add(x, T.linear(b, w2));
  const z = T.permute(T.reshape(y, [2, 3, 2, 4]), [0, 2, 1, 3]);
  return T.sum(T.mul(T.contiguous(z), T.contiguous(z)));
}

describe('buffer pool', () => {
  forEachBackend('released arrays come back zeroed and once', () => {
    clearPool();
    const a = allocF32(1000);
    a.fill(7);
    releaseF32(a);
    releaseF32(a); // a second release is ignored
    assert.equal(pooledSize(), 1000);
    const b = allocF32(1000);
    const c = allocF32(1000);
    assert.equal(b, a);
    assert.notEqual(c, a);
    assert.ok(b.every((v) => v === 0));
    releaseF32(new Float32Array(5)); // not from the pool: ignored
    assert.equal(pooledSize(), 0);
  });

  forEachBackend('gradients with and without freeActivations are identical over steps, and buffers are reused', () => {
    const rng = new Rng(5);
    const x0 = randTensor([2, 3, 8], rng);
    const w1 = randTensor([16, 8], rng).requireGrad();
    const w2 = randTensor([8, 16], rng).requireGrad();
    const g = randTensor([8], rng).requireGrad();
    const run = (free: boolean): number[][] => {
      const out: number[][] = [];
      for (let s = 0; s < 3; s++) {
        for (const p of [w1, w2, g]) p.grad = null;
        const x = T.mul(x0, 1 + s); // a new input each step
        lossOf(x, w1, w2, g).backward(undefined, false, { freeActivations: free });
        for (const p of [w1, w2, g]) out.push((p.grad as Tensor).toArray());
      }
      return out;
    };
    clearPool();
    const plain = run(false);
    const recycled = run(true);
    assert.ok(pooledSize() > 0, 'nothing was recycled');
    assert.deepEqual(recycled, plain);
    // a leaf's gradient is never recycled: it stays valid after more steps
    const keep = (w1.grad as Tensor).toArray();
    const keepRef = w1.grad as Tensor;
    w1.grad = null;
    run(true);
    assert.deepEqual(keepRef.toArray(), keep);
  });

  forEachBackend('gradients handed to several inputs (add [g, g]) are recycled once the last one is done with them', () => {
    const rng = new Rng(7);
    const x0 = randTensor([4, 8], rng);
    const w0 = randTensor([8, 8], rng);
    const run = (free: boolean): number[][] => {
      const x = Tensor.from(x0.toArray(), x0.shape).requireGrad();
      const w = Tensor.from(w0.toArray(), w0.shape).requireGrad();
      // a residual stream: h feeds a branch and the add, so its gradient arrives twice (the
      // second time into a copy of the first); add gives one array to both inputs; add(h, h)
      // gives one array twice to the same input; the leaf x takes a jointly held gradient
      let h = T.mul(x, 1.5);
      for (let l = 0; l < 3; l++) h = T.add(h, T.linear(T.silu(h), w));
      h = T.add(h, h);
      const loss = T.sum(T.mul(T.add(h, x), h));
      loss.backward(undefined, false, { freeActivations: free });
      return [(x.grad as Tensor).toArray(), (w.grad as Tensor).toArray()];
    };
    clearPool();
    const prev = poisonUnzeroedF32(null);
    try {
      const plain = run(false);
      poisonUnzeroedF32(Number.NaN);
      clearPool();
      const first = run(true);
      const pooledAfter = pooledSize();
      const second = run(true); // on the recycled (poisoned) buffers
      assert.deepEqual(first, plain);
      assert.deepEqual(second, plain);
      // 17 arrays of 4 x 8 floats come back; before, every array that add handed to two inputs
      // was left to the GC and 12 came back (384 floats)
      assert.ok(pooledAfter >= 17 * 32, `only ${pooledAfter} floats recycled`);
      assert.equal(pooledSize(), pooledAfter, 'the second step allocated beyond the recycled arrays');
    } finally {
      poisonUnzeroedF32(prev);
    }
  });

  forEachBackend('ops on unzeroed buffers write every element: NaN-poisoned buffers change no bit', () => {
    const rng = new Rng(11);
    const x0 = randTensor([2, 6, 8], rng);
    const w = randTensor([8, 8], rng);
    const g0 = randTensor([8], rng);
    const b0 = randTensor([8], rng);
    const table0 = randTensor([10, 8], rng);
    const den0 = T.affine(randTensor([2, 6, 8], rng), 0.5, 2); // in [1.5, 2.5]: no division by ~0
    const ids = new Int32Array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]);
    const targets = new Int32Array([1, 7, -100, 0, 2, 2, 5, 6, 3, 3, 4, 1]);
    const pos = Int32Array.from({ length: 12 }, (_, i) => i % 6);
    const run = (): number[][] => {
      const leaves = [x0, w, g0, b0, table0, den0].map((t) => Tensor.from(t.toArray(), t.shape).requireGrad());
      const [x, wl, g, b, table, den] = leaves;
      let h = T.rmsNorm(x, g, 1e-6); // rmsNorm gx
      h = T.add(h, T.reshape(T.embedding(ids, table), [2, 6, 8])); // gather out, scatter gradient
      h = T.mul(T.silu(T.linear(h, wl)), h); // mul: both gradients (mulRaw), unary gx
      h = T.sub(T.div(h, den), T.scale(den, 0.25)); // div both sides, sub (negated gradient), affine
      h = T.layerNorm(h, g, b, 1e-5); // layerNorm out, gx (gw, gb accumulate)
      h = T.add(h, b); // broadcast: sumToShape of the gradient
      const q = T.rope(T.reshape(h, [2, 6, 2, 4]), pos); // rope out and gx
      const qh = T.permute(q, [0, 2, 1, 3]); // permute gradient (copyStrided)
      const kv = T.contiguous(qh);
      const att = T.attention(qh, kv, kv, { causal: true, window: 4 }); // attention out
      const a2 = T.reshape(T.permute(att, [0, 2, 1, 3]), [2, 6, 8]);
      const c = T.concat([a2, T.pow(a2, 2), T.pow(a2, 0)], 2); // concat out and gradients, pow
      const sm = T.mul(T.softmax(c), T.logSoftmax(c)); // softmax / logSoftmax out and gx
      const sel = T.where(T.gt(sm, 0), sm, T.exp(sm)); // where out
      const logits = T.linear(T.reshape(T.indexSelect(sel, 2, new Int32Array([0, 3, 5, 7, 9, 11, 13, 15])), [12, 8]), wl);
      const ce = T.crossEntropy(logits, targets); // crossEntropy gx
      const loss = T.add(T.add(ce, T.mean(T.sum(sel, [0, 2]))), T.sum(T.mul(logits, logits)));
      loss.backward(undefined, false, { freeActivations: true });
      return [loss.toArray(), ...leaves.map((l) => (l.grad as Tensor).toArray())];
    };
    clearPool();
    const prev = poisonUnzeroedF32(null);
    try {
      const plain = run();
      poisonUnzeroedF32(Number.NaN);
      const poisoned = run();
      run(); // again, on recycled (poisoned) buffers
      const again = run();
      for (const r of [poisoned, again]) {
        for (const a of r) assert.ok(a.every((v) => Number.isFinite(v)), 'a NaN from an unzeroed buffer reached the results');
        assert.deepEqual(r, plain);
      }
    } finally {
      poisonUnzeroedF32(prev);
    }
  });
});

describe('huge-page arrays (freshF32)', () => {
  forEachBackend('large fresh arrays are zeroed, writable, recyclable; small ones plain', () => {
    const n = 3 * HUGE_MIN_FLOATS + 12345; // whole 2 MiB pages and a 4 KiB-page tail
    const a = freshF32(n);
    assert.equal(a.length, n);
    assert.equal(a.byteOffset, 0);
    assert.equal(a.buffer.byteLength, 4 * n);
    assert.ok(a.every((v) => v === 0));
    a.fill(3);
    a[n - 1] = 5;
    assert.equal(a[0] + a[n - 1], 8);
    assert.equal(freshF32(1000).length, 1000);
    // allocF32 takes its fresh arrays from freshF32; a released one comes back zeroed
    clearPool();
    const b = allocF32(n);
    b.fill(2);
    releaseF32(b);
    const c = allocF32(n);
    assert.equal(c, b);
    assert.ok(c.every((v) => v === 0));
    clearPool();
  });
});
