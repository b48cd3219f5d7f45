/**
 * Numerical test helpers: a seeded PRNG, random tensors, a closeness assertion that names the
 * worst element, a finite-difference gradient checker, and per-backend test registration.
 *
 * Tolerance conventions (used by the suites unless a test says otherwise):
 *   element i passes when |actual_i - expected_i| <= atol + rtol * |expected_i|.
 *   gradCheck defaults: eps = 1e-2 (central differences), rtol = 1e-2, atol = 1e-3. The numeric
 *   gradient is accumulated in float64 from f32 forward passes; with eps = 1e-2 the f32 rounding
 *   noise of a forward (~1e-7 relative per output, ~1e-6 for approximate native kernels)
 *   contributes ~1e-5 to the difference quotient and the O(eps^2) truncation term ~1e-5 * f''',
 *   both well inside the tolerance for the smooth ops tested (kinks are kept away from inputs).
 */
import { test } from 'node:test';
import {
  Tensor,
  availableBackends,
  nativeBackend,
  noGrad,
  shapeSize,
  withBackend,
  type AttentionArgs,
  type BackendName,
} from '../../src/tensor/index.js';

// ---- PRNG ------------------------------------------------------------------------------------

/** mulberry32: a small, fast, seedable 32-bit generator (deterministic across runs). */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Picks one element. */
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
}

/**
 * A contiguous f32 tensor of uniform values in [lo, hi). Never all zeros: when the range or the
 * draw would give only zeros, element 0 is set to a nonzero value inside the range.
 */
export function randTensor(shape: readonly number[], rng: Rng, lo = -1, hi = 1): Tensor {
  const n = shapeSize(shape);
  const d = new Float32Array(n);
  let any = false;
  for (let i = 0; i < n; i++) {
    d[i] = rng.uniform(lo, hi);
    if (d[i] !== 0) any = true;
  }
  if (n > 0 && !any) d[0] = (lo + hi) / 2 || (hi !== 0 ? hi / 2 : lo / 2) || 1;
  return new Tensor(d, shape);
}

/** Uniform values in [lo, hi) whose magnitude is at least `gap` (keeps inputs off kinks at 0). */
export function randTensorAwayFromZero(shape: readonly number[], rng: Rng, gap = 0.1, hi = 1): Tensor {
  const n = shapeSize(shape);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const m = rng.uniform(gap, hi);
    d[i] = rng.next() < 0.5 ? -m : m;
  }
  return new Tensor(d, shape);
}

/** Random i32 tensor with values in [lo, hi]. */
export function randInts(shape: readonly number[], rng: Rng, lo: number, hi: number): Tensor {
  const n = shapeSize(shape);
  const d = new Int32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.int(lo, hi);
  return new Tensor(d, shape);
}

// ---- closeness -------------------------------------------------------------------------------

/** A float64 array with a shape (what the reference implementations return). */
export interface Arr {
  shape: number[];
  data: Float64Array;
}

export type Numeric = Tensor | Arr | ArrayLike<number>;

export interface CloseOptions {
  rtol?: number;
  atol?: number;
  /** what is being compared (goes into the failure message) */
  what?: string;
}

function isArr(x: Numeric): x is Arr {
  return typeof x === 'object' && x !== null && !(x instanceof Tensor) && 'shape' in x && 'data' in x && (x as Arr).data instanceof Float64Array;
}

/** Flat values (row-major, materialised from strides independently of the kernels). */
export function valuesOf(x: Numeric): ArrayLike<number> {
  if (x instanceof Tensor) return stridedValues(x);
  if (isArr(x)) return x.data;
  return x;
}

function shapeOf(x: Numeric): readonly number[] | null {
  if (x instanceof Tensor) return x.shape;
  if (isArr(x)) return x.shape;
  return null;
}

/** Reads a tensor's logical elements in row-major order straight from storage, strides and offset. */
export function stridedValues(t: Tensor): Float64Array {
  const n = t.size;
  const out = new Float64Array(n);
  const rank = t.rank;
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let p = t.offset;
    for (let d = 0; d < rank; d++) p += idx[d] * t.strides[d];
    out[i] = t.data[p];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      if (idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

function unravel(flat: number, shape: readonly number[] | null): string {
  if (shape === null || shape.length === 0) return `[${flat}]`;
  const idx = new Array<number>(shape.length);
  let r = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = shape[d] === 0 ? 0 : r % shape[d];
    r = shape[d] === 0 ? 0 : Math.floor(r / shape[d]);
  }
  return `[${idx.join(', ')}]`;
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise (defaults rtol 1e-5,
 * atol 1e-6). NaN must match NaN and infinities must match exactly. When both sides carry a
 * shape, the shapes must be equal. The failure message names the worst element (largest
 * error/tolerance ratio) with its multi-dimensional index and the number of failing elements.
 */
export function assertClose(actual: Numeric, expected: Numeric, opts: CloseOptions = {}): void {
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-6;
  const what = opts.what ?? 'values';
  const sa = shapeOf(actual);
  const se = shapeOf(expected);
  if (sa !== null && se !== null && (sa.length !== se.length || sa.some((d, i) => d !== se[i]))) {
    throw new Error(`${what}: shape [${sa.join(', ')}] differs from expected [${se.join(', ')}]`);
  }
  const a = valuesOf(actual);
  const e = valuesOf(expected);
  if (a.length !== e.length) throw new Error(`${what}: ${a.length} elements, expected ${e.length}`);
  const shape = sa ?? se;
  let bad = 0;
  let worst = -1;
  let worstRatio = -1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = e[i];
    let ratio: number;
    if (Number.isNaN(y) || Number.isNaN(x)) ratio = Number.isNaN(x) && Number.isNaN(y) ? 0 : Infinity;
    else if (!Number.isFinite(y) || !Number.isFinite(x)) ratio = x === y ? 0 : Infinity;
    else ratio = Math.abs(x - y) / (atol + rtol * Math.abs(y));
    if (ratio > 1) bad++;
    if (ratio > worstRatio || (Number.isNaN(ratio) && worst < 0)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (bad > 0) {
    const x = a[worst];
    const y = e[worst];
    throw new Error(
      `${what}: ${bad} of ${a.length} elements not close (rtol ${rtol}, atol ${atol}); worst at ${unravel(worst, shape)} (flat ${worst}): ` +
        `actual ${x}, expected ${y}, |diff| ${Math.abs(x - y)} vs tol ${atol + rtol * Math.abs(y)}`,
    );
  }
}

// ---- gradient check --------------------------------------------------------------------------

export interface GradCheckOptions {
  /** finite-difference step (default 1e-2) */
  eps?: number;
  /** default 1e-2 */
  rtol?: number;
  /** default 1e-3 */
  atol?: number;
  /** which inputs are differentiated (default: all); the others get requiresGrad false and must get no grad */
  wrt?: readonly boolean[];
  /** seed for the random projection R */
  seed?: number;
  what?: string;
}

/**
 * Checks the analytic gradients of fn against central finite differences.
 *
 * Each input is copied into a fresh contiguous f32 leaf (fn may build views of it: transposes,
 * slices, expands, to exercise non-contiguous paths). With a fixed random R (values of either
 * sign, magnitude in [0.5, 1.5)), the loss is L = sum(fn(inputs) * R): the analytic gradient is
 * obtained by seeding `.backward()` of fn's output with dL/dout = R; the numeric gradient of
 * element i is (L(x + eps e_i) - L(x - eps e_i)) / (x_i+ - x_i-), where the forward passes run
 * under noGrad on the perturbed f32 inputs, L is summed in float64, and the denominator uses the
 * actually stored (f32-rounded) perturbed values. Returns the analytic gradients.
 */
export function gradCheck(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], opts: GradCheckOptions = {}): (Float32Array | null)[] {
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-3;
  const what = opts.what ?? 'gradient';
  const wrt = opts.wrt ?? inputs.map(() => true);
  const leaves = inputs.map((t, i) => {
    if (t.dtype !== 'f32') throw new Error(`gradCheck: input ${i} is ${t.dtype}; pass integer arguments through the closure`);
    return new Tensor(Float32Array.from(stridedValues(t)), t.shape, undefined, 0, wrt[i] ?? false);
  });
  const out = fn(...leaves);
  const rng = new Rng(opts.seed ?? 12345);
  const R = new Float64Array(out.size);
  for (let i = 0; i < R.length; i++) R[i] = (rng.next() < 0.5 ? -1 : 1) * rng.uniform(0.5, 1.5);
  if (!out.requiresGrad) throw new Error(`${what}: output does not require grad`);
  out.backward(Float32Array.from(R));
  const loss = (): number => {
    const y = noGrad(() => fn(...leaves));
    const v = stridedValues(y);
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i] * R[i];
    return s;
  };
  const result: (Float32Array | null)[] = [];
  for (let k = 0; k < leaves.length; k++) {
    const leaf = leaves[k];
    if (!wrt[k]) {
      if (leaf.grad !== null) throw new Error(`${what}: input ${k} does not require grad but received one`);
      result.push(null);
      continue;
    }
    if (leaf.grad === null) throw new Error(`${what}: input ${k} received no gradient`);
    const analytic = leaf.grad.f32();
    const numeric = new Float64Array(leaf.size);
    const d = leaf.data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      const orig = d[i];
      d[i] = orig + eps;
      const xp = d[i];
      const lp = loss();
      d[i] = orig - eps;
      const xm = d[i];
      const lm = loss();
      d[i] = orig;
      numeric[i] = (lp - lm) / (xp - xm);
    }
    assertClose(new Tensor(analytic, leaf.shape), { shape: leaf.shape.slice(), data: numeric }, { rtol, atol, what: `${what} (input ${k})` });
    result.push(analytic);
  }
  return result;
}

// ---- per-backend registration ----------------------------------------------------------------

const ALL_BACKENDS: readonly BackendName[] = ['js', 'native'];

/** Why native is unavailable (or null when it loaded). */
export function nativeUnavailableReason(): string | null {
  let n: ReturnType<typeof nativeBackend>;
  try {
    n = nativeBackend();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  return 'kernels' in n ? null : n.error;
}

export function hasNative(): boolean {
  return nativeUnavailableReason() === null && availableBackends().includes('native');
}

/**
 * Registers `name [backend]` once per backend: run with that backend selected (withBackend), or
 * reported as skipped for 'native' when the addon is unavailable. fn is synchronous.
 */
export function forEachBackend(name: string, fn: (backend: BackendName) => void): void {
  for (const b of ALL_BACKENDS) {
    const label = `${name} [${b}]`;
    if (b === 'native' && !hasNative()) {
      test(label, { skip: `native backend unavailable: ${nativeUnavailableReason() ?? 'not listed'}` }, () => {});
      continue;
    }
    test(label, () => {
      withBackend(b, () => fn(b));
    });
  }
}

/**
 * The kernels' attention arguments from the shape and scale, masking off unless given
 * (not causal, no window, no positions, segments or mask).
 */
export function attnArgs(a: Pick<AttentionArgs, 'B' | 'Hq' | 'Hkv' | 'Tq' | 'Tk' | 'D' | 'scale'> & Partial<AttentionArgs>): AttentionArgs {
  return { causal: false, window: 0, qPos: null, kPos: null, qSeg: null, kSeg: null, mask: null, ...a };
}
