export * from './model.js';
export * from './kernel.js';
export * from './ops.js';
export * from './eval.js';
export * from './train.js';
export * from './kernel_native.js';
export * from './small.js';
export * from './query.js';
