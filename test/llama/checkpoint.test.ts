import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ParamStore, Rng, VarBuilder, init } from '../../src/nn/index.js';
import { noGrad } from '../../src/tensor/index.js';
import { openCheckpoint } from '../../src/io/index.js';
import { LlamaLM, loadLlama, saveLlama, readLlamaConfig, parseLlamaConfig, nextTokenLoss, tokenBatch } from '../../src/models/llama/index.js';
import { assertClose } from '../helpers/numeric.js';
import { BASE_CONFIG, referenceLogits, tmpDir, writeFixture } from './fixture.js';

function randomIds(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(vocab));
}

for (const tied of [false, true]) {
  test(`HF Llama checkpoint (bf16, sharded, GQA, llama3 rope, ${tied ? 'tied' : 'untied'}): logits match a float64 reference`, () => {
    const { dir, weights, config } = writeFixture(tmpDir('ref'), { tied, seed: tied ? 11 : 12 });
    const files = fs.readdirSync(dir);
    assert.ok(files.includes('model.safetensors.index.json'), 'fixture is sharded');
    assert.ok(files.filter((f) => f.endsWith('.safetensors')).length >= 2, 'at least two shards');
    const { model, store, dtypes } = loadLlama(dir);
    assert.deepEqual(dtypes, ['BF16']);
    assert.equal(store.has('lm_head.weight'), !tied);
    if (tied) assert.equal(model.lmHead.weight, model.embedTokens.weight, 'the head uses the embedding tensor itself');
    assert.equal(model.cfg.ropeScaling?.type, 'llama3');
    const B = 2;
    const T = 9;
    const ids = randomIds(new Rng(3), B * T, config.vocab_size);
    const logits = noGrad(() => model.forward(ids, B, T));
    assert.deepEqual(logits.shape, [B, T, config.vocab_size]);
    const expected: number[] = [];
    for (let b = 0; b < B; b++) for (const row of referenceLogits(config, weights, ids.subarray(b * T, (b + 1) * T))) expected.push(...row);
    assertClose(logits.f32(), expected, { rtol: 2e-4, atol: 2e-4, what: 'logits' });
    // the scaled frequencies matter: the same weights without rope scaling give other logits
    const unscaled: number[] = referenceLogits({ ...config, rope_scaling: null as unknown as typeof BASE_CONFIG.rope_scaling }, weights, ids.subarray(0, T)).flatMap((r) => [...r]);
    const maxDiff = Math.max(...unscaled.map((v, i) => Math.abs(v - expected[i])));
    assert.ok(maxDiff > 1e-2, `rope scaling changes the logits (max diff ${maxDiff})`);

    // lastOnly gives the last row of the full forward
    const last = noGrad(() => model.forward(ids, B, T, { lastOnly: true }));
    assert.deepEqual(last.shape, [B, 1, config.vocab_size]);
    const V = config.vocab_size;
    for (let b = 0; b < B; b++) {
      assertClose(last.f32().subarray(b * V, (b + 1) * V), logits.f32().subarray((b * T + T - 1) * V, (b * T + T) * V), { rtol: 1e-5, atol: 1e-5 });
    }

    // the training loss is the mean cross-entropy of the reference logits
    const batch = tokenBatch([ids.subarray(0, T)], T - 1);
    const { loss, tokens } = nextTokenLoss(model, batch);
    assert.equal(tokens, T - 1);
    let ce = 0;
    const ref0 = referenceLogits(config, weights, ids.subarray(0, T - 1));
    for (let t = 0; t < T - 1; t++) {
      const row = ref0[t];
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      ce += lse - row[ids[t + 1]];
    }
    assertClose([loss.item()], [ce / (T - 1)], { rtol: 1e-4, atol: 1e-5, what: 'loss' });
  });

  test(`save -> load gives identical logits (${tied ? 'tied' : 'untied'}, f32 and bf16, single file and sharded)`, () => {
    const { dir, config } = writeFixture(tmpDir('src'), { tied, seed: 21 });
    const { model } = loadLlama(dir);
    const ids = randomIds(new Rng(4), 8, config.vocab_size);
    const before = noGrad(() => model.forward(ids, 1, 8)).f32().slice();
    for (const [dtype, maxShardBytes] of [['F32', undefined], ['BF16', 5000]] as const) {
      const out = tmpDir('save');
      saveLlama(model, out, { dtype, maxShardBytes });
      const ck = openCheckpoint(out);
      assert.equal(ck.has('lm_head.weight'), !tied, 'a tied checkpoint has no lm_head.weight');
      assert.equal(ck.sharded, maxShardBytes !== undefined);
      assert.ok(ck.names().every((n) => ck.info(n).dtype === dtype));
      ck.close();
      assert.ok(!fs.readdirSync(out).some((f) => f.includes('.tmp-')), 'no temp files left');
      const re = loadLlama(out);
      assert.deepEqual(re.config, readLlamaConfig(dir), 'config.json round trip');
      const after = noGrad(() => re.model.forward(ids, 1, 8)).f32();
      // the weights came from bf16, so bf16 storage is exact too
      assert.deepEqual(after, before, `${dtype}: identical logits`);
    }
  });
}

test('a checkpoint with an old rotary inv_freq buffer, and a tied checkpoint that also stores lm_head.weight, load', () => {
  const extra = { 'model.layers.0.self_attn.rotary_emb.inv_freq': { dtype: 'F32' as const, shape: [4], data: new Float32Array([1, 0.1, 0.01, 0.001]) } };
  const { dir } = writeFixture(tmpDir('invfreq'), { tied: false, seed: 5, extra });
  assert.doesNotThrow(() => loadLlama(dir));
  const tiedExtra = { 'lm_head.weight': { dtype: 'F32' as const, shape: [37, 32], data: new Float32Array(37 * 32).fill(0.5) } };
  const { dir: d2 } = writeFixture(tmpDir('tiedhead'), { tied: true, seed: 5, extra: tiedExtra });
  const { model } = loadLlama(d2);
  assert.notEqual(model.lmHead.weight.f32()[0], 0.5, 'the tied head is the embedding, not the stored lm_head.weight');
});

function loadError(dir: string): string {
  try {
    loadLlama(dir);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`loading ${dir} should fail`);
}

test('bad checkpoints give errors that name the tensor or field', () => {
  const missing = loadError(writeFixture(tmpDir('bad'), { tied: false, seed: 1, drop: ['model.layers.1.mlp.up_proj.weight'] }).dir);
  assert.match(missing, /missing tensors: model\.layers\.1\.mlp\.up_proj\.weight/);

  const extra = { 'model.layers.0.self_attn.q_norm.weight': { dtype: 'BF16' as const, shape: [8], data: new Uint16Array(8).fill(0x3f80) } };
  assert.match(loadError(writeFixture(tmpDir('bad'), { tied: false, seed: 1, extra }).dir), /unexpected tensors: model\.layers\.0\.self_attn\.q_norm\.weight/);

  // the files say 37 tokens, config.json says 40
  const shape = loadError(writeFixture(tmpDir('bad'), { tied: false, seed: 1, configPatch: { vocab_size: 40 } }).dir);
  assert.match(shape, /mis-shaped tensors: model\.embed_tokens\.weight is \[37, 32\] in model-\d+-of-\d+\.safetensors, the config needs \[40, 32\]/);
  assert.match(shape, /lm_head\.weight is \[37, 32\]/);

  const untied = loadError(writeFixture(tmpDir('bad'), { tied: true, seed: 1, configPatch: { tie_word_embeddings: false } }).dir);
  assert.match(untied, /missing tensors: lm_head\.weight.*tie_word_embeddings/);

  const ints = { 'model.norm.weight': { dtype: 'I32' as const, shape: [32], data: new Int32Array(32) } };
  const intDir = writeFixture(tmpDir('bad'), { tied: false, seed: 1, drop: ['model.norm.weight'], extra: ints }).dir;
  assert.match(loadError(intDir), /non-float dtype: model\.norm\.weight is I32/);

  const d = writeFixture(tmpDir('bad'), { tied: false, seed: 1 }).dir;
  fs.rmSync(nodePath.join(d, 'config.json'));
  assert.match(loadError(d), /config\.json: cannot read: ENOENT/);
  fs.writeFileSync(nodePath.join(d, 'config.json'), '{"vocab_size": 37,');
  assert.match(loadError(d), /config\.json: not valid JSON/);

  const shard = writeFixture(tmpDir('bad'), { tied: false, seed: 1 }).dir;
  fs.rmSync(nodePath.join(shard, fs.readdirSync(shard).filter((f) => f.endsWith('.safetensors')).sort()[1]));
  assert.match(loadError(shard), /model-00002-of-\d+\.safetensors.*does not exist/);
});

test('config.json validation names the field', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ num_key_value_heads: 3 }, /"num_key_value_heads" \(3\) must divide num_attention_heads \(4\)/],
    [{ hidden_size: 30 }, /"hidden_size" \(30\) is not divisible by num_attention_heads \(4\)/],
    [{ vocab_size: -1 }, /"vocab_size" must be a positive integer, got -1/],
    [{ intermediate_size: undefined }, /"intermediate_size" is missing/],
    [{ rms_norm_eps: '1e-5' }, /"rms_norm_eps" must be a positive number/],
    [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, /"rope_scaling" is invalid: .*"yarn" is not supported/],
    [{ rope_scaling: { rope_type: 'llama3', factor: 8 } }, /"rope_scaling" is invalid: rope_scaling\.low_freq_factor must be a finite number/],
    [{ tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false/],
    [{ eos_token_id: 99 }, /"eos_token_id" must be a token id in \[0, 37\)/],
    [{ model_type: 'mistral' }, /"model_type" is "mistral"; only "llama"/],
    [{ hidden_act: 'gelu' }, /"hidden_act" is "gelu"/],
    [{ head_dim: 7 }, /"head_dim" must be even/],
  ];
  for (const [patch, re] of bad) {
    const json = { ...BASE_CONFIG, ...patch };
    assert.throws(() => parseLlamaConfig(json, 'x/config.json'), (e: Error) => re.test(e.message) && e.message.startsWith('x/config.json: field'), JSON.stringify(patch));
  }
  const ok = parseLlamaConfig({ ...BASE_CONFIG, eos_token_id: [2, 3], head_dim: 16, rope_scaling: null }, 'c');
  assert.deepEqual(ok.eos_token_id, [2, 3]);
  assert.equal(ok.head_dim, 16);
  assert.equal(parseLlamaConfig({ ...BASE_CONFIG, num_key_value_heads: undefined }).num_key_value_heads, 4, 'default: multi-head');
});

test('head_dim different from hidden/heads: save -> load round trip; a folder without weights is named', () => {
  const store = new ParamStore();
  const cfg = { vocabSize: 37, hiddenSize: 32, intermediateSize: 48, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: 16, tieWordEmbeddings: true, attentionBias: true };
  const model = new LlamaLM(new VarBuilder(store, { rng: 9, defaultInit: init.normal(0.2) }), cfg);
  assert.deepEqual(store.get('model.layers.0.self_attn.q_proj.weight').shape, [64, 32]);
  assert.ok(store.has('model.layers.0.self_attn.q_proj.bias'));
  const dir = tmpDir('hd');
  saveLlama(model, dir);
  const re = loadLlama(dir);
  assert.equal(re.config.head_dim, 16);
  assert.equal(re.config.attention_bias, true);
  const ids = Int32Array.from([1, 5, 7, 30]);
  assert.deepEqual(noGrad(() => re.model.forward(ids, 1, 4)).f32(), noGrad(() => model.forward(ids, 1, 4)).f32());
  const empty = tmpDir('empty');
  fs.copyFileSync(nodePath.join(dir, 'config.json'), nodePath.join(empty, 'config.json'));
  assert.match(loadError(empty), /neither model\.safetensors nor model\.safetensors\.index\.json/);
});
