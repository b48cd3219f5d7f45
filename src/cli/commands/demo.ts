import type { CommandSpec } from '../args.js';
import { runEngineDemo } from '../demo/engine.js';

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'a short demo: backend, matrix-multiply speed, and a tiny model trained from scratch',
  usage: 'tfree demo [--steps N] [--seed N]',
  options: {
    steps: { type: 'int', help: 'training steps of the tiny model', default: 150 },
    seed: { type: 'int', help: 'random seed', default: 1 },
  },
  run(args) {
    runEngineDemo({ steps: Number(args.options.steps), seed: Number(args.options.seed) });
  },
};
