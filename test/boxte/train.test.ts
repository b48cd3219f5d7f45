import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { QuadSet, syntheticKG } from '../../src/io/kg.js';
import {
  KnownFacts,
  Trainer,
  boxteLrSchedule,
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
  // the bit set only skips probes: with every bit set (no key ruled out early) the draws are the same
  const noFilter = { ...keys, filter: new Uint32Array(1).fill(0xffffffff) };
  assert.ok(keys.filter.length > 1 && keys.filter.some((w) => w !== 0xffffffff), 'the bit set rules keys out');
  const c = withBackend('js', () => sampleNegatives(7, q.h, q.r, q.t, q.tau, n, noFilter));
  assert.deepEqual(c.ent, a.ent);
  assert.deepEqual(c.tail, a.tail);
  if (hasNative()) {
    for (const th of [1, 2]) {
      for (const kt of [keys, noFilter]) {
        const nb = withThreads(th, () => withBackend('native', () => sampleNegatives(7, q.h, q.r, q.t, q.tau, n, kt)));
        assert.deepEqual(nb.ent, a.ent, `native (${th} threads) = TypeScript`);
        assert.deepEqual(nb.tail, a.tail);
      }
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

test('lr schedule: constant by default (the paper), cosine / linear with warmup per step, floor, horizon; bad options throw', () => {
  const spe = 10;
  const near = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 1e-15, `${what}: ${a} vs ${b}`);
  const c = boxteLrSchedule({ ...defaultTrainOptions, lr: 0.002 }, spe);
  for (const s of [0, 1, 999, 12345]) assert.equal(c(s), 0.002);
  const o: TrainOptions = { ...defaultTrainOptions, lr: 0.01, epochs: 20, lrSchedule: 'cosine', warmupEpochs: 2, minLrRatio: 0.1 };
  const f = boxteLrSchedule(o, spe);
  near(f(0), 0.01 / 20, 'step 0'); // warmup: 20 steps, the first already non-zero
  near(f(19), 0.01, 'step 19');
  near(f(20), 0.01, 'step 20'); // decay starts at the peak
  near(f(20 + 90), 0.001 + 0.009 * 0.5, 'half-way: the mean of peak and floor');
  near(f(200), 0.001, 'step 200'); // floor at epoch 20 (step 200) and after
  near(f(5000), 0.001, 'step 5000');
  for (let s = 21; s < 200; s++) assert.ok(f(s) < f(s - 1), `cosine decreases at step ${s}`);
  // the horizon is scheduleEpochs, not epochs (a resumed run may change --epochs)
  const g = boxteLrSchedule({ ...o, epochs: 40, scheduleEpochs: 20 }, spe);
  for (const s of [0, 19, 50, 110, 199, 200, 399]) assert.equal(g(s), f(s));
  const lin = boxteLrSchedule({ ...o, lrSchedule: 'linear', warmupEpochs: 0, minLrRatio: 0 }, spe);
  near(lin(0), 0.01, 'linear 0');
  near(lin(100), 0.005, 'linear 100');
  near(lin(200), 0, 'linear 200');
  assert.throws(() => boxteLrSchedule({ ...o, warmupEpochs: 30 }, spe), /warmup \(30 epochs\) is longer than the schedule \(20 epochs\)/);
  assert.throws(() => boxteLrSchedule({ ...o, minLrRatio: 1.5 }, spe), /\[0, 1\]/);
  assert.throws(() => boxteLrSchedule({ ...o, lrSchedule: 'step' as unknown as 'cosine' }, spe), /unknown learning-rate schedule "step"/);
});

test('lr schedule in training: the optimizer follows the schedule step by step; same seed, same bits; constant equals the default path; resume is exact', () => {
  const dir = tmp();
  try {
    const base = { ...opts, epochs: 4, validEvery: 0 };
    const sched: TrainOptions = { ...base, lr: 0.03, lrSchedule: 'cosine', warmupEpochs: 1, minLrRatio: 0, scheduleEpochs: 4 };
    const a = new Trainer(kg, cfg(8), sched);
    const seen: number[] = [];
    a.trainEpoch(() => seen.push(a.opt.lr));
    assert.deepEqual(seen, Array.from({ length: a.stepsPerEpoch }, (_, s) => a.lrAt(s)));
    assert.ok(Math.abs(seen[seen.length - 1] - 0.03) < 1e-15, 'the warmup reaches the peak at the end of epoch 1');
    for (let e = 1; e < 4; e++) a.trainEpoch();
    assert.ok(a.opt.lr < 0.03 * 0.01, `last step's lr ${a.opt.lr} is near the floor 0`);
    const b = new Trainer(kg, cfg(8), sched);
    for (let e = 0; e < 4; e++) b.trainEpoch();
    for (const [name, p] of a.model.store.entries()) assert.deepEqual(b.model.store.get(name).f32(), p.f32(), `same seed: ${name} identical`);
    const plain = new Trainer(kg, cfg(8), base);
    const explicit = new Trainer(kg, cfg(8), { ...base, lrSchedule: 'constant', warmupEpochs: 0 });
    plain.trainEpoch();
    explicit.trainEpoch();
    for (const [name, p] of plain.model.store.entries()) assert.deepEqual(explicit.model.store.get(name).f32(), p.f32(), `constant = default: ${name}`);
    const differs = a.model.store.entries().some(([name, p]) => !p.f32().every((v, i) => v === plain.model.store.get(name).f32()[i]));
    assert.ok(differs, 'the schedule changes the result');
    // resume in the middle of the schedule, with --epochs raised: the horizon stays at 4
    const c = new Trainer(kg, cfg(8), sched);
    c.trainEpoch();
    c.trainEpoch();
    const state = join(dir, 's.last');
    c.saveState(state);
    const r = Trainer.resume(state, kg, { epochs: 6 });
    r.trainEpoch();
    r.trainEpoch();
    for (const [name, p] of a.model.store.entries()) assert.deepEqual(r.model.store.get(name).f32(), p.f32(), `resumed: ${name} identical`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pipelined epochs (epochJob leaves the entity Adam and the next exponentials running between steps) equal step() one at a time, bit for bit, 1 and 2 threads; a throw inside the job settles it', () => {
  const o = { ...opts, epochs: 2 };
  for (const threads of [1, 2]) {
    withThreads(threads, () => {
      const a = new Trainer(kg, cfg(16), o);
      const losses = [a.trainEpoch().loss, a.trainEpoch().loss];
      const b = new Trainer(kg, cfg(16), o);
      const stepLosses: number[] = [];
      for (let e = 0; e < 2; e++) {
        const N = kg.train.h.length;
        const perm = b.rng.permutation(N);
        const steps = b.stepsPerEpoch;
        let sum = 0;
        for (let s = 0; s < steps; s++) {
          const idx = perm.subarray(s * o.batchSize, Math.min(N, (s + 1) * o.batchSize));
          b.opt.lr = b.lrAt(e * steps + s);
          sum += b.step(idx) * idx.length;
        }
        stepLosses.push(sum / N);
      }
      assert.deepEqual(losses, stepLosses, `${threads} thread(s): same epoch losses`);
      for (const [name, p] of a.model.store.entries()) assert.deepEqual(b.model.store.get(name).f32(), p.f32(), `${threads} thread(s): parameter ${name}`);
      // a throw from onStep in the middle of an epoch: the job settles (the entity tables are final and
      // the pool free), training goes on
      const c = new Trainer(kg, cfg(16), o);
      assert.throws(() => c.trainEpoch((s) => {
        if (s === 3) throw new Error('stop here');
      }), /stop here/);
      const ref = new Trainer(kg, cfg(16), o);
      const perm = ref.rng.permutation(kg.train.h.length);
      for (let s = 0; s < 3; s++) ref.step(perm.subarray(s * o.batchSize, (s + 1) * o.batchSize));
      for (const [name, p] of ref.model.store.entries()) assert.deepEqual(c.model.store.get(name).f32(), p.f32(), `${threads} thread(s): parameter ${name} after the throw`);
      assert.ok(Number.isFinite(c.trainEpoch().loss));
    });
  }
});

test('a process that exits while a pipelined step still updates the entity tables in the background exits cleanly with its own code', { skip: hasNative() ? false : 'native kernels unavailable' }, () => {
  // epochJob leaves the entity Adam running between steps (pool_start); process.exit must wait for it
  // (kernel_native's exit hook) instead of tearing the heap down under the pool's workers. d=1000 and
  // 3000 entities: the background job (~190 MB of rows and moments) is surely still running at the exit
  const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
  const script = `
    const bx = await import(${JSON.stringify(join(dist, 'models', 'boxte', 'index.js'))});
    const { syntheticKG } = await import(${JSON.stringify(join(dist, 'io', 'kg.js'))});
    const kg = syntheticKG({ entities: 3000, relations: 50, times: 100, groups: 6, facts: 20000, seed: 1 });
    const cfg = bx.defaultConfig({ numEntities: 3000, numRelations: kg.relations.length, numTimes: kg.numTimes, dim: 1000, k: 2 });
    const tr = new bx.Trainer(kg, cfg, { ...bx.defaultTrainOptions, seed: 1 });
    tr.step(tr.rng.permutation(kg.train.h.length).subarray(0, 256));
    const job = tr.epochJob();
    job.next();
    job.next();
    process.exit(7);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, TFREE_THREADS: '2' }, timeout: 60_000 });
  assert.equal(r.status, 7, `exit status ${r.status} (signal ${r.signal}); stderr: ${r.stderr}`);
  assert.equal(r.stderr, '');
});
