import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, add, noGrad, slice, sum, mul } from '../../src/tensor/index.js';
import {
  HATConfigError,
  hatConfigToJSON,
  parseHATConfig,
  presetConfig,
  PRESETS,
} from '../../src/models/hat/config.js';
import { HATModel, IGNORE_INDEX, batchFromWords, prepareLayout } from '../../src/models/hat/model.js';
import { Rng, assertClose, forEachBackend, stridedValues } from '../helpers/numeric.js';
import { refHAT } from './reference.js';
import { concatBytes, randomModel, spaceWords, testConfig, wordLens } from './util.js';

// ---- config ----------------------------------------------------------------------------------

test('hat config: presets are valid; tiny and small have the intended sizes', () => {
  const tiny = new HATModel(presetConfig('tiny'));
  const small = new HATModel(presetConfig('small'));
  assert.ok(tiny.numParams() > 1e6 && tiny.numParams() < 5e6, `tiny has ${tiny.numParams()} parameters`);
  assert.ok(small.numParams() > 1e7 && small.numParams() < 1e8, `small has ${small.numParams()} parameters`);
  assert.equal(presetConfig('tiny').decoder_config.hidden_size, PRESETS.tiny.byteHidden);
  assert.throws(() => presetConfig('huge'), /unknown preset "huge" \(known: tiny, small\)/);
});

test('hat config: config.json round trip keeps every field; the reference key names are written', () => {
  const cfg = testConfig({ crossEveryLayer: false });
  const json = hatConfigToJSON(cfg);
  assert.deepEqual(parseHATConfig(JSON.parse(JSON.stringify(json))), cfg);
  for (const k of ['encoder_config', 'backbone_config', 'decoder_config', 'special_token_dict', 'max_word_size', 'sliding_window', 'eos_token_id', 'model_type', 'auto_map']) {
    assert.ok(k in json, `config.json lacks ${k}`);
  }
  const dec = json.decoder_config as Record<string, unknown>;
  for (const k of ['cross_attn_every_layer', 'cross_attention_config', 'rope_theta', 'rope_scaling', 'num_key_value_heads', 'intermediate_size', 'rms_norm_eps', 'key_query_norm', 'sliding_window']) {
    assert.ok(k in dec, `decoder_config lacks ${k}`);
  }
  assert.deepEqual(Object.keys(dec.cross_attention_config as object).sort(), [
    'attention_num_kv_heads',
    'hidden_size',
    'hidden_size_kv',
    'hidden_size_q',
    'key_query_norm',
    'key_query_norm_per_head',
    'num_attention_heads',
    'word_window_size',
  ]);
});

test('hat config: defaults as the reference (eos 192, max_word_size 100, <|eot_id|> = 192, no window)', () => {
  const j = hatConfigToJSON(testConfig()) as Record<string, Record<string, unknown>>;
  for (const k of ['eos_token_id', 'max_word_size', 'special_token_dict', 'sliding_window', 'max_position_embeddings', 'transformers_version', 'torch_dtype']) delete (j as Record<string, unknown>)[k];
  for (const m of ['encoder_config', 'backbone_config', 'decoder_config']) {
    for (const k of ['use_cache', 'sliding_window', 'key_query_norm', 'key_query_norm_per_head', 'is_neox_style', 'mlp_bias', 'rope_scaling', 'max_position_embeddings']) delete j[m][k];
  }
  delete j.backbone_config.vocab_size;
  const c = parseHATConfig(j);
  assert.equal(c.eos_token_id, 192);
  assert.equal(c.max_word_size, 100);
  assert.equal(c.sliding_window, 768);
  assert.deepEqual(c.special_token_dict, { '<|eot_id|>': 192 });
  assert.equal(c.encoder_config.sliding_window, null);
  assert.equal(c.backbone_config.vocab_size, 0);
  assert.equal(c.decoder_config.rope_scaling, null);
  assert.equal(c.encoder_config.max_position_embeddings, 262144);
});

test('hat config: errors name the field path', () => {
  const base = (): Record<string, Record<string, unknown>> => JSON.parse(JSON.stringify(hatConfigToJSON(testConfig()))) as Record<string, Record<string, unknown>>;
  const bad = (edit: (j: Record<string, Record<string, unknown>>) => void, re: RegExp): void => {
    const j = base();
    edit(j);
    assert.throws(() => parseHATConfig(j, 'x/config.json'), (e: unknown) => e instanceof HATConfigError && re.test(e.message));
  };
  bad((j) => delete j.encoder_config.hidden_size, /^x\/config\.json: encoder_config\.hidden_size: is required/);
  bad((j) => (j.backbone_config.num_hidden_layers = 'two'), /backbone_config\.num_hidden_layers: must be an integer, got "two"/);
  bad((j) => (j.decoder_config.hidden_size = 32), /decoder_config\.hidden_size: must equal 16/);
  bad((j) => ((j.encoder_config.cross_attention_config as Record<string, unknown>).hidden_size_q = 7), /encoder_config\.cross_attention_config\.hidden_size_q: must equal 24/);
  bad((j) => delete j.decoder_config.cross_attn_every_layer, /decoder_config\.cross_attn_every_layer: is required/);
  bad((j) => (j.special_token_dict = { '<|x|>': 300 }), /special_token_dict\.<\|x\|>: must be a byte value/);
  bad((j) => (j.encoder_config.vocab_size = 128), /encoder_config\.vocab_size: must equal 256/);
  bad((j) => (j.backbone_config.num_key_value_heads = 3), /backbone_config\.num_key_value_heads/);
  bad((j) => (j.encoder_config.rope_scaling = { rope_type: 'yarn' }), /encoder_config\.rope_scaling: .*yarn/);
  bad((j) => (j.encoder_config.key_query_norm = true), /encoder_config\.key_query_norm: .*not supported/);
  bad((j) => delete j.backbone_config, /backbone_config: is required/);
  assert.throws(() => parseHATConfig([1, 2]), /must be a JSON object/);
});

// ---- parameter names -------------------------------------------------------------------------

test('hat model: parameter names and shapes are the released safetensors names', () => {
  const cfg = testConfig({ crossEveryLayer: false, encoderLayers: 1, decoderLayers: 2, backboneLayers: 1 });
  const m = new HATModel(cfg);
  const shapes = new Map(m.store.entries().map(([n, t]) => [n, t.shape.slice()]));
  const Henc = 16;
  const Hbb = 24;
  const Hx = 16; // cross-attention width; 2 heads, 1 kv head -> k/v width 8
  const expect: [string, number[]][] = [
    ['encoder.embedding_layer.weight', [256, Henc]],
    ['encoder.layers.0.self_attn.q_proj.weight', [Henc, Henc]],
    ['encoder.layers.0.self_attn.k_proj.weight', [8, Henc]],
    ['encoder.layers.0.self_attn.v_proj.weight', [8, Henc]],
    ['encoder.layers.0.self_attn.o_proj.weight', [Henc, Henc]],
    ['encoder.layers.0.mlp.gate_proj.weight', [24, Henc]],
    ['encoder.layers.0.mlp.up_proj.weight', [24, Henc]],
    ['encoder.layers.0.mlp.down_proj.weight', [Henc, 24]],
    ['encoder.layers.0.input_layernorm.weight', [Henc]],
    ['encoder.layers.0.post_attention_layernorm.weight', [Henc]],
    ['encoder_connector.latent_query', [1, 1, Hbb]],
    ['encoder_connector.cross_attention_encoder_connector.q_proj.weight', [Hx, Hbb]],
    ['encoder_connector.cross_attention_encoder_connector.k_proj.weight', [Hx / 2, Henc]],
    ['encoder_connector.cross_attention_encoder_connector.v_proj.weight', [Hx / 2, Henc]],
    ['encoder_connector.cross_attention_encoder_connector.o_proj.weight', [Hbb, Hx]],
    ['backbone.layers.0.self_attn.q_proj.weight', [Hbb, Hbb]],
    ['backbone.layers.0.self_attn.k_proj.weight', [12, Hbb]],
    ['backbone.layers.0.mlp.down_proj.weight', [Hbb, 32]],
    ['backbone.layers.0.post_attention_layernorm.weight', [Hbb]],
    ['decoder_connector.first_word_embedding', [1, 1, Hbb]],
    ['decoder.decoder_layers.0.query_norm.weight', [Henc]],
    ['decoder.decoder_layers.0.kv_norm.weight', [Hbb]],
    ['decoder.decoder_layers.0.cross_attention.q_proj.weight', [Hx, Henc]],
    ['decoder.decoder_layers.0.cross_attention.k_proj.weight', [Hx / 2, Hbb]],
    ['decoder.decoder_layers.0.cross_attention.v_proj.weight', [Hx / 2, Hbb]],
    ['decoder.decoder_layers.0.cross_attention.o_proj.weight', [Henc, Hx]],
    ['decoder.decoder_layers.0.llama_layer.self_attn.q_proj.weight', [Henc, Henc]],
    ['decoder.decoder_layers.0.llama_layer.mlp.up_proj.weight', [24, Henc]],
    ['decoder.decoder_layers.1.query_norm.weight', [Henc]],
    ['decoder.decoder_layers.1.kv_norm.weight', [Hbb]],
    ['decoder.decoder_layers.1.llama_layer.input_layernorm.weight', [Henc]],
    ['layer_norm.weight', [Henc]],
    ['lm_head.weight', [256, Henc]],
  ];
  for (const [n, s] of expect) assert.deepEqual(shapes.get(n), s, `${n}`);
  // cross-attention only in layer 0 when cross_attn_every_layer is false; no backbone embedding/norm/head
  assert.ok(!m.store.names().some((n) => n.startsWith('decoder.decoder_layers.1.cross_attention')));
  assert.ok(!m.store.names().some((n) => /^backbone\.(embed|norm|lm_head)/.test(n)));
  assert.equal(m.store.size, 10 + 5 + 9 + 1 + (2 + 4 + 9) + (2 + 9) + 2);
  // every name is one of the released patterns
  const patterns = [
    /^encoder\.embedding_layer\.weight$/,
    /^(encoder|backbone)\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj|input_layernorm|post_attention_layernorm)\.weight$/,
    /^encoder_connector\.latent_query$/,
    /^encoder_connector\.cross_attention_encoder_connector\.[qkvo]_proj\.weight$/,
    /^decoder_connector\.first_word_embedding$/,
    /^decoder\.decoder_layers\.\d+\.(query_norm|kv_norm|cross_attention\.[qkvo]_proj)\.weight$/,
    /^decoder\.decoder_layers\.\d+\.llama_layer\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj|input_layernorm|post_attention_layernorm)\.weight$/,
    /^layer_norm\.weight$/,
    /^lm_head\.weight$/,
  ];
  for (const n of m.store.names()) assert.ok(patterns.some((p) => p.test(n)), `unexpected name ${n}`);
  // key_query_norm in a cross-attention adds norm_query/norm_key
  const c2 = testConfig();
  c2.encoder_config.cross_attention_config.key_query_norm = true;
  c2.encoder_config.cross_attention_config.key_query_norm_per_head = true;
  const m2 = new HATModel(parseHATConfig(hatConfigToJSON(c2)));
  assert.deepEqual(m2.store.get('encoder_connector.cross_attention_encoder_connector.norm_query.weight').shape, [8]);
  assert.deepEqual(m2.store.get('encoder_connector.cross_attention_encoder_connector.norm_key.weight').shape, [8]);
});

// ---- forward vs float64 reference --------------------------------------------------------------

/** Two rows: row 0 packs two documents then padding, row 1 one document. */
function packedDocs(): { docs: Uint8Array[][]; batch: ReturnType<typeof batchFromWords>; where: [number, number][] } {
  const d0 = spaceWords('ab cde fg');
  const d1 = spaceWords('Zü xy');
  const d2 = spaceWords('the quick brown');
  const batch = batchFromWords(
    [
      { words: [...d0, ...d1], docs: [...d0.map(() => 3), ...d1.map(() => 1)] },
      { words: d2, docs: d2.map(() => 0) },
    ],
    20,
  );
  const n0 = concatBytes(d0).length;
  return { docs: [d0, d1, d2], batch, where: [[0, 0], [0, n0], [1, 0]] as [number, number][] };
}

forEachBackend('hat model: packed forward (both decoder paths) matches the float64 reference per document', () => {
  const m = randomModel(testConfig({ window: 6 }), 1);
  const { docs, batch, where } = packedDocs();
  const shortcut = noGrad(() => m.forward(batch));
  const full = noGrad(() => m.forward(batch, { fullCrossAttention: true }));
  assert.deepEqual(shortcut.shape, [2, 20, 256]);
  docs.forEach((words, i) => {
    const bytes = concatBytes(words);
    const ref = refHAT(m, bytes, wordLens(words));
    const [row, start] = where[i];
    for (const [name, logits] of [['shortcut', shortcut], ['full cross-attention', full]] as const) {
      const got = slice(slice(logits, 0, row, row + 1), 1, start, start + bytes.length);
      assertClose(got, ref.logits, { rtol: 2e-3, atol: 2e-4, what: `logits of document ${i} (${name})` });
    }
  });
  for (const [row, n] of [[0, 15], [1, 15]]) {
    const rows = (t: Tensor): Tensor => slice(slice(t, 0, row, row + 1), 1, 0, n);
    assertClose(rows(shortcut), rows(full), { rtol: 1e-4, atol: 1e-5, what: `guide-vector shortcut vs full cross-attention, row ${row}` });
  }
});

forEachBackend('hat model: connector and backbone stages match the float64 reference', () => {
  const m = randomModel(testConfig({ window: 4 }), 2);
  const words = spaceWords('one two three four');
  const bytes = concatBytes(words);
  const ref = refHAT(m, bytes, wordLens(words));
  const L = prepareLayout(batchFromWords([{ words }]));
  noGrad(() => {
    const h = m.encode(L.bytes, 1, L.T, { positions: L.bytePos, segments: L.byteSeg });
    assertClose(h, ref.h, { rtol: 1e-4, atol: 2e-5, what: 'encoder' });
    const w = m.connect(h, L.W, L);
    assertClose(w, ref.words, { rtol: 1e-4, atol: 2e-5, what: 'connector' });
    assertClose(m.backbone(w, { positions: L.wordPos }), ref.backbone, { rtol: 1e-4, atol: 2e-5, what: 'backbone' });
  });
});

// ---- structure: causality, document resets, prefixes ---------------------------------------------

forEachBackend('hat model: causal (byte t never changes logits before t) and documents do not see each other', () => {
  const m = randomModel(testConfig({ window: 5 }), 3);
  const { batch } = packedDocs();
  const base = stridedValues(noGrad(() => m.forward(batch)));
  const V = 256;
  const rng = new Rng(4);
  for (let trial = 0; trial < 6; trial++) {
    const row = trial % 2;
    const n = batch.cuSeqlens[row][batch.cuSeqlens[row].length - 1];
    const t = rng.int(0, n - 1);
    const bytes = Int32Array.from(batch.bytes);
    bytes[row * batch.T + t] = (bytes[row * batch.T + t] + 1 + rng.int(0, 200)) % 256;
    const out = stridedValues(noGrad(() => m.forward({ ...batch, bytes })));
    let changedAt = -1;
    for (let r = 0; r < 2; r++) {
      for (let p = 0; p < batch.T; p++) {
        let same = true;
        for (let v = 0; v < V; v++) if (out[(r * batch.T + p) * V + v] !== base[(r * batch.T + p) * V + v]) same = false;
        if (!same) {
          assert.equal(r, row, `changing row ${row} byte ${t} changed row ${r}`);
          assert.ok(p >= t, `changing byte ${t} changed logits at ${p}`);
          if (changedAt < 0) changedAt = p;
        }
      }
    }
    assert.equal(changedAt, t, `the changed byte's own logits must change (t = ${t})`);
  }
  // document reset: changing document 1 of row 0 leaves document 2 (bytes 9..) unchanged
  const bytes = Int32Array.from(batch.bytes);
  for (let t = 0; t < 9; t++) bytes[t] = 97 + ((bytes[t] * 7) % 26);
  const out = stridedValues(noGrad(() => m.forward({ ...batch, bytes })));
  const doc2 = (a: Float64Array) => a.subarray(9 * V, 15 * V);
  assert.deepEqual(doc2(out), doc2(base));
  assert.notDeepEqual(out.subarray(0, 9 * V), base.subarray(0, 9 * V));
});

forEachBackend('hat model: logits of a prefix equal the full text\'s (the prefix may end inside a word)', () => {
  const m = randomModel(testConfig({ window: 7 }), 5);
  const words = spaceWords('alpha be gamma delta');
  const full = noGrad(() => m.forward(batchFromWords([{ words }])));
  const bytes = concatBytes(words);
  for (const cut of [3, 6, 9, 13]) {
    // re-split the prefix: words of the full text, the last one truncated
    const pw: number[][] = [];
    let left = cut;
    for (const w of words) {
      if (left <= 0) break;
      pw.push(Array.from(w.subarray(0, Math.min(w.length, left))));
      left -= w.length;
    }
    assert.equal(concatBytes(pw).length, cut);
    const part = noGrad(() => m.forward(batchFromWords([{ words: pw }])));
    assertClose(part, slice(full, 1, 0, cut), { rtol: 1e-5, atol: 1e-6, what: `prefix of ${cut} bytes of ${bytes.length}` });
  }
});

test('hat model: layout targets skip padding and document ends; bad batches give clear errors', () => {
  const { batch } = packedDocs();
  const L = prepareLayout(batch);
  assert.equal(L.W, 5);
  assert.deepEqual(L.nWords, [5, 3]);
  // row 0: doc 0 = bytes 0..8, doc 1 = bytes 9..14, then padding
  assert.equal(L.targets[8], IGNORE_INDEX);
  assert.equal(L.targets[7], batch.bytes[8]);
  assert.equal(L.targets[14], IGNORE_INDEX);
  assert.equal(L.targets[19], IGNORE_INDEX);
  assert.equal(L.bytePos[9], 0);
  assert.equal(L.wordPos[3], 0);
  assert.equal(L.predIndex[0], 0);
  assert.equal(L.predIndex[3], 0);
  assert.equal(L.predIndex[4], 1 + 3);
  assert.equal(L.predIndex[5 + 1], 1 + 5);
  assert.throws(() => prepareLayout({ ...batch, cuSeqlens: [[0, 3, 3], [0, 2]] }), /row 0: cuSeqlens must increase strictly \(entry 2: 3 -> 3\)/);
  assert.throws(() => prepareLayout({ ...batch, cuSeqlens: [[0, 21], [0, 2]] }), /row 0: words cover 21 bytes, more than T = 20/);
  const docs = Int32Array.from(batch.documents as Int32Array);
  docs[1] = 9;
  assert.throws(() => prepareLayout({ ...batch, documents: docs }), /row 0: word 0 \(bytes 0\.\.1\) spans documents 3 and 9/);
  const bytes = Int32Array.from(batch.bytes);
  bytes[2] = 256;
  assert.throws(() => prepareLayout({ ...batch, bytes }), /row 0, byte 2: value 256 is not a byte/);
});

// ---- gradients ---------------------------------------------------------------------------------

forEachBackend('hat model: gradients of the full model match finite differences (random parameters)', () => {
  const m = randomModel(testConfig({ window: 5, crossEveryLayer: false }), 6, 0.3);
  const { batch } = packedDocs();
  const L = prepareLayout(batch);
  const R = new Rng(7);
  const weights = new Float32Array(L.B * L.T * 256);
  for (let i = 0; i < weights.length; i++) weights[i] = R.uniform(-1, 1);
  const Rt = new Tensor(weights, [L.B, L.T, 256]);
  // objective: CE loss + a random projection of the logits (exercises every logit)
  const objective = (): Tensor => {
    const r = m.loss(L);
    return add(sum(mul(r.logits, Rt)), r.loss);
  };
  m.store.zeroGrad();
  objective().backward();
  const value = (): number => noGrad(() => objective().item());
  const names = [
    'encoder.embedding_layer.weight',
    'encoder.layers.0.self_attn.k_proj.weight',
    'encoder.layers.0.mlp.down_proj.weight',
    'encoder_connector.latent_query',
    'encoder_connector.cross_attention_encoder_connector.q_proj.weight',
    'encoder_connector.cross_attention_encoder_connector.k_proj.weight',
    'encoder_connector.cross_attention_encoder_connector.v_proj.weight',
    'backbone.layers.0.self_attn.q_proj.weight',
    'backbone.layers.1.mlp.up_proj.weight',
    'decoder_connector.first_word_embedding',
    'decoder.decoder_layers.0.kv_norm.weight',
    'decoder.decoder_layers.0.cross_attention.v_proj.weight',
    'decoder.decoder_layers.0.cross_attention.o_proj.weight',
    'decoder.decoder_layers.1.llama_layer.self_attn.v_proj.weight',
    'layer_norm.weight',
    'lm_head.weight',
  ];
  const pick = new Rng(8);
  const eps = 1e-2;
  for (const name of names) {
    const p = m.store.get(name);
    assert.ok(p.grad !== null, `${name} got no gradient`);
    const g = p.grad.f32();
    const d = p.data as Float32Array;
    // embedding rows of bytes that occur; elsewhere any element
    const candidates: number[] = [];
    if (name === 'encoder.embedding_layer.weight') {
      for (const b of [97, 32, 116]) for (let j = 0; j < 16; j++) candidates.push(b * 16 + j);
    } else for (let i = 0; i < d.length; i++) candidates.push(i);
    for (let k = 0; k < 2; k++) {
      const i = candidates[pick.int(0, candidates.length - 1)];
      const orig = d[i];
      d[i] = orig + eps;
      const up = value();
      const xp = d[i];
      d[i] = orig - eps;
      const down = value();
      const xm = d[i];
      d[i] = orig;
      const numeric = (up - down) / (xp - xm);
      const tol = 3e-3 + 3e-2 * Math.abs(numeric);
      assert.ok(Math.abs(g[i] - numeric) <= tol, `${name}[${i}]: analytic ${g[i]} vs numeric ${numeric}`);
    }
  }
  // every parameter gets a gradient, except the q/k side of the decoder cross-attention, which
  // cancels out (softmax over one key) and is skipped by the shortcut
  const dead = /decoder\.decoder_layers\.\d+\.(query_norm|cross_attention\.[qk]_proj)\.weight$|decoder\.decoder_layers\.1\.kv_norm/;
  for (const [n, t] of m.store.entries()) {
    if (dead.test(n)) assert.equal(t.grad, null, `${n} should get no gradient`);
    else assert.ok(t.grad !== null && stridedValues(t.grad).some((v) => v !== 0), `${n} got no gradient`);
  }
});

forEachBackend('hat model: full cross-attention gives the shortcut\'s gradients; its q/k gradients vanish', () => {
  const m = randomModel(testConfig({ window: 6 }), 9);
  const words = spaceWords('it is a trial run');
  const batch = batchFromWords([{ words }]);
  const grads = (full: boolean): Map<string, Float64Array | null> => {
    m.store.zeroGrad();
    m.loss(batch, { fullCrossAttention: full }).loss.backward();
    return new Map(m.store.entries().map(([n, t]) => [n, t.grad ? stridedValues(t.grad) : null]));
  };
  const a = grads(false);
  const b = grads(true);
  for (const [n, gb] of b) {
    const ga = a.get(n) ?? null;
    if (/cross_attention\.[qk]_proj|query_norm/.test(n)) {
      assert.equal(ga, null, `${n}: shortcut should not touch it`);
      const mx = Math.max(...(gb ?? []).map(Math.abs));
      assert.ok(mx < 1e-5, `${n}: full cross-attention gradient ${mx} should vanish`);
      continue;
    }
    assert.ok(ga !== null && gb !== null, `${n}: missing gradient`);
    assertClose(ga, gb, { rtol: 1e-3, atol: 1e-5, what: `gradient of ${n}` });
  }
});
