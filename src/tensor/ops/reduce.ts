/**
 * Reductions over axes: sum, mean, max (with argmax), each with its backward.
 */
import { ReduceOp, kernels } from '../kernels/index.js';
import { Tensor, normAxis, record, shapeSize, type Shape } from '../tensor.js';
import { allocF32 } from '../pool.js';
import { contiguousData, i32 } from './shape.js';

function normAxes(axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normAxis(a, rank)))].sort((a, b) => a - b);
  return out;
}

function reducedShape(shape: Shape, axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (axes.includes(i)) {
      if (keepdim) out.push(1);
    } else out.push(shape[i]);
  }
  return out;
}

/** Sums over the given axes (all when omitted). */
export function sum(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  if (x.dtype !== 'f32') throw new Error(`sum: expected f32, got ${x.dtype}`);
  const ax = normAxes(axes, x.rank);
  const k = kernels();
  let cur = contiguousData(x);
  const shape = x.shape.slice();
  // reduce the highest axes first so indices of lower axes stay valid
  for (let j = ax.length - 1; j >= 0; j--) {
    const a = ax[j];
    const outer = shapeSize(shape.slice(0, a));
    const inner = shapeSize(shape.slice(a + 1));
    const out = new Float32Array(outer * inner);
    k.reduce(ReduceOp.Sum, cur, out, outer, shape[a], inner, null);
    cur = out;
    shape[a] = 1;
  }
  if (ax.length === 0) cur = cur.slice();
  const outShape = reducedShape(x.shape, ax, keepdim);
  const inShape = x.shape;
  return record(new Tensor(cur, outShape), 'sum', [x], (g) => {
    // broadcast g (shape with 1s at reduced axes) back to the input shape
    const keptShape = reducedShape(inShape, ax, true);
    const strides: number[] = new Array<number>(inShape.length);
    let acc = 1;
    for (let i = inShape.length - 1; i >= 0; i--) {
      strides[i] = keptShape[i] === 1 && inShape[i] !== 1 ? 0 : acc;
      acc *= keptShape[i];
    }
    const gx = allocF32(shapeSize(inShape), false);
    kernels().copyStrided(i32(inShape), g, 0, i32(strides), gx);
    return [gx];
  });
}

/** Mean over the given axes (all when omitted). */
export function mean(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  const ax = normAxes(axes, x.rank);
  let n = 1;
  for (const a of ax) n *= x.shape[a];
  const s = sum(x, ax, keepdim);
  const out = new Float32Array(s.size);
  const sd = s.f32();
  for (let i = 0; i < out.length; i++) out[i] = sd[i] / n;
  return record(new Tensor(out, s.shape), 'mean', [s], (g) => {
    const gs = allocF32(g.length, false);
    for (let i = 0; i < g.length; i++) gs[i] = g[i] / n;
    return [gs];
  });
}

/** Max over one axis; the gradient flows to the first maximal element. */
export function max(x: Tensor, axis: number, keepdim = false): Tensor {
  return maxWithIndex(x, axis, keepdim).values;
}

/** Max and argmax (i32) over one axis. */
export function maxWithIndex(x: Tensor, axis: number, keepdim = false): { values: Tensor; indices: Tensor } {
  if (x.dtype !== 'f32') throw new Error(`max: expected f32, got ${x.dtype}`);
  const a = normAxis(axis, x.rank);
  const outer = shapeSize(x.shape.slice(0, a));
  const len = x.shape[a];
  const inner = shapeSize(x.shape.slice(a + 1));
  if (len === 0) throw new Error(`max: axis ${a} of ${x.toString()} is empty`);
  const out = new Float32Array(outer * inner);
  const idx = new Int32Array(outer * inner);
  kernels().reduce(ReduceOp.Max, contiguousData(x), out, outer, len, inner, idx);
  const outShape = reducedShape(x.shape, [a], keepdim);
  const values = record(new Tensor(out, outShape), 'max', [x], (g) => {
    const gx = allocF32(x.size);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) gx[(o * len + idx[o * inner + j]) * inner + j] = g[o * inner + j];
    }
    return [gx];
  });
  return { values, indices: new Tensor(idx, outShape) };
}

/** Argmax over one axis (i32, no gradient); ties go to the lowest index. */
export function argmax(x: Tensor, axis = -1, keepdim = false): Tensor {
  return maxWithIndex(x, axis, keepdim).indices;
}
