import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QuadSet, syntheticKG } from '../../src/io/kg.js';
import {
  KnownFacts,
  Trainer,
  buildKeyTable,
  defaultConfig,
  defaultTrainOptions,
  evaluateSplit,
  keyTableHas,
  loadModel,
  quadKey,
  sampleNegatives,
  type TrainOptions,
} from '../../src/models/boxte/index.js';
import { hasNative } from '../helpers/numeric.js';
import { nativeBackend, withBackend } from '../../src/tensor/index.js';

function withThreads<T>(n: number, fn: () => T): T {
  const nb = nativeBackend();
  if (!('kernels' in nb)) return fn();
  const before = nb.extras.getThreads();
  nb.extras.setThreads(n);
  try {
    return fn();
  } finally {
    nb.extras.setThreads(before);
  }
}

const kg = syntheticKG({ seed: 2 });
const cfg = (d: number) => defaultConfig({ numEntities: kg.entities.length, numRelations: kg.relations.length, numTimes: kg.numTimes, dim: d, k: 2 });
const opts: TrainOptions = { ...defaultTrainOptions, epochs: 30, batchSize: 64, negatives: 20, lr: 0.01, validEvery: 0 };

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'tfree-boxte-'));
}

test('negatives: never a training fact, seeded, both sides corrupted; native equals TypeScript for any thread count', () => {
  const E = kg.entities.length;
  const train = new QuadSet(E, kg.relations.length, kg.numTimes).addAll(kg.train);
  const keys = buildKeyTable(E, kg.relations.length, kg.numTimes, [kg.train]);
  const q = kg.train;
  const n = 30;
  const a = withBackend('js', () => sampleNegatives(7, q.h, q.r, q.t, q.tau, n, keys));
  const b = withBackend('js', () => sampleNegatives(7, q.h, q.r, q.t, q.tau, n, keys));
  assert.deepEqual(a.ent, b.ent);
  assert.notDeepEqual(withBackend('js', () => sampleNegatives(8, q.h, q.r, q.t, q.tau, n, keys)).ent, a.ent);
  if (hasNative()) {
    for (const th of [1, 2]) {
      const nb = withThreads(th, () => withBackend('native', () => sampleNegatives(7, q.h, q.r, q.t, q.tau, n, keys)));
      assert.deepEqual(nb.ent, a.ent, `native (${th} threads) = TypeScript`);
      assert.deepEqual(nb.tail, a.tail);
    }
  }
  let tails = 0;
  const seen = new Set<number>();
  for (let i = 0; i < q.h.length; i++) {
    for (let j = 0; j < n; j++) {
      const e = a.ent[i * n + j];
      const side = a.tail[i * n + j];
      tails += side;
      seen.add(e);
      assert.ok(!(side === 1 ? train.has(q.h[i], q.r[i], e, q.tau[i]) : train.has(e, q.r[i], q.t[i], q.tau[i])), 'corrupted fact is not in train');
    }
  }
  const frac = tails / (q.h.length * n);
  assert.ok(frac > 0.45 && frac < 0.55, `tail fraction ${frac}`);
  assert.equal(seen.size, E, 'every entity is drawn');
  // the key table holds exactly the training facts
  for (let i = 0; i < q.h.length; i++) assert.ok(keyTableHas(keys, quadKey(E, kg.numTimes, q.h[i], q.r[i], q.t[i], q.tau[i])));
  // a graph where one head has every tail but one: the resampling must avoid all of them
  const dense = { h: Int32Array.of(0, 0, 0), r: Int32Array.of(0, 0, 0), t: Int32Array.of(0, 1, 2), tau: Int32Array.of(0, 0, 0) };
  const dk = buildKeyTable(4, 1, 1, [dense]);
  for (const be of hasNative() ? (['js', 'native'] as const) : (['js'] as const)) {
    const one = withBackend(be, () => sampleNegatives(5, Int32Array.of(0), Int32Array.of(0), Int32Array.of(0), Int32Array.of(0), 200, dk));
    let t3 = 0;
    for (let j = 0; j < 200; j++) if (one.tail[j] === 1) t3 += one.ent[j] === 3 ? 1 : 100;
    assert.ok(t3 > 50 && t3 < 150, `${be}: tail negatives are entity 3 only (${t3})`);
  }
});

test('training on the synthetic KG recovers held-out facts (test MRR far above random)', () => {
  const tr = new Trainer(kg, cfg(16), opts);
  const before = evaluateSplit(tr.model, kg.test, tr.knownFacts()).mrr;
  let first = NaN;
  let last = NaN;
  for (let e = 0; e < opts.epochs; e++) {
    const r = tr.trainEpoch();
    if (e === 0) first = r.loss;
    last = r.loss;
  }
  const m = evaluateSplit(tr.model, kg.test, new KnownFacts(kg.entities.length, kg.relations.length, kg.numTimes, [kg.train, kg.valid, kg.test]));
  // random ranking among 60 entities gives MRR ~ H(60)/60 ~ 0.08
  assert.ok(before < 0.2, `untrained MRR ${before}`);
  assert.ok(m.mrr > 0.6, `test MRR ${m.mrr}`);
  assert.ok(m.hits10 > 0.9, `test H@10 ${m.hits10}`);
  assert.ok(last < first * 0.5, `loss ${first} -> ${last}`);
});

test('resume is exact: 2 epochs + save + resume + 2 epochs equals 4 epochs straight', () => {
  const dir = tmp();
  try {
    const o = { ...opts, epochs: 4, validEvery: 2, validLimit: 20 };
    const straight = new Trainer(kg, cfg(8), o);
    for (let e = 0; e < 4; e++) {
      straight.trainEpoch();
      if (straight.validationDue()) straight.noteValidation(straight.validate().mrr);
    }
    const a = new Trainer(kg, cfg(8), o);
    for (let e = 0; e < 2; e++) {
      a.trainEpoch();
      if (a.validationDue()) a.noteValidation(a.validate().mrr);
    }
    const state = join(dir, 'm.safetensors.last');
    a.saveState(state);
    const b = Trainer.resume(state, kg);
    assert.equal(b.epoch, 2);
    while (!b.done()) {
      b.trainEpoch();
      if (b.validationDue()) b.noteValidation(b.validate().mrr);
    }
    for (const [name, p] of straight.model.store.entries()) {
      assert.deepEqual(b.model.store.get(name).f32(), p.f32(), `parameter ${name} identical after resume`);
    }
    assert.deepEqual(b.rng.state(), straight.rng.state());
    assert.deepEqual(b.history.map((h) => [h.loss, h.validMrr]), straight.history.map((h) => [h.loss, h.validMrr]));
    assert.equal(b.bestMrr, straight.bestMrr);
    assert.ok(b.history.length === 4 && b.history[3].loss < b.history[0].loss);
    // atomic writes: only the state file, no temp leftovers
    assert.deepEqual(readdirSync(dir), ['m.safetensors.last']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('best model file round-trips; patience stops early', () => {
  const dir = tmp();
  try {
    const tr = new Trainer(kg, cfg(8), { ...opts, epochs: 3, patience: 2, validEvery: 1 });
    tr.trainEpoch();
    const path = join(dir, 'best.safetensors');
    tr.saveModel(path);
    const { model, vocab } = loadModel(path);
    assert.deepEqual(vocab.entities, kg.entities);
    for (const [name, p] of tr.model.store.entries()) assert.deepEqual(model.store.get(name).f32(), p.f32());
    assert.throws(() => Trainer.resume(path, kg), /no training state/);
    assert.equal(tr.noteValidation(0.5), true);
    assert.equal(tr.noteValidation(0.4), false);
    assert.equal(tr.done(), false);
    assert.equal(tr.noteValidation(0.45), false);
    assert.equal(tr.stopped, true);
    assert.equal(tr.bestMrr, 0.5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
