/**
 * `tfree kg`: temporal knowledge-graph completion with BoxTE / BoxE.
 *   tfree kg train  --data DIR --out CKPT [options]      train (resumable), keep the best-validation model
 *   tfree kg eval   --model CKPT --data DIR [--split test] [--json]
 *   tfree kg export --model CKPT --out DIR              parameters as safetensors + TSV
 *   tfree kg stats  --data DIR [--json]                 counts of a dataset folder
 *   tfree kg synth  --out DIR [--seed N]                write a small synthetic dataset (demo)
 *   tfree kg query  [--model CKPT] --head NAME|--tail NAME --relation NAME --date D [--top 10] [--json]
 *                                                       top-k tails (or heads) of one temporal question
 *   tfree kg curves --log FILE --out DIR [--ref-mrr X]  learning curves (SVG) of a `kg train --json` log
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec, ParsedArgs } from '../args.js';
import { UserError } from '../errors.js';
import { EXIT_INTERRUPTED, INTERRUPTED, runWriteJob, withInterrupt } from '../interrupt.js';
import { checkInputPath, checkMemory, checkOutputPath, refuseFileOverwrite, refuseInputAsOutput } from '../resources.js';
import { runYielding } from '../../io/interrupt.js';
import { Progress, formatDuration } from '../progress.js';
import { KgFormatError, formatQuads, kgStats, readTemporalKG, syntheticKG, type DateIds, type Quads, type TemporalKG } from '../../io/kg.js';
import { writeFileAtomic, writeSafetensors } from '../../io/safetensors.js';
import { writeStaged, type StagedOutput } from '../../io/staged.js';
import { noGrad } from '../../tensor/index.js';
import { KgLogError, parseKgTrainLog, writeKgCurves } from '../../eval/kg_curves.js';
import {
  DivergenceError,
  KgQueryError,
  KnownFacts,
  answerQuestion,
  dateLabel,
  EmptySplitError,
  NonFiniteModelError,
  Trainer,
  boxKernels,
  boxteLrSchedule,
  lrScheduleKinds,
  checkVocab,
  defaultConfig,
  evaluateSplit,
  loadModel,
  paramCount,
  readModelVocab,
  vocabDateIds,
  saveModelFileJob,
  subsample,
  type BoxTEConfig,
  type EpochResult,
  type LrScheduleKind,
  type TrainOptions,
} from '../../models/boxte/index.js';

/** The bundled trained model (models/boxte-icews14/; this file is dist/src/cli/commands/kg.js). */
export function defaultKgModel(): string {
  return fileURLToPath(new URL('../../../../models/boxte-icews14/boxte-icews14-d154.safetensors', import.meta.url));
}

function opt<T extends string | number | boolean>(a: ParsedArgs, name: string): T {
  return a.options[name] as T;
}

function need(a: ParsedArgs, name: string): string {
  const v = a.options[name];
  if (typeof v !== 'string' || v === '') throw new UserError(`missing required option --${name}`);
  return v;
}

function posInt(a: ParsedArgs, name: string, min = 1): number {
  const v = a.options[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new UserError(`--${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

function readData(dir: string, dateIds: DateIds = 'calendar'): TemporalKG {
  checkInputPath(dir, '--data', 'dir');
  try {
    return readTemporalKG(dir, { dateIds });
  } catch (e) {
    if (e instanceof KgFormatError) throw new UserError(e.message);
    throw e;
  }
}

function userErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (e instanceof DivergenceError || e instanceof NonFiniteModelError || e instanceof EmptySplitError) throw new UserError(e.message);
    if (e instanceof Error && /^(cannot open|.*: not a tfree BoxTE|.*: the data's|.*: no training state|.*: malformed|.*safetensors)/i.test(e.message)) throw new UserError(e.message);
    if (e instanceof Error && e.name === 'SafetensorsError') throw new UserError(e.message);
    throw e;
  }
}

function splitOf(kg: TemporalKG, name: string): Quads {
  if (name !== 'train' && name !== 'valid' && name !== 'test') throw new UserError(`--split must be train, valid or test, got "${name}"`);
  return kg[name];
}

// ---- train ---------------------------------------------------------------------------------------

/** Builds or resumes the trainer; the library's refusal of validation on an empty valid split names the file and the way out. */
function makeTrainer(data: string, make: () => Trainer): Trainer {
  return userErrors(() => {
    try {
      return make();
    } catch (e) {
      if (e instanceof EmptySplitError) throw new UserError(`${join(data, 'valid.txt')} has no facts: validation needs some (train without it: --valid-every 0)`);
      throw e;
    }
  });
}

/**
 * The model and optimisation settings of a run are fixed: `--resume` continues with the state's own.
 * A flag given with another value than the run's was silently ignored before (a user lowering --lr
 * for the rest of a run trained on with the old one); it is refused, naming each difference.
 */
function refuseChangedSettings(a: ParsedArgs, tr: Trainer, lastPath: string): void {
  const c = tr.model.cfg;
  const o = tr.opts;
  const fixed: [string, string | number | boolean | undefined][] = [
    ['arch', c.model],
    ['dim', c.dim],
    ['k', c.model === 'boxe' ? undefined : c.k],
    ['tanh', c.tanh],
    ['order', c.order],
    ['alpha', c.useAlpha],
    ['bump-day0', !c.noBumpDay0],
    ['date-ids', tr.kg.dateIds],
    ['batch', o.batchSize],
    ['negatives', o.negatives],
    ['lr', o.lr],
    ['time-reg', o.timeReg],
    ['seed', o.seed],
    ['lr-schedule', o.lrSchedule ?? 'constant'],
    ['warmup-epochs', o.warmupEpochs ?? 0],
    ['min-lr-ratio', o.minLrRatio ?? 0],
    ['schedule-epochs', o.scheduleEpochs],
  ];
  const differ: string[] = [];
  for (const [flag, run] of fixed) {
    const v = a.options[flag];
    if (a.given?.has(flag) !== true || run === undefined || v === run) continue;
    differ.push(typeof v === 'boolean' ? `--${v ? '' : 'no-'}${flag} (the run: --${run === true ? '' : 'no-'}${flag})` : `--${flag} ${String(v)} (the run's: ${String(run)})`);
  }
  if (differ.length > 0) {
    throw new UserError(
      `--resume continues the run in ${lastPath} with its own settings, but ${differ.join(', ')}; only --epochs, --valid-every, --valid-limit, --patience, --max-minutes and --save-every may change on resume: drop the others, or start a new run (--overwrite or another --out)`,
    );
  }
}

async function runTrain(a: ParsedArgs): Promise<number> {
  const data = need(a, 'data');
  const out = need(a, 'out');
  checkOutputPath(out, '--out', 'file');
  for (const f of [out, `${out}.last`]) refuseInputAsOutput(f, '--out', ['train', 'valid', 'test'].map((s) => join(data, `${s}.txt`)));
  const json = opt<boolean>(a, 'json') === true;
  const lastPath = `${out}.last`;
  const resume = opt<boolean>(a, 'resume') === true;
  if (resume && opt<boolean>(a, 'overwrite') === true) throw new UserError('give --resume or --overwrite, not both');
  if (!resume && opt<boolean>(a, 'overwrite') !== true) {
    if (existsSync(lastPath)) throw new UserError(`${lastPath} exists (an earlier run): continue it with --resume, or pass --overwrite to start over`);
    if (existsSync(out)) throw new UserError(`${out} exists: pass --overwrite to replace it, or choose another --out`);
  }
  // the date-id rule: the run's own on --resume (a different --date-ids is refused below)
  const dateIds = resume && existsSync(lastPath) ? vocabDateIds(userErrors(() => readModelVocab(lastPath))) : (opt<string>(a, 'date-ids') as DateIds);
  const kg = readData(data, dateIds);
  const log = (s: string): void => {
    if (!json) process.stderr.write(`${s}\n`);
  };
  let tr: Trainer;
  if (resume) {
    if (!existsSync(lastPath)) throw new UserError(`--resume: no training state at ${lastPath}`);
    const over: Partial<TrainOptions> = {};
    for (const [flag, key] of [['epochs', 'epochs'], ['valid-every', 'validEvery'], ['valid-limit', 'validLimit'], ['patience', 'patience']] as const) {
      if (a.options[flag] !== undefined) over[key] = posInt(a, flag, flag === 'epochs' ? 1 : 0);
    }
    tr = makeTrainer(data, () => Trainer.resume(lastPath, kg, over));
    refuseChangedSettings(a, tr, lastPath);
    log(`resumed ${lastPath} at epoch ${tr.epoch} (${tr.bestEpoch > 0 ? `best valid MRR ${tr.bestMrr.toFixed(4)} at epoch ${tr.bestEpoch}` : 'no validation yet'})`);
  } else {
    const model = opt<'boxte' | 'boxe'>(a, 'arch'); // one of its choices (the parser checks)
    const order = opt<number>(a, 'order');
    if (order !== 1 && order !== 2) throw new UserError(`--order must be 1 or 2, got ${order}`);
    const cfg: BoxTEConfig = defaultConfig({
      model,
      numEntities: kg.entities.length,
      numRelations: kg.relations.length,
      numTimes: kg.numTimes,
      dim: posInt(a, 'dim'),
      k: model === 'boxe' ? 0 : posInt(a, 'k'),
      tanh: opt<boolean>(a, 'tanh') !== false,
      order,
      noBumpDay0: opt<boolean>(a, 'bump-day0') !== true,
      useAlpha: opt<boolean>(a, 'alpha') !== false,
    });
    const lr = opt<number>(a, 'lr');
    const timeReg = opt<number>(a, 'time-reg');
    if (!(lr > 0)) throw new UserError(`--lr must be > 0, got ${lr}`);
    if (!(timeReg >= 0)) throw new UserError(`--time-reg must be >= 0, got ${timeReg}`);
    const opts: TrainOptions = {
      epochs: a.options.epochs === undefined ? 1200 : posInt(a, 'epochs'),
      batchSize: posInt(a, 'batch'),
      negatives: posInt(a, 'negatives'),
      lr,
      timeReg,
      seed: posInt(a, 'seed', 0),
      validEvery: a.options['valid-every'] === undefined ? 100 : posInt(a, 'valid-every', 0),
      validLimit: a.options['valid-limit'] === undefined ? 0 : posInt(a, 'valid-limit', 0),
      patience: a.options.patience === undefined ? 0 : posInt(a, 'patience', 0),
    };
    const sched = opt<string>(a, 'lr-schedule');
    if (sched !== 'constant' || a.given?.has('warmup-epochs') === true) {
      opts.lrSchedule = sched as LrScheduleKind;
      opts.warmupEpochs = opt<number>(a, 'warmup-epochs');
      opts.minLrRatio = opt<number>(a, 'min-lr-ratio');
      opts.scheduleEpochs = a.options['schedule-epochs'] === undefined ? opts.epochs : posInt(a, 'schedule-epochs');
      try {
        boxteLrSchedule(opts, Math.ceil(kg.train.h.length / opts.batchSize));
      } catch (e) {
        throw new UserError(`--lr-schedule: ${(e as Error).message}`);
      }
    } else if (a.given?.has('min-lr-ratio') === true || a.given?.has('schedule-epochs') === true) {
      throw new UserError('--min-lr-ratio and --schedule-epochs need --lr-schedule cosine or linear');
    }
    const perStep = opts.batchSize * (1 + opts.negatives) * cfg.dim;
    checkMemory(16 * paramCount(cfg) + 4 * 8 * perStep, `kg train with d=${cfg.dim}, --batch ${opts.batchSize}, --negatives ${opts.negatives} and ${kg.entities.length} entities would`, Math.max(perStep, paramCount(cfg)));
    tr = makeTrainer(data, () => new Trainer(kg, cfg, opts));
    log(
      `kg train: ${kg.entities.length} entities, ${kg.relations.length} relations, ${kg.numTimes} timestamps, ${kg.train.h.length} training facts; ` +
        `${cfg.model} d=${cfg.dim} k=${cfg.k}, ${paramCount(cfg).toLocaleString('en-US')} parameters; kernels: ${boxKernels().name}` +
        (kg.unseenEntities.valid + kg.unseenEntities.test > 0 ? `; entities never in train: ${kg.unseenEntities.valid} in valid, ${kg.unseenEntities.test} in test (kept, not dropped)` : '') +
        (kg.unseenRelations.valid + kg.unseenRelations.test > 0 ? `; relations never in train: ${kg.unseenRelations.valid} in valid, ${kg.unseenRelations.test} in test (their boxes stay untrained)` : ''),
    );
  }
  const maxMinutes = opt<number>(a, 'max-minutes');
  const saveEvery = posInt(a, 'save-every');
  let savedEpoch = resume ? tr.epoch : -1; // the epoch whose state lastPath holds (-1: none written by this run)
  const t0 = Date.now();
  const o = tr.opts;
  let validated = false;
  const validateNow = (): void => {
    validated = true;
    const bar = new Progress({ total: o.validLimit > 0 ? Math.min(o.validLimit, kg.valid.h.length) : kg.valid.h.length, label: `valid @${tr.epoch}`, enabled: !json });
    const m = tr.validate((done) => bar.update(done));
    const best = tr.noteValidation(m.mrr);
    if (best) tr.saveModel(out, { best_epoch: String(tr.epoch), valid_mrr: String(m.mrr) });
    log(`epoch ${tr.epoch}: valid MRR ${m.mrr.toFixed(4)} H@1 ${m.hits1.toFixed(4)} H@10 ${m.hits10.toFixed(4)}${best ? ` (best, saved ${out})` : ` (best ${tr.bestMrr.toFixed(4)} at ${tr.bestEpoch})`}`);
    if (json) process.stdout.write(`${JSON.stringify({ event: 'valid', epoch: tr.epoch, ...m, best })}\n`);
  };
  if (opt<boolean>(a, 'overwrite') === true && opt<boolean>(a, 'resume') !== true) for (const f of [out, lastPath]) rmSync(f, { force: true });
  const stopped = await withInterrupt('kg train', 'after this epoch (its state is saved)', async (stop) => {
    while (!tr.done()) {
      const bar = new Progress({ total: tr.stepsPerEpoch, label: `epoch ${tr.epoch + 1}/${o.epochs}`, enabled: !json });
      const e0 = Date.now();
      let lossAcc = 0;
      let r: EpochResult;
      try {
        r = await runYielding(tr.epochJob((s, steps, loss) => {
        lossAcc += loss;
        const sec = (Date.now() - e0) / 1000;
        const facts = Math.min(s * o.batchSize, kg.train.h.length);
        const left = (o.epochs - tr.epoch - s / steps) * (sec / (s / steps));
        if (s < steps) bar.update(s, `loss ${(lossAcc / s).toFixed(4)} | ${Math.round(facts / Math.max(sec, 1e-9))} facts/s | run ETA ${formatDuration(left)}`);
      }));
      } catch (e) {
        if (!json && process.stderr.isTTY) process.stderr.write('\r\x1b[K'); // drop the partial progress bar
        if (e instanceof DivergenceError) throw new UserError(`${e.message}; nothing of this epoch was saved${savedEpoch >= 0 && existsSync(lastPath) ? ` (${lastPath} holds the state after epoch ${savedEpoch})` : ''}`);
        throw e;
      }
      bar.finish(`loss ${r.loss.toFixed(4)} | ${Math.round(r.facts / r.seconds)} facts/s`);
      if (json) process.stdout.write(`${JSON.stringify({ event: 'epoch', epoch: tr.epoch, loss: r.loss, seconds: r.seconds, facts_per_s: r.facts / r.seconds, lr: r.lr })}\n`);
      else log(`epoch ${tr.epoch}/${o.epochs}: loss ${r.loss.toFixed(4)}, ${r.seconds.toFixed(1)} s, ${Math.round(r.facts / r.seconds)} facts/s`);
      const outOfTime = maxMinutes > 0 && (Date.now() - t0) / 60000 >= maxMinutes;
      validated = false;
      // validation only on the schedule (every --valid-every epochs and the last): a pause
      // (--max-minutes, Ctrl-C) never validates, so where a run was paused cannot change which
      // epoch is chosen as best (a paused and resumed run selects as one straight run does)
      if (tr.validationDue()) validateNow();
      else if (o.validEvery === 0 && (tr.epoch >= o.epochs || outOfTime)) tr.saveModel(out, { best_epoch: String(tr.epoch) });
      // the state after every --save-every epochs, and always after a validation, at the end, and
      // before stopping (time out or Ctrl-C), so that --resume continues exactly where this run ends
      if (tr.epoch % saveEvery === 0 || validated || outOfTime || stop.requested || tr.done()) {
        tr.saveState(lastPath);
        savedEpoch = tr.epoch;
      }
      if (outOfTime && !tr.done()) {
        log(`stopping after ${formatDuration((Date.now() - t0) / 1000)} (--max-minutes ${maxMinutes}); resume with --resume`);
        break;
      }
      if (stop.requested && !tr.done()) {
        log(`stopped after epoch ${tr.epoch} (state in ${lastPath}); continue with --resume`);
        return true;
      }
    }
    return false;
  });
  if (stopped) {
    if (json) process.stdout.write(`${JSON.stringify({ event: 'stopped', epochs: tr.epoch, state: lastPath })}\n`);
    return EXIT_INTERRUPTED;
  }
  if (tr.stopped) log(`early stop: no improvement in ${o.patience} validations`);
  // complete: false when --max-minutes paused the run before its last epoch (continue with --resume)
  // model: null while no model file exists yet (paused before the first validation)
  const summary = { event: 'done', complete: tr.done(), epochs: tr.epoch, best_epoch: tr.bestEpoch, best_valid_mrr: tr.bestEpoch > 0 ? tr.bestMrr : null, seconds: (Date.now() - t0) / 1000, model: existsSync(out) ? out : null, state: lastPath };
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    const best = tr.bestEpoch > 0 ? `best valid MRR ${tr.bestMrr.toFixed(4)} at epoch ${tr.bestEpoch}` : o.validEvery > 0 ? 'no validation yet' : 'no validation';
    log(`${tr.done() ? 'done' : 'paused'}: ${tr.epoch} epochs in ${formatDuration(summary.seconds)}; ${best}; ${summary.model !== null ? `model ${out}` : `no model file until the first validation (state in ${lastPath})`}`);
  }
  return 0;
}

// ---- eval ----------------------------------------------------------------------------------------

function runEval(a: ParsedArgs): number {
  const path = need(a, 'model');
  const data = need(a, 'data');
  const json = opt<boolean>(a, 'json') === true;
  const { model, vocab } = userErrors(() => loadModel(path));
  const kg = readData(data, vocabDateIds(vocab));
  userErrors(() => checkVocab(vocab, kg, path));
  const split = splitOf(kg, opt<string>(a, 'split'));
  if (split.h.length === 0) throw new UserError(`--split ${opt<string>(a, 'split')}: ${join(data, `${opt<string>(a, 'split')}.txt`)} has no facts`);
  const limit = posInt(a, 'limit', 0);
  const q = subsample(split, limit);
  const c = model.cfg;
  const known = new KnownFacts(c.numEntities, c.numRelations, Math.max(c.numTimes, 1), [kg.train, kg.valid, kg.test]);
  const bar = new Progress({ total: q.h.length, label: `eval ${opt<string>(a, 'split')}`, enabled: !json });
  const t0 = performance.now();
  const m = userErrors(() => evaluateSplit(model, q, known, { onProgress: (d) => bar.update(d) }));
  const sec = (performance.now() - t0) / 1000;
  if (json) {
    process.stdout.write(`${JSON.stringify({ mr: m.mr, mrr: m.mrr, hits1: m.hits1, hits3: m.hits3, hits10: m.hits10 })}\n`);
  } else {
    process.stdout.write(
      `${opt<string>(a, 'split')}: ${q.h.length} facts, ${m.queries} ranks (head + tail, time-aware filtered); ` +
        `${kg.unseenFacts.test} test / ${kg.unseenFacts.valid} valid facts involve entities never seen in training (ranked like all others)\n` +
        `MR ${m.mr.toFixed(1)}  MRR ${m.mrr.toFixed(4)}  H@1 ${m.hits1.toFixed(4)}  H@3 ${m.hits3.toFixed(4)}  H@10 ${m.hits10.toFixed(4)}\n` +
        `${sec.toFixed(1)} s, ${Math.round(m.queries / sec)} queries/s (kernels: ${boxKernels().name})\n`,
    );
  }
  return 0;
}

// ---- query ---------------------------------------------------------------------------------------

function runQuery(a: ParsedArgs): number {
  const given = a.options.model;
  const path = typeof given === 'string' && given !== '' ? given : defaultKgModel();
  if (!existsSync(path)) throw new UserError(given === undefined ? `no --model given and the bundled BoxTE model is missing (${path})` : `cannot open ${path}: no such file`);
  const head = a.options.head;
  const tail = a.options.tail;
  const relation = need(a, 'relation');
  const date = need(a, 'date');
  if ((typeof head === 'string') === (typeof tail === 'string')) throw new UserError('give exactly one of --head NAME (ranks tails) and --tail NAME (ranks heads)');
  const k = posInt(a, 'top');
  const { model, vocab } = userErrors(() => loadModel(path));
  let res: ReturnType<typeof answerQuestion>;
  try {
    res = answerQuestion(model, vocab, { head: typeof head === 'string' ? head : undefined, tail: typeof tail === 'string' ? tail : undefined, relation, date, k });
  } catch (e) {
    if (e instanceof KgQueryError) throw new UserError(`--${e.field === 'k' ? 'top' : e.field}: ${e.message}`);
    throw e;
  }
  if (opt<boolean>(a, 'json') === true) {
    process.stdout.write(`${JSON.stringify({ question: { head: head ?? null, relation, tail: tail ?? null, date: dateLabel(vocab, res.tau) }, missing: res.missing, answers: res.answers })}\n`);
    return 0;
  }
  const q = res.missing === 'tail' ? `(${String(head)}, ${relation}, ?, ${dateLabel(vocab, res.tau)})` : `(?, ${relation}, ${String(tail)}, ${dateLabel(vocab, res.tau)})`;
  const lines = [`${q}: top ${res.answers.length} ${res.missing}s by BoxTE distance (lower = more plausible)`];
  const w = Math.max(0, ...res.answers.map((x) => x.score.toFixed(4).length)); // one column for every distance
  for (const x of res.answers) lines.push(`${String(x.rank).padStart(4)}  ${x.score.toFixed(4).padStart(w)}  ${x.entity}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

// ---- pack ----------------------------------------------------------------------------------------

/** A model file (optionally bf16) from a model or a training-state file (CKPT.last). */
async function runPack(a: ParsedArgs): Promise<number> {
  const path = need(a, 'model');
  const out = need(a, 'out');
  checkOutputPath(out, '--out', 'file');
  if (existsSync(out)) throw new UserError(`${out} exists; remove it first (a model is never overwritten unasked)`);
  const { model, vocab, meta } = userErrors(() => loadModel(path));
  const extra: Record<string, string> = {};
  for (const key of ['best_epoch', 'valid_mrr', 'note']) if (meta[key] !== undefined) extra[key] = meta[key];
  if (meta.train_state !== undefined) extra.epoch = String((JSON.parse(meta.train_state) as { epoch: number }).epoch);
  const note = a.options.note;
  if (typeof note === 'string' && note !== '') extra.note = note;
  const bf16 = opt<boolean>(a, 'bf16') === true;
  if ((await runWriteJob('kg pack', out, (stop) => saveModelFileJob(model, vocab, out, { bf16, extra }, stop))) === INTERRUPTED) return EXIT_INTERRUPTED;
  process.stdout.write(`wrote ${out} (${bf16 ? 'bf16' : 'f32'}, ${paramCount(model.cfg).toLocaleString('en-US')} parameters${extra.epoch ? `, epoch ${extra.epoch}` : ''})\n`);
  return 0;
}

// ---- export --------------------------------------------------------------------------------------

function row(values: Float32Array, start: number, n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(String(values[start + i]));
  return parts.join('\t');
}

function runExport(a: ParsedArgs): number {
  const path = need(a, 'model');
  const dir = need(a, 'out');
  checkOutputPath(dir, '--out', 'dir');
  refuseFileOverwrite(dir, ['embeddings.safetensors', 'entities.tsv', 'relations.tsv', 'times.tsv'], opt<boolean>(a, 'overwrite') === true);
  const { model, vocab } = userErrors(() => loadModel(path));
  const existed = existsSync(dir);
  const c = model.cfg;
  const d = c.dim;
  const R = c.numRelations;
  const boxes = noGrad(() => model.boxes());
  const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = model.store
    .entries()
    .map(([n, p]) => [n, { dtype: 'F32', shape: p.shape.slice(), data: p.f32() }]);
  for (const [n, t] of [['relation.head.lower', boxes.lh], ['relation.head.upper', boxes.uh], ['relation.tail.lower', boxes.lt], ['relation.tail.upper', boxes.ut]] as const) {
    tensors.push([n, { dtype: 'F32', shape: t.shape.slice(), data: t.f32() }]);
  }
  // every part goes to a temp name first; all are renamed together at the end (src/io/staged.ts: a failure leaves the old files or none)
  const write = (out: StagedOutput): string[] => {
    writeSafetensors(out.part('embeddings.safetensors'), tensors, { config: JSON.stringify(c), entities: JSON.stringify(vocab.entities), relations: JSON.stringify(vocab.relations) });
    const base = model.entityBase.f32();
    const bump = model.entityBump.f32();
    const hdr = (p: string): string => Array.from({ length: d }, (_, i) => `${p}${i}`).join('\t');
    const ent = [`entity\t${hdr('base_')}\t${hdr('bump_')}`];
    vocab.entities.forEach((name, i) => ent.push(`${name}\t${row(base, i * d, d)}\t${row(bump, i * d, d)}`));
    writeFileAtomic(out.part('entities.tsv'), `${ent.join('\n')}\n`);
    const lh = boxes.lh.f32();
    const uh = boxes.uh.f32();
    const lt = boxes.lt.f32();
    const ut = boxes.ut.f32();
    const alpha = model.alpha?.f32() ?? null;
    const rel = [`relation\tside\t${hdr('lower_')}\t${hdr('upper_')}${alpha ? `\t${Array.from({ length: c.k }, (_, j) => `alpha_${j}`).join('\t')}` : ''}`];
    vocab.relations.forEach((name, r) => {
      const al = alpha ? `\t${row(alpha, r * c.k, c.k)}` : '';
      rel.push(`${name}\thead\t${row(lh, r * d, d)}\t${row(uh, r * d, d)}${al}`);
      rel.push(`${name}\ttail\t${row(lt, r * d, d)}\t${row(ut, r * d, d)}${al}`);
    });
    writeFileAtomic(out.part('relations.tsv'), `${rel.join('\n')}\n`);
    if (model.timeBumpTable !== null) {
      const K = model.timeBumpTable.f32();
      const lines = [`time\tbump\t${hdr('v_')}`];
      for (let tau = 0; tau < c.numTimes; tau++) {
        const label = dateLabel(vocab, tau);
        for (let j = 0; j < c.k; j++) lines.push(`${label}\t${j}\t${row(K, (tau * c.k + j) * d, d)}`);
      }
      writeFileAtomic(out.part('times.tsv'), `${lines.join('\n')}\n`);
    } else out.remove('times.tsv'); // an earlier export's, of a model with time bumps: not part of this one
    return out.names;
  };
  let files: string[];
  try {
    files = userErrors(() => writeStaged(dir, write));
  } catch (e) {
    if (!existed) rmSync(dir, { recursive: true, force: true }); // the folder this run created
    throw e;
  }
  process.stdout.write(`wrote ${files.map((f) => join(dir, f)).join(', ')} (${vocab.entities.length} entities, ${R} relations, d=${d})\n`);
  return 0;
}

// ---- stats / synth -------------------------------------------------------------------------------

function runStats(a: ParsedArgs): number {
  const kg = readData(need(a, 'data'), opt<string>(a, 'date-ids') as DateIds);
  const s = kgStats(kg);
  if (opt<boolean>(a, 'json') === true) process.stdout.write(`${JSON.stringify(s)}\n`);
  else for (const [k, v] of Object.entries(s)) process.stdout.write(`${k.padEnd(30)}${String(v)}\n`);
  return 0;
}

function runSynth(a: ParsedArgs): number {
  const dir = need(a, 'out');
  checkOutputPath(dir, '--out', 'dir');
  refuseFileOverwrite(dir, ['train.txt', 'valid.txt', 'test.txt'], opt<boolean>(a, 'overwrite') === true);
  const kg = syntheticKG({ seed: posInt(a, 'seed', 0) || 1 });
  mkdirSync(dir, { recursive: true });
  for (const sp of ['train', 'valid', 'test'] as const) writeFileAtomic(join(dir, `${sp}.txt`), formatQuads(kg, kg[sp]));
  process.stdout.write(
    `wrote a synthetic temporal KG to ${dir}: ${kg.entities.length} entities, ${kg.relations.length} relations, ${kg.numTimes} timestamps, ${kg.train.h.length}/${kg.valid.h.length}/${kg.test.h.length} facts\n` +
      `train on it (test MRR about 0.8; docs/boxte.md): tfree kg train --data ${dir} --out ${join(dir, 'model.safetensors')} --dim 16 --epochs 20 --batch 64 --negatives 20 --lr 0.02 --valid-every 10\n`,
  );
  return 0;
}

// ---- curves --------------------------------------------------------------------------------------

function runCurves(a: ParsedArgs): number {
  const path = need(a, 'log');
  const dir = need(a, 'out');
  checkInputPath(path, '--log', 'file');
  checkOutputPath(dir, '--out', 'dir');
  const ref = a.options['ref-mrr'];
  let log;
  try {
    log = parseKgTrainLog(readFileSync(path, 'utf8'), path);
  } catch (e) {
    if (e instanceof KgLogError) throw new UserError(e.message);
    throw e;
  }
  if (log.epochs.length === 0 && log.valid.length === 0) throw new UserError(`--log ${path}: no epoch or valid records (is it the output of 'tfree kg train --json'?)`);
  mkdirSync(dir, { recursive: true });
  const files = writeKgCurves(log, dir, typeof ref === 'number' ? { refMrr: { value: ref, label: `MRR ${ref}` } } : {});
  const last = log.valid[log.valid.length - 1];
  process.stdout.write(
    `wrote ${files.join(', ')}: ${log.epochs.length} epochs${last !== undefined ? `, ${log.valid.length} validations (last: epoch ${last.epoch}, MRR ${last.mrr.toFixed(4)})` : ', no validations'}\n`,
  );
  return 0;
}

const TRAIN = ['train'] as const;

export const kgCommand: CommandSpec = {
  name: 'kg',
  summary: 'temporal knowledge-graph completion with BoxTE / BoxE (train, eval, export, stats, synth, query, pack, curves)',
  usage: 'tfree kg train|eval|export|stats|synth|query|pack|curves [options]',
  details: [
    'DIR holds train.txt, valid.txt, test.txt: head<TAB>relation<TAB>tail<TAB>YYYY-MM-DD (or integer time ids).',
    'Paper configurations (ICEWS14): bounded --dim 154 --k 2; full --dim 1000 --k 2; both --epochs 1200 --valid-every 100.',
  ].join('\n'),
  subcommands: {
    train: {
      summary: 'train BoxTE / BoxE (resumable); keeps the best-validation model',
      usage: 'tfree kg train --data DIR --out CKPT [--arch boxte|boxe] [model and training options] [--resume] [--json]',
      details: 'Writes CKPT (the best model) and CKPT.last (the resumable state, after every epoch; --save-every N: every N epochs, and\nalways after a validation and at the end). Ctrl-C stops after the current epoch with its state saved (exit 130; continue with\n--resume); a second Ctrl-C stops at once (CKPT.last keeps the last saved epoch).',
      run: (a) => runTrain(a),
    },
    eval: { summary: 'time-aware filtered MR, MRR, Hits@1/3/10 of a checkpoint', usage: 'tfree kg eval --model CKPT --data DIR [--split test] [--limit N] [--json]', run: (a) => runEval(a) },
    export: { summary: 'parameters as safetensors + TSV', usage: 'tfree kg export --model CKPT --out DIR [--overwrite]   (embeddings.safetensors, entities.tsv, relations.tsv, times.tsv)', run: (a) => runExport(a) },
    stats: { summary: 'counts of a dataset folder', usage: 'tfree kg stats --data DIR [--json]', run: (a) => runStats(a) },
    synth: { summary: 'write a small synthetic dataset with known structure (demo)', usage: 'tfree kg synth --out DIR [--seed N] [--overwrite]', run: (a) => runSynth(a) },
    query: {
      summary: 'top-k tails (or heads) of one temporal question',
      usage: 'tfree kg query [--model CKPT] --head NAME|--tail NAME --relation NAME --date YYYY-MM-DD [--top 10] [--json]',
      details: 'Without --model: the bundled ICEWS14 BoxTE model (models/boxte-icews14/). --head ranks tails, --tail ranks heads.',
      run: (a) => runQuery(a),
    },
    pack: { summary: 'a model file without optimiser state (optionally bf16)', usage: 'tfree kg pack --model CKPT|CKPT.last --out FILE [--bf16] [--note TEXT]', run: (a) => runPack(a) },
    curves: {
      summary: 'learning curves (SVG) of a kg train --json log',
      usage: 'tfree kg curves --log FILE --out DIR [--ref-mrr X]   (DIR/loss.svg; DIR/valid.svg when the log has validations)',
      run: (a) => runCurves(a),
    },
  },
  options: {
    data: { type: 'string', help: 'dataset folder (train.txt, valid.txt, test.txt)', meta: 'DIR', subs: ['train', 'eval', 'stats'] },
    out: { type: 'string', help: 'train: the model checkpoint file to write; export/synth/curves: output folder', meta: 'PATH', subs: ['train', 'export', 'synth', 'pack', 'curves'] },
    log: { type: 'string', help: 'the JSON-lines log of kg train --json', meta: 'FILE', subs: ['curves'] },
    'ref-mrr': { type: 'number', help: 'draw this MRR as a reference line (e.g. the paper\'s 0.58)', min: 0, max: 1, subs: ['curves'] },
    arch: { type: 'string', help: 'boxte or boxe', default: 'boxte', meta: 'NAME', choices: ['boxte', 'boxe'], subs: TRAIN, aliases: ['model'] },
    model: { type: 'string', help: 'the checkpoint to read (written by kg train)', meta: 'CKPT', subs: ['eval', 'export', 'query', 'pack'] },
    dim: { type: 'int', help: 'embedding dimension d', default: 154, min: 1, max: 1 << 16, subs: TRAIN },
    k: { type: 'int', help: 'time bumps per timestamp', default: 2, min: 1, max: 1024, subs: TRAIN },
    epochs: { type: 'int', help: 'training epochs (default: 1200)', min: 1, subs: TRAIN },
    batch: { type: 'int', help: 'positive facts per batch', default: 256, min: 1, max: 1 << 20, subs: TRAIN },
    negatives: { type: 'int', help: 'negatives per positive', default: 75, min: 1, max: 1 << 16, subs: TRAIN },
    lr: { type: 'number', help: 'Adam learning rate (a diverging run stops with an error)', default: 0.001, above: 0, subs: TRAIN },
    'time-reg': { type: 'number', help: 'weight of the temporal smoothness regulariser', default: 0.1, min: 0, subs: TRAIN },
    'lr-schedule': { type: 'string', help: 'constant (the paper), cosine or linear decay from --lr to --lr x --min-lr-ratio at --schedule-epochs (docs/boxte.md)', default: 'constant', meta: 'KIND', choices: lrScheduleKinds, subs: TRAIN },
    'warmup-epochs': { type: 'number', help: 'linear lr warmup over N epochs (fractions allowed)', default: 0, min: 0, subs: TRAIN },
    'min-lr-ratio': { type: 'number', help: 'floor of the cosine / linear decay as a fraction of --lr', default: 0, min: 0, max: 1, subs: TRAIN },
    'schedule-epochs': { type: 'int', help: 'epoch where the decay reaches its floor (default: --epochs; kept on --resume)', min: 1, subs: TRAIN },
    seed: { type: 'int', help: 'random seed (train: init, shuffling, negatives; synth: dataset seed)', default: 0, min: 0, max: 2 ** 31 - 1, subs: ['train', 'synth'] },
    'valid-every': { type: 'int', help: 'validate every N epochs, 0: never (default: 100)', min: 0, subs: TRAIN },
    'valid-limit': { type: 'int', help: 'validate on N valid facts spread evenly, 0: all (default: 0)', min: 0, subs: TRAIN },
    patience: { type: 'int', help: 'early stop after N validations without improvement, 0: off (default: 0)', min: 0, subs: TRAIN },
    'max-minutes': { type: 'number', help: 'stop (resumably) after the epoch that exceeds this wall time (0: off)', default: 0, min: 0, subs: TRAIN },
    'save-every': { type: 'int', help: 'write CKPT.last every N epochs (and after each validation, at the end, on Ctrl-C / --max-minutes); large models: e.g. 10', default: 1, min: 1, max: 1 << 20, subs: TRAIN },
    resume: { type: 'boolean', help: 'continue from CKPT.last (--epochs/--valid-every/--valid-limit/--patience may change; other settings are the run\'s)', subs: TRAIN },
    overwrite: { type: 'boolean', help: 'train: replace an existing CKPT / CKPT.last; synth, export: replace the files they write in --out (refused otherwise)', subs: ['train', 'synth', 'export'] },
    tanh: { type: 'boolean', help: 'tanh on points and box corners (--no-tanh to disable)', default: true, subs: TRAIN },
    order: { type: 'int', help: 'norm of the distance vector (1 or 2)', default: 2, min: 1, max: 2, subs: TRAIN },
    alpha: { type: 'boolean', help: 'relation factors alpha on the time bumps (--no-alpha: plain sum)', default: true, subs: TRAIN },
    'bump-day0': { type: 'boolean', help: 'give day 0 a time bump too (the reference code gives it none)', subs: TRAIN },
    'date-ids': {
      type: 'string',
      help: "how dates become time ids: calendar (one id per day) or reference (the BoxTE reference code's rule: 7 of ICEWS14's ids are shared by two dates; for reproducing its numbers)",
      default: 'calendar',
      choices: ['calendar', 'reference'],
      subs: ['train', 'stats'],
    },
    split: { type: 'string', help: 'train, valid or test', default: 'test', choices: ['train', 'valid', 'test'], subs: ['eval'] },
    limit: { type: 'int', help: 'only N facts spread evenly over the split (0: all)', default: 0, min: 0, subs: ['eval'] },
    json: { type: 'boolean', help: 'machine-readable output', subs: ['train', 'eval', 'stats', 'query'] },
    head: { type: 'string', help: 'the known head entity (ranks tails)', meta: 'NAME', subs: ['query'] },
    tail: { type: 'string', help: 'the known tail entity (ranks heads)', meta: 'NAME', subs: ['query'] },
    relation: { type: 'string', help: 'the relation', meta: 'NAME', subs: ['query'] },
    date: { type: 'string', help: 'YYYY-MM-DD (dated models) or the time id', meta: 'D', subs: ['query'] },
    top: { type: 'int', help: 'answers to show', default: 10, min: 1, max: 1 << 20, subs: ['query'] },
    bf16: { type: 'boolean', help: 'store the parameters as bfloat16 (half the size)', subs: ['pack'] },
    note: { type: 'string', help: 'a note stored in the model metadata (e.g. how it was trained)', meta: 'TEXT', subs: ['pack'] },
  },
};
