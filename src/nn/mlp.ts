/** The Llama SwiGLU feed-forward block: down_proj(silu(gate_proj(x)) * up_proj(x)). */
import { swiglu, type Tensor } from '../tensor/index.js';
import type { Init } from './init.js';
import { Linear } from './linear.js';
import type { VarBuilder } from './params.js';

export interface SwiGLUOptions {
  /** biases on all three projections (default false, as Llama's `mlp_bias`) */
  bias?: boolean;
  /** initialiser of gate_proj / up_proj weights (default: the builder's default) */
  init?: Init;
  /** initialiser of down_proj (e.g. `scaledOutputNormal`; default: same as init) */
  outInit?: Init;
}

export class SwiGLU {
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;

  /** Parameters `gate_proj`, `up_proj` [intermediate, hidden] and `down_proj` [hidden, intermediate]. */
  constructor(vb: VarBuilder, hiddenSize: number, intermediateSize: number, opts: SwiGLUOptions = {}) {
    const bias = opts.bias ?? false;
    this.gateProj = new Linear(vb.pp('gate_proj'), hiddenSize, intermediateSize, { bias, init: opts.init });
    this.upProj = new Linear(vb.pp('up_proj'), hiddenSize, intermediateSize, { bias, init: opts.init });
    this.downProj = new Linear(vb.pp('down_proj'), intermediateSize, hiddenSize, { bias, init: opts.outInit ?? opts.init });
  }

  /** x [..., hidden] -> [..., hidden] */
  forward(x: Tensor): Tensor {
    // swiglu(a, b) is mul(silu(a), b) fused (same bits)
    return this.downProj.forward(swiglu(this.gateProj.forward(x), this.upProj.forward(x)));
  }
}
