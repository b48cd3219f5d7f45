export * from './model.js';
export * from './config.js';
export * from './checkpoint.js';
export * from './generate.js';
export * from './tokenizer/index.js';
export * from './token_data.js';
