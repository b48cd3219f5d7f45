/**
 * Divergent token metrics for HAT models (byte level and word level), with bits per byte, word
 * accuracy and KL divergence beside them. The model-agnostic arithmetic is in ./dtm.ts.
 *
 * Procedure for one prompt:
 *  1. the base model F greedily continues the prompt for exactly N bytes (no stop at the
 *     end-of-text byte, ties to the lowest byte); the words are the splitter's, as generation
 *     cut them (`appendByte` replayed over the continuation: exactly the segmentation the
 *     uncached generation feeds the model);
 *  2. any model M (F itself, or a compressed F') is run teacher-forced over prompt +
 *     continuation in one forward pass (a batch of prompts per pass). The logits at byte
 *     position t predict byte t + 1, so continuation byte i (absolute position P + i, P = prompt
 *     bytes >= 1) is predicted by the logits at position P + i - 1;
 *  3. the reference units are F's teacher-forced argmax at those positions, computed in the
 *     same batches as M's (so M = F gives FDT = N exactly, whatever the float rounding of the
 *     cached generation path); they equal the continuation bytes wherever F's two paths agree,
 *     which `baseConsistency` reports (1 in practice).
 * FDT/SDT at byte level compare M's argmax with the reference per byte; at word level a
 * continuation word (the continuation's bytes grouped by the word they belong to; the first may
 * continue the prompt's last word) diverges when any of its bytes does. Up to the first
 * divergence, M sees exactly the prefixes (and word splits) its own greedy generation would, so
 * the teacher-forced FDT equals the first index at which M's free-running greedy text departs
 * from F's (the splitter is causal: a prefix of a text splits into a prefix of its words; its two
 * documented look-ahead exceptions are the only way this can fail). The free-running text-level
 * variant (both continuations compared with difflib's matching blocks, ./dtm.ts) is offered too.
 */
import { noGrad } from '../tensor/index.js';
import { activationPrecision } from '../compress/packed_linear.js';
import { batchFromWords, generate, evaluateText, type HATModel, type WordSplitter } from '../models/hat/index.js';
import { argmaxRows, divergence, logSoftmaxAt, meanKl, summarize, textLevelDivergence, wordDivergence, type Divergence, type DtmSummary } from './dtm.js';

/**
 * Prompts of a text file: when the text contains a blank line (only white space), prompts are
 * the blocks between blank lines (line breaks inside a block are kept); otherwise every
 * non-empty line is a prompt. Leading/trailing white space of each prompt is removed (a trailing
 * space would otherwise force an unusual first word).
 */
export function parsePrompts(text: string): string[] {
  const t = text.replace(/\r\n?/g, '\n');
  const blocks = /\n[ \t]*\n/.test(t.trim()) ? t.split(/\n[ \t]*\n/) : t.split('\n');
  return blocks.map((b) => b.trim()).filter((b) => b !== '');
}

/** One prompt with the base model's greedy continuation. */
export interface Reference {
  prompt: string;
  /** words of prompt + continuation (the final segmentation) */
  words: Uint8Array[];
  /** prompt bytes (P >= 1) */
  promptBytes: number;
  /** the base model's greedy continuation (N bytes) */
  continuation: Uint8Array;
  /** lengths of the continuation's words (sum N; the first may continue the prompt's last word) */
  wordLengths: number[];
}

export interface ReferenceOptions {
  /** bytes to generate per prompt (default 100) */
  length?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Replays the splitter's word-end test over bytes appended to `words` (the last word unfinished). */
export function appendWords(splitter: WordSplitter, words: readonly Uint8Array[], bytes: Uint8Array): Uint8Array[] {
  const out = words.map((w) => Uint8Array.from(w));
  for (const b of bytes) {
    const split = splitter.appendByte(out[out.length - 1], b);
    out.pop();
    out.push(...split.words.map((w) => Uint8Array.from(w)));
  }
  return out;
}

/** Lengths of the parts of words that fall in byte range [from, to). */
export function wordLengthsIn(words: readonly Uint8Array[], from: number, to: number): number[] {
  const out: number[] = [];
  let s = 0;
  for (const w of words) {
    const a = Math.max(s, from);
    const b = Math.min(s + w.length, to);
    if (b > a) out.push(b - a);
    s += w.length;
  }
  return out;
}

/** Greedy continuation of `prompt` by `model`: exactly `length` bytes, ignoring the end-of-text byte. */
export function greedyContinuation(model: HATModel, splitter: WordSplitter, prompt: string, length: number): Uint8Array {
  return generate(model, splitter, prompt, { greedy: true, maxBytes: length, eos: -1 }).bytes;
}

/** The base model's greedy continuations of the prompts (computed once, reused for every compressed model). */
export function buildReferences(base: HATModel, splitter: WordSplitter, prompts: readonly string[], opts: ReferenceOptions = {}): Reference[] {
  const length = opts.length ?? 100;
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`length must be a positive integer, got ${length}`);
  return prompts.map((prompt, i) => {
    if (splitter.encode(prompt).length === 0) throw new RangeError(`prompt ${i + 1} is empty`);
    const ref = makeReference(splitter, prompt, greedyContinuation(base, splitter, prompt, length));
    opts.onProgress?.(i + 1, prompts.length);
    return ref;
  });
}

/** The reference of a prompt and a continuation of it (the words as generation cut them). */
export function makeReference(splitter: WordSplitter, prompt: string, continuation: Uint8Array): Reference {
  const pw = splitter.encode(prompt);
  const words = appendWords(splitter, pw, continuation);
  const promptBytes = pw.reduce((s, w) => s + w.length, 0);
  return { prompt, words, promptBytes, continuation, wordLengths: wordLengthsIn(words, promptBytes, promptBytes + continuation.length) };
}

/** Teacher-forced outputs of one model on one reference, at the continuation positions. */
export interface TeacherForced {
  /** argmax per continuation byte (ties: lowest byte) */
  argmax: Int32Array;
  /** logits [N, 256] */
  logits: Float32Array;
  /** natural-log probability of each continuation byte */
  logprobs: Float64Array;
}

/** One forward per batch of `batchSize` references; returns each reference's continuation outputs. */
export function teacherForced(model: HATModel, refs: readonly Reference[], batchSize = 8): TeacherForced[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const out: TeacherForced[] = [];
  for (let i = 0; i < refs.length; i += batchSize) {
    const group = refs.slice(i, i + batchSize);
    const batch = batchFromWords(group.map((r) => ({ words: r.words })));
    const lg = noGrad(() => model.forward(batch)).f32();
    group.forEach((r, b) => {
      const N = r.continuation.length;
      const from = (b * batch.T + r.promptBytes - 1) * 256;
      const logits = lg.slice(from, from + N * 256);
      const logprobs = new Float64Array(N);
      for (let t = 0; t < N; t++) logprobs[t] = logSoftmaxAt(logits.subarray(t * 256, (t + 1) * 256), r.continuation[t]);
      out.push({ argmax: argmaxRows(logits, N, 256), logits, logprobs });
    });
  }
  return out;
}

export interface DtmOptions {
  /** references per forward pass (default 8) */
  batchSize?: number;
  /** also generate freely with the model and compute the text-level variant (default false) */
  freeRunning?: boolean;
  /** held-out documents for bits per byte / word accuracy (evaluateText) */
  heldOut?: readonly string[];
  /** chunk size for the held-out evaluation (default 1024) */
  contextBytes?: number;
  /** progress over references (free-running generation) */
  onProgress?: (done: number, total: number) => void;
}

export interface HeldOutScore {
  bits_per_byte: number;
  word_accuracy: number;
  byte_accuracy: number;
  bytes: number;
}

export interface DtmReport {
  /** activation precision the evaluated model ran with: int8 / int16 (packed layers, TFREE_PACKED_ACT), or f32 (activationPrecision) */
  activations: string;
  /** byte-level FDT/SDT */
  bytes: DtmSummary;
  /** word-level FDT/SDT */
  words: DtmSummary;
  /** per-prompt byte and word FDT (for histograms) */
  fdt_bytes: number[];
  fdt_words: number[];
  /** bits per byte of the base continuation under the base model and under this model */
  bpb_base: number;
  bpb: number;
  /** share of continuation bytes / words whose argmax matches the reference */
  byte_accuracy: number;
  word_accuracy: number;
  /** mean KL(base || model) of the next-byte distributions over continuation positions, in bits */
  kl_bits: number;
  /** share of positions where the base model's teacher-forced argmax is its generated byte */
  base_consistency: number;
  /** free-running variant (when asked for) */
  free?: {
    /** first index where the model's greedy continuation differs from the base's (N if none) */
    fdt_bytes: DtmSummary;
    /** difflib-style text-level FDT/SDT over bytes and over the splitter's words */
    text_bytes: DtmSummary;
    text_words: DtmSummary;
  };
  held_out?: { base: HeldOutScore; model: HeldOutScore };
}

function heldOutScore(model: HATModel, splitter: WordSplitter, docs: readonly string[], ctx: number): HeldOutScore {
  const r = evaluateText(model, splitter, docs, { contextBytes: ctx });
  return { bits_per_byte: r.bitsPerByte, word_accuracy: r.wordAccuracy, byte_accuracy: r.byteAccuracy, bytes: r.predictedBytes };
}

/**
 * Divergence of models from a base model: the base's continuations and teacher-forced outputs
 * are computed once; `evaluate(model)` then costs one teacher-forced pass over all references
 * (plus generation when the free-running variant is asked for).
 */
export class DtmEvaluator {
  readonly refs: Reference[];
  readonly baseTF: TeacherForced[];
  private baseHeldOut: HeldOutScore | undefined;

  constructor(
    readonly base: HATModel,
    readonly splitter: WordSplitter,
    prompts: readonly string[],
    readonly opts: ReferenceOptions & { batchSize?: number } = {},
  ) {
    this.refs = buildReferences(base, splitter, prompts, opts);
    this.baseTF = teacherForced(base, this.refs, opts.batchSize ?? 8);
  }

  /** Units and per-sample divergences of `model`'s teacher-forced outputs against the base. */
  divergences(tf: readonly TeacherForced[]): { bytes: Divergence[]; words: Divergence[] } {
    const bytes: Divergence[] = [];
    const words: Divergence[] = [];
    this.refs.forEach((r, i) => {
      bytes.push(divergence(this.baseTF[i].argmax, tf[i].argmax));
      words.push(wordDivergence(this.baseTF[i].argmax, tf[i].argmax, r.wordLengths));
    });
    return { bytes, words };
  }

  evaluate(model: HATModel, opts: DtmOptions = {}): DtmReport {
    const tf = teacherForced(model, this.refs, opts.batchSize ?? this.opts.batchSize ?? 8);
    const d = this.divergences(tf);
    let nBytes = 0;
    let natsBase = 0;
    let nats = 0;
    let klSum = 0;
    let consistent = 0;
    this.refs.forEach((r, i) => {
      const N = r.continuation.length;
      nBytes += N;
      for (let t = 0; t < N; t++) {
        natsBase -= this.baseTF[i].logprobs[t];
        nats -= tf[i].logprobs[t];
        if (this.baseTF[i].argmax[t] === r.continuation[t]) consistent++;
      }
      klSum += meanKl(this.baseTF[i].logits, tf[i].logits, N, 256) * N;
    });
    const bytes = summarize(d.bytes);
    const words = summarize(d.words);
    const report: DtmReport = {
      activations: activationPrecision(model),
      bytes,
      words,
      fdt_bytes: d.bytes.map((x) => x.fdt),
      fdt_words: d.words.map((x) => x.fdt),
      bpb_base: natsBase / nBytes / Math.LN2,
      bpb: nats / nBytes / Math.LN2,
      byte_accuracy: 1 - bytes.sdt_share,
      word_accuracy: 1 - words.sdt_share,
      kl_bits: klSum / nBytes / Math.LN2,
      base_consistency: consistent / nBytes,
    };
    if (opts.freeRunning) report.free = this.freeRunning(model, opts.onProgress);
    if (opts.heldOut !== undefined && opts.heldOut.length > 0) {
      const ctx = opts.contextBytes ?? 1024;
      // the base score is computed at first use (the base must be unmodified then); the model's
      // every time (in-memory compression modifies the base model object itself)
      const own = heldOutScore(model, this.splitter, opts.heldOut, ctx);
      this.baseHeldOut ??= model === this.base ? own : heldOutScore(this.base, this.splitter, opts.heldOut, ctx);
      report.held_out = { base: this.baseHeldOut, model: own };
    }
    return report;
  }

  /** The model's own greedy continuations compared with the base's. */
  freeRunning(model: HATModel, onProgress?: (done: number, total: number) => void): NonNullable<DtmReport['free']> {
    const first: Divergence[] = [];
    const textBytes: Divergence[] = [];
    const textWords: Divergence[] = [];
    const ids = new Map<string, number>();
    const wordIds = (bytes: Uint8Array): number[] =>
      appendWords(this.splitter, [bytes.subarray(0, 1)], bytes.subarray(1)).map((w) => {
        const k = Buffer.from(w).toString('latin1');
        let id = ids.get(k);
        if (id === undefined) ids.set(k, (id = ids.size));
        return id;
      });
    this.refs.forEach((r, i) => {
      const N = r.continuation.length;
      const own = greedyContinuation(model, this.splitter, r.prompt, N);
      first.push(divergence(r.continuation, own));
      textBytes.push(textLevelDivergence(r.continuation, own));
      textWords.push(N > 0 && own.length > 0 ? textLevelDivergence(wordIds(r.continuation), wordIds(own)) : { fdt: 0, sdt: 0, length: 0 });
      onProgress?.(i + 1, this.refs.length);
    });
    return { fdt_bytes: summarize(first), text_bytes: summarize(textBytes), text_words: summarize(textWords) };
  }

  /** The base model's held-out score (computed once). */
  heldOutBase(docs: readonly string[], ctx = 1024): HeldOutScore {
    this.baseHeldOut ??= heldOutScore(this.base, this.splitter, docs, ctx);
    return this.baseHeldOut;
  }
}
