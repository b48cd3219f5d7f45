/**
 * The gradient buffer pool (src/tensor/pool.ts) and BackwardOptions.freeActivations: recycled
 * buffers come back zeroed, are handed out once, are recycled at all, and a model's gradients
 * over several steps with recycling equal (bit for bit) those of a run without it.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { allocF32, clearPool, pooledSize, releaseF32 } from '../../src/tensor/pool.js';
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
});
