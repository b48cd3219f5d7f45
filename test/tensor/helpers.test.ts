/**
 * Self-tests of the numeric test helpers: a checker that cannot fail proves nothing, so these
 * show that gradCheck catches a wrong backward, assertClose names the worst element, the PRNG is
 * deterministic, and the float64 references are accurate where exact values are known.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor, record } from '../../src/tensor/index.js';
import { Rng, assertClose, gradCheck, randTensor, stridedValues } from '../helpers/numeric.js';
import { erf64, erfc64, fromTensor, refAttention, refMatmul, refSoftmax, arr } from '../helpers/reference.js';

describe('numeric helpers', () => {
  test('Rng is deterministic per seed and spans its range', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    assert.deepEqual(
      xs.slice(0, 5),
      Array.from({ length: 5 }, () => b.next()),
    );
    assert.notEqual(xs[0], c.next());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.ok(Math.min(...xs) < 0.01 && Math.max(...xs) > 0.99);
    const ints = Array.from({ length: 200 }, () => a.int(2, 4));
    assert.deepEqual([...new Set(ints)].sort(), [2, 3, 4]);
  });

  test('randTensor is never all zeros, even for a degenerate range', () => {
    const rng = new Rng(1);
    assert.ok(randTensor([1], rng, 0, 0).toArray()[0] !== 0);
    const t = randTensor([3, 4], rng, 2, 3);
    assert.ok(t.toArray().every((v) => v >= 2 && v < 3));
  });

  test('assertClose reports the worst index and the count of failures', () => {
    const a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    assert.throws(
      () => assertClose(a, [1, 2, 3.001, 4, 5.5, 6], { rtol: 1e-6, atol: 1e-6, what: 'demo' }),
      (e: Error) => e.message.includes('demo') && e.message.includes('2 of 6') && e.message.includes('[1, 1]') && e.message.includes('flat 4'),
    );
    assert.throws(() => assertClose([NaN], [1]), /not close/);
    assert.throws(() => assertClose([Infinity], [-Infinity]), /not close/);
    assertClose([NaN, -Infinity], [NaN, -Infinity]);
    assert.throws(() => assertClose(a, arr([3, 2], [1, 2, 3, 4, 5, 6])), /shape \[2, 3\] differs from expected \[3, 2\]/);
    assertClose(a, [1, 2, 3, 4, 5, 6 + 1e-6], { rtol: 1e-6, atol: 0 });
  });

  test('stridedValues reads views through strides and offset', () => {
    const x = Tensor.from([0, 1, 2, 3, 4, 5], [2, 3]);
    assert.deepEqual(Array.from(stridedValues(T.transpose(x))), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(Array.from(stridedValues(T.slice(x, 1, 1, 3))), [1, 2, 4, 5]);
    assert.deepEqual(Array.from(stridedValues(T.expand(T.slice(x, 0, 1, 2), [2, 3]))), [3, 4, 5, 3, 4, 5]);
  });

  test('gradCheck passes a correct backward and catches a wrong one', () => {
    const rng = new Rng(3);
    const x = randTensor([2, 3], rng);
    const cube = (scale: number) => (t: Tensor): Tensor => {
      const xd = t.f32();
      const out = new Float32Array(xd.length);
      for (let i = 0; i < xd.length; i++) out[i] = xd[i] ** 3;
      return record(new Tensor(out, t.shape), 'cube', [t], (g) => {
        const gx = new Float32Array(g.length);
        for (let i = 0; i < g.length; i++) gx[i] = scale * 3 * xd[i] * xd[i] * g[i];
        return [gx];
      });
    };
    gradCheck(cube(1), [x]);
    assert.throws(() => gradCheck(cube(1.05), [x], { what: 'wrong cube' }), /wrong cube \(input 0\)/);
    // a backward that forgets an input
    const forget = (a: Tensor, b: Tensor): Tensor => record(new Tensor(Float32Array.from(a.f32(), (v, i) => v * b.f32()[i]), a.shape), 'bad', [a, b], (g) => [Float32Array.from(g, (v, i) => v * b.f32()[i]), null]);
    assert.throws(() => gradCheck(forget, [x, x]), /input 1 received no gradient/);
    // a frozen input that nevertheless gets a gradient is reported
    assert.throws(() => gradCheck((a) => a, [x], { wrt: [false] }), /does not require grad/);
  });

  test('float64 references: erf, softmax, matmul, attention on known values', () => {
    // erf reference values (Abramowitz & Stegun / high-precision tables)
    const known: [number, number][] = [
      [0, 0],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [3.5, 0.9999992569016276],
      [5, 0.9999999999984626],
    ];
    for (const [x, y] of known) {
      assert.ok(Math.abs(erf64(x) - y) < 1e-14, `erf(${x})`);
      assert.ok(Math.abs(erf64(-x) + y) < 1e-14, `erf(${-x})`);
    }
    // erfc deep in the tail without cancellation: erfc(5) = 1.5374597944280349e-12, erfc(10) = 2.088487583762545e-45
    assert.ok(Math.abs(erfc64(5) / 1.5374597944280349e-12 - 1) < 1e-12);
    assert.ok(Math.abs(erfc64(10) / 2.088487583762545e-45 - 1) < 1e-12);
    assert.ok(Math.abs(erfc64(-1) - 1.8427007929497148) < 1e-15);
    assertClose(refSoftmax(arr([1, 2], [0, Math.log(3)])), [0.25, 0.75], { rtol: 1e-15, atol: 0 });
    assertClose(refMatmul(arr([2, 2], [1, 2, 3, 4]), arr([2, 1], [5, 6])), arr([2, 1], [17, 39]), { rtol: 0, atol: 0 });
    // one query, two equal-score keys -> mean of the values; causal hides the second
    const q = arr([1, 1, 1, 2], [0, 0]);
    const k = arr([1, 1, 2, 2], [1, 2, 3, 4]);
    const v = arr([1, 1, 2, 2], [1, 10, 3, 20]);
    assertClose(refAttention(q, k, v), [2, 15], { rtol: 1e-15, atol: 0 });
    assertClose(refAttention(q, k, v, { causal: true, qPos: [0] }), [1, 10], { rtol: 0, atol: 0 });
    assertClose(refAttention(q, k, v, { mask: [0, 0] }), [0, 0], { rtol: 0, atol: 0 });
    assert.deepEqual(fromTensor(T.transpose(Tensor.from([1, 2, 3, 4], [2, 2]))).data, Float64Array.from([1, 3, 2, 4]));
  });
});
