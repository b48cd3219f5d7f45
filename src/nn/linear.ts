/** Linear layer `y = x W^T + b` with W stored [out, in] (PyTorch / Hugging Face layout). */
import { linear, type Tensor } from '../tensor/index.js';
import { kaimingUniform, zeros, type Init } from './init.js';
import type { VarBuilder } from './params.js';

export interface LinearOptions {
  /** add a bias [out] (default false, as every projection in Llama) */
  bias?: boolean;
  /** weight initialiser (default: the builder's default, else PyTorch's kaiming-uniform) */
  init?: Init;
  /** bias initialiser (default zeros, as Hugging Face `_init_weights`) */
  biasInit?: Init;
}

export class Linear {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  /** Parameters `<vb>.weight` [out, in] and optionally `<vb>.bias` [out]. */
  constructor(vb: VarBuilder, inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = vb.get('weight', [outFeatures, inFeatures], opts.init ?? vb.defaultInit ?? kaimingUniform());
    this.bias = opts.bias ? vb.get('bias', [outFeatures], opts.biasInit ?? zeros()) : null;
  }

  /** x [..., in] -> [..., out] */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
