/**
 * Next-byte sampling from 256 logits: greedy (argmax, lowest index on ties), or temperature
 * with optional top-k and top-p (nucleus) filtering, drawn with a seeded generator (one uniform
 * draw per byte, so equal logits and seed give equal bytes).
 */
import { Rng } from '../../nn/index.js';

export interface SamplingOptions {
  /** argmax instead of sampling (also when temperature is 0) */
  greedy?: boolean;
  /** softmax temperature (default 1) */
  temperature?: number;
  /** keep only the k most likely bytes (0 or absent: all) */
  topK?: number;
  /** keep the smallest set of most likely bytes whose probability reaches p (1 or absent: all) */
  topP?: number;
  /** seed of the sampling generator (default 0) */
  seed?: number;
}

/** Index of the largest value (the lowest index among equal maxima). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export class Sampler {
  readonly greedy: boolean;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  private readonly rng: Rng;
  private readonly probs = new Float64Array(256);
  private readonly order: number[] = [];
  private readonly kept = new Uint8Array(256);

  constructor(opts: SamplingOptions = {}) {
    const t = opts.temperature ?? 1;
    if (!(t >= 0) || !Number.isFinite(t)) throw new RangeError(`temperature must be a finite number >= 0, got ${t}`);
    const k = opts.topK ?? 0;
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`top-k must be an integer >= 0, got ${k}`);
    const p = opts.topP ?? 1;
    if (!(p > 0 && p <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${p}`);
    this.greedy = opts.greedy === true || t === 0;
    this.temperature = t;
    this.topK = k;
    this.topP = p;
    this.rng = new Rng(opts.seed ?? 0);
  }

  /** The next byte for these logits. */
  sample(logits: ArrayLike<number>): number {
    if (this.greedy) return argmax(logits);
    const n = logits.length;
    if (n !== 256) throw new RangeError(`Sampler: expected 256 logits, got ${n}`);
    const probs = this.probs;
    let mx = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > mx) mx = logits[i];
    // candidates by decreasing logit (ties: lower index first)
    const order = this.order;
    order.length = 0;
    for (let i = 0; i < n; i++) order.push(i);
    order.sort((a, b) => logits[b] - logits[a] || a - b);
    let keep = this.topK > 0 ? Math.min(this.topK, n) : n;
    let z = 0;
    for (let r = 0; r < keep; r++) {
      const i = order[r];
      probs[i] = Math.exp((logits[i] - mx) / this.temperature);
      z += probs[i];
    }
    if (this.topP < 1) {
      let c = 0;
      for (let r = 0; r < keep; r++) {
        c += probs[order[r]] / z;
        if (c >= this.topP) {
          keep = r + 1;
          break;
        }
      }
      z = 0;
      for (let r = 0; r < keep; r++) z += probs[order[r]];
    }
    // draw in byte order (not in sorted order), so near-equal logits cannot swap the outcome
    const kept = this.kept;
    kept.fill(0);
    for (let r = 0; r < keep; r++) kept[order[r]] = 1;
    let u = this.rng.float() * z;
    let last = order[0];
    for (let i = 0; i < n; i++) {
      if (kept[i] === 0) continue;
      last = i;
      u -= probs[i];
      if (u < 0) return i;
    }
    return last;
  }
}
