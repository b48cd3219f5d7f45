/**
 * Matrix products: matmul with batch broadcasting and free transposes (a transposed view goes to
 * the GEMM kernel as a transpose flag, not a copy), and `linear` (x W^T + b, W stored [out, in]).
 */
import { kernels } from '../kernels/index.js';
import { Tensor, record, shapeSize, shapeStr, type Shape } from '../tensor.js';
import { allocF32 } from '../pool.js';
import { broadcastShapes, contiguous, contiguousData, reshape, squeeze, sumToShape } from './shape.js';

/** How one operand's last two dims are stored, for the GEMM kernel. */
interface MatArg {
  data: Float32Array;
  off: number;
  ld: number;
  trans: boolean;
  /** element stride between batch items (0: one matrix broadcast over the batch) */
  stride: number;
}

/** Row-major (trans=false) or column-major (trans=true) storage of an R x C matrix view, if any. */
function layout(R: number, C: number, sR: number, sC: number): { trans: boolean; ld: number } | null {
  if ((sC === 1 || C === 1) && (R === 1 || sR >= Math.max(C, 1))) return { trans: false, ld: R === 1 ? Math.max(C, 1) : sR };
  if ((sR === 1 || R === 1) && (C === 1 || sC >= Math.max(R, 1))) return { trans: true, ld: C === 1 ? Math.max(R, 1) : sC };
  return null;
}

/** Describes t (logical [...batch, R, C]) as a GEMM operand over `batchShape`, copying only if needed. */
function matArg(t: Tensor, batchShape: Shape): MatArg {
  const r = t.rank;
  const R = t.shape[r - 2];
  const C = t.shape[r - 1];
  const batchDims = t.shape.slice(0, r - 2);
  const own = shapeSize(batchDims);
  const nb = shapeSize(batchShape);
  let stride = 0;
  let ok = true;
  if (own > 1) {
    if (batchDims.length !== batchShape.length || batchDims.some((d, i) => d !== batchShape[i])) ok = false;
    else {
      // the batch dims must flatten to one stride
      let expect = -1;
      for (let i = batchDims.length - 1; i >= 0 && ok; i--) {
        if (batchDims[i] === 1) continue;
        const s = t.strides[i];
        if (expect === -1) stride = s;
        else if (s !== expect) ok = false;
        expect = s * batchDims[i];
      }
    }
  }
  const lay = layout(R, C, t.strides[r - 2], t.strides[r - 1]);
  if (ok && lay) return { data: t.data as Float32Array, off: t.offset, ld: lay.ld, trans: lay.trans, stride };
  // materialise as a contiguous block: [R, C] when t has no batch of its own, else [...batch, R, C]
  const target = own > 1 ? [...batchShape, R, C] : [R, C];
  const off = target.length - r;
  const strides = target.map((d, i) => {
    const j = i - off;
    if (j < 0) return 0;
    return t.shape[j] === 1 && d !== 1 ? 0 : t.strides[j];
  });
  const data = contiguousData(new Tensor(t.data, target, strides, t.offset));
  return { data, off: 0, ld: Math.max(C, 1), trans: false, stride: own > 1 && nb > 1 ? R * C : 0 };
}

/**
 * Matrix product of a [..., M, K] and b [..., K, N] (batch dims broadcast; a 1-D operand is a
 * row / column vector as in numpy).
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new Error(`matmul: expected f32 tensors, got ${a.toString()} and ${b.toString()}`);
  if (a.rank === 0 || b.rank === 0) throw new Error('matmul: scalar operands are not allowed');
  if (a.rank === 1 && b.rank === 1) return reshape(matmul(reshape(a, [1, a.shape[0]]), reshape(b, [b.shape[0], 1])), []);
  if (a.rank === 1) return squeeze(matmul(reshape(a, [1, a.shape[0]]), b), -2);
  if (b.rank === 1) return squeeze(matmul(a, reshape(b, [b.shape[0], 1])), -1);
  const M = a.shape[a.rank - 2];
  const K = a.shape[a.rank - 1];
  const N = b.shape[b.rank - 1];
  if (K !== b.shape[b.rank - 2]) throw new Error(`matmul: inner dimensions differ: ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`);
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul (batch dims)');
  const nb = shapeSize(batchShape);
  // a batch of rows times one matrix: fold the batch into M (one large GEMM)
  if (nb > 1 && shapeSize(b.shape.slice(0, -2)) === 1 && a.rank > 2 && a.isContiguous()) {
    return reshape(matmul(reshape(a, [nb * M, K]), reshape(b, [K, N])), [...batchShape, M, N]);
  }
  const outShape = [...batchShape, M, N];
  const k = kernels();
  const A = matArg(a, batchShape);
  const B = matArg(b, batchShape);
  const out = allocF32(nb * M * N, !(K > 0));
  if (K > 0 && M > 0 && N > 0) {
    k.gemm(nb, A.trans, B.trans, M, N, K, 1, A.data, A.off, A.ld, A.stride, B.data, B.off, B.ld, B.stride, 0, out, 0, N, M * N);
  }
  return record(new Tensor(out, outShape), 'matmul', [a, b], (g) => {
    let ga: Float32Array | null = null;
    let gb: Float32Array | null = null;
    if (a.requiresGrad) {
      // ga[i] = g[i] (M x N) @ op(B[i])^T (N x K)
      const full = allocF32(nb * M * K, N === 0);
      if (N > 0) k.gemm(nb, false, !B.trans, M, K, N, 1, g, 0, Math.max(N, 1), M * N, B.data, B.off, B.ld, B.stride, 0, full, 0, Math.max(K, 1), M * K);
      ga = sumToShape(full, [...batchShape, M, K], a.shape);
    }
    if (b.requiresGrad) {
      // gb[i] = op(A[i])^T (K x M) @ g[i] (M x N)
      const full = allocF32(nb * K * N, M === 0);
      if (M > 0) k.gemm(nb, !A.trans, false, K, N, M, 1, A.data, A.off, A.ld, A.stride, g, 0, Math.max(N, 1), M * N, 0, full, 0, Math.max(N, 1), K * N);
      gb = sumToShape(full, [...batchShape, K, N], b.shape);
    }
    return [ga, gb];
  });
}

/** y = x W^T (+ bias), x [..., in], W [out, in] (the Linear / Hugging Face layout), bias [out]. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  if (w.rank !== 2) throw new Error(`linear: weight must be 2-D [out, in], got ${shapeStr(w.shape)}`);
  const inF = w.shape[1];
  const outF = w.shape[0];
  if (x.shape[x.rank - 1] !== inF) throw new Error(`linear: input ${shapeStr(x.shape)} does not end in ${inF} (weight ${w.name ?? ''} ${shapeStr(w.shape)})`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) throw new Error(`linear: bias ${shapeStr(bias.shape)} does not match ${outF} outputs`);
  const rows = x.size / inF;
  const xc = contiguous(x);
  const xd = xc.f32();
  const W = matArg(w, []);
  const out = allocF32(rows * outF, false);
  const k = kernels();
  if (bias) {
    const bd = bias.f32();
    for (let r = 0; r < rows; r++) out.set(bd, r * outF);
  }
  // out = x (rows x in) @ W^T ; W stored [out, in] -> transB when W is not itself transposed
  k.gemm(1, false, !W.trans, rows, outF, inF, 1, xd, 0, inF, 0, W.data, W.off, W.ld, 0, bias ? 1 : 0, out, 0, outF, 0);
  const outShape = [...x.shape.slice(0, -1), outF];
  const inputs = bias ? [xc, w, bias] : [xc, w];
  return record(new Tensor(out, outShape), 'linear', inputs, (g) => {
    let gx: Float32Array | null = null;
    let gw: Float32Array | null = null;
    let gbias: Float32Array | null = null;
    const Wb = matArg(w, []);
    if (xc.requiresGrad) {
      // gx = g (rows x out) @ W (out x in)
      gx = allocF32(rows * inF, false);
      k.gemm(1, false, Wb.trans, rows, inF, outF, 1, g, 0, outF, 0, Wb.data, Wb.off, Wb.ld, 0, 0, gx, 0, inF, 0);
    }
    if (w.requiresGrad) {
      // gw = g^T (out x rows) @ x (rows x in)
      gw = allocF32(outF * inF, false);
      k.gemm(1, true, false, outF, inF, rows, 1, g, 0, outF, 0, xd, 0, inF, 0, 0, gw, 0, inF, 0);
    }
    if (bias && bias.requiresGrad) gbias = sumToShape(g, [rows, outF], [outF]);
    return bias ? [gx, gw, gbias] : [gx, gw];
  });
}
