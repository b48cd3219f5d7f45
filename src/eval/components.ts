/**
 * Components of a model for per-component compression: every Linear weight selected by the name
 * filter (default: all but embeddings and output head), with a (group, kind) label for the
 * sensitivity heatmap, and in-memory compression of any subset (pruning and fake quantization
 * in place, undone by the returned restore function).
 *
 * A compression of one component is `{sparsity}` (magnitude pruning of that matrix to the given
 * share of zeros) or `{format}` (a weight format of ../compress, weights replaced by their
 * quantize-dequantize values: the numbers a packed checkpoint's kernel multiplies with, up to
 * float rounding of the product). Block size: the requested one when it divides the row length,
 * else the largest power of two below it that does (e.g. 32 for rows of 352).
 */
import { findLinears, nameFilter, type NameFilter } from '../compress/modules.js';
import { blockFor, formatSize, parseFormat, type QuantFormat } from '../compress/format.js';
import { fakeQuantize } from '../compress/quantize.js';
import { magnitudeMask } from '../compress/prune.js';
import type { Linear } from '../nn/index.js';

export { blockFor };

export interface Component {
  /** full weight name (checkpoint tensor name) */
  name: string;
  /** heatmap row, e.g. `encoder.0`, `backbone.1`, `decoder.0`, `connector` */
  group: string;
  /** heatmap column, e.g. `q`, `k`, `v`, `o`, `gate`, `up`, `down`, `xq` .. `xo` (cross-attention) */
  kind: string;
  rows: number;
  cols: number;
  params: number;
  linear: Linear;
}

/** Short (group, kind) label of a weight name (generic fallback: group = name prefix, kind = last part). */
export function componentLabel(name: string): { group: string; kind: string } {
  const base = name.replace(/\.weight$/, '');
  const proj = /(?:^|\.)(q|k|v|o|gate|up|down)_proj$/.exec(base);
  const kind0 = proj ? proj[1] : base.split('.').pop() ?? base;
  const cross = /cross_attention/.test(base);
  const kind = cross && proj ? `x${kind0}` : kind0;
  const layer = /(?:^|\.)(encoder|backbone|decoder|model)\.(?:layers|decoder_layers)\.(\d+)\./.exec(base);
  if (layer) return { group: `${layer[1] === 'model' ? 'layer' : layer[1]}.${layer[2]}`, kind };
  if (/encoder_connector/.test(base)) return { group: 'connector', kind };
  const parts = base.split('.');
  return { group: parts.length > 1 ? parts.slice(0, -1).join('.') : base, kind };
}

/** The compressible components of a model, in walk order. */
export function listComponents(model: object, filter: NameFilter = {}): Component[] {
  const keep = nameFilter(filter);
  return findLinears(model)
    .filter((s) => keep(s.weightName))
    .map((s) => {
      const [rows, cols] = s.linear.weight.shape;
      return { name: s.weightName, ...componentLabel(s.weightName), rows, cols, params: rows * cols, linear: s.linear };
    });
}

/** How one component is compressed. */
export interface ComponentCompression {
  /** share of the matrix's weights zeroed by magnitude */
  sparsity?: number;
  /** weight format name (`int8`, `kmeans4`, `bin1`, ...; `f32` = unchanged) */
  format?: string;
  /** block size (default: the caller's block, reduced to divide the row length) */
  block?: number;
}

/** The format object for a component (block adjusted to its row length); null for `f32`. */
export function componentFormat(c: { cols: number }, format: string, block = 64): QuantFormat | null {
  if (format === 'f32' || format === 'none') return null;
  return parseFormat(format, { blockSize: blockFor(c.cols, block) });
}

/** Effective bits per weight of a component in a format (32 for f32). */
export function componentBits(c: { rows: number; cols: number }, format: string, block = 64): number {
  const f = componentFormat(c, format, block);
  return f === null ? 32 : formatSize(f, c.rows, c.cols).bitsPerWeight;
}

/**
 * Compresses the named components in place; returns a function that restores the original
 * weights. Quantization comes after pruning when both are given (the zeros stay zeros only when
 * the format can represent them; it is meant for one or the other).
 */
export function applyCompression(components: readonly Component[], plan: ReadonlyMap<string, ComponentCompression> | Record<string, ComponentCompression>, opts: { block?: number; seed?: string } = {}): () => void {
  const entries = plan instanceof Map ? [...plan.entries()] : Object.entries(plan);
  const byName = new Map(components.map((c) => [c.name, c]));
  const saved: { data: Float32Array; offset: number; orig: Float32Array }[] = [];
  const restore = (): void => {
    for (const s of saved.reverse()) s.data.set(s.orig, s.offset);
    saved.length = 0;
  };
  try {
    for (const [name, cc] of entries) {
      const c = byName.get(name);
      if (c === undefined) throw new Error(`no component "${name}" in the model`);
      const w = c.linear.weight;
      const data = w.data as Float32Array;
      const orig = data.slice(w.offset, w.offset + c.params);
      let cur: Float32Array = orig;
      if (cc.sparsity !== undefined && cc.sparsity > 0) {
        const mask = magnitudeMask(cur, cc.sparsity);
        cur = Float32Array.from(cur, (v, i) => (mask[i] === 0 ? 0 : v));
      }
      if (cc.format !== undefined) {
        const f = componentFormat(c, cc.format, cc.block ?? opts.block ?? 64);
        if (f !== null) cur = fakeQuantize(cur, c.rows, c.cols, f, { name, seed: opts.seed === undefined ? name : `${opts.seed}:${name}` });
      }
      if (cur === orig) continue;
      saved.push({ data, offset: w.offset, orig });
      data.set(cur, w.offset);
    }
  } catch (e) {
    restore();
    throw e;
  }
  return restore;
}
