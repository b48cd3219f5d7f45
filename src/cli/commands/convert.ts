/**
 * `tfree convert llama-to-hat`: turns a Hugging Face Llama checkpoint into a HAT (backbone =
 * the Llama's blocks, bit for bit; embedding, final norm and head dropped; byte modules from a
 * preset, seeded), then optionally trains it in two stages with the trainer of `tfree train`:
 * stage 1 with the backbone frozen, stage 2 with everything (steps and learning rate per stage).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type { CommandSpec, ParsedArgs } from '../args.js';
import { UserError } from '../errors.js';
import { Progress, formatDuration } from '../progress.js';
import { BytePacker, DataError, fingerprintDocuments, readDocuments, splitTrainVal, runYielding, writeFileAtomic, type InputFormat, type StopFlag } from '../../io/index.js';
import { CheckpointError, ResumeMismatchError, type LogEntry } from '../../train/index.js';
import { EXIT_INTERRUPTED, withInterrupt } from '../interrupt.js';
import { OVERWRITE_OPTION, checkInputPath, checkOutputPath, refuseInputAsOutput, refuseModelOverwrite } from '../resources.js';
import { saveHATModel } from '../../models/hat/checkpoint.js';
import { splitBytes } from '../../models/hat/splitter.js';
import { ConversionError, convertLlamaToHAT, type ByteModuleSizes, type Conversion } from '../../convert/llama_to_hat.js';
import { stagesJob, stageDir, type Stage } from '../../convert/staged.js';
import { loopSettings } from './train.js';
import { hatTrainable } from '../../models/hat/train.js';

function opt<T extends string | number | boolean | undefined>(a: ParsedArgs, k: string): T {
  return a.options[k] as T;
}

const fmt = (x: number | undefined, d = 3): string => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

type Dtype = 'F32' | 'BF16' | 'F16';

/** --dtype auto: the source dtype when all copied tensors share one, else F32. */
function outDtype(choice: string, conv: Conversion): Dtype {
  switch (choice) {
    case 'f32':
      return 'F32';
    case 'bf16':
      return 'BF16';
    case 'f16':
      return 'F16';
    case 'auto':
      return conv.sourceDtypes.length === 1 && ['F32', 'BF16', 'F16'].includes(conv.sourceDtypes[0]) ? (conv.sourceDtypes[0] as Dtype) : 'F32';
    default:
      throw new UserError(`--dtype must be auto, f32, bf16 or f16, got "${choice}"`);
  }
}

const BYTE_OPTIONS: [string, keyof ByteModuleSizes][] = [
  ['byte-hidden', 'byteHidden'],
  ['byte-heads', 'byteHeads'],
  ['byte-kv-heads', 'byteKvHeads'],
  ['byte-intermediate', 'byteIntermediate'],
  ['encoder-layers', 'encoderLayers'],
  ['decoder-layers', 'decoderLayers'],
  ['window', 'slidingWindow'],
];

async function runLlamaToHat(args: ParsedArgs): Promise<number> {
  const input = opt<string | undefined>(args, 'model');
  if (input === undefined || input === '') throw new UserError('missing --model DIR (a Hugging Face Llama checkpoint folder; see tfree convert llama-to-hat --help)');
  checkInputPath(input, '--model', 'dir');
  const out = opt<string | undefined>(args, 'out');
  if (out === undefined || out === '') throw new UserError('missing --out DIR (see tfree convert llama-to-hat --help)');
  checkOutputPath(out, '--out', 'dir');
  refuseInputAsOutput(out, '--out', [input]);
  const dataPaths = [opt<string | undefined>(args, 'data'), ...args.positionals].filter((p): p is string => p !== undefined && p !== '');
  // before the conversion (minutes for a large Llama), as tfree train does
  for (const p of dataPaths) checkInputPath(p, '--data', 'any');
  const json = opt<boolean | undefined>(args, 'json') === true;
  const resume = opt<boolean | undefined>(args, 'resume') === true;
  const seed = opt<number>(args, 'seed');
  const stepsGiven = [opt<number | undefined>(args, 'stage1-steps'), opt<number | undefined>(args, 'stage2-steps')];
  for (const [i, s] of stepsGiven.entries()) {
    if (s !== undefined && (!Number.isInteger(s) || s < 0)) throw new UserError(`--stage${i + 1}-steps must be an integer >= 0, got ${s}`);
  }
  if (dataPaths.length === 0 && stepsGiven.some((s) => s !== undefined && s > 0)) throw new UserError('training stages need text: give --data PATH (or set --stage1-steps 0 --stage2-steps 0)');
  const defSteps = dataPaths.length > 0 ? 200 : 0;
  const stages: Stage[] = [
    { steps: stepsGiven[0] ?? defSteps, lr: opt<number>(args, 'stage1-lr'), warmup: opt<number | undefined>(args, 'stage1-warmup'), freeze: [opt<string>(args, 'freeze')] },
    { steps: stepsGiven[1] ?? defSteps, lr: opt<number>(args, 'stage2-lr'), warmup: opt<number | undefined>(args, 'stage2-warmup') },
  ];
  for (const [i, st] of stages.entries()) {
    if (!(st.lr > 0)) throw new UserError(`--stage${i + 1}-lr must be positive, got ${st.lr}`);
    if (st.warmup !== undefined && (!Number.isInteger(st.warmup) || st.warmup < 0 || st.warmup > st.steps)) {
      throw new UserError(`--stage${i + 1}-warmup must be an integer in [0, ${st.steps}], got ${st.warmup}`);
    }
  }
  const training = stages.some((st) => st.steps > 0);
  if (opt<string>(args, 'dtype') === 'f16' && training) {
    throw new UserError('--dtype f16 is only for a conversion without training (the stages train and write f32 or bf16 weights): give --dtype f32 or bf16, or no --data');
  }
  const hasRun = [0, 1].some((k) => fs.existsSync(nodePath.join(stageDir(out, k), 'checkpoints', 'latest.json')));
  if (resume && !hasRun) throw new UserError(`--resume: no stage checkpoint in ${out}`);
  // without stages, --resume would convert again and write the untrained model over the trained one
  if (resume && !training) throw new UserError(`--resume continues the training stages of ${out}: give the run's --data (and its stage options) again`);
  if (!resume && hasRun) throw new UserError(`${out} already holds a conversion run; pass --resume to continue it, or choose another --out`);
  if (!resume) refuseModelOverwrite(out, opt<boolean | undefined>(args, 'overwrite') === true);

  const bytes: Partial<ByteModuleSizes> = {};
  for (const [flag, key] of BYTE_OPTIONS) {
    const v = opt<number | undefined>(args, flag);
    if (v !== undefined) bytes[key] = v;
  }
  const t0 = performance.now();
  let conv: Conversion;
  try {
    conv = convertLlamaToHAT(input, { preset: opt<string>(args, 'preset'), bytes, seed });
  } catch (e) {
    if (e instanceof ConversionError) throw new UserError(e.message);
    throw e;
  }
  const model = conv.model;
  const dtype = outDtype(opt<string>(args, 'dtype'), conv);
  const emit = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
  const report = {
    source: input,
    sourceDtypes: conv.sourceDtypes,
    copied: conv.copied.length,
    dropped: conv.dropped,
    initialised: conv.initialised.length,
    parameters: model.numParams(),
    backboneParameters: conv.copied.reduce((a, n) => a + model.store.get(n).size, 0),
    preset: opt<string>(args, 'preset'),
    seed,
    dtype,
  };
  if (json) emit({ event: 'converted', ...report, seconds: (performance.now() - t0) / 1e3 });
  else {
    process.stderr.write(
      `converted ${input}: ${conv.copied.length} backbone tensors copied (${conv.sourceDtypes.join(', ')}, ${report.backboneParameters.toLocaleString('en-US')} parameters), ` +
        `dropped ${conv.dropped.join(', ') || 'nothing'}; ${conv.initialised.length} byte-module tensors initialised (seed ${seed}); ${report.parameters.toLocaleString('en-US')} parameters in all\n`,
    );
  }
  fs.mkdirSync(out, { recursive: true });
  const writeReport = (): void => writeFileAtomic(nodePath.join(out, 'conversion.json'), `${JSON.stringify({ ...report, stages }, null, 2)}\n`);
  // a resumed run's settings are checked against its checkpoints by the stages: a refused --resume
  // (another --seed, --batch, ...) must leave the run's record as it was
  if (!resume) writeReport();
  const active = stages.map((s, k) => ({ s, k })).filter(({ s }) => s.steps > 0);
  if (active.length === 0) {
    saveHATModel(out, model, { dtype });
    if (json) emit({ event: 'done', out, seconds: (performance.now() - t0) / 1e3 });
    else process.stderr.write(`no training stages; HAT model (${dtype}) written to ${out}\n`);
    return 0;
  }

  const format = opt<string>(args, 'format');
  const seqBytes = opt<number>(args, 'seq-bytes');
  if (!Number.isInteger(seqBytes) || seqBytes < 2) throw new UserError(`--seq-bytes must be an integer >= 2, got ${seqBytes}`);
  let split;
  try {
    split = splitTrainVal(readDocuments(dataPaths, { format: format as InputFormat }), { valFraction: opt<number>(args, 'val-fraction'), seed });
  } catch (e) {
    if (e instanceof DataError) throw new UserError(e.message);
    throw e;
  }
  const cfg = model.config;
  const splitter = (b: Uint8Array): number[] => splitBytes(b, { maxWordSize: cfg.max_word_size }).map((w) => w.length);
  const eos = cfg.eos_token_id;
  const val = split.val;
  const makeVal = val.length > 0 ? () => new BytePacker(val, { seqBytes, split: splitter, shuffle: false, eos }) : null;
  const run = { model: cfg, source: input, train: fingerprintDocuments(split.train), val: fingerprintDocuments(split.val), splitRule: split.rule, seqBytes, eos };

  let stop: StopFlag | undefined;
  let bar: Progress | null = null;
  let lastVal: number | undefined;
  let results;
  try {
    results = await withInterrupt('convert llama-to-hat', 'after this step (a checkpoint follows)', (flag) => {
      stop = flag;
      return runYielding(stagesJob({
      model: hatTrainable(model, dtype === 'F16' ? 'F32' : dtype),
      stages: active.map(({ s }) => s),
      settings: loopSettings(args, seed),
      makeTrain: (k) => new BytePacker(split.train, { seqBytes, split: splitter, seed: seed + active[k].k, eos }),
      makeVal,
      outDir: out,
      run,
      resume,
      onStageStart(k, trainer, frozen) {
        const { s, k: stageNo } = active[k];
        lastVal = undefined;
        if (json) emit({ event: 'stage', stage: stageNo + 1, steps: s.steps, lr: s.lr, frozen, startStep: trainer.step });
        else {
          process.stderr.write(`stage ${stageNo + 1}: ${s.steps} steps at lr ${s.lr}${frozen > 0 ? `, ${frozen} tensors frozen (${(s.freeze ?? []).join(', ')})` : ', all parameters'}${trainer.step > 0 ? `; resuming at step ${trainer.step}` : ''}\n`);
          bar = new Progress({ total: s.steps, label: `stage ${stageNo + 1}`, initial: trainer.step });
        }
      },
      events: (k) => ({
        onStep(e: LogEntry) {
          if (json) emit({ event: 'step', stage: active[k].k + 1, ...e });
          if (e.valBpb !== undefined) lastVal = e.valBpb;
          const line = `loss ${fmt(e.loss)} bpb ${fmt(e.bpb)} val ${fmt(lastVal)}`;
          if (e.step === active[k].s.steps) bar?.finish(line);
          else bar?.update(e.step, line);
        },
        onEval(step, v) {
          if (json) emit({ event: 'eval', stage: active[k].k + 1, step, valBpb: v });
        },
        shouldStop: () => stop?.requested === true,
      }),
    }));
    });
  } catch (e) {
    if (e instanceof ResumeMismatchError || e instanceof CheckpointError) throw new UserError(`--resume: ${e.message}`);
    throw e;
  }
  if (resume) writeReport();
  const finished = results.length === active.length && results.every((r) => r.finished);
  const summary = {
    event: finished ? 'done' : 'stopped',
    stages: results.map((r, k) => {
      const last = r.log[r.log.length - 1];
      return { stage: active[k].k + 1, steps: last?.step ?? 0, bpb: last?.bpb, valBpb: [...r.log].reverse().find((e) => e.valBpb !== undefined)?.valBpb, dir: r.dir };
    }),
    seconds: (performance.now() - t0) / 1e3,
    out,
  };
  if (json) emit(summary);
  else {
    process.stderr.write(
      finished
        ? `done in ${formatDuration(summary.seconds)}: ${summary.stages.map((s) => `stage ${s.stage} bpb ${fmt(s.bpb)} val ${fmt(s.valBpb)}`).join('; ')}; HAT model (${dtype === 'F16' ? 'F32' : dtype}) in ${out}\n`
        : `stopped; continue with --resume\n`,
    );
  }
  return finished ? 0 : EXIT_INTERRUPTED;
}

export const convertCommand: CommandSpec = {
  name: 'convert',
  summary: 'convert a Hugging Face Llama checkpoint into a HAT (llama-to-hat), with staged training',
  usage:
    'tfree convert llama-to-hat --model LLAMA_DIR --out HAT_DIR [--preset tiny|small] [--data PATH ...] [--stage1-steps N --stage1-lr X --stage2-steps N --stage2-lr Y] [--resume] [--json]',
  options: {
    model: { type: 'string', help: 'Hugging Face Llama checkpoint folder (config.json + model.safetensors or shards with index)', meta: 'DIR', aliases: ['in'] },
    out: { type: 'string', help: 'output folder: the HAT model (config.json + safetensors), conversion.json, stage1/ and stage2/ runs', meta: 'DIR' },
    preset: { type: 'string', help: 'byte encoder/decoder sizes of this HAT preset: tiny or small', default: 'tiny', meta: 'NAME' },
    'byte-hidden': { type: 'int', help: 'override: encoder/decoder width (H_enc = H_dec)', min: 1, max: 65536 },
    'byte-heads': { type: 'int', help: 'override: encoder/decoder (and cross-attention) heads', min: 1, max: 1024 },
    'byte-kv-heads': { type: 'int', help: 'override: their key/value heads', min: 1, max: 1024 },
    'byte-intermediate': { type: 'int', help: 'override: encoder/decoder FFN size', min: 1, max: 1 << 20 },
    'encoder-layers': { type: 'int', help: 'override: encoder layers', min: 0, max: 1024 },
    'decoder-layers': { type: 'int', help: 'override: decoder layers', min: 1, max: 1024 },
    window: { type: 'int', help: 'override: encoder/decoder sliding window (bytes)', min: 1 },
    seed: { type: 'int', help: 'seed of the byte modules\' initialisation, the data order and split', default: 0, min: 0, max: 2 ** 31 - 1 },
    dtype: { type: 'string', help: 'dtype of the written model: auto (the source dtype), f32, bf16 or f16 (f16 only without training)', default: 'auto', meta: 'D', choices: ['auto', 'f32', 'bf16', 'f16'] },
    data: { type: 'string', help: 'training text: file, folder or .jsonl (more paths may follow as positionals)', meta: 'PATH' },
    format: { type: 'string', help: 'input format: auto (by extension), text or jsonl', default: 'auto', meta: 'FMT', choices: ['auto', 'text', 'jsonl'] },
    'val-fraction': { type: 'number', help: 'share of documents held out for validation', default: 0.05, min: 0, max: 0.5 },
    'stage1-steps': { type: 'int', help: 'stage 1 (backbone frozen) steps (default 200 with --data, else 0)', min: 0 },
    'stage1-lr': { type: 'number', help: 'stage 1 peak learning rate', default: 2e-3, above: 0, max: 10 },
    'stage1-warmup': { type: 'int', help: 'stage 1 warmup steps (default min(100, steps/10))', min: 0 },
    'stage2-steps': { type: 'int', help: 'stage 2 (all parameters) steps (default 200 with --data, else 0)', min: 0 },
    'stage2-lr': { type: 'number', help: 'stage 2 peak learning rate', default: 3e-4, above: 0, max: 10 },
    'stage2-warmup': { type: 'int', help: 'stage 2 warmup steps (default min(100, steps/10))', min: 0 },
    freeze: { type: 'string', help: 'parameter prefix frozen in stage 1', default: 'backbone', meta: 'PREFIX' },
    batch: { type: 'int', help: 'rows per micro-batch', default: 8, min: 1, max: 1 << 16 },
    'seq-bytes': { type: 'int', help: 'bytes per row', default: 1024, min: 2, max: 1 << 24 },
    accum: { type: 'int', help: 'micro-batches per optimizer step', default: 1, min: 1, max: 1 << 16 },
    'min-lr-ratio': { type: 'number', help: 'cosine floor as a fraction of each stage\'s lr', default: 0.1, min: 0, max: 1 },
    'weight-decay': { type: 'number', help: 'AdamW decoupled weight decay (not on norms)', default: 0.1, min: 0, max: 10 },
    clip: { type: 'number', help: 'global gradient-norm clip (0: off)', default: 1, min: 0 },
    'eval-every': { type: 'int', help: 'validation bits-per-byte every N steps (0: only at each stage\'s end)', default: 100, min: 0 },
    'eval-bytes': { type: 'int', help: 'validation text per evaluation, bytes (0: all)', default: 262144, min: 0 },
    'save-every': { type: 'int', help: 'checkpoint every N steps (0: only at each stage\'s end)', default: 100, min: 0 },
    resume: { type: 'boolean', help: 'continue the run in --out from its stage checkpoints' },
    overwrite: OVERWRITE_OPTION,
    json: { type: 'boolean', help: 'one JSON object per event on stdout, no progress bar' },
  },
  details: [
    'llama-to-hat: the HAT backbone takes the Llama\'s shape (hidden, layers, heads, kv heads, FFN, rms eps,',
    'rope theta and scaling) and its model.layers.{i}.* tensors bit for bit as backbone.layers.{i}.*;',
    'model.embed_tokens, model.norm and lm_head are dropped; encoder, connectors and decoder are new',
    '(preset sizes, N(0, 0.02^2) with --seed). With --data the model is then trained: stage 1 with the',
    '--freeze prefix frozen (the backbone keeps its exact values), stage 2 with all parameters; each stage',
    'has its own warmup + cosine schedule and fresh AdamW moments (same loop as tfree train). Stage runs',
    'live in HAT_DIR/stage1, HAT_DIR/stage2; the final model in HAT_DIR is loadable by tfree generate --model.',
  ].join('\n'),
  subcommands: {
    'llama-to-hat': {
      summary: 'a Hugging Face Llama becomes the backbone of a new HAT; optional staged training',
      usage: 'tfree convert llama-to-hat --model LLAMA_DIR --out HAT_DIR [--preset tiny|small] [--data PATH ...] [--stage1-steps N ...] [--resume] [--json]',
      positionals: 'PATH...',
      run: (a) => runLlamaToHat(a),
    },
  },
};
