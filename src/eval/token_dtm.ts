/**
 * Divergent token metrics for a token-level Llama, as in the original paper (greedy, teacher
 * forced, token units), beside the HAT version of ./hat_dtm.ts. The arithmetic is ./dtm.ts.
 *
 * For one prompt: the base model F continues the prompt's tokens greedily for exactly N tokens
 * (KV cache, no stop token); any model M is then run teacher-forced over prompt + continuation
 * (a batch of prompts per forward, rows right-padded); the logits at position P + i - 1 predict
 * continuation token i. The reference units are F's teacher-forced argmax at those positions
 * (computed like M's, so M = F gives FDT = N exactly; `baseConsistency` reports how often they
 * equal the generated tokens). Word level: the continuation's bytes are split into words by a
 * word splitter (HAT's, run on the continuation alone); each token belongs to the word holding its
 * first byte (a word in which no token starts is merged into the previous one); a word diverges
 * when any of its tokens does.
 */
import { activationPrecision } from '../compress/packed_linear.js';
import { noGrad } from '../tensor/index.js';
import { generate, type LlamaLM, type TextTokenizer } from '../models/llama/index.js';
import { argmaxRows, divergence, logSoftmaxAt, meanKl, summarize, wordDivergence, type Divergence, type DtmSummary } from './dtm.js';
import type { TeacherForced } from './hat_dtm.js';

export interface TokenReference {
  prompt: Int32Array;
  continuation: Int32Array;
  /** tokens per continuation word (sum N) */
  wordTokens: number[];
}

/** Tokens per word of the continuation (see the file comment). */
export function tokensPerWord(tok: TextTokenizer, ids: ArrayLike<number>, wordLengths: readonly number[]): number[] {
  const wordOf: number[] = [];
  wordLengths.forEach((len, w) => {
    for (let i = 0; i < len; i++) wordOf.push(w);
  });
  const counts = new Map<number, number>();
  let b = 0;
  let prev = -1;
  for (let t = 0; t < ids.length; t++) {
    const w = Math.max(prev, wordOf[Math.min(b, wordOf.length - 1)] ?? 0);
    counts.set(w, (counts.get(w) ?? 0) + 1);
    prev = w;
    b += tok.tokenBytes(ids[t]).length;
  }
  return [...counts.keys()].sort((x, y) => x - y).map((w) => counts.get(w) as number);
}

export function buildTokenReferences(
  base: LlamaLM,
  tok: TextTokenizer,
  prompts: readonly string[],
  length: number,
  splitWords: (bytes: Uint8Array) => number[],
): TokenReference[] {
  return prompts.map((p) => {
    const prompt = tok.encode(p);
    const continuation = generate(base, prompt, { maxNewTokens: length, stopTokens: [] }).tokens;
    return { prompt, continuation, wordTokens: tokensPerWord(tok, continuation, splitWords(tok.decodeBytes(continuation))) };
  });
}

export function tokenTeacherForced(model: LlamaLM, refs: readonly TokenReference[], batchSize = 8): TeacherForced[] {
  const V = model.cfg.vocabSize;
  const out: TeacherForced[] = [];
  for (let i = 0; i < refs.length; i += batchSize) {
    const group = refs.slice(i, i + batchSize);
    const rows = group.map((r) => Int32Array.from([...r.prompt, ...r.continuation]));
    const T = Math.max(...rows.map((r) => r.length));
    const ids = new Int32Array(group.length * T);
    rows.forEach((r, b) => ids.set(r, b * T));
    const lg = noGrad(() => model.forward(ids, group.length, T)).f32();
    group.forEach((r, b) => {
      const N = r.continuation.length;
      const from = (b * T + r.prompt.length - 1) * V;
      const logits = lg.slice(from, from + N * V);
      const logprobs = new Float64Array(N);
      for (let t = 0; t < N; t++) logprobs[t] = logSoftmaxAt(logits.subarray(t * V, (t + 1) * V), r.continuation[t]);
      out.push({ argmax: argmaxRows(logits, N, V), logits, logprobs });
    });
  }
  return out;
}

export interface TokenDtmReport {
  /** activation precision the evaluated model ran with (activationPrecision: int8 / int16 packed, or f32) */
  activations: string;
  tokens: DtmSummary;
  words: DtmSummary;
  fdt_tokens: number[];
  /** bits per continuation token under the model */
  bits_per_token: number;
  /** mean KL(base || model) per continuation position, bits */
  kl_bits: number;
  base_consistency: number;
}

/** Token-level DTM of models against a base token model (base continuations computed once). */
export class TokenDtmEvaluator {
  readonly refs: TokenReference[];
  private readonly baseTF: TeacherForced[];
  constructor(
    readonly base: LlamaLM,
    tok: TextTokenizer,
    prompts: readonly string[],
    length: number,
    splitWords: (bytes: Uint8Array) => number[],
  ) {
    this.refs = buildTokenReferences(base, tok, prompts, length, splitWords);
    this.baseTF = tokenTeacherForced(base, this.refs);
  }

  evaluate(model: LlamaLM): TokenDtmReport {
    const tf = tokenTeacherForced(model, this.refs);
    const V = model.cfg.vocabSize;
    const dt: Divergence[] = [];
    const dw: Divergence[] = [];
    let n = 0;
    let nats = 0;
    let kl = 0;
    let consistent = 0;
    this.refs.forEach((r, i) => {
      dt.push(divergence(this.baseTF[i].argmax, tf[i].argmax));
      dw.push(wordDivergence(this.baseTF[i].argmax, tf[i].argmax, r.wordTokens));
      const N = r.continuation.length;
      n += N;
      for (let t = 0; t < N; t++) {
        nats -= tf[i].logprobs[t];
        if (this.baseTF[i].argmax[t] === r.continuation[t]) consistent++;
      }
      kl += meanKl(this.baseTF[i].logits, tf[i].logits, N, V) * N;
    });
    return {
      activations: activationPrecision(model),
      tokens: summarize(dt),
      words: summarize(dw),
      fdt_tokens: dt.map((d) => d.fdt),
      bits_per_token: nats / n / Math.LN2,
      kl_bits: kl / n / Math.LN2,
      base_consistency: consistent / n,
    };
  }
}
