/**
 * The small parts of a BoxTE training step in plain loops (the training step's fast path): the box
 * corners of every relation, the batch's relation-specific time bumps and the temporal smoothness
 * regulariser, forward and backward. They compute exactly what `BoxTE.stackedBoxes`,
 * `BoxTE.timeBumps` and `BoxTE.timeRegulariser` (model.ts, tensor ops + autograd) compute, without
 * building an autograd graph per step; the tests compare both. Forward values are rounded to f32
 * like the op-based path, intermediate sums are f64.
 */
import { Tensor } from '../../tensor/index.js';
import type { BoxTE } from './model.js';
import { boxKernels } from './ops.js';
import { boxTable, cornerGrad, type BoxTable } from './kernel.js';

/**
 * Reusable buffers of a training step (Trainer keeps one): the functions below take their output
 * and scratch arrays from it instead of allocating them every step. Without one they allocate.
 * An array handed out is valid until the same name is asked for again (the next step).
 */
export class StepScratch {
  private readonly arrays = new Map<string, Float32Array | Float64Array | Int32Array | Uint8Array>();
  // (the constructor compared directly: a closure and a probe array per call cost ~0.1 ms a training step)
  private get<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(name: string, n: number, make: new (n: number) => T, zero: boolean): T {
    let a = this.arrays.get(name) as T | undefined;
    if (a === undefined || a.length !== n || a.constructor !== make) {
      a = new make(n);
      this.arrays.set(name, a);
    } else if (zero) {
      a.fill(0);
    }
    return a;
  }
  f32(name: string, n: number, zero = false): Float32Array {
    return this.get(name, n, Float32Array, zero);
  }
  f64(name: string, n: number, zero = false): Float64Array {
    return this.get(name, n, Float64Array, zero);
  }
  i32(name: string, n: number): Int32Array {
    return this.get(name, n, Int32Array, false);
  }
  u8(name: string, n: number): Uint8Array {
    return this.get(name, n, Uint8Array, false);
  }
}

/** A fresh zeroed Float32Array, or the scratch buffer `name` (zeroed when asked). */
function f32(scratch: StepScratch | undefined, name: string, n: number, zero: boolean): Float32Array {
  return scratch === undefined ? new Float32Array(n) : scratch.f32(name, n, zero);
}

/** boxTable (kernel.ts), through its native twin when there is one (same bits), into scratch buffers. */
export function boxTableStep(stacked: Float32Array, R: number, d: number, scratch?: StepScratch): BoxTable {
  const nat = boxKernels().small?.boxTable ?? null;
  if (nat === null) return boxTable(stacked, R, d, scratch);
  const n = R * d;
  const buf = (name: string): Float32Array => f32(scratch, name, 2 * n, false);
  const t = { R, d, l: buf('box.l'), u: buf('box.u'), c: buf('box.c'), w: buf('box.w') };
  nat(n, stacked, t.l, t.u, t.c, t.w);
  return t;
}

/** cornerGrad (kernel.ts), through its native twin when there is one (same bits). */
export function cornerGradStep(gc: Float32Array, gw: Float32Array, R: number, d: number, scratch?: StepScratch): Float32Array {
  const nat = boxKernels().small?.cornerGrad ?? null;
  if (nat === null) return cornerGrad(gc, gw, R, d, scratch);
  const g = f32(scratch, 'cornerGrad', 4 * R * d, false);
  nat(R * d, gc, gw, g);
  return g;
}

/** What the backward of the box corners needs from the forward. */
export interface CornerCache {
  /** corners [4, R, d]: lh, uh, lt, ut (after tanh when configured) */
  stacked: Float32Array;
  /** per side and relation: 1 / geometric mean of |shape|, and the size factor elu(s) + 1 */
  invGeo: Float64Array;
  sigma: Float64Array;
}

/** Box corners of every relation (twin of BoxTE.stackedBoxes). */
export function cornersForward(m: BoxTE, scratch?: StepScratch): CornerCache {
  const { numRelations: R, dim: d, tanh, model } = m.cfg;
  const half = model === 'boxe' ? 0.5 : 1;
  // every entry is written below
  const stacked = f32(scratch, 'corners', 4 * R * d, false);
  const invGeo = scratch === undefined ? new Float64Array(2 * R) : scratch.f64('invGeo', 2 * R);
  const sigma = scratch === undefined ? new Float64Array(2 * R) : scratch.f64('sigma', 2 * R);
  const nat = boxKernels().small;
  if (nat !== null) {
    nat.corners(R, d, half, tanh, [m.headBase.f32(), m.headShape.f32(), m.headSize.f32()], [m.tailBase.f32(), m.tailShape.f32(), m.tailSize.f32()], stacked, invGeo, sigma);
    return { stacked, invGeo, sigma };
  }
  const sides = [
    [m.headBase.f32(), m.headShape.f32(), m.headSize.f32()],
    [m.tailBase.f32(), m.tailShape.f32(), m.tailSize.f32()],
  ] as const;
  for (let s = 0; s < 2; s++) {
    const [base, shape, size] = sides[s];
    const lo = 2 * s * R * d;
    const hi = (2 * s + 1) * R * d;
    for (let r = 0; r < R; r++) {
      const o = r * d;
      let lg = 0;
      for (let i = 0; i < d; i++) lg += Math.log(Math.abs(shape[o + i]) + 1e-8);
      const ig = 1 / Math.exp(lg / d);
      const z = size[r];
      const sg = z > 0 ? z + 1 : Math.exp(z);
      invGeo[s * R + r] = ig;
      sigma[s * R + r] = sg;
      for (let i = 0; i < d; i++) {
        const delta = shape[o + i] * ig * sg * half;
        const b = base[o + i];
        let l = Math.min(b - delta, b + delta);
        let u = Math.max(b - delta, b + delta);
        if (tanh) {
          l = Math.tanh(l);
          u = Math.tanh(u);
        }
        stacked[lo + o + i] = l;
        stacked[hi + o + i] = u;
      }
    }
  }
  return { stacked, invGeo, sigma };
}

/** Gradients of the box parameters from the gradient of the corners [4, R, d], set as their .grad. */
export function cornersBackward(m: BoxTE, cache: CornerCache, g: Float32Array, scratch?: StepScratch): void {
  const { numRelations: R, dim: d, tanh, model } = m.cfg;
  const half = model === 'boxe' ? 0.5 : 1;
  const { stacked, invGeo, sigma } = cache;
  const nat = boxKernels().small;
  if (nat !== null) {
    // written (not added) by the kernel
    const gh = [f32(scratch, 'gHBase', R * d, false), f32(scratch, 'gHShape', R * d, false), f32(scratch, 'gHSize', R, false)] as const;
    const gt = [f32(scratch, 'gTBase', R * d, false), f32(scratch, 'gTShape', R * d, false), f32(scratch, 'gTSize', R, false)] as const;
    nat.cornersBwd(R, d, half, tanh, m.headShape.f32(), m.headSize.f32(), m.tailShape.f32(), m.tailSize.f32(), stacked, invGeo, sigma, g, gh, gt);
    [m.headBase, m.headShape, m.headSize].forEach((p, i) => addGrad(p, gh[i]));
    [m.tailBase, m.tailShape, m.tailSize].forEach((p, i) => addGrad(p, gt[i]));
    return;
  }
  const sides = [
    [m.headBase, m.headShape, m.headSize],
    [m.tailBase, m.tailShape, m.tailSize],
  ] as const;
  const gShat = new Float64Array(d);
  for (let s = 0; s < 2; s++) {
    const [baseP, shapeP, sizeP] = sides[s];
    const shape = shapeP.f32();
    const size = sizeP.f32();
    const gBase = new Float32Array(R * d);
    const gShape = new Float32Array(R * d);
    const gSize = new Float32Array(R);
    const lo = 2 * s * R * d;
    const hi = (2 * s + 1) * R * d;
    for (let r = 0; r < R; r++) {
      const o = r * d;
      const ig = invGeo[s * R + r];
      const sg = sigma[s * R + r];
      let gSigma = 0;
      let S = 0;
      for (let i = 0; i < d; i++) {
        let gl = g[lo + o + i];
        let gu = g[hi + o + i];
        if (tanh) {
          const l = stacked[lo + o + i];
          const u = stacked[hi + o + i];
          gl *= 1 - l * l;
          gu *= 1 - u * u;
        }
        const shat = shape[o + i] * ig;
        // c1 = base - delta, c2 = base + delta; l = min(c1, c2), u = max(c1, c2)
        const neg = shat * sg * half < 0;
        const g1 = neg ? gu : gl;
        const g2 = neg ? gl : gu;
        gBase[o + i] = g1 + g2;
        const gDelta = (g2 - g1) * half;
        gShat[i] = gDelta * sg;
        gSigma += gDelta * shat;
        S += gShat[i] * shat;
      }
      // shat_i = shape_i / geo, geo = exp(mean_j log(|shape_j| + 1e-8))
      for (let i = 0; i < d; i++) {
        const x = shape[o + i];
        const sgn = x > 0 ? 1 : x < 0 ? -1 : 0;
        gShape[o + i] = gShat[i] * ig - ((S / d) * sgn) / (Math.abs(x) + 1e-8);
      }
      const z = size[r];
      gSize[r] = gSigma * (z > 0 ? 1 : Math.exp(z));
    }
    addGrad(baseP, gBase);
    addGrad(shapeP, gShape);
    addGrad(sizeP, gSize);
  }
}

/** Relation-specific time bumps of a batch, [B, d] (twin of BoxTE.timeBumps; zeros for BoxE). */
export function timeBumpsForward(m: BoxTE, r: Int32Array, tau: Int32Array, scratch?: StepScratch): Float32Array {
  const { dim: d, k, useAlpha, noBumpDay0 } = m.cfg;
  const B = r.length;
  const nat = boxKernels().small?.timeBumps ?? null;
  const out = f32(scratch, 'timeBumps', B * d, nat === null);
  if (m.timeBumpTable === null || m.alpha === null) {
    if (nat !== null) out.fill(0);
    return out;
  }
  const K = m.timeBumpTable.f32();
  const alpha = m.alpha.f32();
  if (nat !== null) {
    nat(B, d, k, useAlpha, noBumpDay0, K, alpha, r, tau, out);
    return out;
  }
  const acc = new Float64Array(d);
  for (let i = 0; i < B; i++) {
    if (noBumpDay0 && tau[i] === 0) continue;
    acc.fill(0);
    for (let j = 0; j < k; j++) {
      const a = useAlpha ? alpha[r[i] * k + j] : 1;
      const ko = (tau[i] * k + j) * d;
      for (let c = 0; c < d; c++) acc[c] += a * K[ko + c];
    }
    for (let c = 0; c < d; c++) out[i * d + c] = acc[c];
  }
  return out;
}

/** Backward of timeBumpsForward: adds to the .grad of the time bumps and of alpha. */
export function timeBumpsBackward(m: BoxTE, r: Int32Array, tau: Int32Array, gTb: Float32Array, scratch?: StepScratch): void {
  const { dim: d, k, useAlpha, noBumpDay0 } = m.cfg;
  if (m.timeBumpTable === null || m.alpha === null) return;
  const K = m.timeBumpTable.f32();
  const alpha = m.alpha.f32();
  const gK = f32(scratch, 'gTimeBumps', K.length, true);
  const gA = f32(scratch, 'gAlpha', alpha.length, true);
  const nat = boxKernels().small?.timeBumpsBwd ?? null;
  if (nat !== null) {
    nat(r.length, d, k, useAlpha, noBumpDay0, K, alpha, r, tau, gTb, gK, gA);
    addGrad(m.timeBumpTable, gK);
    if (useAlpha) addGrad(m.alpha, gA);
    return;
  }
  for (let i = 0; i < r.length; i++) {
    if (noBumpDay0 && tau[i] === 0) continue;
    for (let j = 0; j < k; j++) {
      const a = useAlpha ? alpha[r[i] * k + j] : 1;
      const ko = (tau[i] * k + j) * d;
      let dot = 0;
      for (let c = 0; c < d; c++) {
        const gv = gTb[i * d + c];
        gK[ko + c] += a * gv;
        dot += K[ko + c] * gv;
      }
      gA[r[i] * k + j] += dot;
    }
  }
  addGrad(m.timeBumpTable, gK);
  if (useAlpha) addGrad(m.alpha, gA);
}

/**
 * lambda times the temporal smoothness regulariser (twin of BoxTE.timeRegulariser: the mean over
 * (j, i) of ||K[i+1, j] - K[i, j]||_4^4); adds its gradient to the time bumps' .grad.
 */
export function timeRegulariserStep(m: BoxTE, lambda: number, scratch?: StepScratch): number {
  const K = m.timeBumpTable;
  const { numTimes: T, k, dim: d } = m.cfg;
  if (K === null || T < 2 || lambda === 0) return 0;
  const x = K.f32();
  const nat = boxKernels().small;
  const scale = lambda / (k * (T - 1));
  const row = k * d;
  // the native kernel adds its gradient into K's (in float, as addGrad) when there is one
  if (nat !== null && K.grad !== null) return nat.timeReg(T, row, x, scale, K.grad.f32(), true);
  // the native kernel writes every entry, the loop below adds
  const g = f32(scratch, 'gTimeReg', x.length, nat === null);
  if (nat !== null) {
    const v = nat.timeReg(T, row, x, scale, g);
    addGrad(K, g);
    return v;
  }
  let sum = 0;
  for (let i = 0; i + 1 < T; i++) {
    const a = i * row;
    const b = a + row;
    for (let c = 0; c < row; c++) {
      const diff = Math.fround(x[b + c] - x[a + c]);
      const d2 = diff * diff;
      sum += d2 * d2;
      const gd = 4 * scale * d2 * diff;
      g[b + c] += gd;
      g[a + c] -= gd;
    }
  }
  addGrad(K, g);
  return sum * scale;
}

function addGrad(p: Tensor, g: Float32Array): void {
  if (p.grad === null) {
    p.grad = new Tensor(g, p.shape);
    return;
  }
  const a = p.grad.f32();
  for (let i = 0; i < a.length; i++) a[i] += g[i];
}
