export * from './dtype.js';
export * from './safetensors.js';
