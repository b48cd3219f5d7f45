/**
 * Float64 reference implementations of every tensor op, written as plain loops over row-major
 * Float64Arrays, independent of the kernels (inputs are read from tensors through their strides
 * by `fromTensor`). They follow the documented semantics in src/tensor/ops and kernels/types.ts.
 */
import type { Tensor } from '../../src/tensor/index.js';
import { stridedValues, type Arr } from './numeric.js';

export type { Arr } from './numeric.js';

export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function arr(shape: readonly number[], data?: ArrayLike<number>): Arr {
  const n = size(shape);
  const d = new Float64Array(n);
  if (data !== undefined) {
    if (data.length !== n) throw new Error(`arr: ${data.length} values for shape [${shape.join(', ')}]`);
    for (let i = 0; i < n; i++) d[i] = data[i];
  }
  return { shape: shape.slice(), data: d };
}

/** The tensor's logical values (row-major) in float64. */
export function fromTensor(t: Tensor): Arr {
  return { shape: t.shape.slice(), data: stridedValues(t) };
}

function normAxis(a: number, rank: number): number {
  const x = a < 0 ? a + rank : a;
  if (x < 0 || x >= rank) throw new Error(`reference: axis ${a} out of range for rank ${rank}`);
  return x;
}

/** Calls f(flatIndex, multiIndex) for every element of shape in row-major order. */
function forEachIndex(shape: readonly number[], f: (flat: number, idx: number[]) => void): void {
  const n = size(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    f(i, idx);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]++;
      if (idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// ---- elementwise -----------------------------------------------------------------------------

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`reference: [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Index into x (row-major) for a multi-index of the broadcast shape `shape`. */
function bcastIndex(x: Arr, shape: readonly number[], idx: readonly number[]): number {
  const off = shape.length - x.shape.length;
  let p = 0;
  let st = 1;
  for (let d = x.shape.length - 1; d >= 0; d--) {
    const i = x.shape[d] === 1 ? 0 : idx[d + off];
    p += i * st;
    st *= x.shape[d];
  }
  return p;
}

export function refBinary(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  const shape = broadcastShape(a.shape, b.shape);
  const out = arr(shape);
  forEachIndex(shape, (i, idx) => {
    out.data[i] = f(a.data[bcastIndex(a, shape, idx)], b.data[bcastIndex(b, shape, idx)]);
  });
  return out;
}

export function refWhere(c: Arr, a: Arr, b: Arr): Arr {
  const shape = broadcastShape(broadcastShape(c.shape, a.shape), b.shape);
  const out = arr(shape);
  forEachIndex(shape, (i, idx) => {
    out.data[i] = c.data[bcastIndex(c, shape, idx)] !== 0 ? a.data[bcastIndex(a, shape, idx)] : b.data[bcastIndex(b, shape, idx)];
  });
  return out;
}

export function refMap(a: Arr, f: (x: number) => number): Arr {
  const out = arr(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = f(a.data[i]);
  return out;
}

/**
 * erf to ~1e-15: Maclaurin series for |x| < 3 (terms peak near 1e4, so ~1e-12 absolute at worst),
 * Lentz-free continued fraction of erfc evaluated bottom-up for |x| >= 3.
 */
export function erf64(x: number): number {
  const z = Math.abs(x);
  if (z >= 3) {
    const r = 1 - erfcTail(z);
    return x < 0 ? -r : r;
  }
  let term = z;
  let s = z;
  for (let n = 1; n < 200; n++) {
    term *= (-z * z) / n;
    const c = term / (2 * n + 1);
    s += c;
    if (Math.abs(c) < 1e-17 * Math.abs(s)) break;
  }
  const r = (2 / Math.sqrt(Math.PI)) * s;
  return x < 0 ? -r : r;
}

/** erfc(z) for z >= 3: exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))), bottom-up. */
function erfcTail(z: number): number {
  let f = z;
  for (let k = 80; k >= 1; k--) f = z + k / 2 / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** erfc without cancellation for large positive arguments (1 - erf for small ones). */
export function erfc64(x: number): number {
  if (x >= 3) return erfcTail(x);
  if (x <= -3) return 2 - erfcTail(-x);
  return 1 - erf64(x);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** Float64 definitions of the unary ops (names as exported from ops/elementwise.ts). */
export const unaryRef: Readonly<Record<string, (x: number) => number>> = {
  neg: (x) => -x,
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
  silu: (x) => x / (1 + Math.exp(-x)),
  // 1 + erf(x/sqrt2) = erfc(-x/sqrt2): no cancellation deep in the negative tail
  gelu: (x) => 0.5 * x * erfc64(-x / Math.SQRT2),
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x))),
  tanh: (x) => Math.tanh(x),
  elu: (x) => (x > 0 ? x : Math.expm1(x)),
  relu: (x) => (x > 0 ? x : 0),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  abs: (x) => Math.abs(x),
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
};

/** Float64 derivatives of the unary ops. */
export const unaryDerivRef: Readonly<Record<string, (x: number) => number>> = {
  neg: () => -1,
  exp: (x) => Math.exp(x),
  log: (x) => 1 / x,
  sqrt: (x) => 0.5 / Math.sqrt(x),
  rsqrt: (x) => -0.5 * Math.pow(x, -1.5),
  silu: (x) => {
    const s = 1 / (1 + Math.exp(-x));
    return s + x * s * (1 - s);
  },
  gelu: (x) => 0.5 * erfc64(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
  geluTanh: (x) => {
    const t = Math.tanh(GELU_C * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
  },
  tanh: (x) => 1 - Math.tanh(x) ** 2,
  elu: (x) => (x > 0 ? 1 : Math.exp(x)),
  relu: (x) => (x > 0 ? 1 : 0),
  sigmoid: (x) => {
    const s = 1 / (1 + Math.exp(-x));
    return s * (1 - s);
  },
  abs: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  square: (x) => 2 * x,
  reciprocal: (x) => -1 / (x * x),
};

// ---- views -----------------------------------------------------------------------------------

export function refPermute(x: Arr, dims: readonly number[]): Arr {
  const d = dims.map((a) => normAxis(a, x.shape.length));
  const shape = d.map((i) => x.shape[i]);
  const xs = stridesOf(x.shape);
  const out = arr(shape);
  forEachIndex(shape, (i, idx) => {
    let p = 0;
    for (let k = 0; k < d.length; k++) p += idx[k] * xs[d[k]];
    out.data[i] = x.data[p];
  });
  return out;
}

export function refTranspose(x: Arr, a = -2, b = -1): Arr {
  const dims = x.shape.map((_, i) => i);
  const i = normAxis(a, x.shape.length);
  const j = normAxis(b, x.shape.length);
  dims[i] = j;
  dims[j] = i;
  return refPermute(x, dims);
}

export function refSlice(x: Arr, axis: number, start: number, end: number): Arr {
  const ax = normAxis(axis, x.shape.length);
  const shape = x.shape.slice();
  shape[ax] = end - start;
  const xs = stridesOf(x.shape);
  const out = arr(shape);
  forEachIndex(shape, (i, idx) => {
    let p = 0;
    for (let k = 0; k < shape.length; k++) p += (k === ax ? idx[k] + start : idx[k]) * xs[k];
    out.data[i] = x.data[p];
  });
  return out;
}

export function refExpand(x: Arr, shape: readonly number[]): Arr {
  const out = arr(shape);
  forEachIndex(shape, (i, idx) => {
    out.data[i] = x.data[bcastIndex(x, shape, idx)];
  });
  return out;
}

export function refReshape(x: Arr, shape: readonly number[]): Arr {
  return { shape: shape.slice(), data: x.data.slice() };
}

export function refConcat(xs: readonly Arr[], axis: number): Arr {
  const ax = normAxis(axis, xs[0].shape.length);
  const shape = xs[0].shape.slice();
  shape[ax] = xs.reduce((s, x) => s + x.shape[ax], 0);
  const out = arr(shape);
  const os = stridesOf(shape);
  let at = 0;
  for (const x of xs) {
    forEachIndex(x.shape, (i, idx) => {
      let p = 0;
      for (let k = 0; k < idx.length; k++) p += (k === ax ? idx[k] + at : idx[k]) * os[k];
      out.data[p] = x.data[i];
    });
    at += x.shape[ax];
  }
  return out;
}

// ---- reductions ------------------------------------------------------------------------------

function reduceGeneric(x: Arr, axes: readonly number[] | undefined, keepdim: boolean, init: number, f: (acc: number, v: number) => number): Arr {
  const rank = x.shape.length;
  const ax = axes === undefined ? x.shape.map((_, i) => i) : [...new Set(axes.map((a) => normAxis(a, rank)))];
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const out = arr(kept);
  out.data.fill(init);
  const ks = stridesOf(kept);
  forEachIndex(x.shape, (i, idx) => {
    let p = 0;
    for (let k = 0; k < rank; k++) if (!ax.includes(k)) p += idx[k] * ks[k];
    out.data[p] = f(out.data[p], x.data[i]);
  });
  const shape = keepdim ? kept : x.shape.filter((_, i) => !ax.includes(i));
  return { shape, data: out.data };
}

export function refSum(x: Arr, axes?: number | readonly number[], keepdim = false): Arr {
  return reduceGeneric(x, typeof axes === 'number' ? [axes] : axes, keepdim, 0, (a, v) => a + v);
}

export function refMean(x: Arr, axes?: number | readonly number[], keepdim = false): Arr {
  const list = typeof axes === 'number' ? [axes] : axes;
  const s = refSum(x, list, keepdim);
  const ax = list === undefined ? x.shape.map((_, i) => i) : [...new Set(list.map((a) => normAxis(a, x.shape.length)))];
  let n = 1;
  for (const a of ax) n *= x.shape[a];
  return refMap(s, (v) => v / n);
}

/** Max over one axis and the index of the first maximum. */
export function refMax(x: Arr, axis: number, keepdim = false): { values: Arr; indices: Arr } {
  const a = normAxis(axis, x.shape.length);
  const outer = size(x.shape.slice(0, a));
  const len = x.shape[a];
  const inner = size(x.shape.slice(a + 1));
  const v = new Float64Array(outer * inner);
  const ix = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let best = -Infinity;
      let bi = 0;
      for (let l = 0; l < len; l++) {
        const y = x.data[(o * len + l) * inner + j];
        if (y > best) {
          best = y;
          bi = l;
        }
      }
      v[o * inner + j] = best;
      ix[o * inner + j] = bi;
    }
  }
  const shape = x.shape.slice();
  if (keepdim) shape[a] = 1;
  else shape.splice(a, 1);
  return { values: { shape, data: v }, indices: { shape: shape.slice(), data: ix } };
}

// ---- matmul ----------------------------------------------------------------------------------

/** numpy matmul: batched with broadcast batch dims; a 1-D operand is a row / column vector. */
export function refMatmul(a: Arr, b: Arr): Arr {
  if (a.shape.length === 1) {
    const r = refMatmul({ shape: [1, a.shape[0]], data: a.data }, b);
    const s = r.shape.slice();
    s.splice(s.length - 2, 1);
    return { shape: s, data: r.data };
  }
  if (b.shape.length === 1) {
    const r = refMatmul(a, { shape: [b.shape[0], 1], data: b.data });
    return { shape: r.shape.slice(0, -1), data: r.data };
  }
  const M = a.shape[a.shape.length - 2];
  const K = a.shape[a.shape.length - 1];
  const N = b.shape[b.shape.length - 1];
  if (b.shape[b.shape.length - 2] !== K) throw new Error('refMatmul: inner dims differ');
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = arr([...batch, M, N]);
  const aB = { shape: a.shape.slice(0, -2), data: new Float64Array(0) };
  const bB = { shape: b.shape.slice(0, -2), data: new Float64Array(0) };
  forEachIndex(batch, (bi, idx) => {
    const ao = bcastIndex(aB, batch, idx) * M * K;
    const bo = bcastIndex(bB, batch, idx) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[ao + i * K + k] * b.data[bo + k * N + j];
        out.data[(bi * M + i) * N + j] = s;
      }
    }
  });
  return out;
}

/** x [..., in] W^T (W [out, in]) + bias [out]. */
export function refLinear(x: Arr, w: Arr, bias?: Arr | null): Arr {
  const [outF, inF] = w.shape;
  const rows = size(x.shape) / inF;
  const out = arr([...x.shape.slice(0, -1), outF]);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias.data[o] : 0;
      for (let i = 0; i < inF; i++) s += x.data[r * inF + i] * w.data[o * inF + i];
      out.data[r * outF + o] = s;
    }
  }
  return out;
}

// ---- fused -----------------------------------------------------------------------------------

/** Softmax (or log-softmax) over one axis. */
export function refSoftmax(x: Arr, axis = -1, log = false): Arr {
  const a = normAxis(axis, x.shape.length);
  const outer = size(x.shape.slice(0, a));
  const len = x.shape[a];
  const inner = size(x.shape.slice(a + 1));
  const out = arr(x.shape);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const at = (l: number): number => (o * len + l) * inner + j;
      let mx = -Infinity;
      for (let l = 0; l < len; l++) mx = Math.max(mx, x.data[at(l)]);
      let s = 0;
      for (let l = 0; l < len; l++) s += Math.exp(x.data[at(l)] - mx);
      for (let l = 0; l < len; l++) {
        out.data[at(l)] = log ? x.data[at(l)] - mx - Math.log(s) : Math.exp(x.data[at(l)] - mx) / s;
      }
    }
  }
  return out;
}

export function refRmsNorm(x: Arr, w: Arr, eps = 1e-6): Arr {
  const cols = x.shape[x.shape.length - 1];
  const rows = cols === 0 ? 0 : size(x.shape) / cols;
  const out = arr(x.shape);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x.data[r * cols + j] ** 2;
    const rs = 1 / Math.sqrt(ss / cols + eps);
    for (let j = 0; j < cols; j++) out.data[r * cols + j] = x.data[r * cols + j] * rs * w.data[j];
  }
  return out;
}

export function refLayerNorm(x: Arr, w: Arr | null, b: Arr | null, eps = 1e-5): Arr {
  const cols = x.shape[x.shape.length - 1];
  const rows = cols === 0 ? 0 : size(x.shape) / cols;
  const out = arr(x.shape);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += x.data[r * cols + j];
    const mu = s / cols;
    let v = 0;
    for (let j = 0; j < cols; j++) v += (x.data[r * cols + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    for (let j = 0; j < cols; j++) {
      const xh = (x.data[r * cols + j] - mu) * rs;
      out.data[r * cols + j] = xh * (w ? w.data[j] : 1) + (b ? b.data[j] : 0);
    }
  }
  return out;
}

/** Rows of table [n, dim] picked by ids (shape idsShape) -> [...idsShape, dim]. */
export function refEmbedding(ids: ArrayLike<number>, idsShape: readonly number[], table: Arr): Arr {
  const dim = table.shape[1];
  const out = arr([...idsShape, dim]);
  for (let i = 0; i < ids.length; i++) for (let j = 0; j < dim; j++) out.data[i * dim + j] = table.data[ids[i] * dim + j];
  return out;
}

export function refIndexSelect(x: Arr, axis: number, index: ArrayLike<number>): Arr {
  const a = normAxis(axis, x.shape.length);
  const shape = x.shape.slice();
  shape[a] = index.length;
  const xs = stridesOf(x.shape);
  const out = arr(shape);
  forEachIndex(shape, (i, idx) => {
    let p = 0;
    for (let k = 0; k < idx.length; k++) p += (k === a ? index[idx[k]] : idx[k]) * xs[k];
    out.data[i] = x.data[p];
  });
  return out;
}

/** Cross-entropy rows of logits [..., C]; ignored rows lose 0; mean is over non-ignored rows (0 if none). */
export function refCrossEntropy(logits: Arr, targets: ArrayLike<number>, ignoreIndex = -100, reduction: 'mean' | 'sum' | 'none' = 'mean'): Arr {
  const C = logits.shape[logits.shape.length - 1];
  const rows = size(logits.shape) / C;
  const losses = arr(logits.shape.slice(0, -1));
  let count = 0;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t === ignoreIndex) continue;
    let mx = -Infinity;
    for (let j = 0; j < C; j++) mx = Math.max(mx, logits.data[r * C + j]);
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(logits.data[r * C + j] - mx);
    const l = mx + Math.log(s) - logits.data[r * C + t];
    losses.data[r] = l;
    total += l;
    count++;
  }
  if (reduction === 'none') return losses;
  if (reduction === 'sum') return arr([], [total]);
  return arr([], [count === 0 ? 0 : total / count]);
}

/**
 * RoPE, neox rotate-half, on x [..., T, H, D] with one position per token (x.size / (H*D) of
 * them); only the first rotDim features rotate. cos/sin are computed in float64 from theta
 * (inverse frequency theta^(-2i/rotDim)) or from explicit inverse frequencies.
 */
export function refRope(x: Arr, pos: ArrayLike<number>, theta = 10000, rotDim?: number, invFreq?: ArrayLike<number>): Arr {
  const D = x.shape[x.shape.length - 1];
  const H = x.shape[x.shape.length - 2];
  const rot = rotDim ?? D;
  const h = rot / 2;
  const rows = size(x.shape) / (H * D);
  const out = arr(x.shape, x.data);
  for (let r = 0; r < rows; r++) {
    for (let hd = 0; hd < H; hd++) {
      const o = (r * H + hd) * D;
      for (let i = 0; i < h; i++) {
        const f = invFreq ? invFreq[i] : Math.pow(theta, -(2 * i) / rot);
        const ang = pos[r] * f;
        const c = Math.cos(ang);
        const s = Math.sin(ang);
        const x1 = x.data[o + i];
        const x2 = x.data[o + i + h];
        out.data[o + i] = x1 * c - x2 * s;
        out.data[o + i + h] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

export interface RefAttentionOptions {
  causal?: boolean;
  window?: number;
  scale?: number;
  qPos?: ArrayLike<number>;
  kPos?: ArrayLike<number>;
  qSeg?: ArrayLike<number>;
  kSeg?: ArrayLike<number>;
  mask?: ArrayLike<number>;
}

/**
 * Scaled-dot-product attention: q [B, Hq, Tq, D], k/v [B, Hkv, Tk, D], query head h uses kv head
 * floor(h / (Hq / Hkv)). Query i sits at qPos[b*Tq+i] (default i + Tk - Tq), key j at kPos
 * (default j). Key j is visible when: (causal -> kp <= qp), (window > 0 -> qp - kp < window),
 * equal segment ids (when given), mask != 0 (when given). A query seeing no key outputs 0.
 */
export function refAttention(q: Arr, k: Arr, v: Arr, o: RefAttentionOptions = {}): Arr {
  const [B, Hq, Tq, D] = q.shape;
  const [, Hkv, Tk] = k.shape;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const group = Hq / Hkv;
  const out = arr(q.shape);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < Tq; i++) {
        const qp = o.qPos ? o.qPos[b * Tq + i] : i + Tk - Tq;
        const scores: number[] = [];
        const keys: number[] = [];
        for (let j = 0; j < Tk; j++) {
          const kp = o.kPos ? o.kPos[b * Tk + j] : j;
          if (o.causal && kp > qp) continue;
          if (o.window !== undefined && o.window > 0 && qp - kp >= o.window) continue;
          if (o.qSeg && o.kSeg && o.qSeg[b * Tq + i] !== o.kSeg[b * Tk + j]) continue;
          if (o.mask && o.mask[(b * Tq + i) * Tk + j] === 0) continue;
          let s = 0;
          for (let d = 0; d < D; d++) s += q.data[((b * Hq + h) * Tq + i) * D + d] * k.data[((b * Hkv + kh) * Tk + j) * D + d];
          scores.push(s * scale);
          keys.push(j);
        }
        const oo = ((b * Hq + h) * Tq + i) * D;
        if (keys.length === 0) continue; // output stays 0
        const mx = Math.max(...scores);
        let z = 0;
        const p = scores.map((s) => {
          const e = Math.exp(s - mx);
          z += e;
          return e;
        });
        for (let n = 0; n < keys.length; n++) {
          const vo = ((b * Hkv + kh) * Tk + keys[n]) * D;
          for (let d = 0; d < D; d++) out.data[oo + d] += (p[n] / z) * v.data[vo + d];
        }
      }
    }
  }
  return out;
}
