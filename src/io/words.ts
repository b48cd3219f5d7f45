/** Word-level helpers shared by the byte (HAT) and token (Llama) text evaluations. */

/**
 * Cuts a document's words into chunks of whole words of at most `max` bytes each (a word longer
 * than `max` is an error: a chunk never splits a word).
 */
export function chunkWords(words: readonly Uint8Array[], max: number): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  let cur: Uint8Array[] = [];
  let size = 0;
  for (const w of words) {
    if (w.length > max) throw new Error(`chunkWords: a word of ${w.length} bytes does not fit a chunk of ${max} bytes`);
    if (size + w.length > max && cur.length > 0) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(w);
    size += w.length;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
