/**
 * BoxTE training (spec §1.3): cross-entropy over each fact and n corruptions of its head or tail
 * (uniform entity, coin-flip side, resampled while the corrupted quadruple is a training fact),
 * plus lambda times the temporal smoothness regulariser, optimised with dense Adam (every row
 * of every table is updated at every step, as PyTorch's Adam on nn.Embedding). Filtered MRR on
 * the validation split every `validEvery` epochs keeps the best parameters; `patience`
 * validations without improvement stop early.
 *
 * Checkpoints: `<out>` holds the best model (parameters + config + vocabulary, safetensors);
 * `<out>.last` holds the complete training state at the end of the last finished epoch
 * (parameters, Adam moments, RNG state, counters) and resuming from it continues bit-exactly.
 * Both are written atomically (temp file + rename).
 */
import { existsSync } from 'node:fs';
import { Tensor, freshF32, noGrad } from '../../tensor/index.js';
import { AdamW, ParamStore, Rng, VarBuilder, makeSchedule, type AdamWStateMeta, type RngState, type Schedule } from '../../nn/index.js';
import { openSafetensors, writeSafetensors, writeSafetensorsJob, type TensorEntries } from '../../io/safetensors.js';
import { runToEnd, type StopFlag } from '../../io/interrupt.js';
import { f32ToBf16 } from '../../io/dtype.js';
import type { DateIds, Quads, TemporalKG } from '../../io/kg.js';
import { BoxTE, nonFiniteParam, type BoxTEConfig } from './model.js';
import { buildKeyTable, type KeyTable, type TrainGroupsArgs } from './kernel.js';
import { boxKernels, type AdamRowsArgs, type BoxKernels } from './ops.js';
import { StepScratch, boxTableStep, cornerGradStep, cornersBackward, cornersForward, timeBumpsBackward, timeBumpsForward, timeRegulariserStep } from './small.js';
import { EmptySplitError, KnownFacts, NonFiniteModelError, evaluateSplit, subsample, type RankMetrics } from './eval.js';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  negatives: number;
  lr: number;
  /** weight of the temporal smoothness regulariser */
  timeReg: number;
  seed: number;
  /** validate every this many epochs (and after the last); 0 = never */
  validEvery: number;
  /** validate on this many facts of the valid split, spread evenly (0 = all) */
  validLimit: number;
  /** stop after this many validations without improvement (0 = never) */
  patience: number;
  /**
   * Beyond the paper (docs/boxte.md, "Faster than the paper"): the learning-rate schedule over the
   * run's steps. 'constant' (the paper's; default) keeps `lr`; 'cosine' / 'linear' decay it from `lr`
   * after the warmup to `lr * minLrRatio` at the end of epoch `scheduleEpochs`. Absent in state files
   * of older runs (read as the defaults).
   */
  lrSchedule?: LrScheduleKind;
  /** epochs of linear warmup from lr / warmupSteps to lr (0 = none; fractions allowed) */
  warmupEpochs?: number;
  /** floor of the decay as a fraction of lr (cosine / linear; default 0) */
  minLrRatio?: number;
  /** epoch at which the decay reaches its floor (default: `epochs` of the first sitting; kept on resume) */
  scheduleEpochs?: number;
}

export type LrScheduleKind = 'constant' | 'cosine' | 'linear';
export const lrScheduleKinds: readonly LrScheduleKind[] = ['constant', 'cosine', 'linear'];

/**
 * The schedule of a run as a function of the optimizer step (0-based, counted over all epochs):
 * the shared schedules of src/nn/schedule.ts with the warmup and horizon converted from epochs to
 * steps. The default options give `lr` at every step.
 */
export function boxteLrSchedule(o: TrainOptions, stepsPerEpoch: number): Schedule {
  const kind = o.lrSchedule ?? 'constant';
  if (!lrScheduleKinds.includes(kind)) throw new Error(`unknown learning-rate schedule "${String(kind)}" (constant, cosine or linear)`);
  const warm = o.warmupEpochs ?? 0;
  const ratio = o.minLrRatio ?? 0;
  const horizon = o.scheduleEpochs ?? o.epochs;
  if (!(warm >= 0 && Number.isFinite(warm))) throw new Error(`warmup epochs must be >= 0, got ${warm}`);
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`the lr floor ratio must lie in [0, 1], got ${ratio}`);
  if (!(Number.isInteger(horizon) && horizon >= 1)) throw new Error(`schedule epochs must be an integer >= 1, got ${horizon}`);
  if (kind !== 'constant' && warm > horizon) throw new Error(`warmup (${warm} epochs) is longer than the schedule (${horizon} epochs)`);
  const warmupSteps = Math.round(warm * stepsPerEpoch);
  if (kind === 'constant') return makeSchedule({ kind, lr: o.lr, warmupSteps });
  return makeSchedule({ kind, lr: o.lr, warmupSteps, totalSteps: horizon * stepsPerEpoch, minLrRatio: ratio });
}

export const defaultTrainOptions: TrainOptions = {
  epochs: 1200,
  batchSize: 256,
  negatives: 75,
  lr: 1e-3,
  timeReg: 0.1,
  seed: 0,
  validEvery: 100,
  validLimit: 0,
  patience: 0,
};

/** Vocabulary and time axis stored with a model, so evaluation maps names to the same ids. */
export interface KgVocab {
  entities: string[];
  relations: string[];
  numTimes: number;
  timeKind: 'date' | 'index';
  origin: string | null;
  /** how dates became time ids; absent: 'calendar' (every model before the option, and the default) */
  dateIds?: 'reference';
}

/** The date-id rule of a model's vocabulary. */
export function vocabDateIds(vocab: KgVocab): DateIds {
  return vocab.dateIds === 'reference' ? 'reference' : 'calendar';
}

export function vocabOf(kg: TemporalKG): KgVocab {
  const v: KgVocab = { entities: kg.entities, relations: kg.relations, numTimes: kg.numTimes, timeKind: kg.timeKind, origin: kg.origin };
  if (kg.dateIds === 'reference') v.dateIds = 'reference'; // calendar models keep their metadata as before
  return v;
}

export interface TrainState {
  epoch: number;
  rng: RngState;
  bestMrr: number;
  bestEpoch: number;
  /** validations since the best one */
  sinceBest: number;
  history: { epoch: number; loss: number; seconds: number; validMrr?: number }[];
  options: TrainOptions;
  adam: AdamWStateMeta;
  stopped: boolean;
}

export const FORMAT = 'tfree-boxte-1';

/** Training produced a non-finite loss or parameter (the CLI turns this into a one-line error, exit 2). */
export class DivergenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DivergenceError';
  }
}

/**
 * Draws the negatives of a batch: entity ids [B*n] and sides [B*n] (1 = tail replaced), with the
 * active kernels (native and TypeScript give identical results for the same seed).
 */
export function sampleNegatives(seed: number, h: Int32Array, r: Int32Array, t: Int32Array, tau: Int32Array, n: number, known: KeyTable, scratch?: StepScratch): { ent: Int32Array; tail: Uint8Array } {
  // every entry is written by the kernels
  const ent = scratch === undefined ? new Int32Array(h.length * n) : scratch.i32('negEnt', h.length * n);
  const tail = scratch === undefined ? new Uint8Array(h.length * n) : scratch.u8('negTail', h.length * n);
  boxKernels().negatives({ seed, h, r, t, tau, n, known, ent, tail });
  return { ent, tail };
}

export interface EpochResult {
  loss: number;
  seconds: number;
  facts: number;
  /** learning rate of the epoch's last step */
  lr: number;
}

export class Trainer {
  readonly model: BoxTE;
  readonly kg: TemporalKG;
  readonly opts: TrainOptions;
  readonly opt: AdamW;
  rng: Rng;
  epoch = 0;
  bestMrr = -1;
  bestEpoch = 0;
  sinceBest = 0;
  stopped = false;
  history: TrainState['history'] = [];
  private readonly trainSet: KeyTable;
  /** the training facts interleaved [h, r, t, tau] per fact: a batch's picks read one cache line per fact, not four */
  private readonly trainQuads: Int32Array;
  /** learning rate of each optimizer step (constant `lr` by default) */
  readonly lrAt: Schedule;
  /** entity-gradient accumulators of the other training-kernel chunks (native), [count, 2, E, d] */
  private slots: { data: Float32Array; count: number } | null = null;
  /** the fused path's lazy zeroing of the entity gradients (TrainGroupsArgs.lazy): stamps [slots + 1, 2, E] and the step counter */
  private lazy: { stamps: Int32Array; step: number } | null = null;
  private known: KnownFacts | null = null;
  /** the optimizer holds the entity tables' moments (made by this Trainer's first fused step, after the others') */
  private entityMomentsMade = false;
  private readonly gBase: Float32Array;
  private readonly gBump: Float32Array;
  /** per-step buffers reused across steps */
  private readonly scratch = new StepScratch();
  /** the kernels whose background entity Adam a pipelined step (epochJob) left running, or null (see settle) */
  private pending: BoxKernels | null = null;
  /** wall seconds spent per phase of `step` since construction (profiling; see docs/results/boxte_speed.md) */
  readonly phaseSeconds: Record<string, number> = {};
  private lap = 0;
  private mark(phase: string): void {
    const now = performance.now();
    this.phaseSeconds[phase] = (this.phaseSeconds[phase] ?? 0) + (now - this.lap) / 1000;
    this.lap = now;
  }

  constructor(kg: TemporalKG, cfg: BoxTEConfig, opts: TrainOptions, source?: (name: string) => Float32Array | undefined) {
    this.kg = kg;
    this.opts = opts;
    if (cfg.numEntities !== kg.entities.length || cfg.numRelations !== kg.relations.length) {
      throw new Error(`model has ${cfg.numEntities} entities / ${cfg.numRelations} relations, data has ${kg.entities.length} / ${kg.relations.length}`);
    }
    if (opts.validEvery > 0 && kg.valid.h.length === 0) throw new EmptySplitError('the valid split has no facts: validation needs some (validEvery 0 trains without it)');
    const vb = new VarBuilder(new ParamStore(), { rng: opts.seed, source });
    this.model = new BoxTE(cfg, vb);
    this.opt = new AdamW(this.model.store, { lr: opts.lr, weightDecay: 0 });
    this.rng = new Rng(`boxte-train-${opts.seed}`);
    this.trainSet = buildKeyTable(cfg.numEntities, cfg.numRelations, Math.max(cfg.numTimes, 1), [kg.train]);
    const tr = kg.train;
    this.trainQuads = new Int32Array(4 * tr.h.length);
    for (let i = 0; i < tr.h.length; i++) {
      this.trainQuads[4 * i] = tr.h[i];
      this.trainQuads[4 * i + 1] = tr.r[i];
      this.trainQuads[4 * i + 2] = tr.t[i];
      this.trainQuads[4 * i + 3] = tr.tau[i];
    }
    // (freshF32: on huge pages from 2 MiB on, like the parameters and moments: the kernel adds to random
    // rows of these tables and the slots; on V8's own 4 KiB pages their TLB misses cost ~1.5 % of a step)
    this.gBase = freshF32(cfg.numEntities * cfg.dim);
    this.gBump = freshF32(cfg.numEntities * cfg.dim);
    this.lrAt = boxteLrSchedule(opts, this.stepsPerEpoch);
  }

  get stepsPerEpoch(): number {
    return Math.ceil(this.kg.train.h.length / this.opts.batchSize);
  }

  /** One optimisation step on the training facts at `idx`; returns the loss (CE + lambda reg). */
  step(idx: Int32Array): number {
    return this.stepKeep(idx, false);
  }

  /**
   * Waits for the entity tables' update that a pipelined step left running in the background (see
   * stepKeep); every method that reads the parameters or the optimizer state calls it first.
   */
  settle(): void {
    const k = this.pending;
    this.pending = null;
    k?.adamRowsWait();
  }

  /**
   * `step`; with `keep` (epochJob, all but an epoch's last step) the entity tables' Adam may still be
   * running in the background when it returns, together with the exponentials of the updated tables
   * for the next step (adamRowsStart with expD): the next step's small calls and batch run beside it
   * and its trainGroups waits for it. Until then (or settle()) nothing may read or write the entity
   * tables, their gradients or moments.
   */
  private stepKeep(idx: Int32Array, keep: boolean): number {
    this.lap = performance.now();
    const m = this.model;
    const d = m.cfg.dim;
    const k = boxKernels();
    if (this.pending !== null && this.pending !== k) this.settle();
    const fused = k.adamRows !== null;
    // the kernel's exponentials of the entity tables in the background while this thread picks the
    // batch and runs the negatives, corners and time bumps (trainGroups waits for them; a throw before
    // it waits here, releasing the pool); after a kept step its job makes them (the call only takes them)
    if (fused && m.cfg.tanh) k.expTableStart?.(m.entityBase.f32(), m.entityBump.f32(), d);
    try {
      return this.stepAfterStart(idx, k, fused, keep);
    } catch (e) {
      this.pending = null;
      k.adamRowsWait();
      throw e;
    }
  }

  private stepAfterStart(idx: Int32Array, k: BoxKernels, fused: boolean, keep: boolean): number {
    const m = this.model;
    const { dim: d, numRelations: R, numEntities: E } = m.cfg;
    const B = idx.length;
    const sc = this.scratch;
    // the batch's columns into scratch arrays, from the interleaved facts (idx.map per column cost ~0.15
    // ms a step: four cache misses per fact, the table evicted by the kernel, and TypedArray map)
    const h = sc.i32('batch.h', B);
    const r = sc.i32('batch.r', B);
    const t = sc.i32('batch.t', B);
    const tau = sc.i32('batch.tau', B);
    const q = this.trainQuads;
    for (let i = 0; i < B; i++) {
      const o = 4 * idx[i];
      h[i] = q[o];
      r[i] = q[o + 1];
      t[i] = q[o + 2];
      tau[i] = q[o + 3];
    }
    const n = this.opts.negatives;
    const neg = sampleNegatives(this.rng.nextU32(), h, r, t, tau, n, this.trainSet, sc);
    this.mark('negatives');

    this.opt.zeroGrad();
    const corners = cornersForward(m, sc);
    const tb = timeBumpsForward(m, r, tau, sc);
    const gc = sc.f32('gc', 2 * R * d, true); // the kernel adds
    const gw = sc.f32('gw', 2 * R * d, true);
    const gTb = sc.f32('gTb', B * d); // written by the kernel
    if (fused) {
      // gBase/gBump and the slots are not zeroed between steps: the kernel zeroes a row before its
      // first addition of the step and stamps it, the fused Adam reads only the stamped rows (lazy)
      const want = Math.max(0, k.threads() - 1);
      if (this.slots === null || this.slots.count !== want) this.slots = { data: freshF32(want * 2 * E * d), count: want };
      if (this.lazy === null || this.lazy.stamps.length !== (want + 1) * 2 * E) this.lazy = { stamps: new Int32Array((want + 1) * 2 * E), step: 0 };
      this.lazy.step = (this.lazy.step % 0x7ffffffe) + 1;
    } else {
      this.gBase.fill(0);
      this.gBump.fill(0);
    }
    this.mark('boxes+timebumps fwd');
    const [b1, b2] = this.opt.betas;
    // the entity tables (no .grad): gradient sum over the kernel's chunks + dense Adam in one pass per
    // table, in the background where the kernels can (adamRowsStart: the pool's workers update them,
    // memory-bound, while this thread runs the small backward calls and the other parameters' Adam on
    // one thread; adamRowsWait at the end of the step). Not in a Trainer's first step, where the
    // optimizer creates the moments: they are created after the other parameters' as before (the
    // order of the state file's tensors). The arguments are those of the step about to be counted
    // (st.step + 1); countEntityStep counts it once the kernel has run
    const entityAdam = (): AdamRowsArgs[] => {
      const sl = this.slots;
      const lz = this.lazy;
      return ([[m.entityBase, this.gBase, 0, 0], [m.entityBump, this.gBump, E * d, 1]] as const).map(([p, g0, offset, table]) => {
        const st = this.opt.momentsOf(p === m.entityBase ? 'entity.base' : 'entity.bump');
        const step = st.step + 1;
        return {
          p: p.f32(),
          g0,
          slots: sl === null || sl.count === 0 ? null : { data: sl.data, count: sl.count, offset },
          m: st.m,
          v: st.v,
          lr: this.opt.lr,
          b1,
          b2,
          eps: this.opt.eps,
          bc1: 1 - Math.pow(b1, step),
          bc2: 1 - Math.pow(b2, step),
          lazy: lz === null ? undefined : { stamps: lz.stamps, step: lz.step, d, table },
        };
      });
    };
    const countEntityStep = (): void => {
      this.opt.momentsOf('entity.base').step++;
      this.opt.momentsOf('entity.bump').step++;
    };
    const background = fused && this.entityMomentsMade && k.adamRowsStart !== null;
    // kept: the job also makes the next step's exponentials of the updated tables (with tanh)
    const expD = keep && m.cfg.tanh ? d : undefined;
    // armed: trainGroups starts the entity Adam itself right after its parallel part (the worker goes
    // from its kernel chunk to the updates; no wait for this thread's return and start call)
    const armed = background && k.adamRowsArm !== null;
    const groups: TrainGroupsArgs = {
      B,
      n,
      d,
      tanh: m.cfg.tanh,
      order: m.cfg.order,
      base: m.entityBase.f32(),
      bump: m.entityBump.f32(),
      boxes: boxTableStep(corners.stacked, R, d, sc),
      tb,
      h,
      r,
      t,
      negEnt: neg.ent,
      negTail: neg.tail,
      gradScale: 1 / B,
      gBase: this.gBase,
      gBump: this.gBump,
      gc,
      gw,
      gTb,
      slots: fused && this.slots !== null ? this.slots : undefined,
      lazy: fused && this.lazy !== null ? this.lazy : undefined,
    };
    // (armed right before the call: nothing between them can throw and leave it armed)
    if (armed) k.adamRowsArm?.(entityAdam(), expD);
    const lossSum = k.trainGroups(groups);
    this.mark('kernel');
    if (armed) countEntityStep();
    else if (background) {
      k.adamRowsStart?.(entityAdam(), expD);
      countEntityStep();
    }
    let loss = lossSum / B;
    let kept = false;
    try {
      if (!fused) {
        m.entityBase.grad = new Tensor(this.gBase, m.entityBase.shape);
        m.entityBump.grad = new Tensor(this.gBump, m.entityBump.shape);
      }
      cornersBackward(m, corners, cornerGradStep(gc, gw, R, d, sc), sc);
      timeBumpsBackward(m, r, tau, gTb, sc);
      this.mark('boxes+timebumps bwd');
      if (this.opts.timeReg > 0) loss += timeRegulariserStep(m, this.opts.timeReg, sc);
      this.mark('regulariser');
      if (fused && k.adamRows !== null) {
        // the relation and time parameters through the same fused Adam as the entity tables (the AdamW
        // rule with weight decay 0, chunks of the table in parallel; AdamW.step runs one thread below
        // 2^15 values), their .grad dropped so that opt.step below only counts the step
        for (const [name, p] of m.store.entries()) {
          if (p.grad === null || !p.requiresGrad) continue;
          const st = this.opt.momentsOf(name);
          st.step++;
          k.adamRows({ p: p.f32(), g0: p.grad.f32(), slots: null, m: st.m, v: st.v, lr: this.opt.lr, b1, b2, eps: this.opt.eps, bc1: 1 - Math.pow(b1, st.step), bc2: 1 - Math.pow(b2, st.step) });
          p.grad = null;
        }
      }
      this.opt.step();
      if (fused && !background && k.adamRows !== null) {
        for (const a of entityAdam()) k.adamRows(a);
        countEntityStep();
        this.entityMomentsMade = true;
      }
      kept = background && keep;
    } finally {
      // (a throw waits: the pool is released)
      if (background && !kept) k.adamRowsWait();
    }
    if (kept) this.pending = k;
    this.mark('adam');
    return loss;
  }

  /** One pass over the shuffled training facts. */
  trainEpoch(onStep?: (step: number, steps: number, loss: number) => void): EpochResult {
    return runToEnd(this.epochJob(onStep));
  }

  /**
   * `trainEpoch` as a job that yields after every step (run it with runYielding so Ctrl-C handlers run).
   * Its steps are pipelined (stepKeep): at a yield (and in onStep) the entity tables may still be
   * updated in the background, so read the model only after the job has ended (it settles at its
   * end, also on a throw or return).
   */
  *epochJob(onStep?: (step: number, steps: number, loss: number) => void): Generator<number, EpochResult, void> {
    const t0 = performance.now();
    const N = this.kg.train.h.length;
    const perm = this.rng.permutation(N);
    const bs = this.opts.batchSize;
    let lossSum = 0;
    const steps = this.stepsPerEpoch;
    try {
      for (let s = 0; s < steps; s++) {
        const idx = perm.subarray(s * bs, Math.min(N, (s + 1) * bs));
        this.opt.lr = this.lrAt(this.epoch * steps + s);
        const l = this.stepKeep(idx, s + 1 < steps);
        if (!Number.isFinite(l)) {
          throw new DivergenceError(`training diverged at epoch ${this.epoch + 1}, step ${s + 1}: the loss is ${l} (lower --lr)`);
        }
        lossSum += l * idx.length;
        onStep?.(s + 1, steps, l);
        yield s + 1;
      }
    } finally {
      this.settle();
    }
    const bad = nonFiniteParam(this.model);
    if (bad !== null) throw new DivergenceError(`training diverged in epoch ${this.epoch + 1}: ${bad} (lower --lr)`);
    this.epoch++;
    const seconds = (performance.now() - t0) / 1000;
    const res = { loss: lossSum / N, seconds, facts: N, lr: this.opt.lr };
    this.history.push({ epoch: this.epoch, loss: res.loss, seconds });
    return res;
  }

  knownFacts(): KnownFacts {
    if (this.known === null) {
      const c = this.model.cfg;
      this.known = new KnownFacts(c.numEntities, c.numRelations, Math.max(c.numTimes, 1), [this.kg.train, this.kg.valid, this.kg.test]);
    }
    return this.known;
  }

  /** Filtered metrics on the valid split (or its subsample). */
  validate(onProgress?: (done: number, total: number) => void): RankMetrics {
    this.settle();
    const q: Quads = subsample(this.kg.valid, this.opts.validLimit);
    return evaluateSplit(this.model, q, this.knownFacts(), { onProgress });
  }

  /** Records a validation result; returns true when it is a new best. */
  noteValidation(mrr: number): boolean {
    const last = this.history[this.history.length - 1];
    if (last !== undefined && last.epoch === this.epoch) last.validMrr = mrr;
    if (mrr > this.bestMrr) {
      this.bestMrr = mrr;
      this.bestEpoch = this.epoch;
      this.sinceBest = 0;
      return true;
    }
    this.sinceBest++;
    if (this.opts.patience > 0 && this.sinceBest >= this.opts.patience) this.stopped = true;
    return false;
  }

  /** Whether validation is due after the current epoch. */
  validationDue(): boolean {
    const v = this.opts.validEvery;
    return v > 0 && (this.epoch % v === 0 || this.epoch >= this.opts.epochs);
  }

  done(): boolean {
    return this.stopped || this.epoch >= this.opts.epochs;
  }

  // ---- checkpoints ------------------------------------------------------------------------------

  private paramEntries(): [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] {
    this.settle();
    return this.model.store.entries().map(([name, p]) => [name, { dtype: 'F32', shape: p.shape.slice(), data: p.f32() }]);
  }

  /** The model file: parameters, config and vocabulary (atomic write). */
  saveModel(path: string, extra: Record<string, string> = {}): void {
    writeSafetensors(path, this.paramEntries(), modelMetadata(this.model.cfg, vocabOf(this.kg), extra));
  }

  state(): TrainState {
    this.settle();
    return {
      epoch: this.epoch,
      rng: this.rng.state(),
      bestMrr: this.bestMrr,
      bestEpoch: this.bestEpoch,
      sinceBest: this.sinceBest,
      history: this.history,
      options: this.opts,
      adam: this.opt.state(),
      stopped: this.stopped,
    };
  }

  /** The complete training state (parameters, Adam moments, RNG, counters; atomic write). */
  saveState(path: string): void {
    const entries: TensorEntries = [...this.paramEntries(), ...Object.entries(this.opt.stateTensors()).map(([n, t]) => [`adam.${n}`, t] as const)];
    writeSafetensors(path, entries, modelMetadata(this.model.cfg, vocabOf(this.kg), { train_state: JSON.stringify(this.state()) }));
  }

  /**
   * Resumes from a state file written by saveState. `overrides` may change the number of
   * epochs, validation cadence and patience (everything else must match the saved run).
   */
  static resume(path: string, kg: TemporalKG, overrides: Partial<Pick<TrainOptions, 'epochs' | 'validEvery' | 'validLimit' | 'patience'>> = {}): Trainer {
    const f = openSafetensors(path);
    try {
      const meta = f.metadata;
      const { cfg, vocab } = parseModelMetadata(meta, path);
      checkVocab(vocab, kg, path);
      if (meta.train_state === undefined) throw new Error(`${path}: no training state (is it a model file rather than a <out>.last state?)`);
      const st = JSON.parse(meta.train_state) as TrainState;
      const opts: TrainOptions = { ...st.options, ...overrides };
      const tr = new Trainer(kg, cfg, opts, (name) => (f.has(name) ? f.readAs(name, 'f32').data : undefined));
      tr.opt.loadState(st.adam, (name) => (f.has(`adam.${name}`) ? f.readAs(`adam.${name}`, 'f32').data : undefined));
      tr.rng = Rng.fromState(st.rng);
      tr.epoch = st.epoch;
      tr.bestMrr = st.bestMrr;
      tr.bestEpoch = st.bestEpoch;
      tr.sinceBest = st.sinceBest;
      tr.history = st.history;
      tr.stopped = st.stopped && overrides.patience === undefined;
      return tr;
    } finally {
      f.close();
    }
  }
}

/**
 * Writes a model file (parameters + config + vocabulary, no optimiser state) atomically; `bf16`
 * stores the parameters as bfloat16 (half the size; loading converts back to f32 exactly).
 */
export function saveModelFile(model: BoxTE, vocab: KgVocab, path: string, opts: { bf16?: boolean; extra?: Record<string, string> } = {}): void {
  runToEnd(saveModelFileJob(model, vocab, path, opts));
}

/**
 * `saveModelFile` as a job: nothing is written before its first yield; then the write yields
 * after each tensor, and a set `stop` ends it with WriteInterrupted (no file left, `path` as it was).
 */
export function* saveModelFileJob(model: BoxTE, vocab: KgVocab, path: string, opts: { bf16?: boolean; extra?: Record<string, string> } = {}, stop?: StopFlag): Generator<void, void, void> {
  const entries: TensorEntries = model.store.entries().map(([name, p]) =>
    opts.bf16 === true ? ([name, { dtype: 'BF16', shape: p.shape.slice(), data: f32ToBf16(p.f32()) }] as const) : ([name, { dtype: 'F32', shape: p.shape.slice(), data: p.f32() }] as const),
  );
  yield;
  yield* writeSafetensorsJob(path, entries, modelMetadata(model.cfg, vocab, opts.extra ?? {}), stop);
}

export function modelMetadata(cfg: BoxTEConfig, vocab: KgVocab, extra: Record<string, string> = {}): Record<string, string> {
  return { format: FORMAT, config: JSON.stringify(cfg), vocab: JSON.stringify(vocab), ...extra };
}

export function parseModelMetadata(meta: Record<string, string>, path: string): { cfg: BoxTEConfig; vocab: KgVocab } {
  if (meta.format !== FORMAT) throw new Error(`${path}: not a tfree BoxTE checkpoint (metadata format is ${JSON.stringify(meta.format ?? null)}, expected "${FORMAT}")`);
  try {
    return { cfg: JSON.parse(meta.config) as BoxTEConfig, vocab: JSON.parse(meta.vocab) as KgVocab };
  } catch (e) {
    throw new Error(`${path}: malformed config/vocab metadata: ${(e as Error).message}`);
  }
}

/** The vocabulary and time axis stored in a model or state file (reads the header only). */
export function readModelVocab(path: string): KgVocab {
  if (!existsSync(path)) throw new Error(`cannot open ${path}: no such file`);
  const f = openSafetensors(path);
  try {
    return parseModelMetadata(f.metadata, path).vocab;
  } finally {
    f.close();
  }
}

/** Checks that a dataset uses the vocabulary a model was trained with (same names, same ids). */
export function checkVocab(vocab: KgVocab, kg: TemporalKG, path: string): void {
  const diff = (a: string[], b: string[], what: string): void => {
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
      const known = new Set(a);
      const unknown = b.filter((x) => !known.has(x));
      throw new Error(
        `${path}: the data's ${what} differ from the model's (${b.length} vs ${a.length}${unknown.length > 0 ? `; ${unknown.length} unknown to the model, e.g. "${unknown[0]}"` : '; same names, different order'})`,
      );
    }
  };
  diff(vocab.entities, kg.entities, 'entities');
  diff(vocab.relations, kg.relations, 'relations');
  if (kg.timeKind === 'date' && vocabDateIds(vocab) !== kg.dateIds) {
    throw new Error(`${path}: the data's dates were read as ${kg.dateIds} time ids, the model's are ${vocabDateIds(vocab)} ones (read the data with the model's rule)`);
  }
  if (vocab.timeKind !== kg.timeKind || vocab.origin !== kg.origin || kg.numTimes > vocab.numTimes) {
    throw new Error(`${path}: the data's time axis (${kg.timeKind}, origin ${kg.origin}, ${kg.numTimes} steps) differs from the model's (${vocab.timeKind}, origin ${vocab.origin}, ${vocab.numTimes} steps)`);
  }
}

/** Loads a model file (or a state file) for evaluation / export. */
export function loadModel(path: string): { model: BoxTE; vocab: KgVocab; meta: Record<string, string> } {
  if (!existsSync(path)) throw new Error(`cannot open ${path}: no such file`);
  const f = openSafetensors(path);
  try {
    const { cfg, vocab } = parseModelMetadata(f.metadata, path);
    const vb = new VarBuilder(new ParamStore(), {
      source: (name) => {
        if (!f.has(name)) throw new Error(`${path}: missing tensor "${name}"`);
        return f.readAs(name, 'f32');
      },
    });
    const model = noGrad(() => new BoxTE(cfg, vb));
    const bad = nonFiniteParam(model);
    if (bad !== null) throw new NonFiniteModelError(`${path}: refusing a model with non-finite parameters: ${bad} (a diverged training run)`);
    return { model, vocab, meta: f.metadata };
  } finally {
    f.close();
  }
}
