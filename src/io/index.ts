export * from './dtype.js';
export * from './safetensors.js';
export * from './staged.js';
export * from './text_data.js';
export * from './words.js';
export * from './interrupt.js';
export * from './kg.js';
export * from './gguf.js';
