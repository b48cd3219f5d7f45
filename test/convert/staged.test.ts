/**
 * Staged training of a converted Llama (src/convert/staged.ts over src/train) and the
 * `tfree convert llama-to-hat` command end to end: the frozen backbone keeps its exact source
 * values through stage 1 (the stage-1 model saved as BF16 stores the Llama's bytes), the byte
 * modules learn in stage 1, the backbone changes in stage 2; a run stopped in stage 2 and
 * resumed ends with the uninterrupted run's weights.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { BytePacker, openCheckpoint, type TextDocument } from '../../src/io/index.js';
import { loadHATModel, splitBytes } from '../../src/models/hat/index.js';
import type { TrainSettings } from '../../src/train/index.js';
import { convertLlamaToHAT, llamaSourceName } from '../../src/convert/llama_to_hat.js';
import { runStages, stageDir } from '../../src/convert/staged.js';
import { hatTrainable } from '../../src/models/hat/train.js';
import { tmpDir, writeFixture } from '../llama/fixture.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const root = tmpDir('convert-staged');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const SMALL_BYTES = { byteHidden: 16, byteHeads: 2, byteKvHeads: 1, byteIntermediate: 24, encoderLayers: 1, decoderLayers: 1, slidingWindow: 16 };

const TEXT = [
  'The quick brown fox jumps over the lazy dog.',
  'Der schnelle braune Fuchs springt über den faulen Hund.',
  'A stitch in time saves nine; look before you leap.',
  'Zwei Fliegen mit einer Klappe schlagen, sagt man.',
  'Early to bed and early to rise makes a man healthy.',
  'Wer zuletzt lacht, lacht am besten, heißt es.',
];
const docs: TextDocument[] = TEXT.map((t, i) => ({ source: `doc${i}`, bytes: new TextEncoder().encode(t) }));
const split = (b: Uint8Array): number[] => splitBytes(b).map((w) => w.length);

const SETTINGS: Omit<TrainSettings, 'steps' | 'lr' | 'warmup'> = {
  batchRows: 2,
  accum: 1,
  minLrRatio: 0.1,
  weightDecay: 0.1,
  betas: [0.9, 0.95],
  eps: 1e-8,
  clip: 1,
  evalEvery: 0,
  evalBytes: 0,
  saveEvery: 1,
  seed: 0,
};

function rawBits(dir: string, name: string): Uint16Array | Uint32Array {
  const ck = openCheckpoint(dir);
  try {
    const t = ck.read(name);
    return t.dtype === 'BF16' ? Uint16Array.from(t.data as Uint16Array) : Uint32Array.from(new Uint32Array((t.data as Float32Array).slice().buffer));
  } finally {
    ck.close();
  }
}

function snapshot(store: { entries(): [string, { f32(): Float32Array }][] }): Map<string, Float32Array> {
  return new Map(store.entries().map(([n, t]) => [n, t.f32().slice()]));
}

function runConverted(llamaDir: string, out: string, stopAfter?: { stage: number; step: number }, resume = false): ReturnType<typeof convertLlamaToHAT> {
  const conv = convertLlamaToHAT(llamaDir, { bytes: SMALL_BYTES, seed: 2 });
  runStages({
    model: hatTrainable(conv.model, 'BF16'),
    stages: [
      { steps: 3, lr: 5e-3, warmup: 1, freeze: ['backbone'] },
      { steps: 4, lr: 2e-3, warmup: 1 },
    ],
    settings: SETTINGS,
    makeTrain: (k) => new BytePacker(docs, { seqBytes: 48, split, seed: k }),
    makeVal: () => new BytePacker(docs.slice(0, 2), { seqBytes: 48, split, shuffle: false }),
    outDir: out,
    resume,
    events: (k) => ({ shouldStop: () => stopAfter !== undefined && k === stopAfter.stage && fs.existsSync(nodePath.join(stageDir(out, k), 'checkpoints', `step-${String(stopAfter.step).padStart(8, '0')}`)) }),
  });
  return conv;
}

test('stage 1 keeps the frozen backbone bit-identical while the byte modules learn; stage 2 changes it', () => {
  const src = writeFixture(nodePath.join(root, 'llama'), { tied: false, seed: 21 });
  const before = snapshot(convertLlamaToHAT(src.dir, { bytes: SMALL_BYTES, seed: 2 }).model.store);
  const out = nodePath.join(root, 'run');
  const conv = runConverted(src.dir, out);
  // the stage-1 model, written as BF16: its backbone bytes are the Llama's bytes
  const s1 = stageDir(out, 0);
  let nb = 0;
  for (const name of conv.copied) {
    assert.deepEqual(rawBits(s1, name), rawBits(src.dir, llamaSourceName(name) as string), `${name} changed in stage 1`);
    nb++;
  }
  assert.equal(nb, 18);
  const stage1 = loadHATModel(s1);
  const moved = (m: { store: { get(n: string): { f32(): Float32Array } } }, n: string): boolean => m.store.get(n).f32().some((v, i) => v !== (before.get(n) as Float32Array)[i]);
  for (const n of ['encoder.embedding_layer.weight', 'encoder_connector.latent_query', 'lm_head.weight', 'decoder.decoder_layers.0.llama_layer.mlp.up_proj.weight']) {
    assert.ok(moved(stage1, n), `${n} did not learn in stage 1`);
  }
  // stage 2: every backbone tensor moves (the final model is written to the run folder itself)
  const final = loadHATModel(out);
  for (const name of conv.copied) assert.ok(moved(final, name), `${name} did not change in stage 2`);
  // the logs: 3 + 4 steps, finite losses
  const log = (d: string): { step: number; loss: number }[] => fs.readFileSync(nodePath.join(d, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
  assert.deepEqual(log(s1).map((e) => e.step), [1, 2, 3]);
  assert.deepEqual(log(stageDir(out, 1)).map((e) => e.step), [1, 2, 3, 4]);
  assert.ok([...log(s1), ...log(stageDir(out, 1))].every((e) => Number.isFinite(e.loss)));
});

test('a run stopped in stage 2 and resumed ends with the uninterrupted run\'s weights', () => {
  const src = writeFixture(nodePath.join(root, 'llama-r'), { tied: false, seed: 22 });
  const full = nodePath.join(root, 'full');
  runConverted(src.dir, full);
  const cut = nodePath.join(root, 'cut');
  runConverted(src.dir, cut, { stage: 1, step: 2 });
  assert.ok(!fs.existsSync(nodePath.join(cut, 'model.safetensors')), 'the stopped run has no final model yet');
  runConverted(src.dir, cut, undefined, true);
  const a = loadHATModel(full);
  const b = loadHATModel(cut);
  for (const [n, t] of a.store.entries()) assert.deepEqual(b.store.get(n).f32(), t.f32(), n);
});

function tfree(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('tfree convert llama-to-hat: converts, trains two stages on a text file, the result generates; errors are one line', () => {
  const src = writeFixture(nodePath.join(root, 'llama-cli'), { tied: true, seed: 23 });
  const text = nodePath.join(root, 'text.txt');
  fs.writeFileSync(text, Array.from({ length: 40 }, (_, i) => TEXT[i % TEXT.length]).join('\n'));
  // conversion only
  const only = nodePath.join(root, 'cli-only');
  const c0 = tfree('convert', 'llama-to-hat', '--model', src.dir, '--out', only, '--json');
  assert.equal(c0.code, 0, c0.err);
  const ev0 = c0.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(ev0[0].event, 'converted');
  assert.equal(ev0[0].copied, 18);
  assert.equal(ev0[0].dtype, 'BF16');
  for (const n of ['backbone.layers.0.self_attn.k_proj.weight', 'backbone.layers.1.mlp.down_proj.weight']) {
    assert.deepEqual(rawBits(only, n), rawBits(src.dir, llamaSourceName(n) as string), n);
  }
  // with two short stages on the preset tiny byte modules
  const out = nodePath.join(root, 'cli');
  const r = tfree('convert', 'llama-to-hat', '--model', src.dir, '--out', out, '--preset', 'tiny', '--data', text, '--stage1-steps', '2', '--stage1-lr', '3e-3', '--stage2-steps', '2', '--stage2-lr', '1e-3', '--batch', '2', '--seq-bytes', '64', '--json');
  assert.equal(r.code, 0, r.err);
  const ev = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(ev.filter((e) => e.event === 'stage').map((e) => [e.stage, e.frozen]), [[1, 18], [2, 0]]);
  assert.equal(ev.filter((e) => e.event === 'step').length, 4);
  assert.equal(ev[ev.length - 1].event, 'done');
  const model = loadHATModel(out);
  assert.equal(model.config.encoder_config.hidden_size, 128, 'preset tiny byte width');
  assert.equal(model.config.backbone_config.hidden_size, 32, 'the Llama width');
  for (const n of ['backbone.layers.0.self_attn.q_proj.weight']) assert.deepEqual(rawBits(stageDir(out, 0), n), rawBits(src.dir, llamaSourceName(n) as string));
  const g = tfree('generate', '--model', out, '--prompt', 'The quick', '--max-bytes', '10', '--json');
  assert.equal(g.code, 0, g.err);
  const gen = JSON.parse(g.out.trim().split('\n').pop() as string) as { bytes: number; stop_reason: string };
  assert.ok(gen.bytes > 0 && gen.bytes <= 10, JSON.stringify(gen));
  // errors: one line, no stack, non-zero exit
  const again = tfree('convert', 'llama-to-hat', '--model', src.dir, '--out', out, '--data', text);
  assert.notEqual(again.code, 0);
  assert.match(again.err, /already holds a conversion run; pass --resume/);
  const notLlama = tfree('convert', 'llama-to-hat', '--model', out, '--out', nodePath.join(root, 'x'));
  assert.notEqual(notLlama.code, 0);
  assert.match(notLlama.err, /not a Llama checkpoint: .*model_type/);
  assert.equal(notLlama.err.trim().split('\n').length, 1);
  const noData = tfree('convert', 'llama-to-hat', '--model', src.dir, '--out', nodePath.join(root, 'y'), '--stage1-steps', '3');
  assert.notEqual(noData.code, 0);
  assert.match(noData.err, /need text: give --data/);
  const noSub = tfree('convert', '--model', src.dir);
  assert.match(noSub.err, /give a subcommand: llama-to-hat/);
  assert.ok(!notLlama.err.includes('    at '), 'no stack trace');
});

test('tfree convert llama-to-hat: --data missing, --dtype f16 with training, --resume without stages are one line before the conversion; the trained model is kept', () => {
  const src = writeFixture(nodePath.join(root, 'llama-walk'), { tied: false, seed: 29 });
  const text = nodePath.join(root, 'walk-text.txt');
  fs.writeFileSync(text, Array.from({ length: 40 }, (_, i) => TEXT[i % TEXT.length]).join('\n'));
  const fresh = nodePath.join(root, 'walk-fresh');
  // a missing --data path: checked before the conversion (it was converted first, then 'cannot read (ENOENT ...)')
  const nd = tfree('convert', 'llama-to-hat', '--model', src.dir, '--out', fresh, '--data', nodePath.join(root, 'nope.txt'));
  assert.equal(nd.code, 2);
  assert.equal(nd.err, `tfree convert llama-to-hat: --data ${nodePath.join(root, 'nope.txt')}: no such file or folder\n`);
  // --dtype f16 with training: the help says f16 only without training; it trained and wrote F32
  const f16 = tfree('convert', 'llama-to-hat', '--model', src.dir, '--out', fresh, '--data', text, '--stage1-steps', '1', '--stage2-steps', '1', '--dtype', 'f16');
  assert.equal(f16.code, 2);
  assert.match(f16.err, /^tfree convert llama-to-hat: --dtype f16 is only for a conversion without training .*\n$/);
  assert.equal(fs.existsSync(fresh), false, 'nothing written');
  // a finished two-stage run, then --resume without --data: it converted again and replaced the trained model
  const out = nodePath.join(root, 'walk-run');
  const train = ['convert', 'llama-to-hat', '--model', src.dir, '--out', out, '--data', text, '--stage1-steps', '1', '--stage2-steps', '1', '--batch', '2', '--seq-bytes', '64'];
  assert.equal(tfree(...train).code, 0);
  const trained = fs.readFileSync(nodePath.join(out, 'model.safetensors'));
  const rs = tfree('convert', 'llama-to-hat', '--model', src.dir, '--out', out, '--resume');
  assert.equal(rs.code, 2);
  assert.equal(rs.err, `tfree convert llama-to-hat: --resume continues the training stages of ${out}: give the run's --data (and its stage options) again\n`);
  assert.deepEqual(fs.readFileSync(nodePath.join(out, 'model.safetensors')), trained, 'the trained model is untouched');
});

test('tfree convert llama-to-hat --resume refused for other settings leaves conversion.json as the run wrote it', () => {
  const src = writeFixture(nodePath.join(root, 'llama-walk2'), { tied: false, seed: 31 });
  const text = nodePath.join(root, 'walk2-text.txt');
  fs.writeFileSync(text, Array.from({ length: 40 }, (_, i) => TEXT[i % TEXT.length]).join('\n'));
  const out = nodePath.join(root, 'walk2-run');
  const train = ['convert', 'llama-to-hat', '--model', src.dir, '--out', out, '--data', text, '--stage1-steps', '1', '--stage2-steps', '1', '--batch', '2', '--seq-bytes', '64'];
  assert.equal(tfree(...train).code, 0);
  const report = fs.readFileSync(nodePath.join(out, 'conversion.json'), 'utf8');
  // another --seed: the stages refuse it, but conversion.json said "seed": 5 afterwards
  const r = tfree(...train, '--resume', '--seed', '5');
  assert.equal(r.code, 2);
  assert.match(r.err, /--resume: settings differ from the checkpoint .*seed: checkpoint 0, now 5/);
  assert.equal(fs.readFileSync(nodePath.join(out, 'conversion.json'), 'utf8'), report);
  // the same settings resume (nothing left to train) and keep it too
  assert.equal(tfree(...train, '--resume').code, 0);
  assert.equal(fs.readFileSync(nodePath.join(out, 'conversion.json'), 'utf8'), report);
});
