/**
 * A small Llama-style causal LM (HF LlamaForCausalLM parameter names) assembled from src/nn
 * layers: embedding -> decoder layers -> RMSNorm -> lm_head. The token-level baseline issue
 * extends this with HF config loading, tied embeddings and generation.
 */
import { Tensor } from '../../tensor/index.js';
import { DecoderLayer, Embedding, KVCache, Linear, RMSNorm, RotaryEmbedding, type VarBuilder, type RopeScaling } from '../../nn/index.js';

export interface LlamaLMConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  ropeTheta?: number;
  ropeScaling?: RopeScaling | null;
  window?: number;
  rmsNormEps?: number;
}

export class LlamaLM {
  readonly cfg: LlamaLMConfig;
  readonly embedTokens: Embedding;
  readonly layers: DecoderLayer[];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;

  /** vb is the root builder: parameters are `model.*` and `lm_head.weight`, as HF LlamaForCausalLM. */
  constructor(vb: VarBuilder, cfg: LlamaLMConfig) {
    this.cfg = cfg;
    const headDim = cfg.hiddenSize / cfg.numHeads;
    const rope = new RotaryEmbedding({ headDim, theta: cfg.ropeTheta ?? 10000, scaling: cfg.ropeScaling ?? null });
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
          rmsNormEps: cfg.rmsNormEps ?? 1e-5,
          window: cfg.window,
          rope,
        }),
      );
    }
    this.norm = new RMSNorm(m.pp('norm'), cfg.hiddenSize, { eps: cfg.rmsNormEps ?? 1e-5 });
    this.lmHead = new Linear(vb.pp('lm_head'), cfg.hiddenSize, cfg.vocabSize);
  }

  /** ids [B*T] -> logits [B, T, vocab] */
  forward(ids: Int32Array, B: number, T: number, opts: { cache?: KVCache; positions?: Int32Array; segments?: Int32Array } = {}): Tensor {
    let h = this.embedTokens.forward(new Tensor(ids, [B, T]));
    this.layers.forEach((layer, i) => {
      h = layer.forward(h, { positions: opts.positions, segments: opts.segments, cache: opts.cache?.layer(i) });
    });
    return this.lmHead.forward(this.norm.forward(h));
  }
}
