export * from './bytes.js';
export * from './hf.js';
export * from './train.js';
export * from './tiktoken.js';
