export * from './config.js';
export * from './model.js';
export * from './checkpoint.js';
export * from './sampling.js';
export * from './generate.js';
export * from './score.js';
export * from './splitter.js';
