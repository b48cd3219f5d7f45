/**
 * Training FLOPs per byte of text, from a model's shapes, for compute-matched comparisons of a
 * byte-level HAT and a token-level Llama.
 *
 * Convention (Kaplan et al. 2020, "C = 6 N D", with the attention term): a multiply-accumulate is
 * 2 FLOPs; a training step costs 3x the forward pass (backward = 2x forward), so training FLOPs =
 * 6 x forward multiply-accumulates. Counted: every matrix product (projections, MLPs, heads) and
 * the two attention products (q.k and p.v: 2 x heads x head_dim MACs per attended key); not
 * counted: embedding lookups, norms, softmax, RoPE, elementwise ops (all O(width) per position).
 *
 * One Llama layer at one position with `ctx` attended keys, hidden H, q width Q = heads x head_dim,
 * kv width K = kv_heads x head_dim, MLP width I:
 *     MACs = H.Q (q) + 2 H.K (k, v) + Q.H (o) + 3 H.I (gate, up, down) + 2 Q.ctx (attention)
 *
 * Token Llama, per byte (b_tok = bytes per token of the data):
 *     ( sum over layers of layer(ctx_tok) + H.V (head) ) / b_tok
 * HAT, per byte (b_word = bytes per word), as the model computes it (src/models/hat/model.ts):
 *     encoder layers at ctx_byte + connector k, v projections (2 H_enc.C per byte) and its
 *     attention (2 C per byte: each byte is a key of exactly one word query)
 *   + per word / b_word: connector q and o projections (H_bb.C + C.H_bb), backbone layers at
 *     ctx_word, and per decoder block with cross-attention the guide vector v, o projections
 *     (H_bb.C_kv + C.H_dec)
 *   + decoder layers at ctx_byte + head H_dec.256.
 * (C = cross-attention width; C_kv = its kv heads x head size.)
 *
 * ctx: mean number of keys a query attends to in a causal segment of n positions with a sliding
 * window w (0: none): mean over p = 0..n-1 of min(p + 1, w). For packed rows of S bytes the
 * experiments take n = S (bytes), S / b_word (words), S / b_tok (tokens): rows hold long
 * documents, so most rows are one segment.
 */
import type { HATConfig, TransformerHATModelConfig } from '../models/hat/config.js';
import type { LlamaLMConfig } from '../models/llama/model.js';

/** Mean attended keys per query over a causal segment of n positions, window w (0 = none). */
export function meanContext(n: number, window = 0): number {
  if (!(n > 0)) return 0;
  const N = Math.max(1, Math.round(n));
  let s = 0;
  for (let p = 0; p < N; p++) s += window > 0 ? Math.min(p + 1, window) : p + 1;
  return s / N;
}

/** Forward MACs of one Llama-style layer at one position. */
export function layerMacs(s: { hidden: number; q: number; kv: number; intermediate: number }, ctx: number): number {
  const { hidden: H, q: Q, kv: K, intermediate: I } = s;
  return H * Q + 2 * H * K + Q * H + 3 * H * I + 2 * Q * ctx;
}

function hatLayer(c: TransformerHATModelConfig): { hidden: number; q: number; kv: number; intermediate: number } {
  const hd = c.hidden_size / c.num_attention_heads;
  return { hidden: c.hidden_size, q: c.hidden_size, kv: c.num_key_value_heads * hd, intermediate: c.intermediate_size };
}

export interface FlopsBreakdown {
  /** training FLOPs per byte of text (6 x forward MACs) */
  perByte: number;
  /** forward MACs per byte by part */
  parts: Record<string, number>;
}

function total(parts: Record<string, number>): FlopsBreakdown {
  return { perByte: 6 * Object.values(parts).reduce((a, b) => a + b, 0), parts };
}

/** Training FLOPs per byte of a token Llama. */
export function llamaFlopsPerByte(cfg: LlamaLMConfig, o: { bytesPerToken: number; seqBytes: number }): FlopsBreakdown {
  const hd = cfg.headDim ?? cfg.hiddenSize / cfg.numHeads;
  const ctx = meanContext(o.seqBytes / o.bytesPerToken, cfg.window ?? 0);
  const layer = layerMacs({ hidden: cfg.hiddenSize, q: cfg.numHeads * hd, kv: cfg.numKvHeads * hd, intermediate: cfg.intermediateSize }, ctx);
  return total({
    layers: (cfg.numLayers * layer) / o.bytesPerToken,
    head: (cfg.hiddenSize * cfg.vocabSize) / o.bytesPerToken,
  });
}

/** Training FLOPs per byte of a HAT. */
export function hatFlopsPerByte(cfg: HATConfig, o: { bytesPerWord: number; seqBytes: number }): FlopsBreakdown {
  const enc = cfg.encoder_config;
  const bb = cfg.backbone_config;
  const dec = cfg.decoder_config;
  const ex = enc.cross_attention_config;
  const dx = dec.cross_attention_config;
  const ctxEnc = meanContext(o.seqBytes, enc.sliding_window ?? 0);
  const ctxDec = meanContext(o.seqBytes, dec.sliding_window ?? 0);
  const ctxWord = meanContext(o.seqBytes / o.bytesPerWord, bb.sliding_window ?? 0);
  const C = ex.hidden_size;
  const exKv = ex.attention_num_kv_heads * (C / ex.num_attention_heads);
  const dC = dx.hidden_size;
  const dxKv = dx.attention_num_kv_heads * (dC / dx.num_attention_heads);
  const crossBlocks = dec.cross_attn_every_layer ? dec.num_hidden_layers : Math.min(1, dec.num_hidden_layers);
  const w = o.bytesPerWord;
  return total({
    encoder: enc.num_hidden_layers * layerMacs(hatLayer(enc), ctxEnc),
    connector: 2 * enc.hidden_size * exKv + 2 * C + (bb.hidden_size * C + C * bb.hidden_size) / w,
    backbone: (bb.num_hidden_layers * layerMacs(hatLayer(bb), ctxWord)) / w,
    guides: (crossBlocks * (bb.hidden_size * dxKv + dC * dec.hidden_size)) / w,
    decoder: dec.num_hidden_layers * layerMacs(hatLayer(dec), ctxDec),
    head: dec.hidden_size * dec.vocab_size,
  });
}
