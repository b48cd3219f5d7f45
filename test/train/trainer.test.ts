import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../src/nn/index.js';
import { clearPool, pooledSize } from '../../src/tensor/index.js';
import { BytePacker, openCheckpoint, type TextDocument } from '../../src/io/index.js';
import { ResumeMismatchError, Trainer, type LogEntry, type TrainSettings } from '../../src/train/index.js';
import { ByteLlama, spaceSplit } from './standin.js';

const enc = new TextEncoder();

/** A tiny corpus with structure to learn: repeated phrases. */
export function corpus(n: number, seed = 1): TextDocument[] {
  const rng = new Rng(seed);
  const phrases = ['the cat sat on the mat.', 'a dog ran in the park.', 'we like green tea.', 'it is raining again.'];
  return Array.from({ length: n }, (_, i) => {
    const parts: string[] = [];
    for (let k = 0; k < 2 + rng.int(6); k++) parts.push(phrases[rng.int(phrases.length)]);
    return { source: `d${i}`, bytes: enc.encode(parts.join(' ')) };
  });
}

const base: TrainSettings = {
  steps: 12,
  batchRows: 4,
  accum: 1,
  lr: 3e-3,
  warmup: 2,
  minLrRatio: 0.1,
  weightDecay: 0.1,
  betas: [0.9, 0.95],
  eps: 1e-8,
  clip: 1,
  evalEvery: 4,
  evalBytes: 0,
  saveEvery: 5,
  seed: 3,
};

function make(out: string, settings: Partial<TrainSettings> = {}): Trainer {
  const docs = corpus(40);
  const s = { ...base, ...settings };
  return new Trainer({
    model: new ByteLlama({}, 7),
    settings: s,
    train: new BytePacker(docs.slice(0, 32), { seqBytes: 48, split: spaceSplit, seed: s.seed }),
    makeVal: () => new BytePacker(docs.slice(32), { seqBytes: 48, split: spaceSplit, shuffle: false }),
    outDir: out,
    run: { data: 'corpus(40)' },
  });
}

const strip = (log: LogEntry[]): Omit<LogEntry, 'time' | 'bytesPerSec'>[] => log.map(({ time: _t, bytesPerSec: _b, ...rest }) => rest);

test('trainer: loss falls, validation bpb logged on schedule, checkpoint and final model written', () => {
  const out = fs.mkdtempSync(join(tmpdir(), 'tfree-train-'));
  try {
    const t = make(out, { steps: 40, evalEvery: 10, saveEvery: 15 });
    const log = t.runAll();
    assert.equal(log.length, 40);
    const first = log.slice(0, 3).reduce((a, e) => a + e.bpb, 0) / 3;
    const last = log.slice(-3).reduce((a, e) => a + e.bpb, 0) / 3;
    assert.ok(last < 0.75 * first, `training bpb ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.deepEqual(log.filter((e) => e.valBpb !== undefined).map((e) => e.step), [10, 20, 30, 40]);
    const v = log.filter((e) => e.valBpb !== undefined).map((e) => e.valBpb as number);
    assert.ok(v[3] < v[0], `validation bpb ${v.join(', ')}`);
    assert.ok(log.every((e) => Number.isFinite(e.loss) && e.bytes > 0 && e.lr > 0));
    // warmup then cosine: lr rises over the warmup steps, then falls
    assert.ok(log[0].lr < log[1].lr && log[10].lr > log[39].lr);
    const latest = JSON.parse(fs.readFileSync(join(out, 'checkpoints', 'latest.json'), 'utf8')) as { step: number };
    assert.equal(latest.step, 40);
    assert.deepEqual(fs.readdirSync(join(out, 'checkpoints')).sort(), ['latest.json', 'step-00000040']);
    const ck = openCheckpoint(join(out, 'model.safetensors'));
    assert.deepEqual(ck.names().sort(), t.model.store.names().sort());
    ck.close();
    const lines = fs.readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 40);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('trainer: resuming from a checkpoint reproduces the uninterrupted loss curve exactly', () => {
  const a = fs.mkdtempSync(join(tmpdir(), 'tfree-train-'));
  const b = fs.mkdtempSync(join(tmpdir(), 'tfree-train-'));
  try {
    const full = make(a).runAll();
    make(b).runAll(7); // stops after step 7; the last checkpoint is step 5
    const r = make(b);
    assert.equal(r.resume(), true);
    assert.equal(r.step, 5);
    const resumed = r.runAll();
    assert.deepEqual(strip(resumed), strip(full));
    const wa = openCheckpoint(join(a, 'model.safetensors'));
    const wb = openCheckpoint(join(b, 'model.safetensors'));
    for (const n of wa.names()) assert.deepEqual(wb.read(n).data, wa.read(n).data, n);
    wa.close();
    wb.close();
    // a changed setting is refused, naming it
    assert.throws(() => make(b, { lr: 1e-3 }).resume(), (e: unknown) => e instanceof ResumeMismatchError && /lr: checkpoint 0\.003, now 0\.001/.test(e.message));
  } finally {
    fs.rmSync(a, { recursive: true, force: true });
    fs.rmSync(b, { recursive: true, force: true });
  }
});

test('trainer: gradient accumulation over K micro-batches equals one batch K times larger', () => {
  const a = fs.mkdtempSync(join(tmpdir(), 'tfree-train-'));
  const b = fs.mkdtempSync(join(tmpdir(), 'tfree-train-'));
  try {
    const one = make(a, { steps: 3, batchRows: 4, accum: 1, evalEvery: 0, saveEvery: 0 });
    const acc = make(b, { steps: 3, batchRows: 2, accum: 2, evalEvery: 0, saveEvery: 0 });
    const l1 = one.runAll();
    const l2 = acc.runAll();
    for (let i = 0; i < 3; i++) {
      assert.equal(l2[i].bytes, l1[i].bytes);
      assert.ok(Math.abs(l2[i].loss - l1[i].loss) < 1e-5, `step ${i}: ${l1[i].loss} vs ${l2[i].loss}`);
      assert.ok(Math.abs(l2[i].gradNorm - l1[i].gradNorm) < 1e-4 * l1[i].gradNorm);
    }
    let maxDiff = 0;
    for (const [n, p] of one.model.store.entries()) {
      const q = acc.model.store.get(n).f32();
      p.f32().forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - q[i]))));
    }
    assert.ok(maxDiff < 1e-5, `max parameter difference ${maxDiff}`);
  } finally {
    fs.rmSync(a, { recursive: true, force: true });
    fs.rmSync(b, { recursive: true, force: true });
  }
});

test('trainer: the session gives the recycled step buffers back when it ends', () => {
  const out = fs.mkdtempSync(join(tmpdir(), 'tfree-train-pool-'));
  try {
    clearPool();
    const t = make(out, { steps: 3, evalEvery: 0, saveEvery: 0 });
    t.trainStep(performance.now());
    assert.ok(pooledSize() > 0, 'a training step recycled nothing, so this test would prove nothing');
    t.runAll();
    assert.equal(pooledSize(), 0);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
