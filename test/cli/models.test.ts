/**
 * Models that must be refused at load, and closed pipes, through the real binary (issue 16
 * items 4, 5, 9, 10).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readHATConfig, writeHATConfig } from '../../src/models/hat/config.js';
import { saveHATModel } from '../../src/models/hat/checkpoint.js';
import { randomModel, testConfig } from '../hat/util.js';
import { MAIN, errLines, tfree } from './run.js';
import { writeFixture } from '../llama/fixture.js';
import { checkHATCheckpoint } from '../../src/compress/index.js';
import { openCheckpoint } from '../../src/io/index.js';

const root = fs.mkdtempSync(join(tmpdir(), 'tfree-models-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const model = join(root, 'model');
saveHATModel(model, randomModel(testConfig({ window: 16 }), 7, 0.3));
const prompts = join(root, 'prompts.txt');
fs.writeFileSync(prompts, 'The cat\nA dog\n');

function oneLine(args: string[], re: RegExp, env?: Record<string, string>): void {
  const r = tfree(args, { env, timeoutMs: 30_000 });
  assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code} ${r.signal ?? ''}: ${r.err}`);
  const lines = errLines(r.err);
  assert.equal(lines.length, 1, `${args.join(' ')}: ${r.err}`);
  assert.match(lines[0], re, args.join(' '));
}

test('a NaN weight (lm_head or a layer) is refused at load with one line naming the tensor', () => {
  for (const name of ['lm_head.weight', 'backbone.layers.1.mlp.down_proj.weight']) {
    const m = randomModel(testConfig({ window: 16 }), 7, 0.3);
    m.store.get(name).f32()[3] = Number.NaN;
    const dir = join(root, `nan-${name}`);
    saveHATModel(dir, m);
    const re = new RegExp(`tensor "${name.replace(/\./g, '\\.')}" (has a non-finite value at element 3|holds 1 non-finite value \\(NaN or infinity\\))`);
    oneLine(['generate', '--model', dir, '--prompt', 'The cat'], re);
    oneLine(['eval', 'bpb', '--model', dir, '--data', prompts], re);
    oneLine(['serve', '--model', dir, '--port', '0'], re);
    oneLine(['eval', 'dtm', '--model', model, '--compressed', dir, '--prompts', prompts], re);
  }
});

test('quantize / prune of a model with a NaN weight: one line naming the tensor, nothing written (quantize was an internal error, prune wrote a NaN model)', () => {
  const name = 'backbone.layers.1.mlp.down_proj.weight';
  const m = randomModel(testConfig({ window: 16 }), 7, 0.3);
  m.store.get(name).f32()[3] = Number.NaN;
  const dir = join(root, 'nan-convert');
  saveHATModel(dir, m);
  const out = join(root, 'nan-convert-out');
  const re = new RegExp(`tensor "${name.replace(/\./g, '\\.')}": value 3 is NaN; cannot (quantize|prune) non-finite weights`);
  for (const format of ['int4', 'kmeans4']) oneLine(['quantize', '--format', format, '--block', '16', '--model', dir, '--out', out, '--json'], re);
  oneLine(['prune', '--sparsity', '0.5', '--model', dir, '--out', out, '--json'], re);
  assert.equal(fs.existsSync(out), false);
});

test('a packed model with a NaN scale is refused at load naming the tensor (already so before; kept as a check)', () => {
  const q = join(root, 'q8');
  const r = tfree(['quantize', '--format', 'int8', '--block', '8', '--model', model, '--out', q]);
  assert.equal(r.code, 0, r.err);
  const file = join(q, 'model.safetensors');
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets?: [number, number] }>;
  const name = Object.keys(header).find((k) => k.endsWith('.scales') && k.includes('backbone.layers.0'));
  assert.ok(name !== undefined);
  const at = 8 + n + (header[name].data_offsets as [number, number])[0] + 2;
  b[at] = 0xc0; // bf16 0x7fc0: NaN
  b[at + 1] = 0x7f;
  fs.writeFileSync(file, b);
  // (the packed reader checks every scale; the plain tensors of a packed model go through the same check as a plain model)
  oneLine(['generate', '--model', q, '--prompt', 'The cat'], new RegExp(`tensor "${name.replace(/\./g, '\\.')}": scale 1 is not finite`));
});

test('eval dtm refuses a compressed model that splits text differently from its base; serve --quantized warns on an unrelated model', async () => {
  const other = join(root, 'other-split');
  fs.cpSync(model, other, { recursive: true });
  const cfg = readHATConfig(join(other, 'config.json'));
  writeHATConfig(other, { ...cfg, max_word_size: cfg.max_word_size - 3 });
  oneLine(['eval', 'dtm', '--model', model, '--compressed', other, '--prompts', prompts], /--compressed .*other-split: its max_word_size differs from the base model's/);
  // an unrelated model (another architecture) next to the base: a warning line, the server still starts
  const unrelated = join(root, 'unrelated');
  saveHATModel(unrelated, randomModel(testConfig({ window: 16, backboneLayers: 1 }), 8, 0.3));
  const child = spawn(process.execPath, [MAIN, 'serve', '--model', model, '--quantized', unrelated, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const t0 = Date.now();
  while (!out.includes('listening') && child.exitCode === null && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGTERM');
  await new Promise((r) => child.on('close', r));
  assert.match(out, /listening on http/);
  assert.match(err, /warning: --quantized .*unrelated does not look like a quantized copy of the base model \(config differs in backbone_config\.num_hidden_layers\)/);
});

test('a config claiming 10^8 layers fails at once with one line, before allocating', () => {
  const big = join(root, 'big');
  fs.cpSync(model, big, { recursive: true });
  const cfg = readHATConfig(join(big, 'config.json'));
  writeHATConfig(big, { ...cfg, backbone_config: { ...cfg.backbone_config, num_hidden_layers: 100_000_000 } });
  const t0 = Date.now();
  oneLine(['generate', '--model', big, '--prompt', 'The cat'], /backbone_config\.num_hidden_layers is 100000000, the checkpoint holds 2 such layers/);
  assert.ok(Date.now() - t0 < 20_000);
  // the same for a Llama checkpoint (llama generate)
  const llama = writeFixture(join(root, 'llama'), { tied: true, seed: 3 }).dir;
  const lc = JSON.parse(fs.readFileSync(join(llama, 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(join(llama, 'config.json'), JSON.stringify({ ...lc, num_hidden_layers: 100_000_000 }));
  oneLine(['llama', 'generate', '--model', llama, '--prompt', 'x'], /config\.json num_hidden_layers is 100000000, the checkpoint holds 2 layers/);
});

/** Runs tfree with its stdout closed after `keep` bytes (as `| head -c keep`); resolves with its exit code and stderr. */
function closedPipe(args: string[], keep: number, input?: string): Promise<{ code: number | null; err: string; got: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let err = '';
    let got = 0;
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= keep) child.stdout?.destroy();
    });
    if (input !== undefined) {
      child.stdin?.on('error', () => {});
      child.stdin?.end(input);
    }
    child.on('close', (code) => resolve({ code, err, got }));
  });
}

test('a closed pipe (| head -c 5) ends generate, split and inspect quietly', async () => {
  for (const [args, input] of [
    [['generate', '--model', model, '--prompt', 'The cat', '--max-bytes', '100000', '--seed', '1']],
    [['inspect', model]],
    [['split'], 'word '.repeat(400_000)],
  ] as [string[], string?][]) {
    const r = await closedPipe(args, 5, input);
    assert.equal(errLines(r.err).length, 0, `${args[0]}: ${r.err}`);
    assert.equal(r.code, 0, `${args[0]}: exit ${r.code}`);
  }
});

test('tfree inspect: a GGUF file is named as one (was "header length 14064895815 ... not a safetensors file?"); --json summary counts the tensors (it had none)', () => {
  const gguf = join(root, 'm.gguf');
  fs.writeFileSync(gguf, Buffer.concat([Buffer.from('GGUF'), Buffer.from(Uint32Array.of(3).buffer), Buffer.alloc(64)]));
  oneLine(['inspect', gguf], /m\.gguf: a GGUF file \(llama\.cpp's format, as tfree export gguf writes it\); tfree inspect lists safetensors files and checkpoint folders$/);
  const r = tfree(['inspect', model, '--json']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { name?: string; tensors?: number });
  const summary = lines[lines.length - 1];
  assert.equal(summary.tensors, lines.length - 1);
  const f = tfree(['inspect', model, '--json', '--filter', 'lm_head']);
  assert.equal((JSON.parse(f.out.trim().split('\n').pop() as string) as { tensors: number }).tensors, 1);
});

test('a model too large for memory: each command\'s refusal suggests what that command can do (eval sweep / plan take no --quantize)', () => {
  // a BF16 checkpoint: generate holds its Linear weights in bf16, eval sweep / plan widen them to f32
  const bf16 = join(root, 'bf16');
  saveHATModel(bf16, randomModel(testConfig({ window: 16 }), 9, 0.3), { dtype: 'BF16' });
  const ck = openCheckpoint(bf16);
  const cfg = readHATConfig(join(bf16, 'config.json'));
  const asStored = checkHATCheckpoint(ck, cfg).modelBytes;
  const widened = checkHATCheckpoint(ck, cfg, { keepBf16: false }).modelBytes;
  ck.close();
  assert.ok(widened > asStored);
  const limit = { TFREE_TEST_MEMORY_LIMIT: String(Math.floor((asStored + widened) / 2)) };
  const sweepArgs = ['--model', bf16, '--prompts', prompts, '--max-bytes', '4'];
  for (const sub of ['sweep', 'plan']) {
    const r = tfree(['eval', sub, ...sweepArgs], { env: limit });
    assert.equal(r.code, 2, r.err);
    const lines = errLines(r.err);
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], new RegExp(`^tfree eval ${sub}: .*model\\.safetensors: the model needs about 0\\.\\d{3} GiB in memory, more than the 0\\.\\d{3} GiB available; eval sweep and eval plan widen every Linear weight to f32 .* take no --quantize; .*tfree eval dtm --compressed DIR`));
    assert.doesNotMatch(lines[0], /load it quantized|--quantize int8/);
  }
  // the same limit holds the model as stored: generate runs
  const g = tfree(['generate', '--model', bf16, '--prompt', 'The', '--max-bytes', '4', '--seed', '1'], { env: limit });
  assert.equal(g.code, 0, g.err);
  // below it: generate suggests --quantize (it takes it), eval dtm and demo do not
  const tiny = { TFREE_TEST_MEMORY_LIMIT: '1000' };
  oneLine(['generate', '--model', bf16, '--prompt', 'The'], /more than the 0\.000 GiB available; load it quantized \(--quantize int8, kmeans4, int4 or bin1\)$/, tiny);
  oneLine(['eval', 'dtm', '--model', bf16, '--compressed', bf16, '--prompts', prompts], /; eval dtm holds the base and the compressed model in memory as stored \(the base is the reference: it takes no --quantize\); run it on a machine with that much memory$/, tiny);
  oneLine(['demo', '--model', bf16], /; tfree demo takes no --quantize; tfree generate --model DIR --quantize int4/, tiny);
});
