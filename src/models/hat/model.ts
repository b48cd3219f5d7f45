/**
 * The Hierarchical Autoregressive Transformer as released (TFree-HAT), built from src/nn layers.
 *
 *   bytes [B, T] --embedding_layer--> encoder (Llama layers, causal sliding-window over bytes)
 *     --> h [B, T, H_enc]                         (no final norm: the raw residual stream)
 *   encoder_connector: one latent query per word cross-attends to exactly that word's bytes
 *     (q rotated by word index, k by byte index) --> word embeddings [B, W, H_bb]
 *   backbone (Llama layers over words, causal, word RoPE; no embedding, head or final norm)
 *   decoder_connector: pred[w] = backbone[w - 1], pred[first word of a document] = first_word_embedding
 *   decoder: per layer, y += cross-attention of each byte of word w to the single key pred[w]
 *     (= o_proj(v_proj(kv_norm(pred[w]))): softmax over one key is 1, the "guide vector"), then
 *     a Llama layer (causal sliding-window over bytes); starts from the encoder activations h
 *   layer_norm (RMSNorm) --> lm_head --> logits [B, T, 256]; position t predicts byte t + 1.
 *
 * Parameter names equal the released safetensors names by construction (VarBuilder paths).
 * A packed batch holds several documents per row: byte and word positions restart at each
 * document, attention never crosses a document boundary, and the first word of each document
 * is decoded from `first_word_embedding`.
 */
import {
  Tensor,
  add,
  concat,
  crossEntropy,
  expand,
  indexSelect,
  reshape,
} from '../../tensor/index.js';
import {
  CrossAttention,
  DecoderLayer,
  Embedding,
  KVCache,
  Linear,
  ParamStore,
  RMSNorm,
  RotaryEmbedding,
  VarBuilder,
  init,
  type LoadValue,
} from '../../nn/index.js';
import { ropeScalingOf, type HATConfig, type TransformerHATModelConfig } from './config.js';

// ---- batches ---------------------------------------------------------------------------------

/** Target value of positions that are not predicted (padding, last byte of a document). */
export const IGNORE_INDEX = -100;

/** A packed batch of byte rows with their word boundaries. */
export interface HATBatch {
  /** rows */
  B: number;
  /** bytes per row (rows are padded to T) */
  T: number;
  /** byte values [B*T] (0..255); bytes after a row's last word are padding */
  bytes: Int32Array | Uint8Array;
  /**
   * per row: cumulative word lengths [0, len0, len0+len1, ...] (the reference's
   * `cumulative_seq_lengths_per_word`); the last entry is the number of used bytes (<= T)
   */
  cuSeqlens: readonly ArrayLike<number>[];
  /**
   * document id (>= 0) of every byte [B*T] (padding entries are ignored); attention resets where
   * it changes and a word must not span two documents. Default: one document per row.
   */
  documents?: Int32Array;
}

/** Index arrays derived from a batch (what every attention and gather of the forward needs). */
export interface HATLayout {
  B: number;
  T: number;
  /** word slots per row (max words of a row, at least 1) */
  W: number;
  bytes: Int32Array;
  /** [B*T] byte position inside its document (the connector's key rotation) */
  bytePos: Int32Array;
  /**
   * [B*T] byte index in its row: the self-attention positions of encoder and decoder. RoPE is
   * relative and attention never crosses documents, so this equals per-document positions,
   * and it lets the attention kernel bound its key range by causality and the window.
   */
  byteIndex: Int32Array;
  /** [B*T] document index inside the row (0, 1, ... in order), -1 for padding */
  byteSeg: Int32Array;
  /** [B*T] word slot w of the byte inside its row, -1 for padding */
  byteWord: Int32Array;
  /** [B*T] row of the byte's word in a flat [B*W] word array (padding: the row's slot 0) */
  byteWordFlat: Int32Array;
  /** [B*W] word position inside its document (the connector's query rotation) */
  wordPos: Int32Array;
  /** [B*W] word slot index in its row: the backbone's self-attention positions (see byteIndex) */
  wordIndex: Int32Array;
  /** [B*W] document index of the word inside the row, -1 for padding slots */
  wordSeg: Int32Array;
  /** [B*W] w for used slots, -2 for padding slots (the connector's query segments) */
  wordSlot: Int32Array;
  /** [B*W] row of pred in concat([first_word_embedding, backbone flat [B*W]]) */
  predIndex: Int32Array;
  /** [B*T] next byte of the same document, IGNORE_INDEX otherwise */
  targets: Int32Array;
  /** words per row */
  nWords: number[];
  /** used bytes per row */
  nBytes: number[];
}

/** Checks a batch and derives positions, segments, word maps and targets. Errors name row and index. */
export function prepareLayout(batch: HATBatch): HATLayout {
  const { B, T } = batch;
  if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) throw new Error(`HAT batch: B and T must be positive integers, got B=${B}, T=${T}`);
  if (batch.bytes.length !== B * T) throw new Error(`HAT batch: bytes has ${batch.bytes.length} entries, expected B*T = ${B * T}`);
  if (batch.cuSeqlens.length !== B) throw new Error(`HAT batch: cuSeqlens has ${batch.cuSeqlens.length} rows, expected ${B}`);
  if (batch.documents !== undefined && batch.documents.length !== B * T) throw new Error(`HAT batch: documents has ${batch.documents.length} entries, expected ${B * T}`);
  const nWords: number[] = [];
  const nBytes: number[] = [];
  for (let b = 0; b < B; b++) {
    const cu = batch.cuSeqlens[b];
    if (cu.length < 1 || cu[0] !== 0) throw new Error(`HAT batch: row ${b}: cuSeqlens must start with 0`);
    for (let i = 1; i < cu.length; i++) {
      if (!Number.isInteger(cu[i]) || cu[i] <= cu[i - 1]) throw new Error(`HAT batch: row ${b}: cuSeqlens must increase strictly (entry ${i}: ${cu[i - 1]} -> ${cu[i]})`);
    }
    if (cu[cu.length - 1] > T) throw new Error(`HAT batch: row ${b}: words cover ${cu[cu.length - 1]} bytes, more than T = ${T}`);
    nWords.push(cu.length - 1);
    nBytes.push(cu[cu.length - 1]);
  }
  const W = Math.max(1, ...nWords);
  const bytes = new Int32Array(B * T);
  const bytePos = new Int32Array(B * T);
  const byteSeg = new Int32Array(B * T).fill(-1);
  const byteWord = new Int32Array(B * T).fill(-1);
  const byteWordFlat = new Int32Array(B * T);
  const wordPos = new Int32Array(B * W);
  const byteIndex = new Int32Array(B * T);
  const wordIndex = new Int32Array(B * W);
  for (let i = 0; i < B * T; i++) byteIndex[i] = i % T;
  for (let i = 0; i < B * W; i++) wordIndex[i] = i % W;
  const wordSeg = new Int32Array(B * W).fill(-1);
  const wordSlot = new Int32Array(B * W).fill(-2);
  const predIndex = new Int32Array(B * W);
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  const docs = batch.documents;
  for (let b = 0; b < B; b++) {
    const cu = batch.cuSeqlens[b];
    let prevDoc = Number.NaN;
    let seg = -1; // documents are numbered per row in order, so equal ids far apart never see each other
    let bpos = 0;
    let wpos = 0;
    for (let w = 0; w < nWords[b]; w++) {
      const s = cu[w];
      const e = cu[w + 1];
      const doc = docs ? docs[b * T + s] : 0;
      if (!Number.isInteger(doc) || doc < 0) throw new Error(`HAT batch: row ${b}, byte ${s}: document id must be a non-negative integer, got ${doc}`);
      const first = doc !== prevDoc;
      if (first) {
        bpos = 0;
        wpos = 0;
        prevDoc = doc;
        seg++;
      }
      const wi = b * W + w;
      wordPos[wi] = wpos++;
      wordSeg[wi] = seg;
      wordSlot[wi] = w;
      predIndex[wi] = first ? 0 : 1 + wi - 1; // concat([first_word_embedding, backbone]) rows
      for (let t = s; t < e; t++) {
        const i = b * T + t;
        if (docs && docs[i] !== doc) throw new Error(`HAT batch: row ${b}: word ${w} (bytes ${s}..${e - 1}) spans documents ${doc} and ${docs[i]}`);
        const v = batch.bytes[i];
        if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`HAT batch: row ${b}, byte ${t}: value ${v} is not a byte`);
        bytes[i] = v;
        bytePos[i] = bpos++;
        byteSeg[i] = seg;
        byteWord[i] = w;
        byteWordFlat[i] = wi;
      }
    }
    for (let t = nBytes[b]; t < T; t++) {
      bytePos[b * T + t] = t - nBytes[b];
      byteWordFlat[b * T + t] = b * W;
    }
    for (let t = 0; t + 1 < nBytes[b]; t++) {
      const i = b * T + t;
      if (byteSeg[i + 1] === byteSeg[i]) targets[i] = bytes[i + 1];
    }
  }
  return { B, T, W, bytes, bytePos, byteIndex, byteSeg, byteWord, byteWordFlat, wordPos, wordIndex, wordSeg, wordSlot, predIndex, targets, nWords, nBytes };
}

/** One row of words (byte arrays), with an optional document id per word (default 0). */
export interface WordRow {
  words: readonly ArrayLike<number>[];
  docs?: ArrayLike<number>;
}

/** A batch from rows of words; T defaults to the longest row. */
export function batchFromWords(rows: readonly WordRow[], T?: number): HATBatch {
  const lens = rows.map((r) => r.words.reduce((s, w) => s + w.length, 0));
  const TT = T ?? Math.max(1, ...lens);
  const bytes = new Int32Array(rows.length * TT);
  const documents = new Int32Array(rows.length * TT);
  const cuSeqlens: Int32Array[] = [];
  rows.forEach((r, b) => {
    if (lens[b] > TT) throw new Error(`batchFromWords: row ${b} has ${lens[b]} bytes, more than T = ${TT}`);
    const cu = new Int32Array(r.words.length + 1);
    let t = 0;
    r.words.forEach((w, i) => {
      if (w.length === 0) throw new Error(`batchFromWords: row ${b}, word ${i} is empty`);
      for (let j = 0; j < w.length; j++) {
        bytes[b * TT + t] = w[j];
        documents[b * TT + t] = r.docs ? r.docs[i] : 0;
        t++;
      }
      cu[i + 1] = t;
    });
    cuSeqlens.push(cu);
  });
  return { B: rows.length, T: TT, bytes, cuSeqlens, documents };
}

// ---- the model -------------------------------------------------------------------------------

export interface HATModelOptions {
  /** initialisation seed (default 0) */
  seed?: number | string;
  /** std of the normal initialisation of every weight (default 0.02, as HF `initializer_range`) */
  initStd?: number;
  /** take parameter values from here instead of initialising (shape-checked) */
  source?: (name: string, expectedShape: readonly number[]) => LoadValue | undefined;
}

export interface ForwardOptions {
  /** use the full decoder cross-attention instead of the guide-vector shortcut (test oracle) */
  fullCrossAttention?: boolean;
}

function rotary(c: TransformerHATModelConfig): RotaryEmbedding {
  return new RotaryEmbedding({ headDim: c.hidden_size / c.num_attention_heads, theta: c.rope_theta, scaling: ropeScalingOf(c) });
}

/**
 * A Llama layer of a module. `windowed`: apply the module's `sliding_window` (encoder and decoder
 * only: the reference sets `self_attn.sliding_window` on encoder and decoder layers and never on
 * the backbone, so a `backbone_config.sliding_window` is stored but not applied).
 */
function llamaLayer(vb: VarBuilder, c: TransformerHATModelConfig, rope: RotaryEmbedding, windowed = true): DecoderLayer {
  return new DecoderLayer(vb, {
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numHeads: c.num_attention_heads,
    numKvHeads: c.num_key_value_heads,
    rmsNormEps: c.rms_norm_eps,
    mlpBias: c.mlp_bias,
    window: windowed ? (c.sliding_window ?? 0) : 0,
    rope,
  });
}

/** One decoder block: optional cross-attention to the word's prediction, then a Llama layer. */
export class HATDecoderBlock {
  readonly llamaLayer: DecoderLayer;
  readonly crossAttention: CrossAttention | null;
  readonly queryNorm: RMSNorm;
  readonly kvNorm: RMSNorm;

  constructor(vb: VarBuilder, cfg: HATConfig, withCross: boolean, rope: RotaryEmbedding) {
    const d = cfg.decoder_config;
    const x = d.cross_attention_config;
    // registration order of the reference HATDecoderBlock: llama_layer, cross_attention, query_norm, kv_norm
    this.llamaLayer = llamaLayer(vb.pp('llama_layer'), d, rope);
    this.crossAttention = withCross
      ? new CrossAttention(vb.pp('cross_attention'), {
          queryDim: x.hidden_size_q,
          kvDim: x.hidden_size_kv,
          outDim: x.hidden_size_q,
          numHeads: x.num_attention_heads,
          numKvHeads: x.attention_num_kv_heads,
          headDim: x.hidden_size / x.num_attention_heads,
          rope,
          qkNorm: x.key_query_norm ? { perHead: x.key_query_norm_per_head, eps: d.rms_norm_eps } : undefined,
        })
      : null;
    this.queryNorm = new RMSNorm(vb.pp('query_norm'), x.hidden_size_q, { eps: d.rms_norm_eps });
    this.kvNorm = new RMSNorm(vb.pp('kv_norm'), x.hidden_size_kv, { eps: d.rms_norm_eps });
  }

  /**
   * The guide vectors o_proj(repeat_kv(v_proj(kv_norm(pred)))) [N, H_dec] of predictions
   * pred [N, H_bb]: the cross-attention output of any query that sees only that one key.
   */
  guide(pred: Tensor): Tensor | null {
    const ca = this.crossAttention;
    if (ca === null) return null;
    const N = pred.shape[0];
    let v = ca.vProj.forward(this.kvNorm.forward(pred));
    const rep = ca.numHeads / ca.numKvHeads;
    if (rep > 1) v = reshape(expand(reshape(v, [N, ca.numKvHeads, 1, ca.headDim]), [N, ca.numKvHeads, rep, ca.headDim]), [N, ca.numHeads * ca.headDim]);
    return ca.oProj.forward(v);
  }
}

export class HATModel {
  readonly config: HATConfig;
  readonly store: ParamStore;
  /** parameters of the architecture (numParams), counted in the constructor */
  private readonly paramCount: number;
  // encoder
  readonly embeddingLayer: Embedding;
  readonly encoderLayers: DecoderLayer[];
  // encoder connector
  readonly latentQuery: Tensor;
  readonly connector: CrossAttention;
  // backbone
  readonly backboneLayers: DecoderLayer[];
  // decoder connector + decoder + head
  readonly firstWordEmbedding: Tensor;
  readonly decoderBlocks: HATDecoderBlock[];
  readonly layerNorm: RMSNorm;
  readonly lmHead: Linear;

  constructor(cfg: HATConfig, opts: HATModelOptions = {}) {
    this.config = cfg;
    this.store = new ParamStore();
    const std = opts.initStd ?? 0.02;
    const vb = new VarBuilder(this.store, { rng: opts.seed ?? 0, defaultInit: init.normal(std), source: opts.source });
    const enc = cfg.encoder_config;
    const bb = cfg.backbone_config;
    const dec = cfg.decoder_config;
    const encRope = rotary(enc);
    const bbRope = rotary(bb);
    const decRope = rotary(dec);

    const e = vb.pp('encoder');
    this.embeddingLayer = new Embedding(e.pp('embedding_layer'), enc.vocab_size, enc.hidden_size);
    this.encoderLayers = [];
    for (let i = 0; i < enc.num_hidden_layers; i++) this.encoderLayers.push(llamaLayer(e.pp('layers').pp(i), enc, encRope));

    const c = vb.pp('encoder_connector');
    const x = enc.cross_attention_config;
    this.latentQuery = c.get('latent_query', [1, 1, bb.hidden_size]);
    this.connector = new CrossAttention(c.pp('cross_attention_encoder_connector'), {
      queryDim: bb.hidden_size,
      kvDim: enc.hidden_size,
      outDim: bb.hidden_size,
      numHeads: x.num_attention_heads,
      numKvHeads: x.attention_num_kv_heads,
      headDim: x.hidden_size / x.num_attention_heads,
      rope: encRope,
      qkNorm: x.key_query_norm ? { perHead: x.key_query_norm_per_head, eps: enc.rms_norm_eps } : undefined,
    });

    this.backboneLayers = [];
    for (let i = 0; i < bb.num_hidden_layers; i++) this.backboneLayers.push(llamaLayer(vb.pp('backbone').pp('layers').pp(i), bb, bbRope, false));

    this.firstWordEmbedding = vb.pp('decoder_connector').get('first_word_embedding', [1, 1, bb.hidden_size]);
    this.decoderBlocks = [];
    for (let i = 0; i < dec.num_hidden_layers; i++) {
      this.decoderBlocks.push(new HATDecoderBlock(vb.pp('decoder').pp('decoder_layers').pp(i), cfg, dec.cross_attn_every_layer || i === 0, decRope));
    }
    this.layerNorm = new RMSNorm(vb.pp('layer_norm'), dec.hidden_size, { eps: dec.rms_norm_eps });
    this.lmHead = new Linear(vb.pp('lm_head'), dec.hidden_size, dec.vocab_size);
    this.paramCount = this.store.numParams();
  }

  // ---- the four stages (also used one step at a time by generation) --------------------------

  /** Byte ids [B*T] -> encoder activations [B, T, H_enc]. */
  encode(ids: Int32Array, B: number, T: number, o: { positions: Int32Array; segments?: Int32Array; cache?: KVCache }): Tensor {
    let h = this.embeddingLayer.forward(new Tensor(ids, [B, T]));
    this.encoderLayers.forEach((layer, i) => {
      h = layer.forward(h, { positions: o.positions, segments: o.segments, cache: o.cache?.layer(i) });
    });
    return h;
  }

  /**
   * Word embeddings [B, W, H_bb]: the latent query of each word slot attends to the bytes whose
   * word slot equals it (qSeg = wordSlot [B*W], kSeg = byteWord [B*T]); q is rotated by the word
   * position, k by the byte position. A slot that matches no byte gives 0.
   */
  connect(h: Tensor, W: number, o: { wordPos: Int32Array; bytePos: Int32Array; wordSlot: Int32Array; byteWord: Int32Array }): Tensor {
    const B = h.shape[0];
    const q = expand(this.latentQuery, [B, W, this.config.backbone_config.hidden_size]);
    return this.connector.forward(q, h, { qPos: o.wordPos, kPos: o.bytePos, qSeg: o.wordSlot, kSeg: o.byteWord });
  }

  /** Word embeddings [B, W, H_bb] -> backbone output [B, W, H_bb] (no final norm). */
  backbone(x: Tensor, o: { positions: Int32Array; segments?: Int32Array; cache?: KVCache }): Tensor {
    let y = x;
    this.backboneLayers.forEach((layer, i) => {
      y = layer.forward(y, { positions: o.positions, segments: o.segments, cache: o.cache?.layer(i) });
    });
    return y;
  }

  /**
   * The decoder connector: rows of concat([first_word_embedding, backbone rows]) picked by
   * predIndex (0 = first_word_embedding, 1 + r = backbone row r) -> [N, H_bb].
   */
  predictions(backboneRows: Tensor | null, predIndex: Int32Array): Tensor {
    const H = this.config.backbone_config.hidden_size;
    const first = reshape(this.firstWordEmbedding, [1, H]);
    const table = backboneRows === null ? first : concat([first, reshape(backboneRows, [-1, H])], 0);
    return indexSelect(table, 0, predIndex);
  }

  /** Guide vectors [N, H_dec] of every decoder block for predictions pred [N, H_bb] (null: no cross-attention). */
  guides(pred: Tensor): (Tensor | null)[] {
    return this.decoderBlocks.map((blk) => blk.guide(pred));
  }

  /**
   * Decoder: starts from the encoder activations h [B, T, H_dec]; each block with
   * cross-attention adds guide row byteGuide[i] to byte i, then runs its Llama layer.
   * Returns logits [B, T, 256].
   */
  decode(h: Tensor, guides: (Tensor | null)[], byteGuide: Int32Array, o: { positions: Int32Array; segments?: Int32Array; cache?: KVCache }): Tensor {
    const [B, T, H] = h.shape;
    let y = h;
    this.decoderBlocks.forEach((blk, i) => {
      const g = guides[i];
      if (g !== null) y = add(y, reshape(indexSelect(g, 0, byteGuide), [B, T, H]));
      y = blk.llamaLayer.forward(y, { positions: o.positions, segments: o.segments, cache: o.cache?.layer(i) });
    });
    return this.lmHead.forward(this.layerNorm.forward(y));
  }

  /** The decoder with full cross-attention (query_norm, q/k projections, RoPE, softmax over one key): the shortcut's oracle. */
  decodeFullCrossAttention(h: Tensor, pred: Tensor, L: HATLayout): Tensor {
    const { B, W } = L;
    const predBW = reshape(pred, [B, W, this.config.backbone_config.hidden_size]);
    let y = h;
    this.decoderBlocks.forEach((blk) => {
      if (blk.crossAttention !== null) {
        const a = blk.crossAttention.forward(blk.queryNorm.forward(y), blk.kvNorm.forward(predBW), {
          qPos: L.bytePos,
          kPos: L.wordPos,
          qSeg: L.byteWord,
          kSeg: L.wordSlot,
        });
        y = add(y, a);
      }
      y = blk.llamaLayer.forward(y, { positions: L.byteIndex, segments: L.byteSeg });
    });
    return this.lmHead.forward(this.layerNorm.forward(y));
  }

  // ---- full forward and loss ----------------------------------------------------------------

  /** Logits [B, T, 256] of a packed batch (or a prepared layout). */
  forward(batch: HATBatch | HATLayout, opts: ForwardOptions = {}): Tensor {
    const L = 'byteWordFlat' in batch ? batch : prepareLayout(batch);
    const { B, T, W } = L;
    const h = this.encode(L.bytes, B, T, { positions: L.byteIndex, segments: L.byteSeg });
    const words = this.connect(h, W, L);
    const out = this.backbone(words, { positions: L.wordIndex, segments: L.wordSeg });
    const pred = this.predictions(out, L.predIndex);
    if (opts.fullCrossAttention) return this.decodeFullCrossAttention(h, pred, L);
    return this.decode(h, this.guides(pred), L.byteWordFlat, { positions: L.byteIndex, segments: L.byteSeg });
  }

  /**
   * Next-byte cross-entropy (mean over predicted positions, in nats) of a packed batch, with
   * bits per byte (= loss / ln 2) and the number of predicted bytes. Padding and the last byte
   * of each document are not predicted.
   */
  loss(batch: HATBatch | HATLayout, opts: ForwardOptions = {}): { loss: Tensor; bpb: number; count: number; logits: Tensor } {
    const L = 'byteWordFlat' in batch ? batch : prepareLayout(batch);
    const logits = this.forward(L, opts);
    const loss = crossEntropy(logits, L.targets, { ignoreIndex: IGNORE_INDEX });
    let count = 0;
    for (let i = 0; i < L.targets.length; i++) if (L.targets[i] !== IGNORE_INDEX) count++;
    return { loss, bpb: loss.item() / Math.LN2, count, logits };
  }

  /**
   * Number of parameters of the architecture, counted when the model is built: a model whose
   * Linear weights were loaded as bf16 or packed layers (loadHATLazy, loadPackedHATModel), which
   * hold them outside `store`, has the same count as its f32 twin.
   */
  numParams(): number {
    return this.paramCount;
  }
}
