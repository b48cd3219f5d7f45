export * from './format.js';
export * from './kmeans.js';
export * from './quantize.js';
export * from './modules.js';
export * from './packed_linear.js';
export * from './checkpoint.js';
export * from './prune.js';
export * from './qat.js';
