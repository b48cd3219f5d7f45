import type { CommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { checkStdinNotFolder } from '../resources.js';
import { ChunkedSplitter, DEFAULT_MAX_WORD_SIZE } from '../../models/hat/splitter.js';

/** Writes to stdout, waiting for it to drain when its buffer is full (so memory stays bounded). */
async function write(s: string): Promise<void> {
  if (!process.stdout.write(s)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

export const splitCommand: CommandSpec = {
  name: 'split',
  summary: 'split stdin into HAT words (one JSON array)',
  usage: 'tfree split [--max-word-size N] [--bytes] < input',
  details: [
    'Reads stdin as bytes and prints its HAT words as one JSON array: strings, or with',
    '--bytes arrays of byte values. The words concatenate to exactly the input bytes.',
    'Invalid UTF-8 is accepted: each invalid byte is a one-byte unit that behaves like U+FFFD',
    '(usually a word of its own). In string output, bytes that are not valid UTF-8 within a word',
    '(invalid input, or a character cut by a --max-word-size below 4) are shown as U+FFFD; use',
    '--bytes for the exact bytes. Special-token strings such as <|eot_id|> are not mapped here.',
    'Input is split as it arrives (at line breaks, and before a space after an ASCII character),',
    'so any size streams in bounded memory; more than 256 MiB with neither is refused (exit 2).',
  ].join('\n'),
  options: {
    'max-word-size': { type: 'int', help: 'maximum bytes per word', default: DEFAULT_MAX_WORD_SIZE, meta: 'N', min: 1, max: 1 << 16 },
    bytes: { type: 'boolean', help: 'print each word as an array of byte values' },
  },
  async run(args) {
    const max = args.options['max-word-size'];
    if (typeof max !== 'number' || max < 1) throw new UserError(`--max-word-size must be a positive integer, got ${String(max)}`);
    checkStdinNotFolder();
    const splitter = new ChunkedSplitter({ maxWordSize: max, maxPending: maxPendingForTests() });
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    const item = args.options.bytes === true ? (w: Uint8Array): number[] | string => Array.from(w) : (w: Uint8Array): number[] | string => decoder.decode(w);
    // the same text as JSON.stringify of the whole array: '[' + items joined by ',' + ']'
    let first = true;
    const emit = async (words: Uint8Array[]): Promise<void> => {
      if (words.length === 0) return;
      const body = JSON.stringify(words.map(item)).slice(1, -1);
      await write(first ? `[${body}` : `,${body}`);
      first = false;
    };
    try {
      for await (const chunk of process.stdin) await emit(splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)));
      await emit(splitter.end());
    } catch (e) {
      if (e instanceof RangeError) throw new UserError(`stdin: ${e.message}, where split streams its input; add line breaks`);
      throw e;
    }
    await write(first ? '[]\n' : ']\n');
  },
};

/**
 * TFREE_TEST_SPLIT_MAX_PENDING=BYTES (tests only): the most bytes held without a point where the
 * words are final (default 256 MiB), so a test can see the refusal with a small input.
 */
function maxPendingForTests(): number | undefined {
  const v = Number(process.env.TFREE_TEST_SPLIT_MAX_PENDING ?? 0);
  return v > 0 ? v : undefined;
}
