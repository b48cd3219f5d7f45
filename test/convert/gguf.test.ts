import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Rng } from '../../src/nn/index.js';
import { GgufInterrupted, openSafetensors, writeSafetensors, type TensorData, f16BitsToNumber, numberToF16Bits, readGgufHeader, readGgufTensor, readGgufTensorBytes, quantizeQ4_0, quantizeQ8_0, type GgufFile, type GgufValue } from '../../src/io/index.js';
import { exportLlamaGguf, ggufTokenizerFromHF, unpermuteQkFromGguf, permuteQkForGguf } from '../../src/convert/llama_gguf.js';
import { refInvFreq } from '../llama/fixture.js';
import { cli } from '../helpers/cli.js';
import { ggufTmpDir, writeGgufFixture } from './gguf_fixture.js';

// ---- an independent GGUF header parse (spec: docs/gguf.md of ggml), for the layout checks ------

function parseHeaderByHand(bytes: Uint8Array): { version: number; nTensors: number; nKv: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]), 'GGUF');
  return { version: dv.getUint32(4, true), nTensors: Number(dv.getBigUint64(8, true)), nKv: Number(dv.getBigUint64(16, true)) };
}

/** Decodes one Q8_0 / Q4_0 block straight from the spec's struct layout. */
function decodeBlock(type: 'Q8_0' | 'Q4_0', b: Uint8Array): { d: number; q: number[] } {
  const d = f16BitsToNumber(b[0] | (b[1] << 8));
  const q: number[] = [];
  if (type === 'Q8_0') for (let j = 0; j < 32; j++) q.push(b[2 + j] > 127 ? b[2 + j] - 256 : b[2 + j]);
  else {
    for (let j = 0; j < 16; j++) q[j] = (b[2 + j] & 15) - 8;
    for (let j = 0; j < 16; j++) q[16 + j] = (b[2 + j] >> 4) - 8;
  }
  return { d, q };
}

/**
 * Checks every block of a quantized row-major tensor against the ggml rules (float64 here):
 * Q8_0: d = f16(amax/127), q = round(x/d);  Q4_0: d = f16(m/-8) with m the first value of largest
 * |x|, q+8 = min(15, floor(x/d + 8.5)). A value whose x/d lies within 1e-4 of a rounding boundary may
 * go either way (float32 vs float64 arithmetic); all others must match exactly. Returns the
 * largest |x - d*q| / |d|.
 */
function checkBlocks(type: 'Q8_0' | 'Q4_0', x: Float32Array, bytes: Uint8Array, what: string): number {
  const bs = type === 'Q8_0' ? 34 : 18;
  let worst = 0;
  let boundary = 0;
  for (let b = 0; b < x.length / 32; b++) {
    const blk = x.subarray(b * 32, b * 32 + 32);
    const { d, q } = decodeBlock(type, bytes.subarray(b * bs, b * bs + bs));
    let amax = 0;
    let m = 0;
    for (const v of blk) {
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        m = v;
      }
    }
    const dRef = f16BitsToNumber(numberToF16Bits(type === 'Q8_0' ? amax / 127 : m / -8));
    assert.equal(d, dRef, `${what} block ${b}: scale`);
    const dF32 = Math.fround(type === 'Q8_0' ? amax / 127 : m / -8);
    for (let j = 0; j < 32; j++) {
      const r = dF32 === 0 ? 0 : blk[j] / dF32; // ggml: 1/d is taken as 0 when d is 0
      const want = (type === 'Q8_0' ? Math.sign(r) * Math.round(Math.abs(r)) : Math.min(15, Math.floor(r + 8.5)) - 8) + 0; // + 0: no -0
      const frac = type === 'Q8_0' ? Math.abs(Math.abs(r) - Math.floor(Math.abs(r)) - 0.5) : Math.abs(r + 8.5 - Math.round(r + 8.5));
      if (frac < 1e-4) boundary++;
      else assert.equal(q[j], want, `${what} block ${b} element ${j}: x=${blk[j]} d=${d}`);
      if (d !== 0) worst = Math.max(worst, Math.abs(blk[j] - d * q[j]) / Math.abs(d));
    }
  }
  assert.ok(boundary < x.length / 100, `${what}: ${boundary} values on rounding boundaries`);
  return worst;
}

function meta(f: GgufFile, key: string): GgufValue {
  const v = f.metadata.get(key);
  assert.ok(v !== undefined, `metadata ${key} present`);
  return v;
}

test('Q8_0 / Q4_0 quantizers: ggml reference rules on random, zero and one-sided blocks', () => {
  const rng = new Rng(5);
  const x = new Float32Array(32 * 64);
  rng.fillNormal(x, 0, 1);
  x.fill(0, 32, 64); // an all-zero block: d = 0, codes 0 (Q8_0) / 8 (Q4_0)
  for (let j = 64; j < 96; j++) x[j] = 0.01 * (j - 63); // all positive: Q4_0 d < 0
  x[100] = -3; // ties on |x|: the first one sets the sign
  x[101] = 3;
  const q8 = quantizeQ8_0(x);
  const q4 = quantizeQ4_0(x);
  assert.equal(q8.length, 64 * 34);
  assert.equal(q4.length, 64 * 18);
  const w8 = checkBlocks('Q8_0', x, q8, 'q8');
  const w4 = checkBlocks('Q4_0', x, q4, 'q4');
  // codes are chosen with the float32 d, values rebuilt with the f16 d (relative error <= 2^-11)
  assert.ok(w8 <= 0.5 + 127 * 2 ** -11, `Q8_0 error ${w8} d`);
  assert.ok(w4 <= 1 + 8 * 2 ** -11, `Q4_0 error ${w4} d (the clamped +8 side can be off by one step)`);
  assert.deepEqual(Array.from(q8.subarray(34, 68)), new Array<number>(34).fill(0));
  assert.deepEqual(Array.from(q4.subarray(20, 36)), new Array<number>(16).fill(0x88));
  assert.ok(decodeBlock('Q4_0', q4.subarray(36, 54)).d < 0);
  assert.ok(decodeBlock('Q4_0', q4.subarray(54, 72)).d > 0, 'first of the tied maxima (-3) gives d = -3/-8 > 0');
  assert.throws(() => quantizeQ8_0(new Float32Array(31)), /multiple of 32/);
  const bad = new Float32Array(32);
  bad[3] = NaN;
  assert.throws(() => quantizeQ4_0(bad, 'w'), /w: value 3 is NaN/);
});

test('q/k permutation: interleaved-pair RoPE of the permuted rows equals rotate-half RoPE of the HF rows', () => {
  const rows = 2 * 8;
  const cols = 5;
  const rng = new Rng(2);
  const w = new Float32Array(rows * cols);
  rng.fillNormal(w, 0, 1);
  const p = permuteQkForGguf(w, rows, cols, 2);
  assert.deepEqual(unpermuteQkFromGguf(p, rows, cols, 2), w);
  const x = Array.from({ length: cols }, (_, i) => i - 2);
  const mv = (m: Float32Array): number[] => Array.from({ length: rows }, (_, r) => x.reduce((s, xi, i) => s + m[r * cols + i] * xi, 0));
  const y = mv(w);
  const yp = mv(p);
  const D = 8;
  const pos = 3;
  for (let h = 0; h < 2; h++) {
    for (let i = 0; i < D / 2; i++) {
      const th = pos / Math.pow(10000, (2 * i) / D);
      const [c, s] = [Math.cos(th), Math.sin(th)];
      // HF: pairs (i, i + D/2); llama.cpp NORM rope: pairs (2i, 2i+1)
      const hf0 = y[h * D + i] * c - y[h * D + i + D / 2] * s;
      const hf1 = y[h * D + i + D / 2] * c + y[h * D + i] * s;
      const gg0 = yp[h * D + 2 * i] * c - yp[h * D + 2 * i + 1] * s;
      const gg1 = yp[h * D + 2 * i + 1] * c + yp[h * D + 2 * i] * s;
      assert.ok(Math.abs(hf0 - gg0) < 1e-9 && Math.abs(hf1 - gg1) < 1e-9, `head ${h} pair ${i}`);
    }
  }
});

for (const type of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
  test(`export gguf ${type}: header, metadata, names, alignment; every tensor reads back to the f32 weights by the ${type} rule`, async () => {
    const tied = type === 'f16';
    const fx = writeGgufFixture(ggufTmpDir(`rt-${type}`), { seed: 21, tied, oddFfn: type === 'q4_0' });
    const out = nodePath.join(fx.dir, `m-${type}.gguf`);
    const res = await exportLlamaGguf(fx.dir, out, { type });
    const bytes = new Uint8Array(fs.readFileSync(out));
    assert.equal(bytes.length, res.fileSize);
    const head = parseHeaderByHand(bytes);
    assert.equal(head.version, 3);
    const f = readGgufHeader(out);
    assert.equal(head.nTensors, f.tensors.length);
    assert.equal(head.nKv, f.metadata.size);
    assert.equal(f.dataOffset % 32, 0);
    for (const t of f.tensors) assert.equal((t.offset - f.dataOffset) % 32, 0, `${t.name} aligned`);
    const c = fx.cfg;
    const D = c.hiddenSize / c.numHeads;
    const expectMeta: [string, unknown][] = [
      ['general.architecture', 'llama'],
      ['general.file_type', { f32: 0, f16: 1, q4_0: 2, q8_0: 7 }[type]],
      ['llama.block_count', c.numLayers],
      ['llama.embedding_length', c.hiddenSize],
      ['llama.feed_forward_length', c.intermediateSize],
      ['llama.attention.head_count', c.numHeads],
      ['llama.attention.head_count_kv', c.numKvHeads],
      ['llama.rope.dimension_count', D],
      ['llama.context_length', 256],
      ['llama.vocab_size', 300],
      ['tokenizer.ggml.model', 'gpt2'],
      ['tokenizer.ggml.pre', 'gpt-2'],
    ];
    for (const [k, v] of expectMeta) assert.equal(meta(f, k).value, v, k);
    assert.equal(meta(f, 'llama.attention.layer_norm_rms_epsilon').value, Math.fround(1e-5));
    assert.equal(meta(f, 'llama.rope.freq_base').value, 10000);
    assert.equal(f.metadata.has('general.quantization_version'), type === 'q8_0' || type === 'q4_0');
    const toks = meta(f, 'tokenizer.ggml.tokens');
    const ttype = meta(f, 'tokenizer.ggml.token_type');
    assert.ok(toks.type === 'array' && toks.itemType === 'string' && ttype.type === 'array');
    assert.equal(toks.value.length, 300);
    const tokJson = JSON.parse(fs.readFileSync(nodePath.join(fx.dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number>; merges: [string, string][] } };
    for (const [s, id] of Object.entries(tokJson.model.vocab)) assert.equal(toks.value[id], s);
    assert.equal(toks.value[299], '[PAD299]');
    assert.equal(ttype.value[299], 5, 'unused id');
    assert.equal(ttype.value[298], 3, 'the special token is a control token');
    assert.equal(ttype.value[65], 1);
    const merges = meta(f, 'tokenizer.ggml.merges');
    assert.ok(merges.type === 'array');
    assert.deepEqual(merges.value, tokJson.model.merges.map((m) => m.join(' ')));
    assert.equal(meta(f, 'tokenizer.ggml.eos_token_id').value, 298);

    const names = f.tensors.map((t) => t.name);
    assert.equal(names.includes('output.weight'), !tied);
    assert.equal(names.length, 1 + 9 * c.numLayers + 1 + (tied ? 0 : 1) + 1);
    const hfOf = (n: string): string => {
      const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(n);
      if (m === null) return { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' }[n] ?? n;
      const part = { attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj', ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj' }[m[2]];
      return `model.layers.${m[1]}.${part}.weight`;
    };
    let worst = 0;
    for (const t of f.tensors) {
      if (t.name === 'rope_freqs.weight') {
        const inv = refInvFreq(D, 10000, { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 });
        const got = readGgufTensor(f, t.name);
        assert.equal(t.type, 'F32');
        for (let i = 0; i < D / 2; i++) assert.ok(Math.abs(got[i] - 1 / Math.pow(10000, (2 * i) / D) / inv[i]) < 1e-5 * got[i], `rope factor ${i}`);
        assert.equal(got[0], 1, 'highest frequency unscaled');
        assert.ok(Math.abs(got[D / 2 - 1] - 8) < 1e-5, 'lowest frequency divided by the factor');
        continue;
      }
      const p = fx.model.store.get(hfOf(t.name));
      const shape = p.shape;
      assert.deepEqual(t.dims, [...shape].reverse(), `${t.name} dims`);
      let w = p.f32();
      if (t.name.endsWith('attn_q.weight')) w = permuteQkForGguf(w, shape[0], shape[1], c.numHeads);
      if (t.name.endsWith('attn_k.weight')) w = permuteQkForGguf(w, shape[0], shape[1], c.numKvHeads);
      const oneD = shape.length === 1;
      const fallback = !oneD && shape[1] % 32 !== 0 && (type === 'q8_0' || type === 'q4_0');
      const want = oneD ? 'F32' : fallback ? 'F16' : { f32: 'F32', f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' }[type];
      assert.equal(t.type, want, `${t.name} type`);
      const back = readGgufTensor(f, t.name);
      if (t.type === 'F32') assert.deepEqual(back, w, `${t.name} exact`);
      else if (t.type === 'F16') for (let i = 0; i < w.length; i++) assert.equal(back[i], f16BitsToNumber(numberToF16Bits(w[i])), `${t.name}[${i}] f16`);
      else worst = Math.max(worst, checkBlocks(t.type, w, readGgufTensorBytes(f, t.name), t.name));
    }
    if (type === 'q4_0') assert.deepEqual(res.fallback, ['model.layers.0.mlp.down_proj.weight', 'model.layers.1.mlp.down_proj.weight']);
    else assert.deepEqual(res.fallback, []);
    if (type === 'q8_0') assert.ok(worst <= 0.5 + 127 * 2 ** -11, `worst ${worst}`);
    // q/k round trip through the inverse permutation
    if (type === 'f32') {
      const q = readGgufTensor(f, 'blk.1.attn_k.weight');
      const k = fx.model.store.get('model.layers.1.self_attn.k_proj.weight');
      assert.deepEqual(unpermuteQkFromGguf(q, k.shape[0], k.shape[1], c.numKvHeads), k.f32());
    }
  });
}

test('export gguf: output checks and errors before any work (CLI: one line, exit 2)', async () => {
  const fx = writeGgufFixture(ggufTmpDir('cli'), { seed: 3, tied: false });
  const out = nodePath.join(fx.dir, 'x.gguf');
  let r = await cli(['export', 'gguf', '--model', fx.dir, '--out', out, '--type', 'q8_0', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { bytes: number; type: string };
  assert.equal(j.type, 'q8_0');
  assert.equal(fs.statSync(out).size, j.bytes);
  const before = fs.readFileSync(out);
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', out, '--type', 'f32']);
  assert.equal(r.code, 2);
  assert.match(r.err, /exists; pass --overwrite/);
  assert.equal(r.err.trim().split('\n').length, 1);
  assert.deepEqual(fs.readFileSync(out), before, 'not touched');
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', out, '--type', 'f32', '--overwrite']);
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.statSync(out).size > before.length);
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', out, '--type', 'q5_k', '--overwrite']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--type must be one of f32, f16, q8_0, q4_0/);
  // a missing folder above the output is created, as for every tfree output (docs/cli.md); it was refused ('does not exist')
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', nodePath.join(fx.dir, 'new', 'sub', 'x.gguf'), '--type', 'f32']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(fs.readFileSync(nodePath.join(fx.dir, 'new', 'sub', 'x.gguf')), fs.readFileSync(out), 'the same file as the f32 export above');
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', nodePath.join(fx.dir, 'config.json', 'x.gguf')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /config\.json is a file, not a folder/);
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', fx.dir]);
  assert.equal(r.code, 2);
  assert.match(r.err, /is a folder/);
  fs.renameSync(nodePath.join(fx.dir, 'tokenizer.json'), nodePath.join(fx.dir, 't.json'));
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', nodePath.join(fx.dir, 'y.gguf')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /no tokenizer\.json .*--tokenizer PATH/);
  r = await cli(['export', 'gguf', '--model', fx.dir, '--out', nodePath.join(fx.dir, 'y.gguf'), '--tokenizer', nodePath.join(fx.dir, 't.json')]);
  assert.equal(r.code, 0, r.err);
  // an interrupt (shouldStop, as SIGINT sets it) after the first tensor: nothing written, no temp file
  let polls = 0;
  await assert.rejects(exportLlamaGguf(fx.dir, nodePath.join(fx.dir, 'w.gguf'), { type: 'q8_0', tokenizer: nodePath.join(fx.dir, 't.json'), shouldStop: () => ++polls >= 1 }), GgufInterrupted);
  assert.equal(polls, 1);
  assert.ok(!fs.existsSync(nodePath.join(fx.dir, 'w.gguf')));
  // a non-finite weight: named, nothing written (any type, f32 included)
  const bad = writeGgufFixture(ggufTmpDir('nan'), { seed: 3, tied: false });
  const st = openSafetensors(nodePath.join(bad.dir, 'model.safetensors'));
  const entries: [string, TensorData][] = st.names().map((n) => [n, st.read(n)]);
  st.close();
  const target = entries.find(([n]) => n === 'model.layers.1.mlp.up_proj.weight');
  assert.ok(target !== undefined);
  (target[1].data as Float32Array)[5] = Infinity;
  writeSafetensors(nodePath.join(bad.dir, 'model.safetensors'), entries);
  await assert.rejects(exportLlamaGguf(bad.dir, nodePath.join(bad.dir, 'n.gguf'), { type: 'f32' }), /tensor "model\.layers\.1\.mlp\.up_proj\.weight": value 5 is Infinity/);
  assert.deepEqual(fs.readdirSync(bad.dir).filter((n) => n.endsWith('.gguf') || n.includes('.tmp-')), []);
  fs.rmSync(nodePath.join(fx.dir, 'model.safetensors'));
  await assert.rejects(exportLlamaGguf(fx.dir, nodePath.join(fx.dir, 'z.gguf'), { type: 'f32', tokenizer: nodePath.join(fx.dir, 't.json') }), /model\.safetensors/);
  assert.ok(!fs.existsSync(nodePath.join(fx.dir, 'z.gguf')));
  assert.deepEqual(fs.readdirSync(fx.dir).filter((n) => n.includes('.tmp-')), [], 'no temp files left');
});

test('GGUF tokenizer keys from a Llama-3-style tokenizer.json: llama-bpe pre-tokenizer, control tokens, BOS, chat template, padding', () => {
  const llama3Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const tj = {
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] },
    added_tokens: [
      { id: 4, content: '<|begin_of_text|>', special: true },
      { id: 5, content: 'hello', special: false },
    ],
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: llama3Regex }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }] },
  };
  const t = ggufTokenizerFromHF(tj, 'tokenizer.json', 7, { chat_template: '{{ bos_token }}' });
  assert.equal(t.pre, 'llama-bpe');
  assert.deepEqual(t.tokens, ['a', 'b', 'ab', '[PAD3]', '<|begin_of_text|>', 'hello', '[PAD6]']);
  assert.deepEqual(Array.from(t.tokenTypes), [1, 1, 1, 5, 3, 4, 5]);
  assert.deepEqual(t.merges, ['a b']);
  assert.equal(t.addBos, true);
  assert.equal(t.chatTemplate, '{{ bos_token }}');
  assert.equal(ggufTokenizerFromHF({ ...tj, pre_tokenizer: { type: 'Whitespace' } }, 'x', 7).pre, 'default');
  assert.throws(() => ggufTokenizerFromHF(tj, 'tok.json', 5), /tok\.json: token "<\|begin_of_text\|>" has id 5|tok\.json: token .* has id 5, but the model's vocab_size is 5/);
  assert.throws(() => ggufTokenizerFromHF({ model: { type: 'Unigram', vocab: [] } }, 'u.json', 5), /u\.json: only BPE tokenizers/);
});
