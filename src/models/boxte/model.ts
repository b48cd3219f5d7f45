/**
 * BoxE (Abboud et al., NeurIPS 2020) and BoxTE (Messner et al., AAAI 2022, "Temporal Knowledge
 * Graph Completion using Box Embeddings"), written with tensor ops and autograd.
 *
 * A fact r(h, t | tau) is scored by where two points fall relative to two boxes:
 *   time bump     tb  = sum_j alpha[r, j] * K[tau, j, :]        (BoxTE; zero on day 0, see below)
 *   points        p_h = tanh(e_h + b_t + tb),  p_t = tanh(e_t + b_h + tb)
 *   boxes         r^h = [l_h, u_h], r^t = [l_t, u_t]  (corners through tanh too)
 *   score (lower is better)  xi = || dist(p_h, r^h) ||_2 + || dist(p_t, r^t) ||_2
 * with the width-dependent distance of BoxE (see `boxDistance`). A box is a centre, a shape
 * normalised by its geometric mean and a size elu(s) + 1; BoxTE's corners are c -/+ delta,
 * BoxE's c -/+ delta / 2.
 *
 * Choices of the reference code kept here (spec ../shared/specs/boxte.md §1.6): day 0 gets no
 * time bump (`noBumpDay0`), the temporal regulariser is the mean over (bump j, consecutive pair)
 * of the L4^4 difference, i.e. the paper's form divided by k, initialisation U(-0.5/sqrt d,
 * 0.5/sqrt d) for points, bumps, box bases/shapes and time bumps, U(-1, 1) for box sizes and
 * N(1, 0.1) for alpha.
 *
 * Training and evaluation use the fused kernels in `kernel.ts` for the entity-heavy part (every
 * candidate entity of every query); this file is the readable definition they are tested against.
 */
import {
  Tensor,
  abs,
  add,
  affine,
  concat,
  crossEntropy,
  div,
  elu,
  embedding,
  exp,
  gt,
  indexSelect,
  log,
  maximum,
  mean,
  minimum,
  mul,
  reciprocal,
  reshape,
  slice,
  sqrt,
  square,
  sub,
  sum,
  tanh,
  where,
} from '../../tensor/index.js';
import { ParamStore, VarBuilder, init } from '../../nn/index.js';

export interface BoxTEConfig {
  /** 'boxte' (temporal) or 'boxe' (static: no time parameters, half-width boxes) */
  model: 'boxte' | 'boxe';
  numEntities: number;
  numRelations: number;
  /** number of timestamps (ignored by BoxE, kept for the data) */
  numTimes: number;
  dim: number;
  /** time bumps per timestamp (BoxTE) */
  k: number;
  /** tanh on the final points and box corners (reference: --norm_embeddings) */
  tanh: boolean;
  /** norm over dimensions of the distance: 2 (BoxTE) or 1 */
  order: 1 | 2;
  /** day 0 gets no time bump, as the reference code (index_bumps) */
  noBumpDay0: boolean;
  /** relation factors alpha (reference: --use_r_factor); without: tb = sum_j K[tau, j] */
  useAlpha: boolean;
}

export function defaultConfig(p: Pick<BoxTEConfig, 'numEntities' | 'numRelations' | 'numTimes'> & Partial<BoxTEConfig>): BoxTEConfig {
  return { model: 'boxte', dim: 154, k: 2, tanh: true, order: 2, noBumpDay0: true, useAlpha: true, ...p };
}

export function validateConfig(c: BoxTEConfig): void {
  const ints: (keyof BoxTEConfig)[] = ['numEntities', 'numRelations', 'numTimes', 'dim', 'k'];
  for (const key of ints) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < (key === 'k' && c.model === 'boxe' ? 0 : 1)) throw new Error(`BoxTE config: ${key} must be a positive integer, got ${String(v)}`);
  }
  if (c.model !== 'boxte' && c.model !== 'boxe') throw new Error(`BoxTE config: model must be "boxte" or "boxe", got ${String(c.model)}`);
  if (c.order !== 1 && c.order !== 2) throw new Error(`BoxTE config: order must be 1 or 2, got ${String(c.order)}`);
}

/**
 * The first parameter holding a non-finite value, described in words ("parameter entity.base has
 * 12 non-finite values, e.g. NaN"), or null when every value is finite.
 */
export function nonFiniteParam(m: { store: ParamStore }): string | null {
  for (const [name, p] of m.store.entries()) {
    const a = p.f32();
    let bad = 0;
    let first = 0;
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v - v !== 0) {
        if (bad === 0) first = v;
        bad++;
      }
    }
    if (bad > 0) return `parameter ${name} has ${bad} non-finite value${bad === 1 ? '' : 's'}, e.g. ${first}`;
  }
  return null;
}

/** Number of parameters: 2|E|d + 4|R|d + 2|R| (+ k|T|d + k|R| for BoxTE). */
export function paramCount(c: BoxTEConfig): number {
  const base = 2 * c.numEntities * c.dim + 4 * c.numRelations * c.dim + 2 * c.numRelations;
  return c.model === 'boxte' ? base + c.k * c.numTimes * c.dim + c.k * c.numRelations : base;
}

/** Box corners of every relation, [R, d] each (after tanh when configured). */
export interface Boxes {
  lh: Tensor;
  uh: Tensor;
  lt: Tensor;
  ut: Tensor;
}

/**
 * The BoxE distance of points p to boxes [l, u], elementwise:
 *   c = (l + u) / 2,  w = u - l + 1,  kappa = (w - 1)(w - 1/w) / 2
 *   inside (l <= p <= u):  |p - c| / w        outside:  |p - c| * w - kappa
 * (continuous at the border; small and flat inside a wide box, growing with width outside).
 */
export function boxDistance(p: Tensor, l: Tensor, u: Tensor): Tensor {
  const c = affine(add(l, u), 0.5, 0);
  const w = affine(sub(u, l), 1, 1);
  const a = abs(sub(p, c));
  const kappa = mul(affine(w, 0.5, -0.5), sub(w, reciprocal(w)));
  const inside = mul(affine(gt(l, p), -1, 1), affine(gt(p, u), -1, 1)); // no gradient
  return where(inside, div(a, w), sub(mul(a, w), kappa));
}

export class BoxTE {
  readonly cfg: BoxTEConfig;
  readonly store: ParamStore;
  readonly entityBase: Tensor;
  readonly entityBump: Tensor;
  readonly headBase: Tensor;
  readonly headShape: Tensor;
  readonly headSize: Tensor;
  readonly tailBase: Tensor;
  readonly tailShape: Tensor;
  readonly tailSize: Tensor;
  /** [T, k, d] (BoxTE only) */
  readonly timeBumpTable: Tensor | null;
  /** [R, k] (BoxTE only) */
  readonly alpha: Tensor | null;

  /** Parameters are created by `vb` (seeded) or taken from its source (a checkpoint). */
  constructor(cfg: BoxTEConfig, vb: VarBuilder = new VarBuilder(new ParamStore(), { rng: 0 })) {
    validateConfig(cfg);
    this.cfg = cfg;
    this.store = vb.store;
    const { numEntities: E, numRelations: R, numTimes: T, dim: d, k } = cfg;
    const small = init.uniform(-0.5 / Math.sqrt(d), 0.5 / Math.sqrt(d));
    this.entityBase = vb.get('entity.base', [E, d], small);
    this.entityBump = vb.get('entity.bump', [E, d], small);
    this.headBase = vb.get('relation.head.base', [R, d], small);
    this.headShape = vb.get('relation.head.shape', [R, d], small);
    this.headSize = vb.get('relation.head.size', [R, 1], init.uniform(-1, 1));
    this.tailBase = vb.get('relation.tail.base', [R, d], small);
    this.tailShape = vb.get('relation.tail.shape', [R, d], small);
    this.tailSize = vb.get('relation.tail.size', [R, 1], init.uniform(-1, 1));
    if (cfg.model === 'boxte') {
      this.timeBumpTable = vb.get('time.bumps', [T, k, d], small);
      this.alpha = vb.get('relation.alpha', [R, k], init.normal(0.1, 1));
      if (!cfg.useAlpha) this.alpha.requiresGrad = false;
    } else {
      this.timeBumpTable = null;
      this.alpha = null;
    }
  }

  // ---- boxes ------------------------------------------------------------------------------------

  /** One side's boxes: centre +/- (shape / geomean(|shape|)) * (elu(size) + 1) (halved for BoxE). */
  private box(base: Tensor, shape: Tensor, size: Tensor): { l: Tensor; u: Tensor } {
    const geo = exp(mean(log(affine(abs(shape), 1, 1e-8)), -1, true));
    const sigma = affine(elu(size), 1, 1);
    let delta = mul(div(shape, geo), sigma);
    if (this.cfg.model === 'boxe') delta = affine(delta, 0.5, 0);
    const c1 = sub(base, delta);
    const c2 = add(base, delta);
    let l = minimum(c1, c2);
    let u = maximum(c1, c2);
    if (this.cfg.tanh) {
      l = tanh(l);
      u = tanh(u);
    }
    return { l, u };
  }

  /** Head and tail boxes of every relation. */
  boxes(): Boxes {
    const h = this.box(this.headBase, this.headShape, this.headSize);
    const t = this.box(this.tailBase, this.tailShape, this.tailSize);
    return { lh: h.l, uh: h.u, lt: t.l, ut: t.u };
  }

  /** The four corner tables stacked as one tensor [4, R, d] (lh, uh, lt, ut): one backward. */
  stackedBoxes(): Tensor {
    const b = this.boxes();
    const R = this.cfg.numRelations;
    const d = this.cfg.dim;
    return concat([b.lh, b.uh, b.lt, b.ut].map((x) => reshape(x, [1, R, d])), 0);
  }

  // ---- time bumps -------------------------------------------------------------------------------

  /** Relation-specific time bumps tb[i] = sum_j alpha[r_i, j] K[tau_i, j, :], [n, d] (zeros for BoxE). */
  timeBumps(r: Int32Array, tau: Int32Array): Tensor {
    const { dim: d, k } = this.cfg;
    const n = r.length;
    if (this.timeBumpTable === null || this.alpha === null) return Tensor.zeros([n, d]);
    const K = reshape(embedding(tau, reshape(this.timeBumpTable, [this.cfg.numTimes, k * d])), [n, k, d]);
    const a = this.cfg.useAlpha ? reshape(embedding(r, this.alpha), [n, k, 1]) : Tensor.ones([n, k, 1]);
    const tb = sum(mul(K, a), 1);
    if (!this.cfg.noBumpDay0) return tb;
    const keep = new Float32Array(n);
    for (let i = 0; i < n; i++) keep[i] = tau[i] === 0 ? 0 : 1;
    return mul(tb, new Tensor(keep, [n, 1]));
  }

  /**
   * Temporal smoothness: mean over (j, i) of || K[i+1, j] - K[i, j] ||_4^4 (the reference code's
   * form: the paper's sum over j divided by k). Zero for BoxE and for a single timestamp.
   */
  timeRegulariser(): Tensor {
    const K = this.timeBumpTable;
    const T = this.cfg.numTimes;
    if (K === null || T < 2) return Tensor.scalar(0);
    const diff = sub(slice(K, 0, 1, T), slice(K, 0, 0, T - 1));
    return affine(sum(square(square(diff))), 1 / (this.cfg.k * (T - 1)), 0);
  }

  // ---- scores -----------------------------------------------------------------------------------

  /** Final points [n, d] of head and tail, from the entity tables and the time bumps. */
  points(h: Int32Array, t: Int32Array, tb: Tensor): { ph: Tensor; pt: Tensor } {
    let xh = add(add(embedding(h, this.entityBase), embedding(t, this.entityBump)), tb);
    let xt = add(add(embedding(t, this.entityBase), embedding(h, this.entityBump)), tb);
    if (this.cfg.tanh) {
      xh = tanh(xh);
      xt = tanh(xt);
    }
    return { ph: xh, pt: xt };
  }

  private norm(x: Tensor): Tensor {
    return this.cfg.order === 1 ? sum(x, -1) : sqrt(sum(square(x), -1));
  }

  /** Scores (distances, lower = more plausible) of the facts r(h, t | tau), [n]. */
  score(h: Int32Array, r: Int32Array, t: Int32Array, tau: Int32Array): Tensor {
    const b = this.boxes();
    const { ph, pt } = this.points(h, t, this.timeBumps(r, tau));
    const dh = boxDistance(ph, indexSelect(b.lh, 0, r), indexSelect(b.uh, 0, r));
    const dt = boxDistance(pt, indexSelect(b.lt, 0, r), indexSelect(b.ut, 0, r));
    return add(this.norm(dh), this.norm(dt));
  }

  /**
   * Cross-entropy loss of B groups of (1 + n) candidates laid out group by group (candidate 0 is
   * the true fact): mean over groups of -log softmax(-score)[0]. Same semantics as the fused
   * training kernel, without the regulariser.
   */
  loss(h: Int32Array, r: Int32Array, t: Int32Array, tau: Int32Array, groupSize: number): Tensor {
    const s = this.score(h, r, t, tau);
    const B = h.length / groupSize;
    return crossEntropy(reshape(affine(s, -1, 0), [B, groupSize]), new Int32Array(B));
  }
}
