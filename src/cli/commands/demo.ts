import type { CommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { runEngineDemo } from '../demo/engine.js';
import { runHatDemo } from '../demo/hat.js';

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'the bundled HAT model continues a prompt, showing its word splits (`demo engine`: the tensor engine tour)',
  usage: 'tfree demo [--prompt TEXT] [--max-bytes N] [--seed N] [--temperature T] [--greedy] | tfree demo engine [--steps N] [--seed N]',
  options: {
    prompt: { type: 'string', help: 'text to continue', default: 'The jury said that the city', meta: 'TEXT' },
    'max-bytes': { type: 'int', help: 'most bytes to generate', default: 160 },
    temperature: { type: 'number', help: 'sampling temperature', default: 0.7 },
    greedy: { type: 'boolean', help: 'argmax decoding instead of sampling' },
    model: { type: 'string', help: 'a HAT model folder instead of the bundled one', meta: 'DIR' },
    steps: { type: 'int', help: '(demo engine) training steps of the tiny model', default: 150 },
    seed: { type: 'int', help: 'random seed', default: 1 },
  },
  async run(args) {
    const which = args.positionals[0] ?? 'hat';
    if (which === 'engine') {
      runEngineDemo({ steps: Number(args.options.steps), seed: Number(args.options.seed) });
      return;
    }
    if (which !== 'hat') throw new UserError(`unknown demo "${which}" (demos: hat, engine)`);
    await runHatDemo({
      prompt: String(args.options.prompt),
      maxBytes: Number(args.options['max-bytes']),
      seed: Number(args.options.seed),
      temperature: Number(args.options.temperature),
      greedy: args.options.greedy === true,
      model: typeof args.options.model === 'string' ? args.options.model : undefined,
    });
  },
};
