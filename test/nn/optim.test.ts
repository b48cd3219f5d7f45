import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor } from '../../src/tensor/index.js';
import {
  AdamW,
  ParamStore,
  SGD,
  clipCoefficient,
  clipGradNorm,
  constantLr,
  cosineLr,
  gradNorm,
  isNoDecayParam,
  linearLr,
  makeSchedule,
  nonFiniteGrads,
  type AdamWStateMeta,
} from '../../src/nn/index.js';
import { assertClose, forEachBackend } from '../helpers/numeric.js';

function param(store: ParamStore, name: string, values: number[], shape: number[]): Tensor {
  return store.add(name, Tensor.from(Float32Array.from(values), shape));
}

function setGrad(t: Tensor, values: number[]): void {
  t.grad = Tensor.from(Float32Array.from(values), t.shape);
}

/** PyTorch AdamW (torch/optim/adamw.py, single-tensor path) in float64 for one tensor. */
function refAdamW(
  p: Float64Array,
  grads: number[][],
  o: { lr: number[]; b1: number; b2: number; eps: number; wd: number },
): Float64Array {
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const x = p.slice();
  grads.forEach((g, s) => {
    const t = s + 1;
    const lr = o.lr[s];
    for (let i = 0; i < x.length; i++) {
      x[i] *= 1 - lr * o.wd; // param.mul_(1 - lr * weight_decay)
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i]; // exp_avg.lerp_(grad, 1 - beta1)
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const bc1 = 1 - Math.pow(o.b1, t);
      const bc2 = 1 - Math.pow(o.b2, t);
      const stepSize = lr / bc1;
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps;
      x[i] -= (stepSize * m[i]) / denom;
    }
  });
  return x;
}

forEachBackend('AdamW: three steps match a float64 transcription of PyTorch AdamW (bias correction, decoupled decay)', () => {
  const store = new ParamStore();
  const p0 = [0.5, -1.25, 2, 0.001, -0.3, 0.75];
  const w = param(store, 'w', p0, [2, 3]);
  const grads = [
    [0.1, -0.2, 0.3, 1e-4, -5, 0.02],
    [0.05, 0.4, -0.3, 2e-4, -4, 0.0],
    [-0.2, 0.1, 0.1, -1e-4, 3, 0.5],
  ];
  const lrs = [0.1, 0.05, 0.02];
  const opt = new AdamW(store, { lr: lrs[0], betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
  grads.forEach((g, s) => {
    setGrad(w, g);
    opt.step(lrs[s]);
  });
  const ref = refAdamW(Float64Array.from(p0), grads, { lr: lrs, b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.1 });
  assertClose(w, ref, { rtol: 2e-6, atol: 1e-7, what: 'adamw params' });
  assert.equal(opt.stepCount, 3);
  // first step has |update| = lr for each coordinate (m_hat / sqrt(v_hat) = sign(g)) plus decay
  const s2 = new ParamStore();
  const u = param(s2, 'u', [1, 1], [2]);
  setGrad(u, [3, -0.5]);
  new AdamW(s2, { lr: 0.01, weightDecay: 0.5 }).step();
  assertClose(u, [1 * (1 - 0.005) - 0.01, 1 * (1 - 0.005) + 0.01], { rtol: 1e-6, atol: 1e-7 });
});

forEachBackend('AdamW: groups, no-decay predicate, frozen and grad-less parameters', () => {
  const store = new ParamStore();
  const w = param(store, 'enc.w', [1, 2, 3, 4], [2, 2]);
  const b = param(store, 'enc.b', [1, 1], [2]);
  const d = param(store, 'dec.w', [1, 1, 1, 1], [2, 2]);
  const frozen = param(store, 'frozen.w', [5, 5], [1, 2]);
  const noGradP = param(store, 'idle.w', [7, 7], [1, 2]);
  store.freeze('frozen');
  const opt = new AdamW(store, {
    lr: 0.1,
    weightDecay: 0.2,
    noDecay: isNoDecayParam,
    groups: [{ match: 'dec', lrScale: 0.5, weightDecay: 0 }],
  });
  assert.deepEqual(opt.hyper('enc.w', w), { lrScale: 1, weightDecay: 0.2, betas: [0.9, 0.999], eps: 1e-8 });
  assert.equal(opt.hyper('enc.b', b).weightDecay, 0);
  assert.deepEqual(opt.hyper('dec.w', d), { lrScale: 0.5, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 });
  const g = [1, 1, 1, 1];
  setGrad(w, g);
  setGrad(b, [1, 1]);
  setGrad(d, g);
  frozen.grad = Tensor.from(Float32Array.of(1, 1), [1, 2]); // a stale grad on a frozen param must be ignored
  opt.step();
  assertClose(w, [1 * 0.98 - 0.1, 2 * 0.98 - 0.1, 3 * 0.98 - 0.1, 4 * 0.98 - 0.1], { rtol: 1e-6, atol: 1e-6 });
  assertClose(b, [0.9, 0.9], { rtol: 1e-6, atol: 1e-6 });
  assertClose(d, [0.95, 0.95, 0.95, 0.95], { rtol: 1e-6, atol: 1e-6 });
  assert.deepEqual(frozen.toArray(), [5, 5]);
  assert.deepEqual(noGradP.toArray(), [7, 7]);
  const st = opt.state();
  assert.deepEqual(Object.keys(st.params), ['enc.w', 'enc.b', 'dec.w']);
  // a parameter that first gets a gradient later starts its own bias-correction count at 1
  opt.zeroGrad();
  assert.equal(w.grad, null);
  setGrad(noGradP, [2, -2]);
  opt.step();
  assertClose(noGradP, [7 * 0.98 - 0.1, 7 * 0.98 + 0.1], { rtol: 1e-6, atol: 1e-6 });
  assert.equal(opt.state().params['idle.w'].step, 1);
  assert.equal(opt.state().params['enc.w'].step, 1);
  assert.throws(() => new AdamW(store, { lr: 0.1, betas: [1, 0.9] }), /betas/);
});

forEachBackend('AdamW: state()/stateTensors()/loadState resume bit-identically; load errors name the tensor', () => {
  const mk = (): { store: ParamStore; w: Tensor; b: Tensor } => {
    const store = new ParamStore();
    const w = param(store, 'l.weight', [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [3, 2]);
    const b = param(store, 'l.bias', [0, 0, 0], [3]);
    return { store, w, b };
  };
  const gradAt = (s: number): [number[], number[]] => [
    Array.from({ length: 6 }, (_, i) => Math.sin(s * 3 + i)),
    Array.from({ length: 3 }, (_, i) => Math.cos(s + i)),
  ];
  const a = mk();
  const optA = new AdamW(a.store, { lr: 0.01, weightDecay: 0.1 });
  for (let s = 0; s < 4; s++) {
    const [gw, gb] = gradAt(s);
    setGrad(a.w, gw);
    setGrad(a.b, gb);
    optA.step(0.01 + s * 0.001);
  }
  // checkpoint: JSON metadata plus copies of the named moment tensors and params
  const meta = JSON.parse(JSON.stringify(optA.state())) as AdamWStateMeta;
  const tensors = Object.fromEntries(Object.entries(optA.stateTensors()).map(([k, v]) => [k, { data: v.data.slice(), shape: v.shape }]));
  assert.deepEqual(Object.keys(tensors).sort(), ['m.l.bias', 'm.l.weight', 'v.l.bias', 'v.l.weight']);
  assert.deepEqual(tensors['m.l.weight'].shape, [3, 2]);
  const params = Object.fromEntries(Object.entries(a.store.toRecord()).map(([k, v]) => [k, { data: v.data.slice(), shape: v.shape }]));
  const b = mk();
  b.store.loadFrom(params);
  const optB = new AdamW(b.store, { lr: 0.5, weightDecay: 0.1 });
  optB.loadState(meta, tensors);
  assert.equal(optB.stepCount, 4);
  assert.equal(optB.lr, optA.lr);
  for (let s = 4; s < 7; s++) {
    const [gw, gb] = gradAt(s);
    for (const m of [a, b]) {
      setGrad(m.w, gw);
      setGrad(m.b, gb);
    }
    optA.step(0.02);
    optB.step(0.02);
  }
  assert.deepEqual(b.w.toArray(), a.w.toArray());
  assert.deepEqual(b.b.toArray(), a.b.toArray());
  const c = mk();
  const optC = new AdamW(c.store, { lr: 0.1 });
  const { ['v.l.bias']: _omit, ...partial } = tensors;
  void _omit;
  assert.throws(() => optC.loadState(meta, partial), /missing moment tensor "v\.l\.bias"/);
  assert.throws(() => optC.loadState(meta, { ...tensors, 'm.l.weight': new Float32Array(5) }), /moments of "l\.weight" have 5\/6 values/);
  assert.throws(() => optC.loadState({ ...meta, params: { ...meta.params, ghost: { step: 1, shape: [1] } } }, tensors), /"ghost", which is not a parameter/);
});

forEachBackend('clipGradNorm: global norm, scaling, no-op below the limit, non-finite handling', () => {
  const store = new ParamStore();
  const a = param(store, 'a', [0, 0], [2]);
  const b = param(store, 'b', [0], [1]);
  param(store, 'c', [0], [1]); // no grad: counts as zero
  setGrad(a, [3, 4]);
  setGrad(b, [12]);
  assert.equal(gradNorm(store), 13);
  assert.equal(clipGradNorm(store, 100), 13);
  assert.deepEqual(a.grad?.toArray(), [3, 4]);
  const n = clipGradNorm(store, 1);
  assert.equal(n, 13);
  const k = 1 / (13 + 1e-6);
  assertClose(a.grad as Tensor, [3 * k, 4 * k], { rtol: 1e-6, atol: 0 });
  assertClose(b.grad as Tensor, [12 * k], { rtol: 1e-6, atol: 0 });
  assert.ok(Math.abs(gradNorm(store) - 1) < 1e-6);
  setGrad(b, [Number.NaN]);
  setGrad(a, [1, 2]);
  const bad = clipGradNorm(store, 1);
  assert.ok(Number.isNaN(bad));
  assert.deepEqual(a.grad?.toArray(), [1, 2], 'grads untouched when the norm is not finite');
  assert.deepEqual(nonFiniteGrads(store), ['b']);
  setGrad(a, [Infinity, 0]);
  assert.throws(() => clipGradNorm(store, 1, { errorIfNonfinite: true }), /non-finite gradients in: a, b/);
  assert.throws(() => clipGradNorm(store, 0), /maxNorm must be positive/);
});

forEachBackend('clipCoefficient + AdamW.step({ gradScale }): the same bits as clipGradNorm + step(), .grad left unscaled', () => {
  const make = (): { store: ParamStore; opt: AdamW; ps: Tensor[] } => {
    const store = new ParamStore();
    let s = 7;
    const rnd = (n: number): number[] => Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1);
    const ps = [param(store, 'w', rnd(37), [37]), param(store, 'm', rnd(6 * 9), [6, 9]), param(store, 'b', rnd(3), [3])];
    const opt = new AdamW(store, { lr: 1e-2, betas: [0.9, 0.95], weightDecay: 0.1, noDecay: isNoDecayParam });
    return { store, opt, ps };
  };
  const A = make();
  const B = make();
  for (let step = 0; step < 4; step++) {
    // large gradients (clipped: coef < 1) on even steps, small ones (coef 1) on odd steps, a -0 too
    const mag = step % 2 === 0 ? 50 : 1e-3;
    for (const [i, t] of A.ps.entries()) {
      const g = Array.from({ length: t.size }, (_, j) => (j === 0 ? -0 : Math.sin(step * 31 + i * 7 + j) * mag));
      setGrad(t, g);
      setGrad(B.ps[i], g);
    }
    const nA = clipGradNorm(A.store, 1);
    A.opt.step();
    const before = B.ps.map((t) => (t.grad as Tensor).f32().slice());
    const { norm, coef } = clipCoefficient(B.store, 1);
    assert.equal(norm, nA);
    assert.ok(step % 2 === 0 ? coef < 1 : coef === 1, `coef ${coef} at step ${step}`);
    B.opt.step(undefined, { gradScale: coef });
    for (const [i, t] of B.ps.entries()) {
      assert.deepEqual(new Uint32Array(t.f32().buffer), new Uint32Array(A.ps[i].f32().buffer), `param ${i} step ${step} bits`);
      assert.deepEqual((t.grad as Tensor).f32(), before[i], 'grad left as it was');
      const [ma, mb] = [A.opt.momentsOf(['w', 'm', 'b'][i]), B.opt.momentsOf(['w', 'm', 'b'][i])];
      assert.deepEqual(new Uint32Array(mb.m.buffer), new Uint32Array(ma.m.buffer), `m ${i} bits`);
      assert.deepEqual(new Uint32Array(mb.v.buffer), new Uint32Array(ma.v.buffer), `v ${i} bits`);
    }
  }
  assert.deepEqual(clipCoefficient(A.store, 1e9).coef, 1);
  assert.throws(() => B.opt.step(undefined, { gradScale: 0 }), /gradScale must be a positive finite number/);
  assert.throws(() => clipCoefficient(A.store, 0), /maxNorm must be positive/);
  setGrad(A.ps[0], Array.from({ length: 37 }, () => Number.NaN));
  assert.ok(Number.isNaN(clipCoefficient(A.store, 1).norm) && clipCoefficient(A.store, 1).coef === 1);
});

forEachBackend('SGD: momentum and nesterov match a float64 transcription of torch.optim.SGD', () => {
  for (const nesterov of [false, true]) {
    const store = new ParamStore();
    const w = param(store, 'w', [1, -2, 0.5], [3]);
    const opt = new SGD(store, { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov });
    const grads = [
      [1, 2, -1],
      [0.5, -1, 0.25],
      [0, 3, 1],
    ];
    const x = [1, -2, 0.5];
    const buf = [0, 0, 0];
    grads.forEach((g, s) => {
      setGrad(w, g);
      opt.step();
      for (let i = 0; i < 3; i++) {
        const gi = g[i] + 0.01 * x[i];
        buf[i] = s === 0 ? gi : 0.9 * buf[i] + gi;
        x[i] -= 0.1 * (nesterov ? gi + 0.9 * buf[i] : buf[i]);
      }
    });
    assertClose(w, x, { rtol: 1e-6, atol: 1e-7, what: `sgd nesterov=${nesterov}` });
    const meta = opt.state();
    assert.deepEqual(Object.keys(opt.stateTensors()), ['momentum.w']);
    const opt2 = new SGD(store, { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov });
    opt2.loadState(meta, opt.stateTensors());
    assert.equal(opt2.stepCount, 3);
  }
});

test('schedules: cosine with warmup and floor, linear, constant, from config', () => {
  const o = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assert.equal(cosineLr(0, o), 0.1);
  assert.equal(cosineLr(4, o), 0.5);
  assert.equal(cosineLr(9, o), 1);
  assert.equal(cosineLr(10, o), 1, 'peak right after warmup');
  assert.ok(Math.abs(cosineLr(60, o) - 0.55) < 1e-12, 'half way: floor + half the range');
  assert.ok(Math.abs(cosineLr(35, o) - (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * 0.25)))) < 1e-12);
  assert.ok(Math.abs(cosineLr(110, o) - 0.1) < 1e-12);
  assert.equal(cosineLr(500, o), 0.1);
  for (let s = 10; s < 110; s++) assert.ok(cosineLr(s + 1, o) <= cosineLr(s, o), 'monotone decay');
  assert.equal(cosineLr(0, { lr: 3e-4, totalSteps: 100 }), 3e-4, 'no warmup starts at the peak');
  assert.ok(Math.abs(cosineLr(100, { lr: 3e-4, totalSteps: 100 })) < 1e-18);
  assert.ok(Math.abs(linearLr(60, o) - 0.55) < 1e-12);
  assert.equal(linearLr(110, o), 0.1);
  assert.equal(linearLr(9, o), 1);
  assert.equal(constantLr(0, { lr: 2, warmupSteps: 4 }), 0.5);
  assert.equal(constantLr(1000, { lr: 2, warmupSteps: 4 }), 2);
  const f = makeSchedule({ kind: 'cosine', ...o });
  assert.equal(f(60), cosineLr(60, o));
  assert.equal(makeSchedule({ kind: 'constant', lr: 0.3 })(7), 0.3);
  assert.equal(makeSchedule({ kind: 'linear', ...o })(110), 0.1);
  assert.throws(() => makeSchedule({ kind: 'cosine', lr: 1, warmupSteps: 10, totalSteps: 5 }), /totalSteps/);
  assert.throws(() => cosineLr(-1, o), /non-negative integer/);
  assert.throws(() => cosineLr(1, { ...o, minLrRatio: 2 }), /minLrRatio/);
});
