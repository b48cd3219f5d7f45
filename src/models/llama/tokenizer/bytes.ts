/**
 * The byte-level BPE alphabet (GPT-2 `bytes_to_unicode`): every byte value gets one printable
 * Unicode character, so byte strings can be stored as JSON vocabulary strings. Printable
 * Latin-1 bytes (33-126, 161-172, 174-255) map to themselves; the other 68 bytes, in increasing
 * order, to U+0100, U+0101, ... (space 0x20 -> "Ġ" U+0120, newline 0x0A -> "Ċ" U+010A).
 */

function buildTable(): string[] {
  const table = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCharCode(printable ? b : next++);
  }
  return table;
}

/** byte value -> its character */
export const BYTE_TO_CHAR: readonly string[] = Object.freeze(buildTable());

/** character code -> byte value (-1 for characters outside the alphabet; codes < 324) */
const CHAR_TO_BYTE: Int16Array = (() => {
  const m = new Int16Array(324).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => (m[c.charCodeAt(0)] = b));
  return m;
})();

/** The byte a character stands for, or -1. */
export function charToByte(ch: number): number {
  return ch < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[ch] : -1;
}

/** Bytes -> their alphabet string. */
export function bytesToSymbols(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/** An alphabet string -> its bytes; null when a character is not in the alphabet. */
export function symbolsToBytes(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const b = charToByte(s.charCodeAt(i));
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

/**
 * Splits bytes into maximal runs of valid UTF-8 (as strings) and single invalid bytes (as
 * numbers), in order.
 */
export function splitUtf8(bytes: Uint8Array): (string | number)[] {
  const out: (string | number)[] = [];
  const dec = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  let i = 0;
  const flush = (end: number): void => {
    if (end > start) out.push(dec.decode(bytes.subarray(start, end)));
  };
  while (i < bytes.length) {
    const n = utf8SeqLen(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    flush(i);
    out.push(bytes[i]);
    i++;
    start = i;
  }
  flush(i);
  return out;
}

/** Length of the valid UTF-8 sequence starting at i (1-4), or 0 when it is not valid there. */
function utf8SeqLen(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (j: number): boolean => j < b.length && (b[j] & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(i + 1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const c1 = b[i + 1];
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const c1 = b[i + 1];
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c === 0xf0 && c1 < 0x90) return 0; // overlong
    if (c === 0xf4 && c1 >= 0x90) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}
