/**
 * Divergent Token Metrics (Deiseroth et al., NAACL 2024), model-agnostic core.
 *
 * The base model F greedily continues a prompt for N units; the compressed model F' is run
 * teacher-forced over prompt + continuation, giving its argmax at every continuation position.
 *   FDT = the first continuation index whose argmax differs from F's unit (N if none): 0..N.
 *   SDT = the number of continuation positions whose argmax differs (share = SDT / N).
 * Up to the first mismatch, teacher forcing feeds F' exactly the prefixes its own free-running
 * greedy generation would see, so FDT is also where F''s greedy text first departs from F's.
 *
 * Units are whatever the model predicts (bytes for HAT, tokens for a token model). For HAT the
 * word-level variant counts a word as divergent when any of its bytes is.
 * The paper's exact equations were not available; this follows ../shared/specs/compression.md §1.2.
 */

/** Divergence of one sample: `ref` = F's continuation units, `pred` = F''s teacher-forced argmax at those positions. */
export interface Divergence {
  /** first divergent position, `length` when none */
  fdt: number;
  /** number of divergent positions */
  sdt: number;
  /** number of compared positions (N) */
  length: number;
}

export function divergence(ref: ArrayLike<number>, pred: ArrayLike<number>): Divergence {
  if (ref.length !== pred.length) throw new Error(`divergence: reference has ${ref.length} units, prediction ${pred.length}`);
  let fdt = ref.length;
  let sdt = 0;
  for (let i = 0; i < ref.length; i++) {
    if (ref[i] !== pred[i]) {
      sdt++;
      if (fdt === ref.length) fdt = i;
    }
  }
  return { fdt, sdt, length: ref.length };
}

/**
 * Word-level divergence: positions are grouped into consecutive words of the given byte lengths
 * (which must sum to the number of positions); a word diverges when any of its positions does.
 */
export function wordDivergence(ref: ArrayLike<number>, pred: ArrayLike<number>, wordLengths: readonly number[]): Divergence {
  if (ref.length !== pred.length) throw new Error(`wordDivergence: reference has ${ref.length} units, prediction ${pred.length}`);
  const total = wordLengths.reduce((a, b) => a + b, 0);
  if (total !== ref.length) throw new Error(`wordDivergence: word lengths sum to ${total}, expected ${ref.length}`);
  let fdt = wordLengths.length;
  let sdt = 0;
  let pos = 0;
  wordLengths.forEach((len, w) => {
    if (len <= 0) throw new Error(`wordDivergence: word ${w} has length ${len}`);
    let differs = false;
    for (let i = pos; i < pos + len; i++) if (ref[i] !== pred[i]) differs = true;
    if (differs) {
      sdt++;
      if (fdt === wordLengths.length) fdt = w;
    }
    pos += len;
  });
  return { fdt, sdt, length: wordLengths.length };
}

/** The argmax of each row of `logits` ([rows, cols] row-major); ties go to the lowest index. */
export function argmaxRows(logits: ArrayLike<number>, rows: number, cols: number): Int32Array {
  if (logits.length < rows * cols) throw new Error(`argmaxRows: ${logits.length} values for ${rows}x${cols}`);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bv = logits[r * cols];
    for (let c = 1; c < cols; c++) {
      const v = logits[r * cols + c];
      if (v > bv || (Number.isNaN(bv) && !Number.isNaN(v))) {
        bv = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/**
 * Mean over rows of KL(P || Q) in nats, P = softmax(p), Q = softmax(q) (base vs compressed
 * logits, [rows, cols]), computed in float64.
 */
export function meanKl(p: ArrayLike<number>, q: ArrayLike<number>, rows: number, cols: number): number {
  if (rows === 0) return 0;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let pm = -Infinity;
    let qm = -Infinity;
    for (let c = 0; c < cols; c++) {
      pm = Math.max(pm, p[o + c]);
      qm = Math.max(qm, q[o + c]);
    }
    let ps = 0;
    let qs = 0;
    for (let c = 0; c < cols; c++) {
      ps += Math.exp(p[o + c] - pm);
      qs += Math.exp(q[o + c] - qm);
    }
    const plse = pm + Math.log(ps);
    const qlse = qm + Math.log(qs);
    let kl = 0;
    for (let c = 0; c < cols; c++) {
      const lp = p[o + c] - plse;
      const pv = Math.exp(lp);
      if (pv > 0) kl += pv * (lp - (q[o + c] - qlse));
    }
    total += Math.max(0, kl);
  }
  return total / rows;
}

/**
 * The p-th percentile (0..100) of `xs` with linear interpolation between closest ranks (numpy's
 * default): rank = p/100 * (n - 1).
 */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile: p must be in [0, 100], got ${p}`);
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export interface DtmSummary {
  samples: number;
  fdt_mean: number;
  fdt_median: number;
  fdt_p25: number;
  fdt_p75: number;
  sdt_mean: number;
  /** total divergent positions / total compared positions */
  sdt_share: number;
  /** mean compared length (N) */
  length_mean: number;
}

export function summarize(ds: readonly Divergence[]): DtmSummary {
  const fdts = ds.map((d) => d.fdt);
  const n = ds.length;
  const totalLen = ds.reduce((a, d) => a + d.length, 0);
  const totalSdt = ds.reduce((a, d) => a + d.sdt, 0);
  return {
    samples: n,
    fdt_mean: n ? fdts.reduce((a, b) => a + b, 0) / n : Number.NaN,
    fdt_median: percentile(fdts, 50),
    fdt_p25: percentile(fdts, 25),
    fdt_p75: percentile(fdts, 75),
    sdt_mean: n ? totalSdt / n : Number.NaN,
    sdt_share: totalLen ? totalSdt / totalLen : Number.NaN,
    length_mean: n ? totalLen / n : Number.NaN,
  };
}

// ---------------------------------------------------------------------------------------------
// Text-level variant (free-running outputs of both models compared as unit sequences), as the
// OpenVINO who_what_benchmark computes it with difflib.SequenceMatcher: FDT = size of the matching
// block at (0, 0), SDT = len(pred) - total size of the matching blocks. Not the paper's
// teacher-forced metric; offered for comparison.

interface Block {
  a: number;
  b: number;
  size: number;
}

/** Longest common contiguous block of a[alo:ahi] and b[blo:bhi]; earliest in a, then b, on ties (difflib's rule, no junk heuristic). */
function longestMatch(a: ArrayLike<number>, b: ArrayLike<number>, alo: number, ahi: number, blo: number, bhi: number): Block {
  let best: Block = { a: alo, b: blo, size: 0 };
  let prev = new Int32Array(bhi - blo + 1);
  let cur = new Int32Array(bhi - blo + 1);
  for (let i = alo; i < ahi; i++) {
    for (let j = blo; j < bhi; j++) {
      const k = a[i] === b[j] ? prev[j - blo] + 1 : 0;
      cur[j - blo + 1] = k;
      if (k > best.size) best = { a: i - k + 1, b: j - k + 1, size: k };
    }
    [prev, cur] = [cur, prev];
    cur.fill(0);
  }
  return best;
}

/** Matching blocks of a and b (difflib.SequenceMatcher.get_matching_blocks without junk), in order. */
export function matchingBlocks(a: ArrayLike<number>, b: ArrayLike<number>): Block[] {
  const out: Block[] = [];
  const stack: [number, number, number, number][] = [[0, a.length, 0, b.length]];
  while (stack.length > 0) {
    const [alo, ahi, blo, bhi] = stack.pop() as [number, number, number, number];
    const m = longestMatch(a, b, alo, ahi, blo, bhi);
    if (m.size === 0) continue;
    out.push(m);
    if (alo < m.a && blo < m.b) stack.push([alo, m.a, blo, m.b]);
    if (m.a + m.size < ahi && m.b + m.size < bhi) stack.push([m.a + m.size, ahi, m.b + m.size, bhi]);
  }
  out.sort((x, y) => x.a - y.a || x.b - y.b);
  return out;
}

/** Text-level FDT/SDT of a free-running prediction `pred` against the reference `ref`. */
export function textLevelDivergence(ref: ArrayLike<number>, pred: ArrayLike<number>): Divergence {
  const blocks = matchingBlocks(ref, pred);
  const first = blocks.find((m) => m.a === 0 && m.b === 0);
  const matched = blocks.reduce((s, m) => s + m.size, 0);
  return { fdt: first ? first.size : 0, sdt: pred.length - matched, length: pred.length };
}

export { logSoftmaxAt } from '../nn/logprob.js';
