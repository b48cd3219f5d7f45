/**
 * Attention layers in the Hugging Face Llama layout.
 *
 * `Attention` is Llama self-attention: `q_proj`, `k_proj`, `v_proj` project [B, T, hidden] to
 * heads (grouped-query: fewer key/value heads than query heads), RoPE rotates q and k by
 * per-token positions, the fused `attention` op applies causal / sliding-window / segment /
 * explicit masks, and `o_proj` maps back. An optional `KVCache` keeps the rotated keys and the
 * values of earlier steps (with their positions and segment ids) so decoding token by token
 * gives the same outputs as one full forward.
 *
 * `CrossAttention` takes queries from one sequence and keys/values from another, each with its
 * own positions (RoPE optional) and segment ids; HAT's byte/word connectors build on it.
 */
import {
  Tensor,
  attention,
  concat,
  contiguousData,
  isGradEnabled,
  permute,
  reshape,
  shapeStr,
  slice,
  type AttentionOptions,
} from '../tensor/index.js';
import type { Init } from './init.js';
import { Linear } from './linear.js';
import { RMSNorm } from './norm.js';
import type { VarBuilder } from './params.js';
import type { RotaryEmbedding } from './rotary.js';

/** Positions 0..T-1 (plus offset) for each of B rows, laid out [B*T]. */
export function defaultPositions(B: number, T: number, offset = 0): Int32Array {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) p[b * T + t] = offset + t;
  return p;
}

/** Whether pos [B*T] is 0..T-1 in every row. */
function isIndexPositions(pos: Int32Array, B: number, T: number): boolean {
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (pos[b * T + t] !== t) return false;
  return true;
}

function checkLen(a: ArrayLike<number> | undefined, n: number, what: string): void {
  if (a !== undefined && a.length !== n) throw new Error(`${what} has ${a.length} entries, expected ${n}`);
}

/** Cached keys/values of one attention layer: k/v [B, Hkv, T, D] with positions (and segments) [B, T]. */
export class LayerKVCache {
  private kBuf: Float32Array | null = null;
  private vBuf: Float32Array | null = null;
  private posBuf = new Int32Array(0);
  private segBuf: Int32Array | null = null;
  private B = 0;
  private H = 0;
  private D = 0;
  private cap = 0;
  private len = 0;
  private usesSegments: boolean | null = null;

  /** Number of cached steps. */
  get length(): number {
    return this.len;
  }

  /** Forgets everything. */
  reset(): void {
    this.kBuf = this.vBuf = this.segBuf = null;
    this.posBuf = new Int32Array(0);
    this.B = this.H = this.D = this.cap = this.len = 0;
    this.usesSegments = null;
  }

  /** Drops all steps after the first n (e.g. rejected speculative tokens). */
  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.len) throw new Error(`KVCache.truncate: ${n} is not in [0, ${this.len}]`);
    this.len = n;
  }

  /**
   * Forgets the n oldest steps (e.g. keys that left a sliding window for good), keeping the
   * newer ones in order. Costs one move of the kept data.
   */
  dropOldest(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.len) throw new Error(`KVCache.dropOldest: ${n} is not in [0, ${this.len}]`);
    if (n === 0) return;
    const { B, H, D, cap } = this;
    const keep = this.len - n;
    for (let bh = 0; bh < B * H; bh++) {
      const at = bh * cap * D;
      this.kBuf?.copyWithin(at, at + n * D, at + this.len * D);
      this.vBuf?.copyWithin(at, at + n * D, at + this.len * D);
    }
    for (let b = 0; b < B; b++) {
      this.posBuf.copyWithin(b * cap, b * cap + n, b * cap + this.len);
      this.segBuf?.copyWithin(b * cap, b * cap + n, b * cap + this.len);
    }
    this.len = keep;
  }

  /** Positions of the cached steps [B * length] (row b at b * length + j). */
  positions(): Int32Array {
    return this.gather(this.posBuf);
  }

  /** The next position of each batch row (last cached position + 1; 0 when empty). */
  nextPositions(): Int32Array {
    const out = new Int32Array(this.B);
    if (this.len > 0) for (let b = 0; b < this.B; b++) out[b] = this.posBuf[b * this.cap + this.len - 1] + 1;
    return out;
  }

  private gather(buf: Int32Array): Int32Array {
    const out = new Int32Array(this.B * this.len);
    for (let b = 0; b < this.B; b++) out.set(buf.subarray(b * this.cap, b * this.cap + this.len), b * this.len);
    return out;
  }

  private grow(need: number): void {
    const cap = Math.max(need, this.cap * 2, 16);
    const { B, H, D } = this;
    const nk = new Float32Array(B * H * cap * D);
    const nv = new Float32Array(B * H * cap * D);
    const np = new Int32Array(B * cap);
    const ns = this.usesSegments ? new Int32Array(B * cap) : null;
    for (let bh = 0; bh < B * H; bh++) {
      if (this.kBuf && this.vBuf) {
        nk.set(this.kBuf.subarray(bh * this.cap * D, (bh * this.cap + this.len) * D), bh * cap * D);
        nv.set(this.vBuf.subarray(bh * this.cap * D, (bh * this.cap + this.len) * D), bh * cap * D);
      }
    }
    for (let b = 0; b < B; b++) {
      np.set(this.posBuf.subarray(b * this.cap, b * this.cap + this.len), b * cap);
      if (ns && this.segBuf) ns.set(this.segBuf.subarray(b * this.cap, b * this.cap + this.len), b * cap);
    }
    this.kBuf = nk;
    this.vBuf = nv;
    this.posBuf = np;
    this.segBuf = ns;
    this.cap = cap;
  }

  /**
   * Appends new steps k/v [B, Hkv, T, D] (stored as constants: no gradient reaches earlier steps
   * through the cache; `Attention` keeps the current step differentiable) with
   * positions [B*T] and optional segments [B*T]; returns all cached keys/values and their
   * positions/segments, including the new steps.
   */
  append(
    k: Tensor,
    v: Tensor,
    pos: Int32Array,
    seg: Int32Array | null,
  ): { k: Tensor; v: Tensor; pos: Int32Array; seg: Int32Array | null } {
    if (k.rank !== 4 || v.rank !== 4 || k.shape.some((d, i) => d !== v.shape[i])) {
      throw new Error(`KVCache.append: expected k and v [B, H, T, D] of one shape, got ${shapeStr(k.shape)} and ${shapeStr(v.shape)}`);
    }
    const [B, H, T, D] = k.shape;
    if (this.usesSegments === null) {
      this.B = B;
      this.H = H;
      this.D = D;
      this.usesSegments = seg !== null;
    } else {
      if (B !== this.B || H !== this.H || D !== this.D) {
        throw new Error(`KVCache.append: new steps ${shapeStr(k.shape)} do not match the cache [${this.B}, ${this.H}, *, ${this.D}]`);
      }
      if ((seg !== null) !== this.usesSegments) throw new Error('KVCache.append: segment ids must be given on every step or on none');
    }
    checkLen(pos, B * T, 'KVCache.append: positions');
    if (seg !== null) checkLen(seg, B * T, 'KVCache.append: segments');
    if (this.len + T > this.cap) this.grow(this.len + T);
    const kd = contiguousData(k);
    const vd = contiguousData(v);
    const kb = this.kBuf as Float32Array;
    const vb = this.vBuf as Float32Array;
    const cap = this.cap;
    for (let bh = 0; bh < B * H; bh++) {
      kb.set(kd.subarray(bh * T * D, (bh + 1) * T * D), (bh * cap + this.len) * D);
      vb.set(vd.subarray(bh * T * D, (bh + 1) * T * D), (bh * cap + this.len) * D);
    }
    for (let b = 0; b < B; b++) {
      this.posBuf.set(pos.subarray(b * T, (b + 1) * T), b * cap + this.len);
      if (seg !== null && this.segBuf) this.segBuf.set(seg.subarray(b * T, (b + 1) * T), b * cap + this.len);
    }
    this.len += T;
    const strides = [H * cap * D, cap * D, D, 1];
    const shape = [B, H, this.len, D];
    return {
      k: new Tensor(kb, shape, strides, 0),
      v: new Tensor(vb, shape, strides, 0),
      pos: this.gather(this.posBuf),
      seg: this.segBuf ? this.gather(this.segBuf) : null,
    };
  }
}

/** Per-layer key/value caches of a decoder stack. */
export class KVCache {
  readonly layers: LayerKVCache[];

  constructor(numLayers: number) {
    this.layers = Array.from({ length: numLayers }, () => new LayerKVCache());
  }

  layer(i: number): LayerKVCache {
    const l = this.layers[i];
    if (l === undefined) throw new Error(`KVCache: no layer ${i} (cache has ${this.layers.length})`);
    return l;
  }

  /** Cached steps (of layer 0). */
  get length(): number {
    return this.layers.length > 0 ? this.layers[0].length : 0;
  }

  reset(): void {
    for (const l of this.layers) l.reset();
  }

  truncate(n: number): void {
    for (const l of this.layers) l.truncate(n);
  }

  /** Forgets the n oldest steps of every layer. */
  dropOldest(n: number): void {
    for (const l of this.layers) l.dropOldest(n);
  }
}

export interface AttentionConfig {
  hiddenSize: number;
  /** query heads (HF num_attention_heads) */
  numHeads: number;
  /** key/value heads (HF num_key_value_heads; default numHeads) */
  numKvHeads?: number;
  /** per-head size (default hiddenSize / numHeads) */
  headDim?: number;
  /** rotary embedding for q and k (null: no positional rotation) */
  rope: RotaryEmbedding | null;
  /** bias on q/k/v projections (HF attention_bias; default false) */
  bias?: boolean;
  /** bias on o_proj (default: same as bias, as HF Llama; Qwen2-style is bias true, oBias false) */
  oBias?: boolean;
  /** causal masking (default true) */
  causal?: boolean;
  /** sliding window in positions (0 or absent: unlimited) */
  window?: number;
  /** softmax scale (default 1/sqrt(headDim)) */
  scale?: number;
  /** q/k/v weight initialiser (default: the builder's default) */
  init?: Init;
  /** o_proj weight initialiser (default: init) */
  outInit?: Init;
}

export interface AttentionForwardOptions {
  /** per-token positions [B*T] (default 0..T-1, continuing after the cached steps with a cache) */
  positions?: Int32Array;
  /** segment (document) ids [B*T]: tokens attend only within their segment (packed sequences) */
  segments?: Int32Array;
  /** extra visibility mask [B, T, Tk] (nonzero = visible; Tk includes cached steps) */
  mask?: Uint8Array;
  /** the layer's KV cache for incremental decoding */
  cache?: LayerKVCache;
}

function headsOf(cfg: { hiddenSize: number; numHeads: number; numKvHeads?: number; headDim?: number }, what: string): { Hq: number; Hkv: number; D: number } {
  const Hq = cfg.numHeads;
  const Hkv = cfg.numKvHeads ?? Hq;
  if (!Number.isInteger(Hq) || Hq <= 0 || !Number.isInteger(Hkv) || Hkv <= 0 || Hq % Hkv !== 0) {
    throw new Error(`${what}: numHeads ${Hq} must be a positive multiple of numKvHeads ${Hkv}`);
  }
  const D = cfg.headDim ?? cfg.hiddenSize / Hq;
  if (!Number.isInteger(D) || D <= 0) throw new Error(`${what}: hidden size ${cfg.hiddenSize} is not divisible by ${Hq} heads (give headDim)`);
  return { Hq, Hkv, D };
}

/** x [B, T, C] through proj, as heads [B, T, H, D]. */
function toHeads(proj: Linear, x: Tensor, H: number, D: number): Tensor {
  const [B, T] = x.shape;
  return reshape(proj.forward(x), [B, T, H, D]);
}

/** [B, H, T, D] attention output -> [B, T, H*D] */
function mergeHeads(o: Tensor): Tensor {
  const [B, H, T, D] = o.shape;
  return reshape(permute(o, [0, 2, 1, 3]), [B, T, H * D]);
}

function check3d(x: Tensor, C: number, what: string): void {
  if (x.rank !== 3 || x.shape[2] !== C) throw new Error(`${what}: expected input [B, T, ${C}], got ${shapeStr(x.shape)}`);
}

export class Attention {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly hiddenSize: number;
  readonly rope: RotaryEmbedding | null;
  readonly causal: boolean;
  readonly window: number;
  readonly scale: number;

  /** Parameters `q_proj`, `k_proj`, `v_proj`, `o_proj` under vb (HF LlamaAttention names). */
  constructor(vb: VarBuilder, cfg: AttentionConfig) {
    const { Hq, Hkv, D } = headsOf(cfg, 'Attention');
    this.numHeads = Hq;
    this.numKvHeads = Hkv;
    this.headDim = D;
    this.hiddenSize = cfg.hiddenSize;
    this.rope = cfg.rope;
    if (this.rope !== null && this.rope.headDim !== D) throw new Error(`Attention: rotary head dim ${this.rope.headDim} != head dim ${D}`);
    this.causal = cfg.causal ?? true;
    this.window = cfg.window ?? 0;
    this.scale = cfg.scale ?? 1 / Math.sqrt(D);
    const bias = cfg.bias ?? false;
    const oBias = cfg.oBias ?? bias;
    const C = cfg.hiddenSize;
    this.qProj = new Linear(vb.pp('q_proj'), C, Hq * D, { bias, init: cfg.init });
    this.kProj = new Linear(vb.pp('k_proj'), C, Hkv * D, { bias, init: cfg.init });
    this.vProj = new Linear(vb.pp('v_proj'), C, Hkv * D, { bias, init: cfg.init });
    this.oProj = new Linear(vb.pp('o_proj'), Hq * D, C, { bias: oBias, init: cfg.outInit ?? cfg.init });
  }

  /** x [B, T, hidden] -> [B, T, hidden] */
  forward(x: Tensor, opts: AttentionForwardOptions = {}): Tensor {
    check3d(x, this.hiddenSize, 'Attention');
    const [B, T] = x.shape;
    const cache = opts.cache;
    let pos = opts.positions;
    if (pos === undefined) {
      if (cache !== undefined && cache.length > 0) {
        const next = cache.nextPositions();
        pos = new Int32Array(B * T);
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = next[b] + t;
      } else pos = defaultPositions(B, T);
    }
    checkLen(pos, B * T, 'Attention: positions');
    checkLen(opts.segments, B * T, 'Attention: segments');
    const q = toHeads(this.qProj, x, this.numHeads, this.headDim);
    const k = toHeads(this.kProj, x, this.numKvHeads, this.headDim);
    const v = toHeads(this.vProj, x, this.numKvHeads, this.headDim);
    const perm = [0, 2, 1, 3];
    // RoPE writes q and k head-major ([B, H, T, D], what the attention kernel reads): the same
    // values as permuting rope's output, without the copy
    const qh = this.rope !== null ? this.rope.applyHeads(q, pos) : permute(q, perm);
    let kh = this.rope !== null ? this.rope.applyHeads(k, pos) : permute(k, perm);
    let vh = permute(v, perm);
    let kPos = pos;
    let kSeg = opts.segments ?? null;
    if (cache !== undefined) {
      const prev = cache.length;
      const all = cache.append(kh, vh, pos, kSeg);
      if (isGradEnabled() && (kh.requiresGrad || vh.requiresGrad)) {
        // cached steps are constants; gradients still flow to this step's keys and values
        kh = prev === 0 ? kh : concat([slice(all.k, 2, 0, prev), kh], 2);
        vh = prev === 0 ? vh : concat([slice(all.v, 2, 0, prev), vh], 2);
      } else {
        kh = all.k;
        vh = all.v;
      }
      kPos = all.pos;
      kSeg = all.seg;
    }
    const aopts: AttentionOptions = { causal: this.causal, window: this.window, scale: this.scale };
    // positions 0..T-1 in every row (no cache) are the kernel's implicit positions; leaving them
    // out lets causal/window bound the scanned key range (O(T * window) instead of O(T^2))
    if (cache !== undefined || !isIndexPositions(pos, B, T)) {
      aopts.qPos = pos;
      aopts.kPos = kPos;
    }
    if (opts.segments !== undefined && kSeg !== null) {
      aopts.qSeg = opts.segments;
      aopts.kSeg = kSeg;
    }
    if (opts.mask !== undefined) aopts.mask = opts.mask;
    const o = attention(qh, kh, vh, aopts);
    return this.oProj.forward(mergeHeads(o));
  }
}

export interface CrossAttentionConfig {
  /** feature size of the query sequence */
  queryDim: number;
  /** feature size of the key/value sequence (default queryDim) */
  kvDim?: number;
  /** output feature size of o_proj (default queryDim) */
  outDim?: number;
  numHeads: number;
  numKvHeads?: number;
  /** per-head size (default queryDim / numHeads) */
  headDim?: number;
  /** rotary embedding applied to q (by query positions) and k (by key positions); null for none */
  rope?: RotaryEmbedding | null;
  bias?: boolean;
  oBias?: boolean;
  scale?: number;
  init?: Init;
  outInit?: Init;
  /**
   * RMSNorm of the projected queries and keys before RoPE (HAT's `key_query_norm`): parameters
   * `norm_query.weight` and `norm_key.weight`, over each head's features (perHead) or over the
   * full projected width (q: numHeads*headDim, k: numKvHeads*headDim). Absent: no norm.
   */
  qkNorm?: { perHead: boolean; eps?: number };
}

export interface CrossAttentionForwardOptions {
  /** query positions [B*Tq] (default 0..Tq-1) */
  qPos?: Int32Array;
  /** key positions [B*Tk] (default 0..Tk-1) */
  kPos?: Int32Array;
  /** segment ids [B*Tq] / [B*Tk]: a query sees only keys of its own segment */
  qSeg?: Int32Array;
  kSeg?: Int32Array;
  /** extra visibility mask [B, Tq, Tk] (nonzero = visible) */
  mask?: Uint8Array;
  /** key visible only when kPos <= qPos (default false) */
  causal?: boolean;
  /** only keys with qPos - kPos < window (0: unlimited) */
  window?: number;
}

/** Queries from one sequence attending to keys/values of another (q/k/v/o projections). */
export class CrossAttention {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly queryDim: number;
  readonly kvDim: number;
  readonly rope: RotaryEmbedding | null;
  readonly scale: number;
  readonly normQuery: RMSNorm | null = null;
  readonly normKey: RMSNorm | null = null;
  readonly qkNormPerHead: boolean = false;

  constructor(vb: VarBuilder, cfg: CrossAttentionConfig) {
    const { Hq, Hkv, D } = headsOf({ ...cfg, hiddenSize: cfg.queryDim }, 'CrossAttention');
    this.numHeads = Hq;
    this.numKvHeads = Hkv;
    this.headDim = D;
    this.queryDim = cfg.queryDim;
    this.kvDim = cfg.kvDim ?? cfg.queryDim;
    this.rope = cfg.rope ?? null;
    if (this.rope !== null && this.rope.headDim !== D) throw new Error(`CrossAttention: rotary head dim ${this.rope.headDim} != head dim ${D}`);
    this.scale = cfg.scale ?? 1 / Math.sqrt(D);
    const bias = cfg.bias ?? false;
    const oBias = cfg.oBias ?? bias;
    this.qProj = new Linear(vb.pp('q_proj'), this.queryDim, Hq * D, { bias, init: cfg.init });
    this.kProj = new Linear(vb.pp('k_proj'), this.kvDim, Hkv * D, { bias, init: cfg.init });
    this.vProj = new Linear(vb.pp('v_proj'), this.kvDim, Hkv * D, { bias, init: cfg.init });
    if (cfg.qkNorm !== undefined) {
      const eps = cfg.qkNorm.eps ?? 1e-6;
      this.qkNormPerHead = cfg.qkNorm.perHead;
      this.normQuery = new RMSNorm(vb.pp('norm_query'), cfg.qkNorm.perHead ? D : Hq * D, { eps });
      this.normKey = new RMSNorm(vb.pp('norm_key'), cfg.qkNorm.perHead ? D : Hkv * D, { eps });
    }
    this.oProj = new Linear(vb.pp('o_proj'), Hq * D, cfg.outDim ?? this.queryDim, { bias: oBias, init: cfg.outInit ?? cfg.init });
  }

  /** Projected q [B, T, Hq*D] or k [B, T, Hkv*D] as heads [B, T, H, D], RMS-normed when configured. */
  private heads(proj: Linear, x: Tensor, H: number, norm: RMSNorm | null): Tensor {
    const [B, T] = x.shape;
    const y = proj.forward(x);
    if (norm === null) return reshape(y, [B, T, H, this.headDim]);
    if (this.qkNormPerHead) return norm.forward(reshape(y, [B, T, H, this.headDim]));
    return reshape(norm.forward(y), [B, T, H, this.headDim]);
  }

  /** xq [B, Tq, queryDim], xkv [B, Tk, kvDim] -> [B, Tq, outDim] */
  forward(xq: Tensor, xkv: Tensor, opts: CrossAttentionForwardOptions = {}): Tensor {
    check3d(xq, this.queryDim, 'CrossAttention (queries)');
    check3d(xkv, this.kvDim, 'CrossAttention (keys/values)');
    const [B, Tq] = xq.shape;
    const Tk = xkv.shape[1];
    if (xkv.shape[0] !== B) throw new Error(`CrossAttention: batch sizes differ: queries ${shapeStr(xq.shape)}, keys/values ${shapeStr(xkv.shape)}`);
    const qPos = opts.qPos ?? defaultPositions(B, Tq);
    const kPos = opts.kPos ?? defaultPositions(B, Tk);
    checkLen(qPos, B * Tq, 'CrossAttention: qPos');
    checkLen(kPos, B * Tk, 'CrossAttention: kPos');
    const q = this.heads(this.qProj, xq, this.numHeads, this.normQuery);
    const k = this.heads(this.kProj, xkv, this.numKvHeads, this.normKey);
    const v = toHeads(this.vProj, xkv, this.numKvHeads, this.headDim);
    const perm = [0, 2, 1, 3];
    // RoPE (when on) writes q and k head-major, as the attention kernel reads them (no permute copy)
    const qh = this.rope !== null ? this.rope.applyHeads(q, qPos) : permute(q, perm);
    const kh = this.rope !== null ? this.rope.applyHeads(k, kPos) : permute(k, perm);
    const aopts: AttentionOptions = { causal: opts.causal ?? false, window: opts.window ?? 0, scale: this.scale, qPos, kPos };
    if (opts.qSeg !== undefined) aopts.qSeg = opts.qSeg;
    if (opts.kSeg !== undefined) aopts.kSeg = opts.kSeg;
    if (opts.mask !== undefined) aopts.mask = opts.mask;
    const o = attention(qh, kh, permute(v, perm), aopts);
    return this.oProj.forward(mergeHeads(o));
  }
}
