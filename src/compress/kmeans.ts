/**
 * Scalar (1-D) weighted k-means, the Lloyd–Max quantizer of the "1-Bit Wonder" study: seeded
 * shuffle, k-means++ initialisation, Lloyd iterations with assignment by sorted midpoints
 * (bucketize), mean update, monotone centroids (cumulative max), stop when at most `tol` of the
 * assignments change or after `maxIter` iterations.
 *
 * Differences from the study's code (documented in docs/compression.md): k-means++ runs on the
 * first min(n, 2^16) shuffled samples (the study: 2^20) and Lloyd on at most `maxSamples`
 * shuffled samples (default 2^20) without the incremental sample doubling.
 */
import { Rng } from '../nn/index.js';
import { kernels } from '../tensor/index.js';
import { bucketize, midpoints } from '../tensor/kernels/js_quant.js';

export interface KMeansOptions {
  /** seed of the shuffle and the k-means++ draws (default 0) */
  seed?: number | string;
  /** optional non-negative weight per value (e.g. Adam's second moment, "fischer_kmeans") */
  weights?: Float32Array | null;
  /** Lloyd iterations at most (default 100) */
  maxIter?: number;
  /** stop when the fraction of changed assignments is <= tol (default 1e-4) */
  tol?: number;
  /** values used for fitting at most (a seeded random subset beyond it; default 2^20) */
  maxSamples?: number;
}

export interface KMeansResult {
  /** k centroids, ascending */
  centroids: Float32Array;
  iterations: number;
}

export { bucketize, midpoints };

/** Fits k ascending centroids to the values (k-means++ init, Lloyd iterations). */
export function kmeans1d(values: Float32Array, k: number, opts: KMeansOptions = {}): KMeansResult {
  return kmeans1dOf(values.length, (i) => values[i], k, opts);
}

/**
 * kmeans1d on n0 values given by `value(i)` (read only at the sampled positions, so a caller
 * need not materialise them all): the same shuffle, draws and result as kmeans1d on the array.
 */
export function kmeans1dOf(n0: number, value: (i: number) => number, k: number, opts: KMeansOptions = {}): KMeansResult {
  if (!Number.isInteger(k) || k < 1) throw new Error(`kmeans1d: k must be a positive integer, got ${k}`);
  if (n0 === 0) throw new Error('kmeans1d: no values');
  const rng = new Rng(opts.seed ?? 0);
  const maxSamples = opts.maxSamples ?? 2 ** 20;
  const w0 = opts.weights ?? null;
  if (w0 !== null && w0.length !== n0) throw new Error(`kmeans1d: ${w0.length} weights for ${n0} values`);
  // seeded subset (a partial Fisher-Yates shuffle of the indices)
  const n = Math.min(n0, maxSamples);
  const idx = partialShuffle(n0, n, rng);
  const x = new Float64Array(n);
  const wt = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = value(idx[i]);
    if (!Number.isFinite(v)) throw new Error(`kmeans1d: value ${idx[i]} is ${v}`);
    x[i] = v;
    const ww = w0 === null ? 1 : w0[idx[i]];
    if (!(ww >= 0) || !Number.isFinite(ww)) throw new Error(`kmeans1d: weight ${idx[i]} is ${ww} (must be finite and >= 0)`);
    wt[i] = ww;
  }
  const c = kmeansPlusPlus(x, wt, Math.min(n, 2 ** 16), k, rng);
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-4;
  const assign = new Int32Array(n).fill(-1);
  const it = kernels().kmeansLloyd(x, wt, n, c, k, maxIter, tol, assign);
  return { centroids: Float32Array.from(c), iterations: it };
}

/**
 * The first n positions of a partial Fisher-Yates shuffle of 0..n0-1 (swap i with i + rng.int(n0 - i)
 * for i < n). Only the displaced positions are stored (a map) when n is small against n0 or `sparse`
 * is true; both ways give the same positions.
 */
export function partialShuffle(n0: number, n: number, rng: Rng, sparse = 4 * n < n0): Int32Array {
  const out = new Int32Array(n);
  if (!sparse) {
    const idx = new Int32Array(n0);
    for (let i = 0; i < n0; i++) idx[i] = i;
    for (let i = 0; i < n; i++) {
      const j = i + rng.int(n0 - i);
      const t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
    out.set(idx.subarray(0, n));
    return out;
  }
  const moved = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(n0 - i);
    const vi = moved.get(i) ?? i;
    const vj = moved.get(j) ?? j;
    out[i] = vj;
    moved.set(j, vi);
  }
  return out;
}

/** k-means++ seeding on the first m samples; returns k ascending centroids (duplicates when fewer distinct values). */
function kmeansPlusPlus(x: Float64Array, wt: Float64Array, m: number, k: number, rng: Rng): Float64Array {
  const centers: number[] = [];
  // first centre: drawn with probability proportional to the weight
  let tw = 0;
  for (let i = 0; i < m; i++) tw += wt[i];
  const pick = (prob: Float64Array | null, total: number): number => {
    let r = rng.float() * total;
    for (let i = 0; i < m; i++) {
      r -= prob === null ? wt[i] : prob[i];
      if (r < 0) return i;
    }
    return m - 1;
  };
  centers.push(x[tw > 0 ? pick(null, tw) : rng.int(m)]);
  const d2 = new Float64Array(m);
  for (let i = 0; i < m; i++) d2[i] = (x[i] - centers[0]) ** 2;
  const p = new Float64Array(m);
  while (centers.length < k) {
    let total = 0;
    for (let i = 0; i < m; i++) {
      p[i] = wt[i] * d2[i];
      total += p[i];
    }
    if (!(total > 0)) {
      centers.push(centers[centers.length - 1]); // every value is already a centre
      continue;
    }
    const cNew = x[pick(p, total)];
    centers.push(cNew);
    for (let i = 0; i < m; i++) {
      const d = (x[i] - cNew) ** 2;
      if (d < d2[i]) d2[i] = d;
    }
  }
  return Float64Array.from(centers.sort((a, b) => a - b));
}
