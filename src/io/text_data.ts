/**
 * Training text: reading documents, a train/validation split, and packing documents into
 * fixed byte budgets with word boundaries and document segment ids.
 *
 * Inputs (`readDocuments`): text files (one file = one document), JSONL files (`.jsonl`,
 * `.ndjson`: one JSON object with a string `text` field per line = one document; blank lines
 * are skipped), and folders (walked recursively; entries sorted by name as UTF-16 code units,
 * so the order does not depend on the locale; names starting with "." are skipped). Text must
 * be valid UTF-8. A bad input throws a `DataError` naming the file and the line / byte offset.
 *
 * Split (`splitTrainVal`): a document goes to validation when a hash of (seed, its source
 * name) falls below the validation fraction, so the rule does not depend on the input order
 * and adding files does not move other documents. When that leaves either side empty (few
 * documents), every document instead keeps its head for training and gives its tail (the last
 * fraction of its bytes, cut at the next space or newline) to validation.
 *
 * Packing (`BytePacker`): every document is split into words by the model's splitter, and a
 * one-byte end-of-document word (byte 192, `<|eot_id|>`, unless disabled) is appended. Words are
 * laid into rows of exactly `seqBytes` bytes, greedily and in order; several documents share a
 * row, each as its own segment (attention resets at segment boundaries). A word never
 * straddles a row: when the next word does not fit, the row is closed with padding and the
 * document continues at the start of the next row as a NEW segment (its earlier context is not
 * visible there; this is how a document longer than a row is handled). A word longer than a
 * whole row (only when `seqBytes` < the splitter's maximum word size) is cut into row-sized
 * pieces. Padding is one trailing pseudo-word per row with a negative segment id and no
 * targets, so the words of a row always cover it exactly.
 *
 * Targets are next-byte targets inside a segment: byte i predicts byte i + 1 of the same
 * segment; the last byte of a segment and all padding have target -100 (ignored). The first
 * byte of a segment is never a target.
 *
 * Position (`DataPosition`): epoch, the epoch's shuffle seed, the index into that epoch's
 * document order, and the word index inside the document. The training stream is a pure
 * function of (documents, seed, position): saving and restoring the position continues it
 * exactly. Each epoch visits the documents in a permutation drawn from its own seed; the next
 * epoch's seed is drawn from the packer's generator, whose state is part of the position.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Rng, type RngState } from '../nn/rng.js';
import { firstInvalidUtf8 } from './safetensors.js';

/** A bad input file (the message names the file and where). */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** One training document. */
export interface TextDocument {
  /** where it came from: `path` (text file), `path:LINE` (JSONL), with `#tail` for a split-off tail */
  source: string;
  /** UTF-8 bytes (without any end-of-document marker) */
  bytes: Uint8Array;
}

export type InputFormat = 'auto' | 'text' | 'jsonl';

export interface ReadDocumentsOptions {
  /** how files are read: by extension (default), all as plain text, or all as JSONL */
  format?: InputFormat;
}

function isJsonlName(p: string): boolean {
  const e = nodePath.extname(p).toLowerCase();
  return e === '.jsonl' || e === '.ndjson';
}

function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code !== undefined ? `${err.code}: ${err.message.replace(/^[A-Z]+: /, '')}` : String(err.message ?? e);
}

/** Files under `p` (p itself when it is a file), recursively, sorted by name. */
function listFiles(p: string, out: string[]): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new DataError(`${p}: cannot read (${errnoText(e)})`);
  }
  if (st.isFile()) {
    out.push(p);
    return;
  }
  if (!st.isDirectory()) throw new DataError(`${p}: not a regular file or folder`);
  let names: string[];
  try {
    names = fs.readdirSync(p);
  } catch (e) {
    throw new DataError(`${p}: cannot list the folder (${errnoText(e)})`);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const n of names) {
    if (n.startsWith('.')) continue;
    listFiles(nodePath.join(p, n), out);
  }
}

/** 1-based line and column (in bytes) of a byte offset. */
function lineOf(b: Uint8Array, off: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < off; i++) {
    if (b[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: off - lineStart + 1 };
}

function readFileBytes(p: string): Uint8Array {
  try {
    return new Uint8Array(fs.readFileSync(p));
  } catch (e) {
    throw new DataError(`${p}: cannot read (${errnoText(e)})`);
  }
}

function checkUtf8(p: string, b: Uint8Array): void {
  const bad = firstInvalidUtf8(b);
  if (bad >= 0) {
    const { line, col } = lineOf(b, bad);
    throw new DataError(`${p}: invalid UTF-8 at byte offset ${bad} (line ${line}, byte ${col} of the line): byte 0x${b[bad].toString(16).padStart(2, '0')}`);
  }
}

function readText(p: string, out: TextDocument[]): void {
  const b = readFileBytes(p);
  checkUtf8(p, b);
  if (b.length > 0) out.push({ source: p, bytes: b });
}

function readJsonl(p: string, out: TextDocument[]): void {
  const b = readFileBytes(p);
  checkUtf8(p, b);
  const enc = new TextEncoder();
  const dec = new TextDecoder('utf-8');
  let start = 0;
  let line = 0;
  while (start < b.length) {
    line++;
    let end = b.indexOf(0x0a, start);
    if (end < 0) end = b.length;
    const raw = dec.decode(b.subarray(start, end)).replace(/\r$/, '');
    const lineOffset = start;
    start = end + 1;
    if (raw.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new DataError(`${p}:${line}: invalid JSON (line starts at byte offset ${lineOffset}): ${(e as Error).message}`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DataError(`${p}:${line}: expected a JSON object with a "text" field, got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`);
    const text = (v as Record<string, unknown>).text;
    if (text === undefined) throw new DataError(`${p}:${line}: missing "text" field (line starts at byte offset ${lineOffset})`);
    if (typeof text !== 'string') throw new DataError(`${p}:${line}: "text" must be a string, got ${text === null ? 'null' : typeof text}`);
    if (!isWellFormed(text)) throw new DataError(`${p}:${line}: "text" holds a lone surrogate escape, which is not valid UTF-8 text`);
    if (text.length > 0) out.push({ source: `${p}:${line}`, bytes: enc.encode(text) });
  }
}

function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Reads documents from files and folders (see the module comment for the rules). */
export function readDocuments(paths: readonly string[], opts: ReadDocumentsOptions = {}): TextDocument[] {
  if (paths.length === 0) throw new DataError('no input paths given');
  const files: string[] = [];
  for (const p of paths) listFiles(p, files);
  const fmt = opts.format ?? 'auto';
  const docs: TextDocument[] = [];
  for (const f of files) {
    if (fmt === 'jsonl' || (fmt === 'auto' && isJsonlName(f))) readJsonl(f, docs);
    else readText(f, docs);
  }
  if (docs.length === 0) throw new DataError(`no text found in ${paths.join(', ')} (${files.length} file(s), all empty)`);
  return docs;
}

/** FNV-1a 32-bit over a string, then a seed mix: a stable uniform value in [0, 1). */
function unitHash(seed: number, s: string): number {
  const r = new Rng(`${seed}\u0000${s}`);
  return r.float();
}

export interface SplitOptions {
  /** fraction of documents (or of bytes, in the fallback) held out (default 0.05) */
  valFraction?: number;
  seed?: number;
}

export interface TrainValSplit {
  train: TextDocument[];
  val: TextDocument[];
  /** 'documents' (hash rule) or 'tails' (fallback for few documents) */
  rule: 'documents' | 'tails';
}

/** The seeded, order-independent train/validation split described in the module comment. */
export function splitTrainVal(docs: readonly TextDocument[], opts: SplitOptions = {}): TrainValSplit {
  const frac = opts.valFraction ?? 0.05;
  const seed = opts.seed ?? 0;
  if (!(frac >= 0 && frac < 1)) throw new DataError(`validation fraction must lie in [0, 1), got ${frac}`);
  if (frac === 0) return { train: docs.slice(), val: [], rule: 'documents' };
  const train: TextDocument[] = [];
  const val: TextDocument[] = [];
  for (const d of docs) (unitHash(seed, d.source) < frac ? val : train).push(d);
  if (train.length > 0 && val.length > 0) return { train, val, rule: 'documents' };
  const t2: TextDocument[] = [];
  const v2: TextDocument[] = [];
  for (const d of docs) {
    const b = d.bytes;
    let cut = Math.floor(b.length * (1 - frac));
    while (cut < b.length && b[cut] !== 0x20 && b[cut] !== 0x0a) cut++;
    if (cut > 0) t2.push({ source: d.source, bytes: b.subarray(0, cut) });
    if (cut < b.length) v2.push({ source: `${d.source}#tail`, bytes: b.subarray(cut) });
  }
  if (t2.length === 0 || v2.length === 0) throw new DataError(`too little text to hold out ${(frac * 100).toFixed(1)}% for validation`);
  return { train: t2, val: v2, rule: 'tails' };
}

/** A stable fingerprint (hex) of a document list: sources, lengths and contents. */
export function fingerprintDocuments(docs: readonly TextDocument[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const mix = (x: number): void => {
    h1 = Math.imul(h1 ^ x, 0x01000193);
    h2 = Math.imul(h2 ^ x, 0x5bd1e995) ^ (h2 >>> 15);
  };
  for (const d of docs) {
    for (let i = 0; i < d.source.length; i++) mix(d.source.charCodeAt(i));
    mix(d.bytes.length);
    const b = d.bytes;
    for (let i = 0; i < b.length; i++) mix(b[i]);
  }
  return `${(h1 >>> 0).toString(16).padStart(8, '0')}${(h2 >>> 0).toString(16).padStart(8, '0')}-${docs.length}`;
}

/** Splits a document into words: returns the word lengths in bytes (they must sum to the length). */
export type WordSplitter = (bytes: Uint8Array) => ArrayLike<number>;

/** A batch of packed rows (all arrays row-major, [rows * seqBytes] unless noted). */
export interface PackedBatch {
  rows: number;
  seqBytes: number;
  /** byte values (padding 0) */
  bytes: Int32Array;
  /** next-byte targets, -100 where nothing is predicted */
  targets: Int32Array;
  /** segment (document piece) id per byte, unique within the batch; padding < 0 */
  segments: Int32Array;
  /** byte position inside its segment (0-based) */
  positions: Int32Array;
  /** lengths of all words, row after row; a row's words cover it exactly (padding is its last word) */
  wordLens: Int32Array;
  /** cumulative word counts [rows + 1]: row r owns words rowWords[r] .. rowWords[r+1]-1 */
  rowWords: Int32Array;
  /** number of targets (bytes predicted) */
  targetCount: number;
  /** bytes of text (not padding) in the batch */
  textBytes: number;
}

/** Per-word segment ids and word positions (0-based inside the segment) of a batch, [total words]. */
export function wordLayout(b: PackedBatch): { segments: Int32Array; positions: Int32Array; starts: Int32Array } {
  const n = b.wordLens.length;
  const segments = new Int32Array(n);
  const positions = new Int32Array(n);
  const starts = new Int32Array(n);
  for (let r = 0; r < b.rows; r++) {
    let off = r * b.seqBytes;
    let prevSeg = NaN;
    let pos = 0;
    for (let w = b.rowWords[r]; w < b.rowWords[r + 1]; w++) {
      const s = b.segments[off];
      pos = s === prevSeg ? pos + 1 : 0;
      prevSeg = s;
      segments[w] = s;
      positions[w] = pos;
      starts[w] = off;
      off += b.wordLens[w];
    }
  }
  return { segments, positions, starts };
}

/** Where the training stream stands (JSON). */
export interface DataPosition {
  epoch: number;
  /** seed of this epoch's document order */
  epochSeed: number;
  /** index into this epoch's document order */
  doc: number;
  /** index of the next word inside that document */
  word: number;
  /** the packer's generator (draws the next epoch's seed) */
  rng: RngState;
  /** rows produced so far (informational) */
  rowsServed: number;
}

export interface PackerOptions {
  seqBytes: number;
  /** the model's word splitter */
  split: WordSplitter;
  /** end-of-document byte appended as its own word (default 192); null for none */
  eos?: number | null;
  /** visit documents in a fresh seeded permutation per epoch (default true); false: input order, one epoch */
  shuffle?: boolean;
  seed?: number;
  /** keep at most this many documents' word lists in memory (default 4096) */
  cacheDocs?: number;
}

/** Packs documents into rows; see the module comment. */
export class BytePacker {
  readonly docs: readonly TextDocument[];
  readonly seqBytes: number;
  readonly eos: number | null;
  readonly shuffle: boolean;
  private readonly split: WordSplitter;
  private readonly cacheDocs: number;
  private readonly wordCache = new Map<number, Int32Array>();
  private rng: Rng;
  private epoch = 0;
  private epochSeed: number;
  private order: Int32Array;
  private doc = 0;
  private word = 0;
  private rowsServed = 0;
  /** set when a non-shuffled packer has gone through all documents */
  private exhausted = false;

  constructor(docs: readonly TextDocument[], opts: PackerOptions) {
    if (docs.length === 0) throw new DataError('no documents to pack');
    if (!Number.isInteger(opts.seqBytes) || opts.seqBytes < 2) throw new DataError(`seqBytes must be an integer >= 2, got ${opts.seqBytes}`);
    this.docs = docs;
    this.seqBytes = opts.seqBytes;
    this.split = opts.split;
    this.eos = opts.eos === undefined ? 192 : opts.eos;
    this.shuffle = opts.shuffle ?? true;
    this.cacheDocs = opts.cacheDocs ?? 4096;
    this.rng = new Rng(opts.seed ?? 0);
    this.epochSeed = this.rng.nextU32();
    this.order = this.makeOrder();
  }

  private makeOrder(): Int32Array {
    if (!this.shuffle) return Int32Array.from(this.docs.keys());
    return new Rng(this.epochSeed).permutation(this.docs.length);
  }

  /** Word lengths of document d (splitter output, long words cut to the row size, EOS appended). */
  wordsOf(d: number): Int32Array {
    const hit = this.wordCache.get(d);
    if (hit !== undefined) return hit;
    const bytes = this.docs[d].bytes;
    const raw = this.split(bytes);
    const out: number[] = [];
    let sum = 0;
    for (let i = 0; i < raw.length; i++) {
      let n = raw[i];
      if (!Number.isInteger(n) || n <= 0) throw new Error(`splitter returned a word of length ${n} for ${this.docs[d].source}`);
      sum += n;
      while (n > this.seqBytes) {
        out.push(this.seqBytes);
        n -= this.seqBytes;
      }
      out.push(n);
    }
    if (sum !== bytes.length) throw new Error(`splitter word lengths sum to ${sum}, document ${this.docs[d].source} has ${bytes.length} bytes`);
    if (this.eos !== null) out.push(1);
    const w = Int32Array.from(out);
    if (this.wordCache.size >= this.cacheDocs) this.wordCache.delete(this.wordCache.keys().next().value as number);
    this.wordCache.set(d, w);
    return w;
  }

  get position(): DataPosition {
    return { epoch: this.epoch, epochSeed: this.epochSeed, doc: this.doc, word: this.word, rng: this.rng.state(), rowsServed: this.rowsServed };
  }

  /** Continues from a saved position. */
  setPosition(p: DataPosition): void {
    if (!(Number.isInteger(p.doc) && p.doc >= 0 && p.doc <= this.docs.length && Number.isInteger(p.word) && p.word >= 0)) {
      throw new DataError(`data position ${JSON.stringify({ doc: p.doc, word: p.word })} does not fit ${this.docs.length} documents`);
    }
    this.rng = Rng.fromState(p.rng);
    this.epoch = p.epoch;
    this.epochSeed = p.epochSeed;
    this.order = this.makeOrder();
    this.doc = p.doc;
    this.word = p.word;
    this.rowsServed = p.rowsServed;
    this.exhausted = !this.shuffle && p.doc >= this.docs.length;
  }

  /** True when a non-shuffled (single-pass) packer has no text left. */
  get done(): boolean {
    return this.exhausted;
  }

  private nextDoc(): void {
    this.doc++;
    this.word = 0;
    if (this.doc < this.docs.length) return;
    if (!this.shuffle) {
      this.exhausted = true;
      return;
    }
    this.epoch++;
    this.epochSeed = this.rng.nextU32();
    this.order = this.makeOrder();
    this.doc = 0;
  }

  /**
   * The next `rows` rows. A single-pass packer returns fewer (possibly zero) rows at the end;
   * a shuffling one always returns `rows`.
   */
  next(rows: number): PackedBatch {
    const T = this.seqBytes;
    const bytes = new Int32Array(rows * T);
    const targets = new Int32Array(rows * T).fill(-100);
    const segments = new Int32Array(rows * T);
    const positions = new Int32Array(rows * T);
    const wordLens: number[] = [];
    const rowWords = [0];
    let seg = 0;
    let made = 0;
    let targetCount = 0;
    let textBytes = 0;
    for (let r = 0; r < rows && !this.exhausted; r++) {
      const base = r * T;
      let used = 0;
      while (!this.exhausted) {
        const d = this.order[this.doc];
        const words = this.wordsOf(d);
        const text = this.docs[d].bytes;
        if (this.word >= words.length) {
          this.nextDoc();
          continue;
        }
        if (words[this.word] > T - used) break; // next word does not fit: close the row
        // one segment: as many of this document's words as fit
        let textOff = 0;
        for (let w = 0; w < this.word; w++) textOff += words[w];
        const segStart = used;
        while (this.word < words.length && words[this.word] <= T - used) {
          const n = words[this.word];
          for (let k = 0; k < n; k++) {
            const src = textOff + k;
            bytes[base + used + k] = src < text.length ? text[src] : (this.eos as number);
          }
          textOff += n;
          used += n;
          wordLens.push(n);
          this.word++;
        }
        for (let i = segStart; i < used; i++) {
          segments[base + i] = seg;
          positions[base + i] = i - segStart;
          if (i + 1 < used) targets[base + i] = bytes[base + i + 1];
        }
        targetCount += used - segStart - 1;
        textBytes += used - segStart;
        seg++;
        if (this.word >= words.length) this.nextDoc();
        if (used === T) break;
      }
      if (used === 0) break; // nothing left (single pass)
      if (used < T) {
        wordLens.push(T - used);
        for (let i = used; i < T; i++) {
          segments[base + i] = -1 - r;
          positions[base + i] = i - used;
        }
      }
      rowWords.push(wordLens.length);
      made++;
      this.rowsServed++;
    }
    const n = made * T;
    return {
      rows: made,
      seqBytes: T,
      bytes: made === rows ? bytes : bytes.slice(0, n),
      targets: made === rows ? targets : targets.slice(0, n),
      segments: made === rows ? segments : segments.slice(0, n),
      positions: made === rows ? positions : positions.slice(0, n),
      wordLens: Int32Array.from(wordLens),
      rowWords: Int32Array.from(rowWords),
      targetCount,
      textBytes,
    };
  }
}
