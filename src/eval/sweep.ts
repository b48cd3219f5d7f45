/**
 * Per-component sensitivity sweep and the plans built from it.
 *
 * Sweep: every component is compressed ALONE at every level (magnitude sparsity `s0.5`, or a
 * weight format `int8`, `kmeans4`, `bin1`...), in memory, and the model is scored against the
 * base model's cached greedy continuations (./hat_dtm.ts): FDT/SDT (bytes and words), bits per
 * byte on the continuations, KL, and optionally bits per byte on held-out text.
 *
 * Plans (../shared/specs/compression.md §1.3): for a sparsity target t, Algorithm 1 takes each
 * component's score at added sparsity 0 (the base model's), t/2, min(1, 3t/2) and 1 (all measured
 * in the sweep), and water-fills a shared threshold (./plan.ts). Mixed precision does the same
 * over formats under a bits-per-weight budget. "Guides": `fdt` uses an FDT aggregate as the score,
 * `bpb` (the perplexity-guided baseline) uses minus held-out bits per byte (minus continuation
 * bits per byte when no held-out text was given), and `uniform` gives every component the same
 * level.
 */
import { applyCompression, blockFor, componentBits, type Component, type ComponentCompression } from './components.js';
import type { DtmEvaluator, DtmOptions, DtmReport } from './hat_dtm.js';
import { PlanError, fdtPrecisionPlan, fdtSparsityPlan, uniformSparsityPlan, type PrecisionComponent, type SparsityComponent } from './plan.js';
import { runToEnd } from '../io/interrupt.js';

/** A level label: `s<fraction>` (magnitude sparsity) or a format name. */
export type LevelSpec = { label: string; sparsity: number; format?: undefined } | { label: string; format: string; sparsity?: undefined };

export function parseLevel(label: string): LevelSpec {
  const s = label.trim();
  const m = /^s(\d*\.?\d+)$/.exec(s);
  if (m) {
    const v = Number(m[1]);
    if (!(v >= 0 && v <= 1)) throw new PlanError(`level "${label}": sparsity must be in [0, 1]`);
    return { label: `s${v}`, sparsity: v };
  }
  return { label: s, format: s };
}

/** The measured numbers of one model (one component at one level, a plan, or the base). */
export interface Score {
  /** activation precision of the evaluated model (DtmReport.activations) */
  activations?: string;
  fdt_mean: number;
  fdt_median: number;
  fdt_p25: number;
  fdt_p75: number;
  sdt_mean: number;
  sdt_share: number;
  word_fdt_mean: number;
  word_fdt_p25: number;
  word_fdt_p75: number;
  word_sdt_share: number;
  /** bits per byte on the base model's continuations */
  bpb: number;
  kl_bits: number;
  /** bits per byte on held-out text (when given) */
  heldout_bpb?: number;
  heldout_word_accuracy?: number;
}

export function scoreOf(r: DtmReport): Score {
  const s: Score = {
    activations: r.activations,
    fdt_mean: r.bytes.fdt_mean,
    fdt_median: r.bytes.fdt_median,
    fdt_p25: r.bytes.fdt_p25,
    fdt_p75: r.bytes.fdt_p75,
    sdt_mean: r.bytes.sdt_mean,
    sdt_share: r.bytes.sdt_share,
    word_fdt_mean: r.words.fdt_mean,
    word_fdt_p25: r.words.fdt_p25,
    word_fdt_p75: r.words.fdt_p75,
    word_sdt_share: r.words.sdt_share,
    bpb: r.bpb,
    kl_bits: r.kl_bits,
  };
  if (r.held_out) {
    s.heldout_bpb = r.held_out.model.bits_per_byte;
    s.heldout_word_accuracy = r.held_out.model.word_accuracy;
  }
  return s;
}

export interface SweepRow extends Score {
  component: string;
  level: string;
  /** effective bits per weight (formats) */
  bits?: number;
  sparsity?: number;
}

/** A component as stored in a sweep JSON (no live layer). */
export type SweepComponent = Omit<Component, 'linear'>;

export interface SweepResult {
  tfree_sweep: 1;
  model: string;
  prompts: number;
  length: number;
  block: number;
  levels: string[];
  base: Score;
  components: SweepComponent[];
  rows: SweepRow[];
  seconds: number;
  /** set when the sweep was stopped early: `rows` holds only the cells done */
  interrupted?: boolean;
}

export interface SweepOptions {
  block?: number;
  eval?: DtmOptions;
  onProgress?: (done: number, total: number, what: string) => void;
  /** polled after every cell: true ends the sweep early with the rows so far (`interrupted: true`) */
  shouldStop?: () => boolean;
}

/** Scores the model with the given compression applied (restored afterwards). */
export function scoreCompressed(ev: DtmEvaluator, components: readonly Component[], plan: Record<string, ComponentCompression>, opts: { block?: number; eval?: DtmOptions } = {}): { score: Score; report: DtmReport } {
  const restore = applyCompression(components, plan, { block: opts.block });
  try {
    const report = ev.evaluate(ev.base, opts.eval);
    return { score: scoreOf(report), report };
  } finally {
    restore();
  }
}

export function runSweep(ev: DtmEvaluator, components: readonly Component[], levels: readonly string[], modelName: string, opts: SweepOptions = {}): SweepResult {
  return runToEnd(sweepJob(ev, components, levels, modelName, opts));
}

/** `runSweep` as a job that yields after every cell (run it with runYielding so Ctrl-C can stop it). */
export function* sweepJob(ev: DtmEvaluator, components: readonly Component[], levels: readonly string[], modelName: string, opts: SweepOptions = {}): Generator<number, SweepResult, void> {
  const t0 = Date.now();
  const block = opts.block ?? 64;
  const specs = levels.map(parseLevel);
  const base = scoreOf(ev.evaluate(ev.base, opts.eval));
  const rows: SweepRow[] = [];
  const total = components.length * specs.length;
  let done = 0;
  let interrupted = false;
  cells: for (const c of components) {
    for (const l of specs) {
      opts.onProgress?.(done, total, `${c.group} ${c.kind} ${l.label}`);
      const cc: ComponentCompression = l.format !== undefined ? { format: l.format } : { sparsity: l.sparsity };
      const { score } = scoreCompressed(ev, components, { [c.name]: cc }, { block, eval: opts.eval });
      const row: SweepRow = { component: c.name, level: l.label, ...score };
      if (l.format !== undefined) row.bits = componentBits(c, l.format, block);
      else row.sparsity = l.sparsity;
      rows.push(row);
      done++;
      yield done;
      if (done < total && opts.shouldStop?.() === true) {
        interrupted = true;
        break cells;
      }
    }
  }
  if (!interrupted) opts.onProgress?.(total, total, 'done');
  return {
    tfree_sweep: 1,
    model: modelName,
    prompts: ev.refs.length,
    length: ev.refs[0]?.continuation.length ?? 0,
    block,
    levels: specs.map((s) => s.label),
    base,
    components: components.map((c) => ({ name: c.name, group: c.group, kind: c.kind, rows: c.rows, cols: c.cols, params: c.params })),
    rows,
    seconds: (Date.now() - t0) / 1000,
    ...(interrupted ? { interrupted: true } : {}),
  };
}

/** Sweep levels Algorithm 1 needs for sparsity targets: t/2, min(1, 3t/2) and 1 for each. */
export function levelsForTargets(targets: readonly number[]): string[] {
  const xs = new Set<number>();
  for (const t of targets) {
    if (!(t > 0 && t <= 1)) throw new RangeError(`sparsity target must be in (0, 1], got ${t}`);
    xs.add(round6(t / 2));
    xs.add(round6(Math.min(1, 1.5 * t)));
    xs.add(1);
  }
  return [...xs].sort((a, b) => a - b).map((x) => `s${x}`);
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

// ---- plans ------------------------------------------------------------------------------------

/** What a plan's water-filling maximises: an FDT aggregate (`fdt_p25`...) or `bpb` (minus bits per byte). */
export type Guide = 'fdt_p25' | 'fdt_p75' | 'fdt_mean' | 'fdt_median' | 'bpb';

export const GUIDES: readonly Guide[] = ['fdt_p25', 'fdt_p75', 'fdt_mean', 'fdt_median', 'bpb'];

function guideScore(s: Score, g: Guide): number {
  if (g === 'bpb') return -(s.heldout_bpb ?? s.bpb);
  return s[g];
}

/** A plan in the form `tfree quantize --plan` / `tfree prune --plan` read. */
export interface PlanFile {
  tfree_plan: 1;
  kind: 'sparsity' | 'precision';
  /** how it was chosen: `fdt_p25`..., `bpb` or `uniform` */
  method: string;
  /** sparsity: target share of zeros over the planned components; precision: bits-per-weight budget */
  target: number;
  /** parameter-weighted sparsity or bits per weight achieved */
  achieved: number;
  threshold?: number;
  /** block size asked for (each component's own block is in its entry) */
  block?: number;
  components: Record<string, ComponentCompression>;
}

function rowsOf(sweep: SweepResult): Map<string, Map<string, SweepRow>> {
  const m = new Map<string, Map<string, SweepRow>>();
  for (const r of sweep.rows) {
    let c = m.get(r.component);
    if (c === undefined) m.set(r.component, (c = new Map()));
    c.set(r.level, r);
  }
  return m;
}

function need(rows: Map<string, SweepRow> | undefined, level: string, comp: string): SweepRow {
  const r = rows?.get(level);
  if (r === undefined) throw new PlanError(`the sweep has no level ${level} for ${comp} (run the sweep with it)`);
  return r;
}

/**
 * Algorithm 1 (or the bpb-guided or uniform baseline) for a sparsity target, from a sweep.
 * `ties` as in fdtSparsityPlan: 'paper' (default) can overshoot the target where scores tie at the
 * threshold, 'share' meets it.
 */
export function sparsityPlan(sweep: SweepResult, target: number, method: Guide | 'uniform', opts: { ties?: 'paper' | 'share' } = {}): PlanFile {
  const byComp = rowsOf(sweep);
  const comps: SparsityComponent[] = sweep.components.map((c) => {
    if (method === 'uniform') return { name: c.name, params: c.params, points: [{ x: 0, score: 0 }] };
    const rows = byComp.get(c.name);
    const xs = [round6(target / 2), round6(Math.min(1, 1.5 * target)), 1];
    const points = [{ x: 0, score: guideScore(sweep.base, method) }, ...xs.map((x) => ({ x, score: guideScore(need(rows, `s${x}`, c.name), method) }))];
    return { name: c.name, params: c.params, points };
  });
  const p = method === 'uniform' ? uniformSparsityPlan(comps, target) : fdtSparsityPlan(comps, target, { ties: opts.ties });
  const components: Record<string, ComponentCompression> = {};
  for (const [n, s] of Object.entries(p.sparsity)) components[n] = { sparsity: round6(s) };
  return { tfree_plan: 1, kind: 'sparsity', method, target, achieved: p.achieved, threshold: Number.isFinite(p.threshold) ? p.threshold : undefined, components };
}

/** The format levels (not `s<fraction>`) of a list of sweep levels. */
function formatLevels(levels: readonly string[]): string[] {
  return levels.filter((l) => parseLevel(l).format !== undefined);
}

/** Parameter-weighted bits per weight of the components with every one in format `f`, per format. */
function uniformBits(components: readonly Pick<SweepComponent, 'rows' | 'cols' | 'params'>[], formats: readonly string[], block: number): { f: string; bits: number }[] {
  const total = components.reduce((s, c) => s + c.params, 0);
  return formats.map((f) => ({ f, bits: components.reduce((s, c) => s + componentBits(c, f, block) * c.params, 0) / total }));
}

/**
 * Why the plans for `targets` (sparsity) and `budgets` (bits per weight) cannot be made from a
 * sweep of these components at these levels (undefined when they can): a sparsity level Algorithm
 * 1 needs is missing, there is no format level for a budget, or a budget is below what the
 * fewest-bit single format averages (the uniform baseline needs one that fits). Checked before a
 * sweep starts, so that a plan does not fail after it.
 */
export function planInputsProblem(components: readonly Pick<SweepComponent, 'rows' | 'cols' | 'params'>[], levels: readonly string[], block: number, targets: readonly number[], budgets: readonly number[]): string | undefined {
  if (components.length === 0) return 'no components to plan';
  const have = new Set(levels.map((l) => parseLevel(l).label));
  for (const t of targets) {
    const missing = levelsForTargets([t]).find((l) => !have.has(l));
    if (missing !== undefined) return `sparsity target ${t} needs the sweep level ${missing} (levels ${levelsForTargets([t]).join(', ')}), which the sweep lacks`;
  }
  if (budgets.length === 0) return undefined;
  const formats = formatLevels(levels);
  if (formats.length === 0) return `bits budgets need format levels (e.g. int8, kmeans4, bin1); the levels are ${levels.join(', ')} (--budgets '' makes sparsity plans only)`;
  const lowest = uniformBits(components, formats, block).sort((a, b) => a.bits - b.bits)[0];
  const low = budgets.find((b) => b < lowest.bits - 1e-9);
  if (low !== undefined) return `bits budget ${low} is below ${lowest.bits.toFixed(3)} bits per weight, the fewest of the format levels (${lowest.f}); give budgets of at least that, or add a format with fewer bits`;
  return undefined;
}

/** Mixed precision (or a baseline) under a bits-per-weight budget, from a sweep's format levels. */
export function precisionPlan(sweep: SweepResult, budget: number, method: Guide | 'uniform'): PlanFile {
  const byComp = rowsOf(sweep);
  const formats = formatLevels(sweep.levels);
  if (formats.length === 0) throw new PlanError('the sweep has no format levels');
  const bitsOf = (c: SweepComponent, f: string): number => componentBits(c, f, sweep.block);
  const components: Record<string, ComponentCompression> = {};
  let achieved = 0;
  let threshold: number | undefined;
  if (method === 'uniform') {
    // the single format with the most bits within the budget (over all components)
    const fit = uniformBits(sweep.components, formats, sweep.block)
      .filter((x) => x.bits <= budget + 1e-9)
      .sort((a, b) => b.bits - a.bits)[0];
    if (fit === undefined) throw new PlanError(`no single format of the sweep fits ${budget} bits per weight`);
    for (const c of sweep.components) components[c.name] = { format: fit.f, block: blockFor(c.cols, sweep.block) };
    achieved = fit.bits;
  } else {
    const comps: PrecisionComponent[] = sweep.components.map((c) => ({
      name: c.name,
      params: c.params,
      options: [{ format: 'f32', bits: 32, score: guideScore(sweep.base, method) }, ...formats.map((f) => ({ format: f, bits: bitsOf(c, f), score: guideScore(need(byComp.get(c.name), f, c.name), method) }))],
    }));
    const p = fdtPrecisionPlan(comps, budget);
    for (const c of sweep.components) components[c.name] = p.format[c.name] === 'f32' ? { format: 'f32' } : { format: p.format[c.name], block: blockFor(c.cols, sweep.block) };
    achieved = p.bits;
    threshold = p.threshold;
  }
  return { tfree_plan: 1, kind: 'precision', method, target: budget, achieved, threshold, block: sweep.block, components };
}
