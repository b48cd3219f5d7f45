import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, ParamStore, Rng, VarBuilder, init } from '../../src/nn/index.js';
import { noGrad } from '../../src/tensor/index.js';
import { LlamaLM, argmax, generate, loadLlama, nextTokenLoss, sampleToken, tokenBatch } from '../../src/models/llama/index.js';
import { assertClose } from '../helpers/numeric.js';
import { tmpDir, writeFixture } from './fixture.js';

function fixtureModel(tied: boolean): LlamaLM {
  return loadLlama(writeFixture(tmpDir('gen'), { tied, seed: 31 }).dir).model;
}

test('cached greedy generation equals uncached greedy generation (GQA, llama3 rope, tied and untied)', () => {
  for (const tied of [false, true]) {
    const model = fixtureModel(tied);
    const prompt = [1, 17, 4, 29, 8];
    const opts = { maxNewTokens: 24, stopTokens: [] };
    const cached = generate(model, prompt, opts);
    const uncached = generate(model, prompt, { ...opts, useCache: false });
    assert.equal(cached.tokens.length, 24);
    assert.deepEqual(cached.tokens, uncached.tokens);
    assert.equal(cached.stop, 'max_new_tokens');
    // and each greedy token is the argmax of a full forward over the sequence so far
    const seq = [...prompt, ...cached.tokens];
    const full = noGrad(() => model.forward(Int32Array.from(seq), 1, seq.length)).f32();
    const V = model.cfg.vocabSize;
    for (let i = 0; i < cached.tokens.length; i++) {
      const t = prompt.length - 1 + i;
      assert.equal(cached.tokens[i], argmax(full.subarray(t * V, (t + 1) * V)), `token ${i}`);
    }
    // (a random tied model tends to repeat its input token; the untied one must not be trivial)
    if (!tied) assert.ok(new Set(cached.tokens).size > 2, `the continuation is not one repeated token: ${cached.tokens.join(' ')}`);
  }
});

test('cached per-step logits equal the full forward', () => {
  const model = fixtureModel(false);
  const ids = Int32Array.from([3, 9, 14, 2, 22, 30, 5, 11]);
  const V = model.cfg.vocabSize;
  const full = noGrad(() => model.forward(ids, 1, ids.length)).f32();
  const cache = model.newCache();
  noGrad(() => {
    const first = model.forward(ids.subarray(0, 3), 1, 3, { cache }).f32();
    assertClose(first, full.subarray(0, 3 * V), { rtol: 1e-5, atol: 1e-5 });
    for (let t = 3; t < ids.length; t++) {
      const step = model.forward(ids.subarray(t, t + 1), 1, 1, { cache }).f32();
      assertClose(step, full.subarray(t * V, (t + 1) * V), { rtol: 1e-5, atol: 1e-5, what: `step ${t}` });
    }
  });
});

test('seeded sampling: cached == uncached, same seed same tokens, other seed other tokens; stop token ends', () => {
  const model = fixtureModel(true);
  const prompt = [1, 6];
  const opts = { maxNewTokens: 30, temperature: 1.5, topK: 20, topP: 0.95, seed: 7, stopTokens: [] };
  const a = generate(model, prompt, opts);
  const b = generate(model, prompt, { ...opts, useCache: false });
  assert.deepEqual(a.tokens, b.tokens);
  assert.deepEqual(generate(model, prompt, opts).tokens, a.tokens);
  assert.notDeepEqual(generate(model, prompt, { ...opts, seed: 8 }).tokens, a.tokens);
  const stopAt = a.tokens[4];
  const firstStop = a.tokens.indexOf(stopAt);
  const s = generate(model, prompt, { ...opts, stopTokens: [stopAt] });
  assert.equal(s.stop, 'stop_token');
  assert.deepEqual(s.tokens, a.tokens.subarray(0, firstStop + 1));
  const seen: number[] = [];
  generate(model, prompt, { ...opts, maxNewTokens: 5, onToken: (t) => seen.push(t) });
  assert.deepEqual(seen, [...a.tokens.subarray(0, 5)]);
  assert.throws(() => generate(model, [], opts), /at least one token/);
  assert.throws(() => generate(model, [99], opts), /prompt token 0 is 99, outside the vocabulary \[0, 37\)/);
  assert.throws(() => generate(model, prompt, { ...opts, topP: 0 }), /topP must be in \(0, 1\]/);
});

test('sampleToken: greedy, top-k, top-p and the sampled frequencies', () => {
  const logits = [0.5, 2.0, -1.0, 2.0, 1.0, 0.0];
  const rng = new Rng(1);
  assert.equal(sampleToken(logits, {}, rng), 1, 'greedy takes the first maximum');
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, { temperature: 1, topK: 1 }, rng), 1);
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, { temperature: 5, topP: 0.01 }, rng), 1);
  for (let i = 0; i < 200; i++) assert.ok([1, 3].includes(sampleToken(logits, { temperature: 2, topK: 2 }, rng)));
  // softmax(logits) p = e^x / Z (Z = 20.51): the top two hold 0.72, the top three 0.85, the top four 0.93
  const nucleus = new Set<number>();
  for (let i = 0; i < 300; i++) nucleus.add(sampleToken(logits, { temperature: 1, topP: 0.8 }, rng));
  assert.deepEqual([...nucleus].sort(), [1, 3, 4]);
  const n = 20000;
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1 }, rng)]++;
  const z = logits.reduce((s, x) => s + Math.exp(x), 0);
  logits.forEach((x, i) => {
    const p = Math.exp(x) / z;
    const sd = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(counts[i] / n - p) < 5 * sd + 1e-9, `token ${i}: frequency ${counts[i] / n} vs p ${p}`);
  });
});

test('a few AdamW steps on the next-token loss fit a short sequence (tied weights train)', () => {
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { rng: 3, defaultInit: init.normal(0.05) }), {
    vocabSize: 16,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    tieWordEmbeddings: true,
  });
  assert.equal(store.has('lm_head.weight'), false);
  const seq = [1, 5, 9, 3, 12, 7, 2, 14, 6, 11, 4, 8, 13, 10, 15, 0];
  const batch = tokenBatch([seq, seq.slice(3)], 15);
  assert.equal(batch.targets[2 * 15 - 1], -100, 'the shorter row is padded with ignored targets');
  const opt = new AdamW(store.trainable(), { lr: 3e-2, weightDecay: 0 });
  const first = nextTokenLoss(model, batch).loss.item();
  let last = first;
  for (let i = 0; i < 30; i++) {
    store.zeroGrad();
    const { loss } = model.loss(batch);
    loss.backward();
    opt.step();
    last = loss.item();
  }
  assert.ok(first > 2, `initial loss ${first} near log(16)`);
  assert.ok(last < 0.3 * first, `loss ${first} -> ${last}`);
});
