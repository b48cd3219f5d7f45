/**
 * Quantization-aware training: each selected Linear's forward uses the fake-quantized weight
 * qdq(W) with a straight-through estimator (forward value qdq(W), gradient passed to W unchanged:
 * the study's `w + (qdq(w) - w).detach()`). Block scales are recomputed on every forward pass.
 *
 * The study's recipe: train normally, then `enableQat` fits the k-means centroids once on the
 * current weights and keeps them fixed (`refitEvery: 0`, the default); `refitEvery: n` refits them
 * every n calls of `step()` (the study's optional `buffer_update_interval`). `pack()` turns the
 * QAT model into PackedLinear layers with the same centroids, so the packed model computes what
 * QAT trained.
 *
 * `tfree train --qat kmeans4` plugs in as: `const q = enableQat(model, 'kmeans4')` after the
 * warm-up steps, `q.step()` after each optimizer step, `q.pack()` (or save with quantizeModel's
 * codebooks) at the end.
 */
import { Tensor, linear, record } from '../tensor/index.js';
import { FORMAT_RULES, formatNameForRules, parseFormat, type FormatOptions, type QuantFormat } from './format.js';
import { findLinears, nameFilter, overrideForward, type LinearSite, type NameFilter } from './modules.js';
import { fitBlockFor, quantizeModel } from './checkpoint.js';
import { fakeQuantize, quantizeCodes, type PackedMatrix } from './quantize.js';

/** Fake quantization with a straight-through estimator: value qdq(w), d/dw = identity. */
export function fakeQuantSTE(w: Tensor, f: QuantFormat, codebook: Float32Array | null, name = '<weight>'): Tensor {
  if (w.rank !== 2) throw new Error(`fake quantization of "${name}": expected a 2-D weight, got [${w.shape.join(', ')}]`);
  const q = fakeQuantize(w.f32(), w.shape[0], w.shape[1], f, { name, codebook });
  return record(new Tensor(q, w.shape), 'fake_quant', [w], (g) => [g]);
}

export interface QatOptions extends NameFilter, FormatOptions {
  /** refit k-means centroids every n `step()` calls (0: fitted once, then fixed; default 0) */
  refitEvery?: number;
  /** k-means seed prefix */
  seed?: number | string;
  /** fit k-means on at most this many values per tensor (default 2^20) */
  maxSamples?: number;
}

/** Serializable QAT state (see QatHandle.state). */
export interface QatState {
  format: string;
  /** quantization rules version (FORMAT_RULES; absent in states written before it = 1) */
  rules?: number;
  steps: number;
  codebooks: Record<string, number[]>;
}

interface QatLayer {
  site: LinearSite;
  /** the handle's format with the block reduced to divide this weight's row length */
  format: QuantFormat;
  codebook: Float32Array | null;
  restore: () => void;
}

export class QatHandle {
  readonly format: QuantFormat;
  private readonly layers: QatLayer[];
  private readonly opts: QatOptions;
  private steps = 0;
  private active = true;

  constructor(format: QuantFormat, layers: QatLayer[], opts: QatOptions) {
    this.format = format;
    this.layers = layers;
    this.opts = opts;
  }

  /** Names of the fake-quantized weights. */
  names(): string[] {
    return this.layers.map((l) => l.site.weightName);
  }

  /** The block size each weight is fake-quantized with, by weight name. */
  blockSizes(): Map<string, number> {
    return new Map(this.layers.map((l) => [l.site.weightName, l.format.blockSize]));
  }

  /** The fixed k-means codebooks by weight name (empty for other formats). */
  codebooks(): Map<string, Float32Array> {
    const m = new Map<string, Float32Array>();
    for (const l of this.layers) if (l.codebook !== null) m.set(l.site.weightName, l.codebook);
    return m;
  }

  /** Refits the k-means centroids on the current weights. */
  refit(): void {
    if (this.format.kind !== 'kmeans') return;
    for (const l of this.layers) l.codebook = fitCodebook(l.site, l.format, this.opts);
  }

  /** Call after each optimizer step (refits when `refitEvery` is due). */
  step(): void {
    this.steps++;
    const every = this.opts.refitEvery ?? 0;
    if (every > 0 && this.steps % every === 0) this.refit();
  }

  /** The state `step()` and the forward passes depend on (JSON; float32 centroids round-trip exactly). */
  state(): QatState {
    const codebooks: Record<string, number[]> = {};
    for (const l of this.layers) if (l.codebook !== null) codebooks[l.site.weightName] = Array.from(l.codebook);
    return { format: this.format.name, rules: FORMAT_RULES, steps: this.steps, codebooks };
  }

  /** Restores `state()` (e.g. when a training run resumes); throws naming a weight that does not fit. */
  loadState(s: QatState): void {
    const was = formatNameForRules(s.format, s.rules ?? 1);
    if (was !== this.format.name) throw new Error(`QAT state is for format ${was}${was !== s.format ? ` (written as ${s.format} under quantization rules 1)` : ''}, this run uses ${this.format.name}`);
    if (!Number.isSafeInteger(s.steps) || s.steps < 0) throw new Error(`QAT state: bad step count ${String(s.steps)}`);
    for (const l of this.layers) {
      if (l.codebook === null) continue;
      const c = s.codebooks[l.site.weightName];
      if (!Array.isArray(c) || c.length !== l.codebook.length) throw new Error(`QAT state: no ${l.codebook.length}-entry codebook for "${l.site.weightName}"`);
      l.codebook = Float32Array.from(c);
    }
    this.steps = s.steps;
  }

  /** Restores the plain forward passes. */
  remove(): void {
    if (!this.active) return;
    for (const l of this.layers) l.restore();
    this.active = false;
  }

  /** Removes fake quantization and swaps the layers for PackedLinear with QAT's codebooks. */
  pack(model: object): Map<string, PackedMatrix> {
    const codebooks = this.codebooks();
    this.remove();
    const names = new Set(this.names());
    return quantizeModel(model, this.format, { include: [...names].map((n) => `/^${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$/`), exclude: [], codebooks, seed: this.opts.seed, maxSamples: this.opts.maxSamples });
  }
}

function fitCodebook(site: LinearSite, f: QuantFormat, opts: QatOptions): Float32Array {
  const w = site.linear.weight;
  const seed = opts.seed === undefined ? site.weightName : `${opts.seed}:${site.weightName}`;
  return quantizeCodes(w.f32(), w.shape[0], w.shape[1], f, { name: site.weightName, seed, maxSamples: opts.maxSamples }).levels;
}

/**
 * Wraps the selected Linear layers of a model for QAT in the given format (`kmeans4`, `int2`,
 * `bin1`, `ternary`, ...). k-means centroids are fitted now, on the current weights. A weight
 * whose row length the block does not divide gets the largest power-of-two block below it that
 * does (fitBlock; `blockSizes()` lists them), as `tfree quantize` does.
 */
export function enableQat(model: object, spec: string | QuantFormat, opts: QatOptions = {}): QatHandle {
  const f = typeof spec === 'string' ? parseFormat(spec, opts) : spec;
  const keep = nameFilter(opts);
  const layers: QatLayer[] = [];
  for (const site of findLinears(model)) {
    if (!keep(site.weightName)) continue;
    const shape = site.linear.weight.shape;
    if (shape.length !== 2) throw new Error(`QAT of "${site.weightName}": expected a 2-D weight, got [${shape.join(', ')}]`);
    const lf = fitBlockFor(f, shape[1], site.weightName);
    const layer: QatLayer = { site, format: lf, codebook: f.kind === 'kmeans' ? fitCodebook(site, lf, opts) : null, restore: () => undefined };
    const lin = site.linear;
    layer.restore = overrideForward(lin, () => (x: Tensor): Tensor => linear(x, fakeQuantSTE(lin.weight, lf, layer.codebook, site.weightName), lin.bias));
    layers.push(layer);
  }
  return new QatHandle(f, layers, opts);
}
