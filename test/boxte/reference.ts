/**
 * Float64 reference of the BoxTE / BoxE score, written independently of the tensor code (plain
 * loops over named parameter arrays), for value and finite-difference gradient checks.
 */
import type { BoxTE, BoxTEConfig } from '../../src/models/boxte/index.js';

export type RefParams = Record<string, Float64Array>;

export function paramsOf(model: BoxTE): RefParams {
  const out: RefParams = {};
  for (const [name, p] of model.store.entries()) out[name] = Float64Array.from(p.f32());
  return out;
}

/** Corners [l, u] of relation r's head (side 0) or tail (side 1) box. */
export function refBox(P: RefParams, cfg: BoxTEConfig, side: 0 | 1, r: number): { l: number[]; u: number[] } {
  const d = cfg.dim;
  const pre = side === 0 ? 'relation.head' : 'relation.tail';
  const base = P[`${pre}.base`];
  const shape = P[`${pre}.shape`];
  const sz = P[`${pre}.size`][r];
  let logSum = 0;
  for (let k = 0; k < d; k++) logSum += Math.log(Math.abs(shape[r * d + k]) + 1e-8);
  const geo = Math.exp(logSum / d);
  const sigma = (sz > 0 ? sz : Math.exp(sz) - 1) + 1;
  const l: number[] = [];
  const u: number[] = [];
  for (let k = 0; k < d; k++) {
    let delta = (shape[r * d + k] / geo) * sigma;
    if (cfg.model === 'boxe') delta /= 2;
    const c1 = base[r * d + k] - delta;
    const c2 = base[r * d + k] + delta;
    let lo = Math.min(c1, c2);
    let hi = Math.max(c1, c2);
    if (cfg.tanh) {
      lo = Math.tanh(lo);
      hi = Math.tanh(hi);
    }
    l.push(lo);
    u.push(hi);
  }
  return { l, u };
}

export function refDist(p: number, l: number, u: number): number {
  const c = (l + u) / 2;
  const w = u - l + 1;
  if (p >= l && p <= u) return Math.abs(p - c) / w;
  return Math.abs(p - c) * w - 0.5 * (w - 1) * (w - 1 / w);
}

export function refTimeBump(P: RefParams, cfg: BoxTEConfig, r: number, tau: number): number[] {
  const d = cfg.dim;
  const tb = new Array<number>(d).fill(0);
  if (cfg.model !== 'boxte' || (cfg.noBumpDay0 && tau === 0)) return tb;
  const K = P['time.bumps'];
  const alpha = P['relation.alpha'];
  for (let j = 0; j < cfg.k; j++) {
    const a = cfg.useAlpha ? alpha[r * cfg.k + j] : 1;
    for (let x = 0; x < d; x++) tb[x] += a * K[(tau * cfg.k + j) * d + x];
  }
  return tb;
}

export function refScore(P: RefParams, cfg: BoxTEConfig, h: number, r: number, t: number, tau: number): number {
  const d = cfg.dim;
  const tb = refTimeBump(P, cfg, r, tau);
  const bh = refBox(P, cfg, 0, r);
  const bt = refBox(P, cfg, 1, r);
  const base = P['entity.base'];
  const bump = P['entity.bump'];
  let sh = 0;
  let st = 0;
  for (let k = 0; k < d; k++) {
    let ph = base[h * d + k] + bump[t * d + k] + tb[k];
    let pt = base[t * d + k] + bump[h * d + k] + tb[k];
    if (cfg.tanh) {
      ph = Math.tanh(ph);
      pt = Math.tanh(pt);
    }
    const dh = refDist(ph, bh.l[k], bh.u[k]);
    const dt = refDist(pt, bt.l[k], bt.u[k]);
    sh += cfg.order === 2 ? dh * dh : dh;
    st += cfg.order === 2 ? dt * dt : dt;
  }
  return cfg.order === 2 ? Math.sqrt(sh) + Math.sqrt(st) : sh + st;
}

/** Mean over groups of -log softmax(-score)[0] over (1 + n) candidates per group. */
export function refLoss(P: RefParams, cfg: BoxTEConfig, h: Int32Array, r: Int32Array, t: Int32Array, tau: Int32Array, G: number): number {
  let total = 0;
  const B = h.length / G;
  for (let i = 0; i < B; i++) {
    const s: number[] = [];
    for (let j = 0; j < G; j++) {
      const q = i * G + j;
      s.push(refScore(P, cfg, h[q], r[q], t[q], tau[q]));
    }
    const mx = Math.max(...s.map((x) => -x));
    const lse = mx + Math.log(s.reduce((acc, x) => acc + Math.exp(-x - mx), 0));
    total += lse + s[0];
  }
  return total / B;
}

/** Temporal regulariser (mean over (j, i) of the L4^4 difference of consecutive time bumps). */
export function refTimeReg(P: RefParams, cfg: BoxTEConfig): number {
  const K = P['time.bumps'];
  const { dim: d, k, numTimes: T } = cfg;
  let s = 0;
  for (let i = 0; i + 1 < T; i++) {
    for (let j = 0; j < k; j++) {
      for (let x = 0; x < d; x++) s += (K[((i + 1) * k + j) * d + x] - K[(i * k + j) * d + x]) ** 4;
    }
  }
  return s / (k * (T - 1));
}
