/**
 * `tfree eval dtm | sweep | plan`: divergent token metrics of a compressed HAT against its base,
 * the per-component sensitivity sweep, and FDT-guided compression plans with baselines
 * (src/eval; docs/eval.md).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type { OptionSpec, ParsedArgs } from '../args.js';
import { UserError } from '../errors.js';
import { configDifferences, defaultModelDir, loadHATForCli, type LoadedHAT } from '../hat_model.js';
import { Progress } from '../progress.js';
import type { EvalSubcommand } from './eval.js';
import { readDocuments } from './eval.js';
import { asUserErrors, patternList } from './quantize.js';
import { runYielding, writeFileAtomic } from '../../io/index.js';
import { EXIT_INTERRUPTED, withInterrupt } from '../interrupt.js';
import { checkInputPath, checkOutputPath, refuseInputAsOutput } from '../resources.js';
import { DtmEvaluator, parsePrompts, type DtmReport } from '../../eval/hat_dtm.js';
import { listComponents, type Component } from '../../eval/components.js';
import { isPackedModelDir, parseFormat } from '../../compress/index.js';
import { DEMO_PROMPTS, DEMO_TEXT, compareQuantized, compareTable } from '../../eval/compare.js';
import { loadHATModel } from '../../models/hat/index.js';
import { GUIDES, levelsForTargets, parseLevel, planInputsProblem, precisionPlan, sweepJob, scoreCompressed, scoreOf, sparsityPlan, type Guide, type PlanFile, type SweepResult } from '../../eval/sweep.js';
import { planTable, sweepMarkdown, writeDtmReport, writePlanReport, writeSweepReport, type PlanOutcome } from '../../eval/report.js';


function readPrompts(path: unknown): string[] {
  if (typeof path !== 'string' || path === '') throw new UserError('missing required option --prompts FILE');
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch {
    throw new UserError(`--prompts ${path}: cannot read the file`);
  }
  const prompts = parsePrompts(text);
  if (prompts.length === 0) throw new UserError(`--prompts ${path}: no prompts (one per line, or blocks separated by blank lines)`);
  return prompts;
}

/** Held-out documents of --data, cut to at most `maxBytes` bytes in all (whole documents first, then a cut one). */
function heldOut(path: unknown, maxBytes: number): string[] | undefined {
  if (typeof path !== 'string' || path === '') return undefined;
  const docs = readDocuments(path);
  const out: string[] = [];
  let left = maxBytes;
  for (const d of docs) {
    if (left <= 0) break;
    const b = Buffer.from(d);
    if (b.length <= left) out.push(d);
    else out.push(b.subarray(0, left).toString('utf8').replace(/\uFFFD$/, ''));
    left -= b.length;
  }
  return out;
}

function positiveInt(a: ParsedArgs, name: string): number {
  const v = Number(a.options[name]);
  if (!Number.isInteger(v) || v < 1) throw new UserError(`--${name} must be a positive integer, got ${String(a.options[name])}`);
  return v;
}

function numberList(a: ParsedArgs, name: string, lo: number, hi: number): number[] {
  const raw = patternList(a, name) ?? [];
  return raw.map((s) => {
    const v = Number(s);
    if (!(v > lo && v <= hi)) throw new UserError(`--${name}: "${s}" must be a number in (${lo}, ${hi}]`);
    return v;
  });
}

function evaluator(base: LoadedHAT, a: ParsedArgs, json: boolean): DtmEvaluator {
  const prompts = readPrompts(a.options.prompts);
  const length = positiveInt(a, 'max-bytes');
  const batch = positiveInt(a, 'batch');
  const bar = new Progress({ total: prompts.length, label: 'base continuations', enabled: !json });
  const ev = new DtmEvaluator(base.model, base.splitter, prompts, { length, batchSize: batch, onProgress: (d) => bar.update(d) });
  bar.finish();
  return ev;
}

const evalOpts: Record<string, OptionSpec> = {
  prompts: { type: 'string', help: 'prompts file: one prompt per line, or blocks separated by blank lines', meta: 'FILE' },
  'max-bytes': { type: 'int', help: 'bytes the base model continues each prompt (greedy)', default: 100, meta: 'N', min: 1, max: 1 << 20, aliases: ['length'] },
  report: { type: 'string', help: 'write a Markdown report with SVG plots into this folder', meta: 'DIR' },
  data: { type: 'string', help: 'text file, .jsonl file ("text" field per line) or folder of them (dtm/sweep/plan: held-out text for bpb)', meta: 'FILE' },
  batch: { type: 'int', help: 'chunks (bpb) or prompts (dtm/sweep/plan) per forward pass', default: 8, min: 1, max: 4096 },
  'data-bytes': { type: 'int', help: 'most bytes of --data (held-out text) to score', default: 1 << 20, meta: 'N', min: 1 },
};

function dtmJson(r: DtmReport, units: string, extra: Record<string, unknown>): Record<string, unknown> {
  const s = units === 'words' ? r.words : r.bytes;
  return {
    units,
    activations: r.activations,
    fdt_mean: s.fdt_mean,
    fdt_median: s.fdt_median,
    fdt_p25: s.fdt_p25,
    fdt_p75: s.fdt_p75,
    sdt_mean: s.sdt_mean,
    sdt_share: s.sdt_share,
    samples: s.samples,
    length_mean: s.length_mean,
    bytes: r.bytes,
    words: r.words,
    bpb_base: r.bpb_base,
    bpb: r.bpb,
    byte_accuracy: r.byte_accuracy,
    word_accuracy: r.word_accuracy,
    kl_bits: r.kl_bits,
    base_consistency: r.base_consistency,
    ...(r.free ? { free: r.free } : {}),
    ...(r.held_out ? { held_out: r.held_out } : {}),
    fdt_per_prompt: units === 'words' ? r.fdt_words : r.fdt_bytes,
    ...extra,
  };
}

/** The memory refusal's advice for eval dtm, which takes no --quantize (the base model is the reference). */
const DTM_MEMORY_HINT = 'eval dtm holds the base and the compressed model in memory as stored (the base is the reference: it takes no --quantize); run it on a machine with that much memory';

const dtm: EvalSubcommand = {
  summary: 'divergent token metrics (FDT/SDT, bytes and words) of a compressed model vs its base',
  usage: 'tfree eval dtm [--model BASE_DIR] --compressed DIR --prompts FILE [--units bytes|words] [--max-bytes N] [--data FILE] [--free-running] [--report DIR] [--json]',
  options: {
    compressed: { type: 'string', help: 'dtm: the compressed model folder (plain, pruned or packed checkpoint)', meta: 'DIR' },
    units: { type: 'string', help: 'dtm: units of the top-level FDT/SDT keys: bytes or words', default: 'bytes', meta: 'U', choices: ['bytes', 'words'] },
    'free-running': { type: 'boolean', help: 'dtm: also generate with the compressed model (free-running and text-level FDT/SDT)' },
    ...evalOpts,
  },
  run(a) {
    const o = a.options;
    checkOutputs(a, null);
    const units = String(o.units);
    if (typeof o.compressed !== 'string' || o.compressed === '') throw new UserError('missing required option --compressed DIR');
    const json = o.json === true;
    checkInputPath(o.compressed, '--compressed', 'dir'); // before the base model loads
    const base = loadHATForCli(o.model, { memoryHint: DTM_MEMORY_HINT });
    // any kind of checkpoint tfree writes: plain (trained, or pruned by tfree prune) or packed (tfree quantize)
    const comp = loadHATForCli(o.compressed, { memoryHint: DTM_MEMORY_HINT });
    const diff = configDifferences(base.model.config, comp.model.config);
    if (diff.splitter.length > 0) throw new UserError(`--compressed ${comp.dir}: its ${diff.splitter.join(', ')} differ${diff.splitter.length === 1 ? 's' : ''} from the base model's (${base.dir}); a compressed model must split text as its base`);
    if (diff.other.length > 0) process.stderr.write(`tfree eval dtm: warning: --compressed ${comp.dir} does not look like a compressed copy of the base model ${base.dir} (config differs in ${diff.other.slice(0, 4).join(', ')}${diff.other.length > 4 ? ', ...' : ''})\n`);
    const held = heldOut(o.data, positiveInt(a, 'data-bytes'));
    const t0 = Date.now();
    const ev = evaluator(base, a, json);
    const bar = new Progress({ total: ev.refs.length, label: 'free-running', enabled: !json && o['free-running'] === true });
    const r = ev.evaluate(comp.model, { freeRunning: o['free-running'] === true, heldOut: held, onProgress: (d) => bar.update(d) });
    if (o['free-running'] === true) bar.finish();
    const seconds = (Date.now() - t0) / 1000;
    let reportFile: string | undefined;
    if (typeof o.report === 'string') reportFile = writeDtmReport(o.report, r, { base: base.dir, compressed: comp.dir, length: positiveInt(a, 'max-bytes') });
    if (json) {
      process.stdout.write(`${JSON.stringify(dtmJson(r, units, { seconds, ...(reportFile ? { report: reportFile } : {}) }))}\n`);
      return;
    }
    const s = units === 'words' ? r.words : r.bytes;
    const lines = [
      `${r.bytes.samples} prompts, ${positiveInt(a, 'max-bytes')} bytes each (${seconds.toFixed(1)} s); activations of the compressed model: ${r.activations}`,
      `FDT (${units}): mean ${s.fdt_mean.toFixed(2)}, median ${s.fdt_median}, p25 ${s.fdt_p25}, p75 ${s.fdt_p75}; SDT mean ${s.sdt_mean.toFixed(2)} (share ${(100 * s.sdt_share).toFixed(2)}%)`,
      `FDT (${units === 'words' ? 'bytes' : 'words'}): mean ${(units === 'words' ? r.bytes : r.words).fdt_mean.toFixed(2)}; SDT share ${(100 * (units === 'words' ? r.bytes : r.words).sdt_share).toFixed(2)}%`,
      `bits/byte on the base continuations: base ${r.bpb_base.toFixed(4)}, compressed ${r.bpb.toFixed(4)}; KL(base||compressed) ${r.kl_bits.toFixed(5)} bits/byte; word accuracy ${(100 * r.word_accuracy).toFixed(2)}%`,
    ];
    if (r.free) lines.push(`free-running: first mismatch mean ${r.free.fdt_bytes.fdt_mean.toFixed(2)} bytes; text-level (difflib) FDT ${r.free.text_bytes.fdt_mean.toFixed(2)} bytes, SDT share ${(100 * r.free.text_bytes.sdt_share).toFixed(2)}%`);
    if (r.held_out) lines.push(`held-out bits/byte: base ${r.held_out.base.bits_per_byte.toFixed(4)}, compressed ${r.held_out.model.bits_per_byte.toFixed(4)} (${r.held_out.model.bytes} bytes)`);
    if (reportFile) lines.push(`report: ${reportFile}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

const DEFAULT_LEVELS = 's0.25,s0.5,s0.75,s1,int8,int4,kmeans4,kmeans2,bin1';

const sweepOpts: Record<string, OptionSpec> = {
  levels: { type: 'string', help: `sweep: levels per component: sN (magnitude sparsity N) or a format (default ${DEFAULT_LEVELS})`, meta: 'L,..' },
  targets: { type: 'string', help: 'sparsity targets of Algorithm 1 (adds levels t/2, 3t/2, 1; plan default 0.5,0.7)', meta: 'T,..' },
  block: { type: 'int', help: 'quantization block (reduced to a power of two dividing the row when needed)', default: 64, meta: 'N', min: 1, max: 1 << 16 },
  include: { type: 'string', help: 'components: weights matching these globs (default all Linear weights)', meta: 'P,..' },
  exclude: { type: 'string', help: 'components: skip these (default embeddings and lm_head)', meta: 'P,..' },
  out: { type: 'string', help: 'sweep: write the sweep JSON here; plan: write plan JSON files into this folder', meta: 'PATH' },
};

/** Checks --out (a file for sweep, a folder for plan) and --report (a folder) before any work. */
function checkOutputs(a: ParsedArgs, outKind: 'file' | 'dir' | null): void {
  const o = a.options;
  if (outKind !== null && typeof o.out === 'string') checkOutputPath(o.out, '--out', outKind);
  if (outKind === 'file' && typeof o.out === 'string') refuseInputAsOutput(o.out, '--out', [typeof o.model === 'string' ? o.model : defaultModelDir(), ...[o.prompts, o.data].map((v) => (typeof v === 'string' ? v : undefined))]);
  if (typeof o.report === 'string') checkOutputPath(o.report, '--report', 'dir');
}

/**
 * The levels of a sweep, each checked (one line for a bad one, before any work): `--levels`
 * (else `defaults`) and the levels Algorithm 1 needs for `targets`.
 */
function sweepLevels(a: ParsedArgs, defaults: readonly string[], targets: readonly number[]): string[] {
  const given = patternList(a, 'levels');
  if (given !== undefined && given.length === 0) throw new UserError('--levels: give at least one level (sN or a format name)');
  const label = (l: string): string => {
    const spec = parseLevel(l);
    if (spec.format !== undefined) parseFormat(spec.format);
    return spec.label;
  };
  return asUserErrors(() => [...new Set([...(given ?? defaults).map(label), ...levelsForTargets(targets)])]);
}

/**
 * Runs the sweep of `levels` over the components of --model; `check(components)` (one line on a
 * problem) runs after the model is loaded and before any evaluation.
 */
async function doSweep(a: ParsedArgs, levels: string[], label: 'eval sweep' | 'eval plan', check?: (comps: readonly Component[]) => string | undefined): Promise<{ sweep: SweepResult; ev: DtmEvaluator; base: LoadedHAT; held: string[] | undefined }> {
  const o = a.options;
  const json = o.json === true;
  const base = loadHATForCli(o.model, { f32: true }); // compressed in memory: f32 Linear weights
  const comps = listComponents(base.model, { include: patternList(a, 'include'), exclude: patternList(a, 'exclude') });
  if (comps.length === 0) throw new UserError('no components match --include/--exclude');
  const problem = check?.(comps);
  if (problem !== undefined) throw new UserError(problem);
  const held = heldOut(o.data, positiveInt(a, 'data-bytes'));
  const ev = evaluator(base, a, json);
  let bar: Progress | undefined;
  let sweep: SweepResult;
  try {
    sweep = await withInterrupt(label, 'after this cell (the rows so far are kept)', (stop) =>
      runYielding(
        sweepJob(ev, comps, levels, base.dir, {
          block: positiveInt(a, 'block'),
          eval: { heldOut: held },
          onProgress: (d, n, what) => {
            bar ??= new Progress({ total: n, label: 'sweep', enabled: !json });
            bar.update(d, what);
          },
          shouldStop: () => stop.requested,
        }),
      ),
    );
  } catch (e) {
    return asUserErrors(() => {
      throw e;
    });
  }
  if (sweep.interrupted !== true) bar?.finish();
  else bar?.stop('', sweep.rows.length); // the cell that was running when the signal came is done too
  return { sweep, ev, base, held };
}

const sweep: EvalSubcommand = {
  summary: 'compress each component alone at several levels: FDT/SDT/bpb sensitivity table and heatmap',
  usage: 'tfree eval sweep [--model DIR] --prompts FILE [--levels s0.5,int8,..] [--targets 0.5,..] [--data FILE] [--out FILE] [--report DIR] [--json]',
  options: { ...evalOpts, ...sweepOpts },
  async run(a) {
    const o = a.options;
    const json = o.json === true;
    checkOutputs(a, 'file');
    const { sweep: s } = await doSweep(a, sweepLevels(a, DEFAULT_LEVELS.split(','), numberList(a, 'targets', 0, 1)), 'eval sweep');
    if (typeof o.out === 'string') writeFileAtomic(o.out, `${JSON.stringify(s, null, 1)}\n`);
    if (s.interrupted === true) {
      process.stderr.write(`tfree eval sweep: stopped after ${s.rows.length} of ${s.components.length * s.levels.length} cells${typeof o.out === 'string' ? `; the rows so far are in ${o.out} ("interrupted": true)` : ''}\n`);
      return EXIT_INTERRUPTED;
    }
    const reportFile = typeof o.report === 'string' ? writeSweepReport(o.report, s) : undefined;
    if (json) {
      process.stdout.write(`${JSON.stringify(s)}\n`);
      return;
    }
    process.stdout.write(`${sweepMarkdown(s)}\n\n${s.components.length} components x ${s.levels.length} levels in ${s.seconds.toFixed(1)} s (cells: FDT p25 in bytes)${typeof o.out === 'string' ? `\nwrote ${o.out}` : ''}${reportFile ? `\nreport: ${reportFile}` : ''}\n`);
  },
};

/**
 * A line when a sparsity plan's parameter-weighted sparsity is above its target by more than 0.005:
 * components tied at the threshold all took their largest level at once (the paper's stopping rule
 * on coarse scores).
 */
export function overshootNote(p: PlanFile, s: Pick<SweepResult, 'prompts' | 'length'>): string | undefined {
  if (p.kind !== 'sparsity' || !(p.achieved > p.target + 0.005)) return undefined;
  return `the ${p.method} sparsity plan for target ${p.target} reaches ${p.achieved.toFixed(3)}: components whose scores tie at its threshold${p.threshold !== undefined ? ` (${+p.threshold.toFixed(4)})` : ''} all take their largest level at once (the paper's rule; scores are coarse with ${s.prompts} prompt${s.prompts === 1 ? '' : 's'} of ${s.length} bytes); more prompts make them finer, --share-ties meets the target`;
}

const plan: EvalSubcommand = {
  summary: 'FDT-guided sparsity and mixed-precision plans vs uniform and bpb-guided, evaluated; plan JSON for tfree prune/quantize --plan',
  usage: 'tfree eval plan [--model DIR] --prompts FILE [--sweep FILE] [--targets 0.5,0.7] [--budgets 4.25,2.25] [--guide fdt_p25] [--share-ties] [--data FILE] [--out DIR] [--report DIR] [--json]',
  options: {
    ...evalOpts,
    ...sweepOpts,
    sweep: { type: 'string', help: 'plan: reuse a sweep JSON (from eval sweep --out) instead of sweeping', meta: 'FILE' },
    budgets: { type: 'string', help: 'plan: bits-per-weight budgets for mixed precision (default 4.25,2.25)', meta: 'B,..' },
    guide: { type: 'string', help: `plan: score of the water-filling: ${GUIDES.join(', ')}`, default: 'fdt_p25', meta: 'G', choices: GUIDES },
    'share-ties': { type: 'boolean', help: 'plan: sparsity plans meet the target exactly where components tie at the threshold (each takes the same share of its jump); default: the paper\'s rule, which can overshoot with coarse scores' },
  },
  async run(a) {
    const o = a.options;
    const json = o.json === true;
    checkOutputs(a, 'dir');
    const guide = String(o.guide) as Guide;
    const targets = o.targets === undefined ? [0.5, 0.7] : numberList(a, 'targets', 0, 1);
    const budgets = o.budgets === undefined ? [4.25, 2.25] : numberList(a, 'budgets', 0, 32);
    const t0 = Date.now();
    let s: SweepResult;
    let ev: DtmEvaluator;
    let held: string[] | undefined;
    let base: LoadedHAT;
    if (typeof o.sweep === 'string') {
      try {
        s = JSON.parse(fs.readFileSync(o.sweep, 'utf8')) as SweepResult;
      } catch (e) {
        throw new UserError(`--sweep ${o.sweep}: ${(e as Error).message}`);
      }
      if (s.tfree_sweep !== 1) throw new UserError(`--sweep ${o.sweep}: not a sweep file of tfree eval sweep`);
      const problem = planInputsProblem(s.components, s.levels, s.block, targets, budgets);
      if (problem !== undefined) throw new UserError(`--sweep ${o.sweep}: ${problem}`);
      base = loadHATForCli(o.model, { f32: true });
      held = heldOut(o.data, positiveInt(a, 'data-bytes'));
      ev = evaluator(base, a, json);
    } else {
      const levels = sweepLevels(a, ['int8', 'kmeans4', 'kmeans2', 'bin1'], targets);
      ({ sweep: s, ev, base, held } = await doSweep(a, levels, 'eval plan', (comps) => planInputsProblem(comps, levels, positiveInt(a, 'block'), targets, budgets)));
      if (typeof o.out === 'string') {
        fs.mkdirSync(o.out, { recursive: true });
        writeFileAtomic(nodePath.join(o.out, 'sweep.json'), `${JSON.stringify(s, null, 1)}\n`);
      }
      if (s.interrupted === true) {
        process.stderr.write(`tfree eval plan: stopped during the sweep (${s.rows.length} cells done)${typeof o.out === 'string' ? `; the rows so far are in ${nodePath.join(o.out, 'sweep.json')}` : ''}; no plans made\n`);
        return EXIT_INTERRUPTED;
      }
    }
    const comps = listComponents(base.model, { include: patternList(a, 'include'), exclude: patternList(a, 'exclude') });
    const methods: (Guide | 'uniform')[] = [guide, ...(guide === 'bpb' ? [] : ['bpb' as const]), 'uniform'];
    const plans: PlanFile[] = [];
    asUserErrors(() => {
      for (const t of targets) for (const m of methods) plans.push(sparsityPlan(s, t, m, { ties: o['share-ties'] === true ? 'share' : 'paper' }));
      for (const b of budgets) for (const m of methods) plans.push(precisionPlan(s, b, m));
    });
    const bar = new Progress({ total: plans.length, label: 'evaluate plans', enabled: !json });
    const baseScore = scoreOf(ev.evaluate(base.model, { heldOut: held }));
    const outcomes: PlanOutcome[] = plans.map((p, i) => {
      bar.update(i, `${p.kind} ${p.method} ${p.target}`);
      return { plan: p, score: scoreCompressed(ev, comps, p.components, { block: s.block, eval: { heldOut: held } }).score };
    });
    bar.finish();
    if (typeof o.out === 'string') {
      fs.mkdirSync(o.out, { recursive: true });
      for (const oc of outcomes) writeFileAtomic(nodePath.join(o.out, `${oc.plan.kind}-${oc.plan.method}-${oc.plan.target}.json`), `${JSON.stringify(oc.plan, null, 1)}\n`);
    }
    const reportFile = typeof o.report === 'string' ? writePlanReport(o.report, outcomes, baseScore, s) : undefined;
    const seconds = (Date.now() - t0) / 1000;
    const summary = { base: baseScore, plans: outcomes.map((oc) => ({ kind: oc.plan.kind, method: oc.plan.method, target: oc.plan.target, achieved: oc.plan.achieved, threshold: oc.plan.threshold, ...oc.score })), sweep_seconds: s.seconds, seconds };
    if (typeof o.out === 'string') writeFileAtomic(nodePath.join(o.out, 'plans.json'), `${JSON.stringify(summary, null, 1)}\n`);
    if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`${planTable(outcomes, baseScore)}\n\n${seconds.toFixed(1)} s${typeof o.out === 'string' ? `; plans written to ${o.out}` : ''}${reportFile ? `\nreport: ${reportFile}` : ''}\n`);
    for (const p of plans) {
      const note = overshootNote(p, s);
      if (note !== undefined) process.stderr.write(`tfree eval plan: note: ${note}\n`);
    }
  },
};

const compare: EvalSubcommand = {
  summary: 'a model beside in-memory quantized copies: bits/weight, bpb, FDT/SDT, generation speed',
  usage: 'tfree eval compare [--model DIR] [--formats kmeans4,bin1] [--prompts FILE] [--data FILE] [--max-bytes N] [--json]',
  options: {
    ...evalOpts,
    formats: { type: 'string', help: 'compare: weight formats of the quantized copies (default kmeans4,bin1)', meta: 'F,..' },
    block: sweepOpts.block,
  },
  run(a) {
    const o = a.options;
    const json = o.json === true;
    if (typeof o.model === 'string' && fs.existsSync(o.model) && isPackedModelDir(o.model)) throw new UserError(`--model ${o.model}: a packed (quantized) checkpoint; eval compare quantizes the weights of a plain checkpoint`);
    const { dir, splitter } = loadHATForCli(o.model, { memoryHint: 'eval compare holds the model and its quantized copies in memory and takes no --quantize; tfree generate --model DIR --quantize FORMAT runs one quantized copy' });
    const prompts = o.prompts === undefined ? [...DEMO_PROMPTS] : readPrompts(o.prompts);
    const held = heldOut(o.data, positiveInt(a, 'data-bytes')) ?? [DEMO_TEXT];
    const formats = patternList(a, 'formats') ?? ['kmeans4', 'bin1'];
    const rows = asUserErrors(() =>
      compareQuantized(() => loadHATModel(dir), splitter, { prompts, formats, heldOut: held, length: positiveInt(a, 'max-bytes'), block: positiveInt(a, 'block'), onStep: (w) => !json && process.stderr.write(`compare: ${w}...\n`) }),
    );
    if (json) {
      process.stdout.write(`${JSON.stringify({ model: dir, prompts: prompts.length, rows })}\n`);
      return;
    }
    process.stdout.write(`${compareTable(rows)}\n(${prompts.length} prompts x ${positiveInt(a, 'max-bytes')} bytes; bpb on ${o.data === undefined ? 'a built-in paragraph' : String(o.data)}; FDT/SDT in bytes vs the f32 model's greedy text; speed: greedy generation of 200 bytes)\n`);
  },
};

export const evalDtmSubcommands: Record<string, EvalSubcommand> = { dtm, sweep, plan, compare };
