/**
 * Ctrl-C (SIGINT) during the long jobs of the real binary: the job stops at its next safe point,
 * saves, exits 130, and `--resume` continues from what it saved (issue 16 item 1).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeHATConfig } from '../../src/models/hat/config.js';
import { saveHATModel } from '../../src/models/hat/checkpoint.js';
import { testConfig, randomModel } from '../hat/util.js';
import { Running, smallKgModel, tfree } from './run.js';
import { writeFixture } from '../llama/fixture.js';

const root = fs.mkdtempSync(join(tmpdir(), 'tfree-sigint-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const text = join(root, 'text.txt');
fs.writeFileSync(text, Array.from({ length: 200 }, (_, i) => `Line ${i} of a small text: the cat sat on the mat, ${i % 7} times.`).join('\n'));
const cfgDir = join(root, 'cfg');
writeHATConfig(cfgDir, testConfig({ window: 16 }));

interface Ev {
  event: string;
  step?: number;
  epoch?: number;
  epochs?: number;
}
const events = (out: string): Ev[] =>
  out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Ev);

test('tfree train: SIGINT after it started stepping saves a checkpoint and exits 130; --resume continues from it', async () => {
  const out = join(root, 'run');
  const args = ['train', '--data', text, '--out', out, '--config', join(cfgDir, 'config.json'), '--steps', '100000', '--batch', '1', '--seq-bytes', '64', '--eval-every', '0', '--save-every', '0', '--json'];
  const p = new Running(args);
  await p.until((o) => events(o).some((e) => e.event === 'step'));
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  const stopped = events(r.out).find((e) => e.event === 'stopped');
  assert.ok(stopped !== undefined && stopped.step !== undefined && stopped.step >= 1, r.out);
  const latest = JSON.parse(fs.readFileSync(join(out, 'checkpoints', 'latest.json'), 'utf8')) as { step: number };
  assert.equal(latest.step, stopped.step);
  assert.ok(!fs.readdirSync(join(out, 'checkpoints')).some((n) => n.includes('.tmp-')));
  // --resume continues at the next step (then a second SIGINT stops it again)
  const q = new Running([...args, '--resume']);
  await q.until((o) => events(o).some((e) => e.event === 'step'));
  q.child.kill('SIGINT');
  const r2 = await q.done;
  assert.equal(r2.code, 130, r2.err);
  assert.equal(events(r2.out).find((e) => e.event === 'step')?.step, latest.step + 1);
});

test('tfree kg train: SIGINT stops after the epoch with its state saved, exit 130; --resume continues', async () => {
  const data = join(root, 'kg');
  assert.equal(tfree(['kg', 'synth', '--out', data]).code, 0);
  const ckpt = join(root, 'kg.safetensors');
  const p = new Running(['kg', 'train', '--data', data, '--out', ckpt, '--dim', '8', '--epochs', '100000', '--batch', '16', '--negatives', '4', '--valid-every', '0', '--json']);
  await p.until((o) => events(o).some((e) => e.event === 'epoch'));
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  const done = events(r.out).find((e) => e.event === 'stopped')?.epochs;
  assert.ok(done !== undefined && done >= 1, r.out);
  assert.ok(fs.existsSync(`${ckpt}.last`));
  const re = tfree(['kg', 'train', '--data', data, '--out', ckpt, '--resume', '--epochs', String(done + 1), '--json']);
  assert.equal(re.code, 0, re.err);
  assert.deepEqual(
    events(re.out)
      .filter((e) => e.event === 'epoch')
      .map((e) => e.epoch),
    [done + 1],
  );
});

test('tfree eval sweep: SIGINT stops after the current cell, writes the rows so far ("interrupted": true), exit 130', async () => {
  const model = join(root, 'model');
  saveHATModel(model, randomModel(testConfig({ window: 16 }), 3, 0.3));
  const prompts = join(root, 'prompts.txt');
  fs.writeFileSync(prompts, 'The cat sat\nA dog ran\nOnce upon a time\n');
  const sweepOut = join(root, 'sweep.json');
  const p = new Running(['eval', 'sweep', '--model', model, '--prompts', prompts, '--max-bytes', '24', '--levels', 's0.1,s0.2,s0.3,s0.4,s0.5,s0.6,s0.7,s0.8,s0.9,s1,int8,int4', '--out', sweepOut]);
  await p.until((_o, e) => /sweep \[/.test(e));
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  const s = JSON.parse(fs.readFileSync(sweepOut, 'utf8')) as { interrupted?: boolean; rows: unknown[]; components: unknown[]; levels: unknown[] };
  assert.equal(s.interrupted, true);
  assert.ok(s.rows.length >= 1 && s.rows.length < s.components.length * s.levels.length, `${s.rows.length} rows`);
});

test('tfree eval plan: SIGINT during its sweep names eval plan, writes the rows so far, and its bar shows the cells done', async () => {
  const model = join(root, 'model-plan');
  saveHATModel(model, randomModel(testConfig({ window: 16 }), 4, 0.3));
  const prompts = join(root, 'prompts-plan.txt');
  fs.writeFileSync(prompts, 'The cat sat\nA dog ran\nOnce upon a time\n');
  const out = join(root, 'plan-out');
  const p = new Running(['eval', 'plan', '--model', model, '--prompts', prompts, '--max-bytes', '24', '--levels', 'int8,int4,int3,int2,kmeans4,kmeans2,bin1', '--targets', '0.1,0.2,0.3,0.4,0.5,0.6', '--budgets', '16', '--out', out]);
  await p.until((_o, e) => /sweep \[/.test(e));
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  // was 'tfree eval sweep: SIGINT: ...' (the sweep's label) and a bar one cell behind the count below
  assert.match(r.err, /^tfree eval plan: SIGINT: stopping after this cell/m);
  const rows = (JSON.parse(fs.readFileSync(join(out, 'sweep.json'), 'utf8')) as { rows: unknown[] }).rows.length;
  assert.match(r.err, new RegExp(`stopped during the sweep \\(${rows} cells done\\)`));
  const bars = r.err.split('\n').filter((l) => l.startsWith('sweep ['));
  assert.match(bars[bars.length - 1], new RegExp(` ${rows}/\\d+ `));
});

test('tfree convert llama-to-hat: SIGINT during stage 1 saves a stage checkpoint, exit 130; --resume continues', async () => {
  const src = writeFixture(join(root, 'llama'), { tied: true, seed: 5 });
  const out = join(root, 'conv');
  const args = ['convert', 'llama-to-hat', '--model', src.dir, '--out', out, '--data', text, '--byte-hidden', '16', '--byte-heads', '2', '--byte-kv-heads', '1', '--byte-intermediate', '24', '--encoder-layers', '1', '--decoder-layers', '1'];
  const run = [...args, '--stage1-steps', '100000', '--stage2-steps', '2', '--batch', '1', '--seq-bytes', '64', '--eval-every', '0', '--save-every', '0', '--json'];
  const p = new Running(run);
  await p.until((o) => events(o).some((e) => e.event === 'step'));
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  const latest = JSON.parse(fs.readFileSync(join(out, 'stage1', 'checkpoints', 'latest.json'), 'utf8')) as { step: number };
  assert.ok(latest.step >= 1);
  const q = new Running([...run, '--resume']);
  await q.until((o) => events(o).some((e) => e.event === 'step'));
  q.child.kill('SIGINT');
  const r2 = await q.done;
  assert.equal(r2.code, 130, r2.err);
  assert.equal(events(r2.out).find((e) => e.event === 'step')?.step, latest.step + 1);
});

test('tfree synth-model: SIGINT mid-write removes its temp file and the shards it wrote (and the folder it created), exit 130', async (t) => {
  if (fs.statfsSync(root).bavail * fs.statfsSync(root).bsize < 16e9) {
    t.skip('needs 16 GB free for the hat-8b disk check (it writes only ~0.1 GB before the SIGINT)');
    return;
  }
  for (const existed of [false, true]) {
    const out = join(root, `synth-${existed}`);
    if (existed) fs.mkdirSync(out);
    const p = new Running(['synth-model', '--like', 'hat-8b', '--out', out, '--shard-gb', '0.05', '--quiet']);
    // shard 1 is complete once shard 2's temp file appears
    await p.until(() => fs.existsSync(out) && fs.readdirSync(out).some((n) => n.startsWith('model-00002-') && n.includes('.tmp-')), 120_000);
    p.child.kill('SIGINT');
    const r = await p.done;
    assert.equal(r.code, 130, r.err);
    assert.match(r.err, /tfree synth-model: interrupted; the partial files were removed/);
    if (existed) assert.deepEqual(fs.readdirSync(out), [], 'no temp file, no shard, no config.json left');
    else assert.equal(fs.existsSync(out), false, 'the folder it created is gone');
  }
});

test('tfree quantize / prune: Ctrl-C while transforming leaves no --out folder (it is created only to write)', async () => {
  const src = join(root, 'synth-small');
  assert.equal(tfree(['synth-model', '--like', 'hat-small', '--out', src, '--quiet']).code, 0);
  for (const [cmd, ...rest] of [['quantize', '--format', 'kmeans4'], ['prune', '--sparsity', '0.5']]) {
    const out = join(root, `${cmd}-stopped`);
    const p = new Running([cmd, ...rest, '--model', src, '--out', out]);
    await p.until((_o, e) => new RegExp(`${cmd} \\[`).test(e));
    p.child.kill('SIGINT');
    const r = await p.done;
    assert.ok(r.code === 130 || r.signal === 'SIGINT', `${cmd}: ${r.code} ${r.signal} ${r.err}`);
    assert.equal(fs.existsSync(out), false, `${cmd}: no ${out}`);
  }
});

test('tfree quantize / prune: SIGINT during the write stops after the tensor, removes the files of this run (and the --out it created), exit 130; an old --out stays byte for byte', async () => {
  const src = join(root, 'model-write');
  saveHATModel(src, randomModel(testConfig({ window: 16 }), 3, 0.3));
  fs.writeFileSync(join(src, 'tokenizer.json'), '{}');
  // the same commands run to the end: their output, kept as the "old" --out below
  const runs: [string, string[]][] = [
    ['quantize', ['--format', 'int8']],
    ['prune', ['--sparsity', '0.5']],
  ];
  for (const [cmd, rest] of runs) {
    const old = join(root, `${cmd}-old`);
    const full = tfree([cmd, ...rest, '--model', src, '--out', old]);
    assert.equal(full.code, 0, full.err);
    const before = new Map(fs.readdirSync(old).map((n) => [n, fs.readFileSync(join(old, n))]));
    for (const existed of [false, true]) {
      const out = existed ? old : join(root, `${cmd}-new`);
      // a slow disk (a pause at each tensor of the write) so the signal lands mid-write on any machine
      const p = new Running([cmd, ...rest, '--model', src, '--out', out, ...(existed ? ['--overwrite'] : [])], { TFREE_TEST_WRITE_PAUSE_MS: '150' });
      await p.until(() => fs.existsSync(out) && fs.readdirSync(out).some((n) => n.startsWith('model.safetensors.tmp-')), 120_000);
      p.child.kill('SIGINT');
      const r = await p.done;
      assert.equal(r.code, 130, `${cmd}: ${r.err}`);
      assert.match(r.err, new RegExp(`tfree ${cmd}: interrupted; the partial files were removed`));
      if (existed) {
        assert.deepEqual(fs.readdirSync(old).sort(), [...before.keys()].sort(), `${cmd}: no temp file left`);
        for (const [n, b] of before) assert.ok(fs.readFileSync(join(old, n)).equals(b), `${cmd}: ${n} unchanged`);
      } else assert.equal(fs.existsSync(out), false, `${cmd}: the folder it created is gone`);
    }
  }
});

test('tfree kg pack: SIGINT during the write stops after the tensor and leaves no file (no temp), exit 130', async () => {
  fs.mkdirSync(join(root, 'kg-pack'));
  const ckpt = smallKgModel(join(root, 'kg-pack'));
  const dir = join(root, 'kg-pack-out');
  fs.mkdirSync(dir);
  const out = join(dir, 'packed.safetensors');
  const p = new Running(['kg', 'pack', '--model', ckpt, '--out', out], { TFREE_TEST_WRITE_PAUSE_MS: '300' });
  await p.until(() => fs.readdirSync(dir).some((n) => n.startsWith('packed.safetensors.tmp-')), 120_000);
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  assert.match(r.err, /tfree kg pack: interrupted; the partial files were removed\n/);
  assert.deepEqual(fs.readdirSync(dir), [], 'no file, no temp file');
});

test('tfree train --json | head -1: the closed pipe ends the run quietly (exit 0) and leaves no empty --out folder', async () => {
  const out = join(root, 'run-piped');
  const p = new Running(['train', '--data', text, '--out', out, '--config', join(cfgDir, 'config.json'), '--steps', '100000', '--batch', '1', '--seq-bytes', '64', '--eval-every', '0', '--save-every', '0', '--json']);
  await p.until((o) => events(o).some((e) => e.event === 'step'));
  assert.ok(fs.existsSync(out), 'the run made its folder');
  p.child.stdout?.destroy(); // as head -1 does after its line
  const r = await p.done;
  assert.equal(r.code, 0, r.err);
  assert.equal(fs.existsSync(out), false, 'nothing was saved: the folder it created is gone');
});

test('tfree train --qat: SIGINT while it writes the packed model stops after the tensor, removes the --qat-out it created, exit 130; the f32 model stays and --resume writes the packed one', async () => {
  const out = join(root, 'run-qat');
  const qatOut = join(root, 'run-qat-packed');
  const args = ['train', '--data', text, '--out', out, '--config', join(cfgDir, 'config.json'), '--steps', '2', '--batch', '1', '--seq-bytes', '64', '--eval-every', '0', '--qat', 'int8', '--qat-block', '16', '--qat-out', qatOut];
  // a slow disk (a pause at each tensor of the write) so the signal lands mid-write on any machine
  const p = new Running(args, { TFREE_TEST_WRITE_PAUSE_MS: '150' });
  await p.until(() => fs.existsSync(qatOut) && fs.readdirSync(qatOut).some((n) => n.startsWith('model.safetensors.tmp-')), 120_000);
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.equal(r.code, 130, r.err);
  assert.match(r.err, /^tfree train: SIGINT: stopping after this tensor/m);
  assert.ok(r.err.includes(`tfree train: interrupted; the partial files were removed (and ${qatOut})\n`), r.err);
  assert.match(r.err, /stopped while writing the packed model; the f32 model is in .*; --resume writes the packed model to /);
  assert.equal(fs.existsSync(qatOut), false, 'the --qat-out folder it created is gone');
  for (const f of ['config.json', 'model.safetensors']) assert.ok(fs.existsSync(join(out, f)), `--out keeps ${f}`);
  const re = tfree([...args, '--resume']);
  assert.equal(re.code, 0, re.err);
  assert.deepEqual(fs.readdirSync(qatOut).sort(), ['config.json', 'model.safetensors']);
});
