/**
 * Time-aware filtered ranking (spec §1.5): every fact (h, r, t, tau) of a split is ranked twice,
 * against all heads (?, r, t, tau) and all tails (h, r, ?, tau). Candidates whose full quadruple
 * is a known fact (train, valid or test; the gold one included) are dropped; rank = 1 + number
 * of remaining candidates with a strictly smaller score (ties count in the model's favour).
 * MR, MRR and Hits@1/3/10 average the 2N ranks (head and tail pooled).
 */
import { noGrad } from '../../tensor/index.js';
import type { Quads } from '../../io/kg.js';
import { nonFiniteParam, type BoxTE } from './model.js';
import { boxTable, type BoxTable } from './kernel.js';
import { boxKernels } from './ops.js';

/** A model with a non-finite parameter: never evaluated (its scores would be meaningless). */
export class NonFiniteModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NonFiniteModelError';
  }
}

/** Evaluation of a split with no facts (its metrics would be 0 / 0). */
export class EmptySplitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmptySplitError';
  }
}

export interface RankMetrics {
  mr: number;
  mrr: number;
  hits1: number;
  hits3: number;
  hits10: number;
  /** number of ranks (2 x facts) */
  queries: number;
}

/** Known facts indexed for filtering: (r, t, tau) -> heads and (h, r, tau) -> tails. */
export class KnownFacts {
  private readonly heads = new Map<number, number[]>();
  private readonly tails = new Map<number, number[]>();
  private readonly nE: number;
  private readonly nR: number;
  private readonly nT: number;

  constructor(nE: number, nR: number, nT: number, splits: readonly Quads[]) {
    this.nE = nE;
    this.nR = nR;
    this.nT = nT;
    for (const q of splits) {
      for (let i = 0; i < q.h.length; i++) {
        push(this.heads, this.key(q.r[i], q.t[i], q.tau[i]), q.h[i]);
        push(this.tails, this.key(q.r[i], q.h[i], q.tau[i]), q.t[i]);
      }
    }
  }

  private key(r: number, e: number, tau: number): number {
    return (r * this.nE + e) * this.nT + tau;
  }

  /** Heads h' with (h', r, t, tau) known. */
  headsOf(r: number, t: number, tau: number): readonly number[] {
    return this.heads.get(this.key(r, t, tau)) ?? [];
  }

  /** Tails t' with (h, r, t', tau) known. */
  tailsOf(h: number, r: number, tau: number): readonly number[] {
    return this.tails.get(this.key(r, h, tau)) ?? [];
  }

  get numRelations(): number {
    return this.nR;
  }
}

function push(m: Map<number, number[]>, k: number, v: number): void {
  const a = m.get(k);
  if (a === undefined) m.set(k, [v]);
  else if (!a.includes(v)) a.push(v);
}

/**
 * The filtered rank of `gold` among `scores` (see the file comment). A non-finite score never
 * helps the model, it ranks as the worst: a non-finite gold score gets the worst rank (after
 * every unfiltered candidate), and a non-finite candidate (NaN, +/-Infinity) ranks after a
 * finite gold score.
 */
export function filteredRank(scores: Float32Array, gold: number, known: readonly number[]): number {
  const s = scores[gold];
  if (!Number.isFinite(s)) {
    let filtered = 0;
    for (const x of known) if (x !== gold) filtered++;
    return scores.length - filtered;
  }
  let better = 0;
  for (let x = 0; x < scores.length; x++) {
    const v = scores[x];
    if (v < s && v !== -Infinity) better++;
  }
  for (const x of known) if (x !== gold && scores[x] < s && scores[x] !== -Infinity) better--;
  return 1 + better;
}

/**
 * filteredRank from the comparisons alone (the native rankBatch): `count` candidates score strictly
 * below the gold score, better[x] says which. Same result as filteredRank on the scores.
 */
export function rankFromComparisons(goldScore: number, count: number, better: Uint8Array, gold: number, known: readonly number[]): number {
  if (!Number.isFinite(goldScore)) {
    let filtered = 0;
    for (const x of known) if (x !== gold) filtered++;
    return better.length - filtered;
  }
  let b = count;
  for (const x of known) if (x !== gold && better[x] === 1) b--;
  return 1 + b;
}

export function metricsFromRanks(ranks: ArrayLike<number>): RankMetrics {
  const n = ranks.length;
  let mr = 0;
  let mrr = 0;
  let h1 = 0;
  let h3 = 0;
  let h10 = 0;
  for (let i = 0; i < n; i++) {
    const k = ranks[i];
    mr += k;
    mrr += 1 / k;
    if (k <= 1) h1++;
    if (k <= 3) h3++;
    if (k <= 10) h10++;
  }
  const d = Math.max(n, 1);
  return { mr: mr / d, mrr: mrr / d, hits1: h1 / d, hits3: h3 / d, hits10: h10 / d, queries: n };
}

export interface RankOptions {
  /** queries per kernel call (default 64) */
  batch?: number;
  /** called after each batch with (facts done, facts total) */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Filtered ranks of the facts in q: [2N], the head rank of fact i at 2i and its tail rank at 2i+1.
 */
export function filteredRanks(model: BoxTE, q: Quads, known: KnownFacts, opts: RankOptions = {}): Float64Array {
  const { dim: d, numEntities: E, numRelations: R } = model.cfg;
  const N = q.h.length;
  const bad = nonFiniteParam(model);
  if (bad !== null) throw new NonFiniteModelError(`the model cannot be evaluated: ${bad} (a diverged training run)`);
  const Q = Math.max(1, Math.min(opts.batch ?? 64, N));
  const k = boxKernels();
  const boxes: BoxTable = boxTable(noGrad(() => model.stackedBoxes()).f32(), R, d);
  const tbAll = noGrad(() => model.timeBumps(q.r, q.tau)).f32();
  const base = model.entityBase.f32();
  const bump = model.entityBump.f32();
  const ranks = new Float64Array(2 * N);
  const headAdd = new Float32Array(Q * d);
  const tailAdd = new Float32Array(Q * d);
  const rel = new Int32Array(Q);
  const fast = k.rankBatch !== null;
  const out = new Float32Array(fast ? 0 : Q * E);
  const gold = new Int32Array(Q);
  const better = new Uint8Array(fast ? Q * E : 0);
  const count = new Int32Array(Q);
  const goldScore = new Float32Array(Q);
  // the entity tables' exponentials once for all batches (null where the kernels do not use them)
  const expBase = model.cfg.tanh ? k.expRows(E, d, base) : null;
  const expBump = model.cfg.tanh ? k.expRows(E, d, bump) : null;
  for (let start = 0; start < N; start += Q) {
    const m = Math.min(Q, N - start);
    for (const dir of [0, 1] as const) {
      // dir 0: head queries (?, r, t, tau); dir 1: tail queries (h, r, ?, tau)
      for (let j = 0; j < m; j++) {
        const i = start + j;
        const fixed = dir === 0 ? q.t[i] : q.h[i];
        rel[j] = q.r[i];
        for (let c = 0; c < d; c++) {
          const tb = tbAll[i * d + c];
          // head query: head point = base[x] + bump[t] + tb, tail point = bump[x] + base[t] + tb
          // tail query: head point = bump[x] + base[h] + tb, tail point = base[x] + bump[h] + tb
          headAdd[j * d + c] = (dir === 0 ? bump : base)[fixed * d + c] + tb;
          tailAdd[j * d + c] = (dir === 0 ? base : bump)[fixed * d + c] + tb;
        }
      }
      const args = {
        d,
        tanh: model.cfg.tanh,
        order: model.cfg.order,
        E,
        Q: m,
        headTable: dir === 0 ? base : bump,
        headAdd,
        tailTable: dir === 0 ? bump : base,
        tailAdd,
        boxes,
        rel,
        headExp: dir === 0 ? expBase : expBump,
        tailExp: dir === 0 ? expBump : expBase,
      };
      if (k.rankBatch !== null) {
        for (let j = 0; j < m; j++) gold[j] = dir === 0 ? q.h[start + j] : q.t[start + j];
        k.rankBatch({ ...args, Q: m, gold, better, count, goldScore });
      } else {
        k.scoreBatch({ ...args, out });
      }
      for (let j = 0; j < m; j++) {
        const i = start + j;
        const g = dir === 0 ? q.h[i] : q.t[i];
        const filter = dir === 0 ? known.headsOf(q.r[i], q.t[i], q.tau[i]) : known.tailsOf(q.h[i], q.r[i], q.tau[i]);
        ranks[2 * i + dir] =
          k.rankBatch !== null ? rankFromComparisons(goldScore[j], count[j], better.subarray(j * E, (j + 1) * E), g, filter) : filteredRank(out.subarray(j * E, (j + 1) * E), g, filter);
      }
    }
    opts.onProgress?.(start + m, N);
  }
  return ranks;
}

/** Filtered ranking metrics of a split. */
export function evaluateSplit(model: BoxTE, q: Quads, known: KnownFacts, opts: RankOptions = {}): RankMetrics {
  if (q.h.length === 0) throw new EmptySplitError('no facts to evaluate: the split is empty');
  return metricsFromRanks(filteredRanks(model, q, known, opts));
}

/** The first `limit` facts of a split spread evenly over it (for cheap validation). */
export function subsample(q: Quads, limit: number): Quads {
  const N = q.h.length;
  if (limit <= 0 || limit >= N) return q;
  const idx = new Int32Array(limit);
  for (let i = 0; i < limit; i++) idx[i] = Math.floor((i * N) / limit);
  const pick = (a: Int32Array): Int32Array => idx.map((i) => a[i]);
  return { h: pick(q.h), r: pick(q.r), t: pick(q.t), tau: pick(q.tau) };
}
