/**
 * Unstructured pruning per component (each weight matrix on its own), as the divergent-token
 * paper's baseline, plus Wanda (Sun et al. 2023): score |W_ij| * ||X_j||_2 where ||X_j|| is the
 * L2 norm of input feature j over calibration tokens, pruned per output row.
 *
 * Exactness: magnitude pruning zeroes exactly round(s * numel) weights of the matrix; Wanda zeroes
 * exactly round(s * cols) weights in every row. Ties are broken by position (lowest index first),
 * so results are deterministic. Masks are kept: `PruneMasks.apply()` after each optimizer step
 * keeps pruned weights at zero during further training.
 */
import { Tensor, noGrad } from '../tensor/index.js';
import { findLinears, nameFilter, overrideForward, type NameFilter } from './modules.js';

/** Indices of the k smallest scores (ties: lowest index first). */
function smallestK(score: Float32Array | Float64Array, k: number): Int32Array {
  const n = score.length;
  const out = new Int32Array(k);
  if (k === 0) return out;
  const sorted = Float64Array.from(score).sort();
  const t = sorted[k - 1];
  let m = 0;
  for (let i = 0; i < n && m < k; i++) if (score[i] < t) out[m++] = i;
  for (let i = 0; i < n && m < k; i++) if (score[i] === t) out[m++] = i;
  return out;
}

function checkSparsity(s: number): void {
  if (!(s >= 0 && s <= 1)) throw new Error(`sparsity must be in [0, 1], got ${s}`);
}

/** Keep-mask (1 = keep) zeroing exactly round(s * n) weights of smallest magnitude. */
export function magnitudeMask(w: Float32Array, sparsity: number): Uint8Array {
  checkSparsity(sparsity);
  const score = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) score[i] = Math.abs(w[i]);
  const mask = new Uint8Array(w.length).fill(1);
  for (const i of smallestK(score, Math.round(sparsity * w.length))) mask[i] = 0;
  return mask;
}

/** Wanda keep-mask: per output row, zero the round(s * cols) weights with the smallest |w| * norm[col]. */
export function wandaMask(w: Float32Array, rows: number, cols: number, inputNorm: Float32Array, sparsity: number): Uint8Array {
  checkSparsity(sparsity);
  if (inputNorm.length !== cols) throw new Error(`wanda: ${inputNorm.length} input norms for ${cols} columns`);
  const mask = new Uint8Array(w.length).fill(1);
  const k = Math.round(sparsity * cols);
  const score = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) score[c] = Math.abs(w[r * cols + c]) * inputNorm[c];
    for (const c of smallestK(score, k)) mask[r * cols + c] = 0;
  }
  return mask;
}

/**
 * Per-Linear input-feature L2 norms over everything `run` feeds through the model: each selected
 * Linear's forward is wrapped for the duration (instance override, removed afterwards).
 */
export function collectInputNorms(model: object, run: () => void, filter: NameFilter = {}): Map<string, Float32Array> {
  const keep = nameFilter(filter);
  const sums = new Map<string, Float64Array>();
  const restore: (() => void)[] = [];
  try {
    for (const site of findLinears(model)) {
      if (!keep(site.weightName)) continue;
      const lin = site.linear;
      const acc = new Float64Array(lin.inFeatures);
      sums.set(site.weightName, acc);
      restore.push(
        overrideForward(lin, (prev) => (x: Tensor): Tensor => {
          const d = x.f32();
          const K = lin.inFeatures;
          for (let i = 0; i < d.length; i += K) for (let j = 0; j < K; j++) acc[j] += d[i + j] * d[i + j];
          return prev(x);
        }),
      );
    }
    noGrad(run);
  } finally {
    for (const r of restore.reverse()) r();
  }
  const out = new Map<string, Float32Array>();
  for (const [n, s] of sums) out.set(n, Float32Array.from(s, Math.sqrt));
  return out;
}

export interface PruneOptions extends NameFilter {
  sparsity: number;
  method: 'magnitude' | 'wanda';
  /** Wanda: input norms by weight name (collectInputNorms) */
  inputNorms?: ReadonlyMap<string, Float32Array>;
}

/** Pruning masks of a model's weights, re-applied after optimizer steps to keep them pruned. */
export class PruneMasks {
  readonly masks = new Map<string, { weight: Tensor; mask: Uint8Array }>();

  add(name: string, weight: Tensor, mask: Uint8Array): void {
    if (mask.length !== weight.size) throw new Error(`mask for "${name}" has ${mask.length} entries, weight has ${weight.size}`);
    this.masks.set(name, { weight, mask });
  }

  /** Zeroes the pruned weights (in place). Call after each optimizer step. */
  apply(): void {
    for (const { weight, mask } of this.masks.values()) {
      const d = weight.data as Float32Array;
      for (let i = 0; i < mask.length; i++) if (mask[i] === 0) d[weight.offset + i] = 0;
    }
  }

  /** Fraction of masked weights over all masked tensors. */
  sparsity(): number {
    let z = 0;
    let n = 0;
    for (const { mask } of this.masks.values()) {
      n += mask.length;
      for (let i = 0; i < mask.length; i++) z += mask[i] === 0 ? 1 : 0;
    }
    return n === 0 ? 0 : z / n;
  }
}

/** Mask for one [rows, cols] weight by the chosen method. */
export function pruneMask(name: string, w: Float32Array, rows: number, cols: number, opts: PruneOptions): Uint8Array {
  if (opts.method === 'magnitude') return magnitudeMask(w, opts.sparsity);
  const norm = opts.inputNorms?.get(name);
  if (norm === undefined) throw new Error(`wanda: no calibration input norms for "${name}"`);
  return wandaMask(w, rows, cols, norm, opts.sparsity);
}

/** Prunes the selected Linear weights of a model in place; returns the masks to keep them pruned. */
export function pruneModel(model: object, opts: PruneOptions): PruneMasks {
  const keep = nameFilter(opts);
  const masks = new PruneMasks();
  for (const site of findLinears(model)) {
    if (!keep(site.weightName)) continue;
    const w = site.linear.weight;
    masks.add(site.weightName, w, pruneMask(site.weightName, w.f32(), w.shape[0], w.shape[1], opts));
  }
  masks.apply();
  return masks;
}
