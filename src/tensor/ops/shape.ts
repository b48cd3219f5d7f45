/**
 * View and layout ops: reshape, permute/transpose, slice, expand, squeeze/unsqueeze, contiguous,
 * concat, split. Views share storage; `contiguous` copies only when needed.
 */
import { kernels } from '../kernels/index.js';
import { Tensor, contiguousStrides, normAxis, record, shapeSize, shapeStr, type Shape } from '../tensor.js';
import { allocF32 } from '../pool.js';

const i32cache = new Map<string, Int32Array>();
/** Small Int32Array for shape/stride arguments (cached per content: kernels only read it). */
export function i32(values: readonly number[]): Int32Array {
  const key = values.join(',');
  let a = i32cache.get(key);
  if (a === undefined) {
    a = Int32Array.from(values);
    if (i32cache.size > 4096) i32cache.clear();
    i32cache.set(key, a);
  }
  return a;
}

/** Contiguous f32 data of a (possibly strided) tensor, materialised with the copy kernel. */
export function contiguousData(t: Tensor): Float32Array {
  if (t.isContiguous()) return t.f32();
  const out = allocF32(t.size, false);
  kernels().copyStrided(i32(t.shape), t.data as Float32Array, t.offset, i32(t.strides), out);
  return out;
}

/** The tensor itself when contiguous, else a contiguous copy (gradient passes through). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous() && t.offset === 0) return t;
  if (t.dtype !== 'f32') return t.clone();
  const out = new Tensor(contiguousData(t), t.shape);
  return record(out, 'contiguous', [t], (g) => [g]);
}

/** Reshape; -1 infers one dimension. A view when the layout allows, else a copy. */
export function reshape(t: Tensor, shape: Shape): Tensor {
  const s = shape.slice();
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = shapeSize(s.filter((_, i) => i !== neg));
    if (rest === 0 || t.size % rest !== 0) throw new Error(`reshape: cannot infer -1 reshaping ${shapeStr(t.shape)} to ${shapeStr(shape)}`);
    s[neg] = t.size / rest;
  }
  if (shapeSize(s) !== t.size) throw new Error(`reshape: ${shapeStr(t.shape)} (${t.size} elements) cannot become ${shapeStr(shape)}`);
  const src = t.isContiguous() ? t : contiguous(t);
  const out = new Tensor(src.data, s, contiguousStrides(s), src.offset);
  return record(out, 'reshape', [src], (g) => [g]);
}

export function flatten(t: Tensor): Tensor {
  return reshape(t, [t.size]);
}

/** Reorders dimensions (a strided view). */
export function permute(t: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== t.rank) throw new Error(`permute: ${dims.length} dims given for a rank-${t.rank} tensor`);
  const d = dims.map((x) => normAxis(x, t.rank));
  if (new Set(d).size !== d.length) throw new Error(`permute: repeated dims [${dims.join(', ')}]`);
  const out = new Tensor(
    t.data,
    d.map((i) => t.shape[i]),
    d.map((i) => t.strides[i]),
    t.offset,
  );
  const inv = new Array<number>(d.length);
  for (let i = 0; i < d.length; i++) inv[d[i]] = i;
  const outShape = out.shape;
  return record(out, 'permute', [t], (g) => {
    // g is contiguous in out's shape; view it with permuted strides back to t's shape
    const gs = contiguousStrides(outShape);
    const gx = allocF32(t.size, false);
    kernels().copyStrided(
      i32(t.shape),
      g,
      0,
      i32(inv.map((i) => gs[i])),
      gx,
    );
    return [gx];
  });
}

/** Swaps two dimensions. */
export function transpose(t: Tensor, a = -2, b = -1): Tensor {
  const r = t.rank;
  const dims = Array.from({ length: r }, (_, i) => i);
  const x = normAxis(a, r);
  const y = normAxis(b, r);
  dims[x] = y;
  dims[y] = x;
  return permute(t, dims);
}

/** The sub-range [start, end) of one axis (a view). */
export function slice(t: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis(axis, t.rank);
  const n = t.shape[ax];
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start > end) {
    throw new Error(`slice: range [${start}, ${end}) out of bounds for axis ${ax} of size ${n} in ${shapeStr(t.shape)}`);
  }
  const shape = t.shape.slice();
  shape[ax] = end - start;
  const out = new Tensor(t.data, shape, t.strides, t.offset + start * t.strides[ax]);
  const inShape = t.shape;
  return record(out, 'slice', [t], (g) => {
    const gx = allocF32(shapeSize(inShape));
    // write g into the [start, end) window of gx
    const outer = shapeSize(inShape.slice(0, ax));
    const inner = shapeSize(inShape.slice(ax + 1));
    const len = end - start;
    for (let o = 0; o < outer; o++) {
      gx.set(g.subarray(o * len * inner, (o + 1) * len * inner), (o * n + start) * inner);
    }
    return [gx];
  });
}

/** Adds a size-1 dimension at `axis`. */
export function unsqueeze(t: Tensor, axis: number): Tensor {
  const ax = axis < 0 ? axis + t.rank + 1 : axis;
  if (ax < 0 || ax > t.rank) throw new Error(`unsqueeze: axis ${axis} out of range for rank ${t.rank}`);
  const s = t.shape.slice();
  s.splice(ax, 0, 1);
  return reshape(t, s);
}

/** Removes a size-1 dimension. */
export function squeeze(t: Tensor, axis: number): Tensor {
  const ax = normAxis(axis, t.rank);
  if (t.shape[ax] !== 1) throw new Error(`squeeze: axis ${ax} has size ${t.shape[ax]}, not 1, in ${shapeStr(t.shape)}`);
  const s = t.shape.slice();
  s.splice(ax, 1);
  return reshape(t, s);
}

/** The broadcast shape of two shapes (numpy rules), or a clear error. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that view t as `shape` (stride 0 on broadcast dimensions). */
export function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const r = shape.length;
  const off = r - t.rank;
  const s = new Array<number>(r).fill(0);
  for (let i = 0; i < t.rank; i++) s[off + i] = t.shape[i] === 1 && shape[off + i] !== 1 ? 0 : t.strides[i];
  return s;
}

/**
 * Sums a contiguous gradient of `from` shape down to `to` shape (the reverse of broadcasting).
 * Returns g itself when no reduction is needed.
 */
export function sumToShape(g: Float32Array, from: Shape, to: Shape): Float32Array {
  if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
  const k = kernels();
  let cur = g;
  let shape = from.slice();
  const lead = from.length - to.length;
  // collapse leading dims not present in `to`
  if (lead > 0) {
    const len = shapeSize(shape.slice(0, lead));
    const inner = shapeSize(shape.slice(lead));
    const out = allocF32(inner, false);
    k.reduce(0, cur, out, 1, len, inner, null);
    cur = out;
    shape = shape.slice(lead);
  }
  for (let d = 0; d < shape.length; d++) {
    if (to[d] === 1 && shape[d] !== 1) {
      const outer = shapeSize(shape.slice(0, d));
      const inner = shapeSize(shape.slice(d + 1));
      const out = allocF32(outer * inner, false);
      k.reduce(0, cur, out, outer, shape[d], inner, null);
      cur = out;
      shape[d] = 1;
    }
  }
  return cur;
}

/** Broadcasts to a larger shape (a stride-0 view). */
export function expand(t: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(t.shape, shape, 'expand');
  if (target.length !== shape.length || target.some((d, i) => d !== shape[i])) {
    throw new Error(`expand: ${shapeStr(t.shape)} cannot expand to ${shapeStr(shape)}`);
  }
  const out = new Tensor(t.data, shape, broadcastStrides(t, shape), t.offset);
  const inShape = t.shape;
  return record(out, 'expand', [t], (g) => [sumToShape(g, shape, inShape)]);
}

/** Concatenates along an axis. */
export function concat(ts: readonly Tensor[], axis: number): Tensor {
  if (ts.length === 0) throw new Error('concat: no tensors');
  const r = ts[0].rank;
  const ax = normAxis(axis, r);
  for (const t of ts) {
    if (t.rank !== r || t.shape.some((d, i) => i !== ax && d !== ts[0].shape[i])) {
      throw new Error(`concat: shapes ${ts.map((x) => shapeStr(x.shape)).join(', ')} differ outside axis ${ax}`);
    }
  }
  const shape = ts[0].shape.slice();
  shape[ax] = ts.reduce((s, t) => s + t.shape[ax], 0);
  const outer = shapeSize(shape.slice(0, ax));
  const inner = shapeSize(shape.slice(ax + 1));
  const out = allocF32(shapeSize(shape), false);
  const total = shape[ax];
  let at = 0;
  const starts: number[] = [];
  for (const t of ts) {
    const d = contiguousData(t);
    const w = t.shape[ax] * inner;
    for (let o = 0; o < outer; o++) out.set(d.subarray(o * w, (o + 1) * w), (o * total + at) * inner);
    starts.push(at);
    at += t.shape[ax];
  }
  return record(new Tensor(out, shape), 'concat', ts, (g) =>
    ts.map((t, i) => {
      if (!t.requiresGrad) return null;
      const w = t.shape[ax] * inner;
      const gx = allocF32(t.size, false);
      for (let o = 0; o < outer; o++) gx.set(g.subarray((o * total + starts[i]) * inner, (o * total + starts[i]) * inner + w), o * w);
      return gx;
    }),
  );
}

/** Splits along an axis into pieces of the given sizes (views). */
export function split(t: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const ax = normAxis(axis, t.rank);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== t.shape[ax]) throw new Error(`split: sizes [${sizes.join(', ')}] sum to ${total}, axis ${ax} of ${shapeStr(t.shape)} has ${t.shape[ax]}`);
  const out: Tensor[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(slice(t, ax, at, at + s));
    at += s;
  }
  return out;
}
