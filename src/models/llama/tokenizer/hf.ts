/**
 * Hugging Face `tokenizer.json` tokenizers (Llama 3, GPT-2 and every other byte-level BPE, and
 * whatever else the library supports) behind one small interface, `TextTokenizer`.
 *
 * The tokenizer itself is `@huggingface/tokenizers` (Tokenizers.js: Hugging Face's pure
 * JavaScript port of the Rust `tokenizers` library, no dependencies, Apache-2.0; it translates
 * the Oniguruma pre-tokenizer regexes of tokenizer.json to JavaScript). See docs/tokenizers.md
 * for why. On top of it this module adds what the library does not offer: byte-exact
 * `decodeBytes` / `tokenBytes` for byte-level vocabularies, `encodeBytes` for arbitrary bytes
 * (invalid UTF-8 included), exact decoding by default (no "clean-up" of spaces before
 * punctuation), and errors that name the file.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Tokenizer as HFLibTokenizer } from '@huggingface/tokenizers';
import { BYTE_TO_CHAR, splitUtf8, symbolsToBytes } from './bytes.js';

export interface EncodeOptions {
  /** apply the tokenizer's post-processor (e.g. Llama 3 prepends <|begin_of_text|>); default false */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** leave out special tokens (default false) */
  skipSpecialTokens?: boolean;
}

/** What models, experiments and the CLI need from a tokenizer. */
export interface TextTokenizer {
  /** number of ids (largest id + 1, added tokens included) */
  readonly vocabSize: number;
  /** true when every token is a byte string (byte-level BPE): encodeBytes/decodeBytes/tokenBytes work */
  readonly byteLevel: boolean;
  /** special tokens by content */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** from tokenizer_config.json when present */
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Text -> ids. Added/special tokens written in the text are recognised, as in HF. */
  encode(text: string, opts?: EncodeOptions): Int32Array;
  /** Ids -> text, exactly (no whitespace clean-up); byte sequences that are not UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** Arbitrary bytes -> ids (byte-level only): valid UTF-8 runs as `encode`, other bytes one token each. */
  encodeBytes(bytes: Uint8Array): Int32Array;
  /** Ids -> the exact bytes they stand for (byte-level only; special tokens as their UTF-8 text). */
  decodeBytes(ids: ArrayLike<number>, opts?: DecodeOptions): Uint8Array;
  /** The bytes of one token (byte-level only). */
  tokenBytes(id: number): Uint8Array;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/** A tokenizer file that cannot be used, naming the file. */
export class TokenizerError extends Error {
  override readonly name = 'TokenizerError';
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when the pre-tokenizer or decoder is ByteLevel (directly or inside a Sequence). */
function usesByteLevel(node: unknown): boolean {
  if (!isObject(node)) return false;
  if (node.type === 'ByteLevel') return true;
  for (const key of ['pretokenizers', 'decoders']) {
    const list = node[key];
    if (Array.isArray(list) && list.some(usesByteLevel)) return true;
  }
  return false;
}

function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

export class HFTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly byteLevel: boolean;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** the library object (for what this interface does not cover) */
  readonly lib: HFLibTokenizer;
  private readonly where: string;
  private readonly added = new Map<number, { content: string; special: boolean }>();
  private readonly byteCache = new Map<number, Uint8Array>();
  private readonly byteIds: Int32Array;

  /**
   * From parsed tokenizer.json (and tokenizer_config.json) objects; `where` names the source in
   * errors.
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}, where = 'tokenizer.json') {
    this.where = where;
    if (!isObject(tokenizerJson)) throw new TokenizerError(`${where}: expected a JSON object`);
    if (!isObject(tokenizerJson.model)) throw new TokenizerError(`${where}: field "model" is missing or not an object`);
    const cfg = isObject(tokenizerConfig) ? tokenizerConfig : {};
    const json: Json = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tokenizerJson };
    try {
      this.lib = new HFLibTokenizer(json, cfg);
    } catch (e) {
      throw new TokenizerError(`${where}: not a usable tokenizer: ${(e as Error).message}`);
    }
    const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
    const special = new Map<string, number>();
    for (const t of added) {
      if (!isObject(t) || typeof t.content !== 'string' || typeof t.id !== 'number') throw new TokenizerError(`${where}: malformed entry in "added_tokens": ${JSON.stringify(t)}`);
      this.added.set(t.id, { content: t.content, special: t.special === true });
      if (t.special === true) special.set(t.content, t.id);
    }
    this.specialTokens = special;
    const vocab = this.lib.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.byteLevel = usesByteLevel(json.pre_tokenizer) || usesByteLevel(json.decoder);
    this.byteIds = new Int32Array(256).fill(-1);
    if (this.byteLevel) {
      for (let b = 0; b < 256; b++) {
        const id = this.lib.token_to_id(BYTE_TO_CHAR[b]);
        if (id === undefined) throw new TokenizerError(`${where}: byte-level vocabulary lacks the token for byte ${b} (${JSON.stringify(BYTE_TO_CHAR[b])})`);
        this.byteIds[b] = id;
      }
    }
    const idOf = (key: string): number | null => {
      const c = tokenContent(cfg[key]);
      return c === null ? null : (this.lib.token_to_id(c) ?? null);
    };
    this.bosId = idOf('bos_token');
    this.eosId = idOf('eos_token');
  }

  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    if (text.length === 0 && opts.addSpecialTokens !== true) return new Int32Array(0);
    const ids = this.lib.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
    const out = Int32Array.from(ids);
    const bad = ids.findIndex((x: unknown) => typeof x !== 'number');
    if (bad >= 0) throw new TokenizerError(`${this.where}: the text contains a piece the vocabulary cannot represent (token ${bad}: ${JSON.stringify(this.lib.tokenize(text)[bad])}) and there is no unk_token`);
    return out;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    if (this.byteLevel) return utf8Decoder.decode(this.decodeBytes(ids, opts));
    this.checkIds(ids);
    return this.lib.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  encodeBytes(bytes: Uint8Array): Int32Array {
    this.needByteLevel('encodeBytes');
    const parts: Int32Array[] = [];
    let n = 0;
    for (const piece of splitUtf8(bytes)) {
      const ids = typeof piece === 'number' ? Int32Array.of(this.byteIds[piece]) : this.encode(piece);
      parts.push(ids);
      n += ids.length;
    }
    const out = new Int32Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  decodeBytes(ids: ArrayLike<number>, opts: DecodeOptions = {}): Uint8Array {
    this.needByteLevel('decodeBytes');
    this.checkIds(ids);
    const skip = opts.skipSpecialTokens ?? false;
    const chunks: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      if (skip && this.added.get(ids[i])?.special === true) continue;
      const b = this.tokenBytes(ids[i]);
      chunks.push(b);
      n += b.length;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  tokenBytes(id: number): Uint8Array {
    this.needByteLevel('tokenBytes');
    let b = this.byteCache.get(id);
    if (b !== undefined) return b;
    const added = this.added.get(id);
    if (added !== undefined) b = utf8.encode(added.content);
    else {
      const tok = this.lib.id_to_token(id);
      if (tok === undefined) throw new TokenizerError(`${this.where}: token id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      const bytes = symbolsToBytes(tok);
      if (bytes === null) throw new TokenizerError(`${this.where}: token ${id} ${JSON.stringify(tok)} is not a byte-level token`);
      b = bytes;
    }
    this.byteCache.set(id, b);
    return b;
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }

  private checkIds(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.lib.id_to_token(id) === undefined) {
        throw new TokenizerError(`${this.where}: id ${id} at index ${i} is not in the vocabulary (size ${this.vocabSize})`);
      }
    }
  }

  private needByteLevel(what: string): void {
    if (!this.byteLevel) throw new TokenizerError(`${this.where}: ${what} needs a byte-level tokenizer (ByteLevel pre-tokenizer or decoder)`);
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TokenizerError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Loads a tokenizer: a tokenizer.json file, or a folder holding tokenizer.json (and optionally
 * tokenizer_config.json, for the bos/eos tokens).
 */
export function loadTokenizer(path: string): HFTokenizer {
  let file = path;
  try {
    if (fs.statSync(path).isDirectory()) file = nodePath.join(path, 'tokenizer.json');
  } catch {
    // reported by readJson
  }
  const json = readJson(file);
  const cfgPath = nodePath.join(nodePath.dirname(file), 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgPath) ? readJson(cfgPath) : {};
  return new HFTokenizer(json, cfg, file);
}
