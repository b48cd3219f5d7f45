/**
 * Llama -> HAT conversion: a HF-layout Llama checkpoint written by the test (BF16, sharded)
 * converts; every backbone tensor holds exactly the source values (raw bits compared), also
 * after saving as BF16 or F32 and loading again; the HAT backbone computes what the Llama's
 * blocks compute; the converted model runs forward and generates; bad inputs give errors that
 * name the file and the field or tensor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Tensor, noGrad } from '../../src/tensor/index.js';
import { Rng } from '../../src/nn/index.js';
import { bf16ToF32, f32ToBf16, openCheckpoint } from '../../src/io/index.js';
import { HatSplitter, HATModel, batchFromWords, generate, loadHATModel, saveHATModel } from '../../src/models/hat/index.js';
import { generateUncached } from '../../src/models/hat/generate.js';
import { loadLlama } from '../../src/models/llama/index.js';
import { ConversionError, convertLlamaToHAT, llamaSourceName } from '../../src/convert/llama_to_hat.js';
import { BASE_CONFIG, tmpDir, writeFixture } from '../llama/fixture.js';

/** byte modules small enough for quick tests */
const SMALL_BYTES = { byteHidden: 16, byteHeads: 2, byteKvHeads: 1, byteIntermediate: 24, encoderLayers: 1, decoderLayers: 1, slidingWindow: 16 };

/** The raw stored bits of a BF16 tensor. */
function rawBf16(dir: string, name: string): Uint16Array {
  const ck = openCheckpoint(dir);
  try {
    const t = ck.read(name);
    assert.equal(t.dtype, 'BF16', name);
    return Uint16Array.from(t.data as Uint16Array);
  } finally {
    ck.close();
  }
}

function f32Bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

test('a sharded BF16 Llama converts: backbone config = Llama shape, backbone tensors bit-identical, embedding/norm/head dropped', () => {
  const src = writeFixture(tmpDir('conv-src'), { tied: false, seed: 11 });
  assert.ok(fs.existsSync(nodePath.join(src.dir, 'model.safetensors.index.json')), 'fixture is sharded');
  const conv = convertLlamaToHAT(src.dir, { preset: 'tiny', bytes: SMALL_BYTES, seed: 3 });
  const bb = conv.model.config.backbone_config;
  assert.equal(bb.hidden_size, BASE_CONFIG.hidden_size);
  assert.equal(bb.num_hidden_layers, BASE_CONFIG.num_hidden_layers);
  assert.equal(bb.num_attention_heads, BASE_CONFIG.num_attention_heads);
  assert.equal(bb.num_key_value_heads, BASE_CONFIG.num_key_value_heads);
  assert.equal(bb.intermediate_size, BASE_CONFIG.intermediate_size);
  assert.equal(bb.rms_norm_eps, BASE_CONFIG.rms_norm_eps);
  assert.equal(bb.rope_theta, BASE_CONFIG.rope_theta);
  assert.deepEqual(bb.rope_scaling, BASE_CONFIG.rope_scaling);
  assert.equal(bb.vocab_size, 0);
  assert.equal(conv.model.config.encoder_config.hidden_size, 16);
  assert.equal(conv.model.config.decoder_config.hidden_size, 16);
  assert.deepEqual(conv.sourceDtypes, ['BF16']);
  assert.deepEqual([...conv.dropped].sort(), ['lm_head.weight', 'model.embed_tokens.weight', 'model.norm.weight']);
  const bbNames = conv.model.store.names().filter((n) => n.startsWith('backbone.'));
  assert.equal(bbNames.length, 9 * BASE_CONFIG.num_hidden_layers);
  assert.deepEqual([...conv.copied].sort(), [...bbNames].sort());
  for (const name of bbNames) {
    const srcName = llamaSourceName(name);
    assert.ok(srcName !== undefined);
    const want = bf16ToF32(rawBf16(src.dir, srcName));
    const got = conv.model.store.get(name).f32();
    assert.deepEqual(f32Bits(got), f32Bits(want), `${name} differs from ${srcName}`);
  }
  // nothing but the backbone came from the Llama; the rest is initialised with the seed
  for (const name of conv.initialised) assert.ok(!name.startsWith('backbone.'), name);
  const again = convertLlamaToHAT(src.dir, { preset: 'tiny', bytes: SMALL_BYTES, seed: 3 });
  const other = convertLlamaToHAT(src.dir, { preset: 'tiny', bytes: SMALL_BYTES, seed: 4 });
  const w = 'encoder.embedding_layer.weight';
  assert.deepEqual(again.model.store.get(w).f32(), conv.model.store.get(w).f32(), 'same seed, same init');
  assert.notDeepEqual(other.model.store.get(w).f32(), conv.model.store.get(w).f32(), 'another seed, another init');
});

test('saved as BF16 the backbone tensors are the source bytes; saved as F32 they load back bit-identical', () => {
  const src = writeFixture(tmpDir('conv-save'), { tied: true, seed: 12 });
  const conv = convertLlamaToHAT(src.dir, { bytes: SMALL_BYTES });
  const outBf = tmpDir('conv-save-bf16');
  saveHATModel(outBf, conv.model, { dtype: 'BF16', maxShardBytes: 4000 });
  const outF = tmpDir('conv-save-f32');
  saveHATModel(outF, conv.model, { dtype: 'F32' });
  const loaded = loadHATModel(outF);
  let n = 0;
  for (const name of conv.copied) {
    const srcName = llamaSourceName(name) as string;
    const srcBits = rawBf16(src.dir, srcName);
    assert.deepEqual(rawBf16(outBf, name), srcBits, `${name}: BF16 bytes differ from ${srcName}`);
    assert.deepEqual(f32Bits(loaded.store.get(name).f32()), f32Bits(bf16ToF32(srcBits)), name);
    n++;
  }
  assert.equal(n, 18);
});

test('the converted backbone computes what the Llama blocks compute (same RoPE scaling, norms, GQA)', () => {
  const src = writeFixture(tmpDir('conv-eq'), { tied: false, seed: 13 });
  const conv = convertLlamaToHAT(src.dir, { bytes: SMALL_BYTES });
  const llama = loadLlama(src.dir).model;
  const W = 9;
  const H = BASE_CONFIG.hidden_size;
  const rng = new Rng(5);
  const x = new Float32Array(W * H);
  rng.fillNormal(x, 0, 1);
  const positions = Int32Array.from({ length: W }, (_, i) => i);
  noGrad(() => {
    const got = conv.model.backbone(new Tensor(x.slice(), [1, W, H]), { positions }).f32();
    let h = new Tensor(x.slice(), [1, W, H]);
    for (const layer of llama.layers) h = layer.forward(h, { positions });
    const want = h.f32();
    assert.deepEqual(got, want);
    // and it is not the identity: the blocks change the input
    assert.ok(want.some((v, i) => Math.abs(v - x[i]) > 1e-3));
  });
});

test('the converted HAT runs forward (finite loss) and generates the same bytes cached and uncached', () => {
  const src = writeFixture(tmpDir('conv-gen'), { tied: false, seed: 14 });
  const conv = convertLlamaToHAT(src.dir, { bytes: SMALL_BYTES, seed: 1 });
  const model: HATModel = conv.model;
  const sp = new HatSplitter();
  const words = sp.encode('Hallo Welt, wie geht es dir?');
  const { loss, bpb, count } = model.loss(batchFromWords([{ words }]));
  assert.ok(Number.isFinite(loss.item()) && loss.item() > 0);
  assert.ok(Math.abs(bpb - loss.item() / Math.LN2) < 1e-5);
  assert.ok(count > 0);
  const opts = { maxBytes: 12, temperature: 1, seed: 7 };
  const a = generate(model, sp, 'Hallo Welt,', opts);
  const b = generateUncached(model, sp, 'Hallo Welt,', opts);
  assert.ok(a.bytes.length > 0);
  assert.deepEqual(a.bytes, b.bytes);
  assert.deepEqual(a.wordStarts, b.wordStarts);
});

test('bad input: not a Llama, missing / mis-shaped / unexpected tensors, unknown preset, attention bias', () => {
  const base = tmpDir('conv-bad');
  const err = (dir: string, re: RegExp, opts = {}): void => {
    assert.throws(() => convertLlamaToHAT(dir, { bytes: SMALL_BYTES, ...opts }), (e: unknown) => e instanceof ConversionError && re.test(e.message));
  };
  err(nodePath.join(base, 'nothing'), /not a Llama checkpoint: .*config\.json: cannot read/);
  const hat = writeFixture(nodePath.join(base, 'hat'), { tied: false, seed: 1, configPatch: { model_type: 'hierarchical_autoregressive_transformer' } });
  err(hat.dir, /not a Llama checkpoint: .*"model_type" is "hierarchical_autoregressive_transformer"/);
  const missing = writeFixture(nodePath.join(base, 'missing'), { tied: false, seed: 1, drop: ['model.layers.1.mlp.up_proj.weight'] });
  err(missing.dir, /missing tensor model\.layers\.1\.mlp\.up_proj\.weight/);
  const shape = writeFixture(nodePath.join(base, 'shape'), { tied: false, seed: 1, configPatch: { intermediate_size: 40 } });
  err(shape.dir, /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" in model-0000\d-of-0000\d\.safetensors has shape \[48, 32\], config\.json needs \[40, 32\]/);
  const extra = writeFixture(nodePath.join(base, 'extra'), {
    tied: false,
    seed: 1,
    extra: { 'model.layers.0.self_attn.q_norm.weight': { dtype: 'BF16', shape: [8], data: f32ToBf16(new Float32Array(8).fill(1)) } },
  });
  err(extra.dir, /unexpected tensor model\.layers\.0\.self_attn\.q_norm\.weight/);
  const layers = writeFixture(nodePath.join(base, 'layers'), { tied: false, seed: 1, configPatch: { num_hidden_layers: 3 } });
  err(layers.dir, /missing tensors model\.layers\.2\./);
  const bias = writeFixture(nodePath.join(base, 'bias'), { tied: false, seed: 1, configPatch: { attention_bias: true } });
  err(bias.dir, /"attention_bias" is true/);
  err(missing.dir, /unknown preset "huge"/, { preset: 'huge' });
});
