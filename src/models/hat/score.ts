/**
 * Scoring text with a HAT model.
 *
 * - `scoreContinuation`: log-likelihood of a continuation given a prompt, as the reference
 *   evaluator does it (spec §5.8): prompt and continuation are split into words separately and
 *   concatenated (so a word boundary always falls at the join), one forward, and the score is
 *   the sum of the log-probabilities of the continuation's bytes (logits at position t predict
 *   byte t + 1).
 * - `evaluateText`: bits per byte and word accuracy of documents, cut into chunks of whole
 *   words of at most `contextBytes` bytes, each chunk scored on its own (no context carried
 *   across chunks).
 *
 * Definitions (over all chunks):
 * - bits per byte = sum over predicted bytes of -log2 p(byte | bytes before it in its chunk),
 *   divided by the number of predicted bytes. Every byte of a chunk except its first is
 *   predicted.
 * - byte accuracy = share of predicted bytes that are the argmax of their logits.
 * - word accuracy = share of scored words predicted whole: a word (as the splitter cuts the text,
 *   whitespace words included) counts as correct iff every one of its bytes is the argmax of the
 *   logits at the position before it, given the true text before it (teacher forcing; the first
 *   byte is predicted from the last byte of the previous word, as HAT does). The first word of
 *   each chunk is not scored (its first byte has no context).
 */
import { crossEntropy, noGrad } from '../../tensor/index.js';
import { chunkWords } from '../../io/words.js';
import { logSoftmaxAt as logProb } from '../../nn/logprob.js';
import { IGNORE_INDEX, batchFromWords, type HATModel } from './model.js';
import { argmax } from './sampling.js';
import type { WordSplitter } from './generate.js';

export { chunkWords };

export interface ContinuationScore {
  /** sum of natural-log probabilities of the scored continuation bytes */
  logprob: number;
  /** log-probability of each scored byte */
  byteLogprobs: Float64Array;
  /** number of scored bytes (the continuation's length; one less when the prompt is empty) */
  bytes: number;
  /** every scored byte is the argmax of its logits */
  greedy: boolean;
}

/** Scores several continuations of one prompt (one batch row each). */
export function scoreContinuations(model: HATModel, splitter: WordSplitter, prompt: string, continuations: readonly string[]): ContinuationScore[] {
  if (continuations.length === 0) return [];
  const pw = splitter.encode(prompt);
  const P = pw.reduce((s, w) => s + w.length, 0);
  const rows = continuations.map((c) => ({ words: [...pw, ...splitter.encode(c)] }));
  const batch = batchFromWords(rows);
  const logits = noGrad(() => model.forward(batch)).f32();
  return rows.map((r, b) => {
    const n = r.words.reduce((s, w) => s + w.length, 0);
    const bytes = batch.bytes;
    const from = Math.max(P, 1);
    const lp = new Float64Array(Math.max(0, n - from));
    let greedy = true;
    for (let t = from; t < n; t++) {
      const row = logits.subarray((b * batch.T + t - 1) * 256, (b * batch.T + t) * 256);
      const target = bytes[b * batch.T + t];
      lp[t - from] = logProb(row, target);
      if (argmax(row) !== target) greedy = false;
    }
    return { logprob: lp.reduce((s, x) => s + x, 0), byteLogprobs: lp, bytes: lp.length, greedy };
  });
}

/** Log-likelihood of `continuation` after `prompt` (both split on their own). */
export function scoreContinuation(model: HATModel, splitter: WordSplitter, prompt: string, continuation: string): ContinuationScore {
  return scoreContinuations(model, splitter, prompt, [continuation])[0];
}

export interface TextEvalOptions {
  /** bytes per chunk (default 1024) */
  contextBytes?: number;
  /** chunks per forward pass (default 8) */
  batchSize?: number;
  /** progress: bytes of input done so far, of the total */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface TextEvalResult {
  bitsPerByte: number;
  /** total negative log-likelihood in nats */
  nats: number;
  /** bytes predicted (all bytes but the first of each chunk) */
  predictedBytes: number;
  /** bytes of input */
  totalBytes: number;
  chunks: number;
  byteAccuracy: number;
  /** words scored (all but the first of each chunk) and those predicted whole */
  words: number;
  correctWords: number;
  wordAccuracy: number;
}

/** Bits per byte, byte accuracy and word accuracy of documents (see the file comment for definitions). */
export function evaluateText(model: HATModel, splitter: WordSplitter, docs: readonly string[], opts: TextEvalOptions = {}): TextEvalResult {
  const ctx = opts.contextBytes ?? 1024;
  const bs = opts.batchSize ?? 8;
  if (!Number.isInteger(ctx) || ctx < 2) throw new RangeError(`contextBytes must be an integer >= 2, got ${ctx}`);
  if (!Number.isInteger(bs) || bs < 1) throw new RangeError(`batchSize must be a positive integer, got ${bs}`);
  const chunks: Uint8Array[][] = [];
  for (const d of docs) chunks.push(...chunkWords(splitter.encode(d), ctx));
  const total = chunks.reduce((s, c) => s + c.reduce((a, w) => a + w.length, 0), 0);
  let nats = 0;
  let predicted = 0;
  let rightBytes = 0;
  let words = 0;
  let correctWords = 0;
  let done = 0;
  for (let i = 0; i < chunks.length; i += bs) {
    const group = chunks.slice(i, i + bs);
    const batch = batchFromWords(group.map((words) => ({ words })));
    const T = batch.T;
    const { losses, logits } = noGrad(() => {
      const lg = model.forward(batch);
      const targets = new Int32Array(batch.B * T).fill(IGNORE_INDEX);
      group.forEach((_, b) => {
        const n = batch.cuSeqlens[b][batch.cuSeqlens[b].length - 1];
        for (let t = 0; t + 1 < n; t++) targets[b * T + t] = batch.bytes[b * T + t + 1];
      });
      return { losses: crossEntropy(lg, targets, { reduction: 'none' }).f32(), logits: lg };
    });
    const lg = logits.f32();
    group.forEach((ws, b) => {
      // byte hits: hit[t] for t >= 1 (byte t predicted from position t - 1)
      const n = batch.cuSeqlens[b][batch.cuSeqlens[b].length - 1];
      const hit = new Uint8Array(n);
      for (let t = 1; t < n; t++) {
        nats += losses[b * T + t - 1];
        const row = lg.subarray((b * T + t - 1) * 256, (b * T + t) * 256);
        hit[t] = argmax(row) === batch.bytes[b * T + t] ? 1 : 0;
        rightBytes += hit[t];
      }
      predicted += Math.max(0, n - 1);
      let s = 0;
      ws.forEach((w, k) => {
        if (k > 0) {
          words++;
          let ok = true;
          for (let t = s; t < s + w.length; t++) if (hit[t] === 0) ok = false;
          if (ok) correctWords++;
        }
        s += w.length;
      });
      done += n;
    });
    opts.onProgress?.(done, total);
  }
  return {
    bitsPerByte: predicted > 0 ? nats / predicted / Math.LN2 : 0,
    nats,
    predictedBytes: predicted,
    totalBytes: total,
    chunks: chunks.length,
    byteAccuracy: predicted > 0 ? rightBytes / predicted : 0,
    words,
    correctWords,
    wordAccuracy: words > 0 ? correctWords / words : 0,
  };
}
