/**
 * End-to-end training: a tiny MLP on an XOR-like regression and a 2-layer Llama decoder stack on
 * a synthetic copy task, each with AdamW + cosine schedule + gradient clipping, on every backend.
 */
import assert from 'node:assert/strict';
import { Tensor, crossEntropy, mean, square, sub, tanh } from '../../src/tensor/index.js';
import { AdamW, Linear, ParamStore, Rng, VarBuilder, clipGradNorm, cosineLr, init, isNoDecayParam } from '../../src/nn/index.js';
import { forEachBackend } from '../helpers/numeric.js';
import { TinyLlama } from './tiny_llama.js';

forEachBackend('training: a 2-32-1 MLP learns an XOR-like target (x1 * x2)', () => {
  const store = new ParamStore();
  const vb = new VarBuilder(store, { rng: 1 });
  const l1 = new Linear(vb.pp('fc1'), 2, 32, { bias: true, biasInit: init.uniform(-0.5, 0.5) });
  const l2 = new Linear(vb.pp('fc2'), 32, 1, { bias: true });
  const rng = new Rng(2);
  const N = 128;
  const x = new Float32Array(N * 2);
  const y = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    x[2 * i] = rng.uniform(-1, 1);
    x[2 * i + 1] = rng.uniform(-1, 1);
    y[i] = 2 * x[2 * i] * x[2 * i + 1];
  }
  const X = new Tensor(x, [N, 2]);
  const Y = new Tensor(y, [N, 1]);
  const steps = 300;
  const sched = { lr: 0.02, warmupSteps: 10, totalSteps: steps, minLrRatio: 0.1 };
  const opt = new AdamW(store, { lr: sched.lr, weightDecay: 0.01, noDecay: isNoDecayParam });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    store.zeroGrad();
    const loss = mean(square(sub(l2.forward(tanh(l1.forward(X))), Y)));
    losses.push(loss.item());
    loss.backward();
    clipGradNorm(store, 1.0);
    opt.step(cosineLr(s, sched));
  }
  const first = losses[0];
  const last = losses[losses.length - 1];
  assert.ok(Number.isFinite(last) && last < 0.5 * first, `loss ${first} -> ${last}`);
  assert.ok(last < 0.1 * first, `MLP should fit well: loss ${first} -> ${last}`);
});

forEachBackend('training: a 2-layer Llama decoder stack (GQA, RoPE, SwiGLU) learns a copy task', () => {
  const store = new ParamStore();
  const model = new TinyLlama(new VarBuilder(store, { rng: 3, defaultInit: init.normal(0.02) }), {
    vocabSize: 16,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
  });
  const rng = new Rng(4);
  const B = 16;
  const half = 6;
  const T = 2 * half;
  // each row: `half` random tokens, then the same tokens again; loss only where the copy is predictable
  const batch = (): { ids: Int32Array; targets: Int32Array } => {
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-100);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < half; t++) {
        const v = rng.int(16);
        ids[b * T + t] = v;
        ids[b * T + half + t] = v;
      }
      for (let t = half - 1; t < T - 1; t++) targets[b * T + t] = ids[b * T + t + 1];
    }
    return { ids, targets };
  };
  const steps = 250;
  const sched = { lr: 1e-2, warmupSteps: 20, totalSteps: steps, minLrRatio: 0.1 };
  const opt = new AdamW(store, { lr: sched.lr, betas: [0.9, 0.98], weightDecay: 0.01, noDecay: isNoDecayParam });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { ids, targets } = batch();
    store.zeroGrad();
    const logits = model.forward(ids, B, T);
    const loss = crossEntropy(logits, targets);
    losses.push(loss.item());
    loss.backward();
    const norm = clipGradNorm(store, 1.0);
    assert.ok(Number.isFinite(norm), `step ${s}: grad norm ${norm}`);
    opt.step(cosineLr(s, sched));
  }
  const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = avg(losses.slice(0, 5));
  const last = avg(losses.slice(-10));
  assert.ok(first > 2.3, `initial loss should be near ln 16 = 2.77, got ${first}`);
  assert.ok(last < 0.5 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
});
