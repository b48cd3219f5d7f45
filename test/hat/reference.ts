/**
 * A float64 HAT forward for ONE document (plain loops over the reference ops of
 * test/helpers/reference.ts), written from the spec independently of src/models/hat/model.ts:
 * it uses full cross-attention in the decoder (query_norm, q/k projections, RoPE, softmax over
 * one key) and explicit per-word loops in the connector. Test oracle for the model.
 */
import type { Tensor } from '../../src/tensor/index.js';
import type { Attention, DecoderLayer, CrossAttention } from '../../src/nn/index.js';
import type { HATModel } from '../../src/models/hat/model.js';
import {
  arr,
  fromTensor,
  refAttention,
  refEmbedding,
  refLinear,
  refPermute,
  refReshape,
  refRmsNorm,
  refRope,
  type Arr,
} from '../helpers/reference.js';

const W = (t: Tensor): Arr => fromTensor(t);

function add(a: Arr, b: Arr): Arr {
  return { shape: a.shape.slice(), data: a.data.map((x, i) => x + b.data[i]) };
}

/** x [1, T, C] -> heads [1, H, T, D] (optionally rotated by pos) */
function heads(x: Arr, w: Tensor, H: number, D: number, rope: { pos: ArrayLike<number>; theta: number; invFreq: Float32Array } | null): Arr {
  const T = x.shape[1];
  let h = refReshape(refLinear(x, W(w), null), [1, T, H, D]);
  if (rope) h = refRope(h, rope.pos, rope.theta, D, rope.invFreq);
  return refPermute(h, [0, 2, 1, 3]);
}

function merge(o: Arr): Arr {
  const [, H, T, D] = o.shape;
  return refReshape(refPermute(o, [0, 2, 1, 3]), [1, T, H * D]);
}

function selfAttention(x: Arr, a: Attention, pos: ArrayLike<number>): Arr {
  const rope = a.rope ? { pos, theta: a.rope.theta, invFreq: a.rope.invFreq } : null;
  const q = heads(x, a.qProj.weight, a.numHeads, a.headDim, rope);
  const k = heads(x, a.kProj.weight, a.numKvHeads, a.headDim, rope);
  const v = heads(x, a.vProj.weight, a.numKvHeads, a.headDim, null);
  const att = refAttention(q, k, v, { causal: true, window: a.window, qPos: pos, kPos: pos });
  return refLinear(merge(att), W(a.oProj.weight), null);
}

export function refLlamaLayer(x: Arr, l: DecoderLayer, pos: ArrayLike<number>): Arr {
  const eps = l.inputLayernorm.eps;
  const h = add(x, selfAttention(refRmsNorm(x, W(l.inputLayernorm.weight), eps), l.selfAttn, pos));
  const m = refRmsNorm(h, W(l.postAttentionLayernorm.weight), l.postAttentionLayernorm.eps);
  const g = refLinear(m, W(l.mlp.gateProj.weight), null);
  const u = refLinear(m, W(l.mlp.upProj.weight), null);
  const act = { shape: g.shape.slice(), data: g.data.map((v, i) => (v / (1 + Math.exp(-v))) * u.data[i]) };
  return add(h, refLinear(act, W(l.mlp.downProj.weight), null));
}

/** Cross-attention xq [1, Tq, *] -> xkv [1, Tk, *] with q/k positions and a visibility rule. */
function refCross(ca: CrossAttention, xq: Arr, xkv: Arr, qPos: ArrayLike<number>, kPos: ArrayLike<number>, qSeg: ArrayLike<number>, kSeg: ArrayLike<number>): Arr {
  const D = ca.headDim;
  const rope = (pos: ArrayLike<number>) => (ca.rope ? { pos, theta: ca.rope.theta, invFreq: ca.rope.invFreq } : null);
  const q = heads(xq, ca.qProj.weight, ca.numHeads, D, rope(qPos));
  const k = heads(xkv, ca.kProj.weight, ca.numKvHeads, D, rope(kPos));
  const v = heads(xkv, ca.vProj.weight, ca.numKvHeads, D, null);
  const att = refAttention(q, k, v, { qPos, kPos, qSeg, kSeg });
  return refLinear(merge(att), W(ca.oProj.weight), null);
}

export interface RefOutputs {
  /** encoder activations [1, T, H_enc] */
  h: Arr;
  /** word embeddings [1, nW, H_bb] */
  words: Arr;
  /** backbone output [1, nW, H_bb] */
  backbone: Arr;
  /** logits [1, T, 256] */
  logits: Arr;
}

/** The float64 forward of one document: bytes with word lengths; positions start at 0. */
export function refHAT(m: HATModel, bytes: readonly number[], wordLens: readonly number[]): RefOutputs {
  const T = bytes.length;
  const nW = wordLens.length;
  const bytePos = Array.from({ length: T }, (_, i) => i);
  const wordPos = Array.from({ length: nW }, (_, i) => i);
  const byteWord: number[] = [];
  wordLens.forEach((l, w) => {
    for (let j = 0; j < l; j++) byteWord.push(w);
  });
  if (byteWord.length !== T) throw new Error('refHAT: word lengths do not add up');
  // encoder
  let h = refEmbedding(bytes, [1, T], W(m.embeddingLayer.weight));
  for (const l of m.encoderLayers) h = refLlamaLayer(h, l, bytePos);
  // connector: the latent query (one per word) attends to that word's bytes only
  const Hbb = m.config.backbone_config.hidden_size;
  const lq = W(m.latentQuery).data;
  const q = arr([1, nW, Hbb]);
  for (let w = 0; w < nW; w++) for (let j = 0; j < Hbb; j++) q.data[w * Hbb + j] = lq[j];
  const words = refCross(m.connector, q, h, wordPos, bytePos, wordPos, byteWord);
  // backbone
  let bb = words;
  for (const l of m.backboneLayers) bb = refLlamaLayer(bb, l, wordPos);
  // decoder connector: shift by one word
  const pred = arr([1, nW, Hbb]);
  const fw = W(m.firstWordEmbedding).data;
  for (let w = 0; w < nW; w++) for (let j = 0; j < Hbb; j++) pred.data[w * Hbb + j] = w === 0 ? fw[j] : bb.data[(w - 1) * Hbb + j];
  // decoder: full cross-attention of every byte to the single key of its word
  let y = h;
  for (const blk of m.decoderBlocks) {
    if (blk.crossAttention) {
      const qn = refRmsNorm(y, W(blk.queryNorm.weight), blk.queryNorm.eps);
      const kn = refRmsNorm(pred, W(blk.kvNorm.weight), blk.kvNorm.eps);
      y = add(y, refCross(blk.crossAttention, qn, kn, bytePos, wordPos, byteWord, wordPos));
    }
    y = refLlamaLayer(y, blk.llamaLayer, bytePos);
  }
  const logits = refLinear(refRmsNorm(y, W(m.layerNorm.weight), m.layerNorm.eps), W(m.lmHead.weight), null);
  return { h, words, backbone: bb, logits };
}
