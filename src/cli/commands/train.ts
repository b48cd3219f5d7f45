/**
 * `tfree train`: trains a HAT model from scratch on text files, folders or JSONL.
 *
 * The data goes through src/io/text_data (reading, seeded train/validation split, packing into
 * rows of --seq-bytes with the HAT splitter's word boundaries and document segments); the loop
 * is src/train/trainer (AdamW, warmup + cosine, clipping, accumulation, validation bpb, atomic
 * checkpoints, exact resume). The final model is written to --out in the released layout
 * (config.json + model.safetensors), loadable by `tfree generate --model DIR`.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type { CommandSpec, ParsedArgs } from '../args.js';
import { UserError } from '../errors.js';
import { Progress, formatDuration } from '../progress.js';
import { EXIT_INTERRUPTED, INTERRUPTED, runWriteJob, withInterrupt } from '../interrupt.js';
import { OVERWRITE_OPTION, checkInputPath, checkMemory, checkOutputPath, refuseInputAsOutput, refuseModelOverwrite, removeIfLeftEmpty } from '../resources.js';
import { checkFinite } from '../hat_model.js';
import { BytePacker, DataError, samePath, type StopFlag, fingerprintDocuments, readDocuments, splitTrainVal, type InputFormat } from '../../io/index.js';
import { CheckpointError, ResumeMismatchError, Trainer, type LogEntry, type TrainSettings } from '../../train/index.js';
import { HATConfigError, presetConfig, readHATConfig, type HATConfig, type TransformerHATModelConfig } from '../../models/hat/config.js';
import { HATModel } from '../../models/hat/model.js';
import { hatTrainable } from '../../models/hat/train.js';
import { HATCheckpointError, loadHATModel } from '../../models/hat/checkpoint.js';
import { setupQat, type QatSetup } from './train_qat.js';
import { writeQatPackedJob } from '../../compress/index.js';
import { splitBytes } from '../../models/hat/splitter.js';

function opt<T extends string | number | boolean | undefined>(a: ParsedArgs, k: string): T {
  return a.options[k] as T;
}

/** The trainer settings shared by `tfree train` and `tfree convert` (all but steps, lr, warmup). */
export function loopSettings(args: ParsedArgs, seed: number): Omit<TrainSettings, 'steps' | 'lr' | 'warmup'> {
  return {
    batchRows: opt<number>(args, 'batch'),
    accum: opt<number>(args, 'accum'),
    minLrRatio: opt<number>(args, 'min-lr-ratio'),
    weightDecay: opt<number>(args, 'weight-decay'),
    betas: [0.9, 0.95],
    eps: 1e-8,
    clip: opt<number>(args, 'clip'),
    evalEvery: opt<number>(args, 'eval-every'),
    evalBytes: opt<number>(args, 'eval-bytes'),
    saveEvery: opt<number>(args, 'save-every'),
    seed,
  };
}

function modelConfig(a: ParsedArgs): HATConfig {
  const init = opt<string | undefined>(a, 'model');
  // one source of the model's shape: a preset, a config file, or the model started from
  const given = ['model', 'config', 'preset'].filter((k) => a.given?.has(k) === true);
  if (given.length > 1) throw new UserError(`${given.map((k) => `--${k}`).join(' and ')} both give the model's shape; give one (${init !== undefined ? '--model starts from that folder\'s config and weights' : '--config is a config.json, --preset a named size'})`);
  const config = opt<string | undefined>(a, 'config');
  if (init !== undefined) checkInputPath(init, '--model', 'dir');
  else if (config !== undefined) checkInputPath(config, '--config', 'any'); // a config.json, or a folder holding one
  const file = init !== undefined ? nodePath.join(init, 'config.json') : config;
  try {
    return file !== undefined ? readHATConfig(file) : presetConfig(opt<string>(a, 'preset'));
  } catch (e) {
    if (e instanceof HATConfigError) throw new UserError(e.message);
    if (e instanceof Error && 'code' in e) throw new UserError(`${file}: ${e.message}`);
    throw e;
  }
}

/**
 * A lower bound of the memory a training step needs: parameters with their gradients and two
 * AdamW moments (16 bytes each), and per byte of the micro-batch the encoder/decoder activations
 * kept for the backward pass (hidden size x layers, f32, a few tensors per layer).
 */
export function trainMemory(cfg: HATConfig, batch: number, seqBytes: number): number {
  const m = (c: TransformerHATModelConfig): number => c.num_hidden_layers * (4 * c.hidden_size * c.hidden_size + 3 * c.hidden_size * c.intermediate_size);
  const params = m(cfg.encoder_config) + m(cfg.backbone_config) + m(cfg.decoder_config);
  const perByte = 4 * 4 * (cfg.encoder_config.hidden_size * cfg.encoder_config.num_hidden_layers + cfg.decoder_config.hidden_size * cfg.decoder_config.num_hidden_layers);
  return 16 * params + batch * seqBytes * perByte;
}

/**
 * The QAT options need --qat, and --qat-out must not be --out (the packed model would replace the
 * f32 one there), nor the --model folder, nor a folder holding a model (unless --resume or
 * --overwrite: a resumed run writes its packed model again). Checked before any work.
 */
function checkQatOut(a: ParsedArgs, out: string, init: string | undefined, replaceOk: boolean): void {
  const qatOnly = ['qat-out', 'qat-block', 'qat-refit-every'].filter((k) => a.given?.has(k) === true);
  if (opt<string | undefined>(a, 'qat') === undefined) {
    if (qatOnly.length > 0) throw new UserError(`${qatOnly.map((k) => `--${k}`).join(', ')} ${qatOnly.length === 1 ? 'needs' : 'need'} --qat FORMAT`);
    return;
  }
  const qatOut = opt<string | undefined>(a, 'qat-out');
  if (qatOut === undefined) return;
  checkOutputPath(qatOut, '--qat-out', 'dir');
  if (samePath(qatOut, out)) throw new UserError(`--qat-out ${qatOut}: is --out, where the f32 model goes; the packed model would replace it: choose another folder (default: ${nodePath.join(out, 'packed')})`);
  refuseInputAsOutput(qatOut, '--qat-out', [init]);
  if (!replaceOk) refuseModelOverwrite(qatOut, false, '--qat-out');
}

const fmt = (x: number | undefined, d = 3): string => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

function kb(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} MB` : `${(x / 1e3).toFixed(1)} kB`;
}

export const trainCommand: CommandSpec = {
  name: 'train',
  positionals: 'PATH...',
  summary: 'train a HAT model on text files, folders or JSONL (resumable checkpoints)',
  usage: 'tfree train --data PATH [PATH...] --out DIR [--preset tiny|small | --config FILE] [--steps N] [--batch B] [--seq-bytes N] [--resume] [--json]',
  options: {
    data: { type: 'string', help: 'text file, folder (recursive) or .jsonl file with a "text" field; more paths may follow as positionals', meta: 'PATH' },
    out: { type: 'string', help: 'run folder: checkpoints/, log.jsonl and the final config.json + model.safetensors', meta: 'DIR' },
    preset: { type: 'string', help: 'model size: tiny (~2.5M parameters) or small (~31M)', default: 'tiny', meta: 'NAME' },
    config: { type: 'string', help: 'a HAT config.json instead of a preset', meta: 'FILE' },
    steps: { type: 'int', help: 'optimizer steps', default: 1000, min: 1 },
    batch: { type: 'int', help: 'rows per micro-batch', default: 8, min: 1, max: 1 << 16 },
    'seq-bytes': { type: 'int', help: 'bytes per row (documents are packed into rows at word boundaries)', default: 1024, min: 2, max: 1 << 24 },
    accum: { type: 'int', help: 'micro-batches per optimizer step (gradient accumulation)', default: 1, min: 1, max: 1 << 16 },
    lr: { type: 'number', help: 'peak learning rate', default: 2e-3, above: 0, max: 10 },
    'min-lr-ratio': { type: 'number', help: 'cosine floor as a fraction of --lr', default: 0.1, min: 0, max: 1 },
    warmup: { type: 'int', help: 'warmup steps (default: min(100, steps/10))', min: 0 },
    'weight-decay': { type: 'number', help: 'AdamW decoupled weight decay (not on norms)', default: 0.1, min: 0, max: 10 },
    clip: { type: 'number', help: 'global gradient-norm clip (0: off)', default: 1, min: 0 },
    'eval-every': { type: 'int', help: 'validation bits-per-byte every N steps (0: only at the end)', default: 100, min: 0 },
    'eval-bytes': { type: 'int', help: 'validation text per evaluation, bytes (0: all)', default: 262144, min: 0 },
    'save-every': { type: 'int', help: 'checkpoint every N steps (0: only at the end)', default: 100, min: 0 },
    'val-fraction': { type: 'number', help: 'share of documents held out for validation', default: 0.05, min: 0, max: 0.5 },
    format: { type: 'string', help: 'input format: auto (by extension), text or jsonl', default: 'auto', meta: 'FMT', choices: ['auto', 'text', 'jsonl'] },
    seed: { type: 'int', help: 'seed of the initialisation, data order and split', default: 0, min: 0, max: 2 ** 31 - 1 },
    bf16: { type: 'boolean', help: 'write the final weights as bf16 (checkpoints stay f32)' },
    model: { type: 'string', help: 'start from the weights (and config) of this model folder instead of a fresh initialisation', meta: 'DIR', aliases: ['init'] },
    qat: { type: 'string', help: 'quantization-aware training in this weight format (kmeans4, int4, int2, bin1, ternary, ...); also writes a packed model', meta: 'FORMAT' },
    'qat-refit-every': { type: 'int', help: 'refit the k-means centroids every N steps (0: fitted once at the start, then fixed)', default: 0, min: 0 },
    'qat-block': { type: 'int', help: 'QAT weights per scale block (reduced per weight to the largest power-of-two block that divides its row length)', default: 64, min: 1, max: 1 << 16 },
    'qat-out': { type: 'string', help: 'folder of the packed model written after QAT (default: <out>/packed)', meta: 'DIR' },
    resume: { type: 'boolean', help: 'continue the run in --out from its latest checkpoint' },
    overwrite: OVERWRITE_OPTION,
    json: { type: 'boolean', help: 'one JSON object per step / evaluation / checkpoint on stdout, no progress bar' },
  },
  details: [
    'Documents are split into words by the HAT splitter and packed into rows of --seq-bytes; a row',
    'holds several documents as separate segments (attention resets between them); a document that',
    'does not fit continues in the next row as a new segment. Each document ends with byte 192.',
    'Checkpoints are atomic; a run killed at any point continues with --resume and gives the same',
    'loss curve as an uninterrupted run (same backend and TFREE_THREADS). SIGINT stops after the',
    'current step with a checkpoint. At the end the model is evaluated on all of the held-out text;',
    '--resume of a finished run only re-exports and re-evaluates it.',
  ].join('\n'),
  async run(args) {
    const dataPaths = [opt<string | undefined>(args, 'data'), ...args.positionals].filter((p): p is string => p !== undefined && p !== '');
    if (dataPaths.length === 0) throw new UserError('missing --data PATH (see tfree train --help)');
    for (const p of dataPaths) checkInputPath(p, '--data', 'any');
    const out = opt<string | undefined>(args, 'out');
    if (out === undefined || out === '') throw new UserError('missing --out DIR (see tfree train --help)');
    const format = opt<string>(args, 'format');
    const json = opt<boolean | undefined>(args, 'json') === true;
    const resume = opt<boolean | undefined>(args, 'resume') === true;
    const steps = opt<number>(args, 'steps');
    const seed = opt<number>(args, 'seed');
    const seqBytes = opt<number>(args, 'seq-bytes');
    const settings: TrainSettings = {
      ...loopSettings(args, seed),
      steps,
      lr: opt<number>(args, 'lr'),
      warmup: opt<number | undefined>(args, 'warmup') ?? Math.min(100, Math.floor(steps / 10)),
    };
    checkOutputPath(out, '--out', 'dir');
    const init = opt<string | undefined>(args, 'model');
    const overwrite = opt<boolean | undefined>(args, 'overwrite') === true;
    if (resume && overwrite) throw new UserError('give --resume or --overwrite, not both');
    const ckDir = nodePath.join(out, 'checkpoints');
    const hasRun = fs.existsSync(nodePath.join(ckDir, 'latest.json'));
    if (resume && !hasRun) throw new UserError(`--resume: no checkpoint in ${ckDir}`);
    if (!resume && hasRun && !overwrite) throw new UserError(`${out} already holds a training run; pass --resume to continue it, --overwrite to start over, or choose another --out`);
    if (!resume && !overwrite) {
      if (init !== undefined && samePath(init, out)) throw new UserError(`--model and --out are the same folder (${out}); the trained model would replace the one it starts from: choose another --out, or pass --overwrite`);
      refuseModelOverwrite(out, false);
    }
    checkQatOut(args, out, init, resume || overwrite);
    removeIfLeftEmpty(out); // a run that ends before it saved anything (a closed stdout pipe at step 1) leaves no empty --out
    if (settings.warmup > steps) throw new UserError(`--warmup must be at most --steps (${steps}), got ${settings.warmup}`);

    const cfg = modelConfig(args);
    checkMemory(trainMemory(cfg, settings.batchRows, seqBytes), `training with --batch ${settings.batchRows} x --seq-bytes ${seqBytes} would`, settings.batchRows * seqBytes * cfg.encoder_config.hidden_size);
    let split;
    const docs = (() => {
      try {
        return readDocuments(dataPaths, { format: format as InputFormat });
      } catch (e) {
        if (e instanceof DataError) throw new UserError(e.message);
        throw e;
      }
    })();
    try {
      split = splitTrainVal(docs, { valFraction: opt<number>(args, 'val-fraction'), seed });
    } catch (e) {
      // the split fails only when the text is too short to give both sides some of it
      if (e instanceof DataError) throw new UserError(`${e.message}; --val-fraction 0 trains on all of it without validation`);
      throw e;
    }
    const maxWordSize = cfg.max_word_size;
    const splitter = (bytes: Uint8Array): number[] => splitBytes(bytes, { maxWordSize }).map((w) => w.length);
    const eos = cfg.eos_token_id;
    const train = new BytePacker(split.train, { seqBytes, split: splitter, seed, eos });
    const makeVal = split.val.length > 0 ? () => new BytePacker(split.val, { seqBytes, split: splitter, shuffle: false, eos }) : null;
    let model: HATModel;
    try {
      model = init !== undefined ? loadHATModel(init) : new HATModel(cfg, { seed });
    } catch (e) {
      if (e instanceof HATConfigError || e instanceof HATCheckpointError) throw new UserError(`--model: ${e.message}`);
      throw e;
    }
    if (init !== undefined) checkFinite(model.store, init);
    const exportDtype = opt<boolean | undefined>(args, 'bf16') === true ? 'BF16' : 'F32';
    let trainable = hatTrainable(model, exportDtype);
    const qatFormat = opt<string | undefined>(args, 'qat');
    let qat: QatSetup | null = null;
    if (qatFormat !== undefined) {
      qat = setupQat(model, trainable, qatFormat, { refitEvery: opt<number>(args, 'qat-refit-every'), block: opt<number>(args, 'qat-block'), seed });
      trainable = qat.trainable;
    }

    const run = {
      model: trainable.config,
      train: fingerprintDocuments(split.train),
      val: fingerprintDocuments(split.val),
      splitRule: split.rule,
      seqBytes,
      eos,
      ...(init !== undefined ? { init: nodePath.resolve(init) } : {}),
      ...(qat?.run ?? {}),
    };
    let stop: StopFlag | undefined;
    let bar: Progress | null = null;
    let lastVal: number | undefined;
    let bytesSeen = 0;
    let timeSeen = 0;
    const emit = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
    const trainer = new Trainer({
      model: trainable,
      settings,
      train,
      makeVal,
      outDir: out,
      run,
      events: {
        onStep(e: LogEntry) {
          if (json) emit({ event: 'step', ...e });
          if (e.valBpb !== undefined) lastVal = e.valBpb;
          bytesSeen += e.bytesPerSec > 0 ? e.bytes : 0;
          timeSeen += e.bytesPerSec > 0 ? e.bytes / e.bytesPerSec : 0;
          bar?.update(e.step, `loss ${fmt(e.loss)} bpb ${fmt(e.bpb)} val ${fmt(lastVal)} | ${kb(bytesSeen / Math.max(timeSeen, 1e-9))}/s`);
        },
        onEval(step, v) {
          if (json) emit({ event: 'eval', step, valBpb: v });
        },
        onCheckpoint(dir, step) {
          if (json) emit({ event: 'checkpoint', step, dir });
        },
        afterUpdate: () => qat?.handle.step(),
        shouldStop: () => stop?.requested === true,
      },
    });
    try {
      if (resume) trainer.resume();
    } catch (e) {
      if (e instanceof ResumeMismatchError || e instanceof CheckpointError) throw new UserError(`--resume: ${e.message}`);
      throw e;
    }
    if (!json) {
      const p = model.numParams();
      process.stderr.write(
        `HAT ${init ?? opt<string | undefined>(args, 'config') ?? opt<string>(args, 'preset')}: ${p.toLocaleString('en-US')} parameters; ` +
          `${split.train.length} training / ${split.val.length} validation documents (${split.rule}); ` +
          `${settings.batchRows * settings.accum} x ${seqBytes} bytes per step${resume ? `; resuming at step ${trainer.step}` : ''}\n`,
      );
      bar = new Progress({ total: steps, label: 'train', initial: trainer.step });
    }
    const t0 = performance.now();
    if (overwrite && !resume) fs.rmSync(ckDir, { recursive: true, force: true });
    await withInterrupt('train', 'after this step (a checkpoint follows)', (flag) => {
      stop = flag;
      return trainer.runAllYielding();
    });
    const last = trainer.log[trainer.log.length - 1];
    const finished = trainer.step >= steps;
    // the finished model on all of the held-out text (the periodic evaluations read --eval-bytes of it)
    const valBpbAll = finished && settings.evalBytes > 0 ? trainer.evaluate(0) : undefined;
    const qatOut = opt<string | undefined>(args, 'qat-out') ?? nodePath.join(out, 'packed');
    const valBpb = [...trainer.log].reverse().find((e) => e.valBpb !== undefined)?.valBpb;
    const line = `loss ${fmt(last?.loss)} bpb ${fmt(last?.bpb)} val ${fmt(valBpb)}`;
    // the packed model, under Ctrl-C as the other writes: stopped after a tensor, this run's files of it are removed (the f32 model in --out stays)
    let packedWeights: number | undefined;
    let packStopped = false;
    if (finished && qat !== null) {
      const handle = qat.handle;
      const r = await runWriteJob('train', qatOut, (flag) => writeQatPackedJob(model, handle, qatOut, exportDtype, flag), () => bar?.stop(line));
      if (r === INTERRUPTED) packStopped = true;
      else packedWeights = r;
    }
    const complete = finished && !packStopped;
    const summary = {
      event: complete ? 'done' : 'stopped',
      step: trainer.step,
      bpb: last?.bpb,
      valBpb,
      valBpbAll,
      valBytes: split.val.reduce((a, d) => a + d.bytes.length, 0),
      seconds: (performance.now() - t0) / 1e3,
      trainSeconds: last?.time,
      out,
      ...(packedWeights !== undefined ? { qat: qat?.handle.format.name, packedWeights, packedOut: qatOut } : {}),
    };
    if (json) emit(summary);
    else {
      if (complete) bar?.finish(line);
      else if (!packStopped) bar?.stop(line);
      process.stderr.write(
        packStopped
          ? `stopped while writing the packed model; the f32 model is in ${out}; --resume writes the packed model to ${qatOut}\n`
          : complete
          ? `done in ${formatDuration(summary.seconds)}: train bpb ${fmt(summary.bpb)}, validation bpb ${fmt(summary.valBpb)}${valBpbAll !== undefined ? ` (all ${summary.valBytes} held-out bytes: ${fmt(valBpbAll)})` : ''}; model in ${out}${packedWeights !== undefined ? `; packed ${qat?.handle.format.name} model (${packedWeights} weights) in ${qatOut}` : ''}\n`
          : `stopped at step ${trainer.step}; continue with --resume\n`,
      );
    }
    return complete ? 0 : EXIT_INTERRUPTED;
  },
};
