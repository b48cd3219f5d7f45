/**
 * Compression of whole models built from Linear layers (the Llama-style LM and an MLP):
 * PackedLinear swap, packed checkpoint save -> load -> identical outputs, corrupt checkpoints,
 * QAT (straight-through gradients, training, packing), pruning (exact sparsity, masks kept
 * through training, Wanda calibration).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, linear, mean, noGrad, square, sub, sum, tanh } from '../../src/tensor/index.js';
import { AdamW, Linear, ParamStore, Rng, VarBuilder, init } from '../../src/nn/index.js';
import { openSafetensors, writeSafetensors, type TensorData } from '../../src/io/index.js';
import { LlamaLM, type LlamaLMConfig } from '../../src/models/llama/model.js';
import {
  PackedCheckpointError,
  PackedLinear,
  setPackedAct,
  collectInputNorms,
  dequantize,
  enableQat,
  fakeQuantize,
  findLinears,
  loadPackedModel,
  magnitudeMask,
  parseFormat,
  pruneModel,
  quantizeModel,
  wandaMask,
  writePackedCheckpoint,
} from '../../src/compress/index.js';
import { forEachBackend } from '../helpers/numeric.js';
import { HATModel } from '../../src/models/hat/model.js';
import { presetConfig } from '../../src/models/hat/config.js';

const cfg: LlamaLMConfig = { vocabSize: 32, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2 };

function build(seed = 1): { model: LlamaLM; store: ParamStore } {
  const store = new ParamStore();
  return { model: new LlamaLM(new VarBuilder(store, { rng: seed, defaultInit: init.normal(0.05) }), cfg), store };
}

function ids(n: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(cfg.vocabSize));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'tfree-compress-'));
}

forEachBackend('quantizeModel: Llama Linear layers become PackedLinear; logits match the dequantized f32 model', () => {
  const { model } = build();
  const ref = build().model;
  const x = ids(2 * 8, 2);
  for (const fmt of ['int8', 'kmeans4', 'bin1']) {
    const m = build().model;
    const packed = quantizeModel(m, parseFormat(fmt));
    assert.equal(packed.size, cfg.numLayers * 7, `${fmt}: q,k,v,o,gate,up,down per layer`);
    assert.ok(m.lmHead instanceof Linear && !(m.lmHead instanceof PackedLinear), 'lm_head stays f32 by default');
    assert.ok(m.layers[0].mlp.upProj instanceof PackedLinear);
    // reference: the f32 model with the dequantized weights
    for (const [name, p] of packed) {
      const site = findLinears(ref).find((s) => s.weightName === name);
      assert.ok(site);
      (site.linear.weight.data as Float32Array).set(dequantize(p));
    }
    const b = noGrad(() => ref.forward(x, 2, 8)).f32();
    // int16 activations: rounding 2^-16 of each group's absmax; int8 (the default): 2^-8, and
    // k-means centroids in 7-bit fixed point (errors of a few % of the logit range after 2 layers)
    assert.equal(setPackedAct(m, 'int16'), packed.size);
    const a = noGrad(() => m.forward(x, 2, 8)).f32();
    assert.ok(maxDiff(a, b) < 2e-3, `${fmt} int16 act: packed vs dequantized logits differ by ${maxDiff(a, b)}`);
    setPackedAct(m, 'int8');
    const a8 = noGrad(() => m.forward(x, 2, 8)).f32();
    let scale = 0;
    for (const v of b) scale = Math.max(scale, Math.abs(v));
    assert.ok(maxDiff(a8, b) < 5e-2 * scale && maxDiff(a8, b) > 0, `${fmt} int8 act: packed vs dequantized logits differ by ${maxDiff(a8, b)} (max |logit| ${scale})`);
    // restore the reference weights for the next format
    for (const s of findLinears(ref)) (s.linear.weight.data as Float32Array).set(findLinears(model).find((t) => t.weightName === s.weightName)!.linear.weight.f32());
  }
});

forEachBackend('packed checkpoint: save -> load into a fresh model -> identical logits; f32 weights dropped', () => {
  const dir = tmp();
  try {
    const { model, store } = build(3);
    const packed = quantizeModel(model, parseFormat('kmeans2'), { seed: 5 });
    const x = ids(8, 4);
    const before = noGrad(() => model.forward(x, 1, 8)).f32();
    const plain: [string, TensorData][] = store.entries().filter(([n]) => !packed.has(n)).map(([n, t]) => [n, { dtype: 'F32', shape: t.shape.slice(), data: t.f32() }]);
    const file = join(dir, 'model.safetensors');
    writePackedCheckpoint(file, packed, plain);
    const fresh = build(99);
    const { store: rest } = loadPackedModel(fresh.model, fresh.store, file);
    assert.equal(rest.size, fresh.store.size - packed.size);
    assert.ok(rest.names().every((n) => !packed.has(n)));
    const after = noGrad(() => fresh.model.forward(x, 1, 8)).f32();
    assert.deepEqual(after, before);
    const f = openSafetensors(file);
    const meta = JSON.parse(f.metadata['tfree.quant.model.layers.0.mlp.up_proj.weight']) as { format: string; shape: number[] };
    assert.deepEqual(meta, { format: 'kmeans2', shape: [128, 64], block: 64, scale: 'BF16', rules: 2 });
    assert.equal(f.info('model.layers.0.mlp.up_proj.weight.codes').dtype, 'U8');
    f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packed checkpoints written under quantization rules 1 (no "rules" field) load unchanged; int4:absmean of rules 1 reads as int4:meanstep', () => {
  const dir = tmp();
  try {
    const { model, store } = build(5);
    // what rules 1 wrote for "int4:absmean": s = mean|w| -- today's int4:meanstep
    const packed = quantizeModel(model, parseFormat('int4:meanstep'), {});
    const x = ids(8, 6);
    const before = noGrad(() => model.forward(x, 1, 8)).f32();
    const plain: [string, TensorData][] = store.entries().filter(([n]) => !packed.has(n)).map(([n, t]) => [n, { dtype: 'F32', shape: t.shape.slice(), data: t.f32() }]);
    const file = join(dir, 'model.safetensors');
    writePackedCheckpoint(file, packed, plain);
    // rewrite the metadata as a rules-1 file would have it
    const f = openSafetensors(file);
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(f.metadata)) {
      if (!k.startsWith('tfree.quant.')) meta[k] = v;
      else {
        const m = JSON.parse(v) as Record<string, unknown>;
        delete m.rules;
        meta[k] = JSON.stringify({ ...m, format: 'int4:absmean' });
      }
    }
    const entries = f.names().map((n): [string, TensorData] => [n, f.read(n)]);
    f.close();
    const old = join(dir, 'old.safetensors');
    writeSafetensors(old, entries, meta);
    const fresh = build(77);
    const { packed: loaded } = loadPackedModel(fresh.model, fresh.store, old);
    for (const p of loaded.values()) assert.equal(p.format.name, 'int4:meanstep');
    assert.deepEqual(noGrad(() => fresh.model.forward(x, 1, 8)).f32(), before, 'an old file gives exactly the weights it was written with');
    // a rules version from the future is refused, naming the tensor
    const future = join(dir, 'future.safetensors');
    const fm = Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, k.startsWith('tfree.quant.') ? JSON.stringify({ ...(JSON.parse(v) as object), rules: 3 }) : v]));
    writeSafetensors(future, entries, fm);
    const b = build(78);
    assert.throws(() => loadPackedModel(b.model, b.store, future), (e: Error) => e instanceof PackedCheckpointError && /tensor ".*": .*quantization rules 3 are not known/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('QAT and quantizeModel on row lengths the block does not divide: block reduced per weight (tiny HAT preset, rows of 352)', () => {
  const model = new HATModel(presetConfig('tiny'), { seed: 3 });
  const q = enableQat(model, 'int4');
  const blocks = q.blockSizes();
  const cols = new Map(findLinears(model).map((s) => [s.weightName, s.linear.inFeatures]));
  assert.ok([...cols.values()].some((c) => c % 64 !== 0), 'the preset must have a row length that 64 does not divide');
  for (const [n, b] of blocks) assert.equal(b, (cols.get(n) as number) % 64 === 0 ? 64 : 32, n);
  const packed = q.pack(model);
  for (const [n, p] of packed) assert.equal(p.format.blockSize, blocks.get(n), n);
  // no block divides a row length of 12: a clear error naming the weight
  const lin = new Linear(new VarBuilder(new ParamStore(), { rng: 1 }).pp('odd'), 12, 4);
  assert.throws(() => quantizeModel({ lin }, parseFormat('int4'), {}), /tensor "odd\.weight": no block size <= 64 .* divides the row length 12/);
});

test('corrupt packed checkpoints: clear errors naming the tensor', () => {
  const dir = tmp();
  try {
    const { model, store } = build(6);
    const packed = quantizeModel(model, parseFormat('int4'));
    const plain: [string, TensorData][] = store.entries().filter(([n]) => !packed.has(n)).map(([n, t]) => [n, { dtype: 'F32', shape: t.shape.slice(), data: t.f32() }]);
    const name = 'model.layers.1.self_attn.o_proj.weight';
    const good = join(dir, 'good.safetensors');
    writePackedCheckpoint(good, packed, plain);
    const src = openSafetensors(good);
    const all: [string, TensorData][] = src.names().map((n) => [n, src.read(n)]);
    const meta = { ...src.metadata };
    src.close();
    const variant = (file: string, edit: (t: [string, TensorData][], m: Record<string, string>) => void): string => {
      const t = all.map(([n, d]) => [n, d] as [string, TensorData]);
      const m = { ...meta };
      edit(t, m);
      const p = join(dir, file);
      writeSafetensors(p, t, m);
      return p;
    };
    const load = (p: string): void => {
      const b = build(7);
      loadPackedModel(b.model, b.store, p);
    };
    const unknown = variant('unknown.safetensors', (_, m) => (m[`tfree.quant.${name}`] = m[`tfree.quant.${name}`].replace('int4', 'int5')));
    assert.throws(() => load(unknown), (e: Error) => e instanceof PackedCheckpointError && e.message.includes(`tensor "${name}"`) && /int supports/.test(e.message));
    const missing = variant('missing.safetensors', (t) => t.splice(t.findIndex(([n]) => n === `${name}.scales`), 1));
    assert.throws(() => load(missing), (e: Error) => e instanceof PackedCheckpointError && e.message.includes(`tensor "${name}.scales": missing`));
    const shape = variant('shape.safetensors', (t) => {
      const i = t.findIndex(([n]) => n === `${name}.codes`);
      const d = t[i][1];
      t[i] = [`${name}.codes`, { dtype: 'U8', shape: [d.shape[0] / 2, d.shape[1] * 2], data: d.data as Uint8Array }];
    });
    assert.throws(() => load(shape), (e: Error) => e instanceof PackedCheckpointError && e.message.includes(`tensor "${name}.codes": expected U8 [64, 32]`));
    const badJson = variant('json.safetensors', (_, m) => (m[`tfree.quant.${name}`] = '{"format":'));
    assert.throws(() => load(badJson), (e: Error) => e instanceof PackedCheckpointError && e.message.includes(`tensor "${name}": metadata`));
    const block = variant('block.safetensors', (_, m) => (m[`tfree.quant.${name}`] = m[`tfree.quant.${name}`].replace('"block":64', '"block":48')));
    assert.throws(() => load(block), (e: Error) => e instanceof PackedCheckpointError && /block size 48 does not divide the row length 64/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

forEachBackend('QAT: the weight gradient is the straight-through gradient (that of the fake-quantized weight)', () => {
  for (const fmt of ['int2', 'kmeans4', 'bin1', 'ternary', 'int8']) {
    const store = new ParamStore();
    const lin = new Linear(new VarBuilder(store, { rng: 8 }).pp('fc'), 64, 16, { bias: true });
    const x = new Tensor(new Rng(9).fillNormal(new Float32Array(5 * 64)), [5, 64]);
    const q = enableQat({ lin }, fmt, { exclude: [] });
    const loss = sum(square(tanh(lin.forward(x))));
    loss.backward();
    const g = lin.weight.grad!.f32().slice();
    // the same loss with qdq(W) as a plain leaf
    const wq = new Tensor(fakeQuantize(lin.weight.f32(), 16, 64, q.format, { codebook: q.codebooks().get('fc.weight') ?? null }), [16, 64]);
    wq.requiresGrad = true;
    const loss2 = sum(square(tanh(linear(x, wq, lin.bias))));
    assert.equal(loss.item(), loss2.item(), `${fmt}: forward uses qdq(W)`);
    loss2.backward();
    assert.deepEqual(g, wq.grad!.f32(), `${fmt}: STE gradient`);
    q.remove();
    assert.notEqual(noGrad(() => lin.forward(x)).f32()[0], noGrad(() => linear(x, wq, lin.bias)).f32()[0], 'remove() restores the f32 forward');
  }
});

forEachBackend('QAT recipe: train f32, fit k-means once, QAT with fixed centroids, pack: packed outputs = QAT outputs', () => {
  const store = new ParamStore();
  const vb = new VarBuilder(store, { rng: 10 });
  const mlp = { l1: new Linear(vb.pp('l1'), 8, 64, { bias: true }), l2: new Linear(vb.pp('l2'), 64, 8, { bias: true }) };
  const r = new Rng(11);
  const X = new Tensor(r.fillNormal(new Float32Array(64 * 8)), [64, 8]);
  const Y = new Tensor(Float32Array.from(X.f32(), (v, i) => Math.sin(2 * v + (i % 3))), [64, 8]);
  const f = (): Tensor => mean(square(sub(mlp.l2.forward(tanh(mlp.l1.forward(X))), Y)));
  const opt = new AdamW(store, { lr: 0.01 });
  const trainSteps = (n: number, after?: () => void): number[] => {
    const ls: number[] = [];
    for (let s = 0; s < n; s++) {
      store.zeroGrad();
      const loss = f();
      ls.push(loss.item());
      loss.backward();
      opt.step();
      after?.();
    }
    return ls;
  };
  trainSteps(60);
  const q = enableQat(mlp, 'kmeans2', { exclude: [], refitEvery: 0, blockSize: 8 });
  const books = q.codebooks();
  const lossQ = trainSteps(80, () => q.step());
  assert.ok(lossQ[lossQ.length - 1] < lossQ[0], `QAT loss ${lossQ[0]} -> ${lossQ[lossQ.length - 1]}`);
  assert.deepEqual(q.codebooks(), books, 'centroids fixed');
  const qatOut = noGrad(f).item();
  q.pack(mlp);
  assert.ok(mlp.l1 instanceof PackedLinear && mlp.l2 instanceof PackedLinear);
  assert.deepEqual(mlp.l1.packed.levels, books.get('l1.weight'));
  // int16 activations: the packed kernel computes the QAT forward up to activation rounding to 16 bits
  mlp.l1.act = mlp.l2.act = 'int16';
  const packed16 = noGrad(f).item();
  assert.ok(Math.abs(packed16 - qatOut) < 1e-4 * Math.abs(qatOut), `packed loss (int16 activations) ${packed16} vs QAT loss ${qatOut}`);
  // int8 activations (the default) add their rounding error: ~1% per output here, so the loss moves by more
  mlp.l1.act = mlp.l2.act = 'int8';
  const packed8 = noGrad(f).item();
  assert.ok(Math.abs(packed8 - qatOut) < 2e-2 * Math.abs(qatOut), `packed loss (int8 activations) ${packed8} vs QAT loss ${qatOut}`);
  process.stderr.write(`QAT loss ${qatOut}, packed int16 ${packed16}, int8 ${packed8}\n`);
});

test('pruning: exact sparsity (magnitude per matrix, Wanda per row), ties by position', () => {
  const w = new Rng(12).fillNormal(new Float32Array(10 * 30));
  for (const s of [0, 0.1, 0.5, 0.77, 1]) {
    const m = magnitudeMask(w, s);
    assert.equal(m.reduce((a, v) => a + (v === 0 ? 1 : 0), 0), Math.round(s * w.length));
    // every pruned |w| <= every kept |w|
    let maxPruned = 0;
    let minKept = Infinity;
    m.forEach((v, i) => (v === 0 ? (maxPruned = Math.max(maxPruned, Math.abs(w[i]))) : (minKept = Math.min(minKept, Math.abs(w[i])))));
    assert.ok(maxPruned <= minKept);
    const norm = Float32Array.from({ length: 30 }, (_, i) => 1 + i);
    const wm = wandaMask(w, 10, 30, norm, s);
    for (let r = 0; r < 10; r++) assert.equal(wm.subarray(r * 30, (r + 1) * 30).reduce((a, v) => a + (v === 0 ? 1 : 0), 0), Math.round(s * 30));
  }
  const ties = magnitudeMask(Float32Array.from([1, 1, 1, 1]), 0.5);
  assert.deepEqual(Array.from(ties), [0, 0, 1, 1]);
  assert.throws(() => magnitudeMask(w, 1.5), /sparsity must be in \[0, 1\]/);
});

forEachBackend('pruning: masks keep pruned weights at zero through training steps', () => {
  const { model, store } = build(13);
  const masks = pruneModel(model, { sparsity: 0.6, method: 'magnitude' });
  assert.ok(Math.abs(masks.sparsity() - 0.6) < 1e-3);
  const opt = new AdamW(store, { lr: 0.01, weightDecay: 0.1 });
  const x = ids(16, 14);
  const zeros = (): number => [...masks.masks.values()].reduce((a, { weight }) => a + weight.f32().reduce((z, v) => z + (v === 0 ? 1 : 0), 0), 0);
  const z0 = zeros();
  for (let s = 0; s < 3; s++) {
    store.zeroGrad();
    const logits = model.forward(x, 2, 8);
    sum(square(logits)).backward();
    opt.step();
    masks.apply();
  }
  assert.equal(zeros(), z0);
  assert.ok(z0 >= Math.round(0.6 * store.numParams()) * 0 + [...masks.masks.values()].reduce((a, m) => a + Math.round(0.6 * m.mask.length), 0));
});

test('Wanda calibration: per-Linear input norms equal the L2 norms of what each layer saw', () => {
  const store = new ParamStore();
  const vb = new VarBuilder(store, { rng: 15 });
  const mlp = { a: new Linear(vb.pp('a'), 4, 6), b: new Linear(vb.pp('b'), 6, 3) };
  const x = new Tensor(new Rng(16).fillNormal(new Float32Array(5 * 4)), [5, 4]);
  let hidden: Float32Array = new Float32Array(0);
  const norms = collectInputNorms(
    mlp,
    () => {
      const h = tanh(mlp.a.forward(x));
      hidden = h.f32().slice();
      mlp.b.forward(h);
    },
    { exclude: [] },
  );
  const expect = (d: Float32Array, K: number): number[] => Array.from({ length: K }, (_, j) => Math.sqrt(Array.from({ length: d.length / K }, (_, i) => d[i * K + j] ** 2).reduce((p, q) => p + q, 0)));
  const close = (a: Float32Array | undefined, b: number[]): void => b.forEach((v, i) => assert.ok(Math.abs(a![i] - v) < 1e-5 * (1 + v)));
  close(norms.get('a.weight'), expect(x.f32(), 4));
  close(norms.get('b.weight'), expect(hidden, 6));
  assert.equal(Object.getOwnPropertyDescriptor(mlp.a, 'forward'), undefined, 'hooks removed');
});
