import type { CommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { checkStdinNotFolder } from '../resources.js';
import { DEFAULT_MAX_WORD_SIZE, splitBytes } from '../../models/hat/splitter.js';

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export const splitCommand: CommandSpec = {
  name: 'split',
  summary: 'split stdin into HAT words (one JSON array)',
  usage: 'tfree split [--max-word-size N] [--bytes] < input',
  details: [
    'Reads all of stdin as bytes and prints its HAT words as one JSON array: strings, or with',
    '--bytes arrays of byte values. The words concatenate to exactly the input bytes.',
    'Invalid UTF-8 is accepted: each invalid byte is a one-byte unit that behaves like U+FFFD',
    '(usually a word of its own). In string output, bytes that are not valid UTF-8 within a word',
    '(invalid input, or a character cut by a --max-word-size below 4) are shown as U+FFFD; use',
    '--bytes for the exact bytes. Special-token strings such as <|eot_id|> are not mapped here.',
  ].join('\n'),
  options: {
    'max-word-size': { type: 'int', help: 'maximum bytes per word', default: DEFAULT_MAX_WORD_SIZE, meta: 'N', min: 1, max: 1 << 16 },
    bytes: { type: 'boolean', help: 'print each word as an array of byte values' },
  },
  async run(args) {
    const max = args.options['max-word-size'];
    if (typeof max !== 'number' || max < 1) throw new UserError(`--max-word-size must be a positive integer, got ${String(max)}`);
    checkStdinNotFolder();
    const words = splitBytes(await readStdin(), { maxWordSize: max });
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    const out = args.options.bytes ? words.map((w) => Array.from(w)) : words.map((w) => decoder.decode(w));
    process.stdout.write(`${JSON.stringify(out)}\n`);
  },
};
