/**
 * `tfree eval <subcommand>`: evaluations of a HAT model. Each subcommand is an entry of
 * `evalSubcommands` (name, summary, the options it uses, run); the command's option list is
 * the union, so adding one (e.g. `dtm`) is one entry plus its options.
 */
import { activationPrecision } from '../../compress/index.js';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import type { CommandSpec, OptionSpec, SubcommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { QUANTIZE_BLOCK_OPTION, QUANTIZE_OPTION, loadHATForCli, quantizeOption } from '../hat_model.js';
import { Progress } from '../progress.js';
import { evaluateText } from '../../models/hat/score.js';
import { evalDtmSubcommands } from './eval_dtm.js';

export interface EvalSubcommand extends SubcommandSpec {
  /** options of this subcommand (merged into the command's option list, with `subs`) */
  options: Record<string, OptionSpec>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 strictly; the error names the file and the byte offset of the first bad byte. */
function decodeStrict(bytes: Uint8Array, file: string, base = 0): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_STRING_TOO_LONG') throw new UserError(`${file}: ${bytes.length} bytes of text, more than one string may hold (${bufferConstants.MAX_STRING_LENGTH} characters); split it into smaller files`);
    // find the first offset that does not decode
    let lo = 0;
    let hi = bytes.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      try {
        utf8.decode(bytes.subarray(0, mid), { stream: true });
        utf8.decode();
        lo = mid;
      } catch {
        hi = mid;
      }
    }
    throw new UserError(`${file}: invalid UTF-8 at byte offset ${base + lo}`);
  }
}

/**
 * Documents of a data file: a .jsonl file gives one document per line (its "text" field);
 * any other file is one document. A folder gives the documents of its .txt and .jsonl files
 * (sorted, recursively).
 */
export function readDocuments(path: string): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    throw new UserError(`${path}: no such file or folder`);
  }
  if (st.isDirectory()) {
    const out: string[] = [];
    for (const name of fs.readdirSync(path).sort()) {
      const p = nodePath.join(path, name);
      if (fs.statSync(p).isDirectory() || /\.(txt|jsonl)$/.test(name)) out.push(...readDocuments(p));
    }
    return out;
  }
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UserError(`${path}: cannot read (${err.code ?? ''}${err.code !== undefined ? ': ' : ''}${err.message.replace(/^[A-Z_]+: /, '')})`);
  }
  if (!path.endsWith('.jsonl')) return [decodeStrict(bytes, path)];
  const docs: string[] = [];
  let start = 0;
  let line = 1;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const text = decodeStrict(bytes.subarray(start, end), path, start).trim();
    if (text !== '') {
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        throw new UserError(`${path}:${line}: not valid JSON (${(e as Error).message})`);
      }
      const t = typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>).text : undefined;
      if (typeof t !== 'string') throw new UserError(`${path}:${line}: expected an object with a string "text" field`);
      docs.push(t);
    }
    start = end + 1;
    line++;
  }
  return docs;
}

const bpb: EvalSubcommand = {
  summary: 'bits per byte, byte accuracy and word accuracy of a model on text',
  usage: 'tfree eval bpb [--model DIR] [--quantize FORMAT] --data FILE|DIR [--context N] [--batch N] [--json]',
  options: {
    data: { type: 'string', help: 'text file, .jsonl file ("text" field per line) or folder of them', meta: 'FILE' },
    context: { type: 'int', help: 'bytes per chunk (documents are cut into chunks of whole words)', default: 1024, min: 2, max: 1 << 20 },
    batch: { type: 'int', help: 'chunks (bpb) or prompts (dtm/sweep/plan) per forward pass', default: 8, min: 1, max: 4096 },
    quantize: QUANTIZE_OPTION,
    'quantize-block': QUANTIZE_BLOCK_OPTION,
  },
  run(args) {
    const o = args.options;
    if (typeof o.data !== 'string' || o.data === '') throw new UserError('missing required option --data FILE');
    const { model, splitter } = loadHATForCli(o.model, { quantize: quantizeOption(args) });
    const ctx = Number(o.context);
    if (ctx < model.config.max_word_size) throw new UserError(`--context must be at least max_word_size = ${model.config.max_word_size} bytes, got ${ctx}`);
    const batch = Number(o.batch);
    if (batch < 1) throw new UserError(`--batch must be >= 1, got ${batch}`);
    const docs = readDocuments(o.data);
    const totalBytes = docs.reduce((s, d) => s + Buffer.byteLength(d), 0);
    if (totalBytes < 2) throw new UserError(`${o.data}: no text to evaluate (need at least 2 bytes)`);
    const json = o.json === true;
    const bar = new Progress({ total: totalBytes, label: 'eval bpb', enabled: !json });
    const t0 = Date.now();
    const r = evaluateText(model, splitter, docs, { contextBytes: ctx, batchSize: batch, onProgress: (done) => done < totalBytes && bar.update(done) });
    bar.finish();
    const secs = (Date.now() - t0) / 1000;
    if (json) {
      process.stdout.write(
        `${JSON.stringify({
          activations: activationPrecision(model),
          bits_per_byte: r.bitsPerByte,
          byte_accuracy: r.byteAccuracy,
          word_accuracy: r.wordAccuracy,
          words: r.words,
          correct_words: r.correctWords,
          predicted_bytes: r.predictedBytes,
          total_bytes: r.totalBytes,
          chunks: r.chunks,
          documents: docs.length,
          seconds: secs,
        })}\n`,
      );
      return;
    }
    process.stdout.write(
      [
        `bits per byte: ${r.bitsPerByte.toFixed(4)} (${r.predictedBytes} bytes predicted in ${r.chunks} chunk${r.chunks === 1 ? '' : 's'} of <= ${ctx} bytes, ${docs.length} document${docs.length === 1 ? '' : 's'}; activations ${activationPrecision(model)})`,
        `word accuracy: ${(100 * r.wordAccuracy).toFixed(2)}% (${r.correctWords} of ${r.words} words whole)`,
        `byte accuracy: ${(100 * r.byteAccuracy).toFixed(2)}%`,
      ].join('\n') + '\n',
    );
  },
};

/** The subcommands of `tfree eval`. */
export const evalSubcommands: Record<string, EvalSubcommand> = { bpb, ...evalDtmSubcommands };

const common: Record<string, OptionSpec> = {
  model: { type: 'string', help: 'the model folder (config.json + model.safetensors; dtm: the base model); default: the bundled model', meta: 'DIR', aliases: ['base'] },
  json: { type: 'boolean', help: 'print one JSON object' },
};

/**
 * One option table for a command with subcommands: each option with the names of the
 * subcommands that declare it (`subs`), so a subcommand's parser knows only its own options.
 * The same name in two subcommands must mean the same (same spec).
 */
export function subcommandOptions(common: Record<string, OptionSpec>, subs: Record<string, { options: Record<string, OptionSpec> }>): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = { ...common };
  const users = new Map<string, string[]>();
  for (const [sub, s] of Object.entries(subs)) {
    for (const [k, o] of Object.entries(s.options)) {
      if (k in common) continue;
      out[k] ??= o;
      users.set(k, [...(users.get(k) ?? []), sub]);
    }
  }
  for (const [k, list] of users) out[k] = { ...out[k], subs: list };
  return out;
}

export const evalCommand: CommandSpec = {
  name: 'eval',
  summary: 'evaluate a HAT model (bpb; divergent token metrics dtm, component sweep, compression plans)',
  usage: `tfree eval <${Object.keys(evalSubcommands).join('|')}> [options]`,
  options: subcommandOptions(common, evalSubcommands),
  subcommands: evalSubcommands,
};
