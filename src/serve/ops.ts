/**
 * What `tfree serve` and the web playground do with a model, as plain functions over loaded
 * models: no `node:*` imports and no files here (the web playground runs this file in a Web
 * Worker), so loading is the caller's job. The results are plain JSON-ready objects whose field
 * names are those of the HTTP API (docs/serve.md).
 *
 * - `split`: the splitter's words with their byte offsets.
 * - `score`: per-byte probabilities of a text (teacher forcing, one forward pass) and bits per byte.
 * - `Generation`: sampled or greedy generation advanced a few bytes at a time (`step(n)`), so a
 *   server can interleave requests and a page can stream; text pieces never split a UTF-8
 *   character nor show a possible start of a stop string.
 * - `compareSteps` / `compare`: the divergent token metrics of ../eval/hat_dtm.ts for one prompt
 *   (base greedy continuation, quantized model teacher-forced on it), with every divergent
 *   position.
 * - `kgMeta` / `kgQuery`: the vocabulary of a BoxTE model and its ranked tail answers for
 *   (head, relation, ?, date).
 *
 * Byte offsets are into the model's byte sequence: the UTF-8 of the text, except that a
 * special-token string (e.g. `<|eot_id|>`) is one byte (its id), as the model sees it.
 */
import type { HATModel } from '../models/hat/model.js';
import { generateSteps, type GenerateResult, type StopReason, type WordSplitter } from '../models/hat/generate.js';
import { makeReference, teacherForced } from '../eval/hat_dtm.js';
import { divergence, wordDivergence } from '../eval/dtm.js';
import type { BoxTE } from '../models/boxte/model.js';
import type { KgVocab } from '../models/boxte/train.js';
import { KgQueryError, answerQuestion, dateLabel, type KgAnswer } from '../models/boxte/query.js';

export type { KgAnswer };

/** Bad input to an operation (the server answers 400 with this message; `param` names the field). */
export class OpsError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'OpsError';
  }
}

/** A word of a text: its text and its byte range [start, end). */
export interface WordSpan {
  text: string;
  start: number;
  end: number;
}

/** Words as spans; offsets start at `from`. */
function spans(splitter: WordSplitter, words: readonly Uint8Array[], from = 0): WordSpan[] {
  const out: WordSpan[] = [];
  let s = from;
  for (const w of words) {
    out.push({ text: splitter.decode(w), start: s, end: s + w.length });
    s += w.length;
  }
  return out;
}

/** The words of `text` as the model's splitter cuts them. */
export function split(splitter: WordSplitter, text: string): WordSpan[] {
  return spans(splitter, splitter.encode(text));
}

// ---- score ----------------------------------------------------------------------------------

export interface ScoreResult {
  words: WordSpan[];
  /**
   * byte_probs[i] = p(byte i | bytes before it). Byte 0 has no context (HAT has no start-of-text
   * symbol; a document's first byte is never predicted), so byte_probs[0] is null.
   */
  byte_probs: (number | null)[];
  bytes: number[];
  /** bits per byte over bytes 1..n-1 (null when the text has fewer than 2 bytes) */
  bpb: number | null;
}

/** Per-byte probabilities of `text` under `model` (one teacher-forced forward pass). */
export function score(model: HATModel, splitter: WordSplitter, text: string): ScoreResult {
  const words = splitter.encode(text);
  const all = new Uint8Array(words.reduce((n, w) => n + w.length, 0));
  let at = 0;
  for (const w of words) {
    all.set(w, at);
    at += w.length;
  }
  const bytes = Array.from(all);
  const probs: (number | null)[] = bytes.length > 0 ? [null] : [];
  let nats = 0;
  if (bytes.length > 1) {
    // bytes 1..n-1 as the "continuation" of byte 0 (the words are the text's own split)
    const [tf] = teacherForced(model, [{ prompt: text, words, promptBytes: 1, continuation: all.subarray(1), wordLengths: [] }]);
    for (const lp of tf.logprobs) {
      probs.push(Math.exp(lp));
      nats -= lp;
    }
  }
  return { words: spans(splitter, words), byte_probs: probs, bytes, bpb: bytes.length > 1 ? nats / (bytes.length - 1) / Math.LN2 : null };
}

// ---- generation -----------------------------------------------------------------------------

export interface GenerationParams {
  /** most bytes to generate */
  maxBytes: number;
  /** softmax temperature (0: greedy; default 1) */
  temperature?: number;
  /** nucleus filter: keep the most likely bytes holding this probability (default 1: all) */
  topP?: number;
  /** keep only the k most likely bytes (default 0: all) */
  topK?: number;
  /** seed of the sampler (default 0) */
  seed?: number;
  /** always take the most likely byte */
  greedy?: boolean;
  /** stop when the output ends with one of these (not included) */
  stop?: readonly string[];
  /** the end-of-text byte (default: the model's; -1: never stop at one) */
  eos?: number;
}

/** Checks generation parameters; throws OpsError naming the field. */
export function checkGenerationParams(p: GenerationParams): void {
  if (!Number.isInteger(p.maxBytes) || p.maxBytes < 0) throw new OpsError(`max bytes must be an integer >= 0, got ${p.maxBytes}`, 'max_tokens');
  const t = p.temperature ?? 1;
  if (!(Number.isFinite(t) && t >= 0)) throw new OpsError(`temperature must be a finite number >= 0, got ${t}`, 'temperature');
  const tp = p.topP ?? 1;
  if (!(tp > 0 && tp <= 1)) throw new OpsError(`top_p must be in (0, 1], got ${tp}`, 'top_p');
  const tk = p.topK ?? 0;
  if (!Number.isInteger(tk) || tk < 0) throw new OpsError(`top_k must be an integer >= 0, got ${tk}`, 'top_k');
  const s = p.seed ?? 0;
  if (!Number.isSafeInteger(s)) throw new OpsError(`seed must be an integer, got ${s}`, 'seed');
}

/**
 * One generation advanced on demand. The prompt is fed when it is created; `step(n)` generates
 * up to n more bytes and returns the text that became final during them. After `done`,
 * `result` holds the bytes, text and stop reason.
 */
export class Generation {
  private readonly it: Generator<void, GenerateResult>;
  private pending = '';
  private res: GenerateResult | null = null;

  constructor(model: HATModel, splitter: WordSplitter, prompt: string, params: GenerationParams) {
    checkGenerationParams(params);
    if (splitter.encode(prompt).length === 0) throw new OpsError('the prompt is empty (HAT predicts each byte from the bytes before it; give at least one byte)', 'prompt');
    this.it = generateSteps(model, splitter, prompt, {
      maxBytes: params.maxBytes,
      temperature: params.temperature ?? 1,
      topP: params.topP ?? 1,
      topK: params.topK ?? 0,
      seed: params.seed ?? 0,
      greedy: params.greedy === true,
      stop: params.stop ?? [],
      eos: params.eos,
      onText: (t) => {
        this.pending += t;
      },
    });
  }

  get done(): boolean {
    return this.res !== null;
  }

  /** The finished generation (null until done). */
  get result(): GenerateResult | null {
    return this.res;
  }

  /** Generates up to `n` more bytes; returns the text that became final ('' when none). */
  step(n = 1): string {
    for (let i = 0; i < n && this.res === null; i++) {
      const r = this.it.next();
      if (r.done === true) this.res = r.value;
    }
    const out = this.pending;
    this.pending = '';
    return out;
  }

  /** Runs to the end; returns the result. */
  finish(onText?: (text: string) => void): GenerateResult {
    while (this.res === null) {
      const t = this.step(64);
      if (t !== '' && onText) onText(t);
    }
    const t = this.step(0);
    if (t !== '' && onText) onText(t);
    return this.res;
  }
}

export interface GenerationOutput {
  text: string;
  bytes: number;
  stop_reason: StopReason;
}

/** Generates to the end (text pieces through `onText` as they become final). */
export function generateText(model: HATModel, splitter: WordSplitter, prompt: string, params: GenerationParams, onText?: (text: string) => void): GenerationOutput {
  const r = new Generation(model, splitter, prompt, params).finish(onText);
  return { text: r.text, bytes: r.bytes.length, stop_reason: r.stopReason };
}

// ---- compare (divergent token metrics for one prompt) ----------------------------------------

export interface CompareResult {
  /** the base model's greedy continuation (exactly max bytes; the end-of-text byte is not a stop) */
  base_text: string;
  /** the quantized model's own greedy continuation */
  quantized_text: string;
  /** words of the base continuation; offsets are bytes into it (the first word may continue the prompt's last word) */
  base_words: WordSpan[];
  /** continuation positions where the quantized model's teacher-forced argmax differs from the base's */
  divergent_bytes: number[];
  fdt_bytes: number | null;
  sdt_bytes: number;
  /** indices into base_words of the words holding a divergent byte */
  divergent_words: number[];
  fdt_words: number | null;
  sdt_words: number;
}

/** The greedy continuation for `maxBytes` bytes, one step per byte (no stop at end of text). */
function* greedySteps(model: HATModel, splitter: WordSplitter, prompt: string, maxBytes: number): Generator<void, Uint8Array> {
  const it = generateSteps(model, splitter, prompt, { greedy: true, maxBytes, eos: -1 });
  for (;;) {
    const r = it.next();
    if (r.done === true) return r.value.bytes;
    yield;
  }
}

/**
 * Divergence of `quantized` from `base` on one prompt, one step per generated byte (then one
 * step for the two teacher-forced passes). The reference unit at each continuation position is
 * the base model's teacher-forced argmax, as in `tfree eval dtm` (it equals the generated byte
 * wherever the base model's cached and uncached paths agree), so quantized = base gives no
 * divergence at all.
 */
export function* compareSteps(base: HATModel, quantized: HATModel, splitter: WordSplitter, prompt: string, maxBytes: number): Generator<void, CompareResult> {
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new OpsError(`max_tokens must be an integer >= 1, got ${maxBytes}`, 'max_tokens');
  if (splitter.encode(prompt).length === 0) throw new OpsError('the prompt is empty (give at least one byte)', 'prompt');
  const continuation = yield* greedySteps(base, splitter, prompt, maxBytes);
  const own = yield* greedySteps(quantized, splitter, prompt, maxBytes);
  const ref = makeReference(splitter, prompt, continuation);
  const [bt] = teacherForced(base, [ref]);
  const [qt] = teacherForced(quantized, [ref]);
  const N = continuation.length;
  const divergentBytes: number[] = [];
  for (let i = 0; i < N; i++) if (qt.argmax[i] !== bt.argmax[i]) divergentBytes.push(i);
  const divergentWords: number[] = [];
  const words: WordSpan[] = [];
  let s = 0;
  let k = 0;
  ref.wordLengths.forEach((len, w) => {
    words.push({ text: splitter.decode(continuation.subarray(s, s + len)), start: s, end: s + len });
    let hit = false;
    while (k < divergentBytes.length && divergentBytes[k] < s + len) {
      hit = true;
      k++;
    }
    if (hit) divergentWords.push(w);
    s += len;
  });
  const db = divergence(bt.argmax, qt.argmax);
  const dw = wordDivergence(bt.argmax, qt.argmax, ref.wordLengths);
  return {
    base_text: splitter.decode(continuation),
    quantized_text: splitter.decode(own),
    base_words: words,
    divergent_bytes: divergentBytes,
    fdt_bytes: db.fdt < db.length ? db.fdt : null,
    sdt_bytes: db.sdt,
    divergent_words: divergentWords,
    fdt_words: dw.fdt < dw.length ? dw.fdt : null,
    sdt_words: dw.sdt,
  };
}

/** `compareSteps` run to the end. */
export function compare(base: HATModel, quantized: HATModel, splitter: WordSplitter, prompt: string, maxBytes: number): CompareResult {
  const it = compareSteps(base, quantized, splitter, prompt, maxBytes);
  for (;;) {
    const r = it.next();
    if (r.done === true) return r.value;
  }
}

// ---- BoxTE knowledge-graph queries ----------------------------------------------------------

/** A loaded BoxTE / BoxE model with the vocabulary it was trained with. */
export interface KgModel {
  model: BoxTE;
  vocab: KgVocab;
}

export interface KgMeta {
  entities: string[];
  relations: string[];
  /** one label per timestamp: YYYY-MM-DD for dated data, else the time index */
  dates: string[];
}

export function kgMeta(vocab: KgVocab): KgMeta {
  const dates: string[] = [];
  for (let tau = 0; tau < vocab.numTimes; tau++) dates.push(dateLabel(vocab, tau));
  return { entities: vocab.entities.slice(), relations: vocab.relations.slice(), dates };
}

export interface KgQuery {
  head: string;
  relation: string;
  /** YYYY-MM-DD for dated data, else the time index (a number or its string) */
  date: string | number;
  /** answers to return (default 10) */
  k?: number;
}

/** The k most plausible tails of (head, relation, ?, date), best first (ties: lower entity id first). */
export function kgQuery(kg: KgModel, q: KgQuery): { answers: KgAnswer[] } {
  try {
    return { answers: answerQuestion(kg.model, kg.vocab, { head: q.head, relation: q.relation, date: q.date, k: q.k }).answers };
  } catch (e) {
    if (e instanceof KgQueryError) throw new OpsError(e.message, e.field);
    throw e;
  }
}
