/**
 * The token-level Llama on byte-packed text, with every figure per BYTE, so that its numbers
 * compare with a byte-level model's (HAT) on the same text.
 *
 * Training: the `BytePacker` of src/io packs "words" into rows of bytes; here the words are the
 * tokenizer's tokens (`TokenPieces.split`: a document's token byte lengths), so the token model is
 * trained on exactly the packing rules of HAT (segments per document, a token never straddles a
 * row, one end-of-document unit per document: the packer's byte 192 becomes the tokenizer's
 * end-of-text id). `tokenBatchFromPacked` turns a packed batch back into token rows;
 * `llamaTrainable` is the `TrainableModel` of src/train: its loss is the mean cross-entropy per
 * predicted BYTE = (sum over predicted tokens of -ln p(token)) / (bytes of those tokens), and its
 * byte count is the bytes of the predicted tokens, so the trainer's `bpb` is bits per byte.
 *
 * Scoring: `evaluateTokenText` mirrors the HAT `evaluateText` (src/models/hat/score.ts): the same
 * chunks (whole words of a word splitter, at most `contextBytes` bytes, no context across
 * chunks), each tokenized on its own.
 * - bits per byte = sum over tokens 1.. of a chunk of -log2 p(token | tokens before it), divided by
 *   the bytes of those tokens (token 0 has no context and is not predicted, as byte 0 for HAT);
 * - word accuracy: a word of the splitter (all words but the first of a chunk, as for HAT) counts
 *   as correct iff every token that covers any of its bytes is predicted (index >= 1) and is the
 *   argmax of the logits before it (greedy, teacher-forced).
 * `scoreTokenContinuations` is the token analogue of HAT's `scoreContinuations`: prompt and
 * continuation are tokenized separately and concatenated; the score is the sum of the
 * continuation tokens' log-probabilities.
 */
import { crossEntropy, noGrad, scale, type Tensor } from '../../tensor/index.js';
import { chunkWords, type PackedBatch } from '../../io/index.js';
import { logSoftmaxAt as logProb } from '../../nn/logprob.js';
import type { LlamaLM, TokenBatch } from './model.js';
import { hfConfigFromLM } from './config.js';
import { saveLlama } from './checkpoint.js';
import { argmax } from './generate.js';
import type { TextTokenizer } from './tokenizer/index.js';

const IGNORE = -100;

function keyOf(bytes: ArrayLike<number>, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(bytes[off + i]);
  return s;
}

/** A byte-level tokenizer seen as a word splitter for the packer, and the way back from bytes to ids. */
export class TokenPieces {
  readonly tok: TextTokenizer;
  /** id of the end-of-document unit (the packer's `eosByte` word) */
  readonly eosId: number;
  readonly eosByte: number;
  private readonly ids = new Map<string, number>();

  constructor(tok: TextTokenizer, opts: { eosId: number; eosByte?: number }) {
    if (!tok.byteLevel) throw new Error('TokenPieces: the tokenizer must be byte-level');
    this.tok = tok;
    this.eosId = opts.eosId;
    this.eosByte = opts.eosByte ?? 192;
    const special = new Set(tok.specialTokens.values());
    for (let id = 0; id < tok.vocabSize; id++) {
      if (special.has(id) || tok.idToToken(id) === undefined) continue;
      const b = tok.tokenBytes(id);
      const k = keyOf(b, 0, b.length);
      const prev = this.ids.get(k);
      if (prev !== undefined) throw new Error(`TokenPieces: ids ${prev} and ${id} stand for the same bytes`);
      this.ids.set(k, id);
    }
  }

  /** Token byte lengths of a document (the packer's `split`). */
  readonly split = (bytes: Uint8Array): Int32Array => {
    const ids = this.tok.encodeBytes(bytes);
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = this.tok.tokenBytes(ids[i]).length;
    return out;
  };

  /** The id of the token whose bytes are bytes[off, off + len) (the end-of-document byte alone: eosId). */
  idOf(bytes: ArrayLike<number>, off: number, len: number): number {
    if (len === 1 && bytes[off] === this.eosByte) return this.eosId;
    const k = keyOf(bytes, off, len);
    const id = this.ids.get(k);
    if (id === undefined) throw new Error(`TokenPieces: no token for the bytes ${JSON.stringify(k)}`);
    return id;
  }

  /** Bytes a token stands for (the end-of-document id: 1). */
  length(id: number): number {
    return id === this.eosId ? 1 : this.tok.tokenBytes(id).length;
  }
}

/** Token rows of a packed batch, and the bytes of the predicted tokens. */
export interface PackedTokens {
  batch: TokenBatch;
  /** number of predicted tokens */
  tokens: number;
  /** bytes of the predicted tokens (the per-byte denominator) */
  bytes: number;
}

/**
 * A packed batch whose words are tokens -> token rows: row r holds the tokens of packed row r,
 * padded to the longest row; a token predicts the next token of its segment; positions restart per
 * segment; padding has segment -1 - r and no targets.
 */
export function tokenBatchFromPacked(b: PackedBatch, pieces: TokenPieces): PackedTokens {
  const rowsIds: number[][] = [];
  const rowsSeg: number[][] = [];
  for (let r = 0; r < b.rows; r++) {
    const ids: number[] = [];
    const seg: number[] = [];
    let off = r * b.seqBytes;
    for (let w = b.rowWords[r]; w < b.rowWords[r + 1]; w++) {
      const len = b.wordLens[w];
      const s = b.segments[off];
      if (s >= 0) {
        ids.push(pieces.idOf(b.bytes, off, len));
        seg.push(s);
      }
      off += len;
    }
    rowsIds.push(ids);
    rowsSeg.push(seg);
  }
  const T = Math.max(1, ...rowsIds.map((x) => x.length));
  const n = b.rows * T;
  const ids = new Int32Array(n);
  const targets = new Int32Array(n).fill(IGNORE);
  const segments = new Int32Array(n);
  const positions = new Int32Array(n);
  let tokens = 0;
  let bytes = 0;
  for (let r = 0; r < b.rows; r++) {
    const ri = rowsIds[r];
    const rs = rowsSeg[r];
    let pos = 0;
    for (let t = 0; t < T; t++) {
      const i = r * T + t;
      if (t >= ri.length) {
        segments[i] = -1 - r;
        positions[i] = t;
        continue;
      }
      pos = t > 0 && rs[t - 1] === rs[t] ? pos + 1 : 0;
      ids[i] = ri[t];
      segments[i] = rs[t];
      positions[i] = pos;
      if (t + 1 < ri.length && rs[t + 1] === rs[t]) {
        targets[i] = ri[t + 1];
        tokens++;
        bytes += pieces.length(ri[t + 1]);
      }
    }
  }
  return { batch: { rows: b.rows, seqLen: T, ids, targets, segments, positions }, tokens, bytes };
}

/** Mean cross-entropy per predicted byte (nats) of a token batch, with its byte count. */
export function perByteLoss(model: LlamaLM, p: PackedTokens): { loss: Tensor; bytes: number } {
  if (p.tokens === 0) throw new Error('perByteLoss: the batch predicts no tokens');
  const logits = model.forward(p.batch.ids, p.batch.rows, p.batch.seqLen, { segments: p.batch.segments, positions: p.batch.positions });
  const perToken = crossEntropy(logits, p.batch.targets, { ignoreIndex: IGNORE });
  return { loss: scale(perToken, p.tokens / p.bytes), bytes: p.bytes };
}

/** The token model as the trainer (src/train) sees it: loss per byte over BytePacker batches of tokens. */
export function llamaTrainable(model: LlamaLM, pieces: TokenPieces): {
  store: LlamaLM['store'];
  config: unknown;
  loss(b: PackedBatch): { loss: Tensor; bytes: number };
  save(dir: string): void;
} {
  return {
    store: model.store,
    config: hfConfigFromLM(model.cfg),
    loss: (b) => perByteLoss(model, tokenBatchFromPacked(b, pieces)),
    save: (dir) => void saveLlama(model, dir),
  };
}

// ---- scoring ---------------------------------------------------------------------------------

/** What the scorers need from a word splitter (HAT's `HatSplitter`). */
export interface WordEncoder {
  encode(text: string): Uint8Array[];
}

export interface TokenTextEvalResult {
  bitsPerByte: number;
  nats: number;
  /** bytes of the predicted tokens */
  predictedBytes: number;
  totalBytes: number;
  chunks: number;
  tokens: number;
  /** share of predicted tokens that are the argmax of their logits */
  tokenAccuracy: number;
  words: number;
  correctWords: number;
  wordAccuracy: number;
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Bits per byte and word accuracy of documents under a token model (see the file comment). */
export function evaluateTokenText(
  model: LlamaLM,
  tok: TextTokenizer,
  splitter: WordEncoder,
  docs: readonly string[],
  opts: { contextBytes?: number; batchSize?: number } = {},
): TokenTextEvalResult {
  const ctx = opts.contextBytes ?? 1024;
  const bs = opts.batchSize ?? 8;
  const chunks: Uint8Array[][] = [];
  for (const d of docs) chunks.push(...chunkWords(splitter.encode(d), ctx));
  const V = model.cfg.vocabSize;
  let nats = 0;
  let predicted = 0;
  let total = 0;
  let tokens = 0;
  let rightTokens = 0;
  let words = 0;
  let correctWords = 0;
  for (let i = 0; i < chunks.length; i += bs) {
    const group = chunks.slice(i, i + bs).map((ws) => {
      const bytes = concatBytes(ws);
      return { ws, bytes, ids: tok.encodeBytes(bytes) };
    });
    const T = Math.max(1, ...group.map((g) => g.ids.length));
    const ids = new Int32Array(group.length * T);
    group.forEach((g, b) => ids.set(g.ids, b * T));
    const lg = noGrad(() => model.forward(ids, group.length, T)).f32();
    group.forEach((g, b) => {
      total += g.bytes.length;
      const n = g.ids.length;
      // token t covers bytes [start[t], start[t + 1])
      const start = new Int32Array(n + 1);
      for (let t = 0; t < n; t++) start[t + 1] = start[t] + tok.tokenBytes(g.ids[t]).length;
      const hit = new Uint8Array(n);
      for (let t = 1; t < n; t++) {
        const row = lg.subarray((b * T + t - 1) * V, (b * T + t) * V);
        nats -= logProb(row, g.ids[t]);
        predicted += start[t + 1] - start[t];
        hit[t] = argmax(row) === g.ids[t] ? 1 : 0;
        rightTokens += hit[t];
        tokens++;
      }
      let s = 0;
      let t = 0;
      g.ws.forEach((w, k) => {
        const e = s + w.length;
        if (k > 0) {
          while (start[t + 1] <= s) t++;
          let ok = true;
          for (let u = t; u < n && start[u] < e; u++) if (u === 0 || hit[u] === 0) ok = false;
          words++;
          if (ok) correctWords++;
        }
        s = e;
      });
    });
  }
  return {
    bitsPerByte: predicted > 0 ? nats / predicted / Math.LN2 : 0,
    nats,
    predictedBytes: predicted,
    totalBytes: total,
    chunks: chunks.length,
    tokens,
    tokenAccuracy: tokens > 0 ? rightTokens / tokens : 0,
    words,
    correctWords,
    wordAccuracy: words > 0 ? correctWords / words : 0,
  };
}

/** Log-likelihood (nats) of each continuation after `prompt` (tokenized separately), and its bytes. */
export function scoreTokenContinuations(model: LlamaLM, tok: TextTokenizer, prompt: string, continuations: readonly string[]): { logprob: number; bytes: number }[] {
  if (continuations.length === 0) return [];
  const p = tok.encode(prompt);
  const rows = continuations.map((c) => Int32Array.from([...p, ...tok.encode(c)]));
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * T);
  rows.forEach((r, b) => ids.set(r, b * T));
  const lg = noGrad(() => model.forward(ids, rows.length, T)).f32();
  const V = model.cfg.vocabSize;
  const enc = new TextEncoder();
  return rows.map((r, b) => {
    let lp = 0;
    for (let t = Math.max(p.length, 1); t < r.length; t++) lp += logProb(lg.subarray((b * T + t - 1) * V, (b * T + t) * V), r[t]);
    return { logprob: lp, bytes: enc.encode(continuations[b]).length };
  });
}
