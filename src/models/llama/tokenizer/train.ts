/**
 * A byte-level BPE trainer (GPT-2 style) that writes a Hugging Face `tokenizer.json`.
 *
 * 1. Pre-tokenize: the text is split by the GPT-2 regex (contractions, ` ?letters`, ` ?digits`,
 *    ` ?other symbols`, whitespace); each piece becomes its UTF-8 bytes, and identical pieces
 *    are counted once with their frequency.
 * 2. Alphabet: ids 0..255 are the 256 bytes in byte order (token strings via the GPT-2
 *    byte-to-unicode table), so every byte string can be encoded.
 * 3. Merges: repeatedly the most frequent adjacent pair (summed over pieces, weighted by piece
 *    frequency) is merged everywhere, left to right, into a new token, until the vocabulary has
 *    `vocabSize` entries or no pair occurs `minFrequency` times. Ties go to the pair with the
 *    smaller left id, then the smaller right id, so training is deterministic. A merge whose
 *    result string already exists (two different splits of one byte string) reuses that id, as
 *    the HF trainer does.
 * 4. Special tokens get the ids after the merges, as added tokens.
 *
 * Pair counts are updated incrementally (only the pieces that contain the merged pair are
 * touched) and the best pair comes from a max-heap with lazy deletion.
 */
import { BYTE_TO_CHAR } from './bytes.js';
import { writeFileAtomic } from '../../../io/safetensors.js';

/** GPT-2's pre-tokenization pattern (the one the ByteLevel pre-tokenizer applies with use_regex). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface BpeTrainOptions {
  /** total ids: 256 bytes + merges + special tokens */
  vocabSize: number;
  /** stop when the best pair occurs fewer times (default 2) */
  minFrequency?: number;
  /** added after the merges, in this order (e.g. ["<|endoftext|>"]) */
  specialTokens?: readonly string[];
  /** called every 100 merges and at the end */
  onProgress?: (merges: number, target: number) => void;
}

export interface BpeTrainResult {
  /** token string -> id (bytes and merges; special tokens are in `specialTokens`) */
  vocab: Map<string, number>;
  /** merges in rank order, as token strings */
  merges: [string, string][];
  specialTokens: { content: string; id: number }[];
  /** the final segmentation (ids) of every distinct pre-tokenized piece of the training text */
  pieces: Map<string, Int32Array>;
  /** frequency of the last merge (0 when none) */
  lastMergeCount: number;
  /**
   * why the merges ended: `vocab` (vocabSize reached), `no_pairs` (every piece is one token: no
   * adjacent pair left to merge) or `min_frequency` (the best pair is seen fewer than minFrequency times)
   */
  stop: 'vocab' | 'no_pairs' | 'min_frequency';
  /** the merges vocabSize asks for (vocabSize - 256 - special tokens) */
  targetMerges: number;
}

/** Pieces of text as the GPT-2 pre-tokenizer splits it. */
export function gpt2Pieces(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}

const SHIFT = 2 ** 21; // ids < 2^21: a pair (a, b) is the number a * 2^21 + b
const MAX_VOCAB = SHIFT;

interface HeapEntry {
  count: number;
  key: number;
}

/** max-heap on count, then smaller key (= smaller left id, then smaller right id) first */
class PairHeap {
  private readonly a: HeapEntry[] = [];
  get size(): number {
    return this.a.length;
  }
  private better(x: HeapEntry, y: HeapEntry): boolean {
    return x.count > y.count || (x.count === y.count && x.key < y.key);
  }
  push(e: HeapEntry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): HeapEntry | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as HeapEntry;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.better(a[l], a[m])) m = l;
        if (r < a.length && this.better(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Trains byte-level BPE on texts (each text is pre-tokenized on its own). */
export function trainBpe(texts: Iterable<string>, opts: BpeTrainOptions): BpeTrainResult {
  const specials = [...(opts.specialTokens ?? [])];
  if (new Set(specials).size !== specials.length) throw new Error('trainBpe: specialTokens has duplicates');
  if (specials.some((s) => s === '')) throw new Error('trainBpe: a special token is empty');
  const minFreq = opts.minFrequency ?? 2;
  if (!Number.isInteger(minFreq) || minFreq < 1) throw new Error(`trainBpe: minFrequency must be a positive integer, got ${minFreq}`);
  const vocabSize = opts.vocabSize;
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + specials.length || vocabSize > MAX_VOCAB) {
    throw new Error(`trainBpe: vocabSize must be an integer in [${256 + specials.length}, ${MAX_VOCAB}] (256 bytes + ${specials.length} special tokens at least), got ${vocabSize}`);
  }
  const targetTokens = vocabSize - specials.length;

  // 1. distinct pieces with their counts
  const pieceCounts = new Map<string, number>();
  for (const text of texts) for (const p of gpt2Pieces(text)) pieceCounts.set(p, (pieceCounts.get(p) ?? 0) + 1);
  const enc = new TextEncoder();
  const pieceNames = [...pieceCounts.keys()].sort(); // insertion order must not matter
  const words: Int32Array[] = pieceNames.map((p) => Int32Array.from(enc.encode(p)));
  const freq = pieceNames.map((p) => pieceCounts.get(p) as number);

  // 2. alphabet
  const tokens: string[] = [...BYTE_TO_CHAR];
  const vocab = new Map<string, number>(tokens.map((t, i) => [t, i]));

  // pair statistics
  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addWord = (w: number, sign: number, changed: Map<number, number> | null): void => {
    const word = words[w];
    const f = freq[w] * sign;
    for (let i = 0; i + 1 < word.length; i++) {
      const key = word[i] * SHIFT + word[i + 1];
      counts.set(key, (counts.get(key) ?? 0) + f);
      if (changed !== null) changed.set(key, (changed.get(key) ?? 0) + f);
      if (sign > 0) {
        let s = where.get(key);
        if (s === undefined) where.set(key, (s = new Set()));
        s.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addWord(w, 1, null);
  const heap = new PairHeap();
  for (const [key, count] of counts) heap.push({ count, key });

  // 3. merges
  const merges: [string, string][] = [];
  let lastMergeCount = 0;
  let stop: BpeTrainResult['stop'] = 'vocab';
  while (tokens.length < targetTokens) {
    const top = heap.pop();
    if (top === undefined) {
      stop = 'no_pairs';
      break;
    }
    const current = counts.get(top.key) ?? 0;
    if (current !== top.count) continue; // stale: a fresher entry holds the current count
    if (current < minFreq || current <= 0) {
      stop = 'min_frequency';
      break;
    }
    const a = Math.floor(top.key / SHIFT);
    const b = top.key % SHIFT;
    const str = tokens[a] + tokens[b];
    let id = vocab.get(str);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(str);
      vocab.set(str, id);
    }
    merges.push([tokens[a], tokens[b]]);
    lastMergeCount = current;
    const changed = new Map<number, number>();
    const affected = [...(where.get(top.key) ?? [])].sort((x, y) => x - y);
    where.delete(top.key);
    for (const w of affected) {
      const word = words[w];
      let has = false;
      for (let i = 0; i + 1 < word.length; i++) {
        if (word[i] === a && word[i + 1] === b) {
          has = true;
          break;
        }
      }
      if (!has) continue;
      addWord(w, -1, changed);
      const next: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(word[i]);
      }
      words[w] = Int32Array.from(next);
      addWord(w, 1, changed);
    }
    for (const [key, delta] of changed) {
      if (delta === 0) continue;
      const c = counts.get(key) ?? 0;
      if (c <= 0) {
        counts.delete(key);
        where.delete(key);
      } else heap.push({ count: c, key });
    }
    if (merges.length % 100 === 0) opts.onProgress?.(merges.length, targetTokens - 256);
  }
  opts.onProgress?.(merges.length, targetTokens - 256);

  const specialTokens = specials.map((content, i) => ({ content, id: tokens.length + i }));
  for (const s of specialTokens) {
    if (vocab.has(s.content)) throw new Error(`trainBpe: special token ${JSON.stringify(s.content)} is also a learned token`);
  }
  const pieces = new Map<string, Int32Array>();
  pieceNames.forEach((p, i) => pieces.set(p, words[i]));
  return { vocab, merges, specialTokens, pieces, lastMergeCount, stop, targetMerges: targetTokens - 256 };
}

/** The HF tokenizer.json object of a trained tokenizer (ByteLevel pre-tokenizer/decoder, BPE model). */
export function bpeTokenizerJson(r: Pick<BpeTrainResult, 'vocab' | 'merges' | 'specialTokens'>): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (const [t, id] of [...r.vocab].sort((x, y) => x[1] - y[1])) vocab[t] = id;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: r.specialTokens.map((s) => hfSpecialToken(s.id, s.content)),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: hfBpeModel(vocab, r.merges, false),
  };
}

/** An added special token of tokenizer.json (`added_tokens` entry). */
export function hfSpecialToken(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** The `model` object of a byte-level BPE tokenizer.json; merges as pairs or as "a b" strings. */
export function hfBpeModel(vocab: Record<string, number>, merges: ReadonlyArray<string | [string, string]>, ignoreMerges: boolean): Record<string, unknown> {
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: ignoreMerges,
    vocab,
    merges,
  };
}

/** Writes tokenizer.json atomically (temp file + rename). */
export function saveBpeTokenizer(path: string, r: Pick<BpeTrainResult, 'vocab' | 'merges' | 'specialTokens'>): void {
  writeFileAtomic(path, JSON.stringify(bpeTokenizerJson(r)) + '\n');
}
