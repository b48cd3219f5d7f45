/**
 * tiktoken files as tokenizer.json (src/models/llama/tokenizer/tiktoken.ts): on a small rank table
 * the converted tokenizer encodes as tiktoken's rule does (merge the adjacent pair whose joined
 * bytes have the lowest rank, until none is a token; a pre-token that is a token stays whole),
 * implemented here independently; decoding gives the bytes back. With Llama 3's real file
 * (TFREE_LLAMA3_TIKTOKEN=path, not in the repository) the known ids of "Hello world" are checked.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import test from 'node:test';
import { Rng } from '../../src/nn/index.js';
import { HFTokenizer, TokenizerError, loadTiktoken, parseTiktoken, tiktokenToTokenizerJson } from '../../src/models/llama/tokenizer/index.js';

const PATTERN = " ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const PIECE = /( ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)/gu;

function key(b: Uint8Array): string {
  return Buffer.from(b).toString('latin1');
}

/** tiktoken's byte-pair merge on one pre-token. */
function bpeRanks(piece: Uint8Array, ranks: Map<string, number>): number[] {
  const whole = ranks.get(key(piece));
  if (whole !== undefined) return [whole];
  let parts: Uint8Array[] = Array.from(piece, (b) => Uint8Array.of(b));
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(key(Buffer.concat([parts[i], parts[i + 1]])));
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    parts = [...parts.slice(0, best), Buffer.concat([parts[best], parts[best + 1]]), ...parts.slice(best + 2)];
  }
  return parts.map((p) => ranks.get(key(p)) as number);
}

/** A rank table: the 256 bytes shuffled, then merges learned greedily from a small corpus. */
function makeTable(corpus: string, extra: number, rng: Rng): Uint8Array[] {
  const bytes = Array.from({ length: 256 }, (_, i) => i);
  for (let i = 255; i > 0; i--) {
    const j = rng.int(i + 1);
    [bytes[i], bytes[j]] = [bytes[j], bytes[i]];
  }
  const toks: Uint8Array[] = bytes.map((b) => Uint8Array.of(b));
  const ranks = new Map<string, number>(toks.map((t, i) => [key(t), i]));
  const pieces = [...corpus.matchAll(PIECE)].map((m) => new Uint8Array(Buffer.from(m[0], 'utf8')));
  for (let m = 0; m < extra; m++) {
    const counts = new Map<string, number>();
    for (const p of pieces) {
      const ids = bpeRanks(p, ranks).map((r) => toks[r]);
      for (let i = 0; i + 1 < ids.length; i++) {
        const k = key(Buffer.concat([ids[i], ids[i + 1]]));
        if (!ranks.has(k)) counts.set(k, (counts.get(k) ?? 0) + 1);
      }
    }
    let bestK = '';
    let bestC = 0;
    for (const [k, c] of counts) if (c > bestC || (c === bestC && k < bestK)) [bestK, bestC] = [k, c];
    if (bestC === 0) break;
    const t = new Uint8Array(Buffer.from(bestK, 'latin1'));
    ranks.set(bestK, toks.length);
    toks.push(t);
  }
  return toks;
}

test('tiktoken -> tokenizer.json: encodes as tiktoken merges ranks, and decodes back', () => {
  const rng = new Rng(4);
  const corpus = 'the theory of the thing, then there was the other one; 123 4567 théâtre naïve cafés. The THEM they these those\n\n  indent';
  const toks = makeTable(corpus, 60, rng);
  const ranks = new Map<string, number>(toks.map((t, i) => [key(t), i]));
  assert.ok(toks.length > 300, `${toks.length} tokens`);
  const tok = new HFTokenizer(tiktokenToTokenizerJson(toks, { pattern: PATTERN, specialTokens: ['<|s|>'] }), {}, 'test');
  assert.equal(tok.vocabSize, toks.length + 1);
  const texts = [corpus, 'then the other theory', 'théâtre 99999 x', ' leading and  double  spaces ', 'unseen zebra quilt'];
  for (const t of texts) {
    const want: number[] = [];
    for (const m of t.matchAll(PIECE)) want.push(...bpeRanks(new Uint8Array(Buffer.from(m[0], 'utf8')), ranks));
    const got = Array.from(tok.encode(t));
    assert.deepEqual(got, want, JSON.stringify(t));
    assert.equal(tok.decode(got), t);
    assert.ok(got.length < Buffer.byteLength(t), `${JSON.stringify(t)}: no merges applied`);
  }
  assert.deepEqual(Array.from(tok.encode('<|s|>the')), [toks.length, ...bpeRanks(new Uint8Array(Buffer.from('the')), ranks)]);
});

test('tiktoken files: bad lines and ranks are one-line errors naming the file', () => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'tfree-tiktoken-'));
  try {
    assert.throws(() => parseTiktoken('IQ== 0\nIg== 2\n', 'f.model'), (e: Error) => e instanceof TokenizerError && /f\.model: line 2 has rank 2, expected 1/.test(e.message));
    assert.throws(() => parseTiktoken('IQ== 0\nnot a line\n', 'f.model'), /line 2 is not/);
    assert.throws(() => parseTiktoken('IQ== 0\n', 'f.model'), /at least the 256 bytes/);
    assert.throws(() => loadTiktoken(nodePath.join(dir, 'missing.model')), /missing\.model: cannot read/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const real = process.env.TFREE_LLAMA3_TIKTOKEN;
test('Llama 3 tokenizer.model (TFREE_LLAMA3_TIKTOKEN): known ids', { skip: real ? false : 'TFREE_LLAMA3_TIKTOKEN not set (Llama 3 tokenizer.model is not in the repository)' }, () => {
  const tok = loadTiktoken(real as string);
  assert.equal(tok.vocabSize, 128256);
  assert.deepEqual(Array.from(tok.encode('Hello world')), [9906, 1917]);
  assert.deepEqual(Array.from(tok.encode('<|begin_of_text|>')), [128000]);
});
