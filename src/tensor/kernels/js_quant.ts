/**
 * Pure-TypeScript twins of the quantizer kernels (native/quant_generic.cc; the format rules are
 * those of src/compress/quantize.ts and kmeans.ts, which call these through the kernel table).
 * Every operation is the float64 arithmetic of the rules in a fixed order, so the native kernel
 * (same order, IEEE double, no contraction) agrees bit for bit at any thread count.
 */
import { f32BitsToBf16, f32BitsToF16 } from './half.js';
import { scaleValue } from './js_packed.js';
import type { Kernels } from './types.js';

/** Format kinds of `quantizeBlocks` (numeric codes shared with the native addon). */
export enum QuantKind {
  Int = 0,
  Kmeans = 1,
  Bin = 2,
  Ternary = 3,
}

/** Block-scale statistics of `quantizeBlocks`. */
export enum QuantScaleMode {
  Absmax = 0,
  Absmean = 1,
  Meanstep = 2,
}

const f1 = new Float32Array(1);
const u1 = new Uint32Array(f1.buffer);

/** Bit pattern of a scale as stored: the number rounded to float32, then to bf16 or f16 (nearest even). */
export function scaleBitsOf(s: number, bf16: boolean): number {
  f1[0] = s;
  return bf16 ? f32BitsToBf16(u1[0]) : f32BitsToF16(u1[0]);
}

/** Rounds to the nearest integer, ties to even (torch.round, numpy.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Index of the centroid nearest to v given ascending midpoints mid[i] = (c[i] + c[i+1]) / 2 (a value on a midpoint takes the lower one). */
export function bucketize(mid: Float64Array | Float32Array, v: number): number {
  let lo = 0;
  let hi = mid.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (v > mid[m]) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** Midpoints between consecutive ascending centroids. */
export function midpoints(c: Float32Array | Float64Array): Float64Array {
  const mid = new Float64Array(Math.max(c.length - 1, 0));
  for (let i = 0; i + 1 < c.length; i++) mid[i] = (c[i] + c[i + 1]) / 2;
  return mid;
}

function checkQuantArgs(name: string, w: Float32Array, rows: number, cols: number, bits: number, blockSize: number, codes: Uint8Array | null, scales: Uint16Array): void {
  if (!(bits >= 1 && bits <= 8) || !Number.isInteger(bits)) throw new RangeError(`${name}: bits must be 1..8, got ${bits}`);
  if (!(blockSize >= 1) || cols % blockSize !== 0) throw new RangeError(`${name}: block size ${blockSize} must divide cols ${cols}`);
  if ((cols * bits) % 8 !== 0) throw new RangeError(`${name}: rows of ${cols} ${bits}-bit codes do not end on a byte`);
  if (w.length < rows * cols || scales.length < (rows * cols) / blockSize || (codes !== null && codes.length < (rows * cols * bits) / 8)) {
    throw new RangeError(`${name}: an array is too short for the given sizes`);
  }
}

export const quantizeBlocksJs: Kernels['quantizeBlocks'] = (w, rows, cols, kind, bits, blockSize, scaleMode, scaleBf16, eps, mid, centre, codes, scales) => {
  checkQuantArgs('quantizeBlocks', w, rows, cols, bits, blockSize, codes, scales);
  if (kind === QuantKind.Kmeans && codes !== null && mid === null) throw new RangeError('quantizeBlocks: k-means codes need the midpoints');
  const n = rows * cols;
  for (let i = 0; i < n; i++) if (!Number.isFinite(w[i])) return i;
  const B = blockSize;
  const nb = cols / B;
  const qmax = 2 ** (bits - 1) - 1;
  const rb = (cols * bits) / 8;
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    let nacc = 0;
    let o = r * rb;
    for (let b = 0; b < nb; b++) {
      const off = r * cols + b * B;
      let s = 0;
      if (scaleMode === QuantScaleMode.Absmax) {
        for (let i = 0; i < B; i++) s = Math.max(s, Math.abs(w[off + i]));
      } else {
        for (let i = 0; i < B; i++) s += Math.abs(w[off + i]);
        s /= B;
      }
      s = Math.max(s, eps);
      if (kind === QuantKind.Int && scaleMode !== QuantScaleMode.Meanstep) s /= qmax;
      const h = scaleBitsOf(s, scaleBf16);
      scales[r * nb + b] = h;
      if (codes === null) continue;
      const sv = scaleValue(h, scaleBf16);
      let mu = centre;
      if (kind === QuantKind.Bin && Number.isNaN(centre)) {
        mu = 0;
        for (let i = 0; i < B; i++) mu += w[off + i];
        mu /= B;
      }
      for (let i = off; i < off + B; i++) {
        let c: number;
        if (kind === QuantKind.Int) {
          const q = sv > 0 ? roundHalfEven(Math.max(-qmax, Math.min(qmax, w[i] / sv))) : 0;
          c = q < 0 ? q + 2 ** bits : q;
        } else if (kind === QuantKind.Kmeans) {
          c = bucketize(mid as Float64Array, sv > 0 ? w[i] / sv : 0);
        } else if (kind === QuantKind.Ternary) {
          c = (sv > 0 ? roundHalfEven(Math.max(-1, Math.min(1, w[i] / sv))) : 0) + 1;
        } else {
          c = w[i] - mu >= 0 ? 1 : 0;
        }
        acc = ((acc << bits) | c) & 0xffff;
        nacc += bits;
        if (nacc >= 8) {
          nacc -= 8;
          codes[o++] = (acc >>> nacc) & 0xff;
        }
      }
    }
  }
  return -1;
};

export const kmeansLloydJs: Kernels['kmeansLloyd'] = (x, wt, n, c, k, maxIter, tol, assign) => {
  if (x.length < n || wt.length < n || assign.length < n || c.length < k) throw new RangeError('kmeansLloyd: an array is too short for the given sizes');
  const sum = new Float64Array(k);
  const cnt = new Float64Array(k);
  let it = 0;
  for (; it < maxIter; it++) {
    const mid = midpoints(c.subarray(0, k));
    sum.fill(0);
    cnt.fill(0);
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const a = bucketize(mid, x[i]);
      if (a !== assign[i]) changed++;
      assign[i] = a;
      sum[a] += wt[i] * x[i];
      cnt[a] += wt[i];
    }
    for (let j = 0; j < k; j++) if (cnt[j] > 0) c[j] = sum[j] / cnt[j];
    for (let j = 1; j < k; j++) if (c[j] < c[j - 1]) c[j] = c[j - 1]; // monotone (cumulative max)
    if (changed / n <= tol) {
      it++;
      break;
    }
  }
  return it;
};

export const widenBf16Js: Kernels['widenBf16'] = (src, out, n) => {
  if (src.length < n || out.length < n) throw new RangeError('widenBf16: an array is too short for the given sizes');
  const ou = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) ou[i] = src[i] << 16;
};
