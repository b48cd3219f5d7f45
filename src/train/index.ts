export * from './checkpoint.js';
export * from './trainer.js';
