import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { noGrad } from '../../src/tensor/index.js';
import { bf16ToF32, f32ToBf16, writeSafetensors, writeShardedSafetensors, type TensorEntries } from '../../src/io/index.js';
import { hatConfigToJSON, HATConfigError } from '../../src/models/hat/config.js';
import { HATCheckpointError, loadHATModel, saveHATModel } from '../../src/models/hat/checkpoint.js';
import { batchFromWords } from '../../src/models/hat/model.js';
import { Rng, stridedValues } from '../helpers/numeric.js';
import { randomModel, spaceWords, testConfig } from './util.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfree-hat-ck-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const tmp = (): string => path.join(root, `c${n++}`);

const batch = batchFromWords([{ words: spaceWords('save and load me') }, { words: spaceWords('a b') }]);

test('hat checkpoint: save -> load gives identical logits (f32, single file)', () => {
  const m = randomModel(testConfig(), 11);
  const dir = tmp();
  const res = saveHATModel(dir, m);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  assert.equal(res.indexFile, undefined);
  const m2 = loadHATModel(dir);
  assert.deepEqual(m2.config, { ...m.config, torch_dtype: 'float32' });
  assert.deepEqual(stridedValues(noGrad(() => m2.forward(batch))), stridedValues(noGrad(() => m.forward(batch))));
});

test('hat checkpoint: bf16 sharded save -> load equals the bf16-rounded model', () => {
  const m = randomModel(testConfig({ crossEveryLayer: false }), 12);
  const dir = tmp();
  const res = saveHATModel(dir, m, { dtype: 'BF16', maxShardBytes: 8000 });
  assert.ok(res.files.length > 2, `expected several shards, got ${res.files.length}`);
  assert.ok(fs.existsSync(path.join(dir, 'model.safetensors.index.json')));
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  for (const [, t] of m.store.entries()) (t.data as Float32Array).set(bf16ToF32(f32ToBf16(t.f32())));
  const m2 = loadHATModel(dir);
  assert.deepEqual(stridedValues(noGrad(() => m2.forward(batch))), stridedValues(noGrad(() => m.forward(batch))));
});

/** Every tensor of the released layout for a config, listed by hand from the spec's name table. */
function releasedTensors(cfg: ReturnType<typeof testConfig>): [string, number[]][] {
  const e = cfg.encoder_config;
  const b = cfg.backbone_config;
  const d = cfg.decoder_config;
  const llama = (p: string, c: typeof b): [string, number[]][] => {
    const D = c.hidden_size / c.num_attention_heads;
    const kv = c.num_key_value_heads * D;
    return [
      [`${p}.self_attn.q_proj.weight`, [c.hidden_size, c.hidden_size]],
      [`${p}.self_attn.k_proj.weight`, [kv, c.hidden_size]],
      [`${p}.self_attn.v_proj.weight`, [kv, c.hidden_size]],
      [`${p}.self_attn.o_proj.weight`, [c.hidden_size, c.hidden_size]],
      [`${p}.mlp.gate_proj.weight`, [c.intermediate_size, c.hidden_size]],
      [`${p}.mlp.up_proj.weight`, [c.intermediate_size, c.hidden_size]],
      [`${p}.mlp.down_proj.weight`, [c.hidden_size, c.intermediate_size]],
      [`${p}.input_layernorm.weight`, [c.hidden_size]],
      [`${p}.post_attention_layernorm.weight`, [c.hidden_size]],
    ];
  };
  const cross = (p: string, x: typeof e.cross_attention_config): [string, number[]][] => {
    const rep = x.num_attention_heads / x.attention_num_kv_heads;
    return [
      [`${p}.q_proj.weight`, [x.hidden_size, x.hidden_size_q]],
      [`${p}.k_proj.weight`, [x.hidden_size / rep, x.hidden_size_kv]],
      [`${p}.v_proj.weight`, [x.hidden_size / rep, x.hidden_size_kv]],
      [`${p}.o_proj.weight`, [x.hidden_size_q, x.hidden_size]],
    ];
  };
  const out: [string, number[]][] = [['encoder.embedding_layer.weight', [256, e.hidden_size]]];
  for (let i = 0; i < e.num_hidden_layers; i++) out.push(...llama(`encoder.layers.${i}`, e));
  out.push(['encoder_connector.latent_query', [1, 1, b.hidden_size]]);
  out.push(...cross('encoder_connector.cross_attention_encoder_connector', e.cross_attention_config));
  for (let i = 0; i < b.num_hidden_layers; i++) out.push(...llama(`backbone.layers.${i}`, b));
  out.push(['decoder_connector.first_word_embedding', [1, 1, b.hidden_size]]);
  for (let i = 0; i < d.num_hidden_layers; i++) {
    out.push([`decoder.decoder_layers.${i}.query_norm.weight`, [d.hidden_size]]);
    out.push([`decoder.decoder_layers.${i}.kv_norm.weight`, [b.hidden_size]]);
    if (d.cross_attn_every_layer || i === 0) out.push(...cross(`decoder.decoder_layers.${i}.cross_attention`, d.cross_attention_config));
    out.push(...llama(`decoder.decoder_layers.${i}.llama_layer`, d));
  }
  out.push(['layer_norm.weight', [d.hidden_size]], ['lm_head.weight', [256, d.hidden_size]]);
  return out;
}

test('hat checkpoint: a bf16 sharded checkpoint in the released layout, written by this test, loads', () => {
  const cfg = testConfig();
  const dir = tmp();
  fs.mkdirSync(dir);
  const r = new Rng(13);
  const tensors = releasedTensors(cfg).map(([name, shape]) => {
    const v = new Float32Array(shape.reduce((a, x) => a * x, 1));
    for (let i = 0; i < v.length; i++) v[i] = name.includes('norm') ? 1 + r.uniform(-0.2, 0.2) : r.uniform(-0.3, 0.3);
    return [name, { dtype: 'BF16' as const, shape, data: f32ToBf16(v) }] as const;
  });
  // HF writes shards in its own order: reverse ours to show order does not matter
  writeShardedSafetensors(dir, [...tensors].reverse(), { maxShardBytes: 6000, metadata: { format: 'pt' } });
  const json = { ...hatConfigToJSON(cfg), torch_dtype: 'bfloat16' } as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(json, null, 2));
  const m = loadHATModel(dir);
  assert.equal(m.store.size, tensors.length);
  for (const [name, t] of tensors) assert.deepEqual(m.store.get(name).f32(), bf16ToF32(t.data), name);
  const logits = stridedValues(noGrad(() => m.forward(batch)));
  assert.ok(logits.every(Number.isFinite) && logits.some((x) => x !== 0));
});

test('hat checkpoint: missing, unexpected, mis-shaped and mis-typed tensors and bad configs give clear errors', () => {
  const m = randomModel(testConfig(), 14);
  const good = tmp();
  saveHATModel(good, m);
  const entries = (): [string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }][] =>
    m.store.entries().map(([name, t]) => [name, { dtype: 'F32', shape: t.shape.slice(), data: t.f32() }]);
  const variant = (edit: (e: ReturnType<typeof entries>) => ReturnType<typeof entries>): string => {
    const dir = tmp();
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(good, 'config.json'), path.join(dir, 'config.json'));
    writeSafetensors(path.join(dir, 'model.safetensors'), edit(entries()) as TensorEntries);
    return dir;
  };
  const fails = (dir: string, re: RegExp, tensor?: string): void => {
    assert.throws(
      () => loadHATModel(dir),
      (e: unknown) => e instanceof HATCheckpointError && re.test(e.message) && (tensor === undefined || e.tensor === tensor),
    );
  };
  fails(variant((e) => e.filter(([nm]) => nm !== 'lm_head.weight')), /missing tensor lm_head\.weight \(required by the config\)/, 'lm_head.weight');
  fails(
    variant((e) => [...e, ['backbone.norm.weight', { dtype: 'F32', shape: [24], data: new Float32Array(24) }]]),
    /unexpected tensor backbone\.norm\.weight/,
    'backbone.norm.weight',
  );
  fails(
    variant((e) => e.map(([nm, t]) => (nm === 'encoder_connector.latent_query' ? [nm, { ...t, shape: [1, 24], data: t.data }] : [nm, t]))),
    /tensor "encoder_connector\.latent_query" has shape \[1, 24\], the config needs \[1, 1, 24\]/,
    'encoder_connector.latent_query',
  );
  fails(
    variant((e) => e.map(([nm, t]) => (nm === 'layer_norm.weight' ? [nm, { dtype: 'I32', shape: t.shape, data: new Int32Array(t.shape[0]) }] : [nm, t]))),
    /tensor "layer_norm\.weight" is I32; expected F32, BF16 or F16/,
    'layer_norm.weight',
  );
  // no weights at all / a config that does not parse / no config
  const empty = tmp();
  fs.mkdirSync(empty);
  fs.copyFileSync(path.join(good, 'config.json'), path.join(empty, 'config.json'));
  fails(empty, /neither model\.safetensors nor model\.safetensors\.index\.json/);
  const badCfg = tmp();
  fs.cpSync(good, badCfg, { recursive: true });
  const j = JSON.parse(fs.readFileSync(path.join(badCfg, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  j.decoder_config.num_hidden_layers = 0;
  fs.writeFileSync(path.join(badCfg, 'config.json'), JSON.stringify(j));
  assert.throws(() => loadHATModel(badCfg), (e: unknown) => e instanceof HATConfigError && /config\.json: decoder_config\.num_hidden_layers: must be >= 1, got 0/.test(e.message));
  fs.writeFileSync(path.join(badCfg, 'config.json'), '{"encoder_config": ');
  assert.throws(() => loadHATModel(badCfg), /config\.json: is not valid JSON/);
  assert.throws(() => loadHATModel(path.join(root, 'nope')), /nope.*: no such file or folder/);
});
