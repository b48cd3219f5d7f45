/**
 * Optimisers and gradient utilities.
 *
 * `AdamW` is PyTorch's torch.optim.AdamW (Loshchilov & Hutter's decoupled weight decay):
 *   p <- p * (1 - lr * wd)
 *   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * with t counted per parameter (a parameter that had no gradient in a step is skipped entirely,
 * as PyTorch skips params whose .grad is None). The update runs as one fused kernel call per
 * parameter (`kernels().adamw`). Per-group options (weight decay, lr scale, betas, eps) are
 * chosen by selectors on the parameter name, e.g. no weight decay for norms and biases.
 *
 * Checkpointing: `state()` is JSON metadata (step counters), `stateTensors()` names the moments
 * `m.<param>` / `v.<param>` as F32 records a safetensors writer can store, `loadState` restores
 * both.
 */
import { freshF32, kernels, Tensor, shapeStr } from '../tensor/index.js';
import { ParamStore, type F32Record, type ParamSelector } from './params.js';

/** Parameters to optimise: a store (its trainable set is re-read every step) or named tensors. */
export type ParamSource = ParamStore | Iterable<readonly [string, Tensor]>;

function selectorMatches(sel: ParamSelector, name: string, t: Tensor): boolean {
  if (typeof sel === 'string') return sel === '' || name === sel || name.startsWith(sel.endsWith('.') ? sel : sel + '.');
  if (sel instanceof RegExp) return sel.test(name);
  return sel(name, t);
}

/** Named parameters of a source, in order. */
export function namedParams(src: ParamSource): [string, Tensor][] {
  if (src instanceof ParamStore) return src.entries();
  return [...src].map(([n, t]) => [n, t]);
}

/**
 * The usual "no weight decay" rule (nanoGPT, HF Trainer in effect): tensors with fewer than two
 * dimensions (biases, norm scales) are not decayed.
 */
export function isNoDecayParam(_name: string, t: Tensor): boolean {
  return t.rank < 2;
}

/** Drops the gradients of the given parameters (set to null). */
export function zeroGrad(params: ParamSource): void {
  for (const [, t] of namedParams(params)) t.grad = null;
}

/** Names of parameters whose gradient holds NaN or +-Infinity. */
export function nonFiniteGrads(params: ParamSource): string[] {
  const bad: string[] = [];
  for (const [n, t] of namedParams(params)) {
    if (t.grad === null) continue;
    const g = t.grad.f32();
    for (let i = 0; i < g.length; i++) {
      if (!Number.isFinite(g[i])) {
        bad.push(n);
        break;
      }
    }
  }
  return bad;
}

/** Global L2 norm of all gradients (float64 accumulation); parameters without grad count as 0. */
export function gradNorm(params: ParamSource): number {
  const k = kernels();
  let ss = 0;
  for (const [, t] of namedParams(params)) {
    if (t.grad === null) continue;
    const g = t.grad.f32();
    ss += k.sumSquares(g, g.length);
  }
  return Math.sqrt(ss);
}

export interface ClipOptions {
  /** throw (naming the offending parameters) when the norm is NaN or infinite (default false) */
  errorIfNonfinite?: boolean;
}

/**
 * Scales all gradients so their global L2 norm is at most maxNorm (PyTorch clip_grad_norm_:
 * coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the norm before
 * clipping. When the norm is not finite, gradients are left untouched and the non-finite norm is
 * returned (skip the optimizer step then), or, with errorIfNonfinite, an error names the
 * parameters whose gradients are not finite.
 */
export function clipGradNorm(params: ParamSource, maxNorm: number, opts: ClipOptions = {}): number {
  const list = namedParams(params);
  const { norm, coef } = clipCoefficient(list, maxNorm, opts);
  if (coef !== 1) {
    const k = kernels();
    for (const [, t] of list) {
      if (t.grad === null) continue;
      const g = t.grad.f32();
      k.affine(g, g, g.length, coef, 0);
    }
  }
  return norm;
}

/**
 * What clipGradNorm computes without touching the gradients: the global norm and the factor it
 * would scale them by (maxNorm / (norm + 1e-6) when below 1, else 1; 1 when the norm is not
 * finite). `adamW.step(lr, { gradScale: coef })` then applies the clipping inside the update,
 * with the same result as clipGradNorm followed by step() and one pass fewer over the gradients
 * (which stay unscaled in .grad).
 */
export function clipCoefficient(params: ParamSource, maxNorm: number, opts: ClipOptions = {}): { norm: number; coef: number } {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
  const list = namedParams(params);
  const norm = gradNorm(list);
  if (!Number.isFinite(norm)) {
    if (opts.errorIfNonfinite) {
      throw new Error(`clipGradNorm: the total gradient norm is ${norm}; non-finite gradients in: ${nonFiniteGrads(list).join(', ')}`);
    }
    return { norm, coef: 1 };
  }
  const coef = maxNorm / (norm + 1e-6);
  return { norm, coef: coef < 1 ? coef : 1 };
}

export interface AdamWStepOptions {
  /**
   * Factor the gradients are read with (default 1): clipCoefficient's coef, to clip inside the
   * update (the same bits as scaling .grad by it first; .grad is left as it is).
   */
  gradScale?: number;
}

export interface AdamWHyper {
  /** multiplies the optimizer's lr for this group (default 1) */
  lrScale?: number;
  weightDecay?: number;
  betas?: readonly [number, number];
  eps?: number;
}

export interface AdamWGroup extends AdamWHyper {
  /** which parameters the group covers (first matching group wins) */
  match: ParamSelector;
}

export interface AdamWOptions {
  lr: number;
  /** default [0.9, 0.999] */
  betas?: readonly [number, number];
  /** default 1e-8 */
  eps?: number;
  /** decoupled weight decay (default 0.01, as PyTorch) */
  weightDecay?: number;
  /** parameters that get no weight decay, e.g. `isNoDecayParam` (applied after groups) */
  noDecay?: (name: string, t: Tensor) => boolean;
  /** per-group overrides, first match wins */
  groups?: readonly AdamWGroup[];
}

/** JSON part of the optimizer state. */
export interface AdamWStateMeta {
  kind: 'AdamW';
  /** optimizer steps taken */
  step: number;
  lr: number;
  /** per-parameter step counts (bias correction) of every parameter with moments */
  params: Record<string, { step: number; shape: number[] }>;
}

interface Moments {
  m: Float32Array;
  v: Float32Array;
  step: number;
  shape: number[];
}

/** Source of saved moment tensors by name (`m.<param>`, `v.<param>`). */
export type StateTensorSource = ((name: string) => Float32Array | { data: Float32Array } | undefined) | Readonly<Record<string, Float32Array | { data: Float32Array }>>;

function lookupState(src: StateTensorSource, name: string): Float32Array | undefined {
  const v = typeof src === 'function' ? src(name) : Object.prototype.hasOwnProperty.call(src, name) ? src[name] : undefined;
  if (v === undefined) return undefined;
  return v instanceof Float32Array ? v : v.data;
}

function paramData(name: string, t: Tensor): Float32Array {
  if (t.dtype !== 'f32' || !t.isContiguous()) throw new Error(`optimizer: parameter "${name}" must be a contiguous f32 tensor, got ${t.toString()}`);
  return t.f32();
}

function gradData(name: string, t: Tensor): Float32Array {
  const g = (t.grad as Tensor).f32();
  if (g.length !== t.size) throw new Error(`optimizer: gradient of "${name}" has ${g.length} values, parameter ${shapeStr(t.shape)} has ${t.size}`);
  return g;
}

export class AdamW {
  /** base learning rate (a schedule sets it before each step) */
  lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** optimizer steps taken */
  stepCount = 0;
  private readonly params: ParamSource;
  private readonly opts: AdamWOptions;
  private readonly moments = new Map<string, Moments>();

  constructor(params: ParamSource, opts: AdamWOptions) {
    this.params = params instanceof ParamStore ? params : namedParams(params);
    this.opts = opts;
    this.lr = opts.lr;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    for (const [n, t] of namedParams(this.params)) this.hyper(n, t); // validate eagerly
  }

  /** The resolved hyper-parameters of one parameter. */
  hyper(name: string, t: Tensor): Required<AdamWHyper> {
    let h: Required<AdamWHyper> = { lrScale: 1, weightDecay: this.weightDecay, betas: this.betas, eps: this.eps };
    const g = this.opts.groups?.find((gr) => selectorMatches(gr.match, name, t));
    if (g !== undefined) {
      h = {
        lrScale: g.lrScale ?? h.lrScale,
        weightDecay: g.weightDecay ?? h.weightDecay,
        betas: g.betas ?? h.betas,
        eps: g.eps ?? h.eps,
      };
    }
    if (this.opts.noDecay?.(name, t)) h.weightDecay = 0;
    const [b1, b2] = h.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error(`AdamW: betas for "${name}" must lie in [0, 1), got [${b1}, ${b2}]`);
    if (!(h.eps >= 0) || !(h.weightDecay >= 0)) throw new Error(`AdamW: eps and weightDecay for "${name}" must be non-negative`);
    return h;
  }

  /**
   * One update of every trainable parameter that has a gradient (frozen parameters and ones
   * without .grad are skipped). `lr` (optional) replaces this.lr first; opts.gradScale scales the
   * gradients as they are read (clipping fused into the update, see clipCoefficient).
   */
  step(lr?: number, opts: AdamWStepOptions = {}): void {
    if (lr !== undefined) this.lr = lr;
    if (!Number.isFinite(this.lr)) throw new Error(`AdamW: learning rate is ${this.lr}`);
    const gradScale = opts.gradScale ?? 1;
    if (!(gradScale > 0 && Number.isFinite(gradScale))) throw new Error(`AdamW: gradScale must be a positive finite number, got ${gradScale}`);
    this.stepCount++;
    const k = kernels();
    for (const [name, p] of namedParams(this.params)) {
      if (!p.requiresGrad || p.grad === null) continue;
      const pd = paramData(name, p);
      const gd = gradData(name, p);
      let st = this.moments.get(name);
      if (st === undefined) {
        st = { m: freshF32(p.size), v: freshF32(p.size), step: 0, shape: p.shape.slice() };
        this.moments.set(name, st);
      } else if (st.m.length !== p.size) {
        throw new Error(`AdamW: moments of "${name}" have ${st.m.length} values, parameter ${shapeStr(p.shape)} has ${p.size}`);
      }
      const h = this.hyper(name, p);
      st.step++;
      const [b1, b2] = h.betas;
      const bc1 = 1 - Math.pow(b1, st.step);
      const bc2 = 1 - Math.pow(b2, st.step);
      if (gradScale === 1) k.adamw(pd, gd, st.m, st.v, p.size, this.lr * h.lrScale, b1, b2, h.eps, h.weightDecay, bc1, bc2);
      else k.adamw(pd, gd, st.m, st.v, p.size, this.lr * h.lrScale, b1, b2, h.eps, h.weightDecay, bc1, bc2, gradScale);
    }
  }

  /**
   * The live moments of one parameter (created zeroed on first use) for an external fused update
   * kernel that applies exactly this optimiser's rule: the caller updates m, v and the parameter
   * and advances `step` itself. Saved and restored with the others by state()/loadState().
   */
  momentsOf(name: string): { m: Float32Array; v: Float32Array; step: number } {
    let st = this.moments.get(name);
    if (st === undefined) {
      const p = namedParams(this.params).find(([n]) => n === name)?.[1];
      if (p === undefined) throw new Error(`AdamW.momentsOf: "${name}" is not a parameter of this optimizer`);
      st = { m: freshF32(p.size), v: freshF32(p.size), step: 0, shape: p.shape.slice() };
      this.moments.set(name, st);
    }
    return st;
  }

  /** Drops the gradients of the optimised parameters. */
  zeroGrad(): void {
    zeroGrad(this.params);
  }

  /** JSON metadata of the state (pair with stateTensors()). */
  state(): AdamWStateMeta {
    const params: AdamWStateMeta['params'] = {};
    for (const [n, st] of this.moments) params[n] = { step: st.step, shape: st.shape.slice() };
    return { kind: 'AdamW', step: this.stepCount, lr: this.lr, params };
  }

  /** The moments as named F32 records `m.<param>` and `v.<param>` (sharing the live buffers). */
  stateTensors(): Record<string, F32Record> {
    const out: Record<string, F32Record> = {};
    for (const [n, st] of this.moments) {
      out[`m.${n}`] = { dtype: 'F32', shape: st.shape.slice(), data: st.m };
      out[`v.${n}`] = { dtype: 'F32', shape: st.shape.slice(), data: st.v };
    }
    return out;
  }

  /**
   * Restores state saved by state()/stateTensors() (copies the moments). Every parameter named
   * in the metadata must exist and have its m/v tensors with matching sizes; errors name the
   * tensor. Hyper-parameters stay as constructed; lr and step counters are restored.
   */
  loadState(meta: AdamWStateMeta, tensors: StateTensorSource): void {
    if (meta === null || typeof meta !== 'object' || meta.kind !== 'AdamW') throw new Error('AdamW.loadState: not an AdamW state (kind !== "AdamW")');
    const byName = new Map(namedParams(this.params));
    const next = new Map<string, Moments>();
    for (const [n, info] of Object.entries(meta.params)) {
      const p = byName.get(n);
      if (p === undefined) throw new Error(`AdamW.loadState: state for "${n}", which is not a parameter of this optimizer`);
      if (!Number.isInteger(info.step) || info.step < 0) throw new Error(`AdamW.loadState: invalid step ${info.step} for "${n}"`);
      const m = lookupState(tensors, `m.${n}`);
      const v = lookupState(tensors, `v.${n}`);
      if (m === undefined || v === undefined) throw new Error(`AdamW.loadState: missing moment tensor "${m === undefined ? 'm' : 'v'}.${n}"`);
      if (m.length !== p.size || v.length !== p.size) {
        throw new Error(`AdamW.loadState: moments of "${n}" have ${m.length}/${v.length} values, parameter ${shapeStr(p.shape)} has ${p.size}`);
      }
      next.set(n, { m: m.slice(), v: v.slice(), step: info.step, shape: p.shape.slice() });
    }
    this.moments.clear();
    for (const [n, st] of next) this.moments.set(n, st);
    this.stepCount = meta.step;
    this.lr = meta.lr;
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (coupled, as torch.optim.SGD) */
  weightDecay?: number;
}

export interface SGDStateMeta {
  kind: 'SGD';
  step: number;
  lr: number;
  params: Record<string, { shape: number[] }>;
}

/** torch.optim.SGD: g += wd p; buf = momentum buf + (1 - dampening) g (buf = g at first); p -= lr (nesterov ? g + momentum buf : buf). */
export class SGD {
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  stepCount = 0;
  private readonly params: ParamSource;
  private readonly bufs = new Map<string, { buf: Float32Array; shape: number[] }>();

  constructor(params: ParamSource, opts: SGDOptions) {
    this.params = params instanceof ParamStore ? params : namedParams(params);
    this.lr = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new Error('SGD: nesterov needs momentum > 0 and dampening 0');
  }

  step(lr?: number): void {
    if (lr !== undefined) this.lr = lr;
    this.stepCount++;
    const { momentum: mu, dampening: damp, weightDecay: wd, nesterov } = this;
    for (const [name, p] of namedParams(this.params)) {
      if (!p.requiresGrad || p.grad === null) continue;
      const pd = paramData(name, p);
      const gd = gradData(name, p);
      const n = p.size;
      if (mu === 0) {
        for (let i = 0; i < n; i++) pd[i] -= this.lr * (gd[i] + wd * pd[i]);
        continue;
      }
      let st = this.bufs.get(name);
      const first = st === undefined;
      if (st === undefined) {
        st = { buf: new Float32Array(n), shape: p.shape.slice() };
        this.bufs.set(name, st);
      }
      const b = st.buf;
      for (let i = 0; i < n; i++) {
        const g = gd[i] + wd * pd[i];
        b[i] = first ? g : mu * b[i] + (1 - damp) * g;
        pd[i] -= this.lr * (nesterov ? g + mu * b[i] : b[i]);
      }
    }
  }

  zeroGrad(): void {
    zeroGrad(this.params);
  }

  state(): SGDStateMeta {
    const params: SGDStateMeta['params'] = {};
    for (const [n, st] of this.bufs) params[n] = { shape: st.shape.slice() };
    return { kind: 'SGD', step: this.stepCount, lr: this.lr, params };
  }

  /** Momentum buffers as `momentum.<param>` records. */
  stateTensors(): Record<string, F32Record> {
    const out: Record<string, F32Record> = {};
    for (const [n, st] of this.bufs) out[`momentum.${n}`] = { dtype: 'F32', shape: st.shape.slice(), data: st.buf };
    return out;
  }

  loadState(meta: SGDStateMeta, tensors: StateTensorSource): void {
    if (meta === null || typeof meta !== 'object' || meta.kind !== 'SGD') throw new Error('SGD.loadState: not an SGD state (kind !== "SGD")');
    const byName = new Map(namedParams(this.params));
    const next = new Map<string, { buf: Float32Array; shape: number[] }>();
    for (const n of Object.keys(meta.params)) {
      const p = byName.get(n);
      if (p === undefined) throw new Error(`SGD.loadState: state for "${n}", which is not a parameter of this optimizer`);
      const b = lookupState(tensors, `momentum.${n}`);
      if (b === undefined) throw new Error(`SGD.loadState: missing tensor "momentum.${n}"`);
      if (b.length !== p.size) throw new Error(`SGD.loadState: "momentum.${n}" has ${b.length} values, parameter ${shapeStr(p.shape)} has ${p.size}`);
      next.set(n, { buf: b.slice(), shape: p.shape.slice() });
    }
    this.bufs.clear();
    for (const [n, st] of next) this.bufs.set(n, st);
    this.stepCount = meta.step;
    this.lr = meta.lr;
  }
}
