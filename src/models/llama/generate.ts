/**
 * Autoregressive decoding for `LlamaLM`: greedy, or sampling with temperature, top-k and top-p
 * (nucleus), seeded. With the KV cache (default) the prompt is run once and every further step
 * feeds one token; without it every step re-runs the whole sequence (the reference the cached
 * path is tested against).
 */
import { noGrad } from '../../tensor/index.js';
import { Rng } from '../../nn/index.js';
import type { LlamaLM } from './model.js';

export interface SamplingOptions {
  /** 0 (default) is greedy; > 0 divides the logits before softmax */
  temperature?: number;
  /** keep only the k most likely tokens (0/absent: all) */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability reaches p (1/absent: all) */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** sampling seed (default 0) */
  seed?: number;
  /** tokens that end generation (included in the output); default the config's eos ids */
  stopTokens?: readonly number[];
  /** use the KV cache (default true) */
  useCache?: boolean;
  /** called with each new token as it is chosen */
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  /** the new tokens (without the prompt) */
  tokens: Int32Array;
  /** why generation ended */
  stop: 'stop_token' | 'max_new_tokens';
}

function checkSampling(o: SamplingOptions): void {
  const t = o.temperature ?? 0;
  if (!Number.isFinite(t) || t < 0) throw new Error(`generate: temperature must be a finite number >= 0, got ${t}`);
  const k = o.topK ?? 0;
  if (!Number.isInteger(k) || k < 0) throw new Error(`generate: topK must be an integer >= 0, got ${k}`);
  const p = o.topP ?? 1;
  if (!(p > 0 && p <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${p}`);
}

/** Index of the largest value (the first one on ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/**
 * Picks the next token from one row of logits. Greedy (temperature 0) is argmax; otherwise the
 * softmax of logits / temperature restricted to the top-k tokens and then to the top-p nucleus
 * (the most likely tokens until their probability reaches p, at least one), sampled with `rng`.
 * Candidates are ordered by probability, then id, so a seed gives one result on every backend
 * whose logits agree.
 */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, rng: Rng): number {
  const temp = opts.temperature ?? 0;
  if (temp === 0) return argmax(logits);
  const V = logits.length;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const k = opts.topK !== undefined && opts.topK > 0 ? Math.min(opts.topK, V) : V;
  const maxL = logits[order[0]];
  const probs = new Float64Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) {
    probs[i] = Math.exp((logits[order[i]] - maxL) / temp);
    sum += probs[i];
  }
  let n = k;
  const p = opts.topP ?? 1;
  if (p < 1) {
    let cum = 0;
    for (let i = 0; i < k; i++) {
      cum += probs[i] / sum;
      if (cum >= p) {
        n = i + 1;
        break;
      }
    }
    sum = 0;
    for (let i = 0; i < n; i++) sum += probs[i];
  }
  let u = rng.float() * sum;
  for (let i = 0; i < n; i++) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[n - 1];
}

function stopSet(model: LlamaLM, opts: GenerateOptions): Set<number> {
  if (opts.stopTokens !== undefined) return new Set(opts.stopTokens);
  const e = model.cfg.eosTokenId;
  if (e === undefined || e === null) return new Set();
  return new Set(Array.isArray(e) ? e : [e]);
}

/** Continues `prompt` (token ids, at least one) by up to maxNewTokens tokens. */
export function generate(model: LlamaLM, prompt: ArrayLike<number>, opts: GenerateOptions): GenerateResult {
  if (prompt.length === 0) throw new Error('generate: the prompt must hold at least one token (e.g. the BOS token)');
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) throw new Error(`generate: maxNewTokens must be an integer >= 0, got ${opts.maxNewTokens}`);
  checkSampling(opts);
  const V = model.cfg.vocabSize;
  for (let i = 0; i < prompt.length; i++) {
    const t = prompt[i];
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`generate: prompt token ${i} is ${t}, outside the vocabulary [0, ${V})`);
  }
  const rng = new Rng(opts.seed ?? 0);
  const stops = stopSet(model, opts);
  const seq = Array.from(prompt);
  const out: number[] = [];
  let stop: GenerateResult['stop'] = 'max_new_tokens';
  noGrad(() => {
    const cache = opts.useCache === false ? null : model.newCache();
    let pending = Int32Array.from(seq);
    while (out.length < opts.maxNewTokens) {
      const ids = cache === null ? Int32Array.from(seq) : pending;
      const logits = model.forward(ids, 1, ids.length, { cache: cache ?? undefined, lastOnly: true });
      const next = sampleToken(logits.f32(), opts, rng);
      out.push(next);
      seq.push(next);
      opts.onToken?.(next);
      if (stops.has(next)) {
        stop = 'stop_token';
        break;
      }
      pending = Int32Array.of(next);
    }
  });
  return { tokens: Int32Array.from(out), stop };
}
