/**
 * tiktoken BPE files (`tokenizer.model` of Meta's Llama 3 release: one line per token,
 * `base64(bytes) rank`) as Hugging Face tokenizer.json objects, so the one tokenizer library
 * (`@huggingface/tokenizers`, hf.ts) runs them.
 *
 * The conversion (the rule of tiktoken's byte-pair merging): the vocabulary is the byte strings
 * (in the byte-level alphabet of bytes.ts) with their ranks as ids; the merges are, for every token
 * of two or more bytes, each split into two tokens, ordered by the token's rank (ties by the ranks
 * of the left, then the right part); `ignore_merges` keeps a pre-token that is itself in the
 * vocabulary whole, as tiktoken does. Pre-tokenization: the given split pattern (Llama 3's by
 * default), then byte-level symbols without a regex of their own. Special tokens follow the
 * regular ones (Llama 3: 256 ids from 128000).
 */
import * as fs from 'node:fs';
import { bytesToSymbols } from './bytes.js';
import { HFTokenizer, TokenizerError } from './hf.js';
import { hfBpeModel, hfSpecialToken } from './train.js';

/** The pre-tokenizer pattern of Llama 3's tokenizer (tiktoken `pat_str`). */
export const LLAMA3_SPLIT_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Llama 3's special tokens: ids 128000.. (the 256 ids after the regular ones). */
export function llama3SpecialTokens(): string[] {
  const named = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|reserved_special_token_1|>', '<|finetune_right_pad_id|>', '<|reserved_special_token_2|>', '<|start_header_id|>', '<|end_header_id|>', '<|eom_id|>', '<|eot_id|>', '<|python_tag|>'];
  const out: string[] = [];
  for (let i = 0; i < 256; i++) out.push(i < named.length ? named[i] : `<|reserved_special_token_${i - 8}|>`);
  return out;
}

export interface TiktokenOptions {
  /** pre-tokenizer split pattern (default: Llama 3's) */
  pattern?: string;
  /** special tokens, given ids from the number of regular tokens on (default: Llama 3's 256) */
  specialTokens?: string[];
}

/** Parses tiktoken text (`base64 rank` lines) into byte strings by rank; errors name `where`. */
export function parseTiktoken(text: string, where: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const m = /^([A-Za-z0-9+/=]+) (\d+)$/.exec(line);
    if (m === null) throw new TokenizerError(`${where}: line ${i + 1} is not "base64 rank"`);
    const rank = Number(m[2]);
    if (rank !== out.length) throw new TokenizerError(`${where}: line ${i + 1} has rank ${rank}, expected ${out.length} (ranks must be 0, 1, 2, ...)`);
    out.push(new Uint8Array(Buffer.from(m[1], 'base64')));
  }
  if (out.length < 256) throw new TokenizerError(`${where}: ${out.length} tokens; a byte-level BPE needs at least the 256 bytes`);
  return out;
}

/** The tokenizer.json object of a tiktoken vocabulary (see the file comment). */
export function tiktokenToTokenizerJson(tokens: readonly Uint8Array[], opts: TiktokenOptions = {}): Record<string, unknown> {
  const sym = tokens.map((t) => bytesToSymbols(t));
  const rank = new Map<string, number>();
  sym.forEach((s, i) => rank.set(s, i));
  const merges: [string, string, number, number, number][] = [];
  for (let r = 0; r < sym.length; r++) {
    const s = sym[r];
    const chars = [...s];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join('');
      const rr = chars.slice(i).join('');
      const rl = rank.get(l);
      const rrk = rank.get(rr);
      if (rl !== undefined && rrk !== undefined) merges.push([l, rr, r, rl, rrk]);
    }
  }
  merges.sort((a, b) => a[2] - b[2] || a[3] - b[3] || a[4] - b[4]);
  const vocab: Record<string, number> = {};
  sym.forEach((s, i) => (vocab[s] = i));
  const specials = opts.specialTokens ?? llama3SpecialTokens();
  return {
    version: '1.0',
    added_tokens: specials.map((content, i) => hfSpecialToken(sym.length + i, content)),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: opts.pattern ?? LLAMA3_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: hfBpeModel(
      vocab,
      merges.map((m) => `${m[0]} ${m[1]}`),
      true,
    ),
  };
}

/** Loads a tiktoken file (e.g. Llama 3's tokenizer.model) as an HFTokenizer. */
export function loadTiktoken(path: string, opts: TiktokenOptions = {}): HFTokenizer {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenizerError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return new HFTokenizer(tiktokenToTokenizerJson(parseTiktoken(text, path), opts), {}, path);
}
