/**
 * Scaled-dot-product attention with causal, sliding-window, segment (document reset) and
 * explicit masks and grouped-query heads, as one fused kernel call forward and backward.
 */
import { kernels, type AttentionArgs } from '../kernels/index.js';
import { Tensor, isGradEnabled, record, shapeStr } from '../tensor.js';
import { allocF32, releaseF32 } from '../pool.js';
import { contiguous, contiguousData } from './shape.js';

export interface AttentionOptions {
  /** key j visible to query i only when pos(j) <= pos(i) */
  causal?: boolean;
  /** sliding window: only keys with pos(i) - pos(j) < window (0 = unlimited) */
  window?: number;
  /** softmax scale (default 1/sqrt(D)) */
  scale?: number;
  /** query positions [B*Tq] (default i + Tk - Tq: queries are the last Tq positions) */
  qPos?: Int32Array;
  /** key positions [B*Tk] (default j) */
  kPos?: Int32Array;
  /** segment ids [B*Tq] / [B*Tk]: attention only within equal ids (packed documents) */
  qSeg?: Int32Array;
  kSeg?: Int32Array;
  /** extra mask [B, Tq, Tk], nonzero = visible */
  mask?: Uint8Array;
}

/**
 * q [B, Hq, Tq, D], k and v [B, Hkv, Tk, D] (Hq a multiple of Hkv) -> [B, Hq, Tq, D].
 * A query that sees no key gets output 0 (and no gradient).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(`attention: expected 4-D q, k, v [B, H, T, D], got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  }
  const [B, Hq, Tq, D] = q.shape;
  const [Bk, Hkv, Tk, Dk] = k.shape;
  if (Bk !== B || Dk !== D || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new Error(`attention: shapes do not match: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}`);
  }
  if (Hkv === 0 || Hq % Hkv !== 0) throw new Error(`attention: ${Hq} query heads are not a multiple of ${Hkv} key/value heads`);
  const check = (a: ArrayLike<number> | undefined, n: number, what: string): void => {
    if (a !== undefined && a.length !== n) throw new Error(`attention: ${what} has ${a.length} entries, expected ${n}`);
  };
  check(opts.qPos, B * Tq, 'qPos');
  check(opts.kPos, B * Tk, 'kPos');
  check(opts.qSeg, B * Tq, 'qSeg');
  check(opts.kSeg, B * Tk, 'kSeg');
  check(opts.mask, B * Tq * Tk, 'mask');
  if ((opts.qSeg === undefined) !== (opts.kSeg === undefined)) throw new Error('attention: give both qSeg and kSeg, or neither');
  const a: AttentionArgs = {
    B,
    Hq,
    Hkv,
    Tq,
    Tk,
    D,
    scale: opts.scale ?? 1 / Math.sqrt(D),
    causal: opts.causal ?? false,
    window: opts.window ?? 0,
    qPos: opts.qPos ?? null,
    kPos: opts.kPos ?? null,
    qSeg: opts.qSeg ?? null,
    kSeg: opts.kSeg ?? null,
    mask: opts.mask ?? null,
  };
  if (!(isGradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad)) && !(k.isContiguous() && v.isContiguous()) && headBlocks(k) && headBlocks(v)) {
    return attentionPerHead(q, k, v, a);
  }
  // a strided input (v as a permuted view of its projection) is copied by a recorded `contiguous`
  // op, so that with freeActivations the backward gives the copy back to the pool once this op's
  // backward has read it (a bare contiguousData copy, held by the closure, was never recycled)
  const qc = q.isContiguous() ? q : contiguous(q);
  const kc = k.isContiguous() ? k : contiguous(k);
  const vc = v.isContiguous() ? v : contiguous(v);
  const qd = contiguousData(qc);
  const kd = contiguousData(kc);
  const vd = contiguousData(vc);
  const out = allocF32(B * Hq * Tq * D, false);
  const lse = new Float32Array(B * Hq * Tq);
  const kern = kernels();
  // for the backward: the scores the forward computes (where the backend keeps them), so that the
  // backward does not compute them again; given back to the pool once the backward has read them
  const training = isGradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad);
  const nScores = training ? kern.attentionScoresSize(a) : 0;
  let scores: Float32Array | null = nScores > 0 ? allocF32(nScores, false) : null;
  kern.attention(qd, kd, vd, out, lse, a, scores);
  return record(new Tensor(out, [B, Hq, Tq, D]), 'attention', [qc, kc, vc], (g) => {
    const gq = allocF32(qd.length);
    const gk = allocF32(kd.length);
    const gv = allocF32(vd.length);
    kernels().attentionBackward(qd, kd, vd, out, lse, g, gq, gk, gv, a, scores);
    if (scores !== null) {
      releaseF32(scores);
      scores = null;
    }
    return [gq, gk, gv];
  });
}

/** Whether each [T, D] block (b, h) of a [B, H, T, D] f32 tensor is contiguous (a KV cache's view). */
function headBlocks(t: Tensor): boolean {
  const [, , T, D] = t.shape;
  return t.dtype === 'f32' && t.strides[3] === 1 && (t.strides[2] === D || T <= 1);
}

/**
 * Inference with keys/values whose head blocks are contiguous but not adjacent (a KV cache's
 * [B, Hkv, len, D] view of its [B, Hkv, capacity, D] buffers): one kernel call per batch row and
 * key/value head on views of the blocks, instead of copying the whole cache on every step. Each
 * query row's computation is the same as in the one-call form (the kernel treats heads and batch
 * rows independently), so the outputs are identical.
 */
function attentionPerHead(q: Tensor, k: Tensor, v: Tensor, a: AttentionArgs): Tensor {
  const { B, Hq, Hkv, Tq, Tk, D } = a;
  const qd = contiguousData(q);
  const kd = k.data as Float32Array;
  const vd = v.data as Float32Array;
  const out = new Float32Array(B * Hq * Tq * D);
  const lse = new Float32Array(B * Hq * Tq);
  const rep = Hq / Hkv;
  const sub = <A extends Int32Array | Uint8Array>(a: A | null, b: number, n: number): A | null => (a === null || B === 1 ? a : (a.subarray(b * n, (b + 1) * n) as A));
  for (let b = 0; b < B; b++) {
    // batch row b's view: one batch row, `rep` query heads over one key/value head
    const ab: AttentionArgs = {
      ...a,
      B: 1,
      Hq: rep,
      Hkv: 1,
      qPos: sub(a.qPos, b, Tq),
      kPos: sub(a.kPos, b, Tk),
      qSeg: sub(a.qSeg, b, Tq),
      kSeg: sub(a.kSeg, b, Tk),
      mask: sub(a.mask, b, Tq * Tk),
    };
    for (let g = 0; g < Hkv; g++) {
      const h0 = b * Hq + g * rep;
      const ko = k.offset + b * k.strides[0] + g * k.strides[1];
      const vo = v.offset + b * v.strides[0] + g * v.strides[1];
      kernels().attention(
        qd.subarray(h0 * Tq * D, (h0 + rep) * Tq * D),
        kd.subarray(ko, ko + Tk * D),
        vd.subarray(vo, vo + Tk * D),
        out.subarray(h0 * Tq * D, (h0 + rep) * Tq * D),
        lse.subarray(h0 * Tq, (h0 + rep) * Tq),
        ab,
      );
    }
  }
  return new Tensor(out, [B, Hq, Tq, D]);
}
