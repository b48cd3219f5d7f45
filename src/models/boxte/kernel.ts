/**
 * Fused BoxTE kernels for the entity-heavy work (pure TypeScript; `kernel_native.ts` binds the
 * C++ twin when the native backend is active):
 *
 * - `trainGroups`: forward and backward of the cross-entropy loss over groups of (1 + n) candidate
 *   facts (the true fact, then n corruptions of its head or tail), accumulating the gradients of
 *   the entity tables, of the box centres/widths and of the time bumps. Each group's points are
 *   kept in a scratch buffer between the forward and the backward, so nothing is recomputed.
 * - `scoreAll`: the scores of one query (head or tail unknown) against every entity.
 *
 * Both follow `BoxTE.score` in model.ts exactly (tests compare them); boxes arrive precomputed per
 * relation as corners l, u, centre c = (l + u) / 2 and width w = u - l + 1 (`BoxTable`).
 */

/** Per-relation box geometry, [2, R, d] each: side 0 = head box, side 1 = tail box. */
export interface BoxTable {
  R: number;
  d: number;
  l: Float32Array;
  u: Float32Array;
  c: Float32Array;
  w: Float32Array;
}

/** Builds a BoxTable from stacked corners [4, R, d] = (lh, uh, lt, ut). */
export function boxTable(stacked: Float32Array, R: number, d: number, scratch?: { f32(name: string, n: number): Float32Array }): BoxTable {
  const n = R * d;
  // every entry is written below
  const buf = (name: string): Float32Array => (scratch === undefined ? new Float32Array(2 * n) : scratch.f32(name, 2 * n));
  const l = buf('box.l');
  const u = buf('box.u');
  l.set(stacked.subarray(0, n), 0);
  u.set(stacked.subarray(n, 2 * n), 0);
  l.set(stacked.subarray(2 * n, 3 * n), n);
  u.set(stacked.subarray(3 * n, 4 * n), n);
  const c = buf('box.c');
  const w = buf('box.w');
  for (let i = 0; i < 2 * n; i++) {
    c[i] = (l[i] + u[i]) * 0.5;
    w[i] = u[i] - l[i] + 1;
  }
  return { R, d, l, u, c, w };
}

/** Gradient w.r.t. the stacked corners [4, R, d] from gradients w.r.t. centre and width ([2, R, d]). */
export function cornerGrad(gc: Float32Array, gw: Float32Array, R: number, d: number, scratch?: { f32(name: string, n: number): Float32Array }): Float32Array {
  const n = R * d;
  const g = scratch === undefined ? new Float32Array(4 * n) : scratch.f32('cornerGrad', 4 * n); // every entry is written
  for (let s = 0; s < 2; s++) {
    for (let i = 0; i < n; i++) {
      const a = 0.5 * gc[s * n + i];
      const b = gw[s * n + i];
      g[2 * s * n + i] = a - b; // l
      g[(2 * s + 1) * n + i] = a + b; // u
    }
  }
  return g;
}

/** The BoxE distance of point p to the box at index i of the table arrays (see model.ts). */
function dist(p: number, i: number, l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array): number {
  const a = Math.abs(p - c[i]);
  const wi = w[i];
  return p >= l[i] && p <= u[i] ? a / wi : a * wi - 0.5 * (wi - 1) * (wi - 1 / wi);
}

export interface TrainGroupsArgs {
  /** positives in the batch */
  B: number;
  /** negatives per positive */
  n: number;
  d: number;
  tanh: boolean;
  order: 1 | 2;
  /** entity base points and bumps [E, d] */
  base: Float32Array;
  bump: Float32Array;
  boxes: BoxTable;
  /** time bump of each positive [B, d] (shared by its negatives) */
  tb: Float32Array;
  h: Int32Array;
  r: Int32Array;
  t: Int32Array;
  /** replacement entity of each negative [B * n] */
  negEnt: Int32Array;
  /** 1 where the negative replaces the tail, 0 where it replaces the head [B * n] */
  negTail: Uint8Array;
  /** multiplies every gradient (1 / B for a mean over the batch) */
  gradScale: number;
  /** accumulated gradients ([E, d], [E, d], [2, R, d], [2, R, d]); gTb [B, d] is overwritten */
  gBase: Float32Array;
  gBump: Float32Array;
  gc: Float32Array;
  gw: Float32Array;
  gTb: Float32Array;
  /**
   * Optional extra accumulators for the entity gradients, [nslots, 2, E, d] (base then bump),
   * zeroed by the caller: a multi-threaded kernel lets chunk c > 0 accumulate into slot c - 1
   * instead of adding it into gBase/gBump itself (the caller sums them, see `adamRows`). The
   * single-threaded TypeScript kernel ignores them.
   */
  slots?: { data: Float32Array; count: number };
  /**
   * Optional lazy zeroing of the entity gradients (the trainer's fused path): `stamps` [count + 1, 2,
   * E] (chunk c = 0 is gBase/gBump, c > 0 slot c - 1; table 0 base, 1 bump), `step` >= 1. Row e of
   * chunk c's table q holds this step's sum only where stamps[(2 c + q) E + e] == step; a row without
   * that stamp is stale and is zeroed (and stamped) before the kernel first adds to it, so the caller
   * need not zero the tables between steps (`adamRows` with the same `lazy` reads only stamped rows).
   * Without `slots` the native kernel then runs one chunk.
   */
  lazy?: { stamps: Int32Array; step: number };
}

/** `TrainGroupsArgs.lazy` for a kernel that adds into gBase/gBump only (chunk 0): zero the stale rows of every candidate entity first. */
function zeroStaleRows(a: TrainGroupsArgs): void {
  if (a.lazy === undefined) return;
  const { stamps, step } = a.lazy;
  const { d, B, n, h, t, negEnt } = a;
  const E = a.base.length / d;
  const touch = (e: number): void => {
    if (stamps[e] !== step) {
      stamps[e] = step;
      a.gBase.fill(0, e * d, (e + 1) * d);
    }
    if (stamps[E + e] !== step) {
      stamps[E + e] = step;
      a.gBump.fill(0, e * d, (e + 1) * d);
    }
  };
  for (let i = 0; i < B; i++) {
    touch(h[i]);
    touch(t[i]);
  }
  for (let q = 0; q < B * n; q++) touch(negEnt[q]);
}

/** Loss summed over the B groups (divide by B for the mean); gradients as documented above. */
export function trainGroupsJs(a: TrainGroupsArgs): number {
  const { B, n, d, base, bump, tb, h, r, t, negEnt, negTail, gradScale, gBase, gBump, gc, gw, gTb } = a;
  const { l, u, c, w, R } = a.boxes;
  const useTanh = a.tanh;
  const l2 = a.order === 2;
  const G = n + 1;
  const P = new Float32Array(G * 2 * d); // points of every candidate: head side then tail side
  const nh = new Float64Array(G);
  const nt = new Float64Array(G);
  const score = new Float64Array(G);
  const cand = new Int32Array(2 * G);
  const tailOff = R * d;
  let lossSum = 0;
  zeroStaleRows(a);
  gTb.fill(0, 0, B * d);
  for (let i = 0; i < B; i++) {
    const rel = r[i];
    const bo = rel * d;
    const to = i * d;
    for (let j = 0; j < G; j++) {
      let hh = h[i];
      let tt = t[i];
      if (j > 0) {
        const q = i * n + j - 1;
        if (negTail[q] === 1) tt = negEnt[q];
        else hh = negEnt[q];
      }
      cand[2 * j] = hh;
      cand[2 * j + 1] = tt;
      const po = j * 2 * d;
      const eh = hh * d;
      const et = tt * d;
      let sh = 0;
      let st = 0;
      for (let k = 0; k < d; k++) {
        const tk = tb[to + k];
        let x = base[eh + k] + bump[et + k] + tk;
        let y = base[et + k] + bump[eh + k] + tk;
        if (useTanh) {
          x = Math.tanh(x);
          y = Math.tanh(y);
        }
        P[po + k] = x;
        P[po + d + k] = y;
        const dh = dist(x, bo + k, l, u, c, w);
        const dt = dist(y, tailOff + bo + k, l, u, c, w);
        if (l2) {
          sh += dh * dh;
          st += dt * dt;
        } else {
          sh += dh;
          st += dt;
        }
      }
      if (l2) {
        sh = Math.sqrt(sh);
        st = Math.sqrt(st);
      }
      nh[j] = sh;
      nt[j] = st;
      score[j] = sh + st;
    }
    // cross-entropy with logits -score, target 0
    let mx = -Infinity;
    for (let j = 0; j < G; j++) if (-score[j] > mx) mx = -score[j];
    let se = 0;
    for (let j = 0; j < G; j++) se += Math.exp(-score[j] - mx);
    const lse = mx + Math.log(se);
    lossSum += lse + score[0];
    for (let j = 0; j < G; j++) {
      // dL/dscore_j = -(softmax_j - [j == 0])
      const sm = Math.exp(-score[j] - lse);
      const g = -(sm - (j === 0 ? 1 : 0)) * gradScale;
      if (g === 0) continue;
      const hh = cand[2 * j];
      const tt = cand[2 * j + 1];
      const eh = hh * d;
      const et = tt * d;
      const po = j * 2 * d;
      // d norm / d dist_k: dist_k / norm (L2) or 1 (L1); a zero norm gives no gradient
      const fh = l2 ? (nh[j] > 0 ? g / nh[j] : 0) : g;
      const ft = l2 ? (nt[j] > 0 ? g / nt[j] : 0) : g;
      for (let side = 0; side < 2; side++) {
        const f = side === 0 ? fh : ft;
        if (f === 0) continue;
        const so = side === 0 ? bo : tailOff + bo;
        const pOff = po + side * d;
        const eSelf = side === 0 ? eh : et;
        const eOther = side === 0 ? et : eh;
        for (let k = 0; k < d; k++) {
          const p = P[pOff + k];
          const bi = so + k;
          const diff = p - c[bi];
          const a0 = Math.abs(diff);
          const sg = diff > 0 ? 1 : diff < 0 ? -1 : 0;
          const wk = w[bi];
          let dist: number;
          let dp: number;
          let dw: number;
          if (p >= l[bi] && p <= u[bi]) {
            dist = a0 / wk;
            dp = sg / wk;
            dw = -a0 / (wk * wk);
          } else {
            dist = a0 * wk - 0.5 * (wk - 1) * (wk - 1 / wk);
            dp = sg * wk;
            dw = a0 - 0.5 * (wk - 1 / wk + (wk - 1) * (1 + 1 / (wk * wk)));
          }
          const gd = l2 ? f * dist : f;
          const gp = gd * dp;
          gc[bi] -= gp; // d dist / d c = -d dist / d p
          gw[bi] += gd * dw;
          const gx = useTanh ? gp * (1 - p * p) : gp;
          gBase[eSelf + k] += gx;
          gBump[eOther + k] += gx;
          gTb[to + k] += gx;
        }
      }
    }
  }
  return lossSum;
}

export interface ScoreBatchArgs {
  d: number;
  tanh: boolean;
  order: 1 | 2;
  /** number of candidate entities */
  E: number;
  /** number of queries */
  Q: number;
  /** head side point of candidate x for query q: tanh(headTable[x] + headAdd[q]) */
  headTable: Float32Array;
  /** [Q, d] */
  headAdd: Float32Array;
  /** tail side point of candidate x for query q: tanh(tailTable[x] + tailAdd[q]) */
  tailTable: Float32Array;
  /** [Q, d] */
  tailAdd: Float32Array;
  boxes: BoxTable;
  /** relation of each query [Q] */
  rel: Int32Array;
  /** scores [Q, E] (written) */
  out: Float32Array;
  /**
   * optional: BoxKernels.expRows of headTable / tailTable, for a table scored by many calls (the
   * native AVX-512 tanh runs on them; the results are the same with or without them)
   */
  headExp?: ExpRows | null;
  tailExp?: ExpRows | null;
}

/** exp(2 x) of a [rows, d] table and per row whether it is in range (native kernels, see boxte.cc exp_rows). */
export interface ExpRows {
  exp: Float32Array;
  ok: Uint8Array;
}

/**
 * Scores of Q queries against all entities. A head query (?, r, t, tau) uses headTable = base,
 * headAdd = bump[t] + tb, tailTable = bump, tailAdd = base[t] + tb; a tail query (h, r, ?, tau)
 * uses headTable = bump, headAdd = base[h] + tb, tailTable = base, tailAdd = bump[h] + tb.
 */
export function scoreBatchJs(a: ScoreBatchArgs): void {
  const { d, E, Q, headTable, headAdd, tailTable, tailAdd, out } = a;
  const { l, u, c, w, R } = a.boxes;
  const useTanh = a.tanh;
  const l2 = a.order === 2;
  for (let qi = 0; qi < Q; qi++) {
    const bo = a.rel[qi] * d;
    const to = R * d + bo;
    const qo = qi * d;
    const oo = qi * E;
    for (let x = 0; x < E; x++) {
      const xo = x * d;
      let sh = 0;
      let st = 0;
      for (let k = 0; k < d; k++) {
        let p = headTable[xo + k] + headAdd[qo + k];
        let q = tailTable[xo + k] + tailAdd[qo + k];
        if (useTanh) {
          p = Math.tanh(p);
          q = Math.tanh(q);
        }
        const dh = dist(p, bo + k, l, u, c, w);
        const dt = dist(q, to + k, l, u, c, w);
        if (l2) {
          sh += dh * dh;
          st += dt * dt;
        } else {
          sh += dh;
          st += dt;
        }
      }
      out[oo + x] = l2 ? Math.sqrt(sh) + Math.sqrt(st) : sh + st;
    }
  }
}

// ---- negative sampling ------------------------------------------------------------------------------

/**
 * The quadruples of a split as an open-addressing hash set of integer keys
 * ((r * nT + tau) * E + h) * E + t (exact in a double below 2^53), -1 = empty, linear probing.
 * The native and the TypeScript sampler probe the same table the same way. `filter` is a bit set
 * over the keys' hashes (bit hash mod filter.length * 32 set for every key): a clear bit proves a
 * key absent without touching the table (most corruptions are not facts; the bit set, 16 bits per
 * key, stays in cache where the table does not), a set bit falls back to probing, so lookups give
 * the same answers with or without it.
 */
export interface KeyTable {
  E: number;
  nT: number;
  table: Float64Array;
  /** table.length - 1 (a power of two minus one) */
  mask: number;
  /** bit set of the keys' hashes; its length is a power of two */
  filter: Uint32Array;
}

function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hash of an integer key < 2^53: its two 32-bit halves mixed (twin of key_hash in boxte.cc). */
function keyHash(key: number): number {
  const lo = key % 4294967296 >>> 0;
  const hi = Math.floor(key / 4294967296) >>> 0;
  return mix32((lo ^ Math.imul(hi, 0x85ebca6b)) >>> 0);
}

export function quadKey(E: number, nT: number, h: number, r: number, t: number, tau: number): number {
  return ((r * nT + tau) * E + h) * E + t;
}

export function keyTableHas(kt: KeyTable, key: number): boolean {
  const { table, mask, filter } = kt;
  const hash = keyHash(key);
  const bit = hash & (filter.length * 32 - 1);
  if (((filter[bit >>> 5] >>> (bit & 31)) & 1) === 0) return false;
  for (let i = hash & mask; ; i = (i + 1) & mask) {
    const v = table[i];
    if (v === key) return true;
    if (v < 0) return false;
  }
}

/** Builds the key table of the facts (load factor <= 1/2). */
export function buildKeyTable(E: number, R: number, nT: number, facts: readonly { h: Int32Array; r: Int32Array; t: Int32Array; tau: Int32Array }[]): KeyTable {
  if (R * nT * E * E >= 2 ** 53) throw new Error(`key table: ${E} entities, ${R} relations and ${nT} timestamps exceed 2^53 keys`);
  let n = 0;
  for (const q of facts) n += q.h.length;
  let size = 16;
  while (size < 2 * n) size *= 2;
  const table = new Float64Array(size).fill(-1);
  let words = 1;
  while (words * 32 < 16 * n) words *= 2;
  const filter = new Uint32Array(words);
  const kt: KeyTable = { E, nT, table, mask: size - 1, filter };
  for (const q of facts) {
    for (let i = 0; i < q.h.length; i++) {
      const key = quadKey(E, nT, q.h[i], q.r[i], q.t[i], q.tau[i]);
      const hash = keyHash(key);
      const bit = hash & (words * 32 - 1);
      filter[bit >>> 5] |= 1 << (bit & 31);
      let j = hash & kt.mask;
      while (table[j] >= 0 && table[j] !== key) j = (j + 1) & kt.mask;
      table[j] = key;
    }
  }
  return kt;
}

export interface NegativesArgs {
  /** 32-bit seed of this batch (row i draws from the stream seeded by (seed, i)) */
  seed: number;
  h: Int32Array;
  r: Int32Array;
  t: Int32Array;
  tau: Int32Array;
  /** negatives per positive */
  n: number;
  /** the training facts (a corrupted quadruple found here is redrawn) */
  known: KeyTable;
  /** replacement entities [B * n] and sides [B * n] (1 = tail replaced), written */
  ent: Int32Array;
  tail: Uint8Array;
}

/**
 * Negatives of a batch (spec §1.3: coin-flip side, uniform entity, redrawn while the corrupted
 * quadruple is a training fact; at most 1000 redraws, for degenerate graphs). Row i uses its own
 * splitmix32 stream seeded by (seed, i): rows are independent, so the native twin splits them over
 * threads and both give identical results for any thread count.
 */
export function negativesJs(a: NegativesArgs): void {
  const { h, r, t, tau, n, known, ent, tail } = a;
  const { E, nT } = known;
  const limit = 4294967296 - (4294967296 % E);
  for (let i = 0; i < h.length; i++) {
    let x = (a.seed ^ Math.imul(i + 1, 0x9e3779b9)) | 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    const int = (): number => {
      for (;;) {
        const v = next();
        if (v < limit) return v % E;
      }
    };
    const g = (r[i] * nT + tau[i]) * E;
    for (let j = 0; j < n; j++) {
      const side = next() >>> 31;
      let e = int();
      for (let tries = 0; tries < 1000; tries++) {
        const key = side === 1 ? (g + h[i]) * E + e : (g + e) * E + t[i];
        if (!keyTableHas(known, key)) break;
        e = int();
      }
      ent[i * n + j] = e;
      tail[i * n + j] = side;
    }
  }
}
