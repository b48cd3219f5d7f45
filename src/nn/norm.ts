/** Normalisation layers: RMSNorm (Llama) and LayerNorm, over the last axis. */
import { layerNorm, rmsNorm, type Tensor } from '../tensor/index.js';
import { ones, zeros } from './init.js';
import type { VarBuilder } from './params.js';

/** RMSNorm with a learned scale `<vb>.weight` [dim] (initialised to ones). */
export class RMSNorm {
  readonly weight: Tensor;
  readonly eps: number;

  constructor(vb: VarBuilder, dim: number, opts: { eps?: number } = {}) {
    this.eps = opts.eps ?? 1e-6;
    this.weight = vb.get('weight', [dim], ones());
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

export interface LayerNormOptions {
  eps?: number;
  /** learned scale `weight` (default true) */
  affine?: boolean;
  /** learned shift `bias` (default: same as affine) */
  bias?: boolean;
}

/** LayerNorm with optional `<vb>.weight` (ones) and `<vb>.bias` (zeros) [dim]. */
export class LayerNorm {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(vb: VarBuilder, dim: number, opts: LayerNormOptions = {}) {
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.affine ?? true;
    this.weight = affine ? vb.get('weight', [dim], ones()) : null;
    this.bias = (opts.bias ?? affine) ? vb.get('bias', [dim], zeros()) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
