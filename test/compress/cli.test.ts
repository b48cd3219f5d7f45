/**
 * `tfree quantize` and `tfree prune` on a small Llama-style checkpoint folder: outputs load and
 * run; bad input gives one-line errors and exit code 2.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { noGrad } from '../../src/tensor/index.js';
import { ParamStore, Rng, VarBuilder, init } from '../../src/nn/index.js';
import { openCheckpoint, writeSafetensors } from '../../src/io/index.js';
import { LlamaLM, type LlamaLMConfig } from '../../src/models/llama/model.js';
import { loadPackedModel, parseFormat, pruneCheckpoint, quantizeCheckpoint } from '../../src/compress/index.js';
import { cli } from '../helpers/cli.js';

const cfg: LlamaLMConfig = { vocabSize: 64, hiddenSize: 64, intermediateSize: 128, numLayers: 1, numHeads: 4, numKvHeads: 2 };
const hfConfig = { model_type: 'llama', vocab_size: 64, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 };

function build(seed: number): { model: LlamaLM; store: ParamStore } {
  const store = new ParamStore();
  return { model: new LlamaLM(new VarBuilder(store, { rng: seed, defaultInit: init.normal(0.05) }), cfg), store };
}

test('tfree quantize / prune: packed folder loads and runs; pruned folder has the sparsity; clear errors', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tfree-cli-'));
  try {
    const src = join(root, 'model');
    mkdirSync(src);
    const { model, store } = build(1);
    writeSafetensors(join(src, 'model.safetensors'), store.toRecord());
    writeFileSync(join(src, 'config.json'), JSON.stringify(hfConfig));
    const ids = Int32Array.from({ length: 8 }, (_, i) => (i * 7) % 64);
    const ref = noGrad(() => model.forward(ids, 1, 8)).f32();

    const q = await cli(['quantize', '--format', 'int8', '--model', src, '--out', join(root, 'q8'), '--json']);
    assert.equal(q.code, 0, q.err);
    const summary = JSON.parse(q.out.trim().split('\n').pop()!) as { quantized: number; bits_per_weight: number; copied: string[] };
    assert.equal(summary.quantized, 7);
    assert.equal(summary.bits_per_weight, 8.25);
    assert.deepEqual(summary.copied, ['config.json']);
    assert.equal(readFileSync(join(root, 'q8', 'config.json'), 'utf8'), JSON.stringify(hfConfig));
    const fresh = build(2);
    loadPackedModel(fresh.model, fresh.store, join(root, 'q8'));
    const got = noGrad(() => fresh.model.forward(ids, 1, 8)).f32();
    let d = 0;
    for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - ref[i]));
    const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(d < 0.03 * scale, `int8 packed logits differ by ${d} (max logit ${scale})`);

    const p = await cli(['prune', '--sparsity', '0.5', '--method', 'magnitude', '--model', src, '--out', join(root, 'p50')]);
    assert.equal(p.code, 0, p.err);
    const ck = openCheckpoint(join(root, 'p50'));
    const w = ck.readAs('model.layers.0.mlp.up_proj.weight', 'f32').data;
    assert.equal(w.reduce((z, v) => z + (v === 0 ? 1 : 0), 0), w.length / 2);
    assert.equal(ck.readAs('model.embed_tokens.weight', 'f32').data.reduce((z, v) => z + (v === 0 ? 1 : 0), 0), 0, 'embeddings untouched');
    ck.close();

    // a single .safetensors file, as docs/compression.md says of both commands (prune refused it: 'is a file; give a folder')
    const pf = await cli(['prune', '--sparsity', '0.5', '--model', join(src, 'model.safetensors'), '--out', join(root, 'p50f')]);
    assert.equal(pf.code, 0, pf.err);
    const ckf = openCheckpoint(join(root, 'p50f'));
    assert.deepEqual(ckf.readAs('model.layers.0.mlp.up_proj.weight', 'f32').data, w);
    ckf.close();

    const calib = join(root, 'calib.txt');
    writeFileSync(calib, Array.from({ length: 300 }, () => String.fromCharCode(97 + new Rng(3).int(26))).join(''));
    const wd = await cli(['prune', '--sparsity', '0.25', '--method', 'wanda', '--calib', calib, '--model', src, '--out', join(root, 'wanda')]);
    assert.equal(wd.code, 0, wd.err);
    const ckw = openCheckpoint(join(root, 'wanda'));
    const ww = ckw.readAs('model.layers.0.self_attn.q_proj.weight', 'f32').data;
    for (let r = 0; r < 64; r++) assert.equal(ww.subarray(r * 64, (r + 1) * 64).reduce((z, v) => z + (v === 0 ? 1 : 0), 0), 16);
    ckw.close();

    // bad input: one-line errors, exit code 2, no output folder content
    const bad = async (args: string[], re: RegExp): Promise<void> => {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    };
    await bad(['quantize', '--format', 'kmeans5', '--model', src, '--out', join(root, 'x1')], /unknown format "kmeans5"|kmeans supports/);
    // a block that does not divide a row length is reduced for that tensor, with a one-line note
    const b128 = await cli(['quantize', '--format', 'int4', '--block', '128', '--model', src, '--out', join(root, 'x2')]);
    assert.equal(b128.code, 0, b128.err);
    assert.match(b128.err, /^note: block 128 does not divide the row length 64: used block 64 for 6 tensors$/m);
    assert.ok(existsSync(join(root, 'x2', 'model.safetensors')));
    await bad(['quantize', '--format', 'int4', '--model', join(root, 'nope'), '--out', join(root, 'x3')], /nope/);
    await bad(['quantize', '--format', 'int4', '--model', src, '--out', src], /--out .*: is the input .*; writing there would destroy it/);
    // patterns that select no weight: refused, nothing written (was 'quantized 0 of 8 tensors at 0.000 bits/weight', exit 0, a copy written)
    await bad(['quantize', '--format', 'int4', '--model', src, '--out', join(root, 'x7'), '--include', 'nomatch*'], /no weight of .* is selected .*matching include nomatch\*/);
    await bad(['prune', '--sparsity', '0.5', '--model', src, '--out', join(root, 'x8'), '--exclude', '*'], /no weight of .* is selected .*matching exclude \*/);
    await bad(['prune', '--sparsity', '0.5', '--method', 'wanda', '--calib', calib, '--model', src, '--out', join(root, 'x9'), '--include', 'nomatch*'], /no weight of .* is selected/);
    for (const x of ['x7', 'x8', 'x9']) assert.equal(existsSync(join(root, x)), false, x);
    await bad(['prune', '--sparsity', '1.5', '--model', src, '--out', join(root, 'x4')], /--sparsity must be a number in \[0, 1\], got 1.5/);
    await bad(['prune', '--sparsity', '0.5', '--method', 'wanda', '--model', src, '--out', join(root, 'x5')], /needs --calib/);
    writeFileSync(join(src, 'config.json'), JSON.stringify({ ...hfConfig, model_type: 'gpt2' }));
    await bad(['prune', '--sparsity', '0.5', '--method', 'wanda', '--calib', calib, '--model', src, '--out', join(root, 'x6')], /model_type "llama" or "hierarchical_autoregressive_transformer".*"gpt2".*--method magnitude/);
    // corrupt packed checkpoint: a file with codes but no metadata
    writeSafetensors(join(root, 'corrupt.safetensors'), { 'a.weight.codes': { dtype: 'U8', shape: [2, 8], data: new Uint8Array(16) } });
    const b = build(4);
    assert.throws(() => loadPackedModel(b.model, b.store, join(root, 'corrupt.safetensors')), /tensor "a\.weight\.codes": looks like packed codes/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('README: tfree quantize --format kmeans4 --in models/default works (block 32 where 64 does not divide 352, with a note); prune --method wanda runs on the HAT', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tfree-cli-hat-'));
  try {
    const q = await cli(['quantize', '--format', 'kmeans4', '--in', 'models/default', '--out', join(root, 'q'), '--json']);
    assert.equal(q.code, 0, q.err);
    assert.match(q.err, /^note: block 64 does not divide the row length 352: used block 32 for \d+ tensors?$/m);
    const rows = q.out.trim().split('\n').map((l) => JSON.parse(l) as { tensor?: string; shape?: number[]; block?: number; quantized?: number });
    const perTensor = rows.filter((r) => r.tensor !== undefined);
    assert.ok(perTensor.length > 0);
    for (const r of perTensor) assert.equal(r.block, (r.shape as number[])[1] % 64 === 0 ? 64 : 32, r.tensor);
    const g = await cli(['generate', '--model', join(root, 'q'), '--prompt', 'The ', '--max-bytes', '8', '--greedy']);
    assert.equal(g.code, 0, g.err);

    const calib = join(root, 'calib.txt');
    writeFileSync(calib, 'The quick brown fox jumps over the lazy dog. A second sentence gives the words some variety, and numbers 1, 2, 3.\n'.repeat(6));
    const w = await cli(['prune', '--sparsity', '0.5', '--method', 'wanda', '--calib', calib, '--in', 'models/default', '--out', join(root, 'w'), '--json']);
    assert.equal(w.code, 0, w.err);
    const ck = openCheckpoint(join(root, 'w'));
    const base = openCheckpoint('models/default');
    // per output row exactly half of the weights are zero, and the choice is not plain magnitude (the input norms matter)
    const name = 'backbone.layers.0.mlp.down_proj.weight';
    const got = ck.readAs(name, 'f32');
    const [R, C] = got.shape;
    for (let r = 0; r < R; r++) assert.equal(got.data.subarray(r * C, (r + 1) * C).reduce((z, v) => z + (v === 0 ? 1 : 0), 0), C / 2, `row ${r}`);
    const orig = base.readAs(name, 'f32').data;
    let differs = 0;
    for (let r = 0; r < R; r++) {
      const row = Array.from(orig.subarray(r * C, (r + 1) * C), Math.abs).sort((a, b) => a - b);
      const t = row[C / 2 - 1];
      for (let c = 0; c < C; c++) if ((got.data[r * C + c] === 0) !== (Math.abs(orig[r * C + c]) <= t)) differs++;
    }
    assert.ok(differs > 0, 'Wanda must differ from per-row magnitude pruning');
    ck.close();
    base.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a bad TFREE_PACKED_ACT / TFREE_PACKED_LUT / TFREE_HUGE is a one-line user error, exit 2', async () => {
  for (const [name, value, msg] of [
    ['TFREE_PACKED_ACT', 'bogus', /^tfree info: TFREE_PACKED_ACT must be int8 or int16, got "bogus"\n$/],
    ['TFREE_PACKED_LUT', 'yes', /^tfree info: TFREE_PACKED_LUT must be 0 or 1, got "yes"\n$/],
    ['TFREE_HUGE', 'off', /^tfree info: TFREE_HUGE must be 0 or 1, got "off"\n$/],
  ] as const) {
    const old = process.env[name];
    process.env[name] = value;
    try {
      const r = await cli(['info']);
      assert.equal(r.code, 2);
      assert.match(r.err, msg);
    } finally {
      if (old === undefined) delete process.env[name];
      else process.env[name] = old;
    }
  }
});

test('quantize / prune: a memory need above the machine (or memoryLimit) is refused before any work; the CLI says so in one line', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tfree-cli-mem-'));
  try {
    const src = join(root, 'model');
    mkdirSync(src);
    writeSafetensors(join(src, 'model.safetensors'), build(1).store.toRecord());
    writeFileSync(join(src, 'config.json'), JSON.stringify(hfConfig));
    const out = join(root, 'out');
    // the library: a limit below the estimate (pruned weights held until the write + f32 copies of the largest)
    assert.throws(() => pruneCheckpoint(src, out, { sparsity: 0.5, method: 'magnitude', memoryLimit: 1000 }), /pruning .*model needs about 0\.0 GiB in memory \(the pruned weights are held until the write\), more than the 0\.0 GiB available/);
    assert.throws(() => quantizeCheckpoint(src, out, parseFormat('int4', { blockSize: 32 }), { memoryLimit: 1000 }), /quantizing .*model needs about .* GiB in memory \(the packed weights/);
    assert.equal(existsSync(out), false);
    // the CLI on a model larger than this machine's memory: a sparse file (no data written) with one f32 weight of rows x 4096
    const big = join(root, 'big');
    mkdirSync(big);
    const rows = Math.ceil((1.1 * totalmem()) / (4 * 4096));
    const header = Buffer.from(JSON.stringify({ 'layers.0.mlp.weight': { dtype: 'F32', shape: [rows, 4096], data_offsets: [0, rows * 4096 * 4] } }).padEnd(256, ' '));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(header.length));
    const file = join(big, 'model.safetensors');
    writeFileSync(file, Buffer.concat([prefix, header]));
    truncateSync(file, 8 + header.length + rows * 4096 * 4);
    writeFileSync(join(big, 'config.json'), JSON.stringify(hfConfig));
    for (const args of [['prune', '--sparsity', '0.5'], ['quantize', '--format', 'int8']]) {
      const r = await cli([...args, '--model', big, '--out', out, '--json']);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err.trim(), /^tfree (prune|quantize): (pruning|quantizing) .*big needs about \d+\.\d GiB in memory .*, more than the \d+\.\d GiB available$/);
    }
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
