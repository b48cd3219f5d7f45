/**
 * The HAT word splitter (spec: ../shared/specs/hat.md §1), a from-scratch TypeScript version of
 * the rules of Aleph Alpha's `hat-splitter` crate v0.1.10 (`HATSplitter::split_with_limit`):
 *
 *  1. UAX #29 word boundaries (every segment kept, whitespace and punctuation included), with no
 *     dictionaries: every Han character is its own segment. This is NOT what Node's
 *     `Intl.Segmenter(…, {granularity: 'word'})` does: ICU uses dictionaries for CJK/Thai/Lao/
 *     Khmer/Burmese and would merge e.g. "你好" (test/hat/splitter.test.ts shows the difference),
 *     so the rules are implemented here over a property table generated from the Unicode
 *     Character Database (unicode_tables.ts, see scripts/gen-unicode-tables.mjs).
 *  2. a cut after every `\p{P}` character;
 *  3. a camelCase cut between `\p{Ll}` and a following `\p{Lu}`;
 *  4. combine_spaces: a piece that is exactly " " joins a previous piece made only of ' ';
 *  5. classification: Space (exactly " "), Whitespace (`^\s+$`, \s = White_Space), Punctuation
 *     (exactly one `\p{P}` char), Word (anything else);
 *  6. grouping: a token joins the current group iff (last = Space and token = Word) or
 *     (last ∈ {Space, Word, Punctuation} and token = Punctuation); each group is one word;
 *  7. words longer than `maxWordSize` bytes (default 100) are cut into chunks of at most
 *     `maxWordSize` bytes, each cut moved back to the last character boundary inside the chunk,
 *     or made mid-character when the chunk holds no boundary.
 *
 * Bytes and invalid UTF-8: `splitBytes` decodes the input itself. Every byte that is not part of
 * a well-formed UTF-8 sequence (Unicode Table 3-7: no overlongs, no surrogates, ≤ U+10FFFF; a
 * truncated sequence counts as invalid, byte by byte) becomes a one-byte unit with the
 * properties of U+FFFD REPLACEMENT CHARACTER (Word_Break Other, General_Category So: not
 * punctuation, not a letter, not white space), so it usually ends up as a word of its own (or
 * inside a symbol run). Nothing throws, and the words always concatenate to the exact input
 * bytes. Strings (`splitText`) are split by code point; a lone surrogate is treated like U+FFFD
 * and counted as 3 bytes (what TextEncoder writes for it).
 *
 * Causality (spec §1.1.8): splitting a prefix of a text, cut at a character boundary, gives words
 * that are byte-prefixes of the full text's words (all equal but the last, which is a prefix of
 * its counterpart). The rules themselves (so the reference crate too) have two exceptions:
 *  - U+2044 FRACTION SLASH, the only UAX #29 look-ahead "Mid" character that is not `\p{P}`:
 *    "1⁄" splits as ["1", "⁄"] but "1⁄2" is one word;
 *  - a single space followed by a white-space character that UAX #29 lets join what follows
 *    (TAB, U+00A0, U+2007 before a combining mark; U+202F also before a letter or digit): " \t" is
 *    [" ", "\t"] (Space, Whitespace) but " \t\u0301" is one word (Space + Word).
 * WordStream (incremental splitting for generation) matches the whole-text split except there.
 */
import {
  EXTENDED_PICTOGRAPHIC_RANGES,
  LOWERCASE_RANGES,
  PUNCTUATION_RANGES,
  UNICODE_VERSION,
  UPPERCASE_RANGES,
  WHITE_SPACE_RANGES,
  WORD_BREAK_RANGES,
} from './unicode_tables.js';

export { UNICODE_VERSION };

/** max_word_size of the released TFree-HAT models (config.json), in bytes. */
export const DEFAULT_MAX_WORD_SIZE = 100;
/** special_token_dict default of the released models: `<|eot_id|>` is byte 192 (0xC0, never in valid UTF-8). */
export const DEFAULT_SPECIAL_TOKENS: Readonly<Record<string, number>> = Object.freeze({ '<|eot_id|>': 192 });

// ---------------------------------------------------------------------------------------------
// Character properties: one Uint16 per code point, built on first use (2.2 MB).
// Bits 0-4: Word_Break class (codes in the order of WORD_BREAK_RANGES, 0 = Other); then flags.

const WB_CR = 1;
const WB_LF = 2;
const WB_NEWLINE = 3;
const WB_EXTEND = 4;
const WB_ZWJ = 5;
const WB_RI = 6;
const WB_FORMAT = 7;
const WB_KATAKANA = 8;
const WB_HEBREW = 9;
const WB_ALETTER = 10;
const WB_SQ = 11;
const WB_DQ = 12;
const WB_MIDNUMLET = 13;
const WB_MIDLETTER = 14;
const WB_MIDNUM = 15;
const WB_NUMERIC = 16;
const WB_EXTENDNUMLET = 17;
const WB_WSEGSPACE = 18;
const WB_MASK = 31;
const F_P = 1 << 5; // \p{P}
const F_LL = 1 << 6; // \p{Ll}
const F_LU = 1 << 7; // \p{Lu}
const F_WS = 1 << 8; // White_Space (\s)
const F_EP = 1 << 9; // Extended_Pictographic
const F_SPACE = 1 << 10; // U+0020 itself

let TABLE: Uint16Array | undefined;

function forRanges(encoded: string, fn: (start: number, end: number) => void): void {
  if (encoded === '') return;
  let prev = 0;
  for (const pair of encoded.split(',')) {
    const dot = pair.indexOf('.');
    const start = prev + parseInt(pair.slice(0, dot), 36);
    const end = start + parseInt(pair.slice(dot + 1), 36);
    fn(start, end);
    prev = end;
  }
}

function table(): Uint16Array {
  if (TABLE !== undefined) return TABLE;
  const t = new Uint16Array(0x110000);
  WORD_BREAK_RANGES.forEach((enc, i) => forRanges(enc, (a, b) => t.fill(i + 1, a, b)));
  const flag = (enc: string, f: number): void =>
    forRanges(enc, (a, b) => {
      for (let c = a; c < b; c++) t[c] |= f;
    });
  flag(PUNCTUATION_RANGES, F_P);
  flag(LOWERCASE_RANGES, F_LL);
  flag(UPPERCASE_RANGES, F_LU);
  flag(WHITE_SPACE_RANGES, F_WS);
  flag(EXTENDED_PICTOGRAPHIC_RANGES, F_EP);
  t[0x20] |= F_SPACE;
  TABLE = t;
  return t;
}

/** Properties given to a byte that is not part of well-formed UTF-8 (those of U+FFFD). */
function invalidProps(t: Uint16Array): number {
  return t[0xfffd];
}

// ---------------------------------------------------------------------------------------------
// UTF-8

/**
 * Length of the well-formed UTF-8 sequence starting at bytes[i] (Unicode Table 3-7), 0 if
 * bytes[i] cannot start one here, or -k when the k bytes left before `end` are a valid but
 * truncated start of a sequence.
 */
function utf8SeqLen(b: Uint8Array, i: number, end: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) need = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    need = 3;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 4;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k < need; k++) {
    if (i + k >= end) return -k;
    const x = b[i + k];
    if (x < lo || x > hi) return 0;
    lo = 0x80;
    hi = 0xbf;
  }
  return need;
}

/**
 * If `bytes` ends with a valid but incomplete UTF-8 sequence (a multi-byte character still
 * missing its last byte(s)), the index where that sequence starts; otherwise -1.
 */
export function incompleteUtf8Tail(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const i = n - k;
    const c = bytes[i];
    if (c >= 0x80 && c < 0xc0) continue; // continuation byte: look further back for the lead
    return utf8SeqLen(bytes, i, n) === -k ? i : -1;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Units: the input as a sequence of characters (or invalid bytes) with their properties.

interface Units {
  /** number of units */
  n: number;
  /** properties (table entry) per unit */
  props: Uint16Array;
  /** UTF-8 byte offset of each unit, plus the total length at [n] */
  byteOff: Int32Array;
}

function unitsOfBytes(bytes: Uint8Array): Units {
  const t = table();
  const bad = invalidProps(t);
  const len = bytes.length;
  const props = new Uint16Array(len);
  const byteOff = new Int32Array(len + 1);
  let n = 0;
  let i = 0;
  while (i < len) {
    const c = bytes[i];
    byteOff[n] = i;
    if (c < 0x80) {
      props[n++] = t[c];
      i++;
      continue;
    }
    const k = utf8SeqLen(bytes, i, len);
    if (k <= 0) {
      props[n++] = bad;
      i++;
      continue;
    }
    let cp: number;
    if (k === 2) cp = ((c & 0x1f) << 6) | (bytes[i + 1] & 0x3f);
    else if (k === 3) cp = ((c & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
    else cp = ((c & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f);
    props[n++] = t[cp];
    i += k;
  }
  byteOff[n] = len;
  return { n, props, byteOff };
}

function unitsOfString(text: string): Units & { strOff: Int32Array } {
  const t = table();
  const len = text.length;
  const props = new Uint16Array(len);
  const byteOff = new Int32Array(len + 1);
  const strOff = new Int32Array(len + 1);
  let n = 0;
  let bytePos = 0;
  for (let i = 0; i < len; ) {
    const c = text.charCodeAt(i);
    byteOff[n] = bytePos;
    strOff[n] = i;
    if (c < 0x80) {
      props[n++] = t[c];
      bytePos += 1;
      i += 1;
    } else if (c < 0x800) {
      props[n++] = t[c];
      bytePos += 2;
      i += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(i + 1) - 0xdc00);
      props[n++] = t[cp];
      bytePos += 4;
      i += 2;
    } else {
      // BMP char from U+0800, or a lone surrogate (its table entry is Other without flags, like U+FFFD)
      props[n++] = t[c];
      bytePos += 3;
      i += 1;
    }
  }
  byteOff[n] = bytePos;
  strOff[n] = len;
  return { n, props, byteOff, strOff };
}

// ---------------------------------------------------------------------------------------------
// Step 1: UAX #29 word boundaries.

function isAH(c: number): boolean {
  return c === WB_ALETTER || c === WB_HEBREW;
}
function isMidLetterQ(c: number): boolean {
  return c === WB_MIDLETTER || c === WB_MIDNUMLET || c === WB_SQ;
}
function isMidNumQ(c: number): boolean {
  return c === WB_MIDNUM || c === WB_MIDNUMLET || c === WB_SQ;
}
function isIgnorable(c: number): boolean {
  return c === WB_EXTEND || c === WB_FORMAT || c === WB_ZWJ;
}

/** Word_Break class of the first unit after i that rule WB4 does not absorb, or -1 at the end. */
function nextEffective(props: Uint16Array, n: number, i: number): number {
  for (let k = i + 1; k < n; k++) {
    const c = props[k] & WB_MASK;
    if (!isIgnorable(c)) return c;
  }
  return -1;
}

/**
 * UAX #29 word boundaries: sets out[i] = 1 iff there is a boundary between unit i-1 and unit i
 * (0 < i < n), by rules WB3-WB999 of the Unicode version in unicode_tables.ts.
 */
export function markWordBoundaries(props: Uint16Array, n: number, out: Uint8Array): void {
  if (n === 0) return;
  // Effective context after WB4 (X (Extend | Format | ZWJ)* -> X): the last two unabsorbed
  // classes before i, and the number of Regional_Indicators ending the effective sequence.
  let last = props[0] & WB_MASK;
  let last2 = -1;
  let riRun = last === WB_RI ? 1 : 0;
  for (let i = 1; i < n; i++) {
    const p = props[i - 1] & WB_MASK;
    const c = props[i] & WB_MASK;
    let brk: boolean;
    let absorbed = false;
    if (p === WB_CR && c === WB_LF) brk = false; // WB3
    else if (p === WB_CR || p === WB_LF || p === WB_NEWLINE) brk = true; // WB3a
    else if (c === WB_CR || c === WB_LF || c === WB_NEWLINE) brk = true; // WB3b
    else if (p === WB_ZWJ && (props[i] & F_EP) !== 0) brk = false; // WB3c
    else if (p === WB_WSEGSPACE && c === WB_WSEGSPACE) brk = false; // WB3d
    else if (isIgnorable(c)) {
      brk = false; // WB4
      absorbed = true;
    } else if (isAH(last) && isAH(c)) brk = false; // WB5
    else if (isAH(last) && isMidLetterQ(c) && isAH(nextEffective(props, n, i))) brk = false; // WB6
    else if (isAH(last2) && isMidLetterQ(last) && isAH(c)) brk = false; // WB7
    else if (last === WB_HEBREW && c === WB_SQ) brk = false; // WB7a
    else if (last === WB_HEBREW && c === WB_DQ && nextEffective(props, n, i) === WB_HEBREW) brk = false; // WB7b
    else if (last2 === WB_HEBREW && last === WB_DQ && c === WB_HEBREW) brk = false; // WB7c
    else if (last === WB_NUMERIC && c === WB_NUMERIC) brk = false; // WB8
    else if (isAH(last) && c === WB_NUMERIC) brk = false; // WB9
    else if (last === WB_NUMERIC && isAH(c)) brk = false; // WB10
    else if (last2 === WB_NUMERIC && isMidNumQ(last) && c === WB_NUMERIC) brk = false; // WB11
    else if (last === WB_NUMERIC && isMidNumQ(c) && nextEffective(props, n, i) === WB_NUMERIC) brk = false; // WB12
    else if (last === WB_KATAKANA && c === WB_KATAKANA) brk = false; // WB13
    else if ((isAH(last) || last === WB_NUMERIC || last === WB_KATAKANA || last === WB_EXTENDNUMLET) && c === WB_EXTENDNUMLET) brk = false; // WB13a
    else if (last === WB_EXTENDNUMLET && (isAH(c) || c === WB_NUMERIC || c === WB_KATAKANA)) brk = false; // WB13b
    else if (last === WB_RI && c === WB_RI && (riRun & 1) === 1) brk = false; // WB15, WB16
    else brk = true; // WB999
    out[i] = brk ? 1 : 0;
    if (!absorbed) {
      last2 = last;
      last = c;
      riRun = c === WB_RI ? riRun + 1 : 0;
    }
  }
}

/** The UAX #29 layer alone (step 1): all word-boundary segments of `text`, concatenating to it. */
export function wordBoundarySegments(text: string): string[] {
  const { n, props, strOff } = unitsOfString(text);
  const bound = new Uint8Array(n + 1);
  markWordBoundaries(props, n, bound);
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i <= n; i++) {
    if (i === n || bound[i] === 1) {
      out.push(text.slice(strOff[start], strOff[i]));
      start = i;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Steps 2-6: cuts, combine_spaces, classification, grouping. Returns word ends (unit indices).

const TOK_SPACE = 0;
const TOK_WHITESPACE = 1;
const TOK_PUNCT = 2;
const TOK_WORD = 3;

function tokenType(len: number, allSpace: boolean, allWs: boolean, first: number): number {
  if (len === 1 && allSpace) return TOK_SPACE;
  if (allWs) return TOK_WHITESPACE;
  if (len === 1 && (first & F_P) !== 0) return TOK_PUNCT;
  return TOK_WORD;
}

/** Does a token of this type join the group whose last token is lastTok (-1: no group yet)? */
function joinsGroup(lastTok: number, type: number): boolean {
  return (lastTok === TOK_SPACE && type === TOK_WORD) || (type === TOK_PUNCT && lastTok >= 0 && lastTok !== TOK_WHITESPACE);
}

function wordEnds(props: Uint16Array, n: number): Int32Array {
  const bound = new Uint8Array(n + 1);
  markWordBoundaries(props, n, bound);
  const ends = new Int32Array(n + 1);
  let nEnds = 0;
  let lastTok = -1; // type of the last token of the current group, -1 before the first
  // The pending piece, held back one step for combine_spaces.
  let pend = false;
  let pStart = 0;
  let pLen = 0;
  let pAllSpace = true;
  let pAllWs = true;
  // The piece being scanned.
  let start = 0;
  let allSpace = true;
  let allWs = true;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const q = props[i];
    if (i > 0 && (bound[i] === 1 || (prev & F_P) !== 0 || ((prev & F_LL) !== 0 && (q & F_LU) !== 0))) {
      const len = i - start;
      if (pend && len === 1 && allSpace && pAllSpace) {
        pLen += 1; // combine_spaces: " " joins a previous all-' ' piece
      } else {
        if (pend) {
          const type = tokenType(pLen, pAllSpace, pAllWs, props[pStart]);
          if (!joinsGroup(lastTok, type) && lastTok >= 0) ends[nEnds++] = pStart;
          lastTok = type;
        }
        pend = true;
        pStart = start;
        pLen = len;
        pAllSpace = allSpace;
        pAllWs = allWs;
      }
      start = i;
      allSpace = true;
      allWs = true;
    }
    allSpace = allSpace && (q & F_SPACE) !== 0;
    allWs = allWs && (q & F_WS) !== 0;
    prev = q;
  }
  if (n > 0) {
    // the last piece [start, n)
    const len = n - start;
    if (pend && len === 1 && allSpace && pAllSpace) pLen += 1;
    else {
      if (pend) {
        const type = tokenType(pLen, pAllSpace, pAllWs, props[pStart]);
        if (!joinsGroup(lastTok, type) && lastTok >= 0) ends[nEnds++] = pStart;
        lastTok = type;
      }
      pStart = start;
      pLen = len;
      pAllSpace = allSpace;
      pAllWs = allWs;
    }
    const type = tokenType(pLen, pAllSpace, pAllWs, props[pStart]);
    if (!joinsGroup(lastTok, type) && lastTok >= 0) ends[nEnds++] = pStart;
    ends[nEnds++] = n;
  }
  return ends.subarray(0, nEnds);
}

// ---------------------------------------------------------------------------------------------
// Step 7 and the public API.

export interface SplitOptions {
  /** maximum bytes per word (default 100, the released models' max_word_size) */
  maxWordSize?: number;
}

function checkMax(maxWordSize: number | undefined): number {
  const m = maxWordSize ?? DEFAULT_MAX_WORD_SIZE;
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`maxWordSize must be a positive integer, got ${m}`);
  return m;
}

/**
 * The split of splitBytes as word boundaries: offsets [0, end of word 0, end of word 1, ...,
 * bytes.length] (HAT's cumulative_seq_lengths_per_word). No per-word objects are made, so this
 * is the fast path for training data.
 */
export function splitBytesOffsets(bytes: Uint8Array, opts: SplitOptions = {}): Int32Array {
  const max = checkMax(opts.maxWordSize);
  const { n, props, byteOff } = unitsOfBytes(bytes);
  const ends = wordEnds(props, n);
  let out: Int32Array = new Int32Array(ends.length + 1 + (bytes.length > 0 ? 8 : 0));
  let k = 1;
  let a = 0;
  for (let w = 0; w < ends.length; w++) {
    const b = ends[w];
    let start = byteOff[a];
    const end = byteOff[b];
    if (end - start <= max) {
      if (k >= out.length) out = grow(out);
      out[k++] = end;
    } else {
      let u = a; // byteOff[u] = the last unit boundary <= the current limit
      while (start < end) {
        const lim = Math.min(start + max, end);
        while (u < b && byteOff[u + 1] <= lim) u++;
        const cut = byteOff[u] > start ? byteOff[u] : lim;
        if (k >= out.length) out = grow(out);
        out[k++] = cut;
        start = cut;
      }
    }
    a = b;
  }
  return out.subarray(0, k);
}

function grow(a: Int32Array): Int32Array {
  const g = new Int32Array(a.length * 2);
  g.set(a);
  return g;
}

/**
 * Splits UTF-8 bytes (valid or not) into words of at most maxWordSize bytes. The words are
 * views into `bytes` (no copies) and concatenate to exactly `bytes`. A word is cut mid-character
 * only when a chunk of maxWordSize bytes holds no character boundary (maxWordSize < 4).
 */
export function splitBytes(bytes: Uint8Array, opts: SplitOptions = {}): Uint8Array[] {
  const off = splitBytesOffsets(bytes, opts);
  const out: Uint8Array[] = new Array<Uint8Array>(off.length - 1);
  for (let w = 0; w + 1 < off.length; w++) out[w] = bytes.subarray(off[w], off[w + 1]);
  return out;
}

/**
 * The end of the longest prefix of `bytes` whose words no later byte can change, and after which
 * the split starts afresh: just after the last LF, or just before the last space (0x20) that
 * follows an ASCII byte other than a space, whichever is later; 0 when there is none. Why: LF always
 * ends a word (UAX #29 WB3a/b) and a whitespace token never joins a group nor takes the next token;
 * a single space after a character that is not a WSegSpace always starts a piece (WB999) that joins
 * nothing before it (it is not Word or Punctuation, and the piece before it is not all spaces); the
 * lookahead of every rule stops at an LF or a space (neither is Extend, Format or ZWJ). So the words
 * of bytes[0, end) followed by those of bytes[end, ...) are the words of the whole text
 * (ChunkedSplitter; tested against splitBytes on random text).
 */
export function finalWordsEnd(bytes: Uint8Array, from = 0): number {
  for (let i = bytes.length - 1; i >= from; i--) {
    const b = bytes[i];
    if (b === 0x0a) return i + 1;
    if (b === 0x20 && i > from && bytes[i - 1] < 0x80 && bytes[i - 1] !== 0x20) return i;
  }
  return 0;
}

/**
 * splitBytes over input that arrives in chunks, in bounded memory: `push` returns the words that
 * are final so far, `end` the rest; together exactly the words of splitBytes on the whole input.
 * Text is held back only after the last final point (finalWordsEnd); a stretch of more than
 * `maxPending` bytes (default 256 MiB) without one (no LF, no space after an ASCII character) is a
 * RangeError.
 */
export class ChunkedSplitter {
  /** bytes held back (after the last final point), in the chunks they came in */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private readonly maxWordSize: number;
  private readonly maxPending: number;
  constructor(opts: SplitOptions & { maxPending?: number } = {}) {
    this.maxWordSize = checkMax(opts.maxWordSize);
    this.maxPending = opts.maxPending ?? 256 * 2 ** 20;
  }

  /** Adds bytes; returns the words now final (views into a copy of the input). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length === 0) return [];
    // the byte before the chunk decides whether a space at its start is a final point
    const last = this.held.length > 0 ? this.held[this.held.length - 1] : undefined;
    const withPrev = new Uint8Array(chunk.length + 1);
    withPrev[0] = last !== undefined ? last[last.length - 1] : 0x20;
    withPrev.set(chunk, 1);
    const cut = finalWordsEnd(withPrev) - 1; // in chunk coordinates; -1: none
    if (cut < 0 && this.heldBytes + chunk.length > this.maxPending) throw new RangeError(`more than ${this.maxPending} bytes without a line break or a space after an ASCII character`);
    if (cut < 0) {
      this.held.push(chunk.slice());
      this.heldBytes += chunk.length;
      return [];
    }
    if (cut > 0) {
      this.held.push(chunk.subarray(0, cut));
      this.heldBytes += cut;
    }
    const words = this.flushHeld();
    if (cut < chunk.length) {
      this.held = [chunk.slice(cut)];
      this.heldBytes = chunk.length - cut;
    }
    return words;
  }

  /** The words of the bytes held back. */
  end(): Uint8Array[] {
    return this.flushHeld();
  }

  /** Splits the held bytes; nothing is held after. */
  private flushHeld(): Uint8Array[] {
    const parts = this.held;
    const n = this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
    const data = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.length;
    }
    return splitBytes(data, { maxWordSize: this.maxWordSize });
  }
}

/** Byte offsets where the words of `bytes` end, before the maxWordSize chunking (steps 1-6). */
function groupByteEnds(bytes: Uint8Array): number[] {
  const { n, props, byteOff } = unitsOfBytes(bytes);
  return Array.from(wordEnds(props, n), (u) => byteOff[u]);
}

/**
 * Chunks bytes[start, end) (one word, or its part after a previous cut) like splitBytes, pushing
 * the chunks to `out`. With keepLast, bytes from `end` on are not known yet (or not final):
 * it only cuts while more than maxWordSize known bytes remain and returns where the remainder
 * starts; otherwise it cuts all of [start, end) and returns `end`.
 */
function chunkWord(bytes: Uint8Array, start: number, end: number, max: number, out: Uint8Array[], keepLast: boolean): number {
  while (end - start > max) {
    // the last character boundary in (start, start + max]
    const { byteOff, n } = unitsOfBytes(bytes.subarray(start, Math.min(end, start + max + 4)));
    let cut = 0;
    for (let u = 1; u <= n && byteOff[u] <= max; u++) cut = byteOff[u];
    if (cut === 0) cut = max;
    out.push(bytes.subarray(start, start + cut));
    start += cut;
  }
  if (!keepLast && end > start) {
    out.push(bytes.subarray(start, end));
    start = end;
  }
  return start;
}

/**
 * Incremental splitting for cached generation: feed the bytes of a text one at a time and get
 * each word as soon as it is final. The words are exactly those of HatSplitter.encodeBytes on
 * the whole byte stream (special-token bytes are one-byte words and reset the context, like a
 * special string in encode), except across the UAX #29 causality exception (U+2044, see the top
 * of this file), where the stream cannot take back a word it already gave out.
 *
 * It re-splits a small context (the current word plus the two words before it, before chunking)
 * after each byte, so that rules that look back past the current word (a combining mark after
 * punctuation, words cut by maxWordSize) give the same result as splitting the whole text.
 */
export class WordStream {
  readonly maxWordSize: number;
  private readonly special: ReadonlySet<number>;
  private buf = new Uint8Array(256);
  private len = 0;
  /** starts of the (up to two) finished words kept as context, then of the current word */
  private ctxStarts: number[] = [];
  private curStart = 0;
  /** bytes of the current word before this offset have been given out (maxWordSize cuts) */
  private emitted = 0;

  constructor(opts: AppendByteOptions = {}) {
    this.maxWordSize = checkMax(opts.maxWordSize);
    this.special = opts.specialIds === undefined ? DEFAULT_SPECIAL_IDS : new Set(opts.specialIds);
  }

  /** The bytes of the unfinished current word (a copy). */
  get current(): Uint8Array {
    return this.buf.slice(this.emitted, this.len);
  }

  /** Feeds one byte; returns the words it finished (often none; a copy of each). */
  push(byte: number): Uint8Array[] {
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) throw new RangeError(`byte must be an integer in 0..255, got ${byte}`);
    if (this.special.has(byte)) {
      const out = this.finish();
      out.push(Uint8Array.of(byte));
      return out;
    }
    if (this.len === this.buf.length) {
      const ctx = this.ctxStarts.length > 0 ? this.ctxStarts[0] : this.curStart;
      const grown = new Uint8Array(Math.max(256, 2 * (this.len - ctx) + 1));
      grown.set(this.buf.subarray(ctx, this.len));
      this.buf = grown;
      this.len -= ctx;
      this.curStart -= ctx;
      this.emitted -= ctx;
      this.ctxStarts = this.ctxStarts.map((x) => x - ctx);
    }
    this.buf[this.len++] = byte;
    const out: Uint8Array[] = [];
    const max = this.maxWordSize;
    // A character still open at the end can belong to the current word or start the next, so
    // only the words ending before it are final.
    const tail = incompleteUtf8Tail(this.buf.subarray(this.curStart, this.len));
    const splitEnd = tail >= 0 ? this.curStart + tail : this.len;
    if (splitEnd > this.curStart) {
      const ctx = this.ctxStarts.length > 0 ? this.ctxStarts[0] : this.curStart;
      for (const e0 of groupByteEnds(this.buf.subarray(ctx, splitEnd))) {
        const e = e0 + ctx;
        if (e <= this.curStart || e >= splitEnd) continue;
        // the current word ended at e: give out the rest of it, start the next
        chunkWord(this.buf, this.emitted, e, max, out, false);
        this.ctxStarts.push(this.curStart);
        if (this.ctxStarts.length > 2) this.ctxStarts.shift();
        this.curStart = e;
        this.emitted = Math.max(this.emitted, e);
      }
    }
    // (While a character is open, the current word may hold up to 3 bytes more than
    // maxWordSize: where it is cut depends on whether that character completes.)
    this.emitted = Math.max(this.emitted, chunkWord(this.buf, this.emitted, splitEnd, max, out, true));
    return out.map((w) => w.slice());
  }

  /** Ends the text: returns the remaining word(s) and resets the stream. */
  finish(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.len > this.emitted) {
      const ctx = this.ctxStarts.length > 0 ? this.ctxStarts[0] : this.curStart;
      let start = this.emitted;
      for (const e of groupByteEnds(this.buf.subarray(ctx, this.len))) {
        if (e + ctx <= start) continue;
        start = chunkWord(this.buf, start, e + ctx, this.maxWordSize, out, false);
      }
    }
    const copies = out.map((w) => w.slice());
    this.len = 0;
    this.ctxStarts = [];
    this.curStart = 0;
    this.emitted = 0;
    return copies;
  }
}

/**
 * Splits a string into words (substrings that concatenate to `text`). Words are cut at
 * maxWordSize UTF-8 bytes like splitBytes, except that a string cannot hold half a character:
 * when one character alone is longer than maxWordSize (only possible for maxWordSize < 4) it is
 * kept whole. Use splitBytes / HatSplitter.encode for the exact byte-level split.
 */
export function splitText(text: string, opts: SplitOptions = {}): string[] {
  const max = checkMax(opts.maxWordSize);
  const { n, props, byteOff, strOff } = unitsOfString(text);
  const ends = wordEnds(props, n);
  const out: string[] = [];
  let a = 0;
  for (let w = 0; w < ends.length; w++) {
    const b = ends[w];
    if (byteOff[b] - byteOff[a] <= max) {
      out.push(text.slice(strOff[a], strOff[b]));
    } else {
      let u = a;
      while (u < b) {
        const lim = byteOff[u] + max;
        let v = u + 1; // at least one unit per chunk
        while (v < b && byteOff[v + 1] <= lim) v++;
        out.push(text.slice(strOff[u], strOff[v]));
        u = v;
      }
    }
    a = b;
  }
  return out;
}

export interface AppendByteResult {
  /** true when the current word is finished and `words` holds more than one word */
  complete: boolean;
  /** the split of word + byte: [word + byte] when not complete, else the finished word(s) then the start of the next */
  words: Uint8Array[];
}

/**
 * What the word-end test does when the current word plus the new byte is not valid UTF-8
 * beyond an unfinished last character (a model emitting invalid bytes):
 * - 'reference' (default): as the reference `_append_byte` - strict decoding fails, so the byte
 *   stays in the current word; the word ends only when it would exceed maxWordSize (then the new
 *   byte starts the next word, as vLLM's `check_byte_for_new_word` cap), which bounds the
 *   reference's otherwise never-ending word.
 * - 'resplit': re-split the bytes with splitBytes (each invalid byte is a unit of its own), which
 *   may end one or several words at once (tfree's earlier rule).
 */
export type InvalidUtf8Rule = 'reference' | 'resplit';

export const INVALID_UTF8_RULES: readonly InvalidUtf8Rule[] = Object.freeze(['reference', 'resplit']);

export interface AppendByteOptions extends SplitOptions {
  /** byte values of special tokens (default: the ids of DEFAULT_SPECIAL_TOKENS) */
  specialIds?: Iterable<number>;
  /** the rule for invalid UTF-8 (default 'reference') */
  invalidUtf8?: InvalidUtf8Rule;
}

/** True when bytes hold an invalid UTF-8 sequence other than an unfinished last character. */
function hasInvalidUtf8(b: Uint8Array): boolean {
  const n = b.length;
  for (let i = 0; i < n; ) {
    const l = utf8SeqLen(b, i, n);
    if (l === 0) return true;
    if (l < 0) return false; // an unfinished character runs to the end
    i += l;
  }
  return false;
}

const DEFAULT_SPECIAL_IDS: ReadonlySet<number> = new Set(Object.values(DEFAULT_SPECIAL_TOKENS));

function concatByte(word: Uint8Array | readonly number[], byte: number): Uint8Array {
  const out = new Uint8Array(word.length + 1);
  out.set(word);
  out[word.length] = byte;
  return out;
}

function appendByteImpl(word: Uint8Array | readonly number[], byte: number, max: number, special: ReadonlySet<number>, rule: InvalidUtf8Rule = 'reference'): AppendByteResult {
  if (!Number.isInteger(byte) || byte < 0 || byte > 255) throw new RangeError(`byte must be an integer in 0..255, got ${byte}`);
  const joined = concatByte(word, byte);
  const n = word.length;
  if (n === 0) return { complete: false, words: [joined] };
  if (special.has(byte) || (n === 1 && special.has(joined[0]))) {
    return { complete: true, words: [joined.subarray(0, n), joined.subarray(n)] };
  }
  if (rule === 'reference' && hasInvalidUtf8(joined)) {
    // strict decoding fails: the byte stays in the word, up to the word-size cap
    if (joined.length <= max) return { complete: false, words: [joined] };
    return { complete: true, words: [joined.subarray(0, n), joined.subarray(n)] };
  }
  const tail = incompleteUtf8Tail(joined);
  if (tail >= 0) {
    if (joined.length <= max) return { complete: false, words: [joined] };
    // Over the limit with a character still open: cut where the chunker will, before that
    // character (or mid-character when the word is that character alone).
    if (tail > 0) return { complete: true, words: [...splitBytes(joined.subarray(0, tail), { maxWordSize: max }), joined.subarray(tail)] };
    return { complete: true, words: [joined.subarray(0, max), joined.subarray(max)] };
  }
  const words = splitBytes(joined, { maxWordSize: max });
  return { complete: words.length > 1, words };
}

/**
 * The word-end test of cached generation as the reference does it (spec §5.2, HF
 * `_append_byte`): the current word's bytes plus one newly sampled byte. An incomplete UTF-8
 * character stays in the current word (until maxWordSize is exceeded); invalid UTF-8 follows
 * `opts.invalidUtf8` (InvalidUtf8Rule: by default the byte stays, up to the cap); a special-token byte is
 * always a word of its own; otherwise the bytes are re-split and the word is complete iff the
 * splitter now yields more than one word. Seeing only the current word, it can differ from the
 * split of the whole text in rare cases (a word continuing after a maxWordSize cut, a combining
 * mark after punctuation): use WordStream to get exactly the training-time split.
 */
export function appendByte(word: Uint8Array | readonly number[], byte: number, opts: AppendByteOptions = {}): AppendByteResult {
  const special = opts.specialIds === undefined ? DEFAULT_SPECIAL_IDS : new Set(opts.specialIds);
  return appendByteImpl(word, byte, checkMax(opts.maxWordSize), special, checkRule(opts.invalidUtf8));
}

function checkRule(r: InvalidUtf8Rule | undefined): InvalidUtf8Rule {
  if (r === undefined) return 'reference';
  if (!INVALID_UTF8_RULES.includes(r)) throw new RangeError(`invalidUtf8 must be one of ${INVALID_UTF8_RULES.join(', ')}, got ${String(r)}`);
  return r;
}

/** appendByte(...).complete: does word + byte split into more than one word? */
export function isWordComplete(word: Uint8Array | readonly number[], byte: number, opts: AppendByteOptions = {}): boolean {
  return appendByte(word, byte, opts).complete;
}

export interface HatSplitterOptions {
  /** maximum bytes per word (default 100) */
  maxWordSize?: number;
  /** special token string -> byte id (default {"<|eot_id|>": 192}); replaces the default */
  specialTokens?: Record<string, number>;
  /** the word-end rule for invalid UTF-8 in generation (default 'reference'; see InvalidUtf8Rule) */
  invalidUtf8?: InvalidUtf8Rule;
}

export interface DecodeOptions {
  /** drop special-token bytes instead of writing their strings */
  skipSpecialTokens?: boolean;
}

const utf8Encoder = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF (the default would silently drop it)
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * The splitter with a model's settings: text -> words as bytes, with special-token strings
 * mapped to single byte ids (each its own one-byte word), and bytes -> text.
 */
export class HatSplitter {
  readonly maxWordSize: number;
  readonly specialTokens: Readonly<Record<string, number>>;
  /** the word-end rule for invalid UTF-8 (appendByte) */
  readonly invalidUtf8: InvalidUtf8Rule;
  private readonly specialIds: ReadonlySet<number>;
  private readonly byId: Map<number, Uint8Array>;
  private readonly patterns: { id: number; bytes: Buffer }[];

  constructor(opts: HatSplitterOptions = {}) {
    this.maxWordSize = checkMax(opts.maxWordSize);
    this.invalidUtf8 = checkRule(opts.invalidUtf8);
    const specials = opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
    this.byId = new Map();
    for (const [s, id] of Object.entries(specials)) {
      if (s === '') throw new RangeError('special token strings must not be empty');
      if (!Number.isInteger(id) || id < 0 || id > 255) throw new RangeError(`special token ${JSON.stringify(s)}: id must be a byte value 0..255, got ${id}`);
      if (this.byId.has(id)) throw new RangeError(`special token ${JSON.stringify(s)}: id ${id} is already used`);
      this.byId.set(id, utf8Encoder.encode(s));
    }
    this.specialTokens = Object.freeze({ ...specials });
    this.specialIds = new Set(this.byId.keys());
    // Longer strings first, so that when one special string starts another at the same
    // position, the longer one wins.
    this.patterns = [...this.byId.entries()]
      .map(([id, b]) => ({ id, bytes: Buffer.from(b) }))
      .sort((x, y) => y.bytes.length - x.bytes.length);
  }

  /** Words of `text` as UTF-8 bytes; each special-token string becomes the one-byte word [id]. */
  encode(text: string): Uint8Array[] {
    return this.encodeBytes(utf8Encoder.encode(text));
  }

  /**
   * encode() for raw bytes (invalid UTF-8 allowed; see splitBytes). Special-token strings and
   * also raw bytes equal to a special id (e.g. an invalid 0xC0 in the input) become one-byte
   * words, and the text on either side is split independently. Words are views into `bytes`,
   * except the special words.
   */
  encodeBytes(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const next = this.patterns.map((p) => buf.indexOf(p.bytes, 0));
    let pos = 0;
    while (true) {
      let best = -1;
      for (let k = 0; k < next.length; k++) {
        if (next[k] >= 0 && (best < 0 || next[k] < next[best])) best = k;
      }
      if (best < 0) break;
      const at = next[best];
      this.splitPlain(bytes, pos, at, out);
      out.push(Uint8Array.of(this.patterns[best].id));
      pos = at + this.patterns[best].bytes.length;
      for (let k = 0; k < next.length; k++) if (next[k] >= 0 && next[k] < pos) next[k] = buf.indexOf(this.patterns[k].bytes, pos);
    }
    this.splitPlain(bytes, pos, bytes.length, out);
    return out;
  }

  /**
   * encode() as one byte array plus word boundaries (offsets[0] = 0, ..., offsets[nWords] =
   * bytes.length: cumulative_seq_lengths_per_word), without an object per word: the fast path
   * for training data.
   */
  encodeToOffsets(text: string): { bytes: Uint8Array; offsets: Int32Array } {
    const raw = utf8Encoder.encode(text);
    let plain = true;
    const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    for (const p of this.patterns) if (buf.indexOf(p.bytes) >= 0) plain = false;
    if (plain && this.specialIds.size > 0) for (let i = 0; i < raw.length && plain; i++) plain = !this.specialIds.has(raw[i]);
    if (plain) return { bytes: raw, offsets: splitBytesOffsets(raw, { maxWordSize: this.maxWordSize }) };
    const words = this.encodeBytes(raw);
    const offsets = new Int32Array(words.length + 1);
    for (let w = 0; w < words.length; w++) offsets[w + 1] = offsets[w] + words[w].length;
    const bytes = new Uint8Array(offsets[words.length]);
    words.forEach((w, k) => bytes.set(w, offsets[k]));
    return { bytes, offsets };
  }

  /** splitBytes on bytes[start, end), with bytes equal to a special id as one-byte words. */
  private splitPlain(bytes: Uint8Array, start: number, end: number, out: Uint8Array[]): void {
    const opts = { maxWordSize: this.maxWordSize };
    let from = start;
    if (this.specialIds.size > 0) {
      for (let i = start; i < end; i++) {
        if (!this.specialIds.has(bytes[i])) continue;
        if (i > from) for (const w of splitBytes(bytes.subarray(from, i), opts)) out.push(w);
        out.push(Uint8Array.of(bytes[i]));
        from = i + 1;
      }
    }
    if (end > from) for (const w of splitBytes(bytes.subarray(from, end), opts)) out.push(w);
  }

  /**
   * Bytes -> text: special ids are expanded to their strings (or dropped with
   * skipSpecialTokens), then the bytes are decoded as UTF-8 with U+FFFD for invalid sequences.
   */
  decode(bytes: Uint8Array | readonly number[], opts: DecodeOptions = {}): string {
    const src = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    const skip = opts.skipSpecialTokens === true;
    let total = 0;
    let found = 0;
    for (let i = 0; i < src.length; i++) {
      const special = this.byId.get(src[i]);
      if (special === undefined) total += 1;
      else {
        found++;
        total += skip ? 0 : special.length;
      }
    }
    if (found === 0) return utf8Decoder.decode(src);
    const out = new Uint8Array(total);
    let o = 0;
    for (let i = 0; i < src.length; i++) {
      const special = this.byId.get(src[i]);
      if (special === undefined) out[o++] = src[i];
      else if (!skip) {
        out.set(special, o);
        o += special.length;
      }
    }
    return utf8Decoder.decode(out);
  }

  /** True when byte b is a special-token id. */
  isSpecial(b: number): boolean {
    return this.specialIds.has(b);
  }

  /** appendByte with this splitter's maxWordSize and special ids. */
  appendByte(word: Uint8Array | readonly number[], byte: number): AppendByteResult {
    return appendByteImpl(word, byte, this.maxWordSize, this.specialIds, this.invalidUtf8);
  }

  /** Does word + byte split into more than one word (the current word is finished)? */
  isWordComplete(word: Uint8Array | readonly number[], byte: number): boolean {
    return this.appendByte(word, byte).complete;
  }
}
