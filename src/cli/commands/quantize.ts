import type { CommandSpec, ParsedArgs } from '../args.js';
import { str } from '../args.js';
import { UserError } from '../errors.js';
import { OVERWRITE_OPTION, checkInputPath, checkOutputPath, refuseInputAsOutput, refuseModelOverwrite } from '../resources.js';
import { Progress } from '../progress.js';
import { EXIT_INTERRUPTED, INTERRUPTED, runWriteJob } from '../interrupt.js';
import { SafetensorsError, type StopFlag } from '../../io/index.js';
import { FORMAT_NAMES, FormatError, blockNote, parseFormat, quantizeCheckpointJob, reportBitsPerWeight, type ConvertOptions, type ConvertReport, type ScaleDtype } from '../../compress/index.js';
import { checkPlanNames, planFormats, readPlanFile } from './plan_file.js';

/** Comma-separated pattern list option (undefined when not given). */
export function patternList(a: ParsedArgs, name: string): string[] | undefined {
  const v = a.options[name];
  if (v === undefined) return undefined;
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Runs a checkpoint conversion, turning library errors about the user's input into UserErrors. */
export function asUserErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toUserError(e);
  }
}

/** The UserError for a library error a user can act on (else `e` itself). */
function toUserError(e: unknown): unknown {
  if (e instanceof SafetensorsError || e instanceof FormatError) return new UserError(e.message);
  if (e instanceof Error && (['PackedCheckpointError', 'CalibrationError', 'PlanError', 'ConvertError', 'NonFiniteWeightError'].includes(e.name) || /^(sparsity must|wanda:)/.test(e.message))) return new UserError(e.message);
  if (e instanceof Error && 'code' in e && typeof e.code === 'string' && /^E(NOENT|ACCES|ISDIR|NOTDIR|EXIST)$/.test(e.code)) return new UserError(e.message);
  return e;
}

/**
 * Runs the job of quantize / prune (transform, then write) with runWriteJob and its progress bar
 * (one per tensor, on stderr; off with --json): Ctrl-C during the write stops after the tensor and
 * removes this run's files (undefined: exit 130). `makeJob` passes `onTensor` to the job's options.
 */
export async function runConversion(
  label: string,
  out: string,
  json: boolean,
  makeJob: (stop: StopFlag, onTensor: NonNullable<ConvertOptions['onTensor']>) => Generator<void, ConvertReport, void>,
): Promise<ConvertReport | undefined> {
  let bar: Progress | undefined;
  const onTensor = (i: number, n: number, name: string): void => {
    bar ??= new Progress({ total: n, label, enabled: !json });
    bar.update(i, name);
  };
  try {
    const r = await runWriteJob(label, out, (stop) => makeJob(stop, onTensor), () => bar?.stop());
    if (r === INTERRUPTED) return undefined;
    bar?.finish();
    return r;
  } catch (e) {
    throw toUserError(e);
  }
}

export const quantizeCommand: CommandSpec = {
  name: 'quantize',
  summary: 'quantize a checkpoint folder to a packed format (int8/4/3/2, kmeans1-4/8, bin1, ternary)',
  usage: 'tfree quantize --format FORMAT | --plan FILE --model DIR --out DIR [--block 64] [--scale bf16|f16] [--include P,..] [--exclude P,..] [--json]',
  options: {
    format: { type: 'string', help: `weight format: ${FORMAT_NAMES.join(', ')} (optionally :absmax or :absmean; int also :meanstep)`, meta: 'FORMAT' },
    model: { aliases: ['in'], type: 'string', help: 'input checkpoint (folder with config.json + safetensors, or a .safetensors file)', meta: 'DIR' },
    out: { type: 'string', help: 'output folder (model.safetensors + copied config/tokenizer files)', meta: 'DIR' },
    block: { type: 'int', help: 'weights per scale block along the input dimension', default: 64, meta: 'N', min: 1, max: 1 << 16 },
    scale: { type: 'string', help: 'scale storage: bf16 or f16', default: 'bf16', meta: 'DTYPE', choices: ['bf16', 'f16'] },
    include: { type: 'string', help: 'only 2-D weights matching these comma-separated globs (* = any run) or /regex/', meta: 'P,..' },
    exclude: { type: 'string', help: 'skip weights matching these (default: *embed*,*lm_head*,output.weight,*.output.weight,*wte*,*wpe*)', meta: 'P,..' },
    seed: { type: 'string', help: 'k-means seed prefix (default: the weight name)', meta: 'S' },
    plan: { type: 'string', help: 'per-weight formats from a precision plan (tfree eval plan): {"tfree_plan":1,"kind":"precision","components":{NAME:{"format","block"?}}}', meta: 'FILE' },
    json: { type: 'boolean', help: 'print one JSON object per quantized tensor and a summary object' },
    overwrite: OVERWRITE_OPTION,
  },
  details: 'Every 2-D float tensor named *.weight that matches the patterns is quantized; other tensors are copied unchanged.\nWhere the block size does not divide a row length, that tensor gets the largest power-of-two block below it that does (a note says so).',
  async run(args) {
    const sc = String(args.options.scale).toUpperCase();
    if (sc !== 'BF16' && sc !== 'F16') throw new UserError(`--scale must be bf16 or f16, got "${String(args.options.scale)}"`);
    checkInputPath(str(args, 'model'), '--model', 'any');
    checkOutputPath(str(args, 'out'), '--out', 'dir');
    refuseInputAsOutput(str(args, 'out'), '--out', [str(args, 'model')]);
    refuseModelOverwrite(str(args, 'out'), args.options.overwrite === true);
    const planPath = args.options.plan;
    if (typeof planPath === 'string') {
      if (args.options.format !== undefined) throw new UserError('give --format or --plan, not both');
      const plan = readPlanFile(planPath, 'precision');
      checkPlanNames(plan, str(args, 'model'), planPath);
      const formatFor = planFormats(plan, planPath, { blockSize: Number(args.options.block), scaleDtype: sc as ScaleDtype });
      const json = args.options.json === true;
      const rep = await runConversion('quantize', str(args, 'out'), json, (stop, onTensor) =>
        quantizeCheckpointJob(str(args, 'model'), str(args, 'out'), parseFormat('int8'), {
          include: patternList(args, 'include'),
          exclude: patternList(args, 'exclude') ?? [],
          seed: typeof args.options.seed === 'string' ? args.options.seed : undefined,
          formatFor,
          onTensor,
        }, stop),
      );
      if (rep === undefined) return EXIT_INTERRUPTED;
      const planNote = blockNote(rep, formatFor);
      if (planNote !== null) process.stderr.write(`${planNote}\n`);
      const numel = rep.changed.reduce((s, t) => s + t.shape[0] * t.shape[1], 0);
      const bpw = numel === 0 ? 0 : (8 * rep.changed.reduce((s, t) => s + t.bytesOut, 0)) / numel;
      if (json) {
        for (const t of rep.changed) process.stdout.write(`${JSON.stringify({ tensor: t.name, shape: t.shape, format: formatFor(t.name)?.name, mse: t.mse, bytes: t.bytesOut })}\n`);
        process.stdout.write(`${JSON.stringify({ out: rep.outFile, plan: planPath, quantized: rep.changed.length, tensors: rep.tensors, bits_per_weight: bpw, bytes_in: rep.bytesIn, bytes_out: rep.bytesOut, copied: rep.copied })}\n`);
        return;
      }
      process.stdout.write(`plan ${planPath}: quantized ${rep.changed.length} of ${rep.tensors} tensors at ${bpw.toFixed(3)} bits/weight; ${(rep.bytesIn / 2 ** 20).toFixed(2)} MiB -> ${(rep.bytesOut / 2 ** 20).toFixed(2)} MiB\nwrote ${rep.outFile}\n`);
      return;
    }
    const format = asUserErrors(() => parseFormat(str(args, 'format'), { blockSize: Number(args.options.block), scaleDtype: sc as ScaleDtype }));
    const json = args.options.json === true;
    const rep = await runConversion('quantize', str(args, 'out'), json, (stop, onTensor) =>
      quantizeCheckpointJob(str(args, 'model'), str(args, 'out'), format, {
        include: patternList(args, 'include'),
        exclude: patternList(args, 'exclude'),
        seed: typeof args.options.seed === 'string' ? args.options.seed : undefined,
        onTensor,
      }, stop),
    );
    if (rep === undefined) return EXIT_INTERRUPTED;
    const note = blockNote(rep, format);
    if (note !== null) process.stderr.write(`${note}\n`);
    const bpw = reportBitsPerWeight(rep, format);
    if (json) {
      for (const t of rep.changed) process.stdout.write(`${JSON.stringify({ tensor: t.name, shape: t.shape, format: format.name, block: t.format?.blockSize, mse: t.mse, bytes: t.bytesOut })}\n`);
      process.stdout.write(`${JSON.stringify({ out: rep.outFile, format: format.name, quantized: rep.changed.length, tensors: rep.tensors, bits_per_weight: bpw, bytes_in: rep.bytesIn, bytes_out: rep.bytesOut, copied: rep.copied })}\n`);
      return;
    }
    const meanMse = rep.changed.reduce((s, t) => s + t.mse, 0) / Math.max(rep.changed.length, 1);
    process.stdout.write(`${format.name}: quantized ${rep.changed.length} of ${rep.tensors} tensors at ${bpw.toFixed(3)} bits/weight (mean MSE ${meanMse.toExponential(3)}); ${(rep.bytesIn / 2 ** 20).toFixed(2)} MiB -> ${(rep.bytesOut / 2 ** 20).toFixed(2)} MiB\nwrote ${rep.outFile}${rep.copied.length > 0 ? ` (+ ${rep.copied.join(', ')})` : ''}\n`);
  },
};
