/**
 * The training loop for byte-level language models over packed text (`BytePacker` batches).
 *
 * A model plugs in through `TrainableModel`: its parameter store and a loss over a batch (mean
 * next-byte cross-entropy in nats over the batch's `bytes` predicted bytes). One optimizer step:
 * `accum` micro-batches of `batchRows` rows, each loss weighted by its share of the step's
 * predicted bytes (so the gradient is the mean over all bytes of the step, whatever the
 * padding), global-norm clipping, AdamW (decoupled weight decay, none on 1-D tensors) at the
 * learning rate of a warmup + cosine schedule. Validation bits-per-byte runs every `evalEvery`
 * steps and at the end over the held-out documents (`evalBytes` caps the text per evaluation).
 * Checkpoints (see checkpoint.ts) are written every `saveEvery` steps and at the end and hold
 * everything the loop's future depends on: weights, optimizer moments and counters, the data
 * position (which includes the data RNG), the trainer RNG, the step and the log. Resuming from
 * one therefore reproduces the uninterrupted run's loss curve bit for bit (same backend and
 * thread count; the kernels are deterministic).
 *
 * At the end the final weights go to `<out>/model.safetensors` (released tensor names) with
 * `<out>/config.json`, and the log to `<out>/log.jsonl`.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { clearPool, noGrad, scale, type Tensor } from '../tensor/index.js';
import { AdamW, ParamStore, Rng, clipCoefficient, cosineLr, gradNorm as globalGradNorm, isNoDecayParam, type AdamWStateMeta, type RngState } from '../nn/index.js';
import { BytePacker, runToEnd, runYielding, writeFileAtomic, writeSafetensors, type DataPosition, type PackedBatch } from '../io/index.js';
import { CheckpointError, loadLatestCheckpoint, saveCheckpoint } from './checkpoint.js';

/** What the trainer needs from a model. */
export interface TrainableModel {
  readonly store: ParamStore;
  /** mean next-byte cross-entropy (nats) over the `bytes` predicted bytes of the batch */
  loss(batch: PackedBatch, ctx: LossContext): { loss: Tensor; bytes: number };
  /** JSON written as config.json beside the checkpoint weights (the released config schema for HAT) */
  readonly config?: unknown;
  /**
   * Writes the final model (config + weights, the model's released layout) into a folder; when
   * absent the trainer writes `model.safetensors` (f32, parameter names) and `config.json`.
   */
  save?(dir: string): void;
  /** extra JSON state the loop's future depends on (e.g. QAT codebooks), saved in every checkpoint */
  saveState?(): unknown;
  /** restores what saveState returned (called on resume, after the weights are loaded) */
  loadState?(state: unknown): void;
  /**
   * The loss's graph keeps nothing the model reads after backward (no cached intermediate) and
   * its parameters' `.grad` storage is the engine's (no buffers of its own): the trainer then
   * recycles the forward's buffers during backward (BackwardOptions.freeActivations) and the
   * gradients at each step's zeroGrad (`zeroGrad({ recycle: true })`).
   */
  readonly freeActivations?: boolean;
}

/** Per-call context of a training loss (a hook for stochastic models; HAT uses none). */
export interface LossContext {
  step: number;
  training: boolean;
  rng: Rng;
}

export interface TrainSettings {
  steps: number;
  /** rows per micro-batch */
  batchRows: number;
  /** micro-batches per optimizer step */
  accum: number;
  lr: number;
  warmup: number;
  /** cosine floor as a fraction of lr */
  minLrRatio: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /** global gradient-norm clip (0: none) */
  clip: number;
  /** validate every N steps (0: only at the end) */
  evalEvery: number;
  /** at most this many bytes of validation text per evaluation (0: all) */
  evalBytes: number;
  /** checkpoint every N steps (0: only at the end) */
  saveEvery: number;
  seed: number;
}

/** One log line (per optimizer step). */
export interface LogEntry {
  step: number;
  /** training loss, nats per predicted byte */
  loss: number;
  /** training bits per byte */
  bpb: number;
  lr: number;
  gradNorm: number;
  /** predicted bytes in this step */
  bytes: number;
  /** validation bits per byte, on evaluation steps */
  valBpb?: number;
  /** seconds since the run started (summed over resumed sessions) */
  time: number;
  /** training throughput of this step, text bytes per second */
  bytesPerSec: number;
}

/** state.json of a checkpoint. */
export interface TrainState {
  format: 'tfree-train-state';
  version: 1;
  step: number;
  settings: TrainSettings;
  /** caller's description of the run (model config, data fingerprint, ...), checked on resume */
  run: Record<string, unknown>;
  optimizer: AdamWStateMeta;
  data: DataPosition;
  rng: RngState;
  elapsed: number;
  log: LogEntry[];
  /** the model's saveState() (absent when it has none) */
  extra?: unknown;
}

export interface TrainerEvents {
  onStep?(e: LogEntry): void;
  onEval?(step: number, valBpb: number): void;
  onCheckpoint?(dir: string, step: number): void;
  /** called after every optimizer update (e.g. to re-project weights) */
  afterUpdate?(step: number): void;
  /** polled after every step: true ends the session with a checkpoint (e.g. on SIGINT) */
  shouldStop?(): boolean;
}

export interface TrainerInit {
  model: TrainableModel;
  settings: TrainSettings;
  /** the training stream (shuffling packer) */
  train: BytePacker;
  /** a fresh single-pass packer over the validation documents, or null for none */
  makeVal: (() => BytePacker) | null;
  outDir: string;
  run?: Record<string, unknown>;
  events?: TrainerEvents;
}

/** Thrown when a resumed run's settings or data differ from the checkpoint's. */
export class ResumeMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResumeMismatchError';
  }
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => stableJson(a[k]) !== stableJson(b[k])).sort();
}

export function checkSettings(s: TrainSettings): void {
  const posInt = (k: keyof TrainSettings, min: number): void => {
    const v = s[k] as number;
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${k} must be an integer >= ${min}, got ${v}`);
  };
  posInt('steps', 1);
  posInt('batchRows', 1);
  posInt('accum', 1);
  posInt('warmup', 0);
  posInt('evalEvery', 0);
  posInt('evalBytes', 0);
  posInt('saveEvery', 0);
  if (s.warmup > s.steps) throw new RangeError(`warmup (${s.warmup}) must not exceed steps (${s.steps})`);
  if (!(s.lr > 0)) throw new RangeError(`lr must be positive, got ${s.lr}`);
  if (!(s.clip >= 0)) throw new RangeError(`clip must be >= 0, got ${s.clip}`);
}

export class Trainer {
  readonly model: TrainableModel;
  readonly settings: TrainSettings;
  readonly opt: AdamW;
  readonly outDir: string;
  step = 0;
  log: LogEntry[] = [];
  private readonly train: BytePacker;
  private readonly makeVal: (() => BytePacker) | null;
  private readonly run: Record<string, unknown>;
  private readonly events: TrainerEvents;
  private rng: Rng;
  private elapsedBefore = 0;

  constructor(init: TrainerInit) {
    checkSettings(init.settings);
    this.model = init.model;
    this.settings = init.settings;
    this.train = init.train;
    this.makeVal = init.makeVal;
    this.outDir = init.outDir;
    this.run = init.run ?? {};
    this.events = init.events ?? {};
    this.rng = new Rng(`train:${init.settings.seed}`);
    const s = init.settings;
    this.opt = new AdamW(this.model.store, { lr: s.lr, betas: s.betas, eps: s.eps, weightDecay: s.weightDecay, noDecay: isNoDecayParam });
  }

  get checkpointDir(): string {
    return nodePath.join(this.outDir, 'checkpoints');
  }

  /**
   * Restores the latest checkpoint of outDir. Returns false when there is none. Throws
   * ResumeMismatchError when the settings or the run description differ.
   */
  resume(): boolean {
    const ck = loadLatestCheckpoint<TrainState>(this.checkpointDir);
    if (ck === null) return false;
    try {
      const st = ck.state;
      if (st.format !== 'tfree-train-state' || st.version !== 1) throw new ResumeMismatchError(`${ck.dir}: not a tfree training checkpoint`);
      const ds = diffKeys(st.settings as unknown as Record<string, unknown>, this.settings as unknown as Record<string, unknown>);
      if (ds.length > 0) {
        const detail = ds.map((k) => `${k}: checkpoint ${stableJson((st.settings as unknown as Record<string, unknown>)[k])}, now ${stableJson((this.settings as unknown as Record<string, unknown>)[k])}`);
        throw new ResumeMismatchError(`settings differ from the checkpoint in ${ck.dir} (${detail.join('; ')})`);
      }
      const dr = diffKeys(st.run, this.run);
      if (dr.length > 0) throw new ResumeMismatchError(`the run differs from the checkpoint in ${ck.dir} in: ${dr.join(', ')}`);
      this.model.store.loadFrom((name) => (ck.model.has(name) ? ck.model.readAs(name, 'f32').data : undefined), { sourceNames: ck.model.names() });
      this.opt.loadState(st.optimizer, (name) => (ck.optimizer.has(name) ? ck.optimizer.readAs(name, 'f32').data : undefined));
      this.model.loadState?.(st.extra);
      this.train.setPosition(st.data);
      this.rng = Rng.fromState(st.rng);
      this.step = st.step;
      this.log = st.log.slice();
      this.elapsedBefore = st.elapsed;
    } catch (e) {
      if (e instanceof ResumeMismatchError || e instanceof CheckpointError) throw e;
      // a state.json with missing or malformed fields, a tensor that does not fit, ...
      throw new CheckpointError(`${ck.dir}: damaged checkpoint (${e instanceof Error ? e.message : String(e)})`);
    } finally {
      ck.model.close();
      ck.optimizer.close();
    }
    return true;
  }

  /**
   * Validation bits per byte over (at most `cap`, default settings.evalBytes, 0 = all bytes of)
   * the held-out text; NaN without validation data.
   */
  evaluate(cap = this.settings.evalBytes): number {
    if (this.makeVal === null) return NaN;
    const val = this.makeVal();
    let nats = 0;
    let count = 0;
    let text = 0;
    noGrad(() => {
      while (!val.done && (cap === 0 || text < cap)) {
        const b = val.next(this.settings.batchRows);
        if (b.rows === 0) break;
        text += b.textBytes;
        if (b.targetCount === 0) continue;
        const { loss, bytes } = this.model.loss(b, { step: this.step, training: false, rng: this.rng });
        nats += loss.item() * bytes;
        count += bytes;
      }
    });
    return count > 0 ? nats / count / Math.LN2 : NaN;
  }

  private elapsed(t0: number): number {
    return this.elapsedBefore + (performance.now() - t0) / 1e3;
  }

  /** One optimizer step; returns its log entry (without valBpb). */
  trainStep(t0: number): LogEntry {
    const s = this.settings;
    const tStep = performance.now();
    const micro: PackedBatch[] = [];
    for (let k = 0; k < s.accum; k++) micro.push(this.train.next(s.batchRows));
    const total = micro.reduce((a, b) => a + b.targetCount, 0);
    const textBytes = micro.reduce((a, b) => a + b.textBytes, 0);
    this.model.store.zeroGrad({ recycle: this.model.freeActivations === true });
    let nats = 0;
    for (const b of micro) {
      if (b.targetCount === 0) continue;
      const { loss, bytes } = this.model.loss(b, { step: this.step, training: true, rng: this.rng });
      nats += loss.item() * bytes;
      scale(loss, bytes / total).backward(undefined, false, { freeActivations: this.model.freeActivations === true });
    }
    // clipping (when on) is applied inside the AdamW update: the same result as clipGradNorm then step
    const { norm: gradNorm, coef } = s.clip > 0 ? clipCoefficient(this.model.store, s.clip) : { norm: globalGradNorm(this.model.store), coef: 1 };
    if (!Number.isFinite(gradNorm)) throw new Error(`step ${this.step + 1}: the gradient norm is ${gradNorm} (training diverged; lower --lr)`);
    const lr = cosineLr(this.step, { lr: s.lr, warmupSteps: s.warmup, totalSteps: s.steps, minLrRatio: s.minLrRatio });
    this.opt.step(lr, { gradScale: coef });
    this.step++;
    this.events.afterUpdate?.(this.step);
    const loss = total > 0 ? nats / total : NaN;
    const sec = (performance.now() - tStep) / 1e3;
    return { step: this.step, loss, bpb: loss / Math.LN2, lr, gradNorm, bytes: total, time: this.elapsed(t0), bytesPerSec: textBytes / sec };
  }

  private state(t0: number): TrainState {
    return {
      format: 'tfree-train-state',
      version: 1,
      step: this.step,
      settings: this.settings,
      run: this.run,
      optimizer: this.opt.state(),
      data: this.train.position,
      rng: this.rng.state(),
      elapsed: this.elapsed(t0),
      log: this.log,
      extra: this.model.saveState?.(),
    };
  }

  private writeLog(): void {
    writeFileAtomic(nodePath.join(this.outDir, 'log.jsonl'), this.log.map((e) => JSON.stringify(e)).join('\n') + (this.log.length > 0 ? '\n' : ''));
  }

  /** Writes a checkpoint of the current state. */
  checkpoint(t0: number): string {
    const dir = saveCheckpoint(this.checkpointDir, this.step, {
      model: this.model.store.toRecord(),
      optimizer: this.opt.stateTensors(),
      state: this.state(t0),
      config: this.model.config,
    });
    this.writeLog();
    this.events.onCheckpoint?.(dir, this.step);
    return dir;
  }

  /** Writes the final model (config.json + model.safetensors) into outDir. */
  exportModel(): void {
    if (this.model.save !== undefined) {
      this.model.save(this.outDir);
      return;
    }
    writeSafetensors(nodePath.join(this.outDir, 'model.safetensors'), this.model.store.toRecord(), { format: 'pt' });
    if (this.model.config !== undefined) writeFileAtomic(nodePath.join(this.outDir, 'config.json'), `${JSON.stringify(this.model.config, null, 2)}\n`);
  }

  /**
   * Runs from the current step to settings.steps, then exports the model. `stopAt` ends the
   * session early after that step (as a kill would, but cleanly; for tests and time limits).
   */
  runAll(stopAt = Infinity): LogEntry[] {
    return runToEnd(this.session(stopAt));
  }

  /**
   * `runAll`, letting the event loop turn between steps, so a SIGINT handler can ask
   * `shouldStop` to end the session (with a checkpoint) while it runs.
   */
  runAllYielding(stopAt = Infinity): Promise<LogEntry[]> {
    return runYielding(this.session(stopAt));
  }

  /** The training session as a job: yields after every step (src/io/interrupt.ts). */
  *session(stopAt = Infinity): Generator<number, LogEntry[], void> {
    try {
      return yield* this.steps(stopAt);
    } finally {
      // the step's recycled buffers (up to the pool's limit) are not needed once the session ends
      clearPool();
    }
  }

  private *steps(stopAt: number): Generator<number, LogEntry[], void> {
    fs.mkdirSync(this.outDir, { recursive: true });
    const s = this.settings;
    const t0 = performance.now();
    while (this.step < s.steps) {
      if (this.step >= stopAt) return this.log;
      const e = this.trainStep(t0);
      const last = this.step === s.steps;
      if ((s.evalEvery > 0 && this.step % s.evalEvery === 0) || last) {
        const v = this.evaluate();
        if (!Number.isNaN(v)) {
          e.valBpb = v;
          this.events.onEval?.(this.step, v);
        }
      }
      this.log.push(e);
      this.events.onStep?.(e);
      const saved = (s.saveEvery > 0 && this.step % s.saveEvery === 0) || last;
      if (saved) this.checkpoint(t0);
      yield this.step; // a safe point: a SIGINT handler may run here
      if (!last && (this.events.shouldStop?.() ?? false)) {
        if (!saved) this.checkpoint(t0);
        return this.log;
      }
    }
    this.exportModel();
    this.writeLog();
    return this.log;
  }
}
