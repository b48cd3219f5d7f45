/**
 * tfree: tokenizer-free language models, compression and evaluation.
 * Subpath exports give each layer on its own: `tfree/tensor`, `tfree/nn`, `tfree/io`.
 */
export * from './tensor/index.js';
export * as nn from './nn/index.js';
export * as io from './io/index.js';
