/**
 * FDT-guided compression plans: Algorithm 1 of the divergent-token-metrics paper (water-filling on
 * a shared score threshold) for sparsity, and the same idea over discrete formats for mixed
 * precision. Model-agnostic: the caller measures each component's score (FDT_p, or -bpb for a
 * perplexity-guided baseline: any "higher is better" number) at a few compression levels.
 *
 * Sparsity (../shared/specs/compression.md §1.3): each component c has measured points
 * (added sparsity x, score) — the paper uses x = 0, t/2, 3t/2, 1 with scores max, FDT_a, FDT_b, 0.
 * Scores are made non-increasing in x (running minimum) and linearly interpolated. For a threshold
 * f, c gets the largest x whose interpolated score is >= f; the plan is the largest f whose
 * parameter-weighted mean x reaches the target. The paper lowers f in steps of 1 from the maximum
 * and stops at the first f that reaches the target; `step` reproduces that grid, the default
 * (step 0) finds the largest such f exactly by bisection. Where components tie at that f (their
 * scores are flat there, e.g. FDT at its maximum with few prompts), they all jump at once and the
 * mean overshoots the target, as with the paper's rule; `ties: 'share'` meets it instead.
 */

/**
 * A plan that cannot be made from what was measured (a sweep without the levels a target needs,
 * a budget below the fewest-bit formats): the caller's input, not a bug.
 */
export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

export interface SparsityPoint {
  /** added sparsity in [0, 1] */
  x: number;
  /** score at that sparsity (higher is better) */
  score: number;
}

export interface SparsityComponent {
  name: string;
  /** parameter count (the weight of the component in the mean) */
  params: number;
  points: SparsityPoint[];
}

export interface SparsityPlan {
  /** added sparsity per component */
  sparsity: Record<string, number>;
  /** the shared score threshold */
  threshold: number;
  /** parameter-weighted mean added sparsity achieved */
  achieved: number;
  target: number;
}

/** Largest x with interpolated (monotone) score >= f. */
export function maxLevelAtScore(points: readonly SparsityPoint[], f: number): number {
  const pts = normalizePoints(points);
  if (pts[0].score < f) return 0;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    if (b.score >= f) continue;
    // a.score >= f > b.score: the crossing lies in [a.x, b.x)
    if (a.score === b.score) return a.x;
    return a.x + ((a.score - f) / (a.score - b.score)) * (b.x - a.x);
  }
  return pts[pts.length - 1].x;
}

function normalizePoints(points: readonly SparsityPoint[]): SparsityPoint[] {
  if (points.length === 0) throw new Error('plan: a component needs at least one measured point');
  const pts = [...points].sort((p, q) => p.x - q.x);
  for (const p of pts) {
    if (!(p.x >= 0 && p.x <= 1) || !Number.isFinite(p.score)) throw new Error(`plan: bad point (x=${p.x}, score=${p.score})`);
  }
  let run = Infinity;
  return pts.map((p) => {
    run = Math.min(run, p.score);
    return { x: p.x, score: run };
  });
}

function weightedLevel(components: readonly SparsityComponent[], f: number): { levels: Record<string, number>; mean: number } {
  const levels: Record<string, number> = {};
  let num = 0;
  let den = 0;
  for (const c of components) {
    const x = maxLevelAtScore(c.points, f);
    levels[c.name] = x;
    num += x * c.params;
    den += c.params;
  }
  return { levels, mean: den > 0 ? num / den : 0 };
}

export interface SparsityPlanOptions {
  /** > 0: the paper's grid (lower f from the maximum in steps of `step`); 0 (default): exact bisection */
  step?: number;
  /**
   * Components whose scores are flat at the chosen threshold f (a plateau: coarse scores, FDT at its
   * maximum with few prompts) all jump to their largest level at f at once, so the mean can overshoot
   * the target by a lot. `'paper'` (default) keeps that (the paper's stopping rule); `'share'` gives
   * each component the same share of its jump (from its level just above f to its level at f), which
   * meets the target exactly and keeps every score >= f. Exact mode only (`step` 0).
   */
  ties?: 'paper' | 'share';
}

export function fdtSparsityPlan(components: readonly SparsityComponent[], target: number, opts: SparsityPlanOptions = {}): SparsityPlan {
  if (components.length === 0) throw new Error('plan: no components');
  if (!(target >= 0 && target <= 1)) throw new Error(`plan: target sparsity must be in [0, 1], got ${target}`);
  const names = new Set<string>();
  for (const c of components) {
    if (names.has(c.name)) throw new Error(`plan: component "${c.name}" appears twice`);
    names.add(c.name);
    if (!(c.params > 0)) throw new Error(`plan: component "${c.name}" has ${c.params} parameters`);
  }
  const scores = components.flatMap((c) => c.points.map((p) => p.score));
  const hi = Math.max(...scores);
  const lo = Math.min(...scores);
  const step = opts.step ?? 0;
  if (step > 0) {
    let f = hi;
    while (f >= lo && weightedLevel(components, f).mean < target) f -= step;
    const { levels, mean } = weightedLevel(components, f);
    return { sparsity: levels, threshold: f, achieved: mean, target };
  }
  // s(f) is non-increasing in f: the largest f with s(f) >= target, and a value just above it
  let f: number;
  let above: number;
  if (weightedLevel(components, hi).mean >= target) {
    f = hi;
    above = Infinity; // no score is above the highest: every level is 0 there
  } else {
    let a = lo; // s(lo) = max level
    let b = hi;
    for (let i = 0; i < 64; i++) {
      const m = (a + b) / 2;
      if (weightedLevel(components, m).mean >= target) a = m;
      else b = m;
    }
    f = a;
    above = b;
  }
  const at = weightedLevel(components, f);
  if (opts.ties !== 'share' || at.mean <= target) return { sparsity: at.levels, threshold: f, achieved: at.mean, target };
  const up = weightedLevel(components, above);
  const share = (target - up.mean) / (at.mean - up.mean);
  const sparsity: Record<string, number> = {};
  let num = 0;
  let den = 0;
  for (const c of components) {
    const x = up.levels[c.name] + share * (at.levels[c.name] - up.levels[c.name]);
    sparsity[c.name] = x;
    num += x * c.params;
    den += c.params;
  }
  return { sparsity, threshold: f, achieved: num / den, target };
}

// ---------------------------------------------------------------------------------------------
// Mixed precision: each component has candidate formats with bits per weight and a measured score;
// for a threshold f every component takes the format with the fewest bits whose score >= f (its
// most precise format if none is); f is the largest value whose parameter-weighted mean bits is
// <= the budget. Thresholds are tried at every measured score (exact water-filling); the budget
// left by the last threshold step is then spent greedily (fillBudget).

export interface FormatOption {
  format: string;
  bits: number;
  score: number;
}

export interface PrecisionComponent {
  name: string;
  params: number;
  options: FormatOption[];
}

export interface PrecisionPlan {
  format: Record<string, string>;
  threshold: number;
  /** parameter-weighted mean bits per weight */
  bits: number;
  budget: number;
}

function pickFormats(components: readonly PrecisionComponent[], f: number): { format: Record<string, string>; bits: number } {
  const format: Record<string, string> = {};
  let num = 0;
  let den = 0;
  for (const c of components) {
    const sorted = [...c.options].sort((p, q) => p.bits - q.bits);
    const ok = sorted.find((o) => o.score >= f) ?? sorted[sorted.length - 1];
    format[c.name] = ok.format;
    num += ok.bits * c.params;
    den += c.params;
  }
  return { format, bits: den > 0 ? num / den : 0 };
}

export function fdtPrecisionPlan(components: readonly PrecisionComponent[], budgetBits: number): PrecisionPlan {
  if (components.length === 0) throw new Error('plan: no components');
  for (const c of components) {
    if (c.options.length === 0) throw new Error(`plan: component "${c.name}" has no format options`);
    if (!(c.params > 0)) throw new Error(`plan: component "${c.name}" has ${c.params} parameters`);
  }
  const thresholds = [...new Set(components.flatMap((c) => c.options.map((o) => o.score)))].sort((a, b) => b - a);
  for (const f of thresholds) {
    const p = pickFormats(components, f);
    if (p.bits <= budgetBits) return fillBudget(components, p.format, f, budgetBits);
  }
  const lowest = pickFormats(components, -Infinity);
  throw new PlanError(`plan: even the fewest-bit formats average ${lowest.bits.toFixed(3)} bits/weight, above the budget ${budgetBits}`);
}

/**
 * Scores are coarse (many components share a score), so one threshold step can move many
 * components at once and leave much of the budget unused. The leftover is spent greedily: the
 * component with the lowest current score moves to its best-scoring option with more bits that
 * still fits the budget (ties: fewer parameters first), until no move fits.
 */
function fillBudget(components: readonly PrecisionComponent[], format: Record<string, string>, f: number, budgetBits: number): PrecisionPlan {
  const out = { ...format };
  const total = components.reduce((s, c) => s + c.params, 0);
  const opt = (c: PrecisionComponent, name: string): FormatOption => c.options.find((o) => o.format === name) as FormatOption;
  let bits = components.reduce((s, c) => s + opt(c, out[c.name]).bits * c.params, 0) / total;
  const done = new Set<string>();
  for (;;) {
    const order = components.filter((c) => !done.has(c.name)).sort((a, b) => opt(a, out[a.name]).score - opt(b, out[b.name]).score || a.params - b.params);
    const c = order[0];
    if (c === undefined) break;
    const cur = opt(c, out[c.name]);
    const up = c.options
      .filter((o) => o.bits > cur.bits && o.score > cur.score && bits + ((o.bits - cur.bits) * c.params) / total <= budgetBits)
      .sort((a, b) => b.score - a.score || a.bits - b.bits)[0];
    if (up === undefined) {
      done.add(c.name);
      continue;
    }
    bits += ((up.bits - cur.bits) * c.params) / total;
    out[c.name] = up.format;
  }
  return { format: out, threshold: f, bits, budget: budgetBits };
}

/** Uniform baseline: every component at the same added sparsity. */
export function uniformSparsityPlan(components: readonly SparsityComponent[], target: number): SparsityPlan {
  const sparsity: Record<string, number> = {};
  for (const c of components) sparsity[c.name] = target;
  return { sparsity, threshold: Number.NaN, achieved: target, target };
}
