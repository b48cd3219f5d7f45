/**
 * Pure-TypeScript kernels: the reference twin of the native addon, the browser path, and the
 * fallback when the addon cannot be built. Written for clarity first, with the obvious cache
 * optimisations (i-k-j loops, hoisted row offsets) that keep it usable for small models.
 */
import { gemmJs } from './js_gemm.js';
import { packedMatmulJs } from './js_packed.js';
import { packedLutMatmulJs } from './js_packed_lut.js';
import { bf16MatmulJs } from './js_bf16.js';
import { kmeansLloydJs, quantizeBlocksJs, widenBf16Js } from './js_quant.js';
import { BinaryOp, ReduceOp, UnaryOp, type AttentionArgs, type Kernels } from './types.js';

const SQRT1_2 = Math.SQRT1_2;
const GELU_C = Math.sqrt(2 / Math.PI);

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc Chebyshev fit), enough for f32. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

export function unaryScalar(op: UnaryOp, x: number): number {
  switch (op) {
    case UnaryOp.Neg:
      return -x;
    case UnaryOp.Exp:
      return Math.exp(x);
    case UnaryOp.Log:
      return Math.log(x);
    case UnaryOp.Sqrt:
      return Math.sqrt(x);
    case UnaryOp.Rsqrt:
      return 1 / Math.sqrt(x);
    case UnaryOp.Silu:
      return x / (1 + Math.exp(-x));
    case UnaryOp.Gelu:
      return 0.5 * x * (1 + erf(x * SQRT1_2));
    case UnaryOp.GeluTanh:
      return 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
    case UnaryOp.Tanh:
      return Math.tanh(x);
    case UnaryOp.Elu:
      return x > 0 ? x : Math.expm1(x);
    case UnaryOp.Relu:
      return x > 0 ? x : 0;
    case UnaryOp.Sigmoid:
      return 1 / (1 + Math.exp(-x));
    case UnaryOp.Abs:
      return Math.abs(x);
    case UnaryOp.Square:
      return x * x;
    case UnaryOp.Recip:
      return 1 / x;
  }
  throw new Error(`unknown unary op ${String(op)}`);
}

/** d f(x) / dx given x and y = f(x). */
export function unaryDerivative(op: UnaryOp, x: number, y: number): number {
  switch (op) {
    case UnaryOp.Neg:
      return -1;
    case UnaryOp.Exp:
      return y;
    case UnaryOp.Log:
      return 1 / x;
    case UnaryOp.Sqrt:
      return 0.5 / y;
    case UnaryOp.Rsqrt:
      return -0.5 * y * y * y;
    case UnaryOp.Silu: {
      const s = 1 / (1 + Math.exp(-x));
      return s * (1 + x * (1 - s));
    }
    case UnaryOp.Gelu:
      return 0.5 * (1 + erf(x * SQRT1_2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
    case UnaryOp.GeluTanh: {
      const u = GELU_C * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
    }
    case UnaryOp.Tanh:
      return 1 - y * y;
    case UnaryOp.Elu:
      return x > 0 ? 1 : y + 1;
    case UnaryOp.Relu:
      return x > 0 ? 1 : 0;
    case UnaryOp.Sigmoid:
      return y * (1 - y);
    case UnaryOp.Abs:
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case UnaryOp.Square:
      return 2 * x;
    case UnaryOp.Recip:
      return -y * y;
  }
  throw new Error(`unknown unary op ${String(op)}`);
}

export function binaryScalar(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case BinaryOp.Add:
      return a + b;
    case BinaryOp.Sub:
      return a - b;
    case BinaryOp.Mul:
      return a * b;
    case BinaryOp.Div:
      return a / b;
    case BinaryOp.Max:
      return a >= b ? a : b;
    case BinaryOp.Min:
      return a <= b ? a : b;
    case BinaryOp.Gt:
      return a > b ? 1 : 0;
    case BinaryOp.Eq:
      return a === b ? 1 : 0;
  }
  throw new Error(`unknown binary op ${String(op)}`);
}

// ---------------------------------------------------------------------------------------------
// attention helpers

function visible(
  qp: number,
  kp: number,
  causal: boolean,
  window: number,
  qs: number,
  ks: number,
  m: number,
): boolean {
  if (causal && kp > qp) return false;
  if (window > 0 && qp - kp >= window) return false;
  if (qs !== ks) return false;
  return m !== 0;
}

/** Fills vis[j] (1/0) for query row i of batch b. */
function visibility(a: AttentionArgs, b: number, i: number, vis: Uint8Array): void {
  const qp = a.qPos ? a.qPos[b * a.Tq + i] : i + (a.Tk - a.Tq);
  const qs = a.qSeg && a.kSeg ? a.qSeg[b * a.Tq + i] : 0;
  for (let j = 0; j < a.Tk; j++) {
    const kp = a.kPos ? a.kPos[b * a.Tk + j] : j;
    const ks = a.qSeg && a.kSeg ? a.kSeg[b * a.Tk + j] : 0;
    const m = a.mask ? a.mask[(b * a.Tq + i) * a.Tk + j] : 1;
    vis[j] = visible(qp, kp, a.causal, a.window, qs, ks, m) ? 1 : 0;
  }
}

// ---------------------------------------------------------------------------------------------

export const jsKernels: Kernels = {
  name: 'js',

  packedMatmul: packedMatmulJs,
  packedLutMatmul: packedLutMatmulJs,
  weightBuffer: (bytes) => new Uint8Array(bytes),
  bf16Matmul: bf16MatmulJs,
  quantizeBlocks: quantizeBlocksJs,
  kmeansLloyd: kmeansLloydJs,
  widenBf16: widenBf16Js,

  gemm(batch, transA, transB, M, N, K, alpha, A, aOff, lda, strideA, B, bOff, ldb, strideB, beta, C, cOff, ldc, strideC) {
    for (let b = 0; b < batch; b++) {
      gemmJs(transA, transB, M, N, K, alpha, A, aOff + b * strideA, lda, B, bOff + b * strideB, ldb, beta, C, cOff + b * strideC, ldc);
    }
  },

  unary(op, x, out, n) {
    switch (op) {
      case UnaryOp.Exp:
        for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]);
        return;
      case UnaryOp.Silu:
        for (let i = 0; i < n; i++) {
          const v = x[i];
          out[i] = v / (1 + Math.exp(-v));
        }
        return;
      default:
        for (let i = 0; i < n; i++) out[i] = unaryScalar(op, x[i]);
    }
  },

  unaryBackward(op, x, y, gy, gx, n, accumulate) {
    if (accumulate) for (let i = 0; i < n; i++) gx[i] += gy[i] * unaryDerivative(op, x[i], y[i]);
    else for (let i = 0; i < n; i++) gx[i] = gy[i] * unaryDerivative(op, x[i], y[i]);
  },

  swiglu(gate, up, out, n) {
    for (let i = 0; i < n; i++) {
      const v = gate[i];
      out[i] = Math.fround(v / (1 + Math.exp(-v))) * up[i]; // silu rounded to f32 first, as unary then binary do
    }
  },

  swigluBackward(gate, up, g, gGate, gUp, n) {
    for (let i = 0; i < n; i++) {
      const v = gate[i];
      const s = Math.fround(v / (1 + Math.exp(-v)));
      gUp[i] = g[i] * s;
      gGate[i] = Math.fround(g[i] * up[i]) * unaryDerivative(UnaryOp.Silu, v, s);
    }
  },

  binary(op, shape, a, aOff, aStrides, b, bOff, bStrides, out) {
    const rank = shape.length;
    let total = 1;
    for (let d = 0; d < rank; d++) total *= shape[d];
    if (total === 0) return;
    if (rank === 0) {
      out[0] = binaryScalar(op, a[aOff], b[bOff]);
      return;
    }
    const last = rank - 1;
    const inner = shape[last];
    const sa = aStrides[last];
    const sb = bStrides[last];
    const idx = new Int32Array(rank);
    let ia = aOff;
    let ib = bOff;
    let o = 0;
    const outerCount = total / inner;
    for (let r = 0; r < outerCount; r++) {
      switch (op) {
        case BinaryOp.Add:
          for (let j = 0; j < inner; j++) out[o + j] = a[ia + j * sa] + b[ib + j * sb];
          break;
        case BinaryOp.Mul:
          for (let j = 0; j < inner; j++) out[o + j] = a[ia + j * sa] * b[ib + j * sb];
          break;
        default:
          for (let j = 0; j < inner; j++) out[o + j] = binaryScalar(op, a[ia + j * sa], b[ib + j * sb]);
      }
      o += inner;
      // advance the outer index (odometer over dims 0..last-1)
      for (let d = last - 1; d >= 0; d--) {
        idx[d]++;
        ia += aStrides[d];
        ib += bStrides[d];
        if (idx[d] < shape[d]) break;
        ia -= aStrides[d] * shape[d];
        ib -= bStrides[d] * shape[d];
        idx[d] = 0;
      }
    }
  },

  copyStrided(shape, x, xOff, xStrides, out) {
    const rank = shape.length;
    let total = 1;
    for (let d = 0; d < rank; d++) total *= shape[d];
    if (total === 0) return;
    if (rank === 0) {
      out[0] = x[xOff];
      return;
    }
    const last = rank - 1;
    const inner = shape[last];
    const sx = xStrides[last];
    const idx = new Int32Array(rank);
    let ix = xOff;
    let o = 0;
    const outerCount = total / inner;
    for (let r = 0; r < outerCount; r++) {
      if (sx === 1) out.set(x.subarray(ix, ix + inner), o);
      else for (let j = 0; j < inner; j++) out[o + j] = x[ix + j * sx];
      o += inner;
      for (let d = last - 1; d >= 0; d--) {
        idx[d]++;
        ix += xStrides[d];
        if (idx[d] < shape[d]) break;
        ix -= xStrides[d] * shape[d];
        idx[d] = 0;
      }
    }
  },

  affine(a, out, n, alpha, beta) {
    if (alpha === 0) out.fill(beta, 0, n);
    else for (let i = 0; i < n; i++) out[i] = a[i] * alpha + beta;
  },

  axpy(n, alpha, x, y) {
    for (let i = 0; i < n; i++) y[i] += alpha * x[i];
  },

  reduce(op, x, out, outer, len, inner, argmax) {
    for (let o = 0; o < outer; o++) {
      const base = o * len * inner;
      for (let j = 0; j < inner; j++) {
        if (op === ReduceOp.Sum) {
          let s = 0;
          for (let l = 0; l < len; l++) s += x[base + l * inner + j];
          out[o * inner + j] = s;
        } else {
          let best = -Infinity;
          let bi = 0;
          for (let l = 0; l < len; l++) {
            const v = x[base + l * inner + j];
            if (v > best || (l === 0 && !(v <= best))) {
              best = v;
              bi = l;
            }
          }
          out[o * inner + j] = best;
          if (argmax) argmax[o * inner + j] = bi;
        }
      }
    }
  },

  sumSquares(x, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i] * x[i];
    return s;
  },

  softmax(x, out, rows, cols, log) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let mx = -Infinity;
      for (let j = 0; j < cols; j++) if (x[o + j] > mx) mx = x[o + j];
      if (mx === -Infinity) mx = 0;
      let s = 0;
      for (let j = 0; j < cols; j++) s += Math.exp(x[o + j] - mx);
      if (log) {
        const l = mx + Math.log(s);
        for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - l;
      } else {
        const inv = 1 / s;
        for (let j = 0; j < cols; j++) out[o + j] = Math.exp(x[o + j] - mx) * inv;
      }
    }
  },

  softmaxBackward(y, gy, gx, rows, cols, log, accumulate) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0;
      if (log) {
        for (let j = 0; j < cols; j++) s += gy[o + j];
        for (let j = 0; j < cols; j++) {
          const g = gy[o + j] - Math.exp(y[o + j]) * s;
          gx[o + j] = accumulate ? gx[o + j] + g : g;
        }
      } else {
        for (let j = 0; j < cols; j++) s += gy[o + j] * y[o + j];
        for (let j = 0; j < cols; j++) {
          const g = y[o + j] * (gy[o + j] - s);
          gx[o + j] = accumulate ? gx[o + j] + g : g;
        }
      }
    }
  },

  rmsnorm(x, w, out, rstd, rows, cols, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let ss = 0;
      for (let j = 0; j < cols; j++) ss += x[o + j] * x[o + j];
      const rs = 1 / Math.sqrt(ss / cols + eps);
      rstd[r] = rs;
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] * rs * w[j];
    }
  },

  rmsnormBackward(x, w, rstd, gy, gx, gw, rows, cols, accumulate) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const rs = rstd[r];
      // y = x * rs * w;  dL/dx = rs * (gy*w) - x * rs^3 * mean(gy*w*x)
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += gy[o + j] * w[j] * x[o + j];
      const c = (dot * rs * rs * rs) / cols;
      for (let j = 0; j < cols; j++) {
        const g = gy[o + j] * w[j] * rs - x[o + j] * c;
        gx[o + j] = accumulate ? gx[o + j] + g : g;
      }
      if (gw) for (let j = 0; j < cols; j++) gw[j] += gy[o + j] * x[o + j] * rs;
    }
  },

  layernorm(x, w, b, out, mean, rstd, rows, cols, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0;
      for (let j = 0; j < cols; j++) s += x[o + j];
      const mu = s / cols;
      let v = 0;
      for (let j = 0; j < cols; j++) {
        const d = x[o + j] - mu;
        v += d * d;
      }
      const rs = 1 / Math.sqrt(v / cols + eps);
      mean[r] = mu;
      rstd[r] = rs;
      for (let j = 0; j < cols; j++) {
        const xh = (x[o + j] - mu) * rs;
        out[o + j] = (w ? xh * w[j] : xh) + (b ? b[j] : 0);
      }
    }
  },

  layernormBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, cols, accumulate) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const mu = mean[r];
      const rs = rstd[r];
      let sg = 0;
      let sgx = 0;
      for (let j = 0; j < cols; j++) {
        const g = w ? gy[o + j] * w[j] : gy[o + j];
        const xh = (x[o + j] - mu) * rs;
        sg += g;
        sgx += g * xh;
      }
      sg /= cols;
      sgx /= cols;
      for (let j = 0; j < cols; j++) {
        const g = w ? gy[o + j] * w[j] : gy[o + j];
        const xh = (x[o + j] - mu) * rs;
        const d = rs * (g - sg - xh * sgx);
        gx[o + j] = accumulate ? gx[o + j] + d : d;
        if (gw) gw[j] += gy[o + j] * xh;
        if (gb) gb[j] += gy[o + j];
      }
    }
  },

  gather(table, ids, out, n, dim) {
    for (let i = 0; i < n; i++) {
      const s = ids[i] * dim;
      out.set(table.subarray(s, s + dim), i * dim);
    }
  },

  scatterAdd(gy, ids, gtable, n, dim) {
    for (let i = 0; i < n; i++) {
      const d = ids[i] * dim;
      const s = i * dim;
      for (let j = 0; j < dim; j++) gtable[d + j] += gy[s + j];
    }
  },

  rope(x, out, pos, cos, sin, rows, heads, headDim, rotDim, inverse, seqLen = 0, toHeadMajor = false) {
    const h = rotDim >> 1;
    const sign = inverse ? -1 : 1;
    const T = seqLen;
    if (T < 0 || (T > 0 && rows % T !== 0)) throw new RangeError(`rope: seqLen ${T} must be 0 or divide rows ${rows}`);
    for (let r = 0; r < rows; r++) {
      const t = pos[r] * h;
      const hm = T > 0 ? (Math.floor(r / T) * heads * T + (r % T)) * headDim : 0;
      for (let hd = 0; hd < heads; hd++) {
        const tm = (r * heads + hd) * headDim;
        const hmo = hm + hd * T * headDim;
        const xo = T > 0 && !toHeadMajor ? hmo : tm;
        const o = T > 0 && toHeadMajor ? hmo : tm;
        for (let i = 0; i < h; i++) {
          const c = cos[t + i];
          const s = sign * sin[t + i];
          const x1 = x[xo + i];
          const x2 = x[xo + i + h];
          out[o + i] = x1 * c - x2 * s;
          out[o + i + h] = x2 * c + x1 * s;
        }
        if (out !== x || xo !== o) for (let i = rotDim; i < headDim; i++) out[o + i] = x[xo + i];
      }
    }
  },

  attention(q, k, v, out, lse, a) {
    const { B, Hq, Hkv, Tq, Tk, D, scale } = a;
    const group = Hq / Hkv;
    const vis = new Uint8Array(Tk);
    const p = new Float64Array(Tk);
    const acc = new Float64Array(D);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < Tq; i++) {
        visibility(a, b, i, vis);
        for (let h = 0; h < Hq; h++) {
          const kh = Math.floor(h / group);
          const qo = ((b * Hq + h) * Tq + i) * D;
          const kb = (b * Hkv + kh) * Tk * D;
          let mx = -Infinity;
          for (let j = 0; j < Tk; j++) {
            if (!vis[j]) continue;
            let s = 0;
            const ko = kb + j * D;
            for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
            s *= scale;
            p[j] = s;
            if (s > mx) mx = s;
          }
          const lo = (b * Hq + h) * Tq + i;
          if (mx === -Infinity) {
            lse[lo] = -Infinity;
            for (let d = 0; d < D; d++) out[qo + d] = 0;
            continue;
          }
          let sum = 0;
          acc.fill(0);
          for (let j = 0; j < Tk; j++) {
            if (!vis[j]) continue;
            const e = Math.exp(p[j] - mx);
            sum += e;
            const vo = kb + j * D;
            for (let d = 0; d < D; d++) acc[d] += e * v[vo + d];
          }
          for (let d = 0; d < D; d++) out[qo + d] = acc[d] / sum;
          lse[lo] = mx + Math.log(sum);
        }
      }
    }
  },

  // the JS backend keeps no stored scores: its backward computes them again (same results)
  attentionScoresSize() {
    return 0;
  },

  attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, a) {
    const { B, Hq, Hkv, Tq, Tk, D, scale } = a;
    const group = Hq / Hkv;
    const vis = new Uint8Array(Tk);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < Tq; i++) {
        visibility(a, b, i, vis);
        for (let h = 0; h < Hq; h++) {
          const lo = (b * Hq + h) * Tq + i;
          const L = lse[lo];
          if (L === -Infinity) continue;
          const kh = Math.floor(h / group);
          const qo = lo * D;
          const kb = (b * Hkv + kh) * Tk * D;
          // delta = sum_d gOut * out
          let delta = 0;
          for (let d = 0; d < D; d++) delta += gOut[qo + d] * out[qo + d];
          for (let j = 0; j < Tk; j++) {
            if (!vis[j]) continue;
            const ko = kb + j * D;
            let s = 0;
            for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
            const pj = Math.exp(s * scale - L);
            // dP = gOut . v_j ; dS = p (dP - delta)
            let dp = 0;
            for (let d = 0; d < D; d++) {
              dp += gOut[qo + d] * v[ko + d];
              gv[ko + d] += pj * gOut[qo + d];
            }
            const ds = pj * (dp - delta) * scale;
            for (let d = 0; d < D; d++) {
              gq[qo + d] += ds * k[ko + d];
              gk[ko + d] += ds * q[qo + d];
            }
          }
        }
      }
    }
  },

  crossEntropy(logits, targets, losses, lse, rows, cols, ignoreIndex) {
    let count = 0;
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let mx = -Infinity;
      for (let j = 0; j < cols; j++) if (logits[o + j] > mx) mx = logits[o + j];
      let s = 0;
      for (let j = 0; j < cols; j++) s += Math.exp(logits[o + j] - mx);
      const l = mx + Math.log(s);
      lse[r] = l;
      const t = targets[r];
      if (t === ignoreIndex) {
        losses[r] = 0;
      } else {
        losses[r] = l - logits[o + t];
        count++;
      }
    }
    return count;
  },

  crossEntropyBackward(logits, targets, lse, gLoss, glogits, rows, cols, ignoreIndex, accumulate) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const t = targets[r];
      if (t === ignoreIndex) {
        if (!accumulate) glogits.fill(0, o, o + cols);
        continue;
      }
      const g = gLoss[r];
      const l = lse[r];
      for (let j = 0; j < cols; j++) {
        const d = g * (Math.exp(logits[o + j] - l) - (j === t ? 1 : 0));
        glogits[o + j] = accumulate ? glogits[o + j] + d : d;
      }
    }
  },

  adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gradScale = 1) {
    const ib1 = 1 - b1;
    const ib2 = 1 - b2;
    const decay = 1 - lr * wd;
    const scaled = gradScale !== 1;
    for (let i = 0; i < n; i++) {
      const gi = scaled ? Math.fround(g[i] * gradScale + 0) : g[i]; // as affine(g, g, n, gradScale, 0) stores it
      const mi = b1 * m[i] + ib1 * gi;
      const vi = b2 * v[i] + ib2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
    }
  },
};
