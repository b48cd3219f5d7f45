import { readFileSync } from 'node:fs';
import type { CommandSpec } from '../args.js';
import { num, str } from '../args.js';
import { UserError } from '../errors.js';
import { OVERWRITE_OPTION, checkInputPath, checkOutputPath, refuseInputAsOutput, refuseModelOverwrite } from '../resources.js';
import { calibrateCheckpoint, checkSelection, pruneCheckpointJob } from '../../compress/index.js';
import { asUserErrors, patternList, runConversion } from './quantize.js';
import { EXIT_INTERRUPTED } from '../interrupt.js';
import { checkPlanNames, readPlanFile } from './plan_file.js';

export const pruneCommand: CommandSpec = {
  name: 'prune',
  summary: 'prune the weight matrices of a checkpoint to a sparsity (magnitude per matrix, or Wanda)',
  usage: 'tfree prune --sparsity S | --plan FILE --method magnitude|wanda --model DIR --out DIR [--calib FILE] [--include P,..] [--exclude P,..] [--json]',
  options: {
    sparsity: { type: 'number', help: 'fraction of each selected matrix to zero, in [0, 1]', meta: 'S', min: 0, max: 1 },
    method: { type: 'string', help: 'magnitude (|w| per matrix) or wanda (|w| x input norm, per output row)', default: 'magnitude', meta: 'M', choices: ['magnitude', 'wanda'] },
    model: { aliases: ['in'], type: 'string', help: 'input checkpoint (folder with config.json + safetensors, or a .safetensors file; wanda: a folder)', meta: 'DIR' },
    out: { type: 'string', help: 'output folder', meta: 'DIR' },
    calib: { type: 'string', help: 'wanda: calibration text file (a HAT splits it into words; a Llama takes bytes as token ids)', meta: 'FILE' },
    'calib-tokens': { type: 'int', help: 'wanda: calibration tokens to run', default: 2048, meta: 'N', min: 1, max: 1 << 24 },
    include: { type: 'string', help: 'only 2-D weights matching these comma-separated globs or /regex/', meta: 'P,..' },
    exclude: { type: 'string', help: 'skip weights matching these (default: embeddings and output head)', meta: 'P,..' },
    plan: { type: 'string', help: 'per-weight sparsity from a sparsity plan (tfree eval plan): {"tfree_plan":1,"kind":"sparsity","components":{NAME:{"sparsity"}}}', meta: 'FILE' },
    json: { type: 'boolean', help: 'one JSON object per pruned tensor and a summary object' },
    overwrite: OVERWRITE_OPTION,
  },
  details: 'Wanda needs a model forward: it builds the model from config.json (a HAT, or model_type "llama") and runs --calib text through it.',
  async run(args) {
    // a folder or a single .safetensors file, as tfree quantize (wanda builds the model from the folder's config.json)
    checkInputPath(str(args, 'model'), '--model', args.options.method === 'wanda' ? 'dir' : 'any');
    checkOutputPath(str(args, 'out'), '--out', 'dir');
    refuseInputAsOutput(str(args, 'out'), '--out', [str(args, 'model')]);
    refuseModelOverwrite(str(args, 'out'), args.options.overwrite === true);
    const planPath = typeof args.options.plan === 'string' ? args.options.plan : undefined;
    if (planPath !== undefined && args.options.sparsity !== undefined) throw new UserError('give --sparsity or --plan, not both');
    const plan = planPath !== undefined ? readPlanFile(planPath, 'sparsity') : undefined;
    if (plan !== undefined && planPath !== undefined) checkPlanNames(plan, str(args, 'model'), planPath);
    const sparsityFor = plan ? (n: string): number | undefined => plan.components.get(n)?.sparsity : undefined;
    const sparsity = plan ? 0 : num(args, 'sparsity');
    if (!(sparsity >= 0 && sparsity <= 1)) throw new UserError(`--sparsity must be in [0, 1], got ${sparsity}`);
    const method = String(args.options.method) as 'magnitude' | 'wanda'; // one of its choices (the parser checks)
    const inPath = str(args, 'model');
    const filter = { include: patternList(args, 'include'), exclude: patternList(args, 'exclude') };
    let inputNorms: Map<string, Float32Array> | undefined;
    if (method === 'wanda') {
      if (plan === undefined) asUserErrors(() => checkSelection(inPath, filter)); // before the calibration
      const calib = args.options.calib;
      if (typeof calib !== 'string') throw new UserError('--method wanda needs --calib FILE (calibration text)');
      let text: Uint8Array;
      try {
        text = readFileSync(calib);
      } catch (e) {
        throw new UserError(`cannot read --calib ${calib}: ${(e as Error).message}`);
      }
      inputNorms = asUserErrors(() => calibrateCheckpoint(inPath, text, { ...filter, tokens: Number(args.options['calib-tokens']) }));
    }
    const json = args.options.json === true;
    const rep = await runConversion('prune', str(args, 'out'), json, (stop, onTensor) =>
      pruneCheckpointJob(inPath, str(args, 'out'), {
        sparsity,
        sparsityFor,
        method,
        inputNorms,
        ...filter,
        ...(plan ? { exclude: filter.exclude ?? [] } : {}),
        onTensor,
      }, stop),
    );
    if (rep === undefined) return EXIT_INTERRUPTED;
    if (json) {
      for (const t of rep.changed) process.stdout.write(`${JSON.stringify({ tensor: t.name, shape: t.shape, method, sparsity: sparsityFor ? sparsityFor(t.name) : sparsity, mse: t.mse })}\n`);
      process.stdout.write(`${JSON.stringify({ out: rep.outFile, method, sparsity, pruned: rep.changed.length, tensors: rep.tensors, copied: rep.copied })}\n`);
      return;
    }
    process.stdout.write(`${method}: pruned ${rep.changed.length} of ${rep.tensors} tensors to ${plan ? `the sparsities of ${planPath}` : `sparsity ${sparsity}`}\nwrote ${rep.outFile}${rep.copied.length > 0 ? ` (+ ${rep.copied.join(', ')})` : ''}\n`);
  },
};
