import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, add, mul, sum } from '../../src/tensor/index.js';
import { Linear, ParamStore, Rng, VarBuilder, init } from '../../src/nn/index.js';
import { TinyLlama } from './tiny_llama.js';

const cfg = { vocabSize: 16, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2 };

test('VarBuilder: a 2-layer Llama built via vb.pp("model").pp("layers").pp(i) has exactly the HF names, shapes and order', () => {
  const store = new ParamStore();
  new TinyLlama(new VarBuilder(store, { rng: 1, defaultInit: init.normal(0.02) }), cfg);
  const expected: [string, number[]][] = [['model.embed_tokens.weight', [16, 32]]];
  for (let i = 0; i < 2; i++) {
    const p = `model.layers.${i}`;
    expected.push(
      [`${p}.self_attn.q_proj.weight`, [32, 32]],
      [`${p}.self_attn.k_proj.weight`, [16, 32]],
      [`${p}.self_attn.v_proj.weight`, [16, 32]],
      [`${p}.self_attn.o_proj.weight`, [32, 32]],
      [`${p}.mlp.gate_proj.weight`, [64, 32]],
      [`${p}.mlp.up_proj.weight`, [64, 32]],
      [`${p}.mlp.down_proj.weight`, [32, 64]],
      [`${p}.input_layernorm.weight`, [32]],
      [`${p}.post_attention_layernorm.weight`, [32]],
    );
  }
  expected.push(['model.norm.weight', [32]], ['lm_head.weight', [16, 32]]);
  assert.deepEqual(
    store.entries().map(([n, t]) => [n, t.shape]),
    expected,
  );
  for (const [n, t] of store.entries()) {
    assert.equal(t.name, n);
    assert.equal(t.requiresGrad, true);
  }
  assert.equal(store.numParams(), expected.reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0));
  // norms are ones, projections ~N(0, 0.02)
  assert.ok(store.get('model.norm.weight').toArray().every((x) => x === 1));
  const q = store.get('model.layers.1.self_attn.q_proj.weight').toArray();
  const std = Math.sqrt(q.reduce((s, x) => s + x * x, 0) / q.length);
  assert.ok(Math.abs(std - 0.02) < 0.003, `q_proj std ${std}`);
});

test('VarBuilder: init depends only on seed and name; get() returns existing (tied) params and checks shapes', () => {
  const a = new ParamStore();
  const b = new ParamStore();
  const va = new VarBuilder(a, { rng: 7, defaultInit: init.normal(1) });
  const vb = new VarBuilder(b, { rng: 7, defaultInit: init.normal(1) });
  va.pp('x').get('w', [3, 4]);
  va.pp('y').get('w', [3, 4]);
  vb.pp('y').get('w', [3, 4]); // other creation order
  vb.pp('x').get('w', [3, 4]);
  assert.deepEqual(a.get('x.w').toArray(), b.get('x.w').toArray());
  assert.deepEqual(a.get('y.w').toArray(), b.get('y.w').toArray());
  assert.notDeepEqual(a.get('x.w').toArray(), a.get('y.w').toArray());
  const c = new VarBuilder(new ParamStore(), { rng: 8, defaultInit: init.normal(1) });
  assert.notDeepEqual(c.pp('x').get('w', [3, 4]).toArray(), a.get('x.w').toArray());
  // tying: the same name returns the same tensor
  assert.equal(va.pp('x').get('w', [3, 4]), a.get('x.w'));
  assert.throws(() => va.pp('x').get('w', [4, 3]), /x\.w.*\[3, 4\].*\[4, 3\]/);
  assert.equal(va.pp('layers').pp(3).path('bias'), 'layers.3.bias');
  assert.throws(() => va.pp(''), /invalid path/);
  assert.throws(() => new VarBuilder(new ParamStore()).get('w', [2]), /no initialiser for "w"/);
  // a source fills parameters instead of the initialiser
  const src = new VarBuilder(new ParamStore(), { source: (n) => (n === 'l.weight' ? { data: new Float32Array(6).fill(3), shape: [2, 3] } : undefined) });
  const lin = new Linear(src.pp('l'), 3, 2, { bias: true });
  assert.deepEqual(lin.weight.toArray(), [3, 3, 3, 3, 3, 3]);
  assert.deepEqual(lin.bias?.toArray(), [0, 0]);
  const bad = new VarBuilder(new ParamStore(), { source: () => ({ data: new Float32Array(6), shape: [3, 2] }) });
  assert.throws(() => new Linear(bad.pp('l'), 3, 2), /shape mismatch for "l\.weight".*\[3, 2\].*\[2, 3\]/);
});

test('ParamStore: loadFrom copies in place; errors name missing, unexpected and mis-shaped tensors', () => {
  const store = new ParamStore();
  const vb = new VarBuilder(store, { rng: 1 });
  const l1 = new Linear(vb.pp('a'), 2, 3, { bias: true });
  new Linear(vb.pp('b'), 3, 1);
  const w0 = l1.weight;
  const good: Record<string, Float32Array | { data: Float32Array; shape: number[] }> = {
    'a.weight': { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2] },
    'a.bias': Float32Array.from([7, 8, 9]),
    'b.weight': new Float32Array(3).fill(0.5),
  };
  const rep = store.loadFrom(good);
  assert.deepEqual(rep, { loaded: ['a.weight', 'a.bias', 'b.weight'], missing: [], unexpected: [] });
  assert.equal(store.get('a.weight'), w0, 'same tensor object');
  assert.deepEqual(w0.toArray(), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(store.get('a.bias').toArray(), [7, 8, 9]);

  const before = store.get('b.weight').toArray();
  assert.throws(
    () => store.loadFrom({ 'a.weight': good['a.weight'], 'a.bias': good['a.bias'], 'b.weight': new Float32Array(3).fill(9), extra: new Float32Array(1) }),
    /unexpected in the checkpoint: extra/,
  );
  assert.deepEqual(store.get('b.weight').toArray(), before, 'a failed strict load changes nothing');
  assert.throws(() => store.loadFrom({ 'a.weight': good['a.weight'], 'a.bias': good['a.bias'] }), /missing from the checkpoint: b\.weight/);
  assert.throws(
    () => store.loadFrom({ ...good, 'a.weight': { data: new Float32Array(6), shape: [2, 3] } }),
    /shape mismatch for "a\.weight": checkpoint has \[2, 3\], model expects \[3, 2\]/,
  );
  assert.throws(() => store.loadFrom({ ...good, 'a.bias': new Float32Array(4) }), /size mismatch for "a\.bias": checkpoint has 4 values/);
  // non-strict: report instead of throwing; function sources with sourceNames; Map sources
  const m = new Map<string, Float32Array>([['a.bias', new Float32Array(3)], ['zzz', new Float32Array(2)]]);
  const r2 = store.loadFrom(m, { strict: false });
  assert.deepEqual(r2, { loaded: ['a.bias'], missing: ['a.weight', 'b.weight'], unexpected: ['zzz'] });
  const r3 = store.loadFrom((n) => (n === 'a.bias' ? new Float32Array(3) : undefined), {
    sourceNames: ['a.bias', 'rotary.inv_freq'],
    ignoreUnexpected: (n) => n.endsWith('inv_freq'),
    allowMissing: (n) => n.startsWith('a.') || n.startsWith('b.'),
  });
  assert.deepEqual(r3, { loaded: ['a.bias'], missing: [], unexpected: [] });
  // toRecord round trip
  const rec = store.toRecord();
  assert.deepEqual(Object.keys(rec), ['a.weight', 'a.bias', 'b.weight']);
  assert.deepEqual(rec['a.weight'].shape, [3, 2]);
  assert.equal(rec['a.weight'].dtype, 'F32');
  const other = new ParamStore();
  const vb2 = new VarBuilder(other, { rng: 99 });
  new Linear(vb2.pp('a'), 2, 3, { bias: true });
  new Linear(vb2.pp('b'), 3, 1);
  other.loadFrom(rec);
  assert.deepEqual(other.get('a.weight').toArray(), store.get('a.weight').toArray());
  assert.throws(() => store.get('a.wieght'), /no parameter "a\.wieght" \(under "a": a\.weight, a\.bias\)/);
});

test('ParamStore: freeze/unfreeze by prefix, regexp, predicate; frozen params get no grad', () => {
  const store = new ParamStore();
  const vb = new VarBuilder(store, { rng: 3 });
  const enc = new Linear(vb.pp('encoder').pp('proj'), 4, 4, { bias: true });
  const dec = new Linear(vb.pp('decoder').pp('proj'), 4, 2);
  new Linear(vb.pp('encoder2'), 4, 4);
  assert.equal(store.freeze('encoder'), 2, 'prefix is path-aware: encoder2 is not matched');
  assert.equal(enc.weight.requiresGrad, false);
  assert.equal(store.get('encoder2.weight').requiresGrad, true);
  assert.equal(store.trainable().length, 2);
  assert.equal(store.numParams(true), 2 * 4 + 16);
  const x = Tensor.from(new Float32Array(8).fill(1), [2, 4]);
  sum(dec.forward(enc.forward(x))).backward();
  assert.equal(enc.weight.grad, null);
  assert.equal(enc.bias?.grad ?? null, null);
  assert.notEqual(dec.weight.grad, null);
  assert.throws(() => store.freeze('nope'), /no parameter matches prefix "nope"/);
  assert.equal(store.unfreeze(/^encoder\.proj\.weight$/), 1);
  assert.equal(enc.weight.requiresGrad, true);
  assert.equal(store.freeze((n) => n.endsWith('bias')), 1);
  store.zeroGrad();
  assert.equal(dec.weight.grad, null);
  // freeze drops an existing grad
  const y = sum(mul(dec.forward(x), add(dec.forward(x), 1)));
  y.backward();
  assert.notEqual(dec.weight.grad, null);
  store.freeze('decoder');
  assert.equal(dec.weight.grad, null);
});

test('init: initialisers have the documented statistics', () => {
  const rng = new Rng(11);
  const stats = (f: init.Init, shape: number[]): { mean: number; std: number; min: number; max: number } => {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    f(d, shape, rng);
    let s = 0;
    let s2 = 0;
    let mn = Infinity;
    let mx = -Infinity;
    for (const x of d) {
      s += x;
      s2 += x * x;
      mn = Math.min(mn, x);
      mx = Math.max(mx, x);
    }
    const mean = s / n;
    return { mean, std: Math.sqrt(s2 / n - mean * mean), min: mn, max: mx };
  };
  const shape = [256, 400];
  const ku = stats(init.kaimingUniform(), shape);
  assert.ok(ku.max <= 1 / Math.sqrt(400) && ku.min >= -1 / Math.sqrt(400), 'PyTorch Linear default bound 1/sqrt(fan_in)');
  assert.ok(Math.abs(ku.std - 1 / Math.sqrt(400) / Math.sqrt(3)) < 1e-3);
  const xu = stats(init.xavierUniform(), shape);
  assert.ok(Math.abs(xu.max - Math.sqrt(6 / 656)) < 2e-3);
  const xn = stats(init.xavierNormal(2), shape);
  assert.ok(Math.abs(xn.std - 2 * Math.sqrt(2 / 656)) < 2e-3);
  const kn = stats(init.kaimingNormal(), shape);
  assert.ok(Math.abs(kn.std - Math.sqrt(2 / 400)) < 2e-3);
  const tn = stats(init.truncatedNormal(0.02), shape);
  assert.ok(tn.max <= 0.04 && tn.min >= -0.04 && Math.abs(tn.std - 0.02 * 0.8796) < 1e-3, `truncated std ${tn.std}`);
  const so = stats(init.scaledOutputNormal(0.02, 8), shape);
  assert.ok(Math.abs(so.std - 0.02 / 4) < 2e-4);
  const un = stats(init.uniform(2, 3), [1000]);
  assert.ok(un.min >= 2 && un.max < 3);
  assert.deepEqual(stats(init.constant(0.5), [3]), { mean: 0.5, std: 0, min: 0.5, max: 0.5 });
  assert.deepEqual(init.fans([8, 3, 5, 5]), { fanIn: 75, fanOut: 200 });
  assert.throws(() => init.fromValues([1, 2])(new Float32Array(3), [3], rng), /2 values for shape \[3\]/);
});
