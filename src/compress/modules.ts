/**
 * Finding and replacing the Linear layers of any model built from src/nn (HAT, the Llama-style
 * model, an MLP): a walk over the model object's own properties and arrays. A layer's name is its
 * weight's parameter name without `.weight` (`model.layers.0.mlp.up_proj`), so it matches the
 * checkpoint by construction.
 *
 * Name patterns (`--include` / `--exclude`): globs over full weight names where `*` matches any
 * run of characters (dots included); a pattern written `/.../` is a regular expression.
 */
import { Tensor } from '../tensor/index.js';
import { Linear } from '../nn/index.js';

export interface LinearSite {
  /** the layer's name (its weight's parameter name without `.weight`) */
  name: string;
  /** full parameter name of the weight */
  weightName: string;
  linear: Linear;
  /** the object or array holding the layer, and its key there */
  parent: object;
  key: string | number;
}

/** Every Linear reachable from `model` through own properties and arrays (each once, in walk order). */
export function findLinears(model: object): LinearSite[] {
  const out: LinearSite[] = [];
  const seen = new Set<object>();
  const walk = (obj: object, path: string): void => {
    if (seen.has(obj)) return;
    seen.add(obj);
    const entries: [string | number, unknown][] = Array.isArray(obj) ? obj.map((v, i) => [i, v]) : Object.entries(obj);
    for (const [key, v] of entries) {
      if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof Tensor || v instanceof Map || v instanceof Set) continue;
      const p = path === '' ? String(key) : `${path}.${key}`;
      if (v instanceof Linear) {
        if (seen.has(v)) continue;
        seen.add(v);
        const weightName = v.weight.name ?? `${p}.weight`;
        out.push({ name: weightName.replace(/\.weight$/, ''), weightName, linear: v, parent: obj, key });
      } else {
        walk(v, p);
      }
    }
  };
  walk(model, '');
  return out;
}

/** Replaces the layer at a site (e.g. a Linear by a PackedLinear with the same `forward`). */
export function replaceAt(site: LinearSite, replacement: object): void {
  Reflect.set(site.parent, site.key, replacement);
}

function globToRegExp(pattern: string): RegExp {
  if (pattern.length >= 2 && pattern.startsWith('/') && pattern.endsWith('/')) return new RegExp(pattern.slice(1, -1));
  const esc = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${esc}$`);
}

/** Embeddings and output heads stay unquantized by default (as the study). */
export const DEFAULT_EXCLUDE: readonly string[] = Object.freeze(['*embed*', '*lm_head*', 'output.weight', '*.output.weight', '*wte*', '*wpe*']);

export interface NameFilter {
  include?: readonly string[];
  exclude?: readonly string[];
}

/** A predicate over weight names: matches some include pattern (default all) and no exclude pattern (default DEFAULT_EXCLUDE). */
export function nameFilter(f: NameFilter = {}): (name: string) => boolean {
  const inc = (f.include ?? ['*']).map(globToRegExp);
  const exc = (f.exclude ?? DEFAULT_EXCLUDE).map(globToRegExp);
  return (name) => inc.some((r) => r.test(name)) && !exc.some((r) => r.test(name));
}

/**
 * Wraps one Linear's forward for this instance only (hooks, fake quantization); returns a function
 * restoring the previous forward. `make` receives the forward being replaced.
 */
export function overrideForward(lin: Linear, make: (prev: (x: Tensor) => Tensor) => (x: Tensor) => Tensor): () => void {
  const own = Object.getOwnPropertyDescriptor(lin, 'forward');
  const prev = lin.forward.bind(lin);
  lin.forward = make(prev);
  return () => {
    if (own !== undefined) Object.defineProperty(lin, 'forward', own);
    else Reflect.deleteProperty(lin, 'forward');
  };
}
