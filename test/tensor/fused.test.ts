/**
 * Fused ops (ops/fused.ts) on every backend: softmax / logSoftmax (any axis, strided input,
 * large logits), rmsNorm, layerNorm (with and without w / b), embedding, indexSelect,
 * crossEntropy (ignore-index rows, every reduction), RoPE (neox rotate-half, partial rotary dim,
 * explicit inverse frequencies, KV-cache-like offsets). Forward vs float64 references, gradients
 * vs finite differences for every differentiable input.
 *
 * Tolerances: forward rtol 1e-5 / atol 1e-6 (softmax family, gathers exact), norms rtol 1e-4 /
 * atol 1e-5 (rsqrt of an f32 mean of squares), RoPE rtol 1e-5 / atol 2e-6 (f32 cos/sin tables);
 * gradients: gradCheck defaults (eps 1e-2, rtol 1e-2, atol 1e-3).
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { Rng, assertClose, forEachBackend, gradCheck, randInts, randTensor } from '../helpers/numeric.js';
import {
  fromTensor,
  refCrossEntropy,
  refEmbedding,
  refIndexSelect,
  refLayerNorm,
  refRmsNorm,
  refRope,
  refSoftmax,
  refTranspose,
} from '../helpers/reference.js';

describe('softmax / logSoftmax', () => {
  forEachBackend('forward on every axis, strided inputs, odd sizes, large and -Infinity logits', () => {
    const rng = new Rng(71);
    const tol = { rtol: 1e-5, atol: 1e-6 };
    for (const log of [false, true]) {
      const f = log ? T.logSoftmax : T.softmax;
      const name = log ? 'logSoftmax' : 'softmax';
      for (const shape of [[1], [7], [3, 1], [2, 3, 17], [4, 33]] as number[][]) {
        const x = randTensor(shape, rng, -4, 4);
        for (let ax = -shape.length; ax < shape.length; ax++) {
          assertClose(f(x, ax), refSoftmax(fromTensor(x), ax, log), { ...tol, what: `${name} [${shape.join(',')}] axis ${ax}` });
        }
      }
      const base = randTensor([5, 6], rng, -3, 3);
      const xt = T.transpose(base);
      assertClose(f(xt), refSoftmax(fromTensor(xt), -1, log), { ...tol, what: `${name} transposed` });
      const xs = T.slice(base, 1, 2, 5);
      assertClose(f(xs, 0), refSoftmax(fromTensor(xs), 0, log), { ...tol, what: `${name} sliced axis 0` });
      // numerically stable for huge logits; -Infinity entries get probability 0. log-softmax of
      // logits near 1000 is only defined to ~ulp(1000) = 6.1e-5 in f32 (x - lse cancels), so
      // the absolute tolerance there is 2 ulp of the largest logit.
      const big = Tensor.from([1000, 999, -1000, 0, 88, 89, 90, 91], [2, 4]);
      assertClose(f(big), refSoftmax(fromTensor(big), -1, log), { rtol: 1e-5, atol: log ? 1.25e-4 : 1e-6, what: `${name} large logits` });
      const ninf = Tensor.from([0, -Infinity, 1, -Infinity], [1, 4]);
      const y = f(ninf).toArray();
      const r = refSoftmax(fromTensor(ninf), -1, log).data;
      assertClose(y, r, { ...tol, what: `${name} with -Infinity` });
    }
    const p = T.softmax(randTensor([3, 9], rng, -5, 5));
    assertClose(T.sum(p, -1), [1, 1, 1], { rtol: 0, atol: 1e-6, what: 'softmax rows sum to 1' });
  });

  forEachBackend('gradients on last and inner axes, through views', () => {
    const rng = new Rng(72);
    const x = randTensor([2, 3, 4], rng, -2, 2);
    for (const log of [false, true]) {
      const f = log ? T.logSoftmax : T.softmax;
      for (const ax of [-1, 0, 1]) gradCheck((t) => f(t, ax), [x], { what: `${log ? 'logSoftmax' : 'softmax'} grad axis ${ax}` });
      gradCheck((t) => f(T.transpose(t, 0, 2)), [x], { what: `${log ? 'logSoftmax' : 'softmax'} grad transposed` });
    }
  });
});

describe('swiglu', () => {
  forEachBackend('swiglu = mul(silu(gate), up) bit for bit (values and gradients), float64 reference, finite differences', () => {
    const rng = new Rng(83);
    for (const shape of [[1], [7], [3, 9], [2, 5, 33]] as number[][]) {
      const gate = randTensor(shape, rng, -6, 6);
      const up = randTensor(shape, rng, -2, 2);
      const y = T.swiglu(gate, up);
      const gd = fromTensor(gate);
      const ud = fromTensor(up);
      const ref = { shape: gd.shape, data: gd.data.map((v, i) => (v / (1 + Math.exp(-v))) * ud.data[i]) };
      assertClose(y, ref, { rtol: 1e-5, atol: 1e-6, what: `swiglu [${shape.join(',')}]` });
      // same bits as the unfused ops, forward and backward (through a weighted sum)
      const w = randTensor(shape, rng);
      const grads = (f: (a: Tensor, b: Tensor) => Tensor): Float32Array[] => {
        const a = new Tensor(gate.f32().slice(), gate.shape);
        const b = new Tensor(up.f32().slice(), up.shape);
        a.requiresGrad = true;
        b.requiresGrad = true;
        const out = f(a, b);
        T.sum(T.mul(out, w)).backward();
        return [out.f32().slice(), (a.grad as Tensor).f32().slice(), (b.grad as Tensor).f32().slice()];
      };
      const fused = grads((a, b) => T.swiglu(a, b));
      const plain = grads((a, b) => T.mul(T.silu(a), b));
      for (let j = 0; j < 3; j++) {
        assert.deepEqual(new Uint32Array(fused[j].buffer), new Uint32Array(plain[j].buffer), `swiglu [${shape.join(',')}] ${['value', 'grad gate', 'grad up'][j]} bits`);
      }
    }
    gradCheck((a, b) => T.swiglu(a, b), [randTensor([3, 4], rng, -3, 3), randTensor([3, 4], rng)], { what: 'swiglu grad' });
    gradCheck((a, b) => T.swiglu(a, b), [randTensor([5], rng, -3, 3), randTensor([5], rng)], { wrt: [true, false], what: 'swiglu grad frozen up' });
    gradCheck((a, b) => T.swiglu(T.transpose(a), b), [randTensor([4, 3], rng, -3, 3), randTensor([3, 4], rng)], { what: 'swiglu grad transposed gate' });
    assert.throws(() => T.swiglu(randTensor([2, 3], rng), randTensor([3, 2], rng)), /differ in shape/);
  });
});

describe('rmsNorm / layerNorm', () => {
  forEachBackend('rmsNorm forward (odd widths, strided x, custom eps) and gradients for x and w', () => {
    const rng = new Rng(81);
    const tol = { rtol: 1e-4, atol: 1e-5 };
    for (const shape of [[1, 1], [3, 7], [2, 3, 33], [5]] as number[][]) {
      const cols = shape[shape.length - 1];
      const x = randTensor(shape, rng, -2, 2);
      const w = randTensor([cols], rng, 0.5, 1.5);
      assertClose(T.rmsNorm(x, w), refRmsNorm(fromTensor(x), fromTensor(w), 1e-6), { ...tol, what: `rmsNorm [${shape.join(',')}]` });
      assertClose(T.rmsNorm(x, w, 0.5), refRmsNorm(fromTensor(x), fromTensor(w), 0.5), { ...tol, what: `rmsNorm eps 0.5 [${shape.join(',')}]` });
    }
    const xt = T.transpose(randTensor([6, 4], rng));
    const w6 = randTensor([6], rng);
    assertClose(T.rmsNorm(xt, w6), refRmsNorm(fromTensor(xt), fromTensor(w6)), { ...tol, what: 'rmsNorm transposed x' });
    const x = randTensor([3, 5], rng);
    const w = randTensor([5], rng, 0.5, 1.5);
    gradCheck((a, b) => T.rmsNorm(a, b), [x, w], { what: 'rmsNorm grad' });
    gradCheck((a, b) => T.rmsNorm(T.transpose(a), b), [randTensor([3, 5], rng), randTensor([3], rng)], { what: 'rmsNorm grad transposed' });
    gradCheck((a, b) => T.rmsNorm(a, b), [x, w], { wrt: [true, false], what: 'rmsNorm grad frozen w' });
    gradCheck((a, b) => T.rmsNorm(a, b), [x, w], { wrt: [false, true], what: 'rmsNorm grad frozen x' });
    assert.throws(() => T.rmsNorm(x, Tensor.ones([4])), (e: Error) => e.message.includes('[4]') && e.message.includes('[3, 5]'));
  });

  forEachBackend('layerNorm forward with w / b / neither and gradients for x, w, b', () => {
    const rng = new Rng(82);
    const tol = { rtol: 1e-4, atol: 1e-5 };
    for (const shape of [[1, 2], [3, 7], [2, 2, 17]] as number[][]) {
      const cols = shape[shape.length - 1];
      const x = randTensor(shape, rng, -2, 2);
      const w = randTensor([cols], rng, 0.5, 1.5);
      const b = randTensor([cols], rng);
      for (const [wn, ww, bb] of [
        ['w+b', w, b],
        ['w', w, null],
        ['b', null, b],
        ['none', null, null],
      ] as [string, Tensor | null, Tensor | null][]) {
        assertClose(T.layerNorm(x, ww, bb), refLayerNorm(fromTensor(x), ww && fromTensor(ww), bb && fromTensor(bb), 1e-5), {
          ...tol,
          what: `layerNorm ${wn} [${shape.join(',')}]`,
        });
      }
      assertClose(T.layerNorm(x, w, b, 0.1), refLayerNorm(fromTensor(x), fromTensor(w), fromTensor(b), 0.1), { ...tol, what: 'layerNorm eps 0.1' });
    }
    const xs = T.slice(randTensor([3, 9], rng), 1, 2, 7);
    assertClose(T.layerNorm(xs, null, null), refLayerNorm(fromTensor(xs), null, null), { ...tol, what: 'layerNorm sliced x' });
    const x = randTensor([3, 4], rng, -2, 2);
    const w = randTensor([4], rng, 0.5, 1.5);
    const b = randTensor([4], rng);
    gradCheck((a, ww, bb) => T.layerNorm(a, ww, bb), [x, w, b], { what: 'layerNorm grad' });
    gradCheck((a, ww) => T.layerNorm(a, ww, null), [x, w], { what: 'layerNorm grad w only' });
    gradCheck((a, bb) => T.layerNorm(a, null, bb), [x, b], { what: 'layerNorm grad b only' });
    gradCheck((a) => T.layerNorm(T.transpose(a), null, null), [randTensor([4, 3], rng)], { what: 'layerNorm grad transposed, no params' });
    gradCheck((a, ww, bb) => T.layerNorm(a, ww, bb), [x, w, b], { wrt: [false, true, true], what: 'layerNorm grad frozen x' });
    gradCheck((a, ww, bb) => T.layerNorm(a, ww, bb), [x, w, b], { wrt: [true, false, true], what: 'layerNorm grad frozen w' });
    assert.throws(() => T.layerNorm(x, Tensor.ones([3]), null), (e: Error) => e.message.includes('[3]'));
  });
});

describe('embedding / indexSelect', () => {
  forEachBackend('embedding: ids of any shape (Tensor or Int32Array), repeated ids scatter-add', () => {
    const rng = new Rng(91);
    const table = randTensor([6, 5], rng);
    const ids = randInts([2, 3], rng, 0, 5);
    const y = T.embedding(ids, table);
    assert.deepEqual(y.shape, [2, 3, 5]);
    assertClose(y, refEmbedding(ids.i32(), [2, 3], fromTensor(table)), { rtol: 0, atol: 0, what: 'embedding [2,3]' });
    const raw = Int32Array.from([5, 0, 5, 5]);
    assertClose(T.embedding(raw, table), refEmbedding(raw, [4], fromTensor(table)), { rtol: 0, atol: 0, what: 'embedding Int32Array' });
    gradCheck((t) => T.embedding(raw, t), [table], { what: 'embedding grad (repeated ids)' });
    gradCheck((t) => T.embedding(ids, t), [table], { what: 'embedding grad [2,3] ids' });
    const tl = table.clone().requireGrad();
    T.embedding(raw, tl).backward(Tensor.ones([4, 5]));
    assert.deepEqual(tl.grad?.toArray().filter((_, i) => i % 5 === 0), [1, 0, 0, 0, 0, 3]);
    assert.throws(() => T.embedding(Int32Array.from([0, 6]), table), /index 6 at position 1 is out of range \[0, 6\)/);
    assert.throws(() => T.embedding(Int32Array.from([-1]), table), /out of range/);
    assert.throws(() => T.embedding(raw, Tensor.zeros([6])), (e: Error) => e.message.includes('[6]'));
  });

  forEachBackend('indexSelect on every axis, strided input, repeated indices', () => {
    const rng = new Rng(92);
    const x = randTensor([4, 3, 5], rng);
    for (let ax = 0; ax < 3; ax++) {
      const n = x.shape[ax];
      const idx = Int32Array.from([n - 1, 0, n - 1, 1]);
      assertClose(T.indexSelect(x, ax, idx), refIndexSelect(fromTensor(x), ax, idx), { rtol: 0, atol: 0, what: `indexSelect axis ${ax}` });
      assertClose(T.indexSelect(x, ax - 3, new Tensor(idx, [4])), refIndexSelect(fromTensor(x), ax, idx), { rtol: 0, atol: 0, what: `indexSelect axis ${ax - 3}` });
      gradCheck((t) => T.indexSelect(t, ax, idx), [x], { what: `indexSelect grad axis ${ax}` });
    }
    const xt = T.transpose(x, 0, 2);
    const idx = Int32Array.from([2, 2, 0]);
    assertClose(T.indexSelect(xt, 1, idx), refIndexSelect(refTranspose(fromTensor(x), 0, 2), 1, idx), { rtol: 0, atol: 0, what: 'indexSelect transposed' });
    gradCheck((t) => T.indexSelect(T.transpose(t, 0, 2), 1, idx), [x], { what: 'indexSelect grad transposed' });
    assert.throws(() => T.indexSelect(x, 1, Int32Array.from([3])), /out of range \[0, 3\)/);
  });
});

describe('crossEntropy', () => {
  forEachBackend('all reductions with ignore-index rows, [B,T,C] logits, strided logits', () => {
    const rng = new Rng(101);
    const tol = { rtol: 1e-5, atol: 1e-5 };
    const logits = randTensor([2, 3, 7], rng, -3, 3);
    const targets = Int32Array.from([3, -100, 6, 0, -100, 2]);
    for (const red of ['mean', 'sum', 'none'] as const) {
      const y = T.crossEntropy(logits, targets, { reduction: red });
      assert.deepEqual(y.shape, red === 'none' ? [2, 3] : []);
      assertClose(y, refCrossEntropy(fromTensor(logits), targets, -100, red), { ...tol, what: `crossEntropy ${red}` });
      gradCheck((t) => T.crossEntropy(t, targets, { reduction: red }), [logits], { what: `crossEntropy grad ${red}` });
    }
    // default reduction is mean over non-ignored rows; targets as an i32 tensor
    const tt = new Tensor(targets, [2, 3]);
    assertClose(T.crossEntropy(logits, tt), refCrossEntropy(fromTensor(logits), targets, -100, 'mean'), { ...tol, what: 'crossEntropy default' });
    // custom ignore index (a valid class id is then a normal target, -100 would be out of range)
    const t2 = Int32Array.from([3, 0, 6, 0, 5, 2]);
    for (const red of ['mean', 'sum', 'none'] as const) {
      assertClose(T.crossEntropy(logits, t2, { ignoreIndex: 0, reduction: red }), refCrossEntropy(fromTensor(logits), t2, 0, red), {
        ...tol,
        what: `crossEntropy ignoreIndex 0 ${red}`,
      });
      gradCheck((t) => T.crossEntropy(t, t2, { ignoreIndex: 0, reduction: red }), [logits], { what: `crossEntropy grad ignoreIndex 0 ${red}` });
    }
    // ignored rows get exactly zero gradient
    const l = logits.clone().requireGrad();
    T.crossEntropy(l, targets).backward();
    const g = l.grad?.toArray() ?? [];
    for (const r of [1, 4]) for (let j = 0; j < 7; j++) assert.equal(g[r * 7 + j], 0, `ignored row ${r} gradient`);
    // strided logits: transposed [C, N] -> [N, C]
    const lt = T.transpose(randTensor([5, 4], rng));
    const t3 = Int32Array.from([4, 0, 2, 1]);
    assertClose(T.crossEntropy(lt, t3), refCrossEntropy(fromTensor(lt), t3), { ...tol, what: 'crossEntropy transposed logits' });
    gradCheck((t) => T.crossEntropy(T.transpose(t), t3, { reduction: 'sum' }), [randTensor([5, 4], rng)], { what: 'crossEntropy grad transposed logits' });
    // stable for large logits
    const big = Tensor.from([1000, 0, -1000, 500, 501, 502], [2, 3]);
    assertClose(T.crossEntropy(big, Int32Array.from([1, 2]), { reduction: 'none' }), refCrossEntropy(fromTensor(big), [1, 2], -100, 'none'), { ...tol, what: 'crossEntropy large logits' });
  });

  forEachBackend('all rows ignored: mean is 0 with zero gradient; errors for bad targets', () => {
    const rng = new Rng(102);
    const logits = randTensor([3, 4], rng);
    const ign = Int32Array.from([-100, -100, -100]);
    const y = T.crossEntropy(logits, ign);
    assert.equal(y.item(), 0);
    assert.equal(T.crossEntropy(logits, ign, { reduction: 'sum' }).item(), 0);
    const l = logits.clone().requireGrad();
    T.crossEntropy(l, ign).backward();
    assert.ok(l.grad?.toArray().every((v) => v === 0));
    assert.throws(() => T.crossEntropy(logits, Int32Array.from([0, 4, 1])), /target 4 at row 1 is out of range \[0, 4\)/);
    assert.throws(() => T.crossEntropy(logits, Int32Array.from([0, 1])), (e: Error) => e.message.includes('[3, 4]'));
  });
});

describe('rope', () => {
  forEachBackend('neox rotate-half vs float64 cos/sin: full / partial rotary dim, theta, invFreq, large positions', () => {
    const rng = new Rng(111);
    const tol = { rtol: 1e-5, atol: 2e-6 };
    const x = randTensor([2, 3, 2, 8], rng); // [B, T, H, D]
    const pos = Int32Array.from([0, 1, 2, 5, 6, 7]);
    assertClose(T.rope(x, pos), refRope(fromTensor(x), pos, 10000), { ...tol, what: 'rope default' });
    assertClose(T.rope(x, new Tensor(pos, [2, 3])), refRope(fromTensor(x), pos, 10000), { ...tol, what: 'rope positions tensor' });
    assertClose(T.rope(x, pos, { theta: 500000 }), refRope(fromTensor(x), pos, 500000), { ...tol, what: 'rope theta 5e5' });
    assertClose(T.rope(x, pos, { rotaryDim: 4 }), refRope(fromTensor(x), pos, 10000, 4), { ...tol, what: 'rope rotaryDim 4' });
    assertClose(T.rope(x, pos, { rotaryDim: 0 }), fromTensor(x), { rtol: 0, atol: 0, what: 'rope rotaryDim 0 is identity' });
    const inv = Float32Array.from([1, 0.25, 0.01, 0.001]);
    assertClose(T.rope(x, pos, { invFreq: inv }), refRope(fromTensor(x), pos, 10000, 8, inv), { ...tol, what: 'rope invFreq' });
    // positions beyond the cached table size (cache regrows)
    const far = Int32Array.from([4095, 100, 3, 70000, 64, 65]);
    assertClose(T.rope(x, far), refRope(fromTensor(x), far, 10000), { rtol: 1e-5, atol: 2e-5, what: 'rope large positions' });
    // position 0 is the identity
    const p0 = new Int32Array(6);
    assertClose(T.rope(x, p0), fromTensor(x), { rtol: 0, atol: 0, what: 'rope at position 0' });
    // strided input: [B, H, T, D] transposed to [B, T, H, D]
    const xh = T.transpose(randTensor([2, 2, 3, 8], rng), 1, 2);
    assertClose(T.rope(xh, pos), refRope(fromTensor(xh), pos, 10000), { ...tol, what: 'rope transposed input' });
    // odd head dim with partial rotation; single token
    const xo = randTensor([1, 3, 5], rng);
    assertClose(T.rope(xo, Int32Array.of(9), { rotaryDim: 2 }), refRope(fromTensor(xo), [9], 10000, 2), { ...tol, what: 'rope odd D' });
    // rotation preserves the norm of each rotated pair
    const y = T.rope(x, pos).toArray();
    const xv = x.toArray();
    let nx = 0;
    let ny = 0;
    for (let i = 0; i < xv.length; i++) {
      nx += xv[i] ** 2;
      ny += y[i] ** 2;
    }
    assert.ok(Math.abs(nx - ny) < 1e-4 * nx, 'rope preserves norm');
  });

  forEachBackend('ropeHeads = permute(rope(x), [0, 2, 1, 3]) bit for bit, values and gradients; finite differences', () => {
    const rng = new Rng(112);
    for (const [shape, rotaryDim] of [
      [[2, 3, 2, 8], 8],
      [[1, 5, 3, 6], 4],
      [[3, 1, 2, 4], 4],
    ] as [number[], number][]) {
      const [Bn, Tn] = shape;
      const pos = Int32Array.from({ length: Bn * Tn }, (_, i) => (i * 7) % 13);
      const x0 = randTensor(shape, rng);
      const w = randTensor([shape[0], shape[2], shape[1], shape[3]], rng);
      const run = (f: (x: Tensor) => Tensor): Float32Array[] => {
        const x = new Tensor(x0.f32().slice(), x0.shape);
        x.requiresGrad = true;
        const y = f(x);
        T.sum(T.mul(y, w)).backward();
        return [T.contiguous(y).f32().slice(), (x.grad as Tensor).f32().slice()];
      };
      const a = run((x) => T.ropeHeads(x, pos, { rotaryDim }));
      const b = run((x) => T.permute(T.rope(x, pos, { rotaryDim }), [0, 2, 1, 3]));
      assert.deepEqual(new Uint32Array(a[0].buffer), new Uint32Array(b[0].buffer), `ropeHeads [${shape.join(',')}] values`);
      assert.deepEqual(new Uint32Array(a[1].buffer), new Uint32Array(b[1].buffer), `ropeHeads [${shape.join(',')}] gradient`);
      assert.deepEqual(T.ropeHeads(x0, pos, { rotaryDim }).shape, [shape[0], shape[2], shape[1], shape[3]]);
      gradCheck((x) => T.ropeHeads(x, pos, { rotaryDim }), [x0], { what: `ropeHeads grad [${shape.join(',')}]` });
    }
    assert.throws(() => T.ropeHeads(randTensor([3, 2, 4], rng), new Int32Array(3)), /expected \[B, T, heads, headDim\]/);
  });

  forEachBackend('ropeTables: cos/sin of p * theta^(-2i/d) in float64, grown on demand, invFreq respected', () => {
    const t1 = T.ropeTables(6, 1234, 10);
    const h = 3;
    const n = t1.cos.length / h;
    assert.ok(n >= 10);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < h; i++) {
        const a = p * Math.pow(1234, (-2 * i) / 6);
        assert.equal(t1.cos[p * h + i], Math.fround(Math.cos(a)));
        assert.equal(t1.sin[p * h + i], Math.fround(Math.sin(a)));
      }
    }
    const t2 = T.ropeTables(6, 1234, n + 100);
    assert.ok(t2.cos.length / h >= n + 100, 'table grows');
    assert.equal(t2.cos[(n + 50) * h + 1], Math.fround(Math.cos((n + 50) * Math.pow(1234, -2 / 6))));
    assert.equal(T.ropeTables(6, 1234, 5), t2, 'a large enough cached table is reused');
    const inv = Float32Array.from([0.5, 0.25]);
    const t3 = T.ropeTables(4, 1234, 8, inv);
    assert.equal(t3.sin[3 * 2 + 1], Math.fround(Math.sin(3 * 0.25)));
  });

  forEachBackend('gradient (inverse rotation) and errors', () => {
    const rng = new Rng(112);
    const x = randTensor([3, 2, 4], rng);
    const pos = Int32Array.from([3, 0, 11]);
    gradCheck((t) => T.rope(t, pos), [x], { what: 'rope grad' });
    gradCheck((t) => T.rope(t, pos, { rotaryDim: 2, theta: 100 }), [x], { what: 'rope grad partial' });
    gradCheck((t) => T.rope(T.transpose(t, 0, 1), Int32Array.from([1, 2]), { theta: 10 }), [x], { what: 'rope grad transposed' });
    assert.throws(() => T.rope(x, Int32Array.from([1, 2])), /2 positions for 3 tokens/);
    assert.throws(() => T.rope(x, pos, { rotaryDim: 3 }), /even/);
    assert.throws(() => T.rope(x, Int32Array.from([1, -1, 0])), /negative position/);
    assert.throws(() => T.rope(Tensor.zeros([4]), Int32Array.of(0)), (e: Error) => e.message.includes('[4]'));
  });
});
