/**
 * A seeded, reproducible random number generator: xoshiro128** (Blackman & Vigna, 2018) on
 * four 32-bit words, seeded through splitmix32 so that any integer or string seed spreads over
 * the whole state. It is fast in JS (32-bit integer ops only, via Math.imul), passes BigCrush,
 * has period 2^128 - 1, and its complete state is five small numbers, so `state()` is plain
 * JSON and `setState()` continues the stream exactly (including a cached Box-Muller value).
 *
 * Streams: `fork(label)` derives an independent generator from this one's current state and a
 * label without advancing this one (the same label gives the same stream: parameter
 * initialisation uses the parameter's name, so a tensor's init depends only on the seed and its
 * name, not on the order layers were built in). `split()` advances this generator and returns a
 * new, independent one (for "give me a fresh stream" use, e.g. one per data-loader worker).
 */

/** JSON-serialisable generator state. */
export interface RngState {
  readonly algorithm: 'xoshiro128**';
  /** the four 32-bit state words (unsigned) */
  readonly s: readonly [number, number, number, number];
  /** the second value of the last Box-Muller pair, not yet returned (null when none) */
  readonly spare: number | null;
}

/** One step of splitmix32 on a 32-bit counter: returns [next counter, output]. */
function splitmix32(x: number): [number, number] {
  const c = (x + 0x9e3779b9) | 0;
  let z = c;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  z ^= z >>> 15;
  return [c, z >>> 0];
}

/** A 32-bit hash of a string (FNV-1a over UTF-16 code units, then a murmur3 finaliser). */
function hashString(s: string, h0 = 0x811c9dc5): number {
  let h = h0 >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const TWO_POW_32 = 4294967296;
const TWO_POW_M53 = 1 / 9007199254740992;

/** Splits a seed (a safe integer or a string) into 32-bit words to feed splitmix32. */
function seedWords(seed: number | string): number[] {
  if (typeof seed === 'string') return [hashString(seed), hashString(seed, 0x9747b28c), seed.length];
  if (!Number.isSafeInteger(seed)) throw new Error(`Rng: seed must be a safe integer or a string, got ${seed}`);
  const neg = seed < 0 ? 1 : 0;
  const a = Math.abs(seed);
  return [a % TWO_POW_32 >>> 0, Math.floor(a / TWO_POW_32) >>> 0, neg];
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;

  /** A generator seeded from an integer (any safe integer) or a string. */
  constructor(seed: number | string = 0) {
    this.seedFrom(seedWords(seed));
  }

  /** A generator continuing exactly from a saved state. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  private seedFrom(words: readonly number[]): void {
    // mix every word into a splitmix32 counter, then draw the four state words from it
    let c = 0x6a09e667;
    for (const w of words) {
      const [nc, out] = splitmix32((c ^ w) >>> 0);
      c = (nc ^ out) | 0;
    }
    const st: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [nc, out] = splitmix32(c);
      c = nc;
      st.push(out);
    }
    if ((st[0] | st[1] | st[2] | st[3]) === 0) st[0] = 1; // the all-zero state is a fixed point
    [this.s0, this.s1, this.s2, this.s3] = st;
    this.spare = null;
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A double uniform in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) * TWO_POW_M53;
  }

  /** A double uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.float();
  }

  /**
   * A normal sample (Box-Muller; the two values of each pair are returned one after the other,
   * the second cached in the state).
   */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    // u1 in (0, 1] so the log is finite
    const u1 = 1 - this.float();
    const u2 = this.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.spare = r * Math.sin(th);
    return mean + std * r * Math.cos(th);
  }

  /** A uniform integer in [0, n) without modulo bias (n a positive integer <= 2^32). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32) throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    if (n === TWO_POW_32) return this.nextU32();
    // reject the top partial block of 2^32 so every residue is equally likely
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles an array in place (Fisher-Yates) and returns it. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }

  /** A random permutation of [0, n). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** Fills out with uniform values in [lo, hi) (rounded to f32). */
  fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
    const w = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + w * this.float();
    return out;
  }

  /** Fills out with normal values N(mean, std^2) (rounded to f32). */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /**
   * An independent generator derived from this one's current state and `label`. This generator
   * is not advanced: the same label at the same state gives the same stream.
   */
  fork(label: string | number): Rng {
    const r = new Rng(0);
    const l = String(label);
    r.seedFrom([this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0, hashString(l), hashString(l, 0x5bd1e995), l.length]);
    return r;
  }

  /** Advances this generator and returns a new, independent one seeded from its output. */
  split(): Rng {
    const r = new Rng(0);
    r.seedFrom([this.nextU32(), this.nextU32(), this.nextU32(), this.nextU32(), 0x243f6a88]);
    return r;
  }

  /** An exact copy (same state, same future values). */
  clone(): Rng {
    return Rng.fromState(this.state());
  }

  /** The complete state as plain JSON data. */
  state(): RngState {
    return { algorithm: 'xoshiro128**', s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0], spare: this.spare };
  }

  /** Restores a state from `state()` (after a JSON round trip too). */
  setState(state: RngState): void {
    if (state === null || typeof state !== 'object') throw new Error('Rng.setState: expected a state object');
    if (state.algorithm !== 'xoshiro128**') throw new Error(`Rng.setState: unknown algorithm ${String(state.algorithm)}`);
    const s = state.s;
    if (!Array.isArray(s) || s.length !== 4 || s.some((w) => !Number.isInteger(w) || w < 0 || w >= TWO_POW_32)) {
      throw new Error('Rng.setState: state words must be four unsigned 32-bit integers');
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new Error('Rng.setState: the all-zero state is invalid for xoshiro128**');
    if (state.spare !== null && typeof state.spare !== 'number') throw new Error('Rng.setState: spare must be a number or null');
    this.s0 = s[0] | 0;
    this.s1 = s[1] | 0;
    this.s2 = s[2] | 0;
    this.s3 = s[3] | 0;
    this.spare = state.spare;
  }
}

/**
 * The sampling defaults of every text generator tfree offers (tfree generate, tfree llama
 * generate, tfree demo, the server's completions): temperature, nucleus top-p, top-k (0: all).
 */
export const SAMPLING_DEFAULTS = { temperature: 0.8, topP: 0.95, topK: 0 } as const;
