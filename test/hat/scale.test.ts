/**
 * Release-size code paths on scaled-down configs: synth-model checkpoints, lazy loading (bf16
 * kept, quantized on load), checkpoint errors before allocation, the backbone window, the
 * invalid-UTF-8 word-end rules, the chat template and `tfree chat`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Tensor, noGrad } from '../../src/tensor/index.js';
import { Bf16Linear } from '../../src/nn/index.js';
import { bf16ToF32, f32ToBf16, openCheckpoint, writeSafetensors } from '../../src/io/index.js';
import { blockFor, fitBlock, parseFormat, quantizeMatrix, quantizeModel, PackedLinear, loadHATLazy, findLinears } from '../../src/compress/index.js';
import { parseHATConfig, hatConfigToJSON } from '../../src/models/hat/config.js';
import { HATCheckpointError, loadHATModel, saveHATModel } from '../../src/models/hat/checkpoint.js';
import { HATModel, batchFromWords } from '../../src/models/hat/model.js';
import { hatParamCount, hatParamShapes, likeConfig, synthValues, writeSynthCheckpoint, HAT_8B_ASSUMED } from '../../src/models/hat/synth.js';
import { appendByte, HatSplitter } from '../../src/models/hat/splitter.js';
import { generate, generateUncached } from '../../src/models/hat/generate.js';
import { CHAT_STOP_STRINGS, endOfTurnByte, llama3ChatPrompt } from '../../src/models/hat/chat.js';
import { chatPrompt } from '../../src/serve/openai.js';
import { Rng, assertClose, stridedValues } from '../helpers/numeric.js';
import { cli } from '../helpers/cli.js';
import { randomModel, spaceWords, testConfig, utf8 } from './util.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfree-hat-scale-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const tmp = (): string => path.join(root, `c${n++}`);

const batch = batchFromWords([{ words: spaceWords('the stand-in loads and runs') }, { words: spaceWords('a b c') }]);
const mini = likeConfig('hat-8b-mini');

/** A hat-8b-mini checkpoint in small shards (several files + index). */
function synthDir(dtype: 'BF16' | 'F32' = 'BF16', seed = 3): string {
  const dir = tmp();
  writeSynthCheckpoint(dir, mini, { dtype, seed, maxShardBytes: 60_000 });
  return dir;
}

// ---- presets and synth -----------------------------------------------------------------------

test('synth: hat-8b has the Llama-3.1-8B backbone and the documented byte-module assumptions (no weights allocated)', () => {
  const c = likeConfig('hat-8b');
  const bb = c.backbone_config;
  assert.deepEqual([bb.hidden_size, bb.num_hidden_layers, bb.num_attention_heads, bb.num_key_value_heads, bb.intermediate_size, bb.rope_theta], [4096, 32, 32, 8, 14336, 500000]);
  assert.equal(bb.rope_scaling?.rope_type, 'llama3');
  assert.equal(bb.vocab_size, 0);
  assert.equal(c.encoder_config.hidden_size, HAT_8B_ASSUMED.byteHidden);
  assert.equal(c.encoder_config.num_hidden_layers, HAT_8B_ASSUMED.encoderLayers);
  assert.equal(c.decoder_config.num_hidden_layers, HAT_8B_ASSUMED.decoderLayers);
  const shapes = new Map(hatParamShapes(c));
  assert.deepEqual(shapes.get('backbone.layers.31.mlp.down_proj.weight'), [4096, 14336]);
  assert.deepEqual(shapes.get('backbone.layers.0.self_attn.k_proj.weight'), [1024, 4096]);
  assert.deepEqual(shapes.get('encoder_connector.latent_query'), [1, 1, 4096]);
  assert.deepEqual(shapes.get('lm_head.weight'), [256, 1024]);
  let bbParams = 0;
  for (const [name, s] of shapes) if (name.startsWith('backbone.')) bbParams += s.reduce((a, b) => a * b, 1);
  assert.equal(bbParams, 6_979_584_000); // Llama 3.1 8B minus embedding, head and final norm
  const total = hatParamCount(c);
  assert.equal(total, 7_186_732_032);
  assert.ok(Math.abs(total - 7_192_495_104) / 7_192_495_104 < 0.001, 'within 0.1% of the released total');
});

test('synth: released layout (shards + index + config), seeded values, loadable strictly', () => {
  const dir = synthDir('BF16', 3);
  const files = fs.readdirSync(dir).sort();
  assert.ok(files.includes('config.json') && files.includes('model.safetensors.index.json'));
  const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  assert.ok(shards.length >= 3, `${shards.length} shards`);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  assert.deepEqual(Object.keys(index.weight_map).sort(), hatParamShapes(mini).map(([nm]) => nm).sort());
  const cfgJson = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfgJson.torch_dtype, 'bfloat16');
  assert.deepEqual(parseHATConfig(cfgJson).backbone_config, mini.backbone_config);
  const ck = openCheckpoint(dir);
  try {
    const name = 'backbone.layers.1.mlp.up_proj.weight';
    const t = ck.read(name);
    assert.equal(t.dtype, 'BF16');
    assert.deepEqual(t.data, f32ToBf16(synthValues(mini, name, t.shape, 3)));
    const v = bf16ToF32(t.data as Uint16Array);
    let s2 = 0;
    for (const x of v) s2 += x * x;
    const std = Math.sqrt(s2 / v.length);
    assert.ok(Math.abs(std - 1 / Math.sqrt(t.shape[1])) < 0.1 / Math.sqrt(t.shape[1]), `std ${std}`);
    assert.deepEqual(bf16ToF32(ck.read('layer_norm.weight').data as Uint16Array), new Float32Array(mini.decoder_config.hidden_size).fill(1));
  } finally {
    ck.close();
  }
  // same seed: same bytes; another seed: other values
  const again = synthDir('BF16', 3);
  for (const f of shards) assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(again, f))), f);
  assert.notDeepEqual(synthValues(mini, 'lm_head.weight', [256, 64], 4), synthValues(mini, 'lm_head.weight', [256, 64], 3));
  // the strict f32 loader takes it; activations stay finite and O(1) through the stack
  const m = loadHATModel(dir);
  const logits = stridedValues(noGrad(() => m.forward(batch)));
  assert.ok(logits.every(Number.isFinite));
  const maxAbs = logits.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  assert.ok(maxAbs > 0.01 && maxAbs < 100, `max |logit| ${maxAbs}`);
});

// ---- lazy loading ----------------------------------------------------------------------------

test('lazy load: bf16 weights stay bf16 (Bf16Linear) and give the logits of the f32 load', () => {
  const dir = synthDir('BF16', 5);
  const ref = loadHATModel(dir);
  const { model, stats } = loadHATLazy(dir);
  assert.equal(stats.layers.f32, 0);
  assert.equal(stats.layers.bf16, findLinears(ref).length);
  assert.ok(model.backboneLayers[0].mlp.upProj instanceof Bf16Linear);
  assert.ok(!model.store.has('backbone.layers.0.mlp.up_proj.weight'), 'no f32 copy of a bf16 weight');
  assert.ok(model.store.has('backbone.layers.0.input_layernorm.weight'));
  const onDisk = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
  assert.ok(stats.bytesRead <= onDisk && stats.bytesRead > 0.95 * onDisk);
  assertClose(stridedValues(noGrad(() => model.forward(batch))), stridedValues(noGrad(() => ref.forward(batch))), { atol: 1e-4, rtol: 1e-4 });
  // keepBf16 false: f32 Linear layers, the same values
  const wide = loadHATLazy(dir, { keepBf16: false });
  assert.equal(wide.stats.layers.bf16, 0);
  assert.deepEqual(stridedValues(noGrad(() => wide.model.forward(batch))), stridedValues(noGrad(() => ref.forward(batch))));
});

test('lazy load: --quantize packs tensor by tensor, equal to quantizing the loaded f32 model', () => {
  const dir = synthDir('BF16', 6);
  for (const f of ['int8', 'kmeans4', 'bin1']) {
    const fmt = parseFormat(f);
    const { model, stats } = loadHATLazy(dir, { quantize: fmt });
    const ref = loadHATModel(dir);
    quantizeModel(ref, fmt);
    assert.ok(stats.layers.packed > 0 && stats.layers.bf16 === 1 && stats.layers.f32 === 0, `${f}: ${JSON.stringify(stats.layers)}`); // lm_head is not quantized (stays bf16)
    const q = model.backboneLayers[1].selfAttn.qProj;
    const qRef = ref.backboneLayers[1].selfAttn.qProj;
    assert.ok(q instanceof PackedLinear && qRef instanceof PackedLinear);
    // the same packed weights; the logits differ only by the bf16 lm_head's summation order
    assert.deepEqual(q.packed.codes, qRef.packed.codes, f);
    assert.deepEqual(q.packed.scales, qRef.packed.scales, f);
    assert.deepEqual(q.packed.levels, qRef.packed.levels, f);
    assertClose(stridedValues(noGrad(() => model.forward(batch))), stridedValues(noGrad(() => ref.forward(batch))), { atol: 1e-5, rtol: 1e-5 });
  }
});

test('lazy load: bad checkpoints give one-line errors naming file and tensor, before loading', () => {
  const expectErr = (dir: string, re: RegExp): void => {
    assert.throws(
      () => loadHATLazy(dir),
      (e: Error) => {
        assert.ok(!e.message.includes('\n'), e.message);
        assert.match(e.message, re);
        return true;
      },
    );
  };
  // a shard missing
  let dir = synthDir();
  fs.rmSync(path.join(dir, 'model-00002-of-' + fs.readdirSync(dir).find((f) => f.startsWith('model-00001-of-'))?.slice(15)));
  expectErr(dir, /model\.safetensors\.index\.json.*tensor ".+".*model-00002-of-\d+\.safetensors.*does not exist/);
  // the index names a tensor no shard has
  dir = synthDir();
  const ip = path.join(dir, 'model.safetensors.index.json');
  const idx = JSON.parse(fs.readFileSync(ip, 'utf8')) as { weight_map: Record<string, string> };
  idx.weight_map['backbone.layers.9.mlp.up_proj.weight'] = idx.weight_map['lm_head.weight'];
  fs.writeFileSync(ip, JSON.stringify(idx));
  expectErr(dir, /index\.json.*"backbone\.layers\.9\.mlp\.up_proj\.weight".*does not contain it/);
  // config sizes that disagree with the tensors
  dir = synthDir();
  const cp = path.join(dir, 'config.json');
  const cj = JSON.parse(fs.readFileSync(cp, 'utf8')) as { backbone_config: { intermediate_size: number } };
  cj.backbone_config.intermediate_size = 512;
  fs.writeFileSync(cp, JSON.stringify(cj));
  expectErr(dir, /model-\d+-of-\d+\.safetensors: tensor "backbone\.layers\.0\.mlp\.gate_proj\.weight" has shape \[448, 128\], the config needs \[512, 128\]/);
  // a tensor the config does not have
  dir = synthDir();
  const cj2 = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { backbone_config: { num_hidden_layers: number } };
  cj2.backbone_config.num_hidden_layers = 1;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cj2));
  expectErr(dir, /unexpected tensors? "?backbone\.layers\.1\./);
  // non-finite weights (bf16 NaN written into a tensor of a shard)
  dir = synthDir();
  const ck = openCheckpoint(dir);
  const bad = 'backbone.layers.1.self_attn.v_proj.weight';
  const info = ck.info(bad);
  const all = ck.names().filter((nm) => ck.info(nm).file === info.file).map((nm) => [nm, ck.read(nm)] as const);
  ck.close();
  const entries = all.map(([nm, t]) => {
    if (nm === bad) (t.data as Uint16Array)[7] = 0x7fc0;
    return [nm, t] as const;
  });
  writeSafetensors(info.file, entries, { format: 'pt' });
  expectErr(dir, new RegExp(`${path.basename(info.file)}: tensor "${bad.replace(/\./g, '\\.')}" has a non-finite value at element 7`));
  assert.throws(() => loadHATLazy(dir, { quantize: parseFormat('int8') }), /non-finite value at element 7/);
  // more memory than the machine has: refused before any tensor is read
  dir = synthDir();
  let reads = 0;
  assert.throws(() => loadHATLazy(dir, { memoryLimit: 1000, onProgress: () => reads++ }), (e: Error) => e instanceof HATCheckpointError && /needs about .* GiB in memory.*--quantize/.test(e.message));
  assert.equal(reads, 0);
});

/** Every PackedLinear reachable from `root` (the loaded model's quantized layers). */
function packedLayers(root: object): PackedLinear[] {
  const out: PackedLinear[] = [];
  const seen = new Set<object>();
  const walk = (o: object): void => {
    if (seen.has(o)) return;
    seen.add(o);
    if (o instanceof PackedLinear) {
      out.push(o);
      return;
    }
    for (const v of Array.isArray(o) ? o : Object.values(o)) if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v) && !(v instanceof Map)) walk(v as object);
  };
  walk(root);
  return out;
}

test('lazy load: a --quantize block that does not divide a row length is reduced per weight as tfree quantize does (the largest power of two below it that divides)', () => {
  const dir = synthDir('BF16', 7);
  const fmt = parseFormat('int4', { blockSize: 48 });
  const { model, stats } = loadHATLazy(dir, { quantize: fmt });
  const ref = loadHATModel(dir);
  const sites = findLinears(ref).filter((s) => s.weightName !== 'lm_head.weight');
  const expected = sites
    .map((s) => ({ name: s.weightName, cols: s.linear.inFeatures, blockSize: blockFor(s.linear.inFeatures, 48) }))
    .filter((r) => r.blockSize !== 48);
  assert.ok(expected.length > 0, 'some row length here is not a multiple of 48');
  assert.deepEqual(stats.reducedBlocks, expected);
  const layers = packedLayers(model);
  assert.equal(layers.length, sites.length);
  for (const l of layers) assert.equal(l.packed.format.blockSize, blockFor(l.inFeatures, 48));
  // the same packed weights as quantizing the f32 load with that weight's block
  const q = model.backboneLayers[1].selfAttn.qProj;
  assert.ok(q instanceof PackedLinear);
  const w = ref.store.get('backbone.layers.1.self_attn.q_proj.weight');
  const want = quantizeMatrix(w.data as Float32Array, w.shape[0], w.shape[1], fitBlock(fmt, w.shape[1]), { name: 'backbone.layers.1.self_attn.q_proj.weight', seed: 'backbone.layers.1.self_attn.q_proj.weight' });
  assert.deepEqual(q.packed.codes, want.codes);
  assert.deepEqual(q.packed.scales, want.scales);
});

test('Bf16Linear (the loader\'s bf16 layer): matches a float64 reference (M = 1 and M > 1), input gradient', () => {
  const r = new Rng(9);
  for (const [M, N, K] of [
    [1, 37, 300],
    [5, 300, 70],
    [3, 2100, 520], // several tiles
  ]) {
    const w = new Float32Array(N * K).map(() => r.uniform(-1, 1));
    const wb = f32ToBf16(w);
    const wq = bf16ToF32(wb);
    const x = new Float32Array(M * K).map(() => r.uniform(-1, 1));
    const out = new Bf16Linear(wb, N, K).forward(new Tensor(x, [M, K])).f32();
    const want = new Float64Array(M * N);
    for (let m = 0; m < M; m++) for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) want[m * N + j] += x[m * K + k] * wq[j * K + k];
    assertClose(out, want, { atol: 1e-4, rtol: 1e-4 });
  }
  const lin = new Bf16Linear(f32ToBf16(new Float32Array(6 * 4).map(() => r.uniform(-1, 1))), 6, 4);
  const x = new Tensor(new Float32Array(8).map(() => r.uniform(-1, 1)), [2, 4]);
  x.requiresGrad = true;
  const y = lin.forward(x);
  const g = new Float32Array(12).map(() => r.uniform(-1, 1));
  const loss = (y.f32() as Float32Array).reduce((s, v, i) => s + v * g[i], 0);
  assert.ok(Number.isFinite(loss));
  const w = bf16ToF32(lin.weight);
  const gx = new Float64Array(8);
  for (let m = 0; m < 2; m++) for (let j = 0; j < 6; j++) for (let k = 0; k < 4; k++) gx[m * 4 + k] += g[m * 6 + j] * w[j * 4 + k];
  const node = y.node;
  assert.ok(node !== null);
  assertClose((node.backward(g)[0] as Float32Array), gx, { atol: 1e-5 });
});

// ---- reference differences (issue 14 item 7) -------------------------------------------------

test('backbone: backbone_config.sliding_window is not applied (the reference windows encoder and decoder only)', () => {
  const cfg = testConfig({ window: 3 });
  const withWindow = parseHATConfig({ ...hatConfigToJSON(cfg), backbone_config: { ...hatConfigToJSON(cfg).backbone_config as object, sliding_window: 2 } });
  assert.equal(withWindow.backbone_config.sliding_window, 2);
  const a = randomModel(cfg, 4);
  const b = new HATModel(withWindow, { source: (name) => a.store.get(name).f32() });
  const long = batchFromWords([{ words: spaceWords('one two three four five six seven') }]);
  assert.deepEqual(stridedValues(noGrad(() => b.forward(long))), stridedValues(noGrad(() => a.forward(long))));
  // the encoder's window is applied (a changed window changes the logits)
  const wider = parseHATConfig({ ...hatConfigToJSON(cfg), encoder_config: { ...hatConfigToJSON(cfg).encoder_config as object, sliding_window: 50 } });
  const c = new HATModel(wider, { source: (name) => a.store.get(name).f32() });
  assert.notDeepEqual(stridedValues(noGrad(() => c.forward(long))), stridedValues(noGrad(() => a.forward(long))));
});

test('invalid UTF-8: reference rule keeps the byte in the word up to max_word_size; resplit re-splits', () => {
  const w = utf8('ab');
  // an invalid byte (0xff) and then ASCII: reference keeps everything in the word
  let r = appendByte(w, 0xff, { maxWordSize: 8 });
  assert.equal(r.complete, false);
  r = appendByte(r.words[0], 0x20, { maxWordSize: 8 });
  assert.equal(r.complete, false, 'strict decoding fails, so even a space stays in the word');
  assert.deepEqual([...r.words[0]], [0x61, 0x62, 0xff, 0x20]);
  // the cap: a full word ends and the new byte starts the next
  const full = Uint8Array.from([0x61, 0xff, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67]);
  r = appendByte(full, 0x68, { maxWordSize: 8 });
  assert.equal(r.complete, true);
  assert.deepEqual(r.words.map((x) => [...x]), [[...full], [0x68]]);
  // resplit: the invalid byte is a unit of its own and the space starts a new word
  const rs = appendByte(Uint8Array.from([0x61, 0x62, 0xff]), 0x20, { maxWordSize: 8, invalidUtf8: 'resplit' });
  assert.equal(rs.complete, true);
  // valid text and an unfinished character behave the same under both rules
  for (const rule of ['reference', 'resplit'] as const) {
    assert.equal(appendByte(utf8('ab'), 0x20, { invalidUtf8: rule }).complete, true);
    assert.equal(appendByte(utf8('ab'), 0xc3, { invalidUtf8: rule }).complete, false);
    assert.equal(appendByte(Uint8Array.from([0x61, 0xc3]), 0xa9, { invalidUtf8: rule }).complete, false);
  }
  assert.throws(() => appendByte(w, 1, { invalidUtf8: 'other' as 'reference' }), /invalidUtf8 must be one of reference, resplit/);
});

test('invalid UTF-8: a near-random model generates the same bytes cached and uncached under both rules; reference words stay within the cap', () => {
  const m = randomModel(testConfig(), 21, 1.2);
  for (const rule of ['reference', 'resplit'] as const) {
    const sp = new HatSplitter({ maxWordSize: 12, invalidUtf8: rule });
    const opts = { maxBytes: 60, temperature: 1.5, seed: 2 };
    const words: Uint8Array[] = [];
    const a = generate(m, sp, 'x y', { ...opts, onWord: (wd) => words.push(wd) });
    const b = generateUncached(m, sp, 'x y', opts);
    assert.deepEqual(a.bytes, b.bytes, rule);
    assert.deepEqual(a.wordStarts, b.wordStarts, rule);
    let invalid = false;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(a.bytes);
    } catch {
      invalid = true;
    }
    assert.ok(invalid, `${rule}: the test needs invalid output`);
    assert.ok(words.every((wd) => wd.length <= 12), rule);
  }
});

// ---- chat ------------------------------------------------------------------------------------

test('chat: the Llama 3 template, the end-of-turn byte, the server uses it', () => {
  const p = llama3ChatPrompt([{ role: 'user', content: 'Hi' }]);
  assert.equal(p, '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  const q = llama3ChatPrompt([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Bye' },
  ]);
  assert.equal(q, '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.equal(chatPrompt([{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]), llama3ChatPrompt([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]));
  // the splitter turns <|eot_id|> into the one-byte word 192 (the eos), other markers stay text
  const sp = new HatSplitter();
  const words = sp.encode(q);
  assert.equal(words.filter((wd) => wd.length === 1 && wd[0] === 192).length, 4);
  assert.equal(endOfTurnByte(testConfig()), 192);
  assert.deepEqual(CHAT_STOP_STRINGS, ['<|eot_id|>', '<|start_header_id|>']);
});

const mainJs = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('tfree chat: multi-turn over a pipe with the bundled model; replies end at the turn end or the byte limit', () => {
  const r = spawnSync(process.execPath, [mainJs, 'chat', '--greedy', '--max-bytes', '30', '--show-prompt'], { input: 'Hello there\nAnd then?\n', encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const replies = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(replies.length, 2, r.stdout);
  for (const l of replies) assert.ok(Buffer.byteLength(l) <= 30);
  // the second turn's prompt holds the first turn and its reply
  const prompts = r.stderr.split('\n').filter((l) => l.startsWith('"')).map((l) => JSON.parse(l) as string);
  assert.equal(prompts.length, 2);
  assert.ok(prompts[1].startsWith(prompts[0]), 'the conversation grows');
  assert.ok(prompts[1].includes(`Hello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n${replies[0]}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd then?<|eot_id|>`));
});

test('tfree chat: a reply ends at the end-of-turn byte (<|eot_id|> of special_token_dict, not only eos)', () => {
  // lm_head = 0: every logit is 0 and greedy decoding picks byte 0, made the end-of-turn byte here
  const cfg = { ...testConfig(), special_token_dict: { '<|eot_id|>': 0 } };
  const m = randomModel(cfg, 8);
  (m.lmHead.weight.data as Float32Array).fill(0);
  const dir = tmp();
  saveHATModel(dir, m);
  const r = spawnSync(process.execPath, [mainJs, 'chat', '--model', dir, '--greedy', '--max-bytes', '30'], { input: 'Hi\nAgain\n', encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '\n\n', 'two empty replies: each stopped at once at byte 0');
  // with the default dict (eot = 192) the same model writes 30 zero bytes per reply
  const m2 = randomModel(testConfig(), 8);
  (m2.lmHead.weight.data as Float32Array).fill(0);
  const dir2 = tmp();
  saveHATModel(dir2, m2);
  const r2 = spawnSync(process.execPath, [mainJs, 'chat', '--model', dir2, '--greedy', '--max-bytes', '30'], { input: 'Hi\n', encoding: 'utf8', timeout: 60_000 });
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(r2.stdout, `${'\0'.repeat(30)}\n`);
});

test('tfree synth-model and --quantize: one-line user errors; writes a loadable checkpoint', async () => {
  const out = tmp();
  let r = await cli(['synth-model', '--like', 'hat-8b-mini', '--out', out, '--dtype', 'bf16', '--seed', '1', '--quiet']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wrote .*: 192,?\d+ parameters|wrote .*parameters/);
  r = await cli(['synth-model', '--like', 'hat-8b-mini', '--out', out, '--quiet']);
  assert.equal(r.code, 2);
  assert.match(r.err, /exists and is not empty; pass --overwrite/);
  r = await cli(['synth-model', '--like', 'hat-9b', '--out', tmp()]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--like "hat-9b" is neither a preset \(hat-8b, hat-8b-mini, hat-tiny, hat-small\)/);
  r = await cli(['synth-model', '--like', 'hat-8b-mini', '--out', tmp(), '--dtype', 'fp8']);
  assert.equal(r.code, 2);
  // generation streams across event-loop turns: run it in its own process (an in-process capture
  // of stdout would also swallow the test runner's own messages)
  const run = (args: string[]): { code: number | null; out: string; err: string } => {
    const p = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: p.status, out: p.stdout, err: p.stderr };
  };
  let g = run(['generate', '--model', out, '--quantize', 'int5', '--prompt', 'a']);
  assert.equal(g.code, 2);
  assert.match(g.err, /^tfree generate: --quantize: unknown format "int5"/);
  assert.equal(g.err.trim().split('\n').length, 1);
  g = run(['generate', '--model', out, '--quantize', 'kmeans4', '--prompt', 'Hi there', '--max-bytes', '12', '--greedy', '--json']);
  assert.equal(g.code, 0, g.err);
  assert.equal((JSON.parse(g.out) as { bytes: number }).bytes, 12);
  // a block that does not divide some row lengths: the load reduces it there and says so in one note
  g = run(['generate', '--model', out, '--quantize', 'int4', '--quantize-block', '48', '--prompt', 'Hi there', '--max-bytes', '12', '--greedy', '--json']);
  assert.equal(g.code, 0, g.err);
  assert.equal((JSON.parse(g.out) as { bytes: number }).bytes, 12);
  assert.match(g.err, /^note: --quantize int4: block 48 does not divide the row length \d+: used block \d+ for \d+ weights?(; .*)?\n$/);
  g = run(['generate', '--model', out, '--invalid-utf8', 'bogus', '--prompt', 'a']);
  assert.equal(g.code, 2);
  assert.match(g.err, /--invalid-utf8 must be reference or resplit/);
  fs.rmSync(path.join(out, 'model.safetensors'));
  g = run(['generate', '--model', out, '--prompt', 'a']);
  assert.equal(g.code, 2);
  assert.match(g.err, /^tfree generate: .*neither model\.safetensors nor model\.safetensors\.index\.json/);
});

