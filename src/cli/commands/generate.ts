import type { CommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { INVALID_UTF8_OPTION, QUANTIZE_BLOCK_OPTION, QUANTIZE_OPTION, invalidUtf8Option, loadHATForCli, quantizeOption } from '../hat_model.js';
import { generateStream, type GenerateOptions } from '../../models/hat/generate.js';
import { SAMPLING_DEFAULTS } from '../../nn/index.js';

/** A word made visible: newlines and tabs escaped. */
function showWord(text: string): string {
  return text.replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r');
}

export const generateCommand: CommandSpec = {
  name: 'generate',
  positionals: 'PROMPT...',
  summary: 'continue a prompt with a HAT model, streaming the text',
  usage: 'tfree generate [--model DIR] [--quantize FORMAT] [--invalid-utf8 reference|resplit] --prompt TEXT [--max-bytes N] [--seed S] [--greedy] [--temperature T] [--top-k K] [--top-p P] [--stop TEXT] [--show-words] [--json]',
  details: [
    'Prints the continuation (not the prompt) as it is generated. Generation stops at the',
    'end-of-text byte, at the stop string, or after --max-bytes bytes. Without --greedy the',
    'next byte is sampled (temperature, then top-k, then top-p) with a seeded generator, so the',
    'same seed gives the same text. With --show-words, the prompt and the output are printed',
    'as words separated by "|" (newlines shown as \\n).',
  ].join('\n'),
  options: {
    model: { type: 'string', help: 'checkpoint folder (config.json + model.safetensors); default: the bundled model', meta: 'DIR' },
    quantize: QUANTIZE_OPTION,
    'quantize-block': QUANTIZE_BLOCK_OPTION,
    'invalid-utf8': INVALID_UTF8_OPTION,
    prompt: { type: 'string', help: 'the text to continue (or give it as the argument)', meta: 'TEXT' },
    'max-bytes': { type: 'int', help: 'most bytes to generate', default: 200, min: 0, max: 1 << 24 },
    seed: { type: 'int', help: 'seed of the sampler', default: 0, min: 0, max: 2 ** 31 - 1 },
    greedy: { type: 'boolean', help: 'always take the most likely byte' },
    temperature: { type: 'number', help: 'sampling temperature', default: SAMPLING_DEFAULTS.temperature, min: 0, max: 100 },
    'top-k': { type: 'int', help: 'sample among the K most likely bytes (0: all)', default: SAMPLING_DEFAULTS.topK, min: 0, max: 256 },
    'top-p': { type: 'number', help: 'sample among the most likely bytes holding probability P', default: SAMPLING_DEFAULTS.topP, above: 0, max: 1 },
    stop: { type: 'string', help: 'stop when the output ends with TEXT (not printed)', meta: 'TEXT' },
    'show-words': { type: 'boolean', help: 'print words separated by "|"' },
    json: { type: 'boolean', help: 'print one JSON object at the end instead of streaming' },
  },
  async run(args) {
    const o = args.options;
    const prompt = typeof o.prompt === 'string' ? o.prompt : args.positionals.join(' ');
    if (prompt === '') throw new UserError('give a prompt: --prompt TEXT (HAT predicts each byte from the bytes before it)');
    const maxBytes = Number(o['max-bytes']);
    if (maxBytes < 0) throw new UserError(`--max-bytes must be >= 0, got ${maxBytes}`);
    const temperature = Number(o.temperature);
    if (!(temperature >= 0)) throw new UserError(`--temperature must be >= 0, got ${temperature}`);
    const topK = Number(o['top-k']);
    if (topK < 0) throw new UserError(`--top-k must be >= 0, got ${topK}`);
    const topP = Number(o['top-p']);
    if (!(topP > 0 && topP <= 1)) throw new UserError(`--top-p must be in (0, 1], got ${topP}`);
    const { model, splitter } = loadHATForCli(o.model, { quantize: quantizeOption(args), invalidUtf8: invalidUtf8Option(o['invalid-utf8']) });
    const showWords = o['show-words'] === true;
    const json = o.json === true;
    const words: string[] = [];
    const opts: Omit<GenerateOptions, 'onText'> = {
      maxBytes,
      greedy: o.greedy === true,
      temperature,
      topK,
      topP,
      seed: Number(o.seed),
      stop: typeof o.stop === 'string' && o.stop !== '' ? [o.stop] : [],
      onWord: showWords ? (w) => words.push(splitter.decode(w)) : undefined,
    };
    const t0 = process.hrtime.bigint();
    if (showWords && !json) process.stdout.write(`${splitter.encode(prompt).map((w) => showWord(splitter.decode(w))).join('|')} ||| `);
    const it = generateStream(model, splitter, prompt, opts);
    let shown = 0;
    for (;;) {
      const r = await it.next();
      if (r.done === true) {
        const res = r.value;
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        if (json) {
          process.stdout.write(
            `${JSON.stringify({ prompt, text: res.text, bytes: res.bytes.length, stop_reason: res.stopReason, words: res.wordStarts.length, seconds: secs, bytes_per_second: res.bytes.length / secs })}\n`,
          );
        } else {
          if (showWords) process.stdout.write(words.slice(shown).map(showWord).join('|'));
          process.stdout.write('\n');
        }
        return 0;
      }
      if (json) continue;
      if (showWords) {
        // whole words only, as they finish
        if (words.length > shown) {
          process.stdout.write(words.slice(shown).map(showWord).join('|') + '|');
          shown = words.length;
        }
      } else process.stdout.write(r.value);
    }
  },
};
