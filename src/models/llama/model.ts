/**
 * A Llama-style causal LM (HF LlamaForCausalLM parameter names) assembled from src/nn layers:
 * embedding -> decoder layers -> RMSNorm -> lm_head.
 *
 * With `tieWordEmbeddings` the head multiplies by `model.embed_tokens.weight` itself (one
 * parameter; a saved checkpoint then has no `lm_head.weight`, as Hugging Face writes it).
 * config.ts maps a HF config.json to `LlamaLMConfig`; checkpoint.ts loads and saves HF folders;
 * generate.ts decodes with a KV cache; `nextTokenLoss` below is the training loss.
 */
import { Tensor, crossEntropy, slice } from '../../tensor/index.js';
import { DecoderLayer, Embedding, KVCache, Linear, RMSNorm, RotaryEmbedding, type ParamStore, type VarBuilder, type RopeScaling } from '../../nn/index.js';

export interface LlamaLMConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** per-head size (default hiddenSize / numHeads) */
  headDim?: number;
  ropeTheta?: number;
  ropeScaling?: RopeScaling | null;
  window?: number;
  /** default 1e-5 */
  rmsNormEps?: number;
  /** lm_head shares model.embed_tokens.weight (default false) */
  tieWordEmbeddings?: boolean;
  /** bias on q/k/v/o projections (HF attention_bias, default false) */
  attentionBias?: boolean;
  /** bias on the MLP projections (HF mlp_bias, default false) */
  mlpBias?: boolean;
  /** informational (HF max_position_embeddings); generation warns past it via its result */
  maxPositionEmbeddings?: number;
  bosTokenId?: number | null;
  eosTokenId?: number | number[] | null;
}

export interface LlamaForwardOptions {
  cache?: KVCache;
  positions?: Int32Array;
  segments?: Int32Array;
  /** compute the head only for the last position of each row: logits [B, 1, vocab] */
  lastOnly?: boolean;
}

/** A batch of token rows for the next-token loss. */
export interface TokenBatch {
  rows: number;
  seqLen: number;
  /** input ids [rows * seqLen] */
  ids: Int32Array;
  /** next-token targets [rows * seqLen], -100 where nothing is predicted */
  targets: Int32Array;
  /** document ids [rows * seqLen] for packed rows (tokens attend within their segment) */
  segments?: Int32Array;
  /** positions [rows * seqLen] (default 0..seqLen-1; restart per segment for packed rows) */
  positions?: Int32Array;
}

export class LlamaLM {
  readonly cfg: LlamaLMConfig;
  readonly store: ParamStore;
  readonly embedTokens: Embedding;
  readonly layers: DecoderLayer[];
  readonly norm: RMSNorm;
  /** the head; with tied embeddings its weight is embedTokens.weight */
  readonly lmHead: Linear;

  /** vb is the root builder: parameters are `model.*` and `lm_head.weight`, as HF LlamaForCausalLM. */
  constructor(vb: VarBuilder, cfg: LlamaLMConfig) {
    this.cfg = cfg;
    this.store = vb.store;
    const headDim = cfg.headDim ?? cfg.hiddenSize / cfg.numHeads;
    const rope = new RotaryEmbedding({ headDim, theta: cfg.ropeTheta ?? 10000, scaling: cfg.ropeScaling ?? null });
    const eps = cfg.rmsNormEps ?? 1e-5;
    const m = vb.pp('model');
    this.embedTokens = new Embedding(m.pp('embed_tokens'), cfg.vocabSize, cfg.hiddenSize);
    this.layers = [];
    for (let i = 0; i < cfg.numLayers; i++) {
      this.layers.push(
        new DecoderLayer(m.pp('layers').pp(i), {
          hiddenSize: cfg.hiddenSize,
          intermediateSize: cfg.intermediateSize,
          numHeads: cfg.numHeads,
          numKvHeads: cfg.numKvHeads,
          headDim,
          rmsNormEps: eps,
          attentionBias: cfg.attentionBias ?? false,
          mlpBias: cfg.mlpBias ?? false,
          window: cfg.window,
          rope,
        }),
      );
    }
    this.norm = new RMSNorm(m.pp('norm'), cfg.hiddenSize, { eps });
    // tied: a Linear over `model.embed_tokens.weight` [vocab, hidden], which the builder returns as is
    this.lmHead = new Linear(cfg.tieWordEmbeddings ? m.pp('embed_tokens') : vb.pp('lm_head'), cfg.hiddenSize, cfg.vocabSize);
  }

  /** A fresh KV cache for this model's layers. */
  newCache(): KVCache {
    return new KVCache(this.layers.length);
  }

  /** ids [B*T] -> logits [B, T, vocab] ([B, 1, vocab] with lastOnly) */
  forward(ids: Int32Array, B: number, T: number, opts: LlamaForwardOptions = {}): Tensor {
    let h = this.embedTokens.forward(new Tensor(ids, [B, T]));
    this.layers.forEach((layer, i) => {
      h = layer.forward(h, { positions: opts.positions, segments: opts.segments, cache: opts.cache?.layer(i) });
    });
    if (opts.lastOnly === true && T > 1) h = slice(h, 1, T - 1, T);
    return this.lmHead.forward(this.norm.forward(h));
  }

  /** Mean next-token cross-entropy (nats) over the batch's predicted tokens. */
  loss(batch: TokenBatch): { loss: Tensor; tokens: number } {
    return nextTokenLoss(this, batch);
  }
}

/** Mean cross-entropy (nats) of `model` on a token batch, and the number of predicted tokens. */
export function nextTokenLoss(model: LlamaLM, batch: TokenBatch): { loss: Tensor; tokens: number } {
  const { rows, seqLen, ids, targets } = batch;
  const n = rows * seqLen;
  if (ids.length !== n || targets.length !== n) {
    throw new Error(`nextTokenLoss: ids (${ids.length}) and targets (${targets.length}) must both hold rows * seqLen = ${n} entries`);
  }
  let tokens = 0;
  for (let i = 0; i < n; i++) if (targets[i] !== -100) tokens++;
  if (tokens === 0) throw new Error('nextTokenLoss: the batch predicts no tokens (all targets are -100)');
  const logits = model.forward(ids, rows, seqLen, { segments: batch.segments, positions: batch.positions });
  return { loss: crossEntropy(logits, targets, { ignoreIndex: -100 }), tokens };
}

/**
 * Inputs and shifted targets of token rows: row r is `seqs[r]` (truncated to seqLen + 1 tokens);
 * ids are its first tokens, targets the next ones, shorter rows padded with `padId` / -100.
 */
export function tokenBatch(seqs: readonly ArrayLike<number>[], seqLen: number, padId = 0): TokenBatch {
  const rows = seqs.length;
  const ids = new Int32Array(rows * seqLen).fill(padId);
  const targets = new Int32Array(rows * seqLen).fill(-100);
  seqs.forEach((s, r) => {
    const len = Math.min(s.length, seqLen + 1);
    for (let t = 0; t < len; t++) {
      if (t < seqLen) ids[r * seqLen + t] = s[t];
      if (t > 0) targets[r * seqLen + t - 1] = s[t];
    }
  });
  return { rows, seqLen, ids, targets };
}
