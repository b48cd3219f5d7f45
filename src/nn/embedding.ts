/** Token embedding table `<vb>.weight` [num, dim]. */
import { embedding, type Tensor } from '../tensor/index.js';
import { normal, type Init } from './init.js';
import type { VarBuilder } from './params.js';

export interface EmbeddingOptions {
  /** initialiser (default: the builder's default, else N(0, 1) as torch.nn.Embedding) */
  init?: Init;
}

export class Embedding {
  readonly weight: Tensor;
  readonly numEmbeddings: number;
  readonly dim: number;

  constructor(vb: VarBuilder, numEmbeddings: number, dim: number, opts: EmbeddingOptions = {}) {
    this.numEmbeddings = numEmbeddings;
    this.dim = dim;
    this.weight = vb.get('weight', [numEmbeddings, dim], opts.init ?? vb.defaultInit ?? normal(1));
  }

  /** ids (any shape, integer) -> [...ids.shape, dim] */
  forward(ids: Tensor | Int32Array): Tensor {
    return embedding(ids, this.weight);
  }
}
