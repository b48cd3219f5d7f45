import type { CommandSpec } from '../args.js';
import { runEngineDemo } from '../demo/engine.js';
import { runHatDemo } from '../demo/hat.js';
import { SAMPLING_DEFAULTS } from '../../nn/index.js';

const HAT = ['hat'] as const;

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'the bundled HAT model continues a prompt, showing its word splits (`demo engine`: the tensor engine tour)',
  usage: 'tfree demo [--prompt TEXT] [--max-bytes N] [--seed N] [--temperature T] [--greedy] | tfree demo engine [--steps N] [--seed N]',
  options: {
    prompt: { type: 'string', help: 'text to continue', default: 'The jury said that the city', meta: 'TEXT', subs: HAT },
    'max-bytes': { type: 'int', help: 'most bytes to generate', default: 160, min: 0, max: 1 << 24, subs: HAT },
    temperature: { type: 'number', help: 'sampling temperature', default: SAMPLING_DEFAULTS.temperature, min: 0, max: 100, subs: HAT },
    greedy: { type: 'boolean', help: 'argmax decoding instead of sampling', subs: HAT },
    model: { type: 'string', help: 'a HAT model folder instead of the bundled one', meta: 'DIR', subs: HAT },
    steps: { type: 'int', help: 'training steps of the tiny model', default: 150, min: 1, max: 1 << 20, subs: ['engine'] },
    seed: { type: 'int', help: 'random seed', default: 1, min: 0, max: 2 ** 31 - 1 },
  },
  defaultSubcommand: 'hat',
  subcommands: {
    hat: {
      summary: 'the bundled HAT model continues a prompt, showing its word splits (the default)',
      usage: 'tfree demo [hat] [--prompt TEXT] [--max-bytes N] [--seed N] [--temperature T] [--greedy] [--model DIR]',
      run: (args) =>
        runHatDemo({
          prompt: String(args.options.prompt),
          maxBytes: Number(args.options['max-bytes']),
          seed: Number(args.options.seed),
          temperature: Number(args.options.temperature),
          greedy: args.options.greedy === true,
          model: typeof args.options.model === 'string' ? args.options.model : undefined,
        }),
    },
    engine: {
      summary: 'the tensor engine tour: trains a tiny model',
      usage: 'tfree demo engine [--steps N] [--seed N]',
      run: (args) => runEngineDemo({ steps: Number(args.options.steps), seed: Number(args.options.seed) }),
    },
  },
};
