/**
 * The parameter store and the path-scoped parameter builder.
 *
 * `ParamStore` owns every parameter of a model under its full dotted name, in creation order.
 * `VarBuilder` (the candle-nn idea) is a store plus a name prefix: a layer receives a builder
 * already scoped to its own path and asks for `vb.get('weight', shape, init)`; a model builds
 * sub-layers with `vb.pp('layers').pp(i).pp('self_attn')`. Parameter names therefore equal the
 * Hugging Face checkpoint names by construction (`model.layers.0.self_attn.q_proj.weight`), and
 * loading a checkpoint is a name lookup, not a mapping table.
 */
import { Tensor, freshF32, recycleF32, shapeSize, shapeStr, type Shape } from '../tensor/index.js';
import type { Init } from './init.js';
import { Rng } from './rng.js';

/** What a checkpoint source may return for a name: raw values, or values with their shape. */
export type LoadValue = Float32Array | { readonly data: Float32Array; readonly shape: readonly number[] } | Tensor;

/** A checkpoint source: a lookup function, a Map or a plain record from names to values. */
export type LoadSource =
  | ((name: string, expectedShape: readonly number[]) => LoadValue | undefined)
  | ReadonlyMap<string, LoadValue>
  | Readonly<Record<string, LoadValue>>;

export interface LoadOptions {
  /** throw on missing parameters and on unexpected source names (default true) */
  strict?: boolean;
  /**
   * All names the source holds (needed to report unexpected names when the source is a
   * function; Maps and records list their own names).
   */
  sourceNames?: Iterable<string>;
  /** source names to ignore when reporting unexpected ones (e.g. `rotary_emb.inv_freq`) */
  ignoreUnexpected?: (name: string) => boolean;
  /** parameters allowed to be missing even in strict mode (e.g. a tied `lm_head.weight`) */
  allowMissing?: (name: string) => boolean;
}

export interface LoadReport {
  loaded: string[];
  missing: string[];
  unexpected: string[];
}

/** A saveable record entry; structurally the `{dtype, shape, data}` entry safetensors writers take. */
export interface F32Record {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

/** Selects parameters: a dotted path prefix (`model.layers.0` matches that module's params), a RegExp, or a predicate. */
export type ParamSelector = string | RegExp | ((name: string, t: Tensor) => boolean);

function matchesPrefix(name: string, prefix: string): boolean {
  if (prefix === '') return true;
  if (prefix.endsWith('.')) return name.startsWith(prefix);
  return name === prefix || name.startsWith(prefix + '.');
}

function selectorFn(sel: ParamSelector): (name: string, t: Tensor) => boolean {
  if (typeof sel === 'string') return (n) => matchesPrefix(n, sel);
  if (sel instanceof RegExp) return (n) => sel.test(n);
  return sel;
}

function describeSelector(sel: ParamSelector): string {
  return typeof sel === 'string' ? `prefix "${sel}"` : sel instanceof RegExp ? `pattern ${String(sel)}` : 'predicate';
}

function isF32Record(v: unknown): v is { data: Float32Array; shape: readonly number[] } {
  return typeof v === 'object' && v !== null && 'data' in v && 'shape' in v && (v as { data: unknown }).data instanceof Float32Array;
}

/** The values and (when known) shape of a load value. */
function unpack(v: LoadValue): { data: Float32Array; shape: readonly number[] | null } {
  if (v instanceof Float32Array) return { data: v, shape: null };
  if (v instanceof Tensor) {
    if (v.dtype !== 'f32') throw new Error(`expected an f32 tensor, got ${v.toString()}`);
    return { data: v.f32(), shape: v.shape };
  }
  if (isF32Record(v)) return { data: v.data, shape: v.shape };
  throw new Error('unsupported value (expected a Float32Array, a {data, shape} record or an f32 Tensor)');
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export class ParamStore {
  private readonly params = new Map<string, Tensor>();

  /** Registers a tensor under a full name (it becomes a trainable leaf named `name`). */
  add(name: string, t: Tensor): Tensor {
    if (name === '') throw new Error('ParamStore.add: empty parameter name');
    if (this.params.has(name)) throw new Error(`ParamStore.add: parameter "${name}" already exists`);
    if (t.dtype !== 'f32') throw new Error(`ParamStore.add: parameter "${name}" must be f32, got ${t.dtype}`);
    if (!t.isContiguous() || t.offset !== 0 || t.data.length !== t.size) {
      throw new Error(`ParamStore.add: parameter "${name}" must own contiguous storage (pass a clone)`);
    }
    if (t.node !== null) throw new Error(`ParamStore.add: parameter "${name}" must be a leaf tensor (detach it first)`);
    t.name = name;
    t.requiresGrad = true;
    this.params.set(name, t);
    return t;
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  /** The parameter with this full name; throws naming similar parameters when absent. */
  get(name: string): Tensor {
    const t = this.params.get(name);
    if (t === undefined) {
      const parent = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '';
      const near = this.names().filter((n) => matchesPrefix(n, parent)).slice(0, 8);
      throw new Error(`ParamStore: no parameter "${name}"${near.length > 0 ? ` (under "${parent}": ${near.join(', ')})` : ` (${this.params.size} parameters in the store)`}`);
    }
    return t;
  }

  /** The parameter or undefined. */
  tryGet(name: string): Tensor | undefined {
    return this.params.get(name);
  }

  get size(): number {
    return this.params.size;
  }

  names(): string[] {
    return [...this.params.keys()];
  }

  /** [name, tensor] pairs in creation order. */
  entries(): [string, Tensor][] {
    return [...this.params.entries()];
  }

  /** The parameters that currently require grad. */
  trainable(): [string, Tensor][] {
    return this.entries().filter(([, t]) => t.requiresGrad);
  }

  /** The parameters matching a selector. */
  select(sel: ParamSelector): [string, Tensor][] {
    const f = selectorFn(sel);
    return this.entries().filter(([n, t]) => f(n, t));
  }

  /**
   * Stops gradients to the selected parameters (and drops their current grads). A string or
   * RegExp that matches nothing throws (a typo guard). Returns how many were frozen.
   */
  freeze(sel: ParamSelector): number {
    return this.setTrainable(sel, false, 'freeze');
  }

  /** Makes the selected parameters trainable again. Returns how many matched. */
  unfreeze(sel: ParamSelector): number {
    return this.setTrainable(sel, true, 'unfreeze');
  }

  private setTrainable(sel: ParamSelector, on: boolean, what: string): number {
    const hits = this.select(sel);
    if (hits.length === 0 && typeof sel !== 'function') throw new Error(`ParamStore.${what}: no parameter matches ${describeSelector(sel)}`);
    for (const [, t] of hits) {
      t.requiresGrad = on;
      if (!on) t.grad = null;
    }
    return hits.length;
  }

  /** Number of scalar parameters (all, or only trainable ones). */
  numParams(trainableOnly = false): number {
    let n = 0;
    for (const t of this.params.values()) if (!trainableOnly || t.requiresGrad) n += t.size;
    return n;
  }

  /** Drops every accumulated gradient (set to null, as PyTorch's set_to_none). */
  /**
   * The first parameter holding a NaN or an infinity (name, count of such values, size), or
   * undefined when all are finite. A model loaded with one would give NaN results.
   */
  firstNonFinite(): { name: string; count: number; size: number } | undefined {
    for (const [name, t] of this.params) {
      const d = t.f32();
      let count = 0;
      for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) count++;
      if (count > 0) return { name, count, size: d.length };
    }
    return undefined;
  }

  /**
   * Drops every gradient (`.grad = null`). With `recycle`, their storage goes back to the buffer
   * pool for the next backward to reuse (no fresh allocation per step): only when nothing still
   * holds a previous `.grad` tensor (the trainer's loop; a kept one would be overwritten).
   */
  zeroGrad(opts: { recycle?: boolean } = {}): void {
    for (const t of this.params.values()) {
      if (opts.recycle === true && t.grad !== null && t.grad.data instanceof Float32Array) recycleF32(t.grad.data);
      t.grad = null;
    }
  }

  /**
   * Copies values from a checkpoint into the existing parameters (in place: the tensors, and
   * any optimizer state keyed on them, stay the same objects). A shape or size mismatch always
   * throws naming the tensor; missing parameters and unexpected source names throw in strict
   * mode (default) and are reported otherwise.
   */
  loadFrom(source: LoadSource, opts: LoadOptions = {}): LoadReport {
    const strict = opts.strict ?? true;
    let lookup: (name: string, shape: readonly number[]) => LoadValue | undefined;
    let sourceNames: Iterable<string> | undefined = opts.sourceNames;
    if (typeof source === 'function') lookup = source;
    else if (source instanceof Map) {
      const m = source as ReadonlyMap<string, LoadValue>;
      lookup = (n) => m.get(n);
      sourceNames ??= m.keys();
    } else {
      const rec = source as Readonly<Record<string, LoadValue>>;
      lookup = (n) => (Object.prototype.hasOwnProperty.call(rec, n) ? rec[n] : undefined);
      sourceNames ??= Object.keys(rec);
    }
    const report: LoadReport = { loaded: [], missing: [], unexpected: [] };
    const pending: [Tensor, Float32Array][] = [];
    for (const [name, t] of this.params) {
      const v = lookup(name, t.shape);
      if (v === undefined) {
        if (!(opts.allowMissing?.(name) ?? false)) report.missing.push(name);
        continue;
      }
      let u: { data: Float32Array; shape: readonly number[] | null };
      try {
        u = unpack(v);
      } catch (e) {
        throw new Error(`loadFrom: tensor "${name}": ${(e as Error).message}`);
      }
      if (u.shape !== null && !sameShape(u.shape, t.shape)) {
        throw new Error(`loadFrom: shape mismatch for "${name}": checkpoint has ${shapeStr(u.shape)}, model expects ${shapeStr(t.shape)}`);
      }
      if (u.data.length !== t.size) {
        throw new Error(`loadFrom: size mismatch for "${name}": checkpoint has ${u.data.length} values, model expects ${shapeStr(t.shape)} = ${t.size}`);
      }
      pending.push([t, u.data]);
      report.loaded.push(name);
    }
    if (sourceNames !== undefined) {
      for (const n of sourceNames) {
        if (!this.params.has(n) && !(opts.ignoreUnexpected?.(n) ?? false)) report.unexpected.push(n);
      }
    }
    if (strict && (report.missing.length > 0 || report.unexpected.length > 0)) {
      const parts: string[] = [];
      const list = (xs: string[]): string => xs.slice(0, 20).join(', ') + (xs.length > 20 ? `, ... (${xs.length} in all)` : '');
      if (report.missing.length > 0) parts.push(`missing from the checkpoint: ${list(report.missing)}`);
      if (report.unexpected.length > 0) parts.push(`unexpected in the checkpoint: ${list(report.unexpected)}`);
      throw new Error(`loadFrom (strict): ${parts.join('; ')}`);
    }
    // write only after every check passed, so a failed load leaves the model unchanged
    for (const [t, d] of pending) (t.data as Float32Array).set(d);
    return report;
  }

  /** name -> {dtype: 'F32', shape, data} for saving (data shares the parameters' storage). */
  toRecord(): Record<string, F32Record> {
    const out: Record<string, F32Record> = {};
    for (const [n, t] of this.params) out[n] = { dtype: 'F32', shape: t.shape.slice(), data: t.f32() };
    return out;
  }
}

export interface VarBuilderOptions {
  /** seed or generator for initialisation (default seed 0); each parameter uses rng.fork(fullName) */
  rng?: Rng | number | string;
  /** initialiser used when `get` is called without one (and by layers that default to it) */
  defaultInit?: Init;
  /**
   * Values to take instead of initialising (candle's "VarBuilder from safetensors"): when it
   * has a tensor of that name, the parameter is created from it (shape-checked). A fresh
   * (unnamed, leaf, contiguous f32) Tensor of exactly the requested shape becomes the parameter
   * itself (no copy); any other value is copied.
   */
  source?: (name: string, expectedShape: readonly number[]) => LoadValue | undefined;
}

/** A parameter store plus a dotted name prefix. */
export class VarBuilder {
  readonly store: ParamStore;
  readonly prefix: string;
  readonly rng: Rng;
  readonly defaultInit: Init | undefined;
  private readonly source: VarBuilderOptions['source'];

  constructor(store: ParamStore = new ParamStore(), opts: VarBuilderOptions = {}, prefix = '') {
    this.store = store;
    this.prefix = prefix;
    this.rng = opts.rng instanceof Rng ? opts.rng : new Rng(opts.rng ?? 0);
    this.defaultInit = opts.defaultInit;
    this.source = opts.source;
  }

  /** A builder for the sub-path `<prefix>.<name>` (numbers for list indices: `pp('layers').pp(0)`). */
  pp(name: string | number): VarBuilder {
    const s = String(name);
    if (s === '' || s.startsWith('.') || s.endsWith('.')) throw new Error(`VarBuilder.pp: invalid path component "${s}"`);
    return new VarBuilder(this.store, { rng: this.rng, defaultInit: this.defaultInit, source: this.source }, this.path(s));
  }

  /** The same path with a different default initialiser. */
  withInit(init: Init | undefined): VarBuilder {
    return new VarBuilder(this.store, { rng: this.rng, defaultInit: init, source: this.source }, this.prefix);
  }

  /** The full name of `name` under this prefix. */
  path(name: string): string {
    return this.prefix === '' ? name : `${this.prefix}.${name}`;
  }

  /**
   * The parameter `<prefix>.<name>`: created (from the source, else by `init`, else the default
   * initialiser) on first use, returned as is (shape-checked) afterwards, which is how weights
   * are tied.
   */
  get(name: string, shape: Shape, init?: Init): Tensor {
    const full = this.path(name);
    const existing = this.store.tryGet(full);
    if (existing !== undefined) {
      if (!sameShape(existing.shape, shape)) {
        throw new Error(`VarBuilder: parameter "${full}" exists with shape ${shapeStr(existing.shape)}, requested ${shapeStr(shape)}`);
      }
      return existing;
    }
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`VarBuilder: invalid shape ${shapeStr(shape)} for "${full}"`);
    }
    const v = this.source?.(full, shape);
    if (v instanceof Tensor && v.name === undefined && v.node === null && v.dtype === 'f32' && v.isContiguous() && v.offset === 0 && v.data.length === shapeSize(shape) && sameShape(v.shape, shape)) {
      // a fresh, unnamed tensor of exactly this shape is adopted without a copy (lazy loaders
      // read each checkpoint tensor straight into its final buffer)
      return this.store.add(full, v);
    }
    const data = freshF32(shapeSize(shape));
    if (v !== undefined) {
      const u = unpack(v);
      if (u.shape !== null && !sameShape(u.shape, shape)) {
        throw new Error(`VarBuilder: shape mismatch for "${full}": source has ${shapeStr(u.shape)}, model expects ${shapeStr(shape)}`);
      }
      if (u.data.length !== data.length) {
        throw new Error(`VarBuilder: size mismatch for "${full}": source has ${u.data.length} values, model expects ${shapeStr(shape)}`);
      }
      data.set(u.data);
    } else {
      const f = init ?? this.defaultInit;
      if (f === undefined) throw new Error(`VarBuilder: no initialiser for "${full}" (pass one, or set defaultInit)`);
      f(data, shape, this.rng.fork(full));
    }
    return this.store.add(full, new Tensor(data, shape));
  }
}
