/**
 * The Llama decoder layer (pre-norm):
 *   h = x + self_attn(input_layernorm(x));  out = h + mlp(post_attention_layernorm(h))
 * Built as `new DecoderLayer(vb.pp('model').pp('layers').pp(i), cfg)`, its parameters are named
 * exactly as Hugging Face Llama: `model.layers.{i}.self_attn.q_proj.weight`, ...,
 * `model.layers.{i}.mlp.down_proj.weight`, `model.layers.{i}.input_layernorm.weight`.
 */
import { add, type Tensor } from '../tensor/index.js';
import { Attention, type AttentionForwardOptions } from './attention.js';
import type { Init } from './init.js';
import { SwiGLU } from './mlp.js';
import { RMSNorm } from './norm.js';
import type { VarBuilder } from './params.js';
import type { RotaryEmbedding } from './rotary.js';

export interface DecoderLayerConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads?: number;
  headDim?: number;
  /** HF rms_norm_eps (default 1e-6) */
  rmsNormEps?: number;
  /** HF attention_bias (q/k/v/o biases; default false) */
  attentionBias?: boolean;
  /** bias on o_proj only when it differs from attentionBias */
  oBias?: boolean;
  /** HF mlp_bias (default false) */
  mlpBias?: boolean;
  /** sliding attention window (0/absent: full causal) */
  window?: number;
  rope: RotaryEmbedding | null;
  /** weight initialiser of the projections (default: the builder's default) */
  init?: Init;
  /** initialiser of o_proj and down_proj (e.g. `scaledOutputNormal(0.02, nLayers)`) */
  outInit?: Init;
}

export class DecoderLayer {
  readonly inputLayernorm: RMSNorm;
  readonly selfAttn: Attention;
  readonly postAttentionLayernorm: RMSNorm;
  readonly mlp: SwiGLU;

  constructor(vb: VarBuilder, cfg: DecoderLayerConfig) {
    const eps = cfg.rmsNormEps ?? 1e-6;
    // built in HF LlamaDecoderLayer's order, so the store's order equals the HF state_dict order
    this.selfAttn = new Attention(vb.pp('self_attn'), {
      hiddenSize: cfg.hiddenSize,
      numHeads: cfg.numHeads,
      numKvHeads: cfg.numKvHeads,
      headDim: cfg.headDim,
      rope: cfg.rope,
      bias: cfg.attentionBias ?? false,
      oBias: cfg.oBias,
      window: cfg.window,
      init: cfg.init,
      outInit: cfg.outInit,
    });
    this.mlp = new SwiGLU(vb.pp('mlp'), cfg.hiddenSize, cfg.intermediateSize, { bias: cfg.mlpBias ?? false, init: cfg.init, outInit: cfg.outInit });
    this.inputLayernorm = new RMSNorm(vb.pp('input_layernorm'), cfg.hiddenSize, { eps });
    this.postAttentionLayernorm = new RMSNorm(vb.pp('post_attention_layernorm'), cfg.hiddenSize, { eps });
  }

  /** x [B, T, hidden] -> [B, T, hidden] */
  forward(x: Tensor, opts: AttentionForwardOptions = {}): Tensor {
    const h = add(x, this.selfAttn.forward(this.inputLayernorm.forward(x), opts));
    return add(h, this.mlp.forward(this.postAttentionLayernorm.forward(h)));
  }
}
