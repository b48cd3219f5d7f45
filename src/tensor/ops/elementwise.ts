/**
 * Elementwise ops with broadcasting: each op's forward and backward side by side.
 */
import { BinaryOp, UnaryOp, kernels } from '../kernels/index.js';
import { Tensor, record, shapeSize, type Shape } from '../tensor.js';
import { allocF32 } from '../pool.js';
import { broadcastShapes, broadcastStrides, contiguousData, i32, sumToShape } from './shape.js';

export type Operand = Tensor | number;

function asTensor(x: Operand): Tensor {
  return typeof x === 'number' ? Tensor.scalar(x) : x;
}

function requireF32(t: Tensor, op: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: expected f32 tensors, got ${t.dtype} ${t.toString()}`);
}

/** Raw broadcasting binary kernel call producing a new contiguous tensor (no autograd). */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, name: string): Tensor {
  requireF32(a, name);
  requireF32(b, name);
  const shape = broadcastShapes(a.shape, b.shape, name);
  const out = allocF32(shapeSize(shape), false);
  kernels().binary(
    op,
    i32(shape),
    a.data as Float32Array,
    a.offset,
    i32(broadcastStrides(a, shape)),
    b.data as Float32Array,
    b.offset,
    i32(broadcastStrides(b, shape)),
    out,
  );
  return new Tensor(out, shape);
}

/** Contiguous f32 data of t broadcast to `shape` (a copy only when t is broadcast or strided). */
function expandedData(t: Tensor, shape: Shape): Float32Array {
  if (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return contiguousData(t);
  const out = new Float32Array(shapeSize(shape));
  kernels().copyStrided(i32(shape), t.data as Float32Array, t.offset, i32(broadcastStrides(t, shape)), out);
  return out;
}

function mulRaw(x: Float32Array, y: Float32Array): Float32Array {
  const out = allocF32(x.length, false);
  const s = i32([x.length]);
  const one = i32([1]);
  kernels().binary(BinaryOp.Mul, s, x, 0, one, y, 0, one, out);
  return out;
}

export function add(a: Operand, b: Operand): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw(BinaryOp.Add, ta, tb, 'add');
  return record(out, 'add', [ta, tb], (g) => [
    ta.requiresGrad ? sumToShape(g, out.shape, ta.shape) : null,
    tb.requiresGrad ? sumToShape(g, out.shape, tb.shape) : null,
  ]);
}

export function sub(a: Operand, b: Operand): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw(BinaryOp.Sub, ta, tb, 'sub');
  return record(out, 'sub', [ta, tb], (g) => {
    let gb: Float32Array | null = null;
    if (tb.requiresGrad) {
      const neg = allocF32(g.length, false);
      kernels().affine(g, neg, g.length, -1, 0);
      gb = sumToShape(neg, out.shape, tb.shape);
    }
    return [ta.requiresGrad ? sumToShape(g, out.shape, ta.shape) : null, gb];
  });
}

export function mul(a: Operand, b: Operand): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw(BinaryOp.Mul, ta, tb, 'mul');
  return record(out, 'mul', [ta, tb], (g) => [
    ta.requiresGrad ? sumToShape(mulRaw(g, expandedData(tb, out.shape)), out.shape, ta.shape) : null,
    tb.requiresGrad ? sumToShape(mulRaw(g, expandedData(ta, out.shape)), out.shape, tb.shape) : null,
  ]);
}

export function div(a: Operand, b: Operand): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw(BinaryOp.Div, ta, tb, 'div');
  return record(out, 'div', [ta, tb], (g) => {
    const bd = expandedData(tb, out.shape);
    let ga: Float32Array | null = null;
    let gb: Float32Array | null = null;
    if (ta.requiresGrad) {
      const x = allocF32(g.length, false);
      for (let i = 0; i < g.length; i++) x[i] = g[i] / bd[i];
      ga = sumToShape(x, out.shape, ta.shape);
    }
    if (tb.requiresGrad) {
      const y = out.data as Float32Array;
      const x = allocF32(g.length, false);
      for (let i = 0; i < g.length; i++) x[i] = (-g[i] * y[i]) / bd[i];
      gb = sumToShape(x, out.shape, tb.shape);
    }
    return [ga, gb];
  });
}

/** Elementwise max/min; the gradient goes to the selected input (to a on ties). */
function minmax(a: Operand, b: Operand, op: BinaryOp.Max | BinaryOp.Min, name: string): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = binaryRaw(op, ta, tb, name);
  return record(out, name, [ta, tb], (g) => {
    const ad = expandedData(ta, out.shape);
    const y = out.data as Float32Array;
    const gaFull = allocF32(g.length);
    const gbFull = allocF32(g.length);
    for (let i = 0; i < g.length; i++) {
      if (ad[i] === y[i]) gaFull[i] = g[i];
      else gbFull[i] = g[i];
    }
    return [
      ta.requiresGrad ? sumToShape(gaFull, out.shape, ta.shape) : null,
      tb.requiresGrad ? sumToShape(gbFull, out.shape, tb.shape) : null,
    ];
  });
}

export function maximum(a: Operand, b: Operand): Tensor {
  return minmax(a, b, BinaryOp.Max, 'maximum');
}

export function minimum(a: Operand, b: Operand): Tensor {
  return minmax(a, b, BinaryOp.Min, 'minimum');
}

/** 1 where a > b else 0 (no gradient). */
export function gt(a: Operand, b: Operand): Tensor {
  return binaryRaw(BinaryOp.Gt, asTensor(a), asTensor(b), 'gt');
}

/** 1 where a == b else 0 (no gradient). */
export function eq(a: Operand, b: Operand): Tensor {
  return binaryRaw(BinaryOp.Eq, asTensor(a), asTensor(b), 'eq');
}

/** x * alpha + beta in one pass. */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  requireF32(x, 'affine');
  const xd = contiguousData(x);
  const out = allocF32(x.size, false);
  if (alpha === 0) out.fill(beta);
  else kernels().affine(xd, out, x.size, alpha, beta);
  return record(new Tensor(out, x.shape), 'affine', [x], (g) => {
    const gx = allocF32(g.length, false);
    kernels().affine(g, gx, g.length, alpha, 0);
    return [gx];
  });
}

export function scale(x: Tensor, s: number): Tensor {
  return affine(x, s, 0);
}

function unary(op: UnaryOp, name: string) {
  return (x: Tensor): Tensor => {
    requireF32(x, name);
    const xd = contiguousData(x);
    const out = allocF32(x.size, false);
    kernels().unary(op, xd, out, x.size);
    return record(new Tensor(out, x.shape), name, [x], (g) => {
      const gx = allocF32(g.length, false);
      kernels().unaryBackward(op, xd, out, g, gx, g.length, false);
      return [gx];
    });
  };
}

export const neg = unary(UnaryOp.Neg, 'neg');
export const exp = unary(UnaryOp.Exp, 'exp');
export const log = unary(UnaryOp.Log, 'log');
export const sqrt = unary(UnaryOp.Sqrt, 'sqrt');
export const rsqrt = unary(UnaryOp.Rsqrt, 'rsqrt');
export const silu = unary(UnaryOp.Silu, 'silu');
export const gelu = unary(UnaryOp.Gelu, 'gelu');
export const geluTanh = unary(UnaryOp.GeluTanh, 'geluTanh');
export const tanh = unary(UnaryOp.Tanh, 'tanh');
export const elu = unary(UnaryOp.Elu, 'elu');
export const relu = unary(UnaryOp.Relu, 'relu');
export const sigmoid = unary(UnaryOp.Sigmoid, 'sigmoid');
export const abs = unary(UnaryOp.Abs, 'abs');
export const square = unary(UnaryOp.Square, 'square');
export const reciprocal = unary(UnaryOp.Recip, 'reciprocal');

/**
 * Selects a where cond != 0 else b (cond broadcasts; it gets no gradient). Unselected values
 * never leak (unlike arithmetic masking, -Infinity or NaN in the other branch is fine).
 */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, 'where'), tb.shape, 'where');
  const n = shapeSize(shape);
  const c = cond.dtype === 'f32' ? expandedData(cond, shape) : expandedData(castF32(cond), shape);
  const ad = expandedData(ta, shape);
  const bd = expandedData(tb, shape);
  const out = allocF32(n, false);
  for (let i = 0; i < n; i++) out[i] = c[i] !== 0 ? ad[i] : bd[i];
  return record(new Tensor(out, shape), 'where', [ta, tb], (g) => {
    const ga = allocF32(n);
    const gb = allocF32(n);
    for (let i = 0; i < n; i++) {
      if (c[i] !== 0) ga[i] = g[i];
      else gb[i] = g[i];
    }
    return [ta.requiresGrad ? sumToShape(ga, shape, ta.shape) : null, tb.requiresGrad ? sumToShape(gb, shape, tb.shape) : null];
  });
}

/** An f32 copy of an integer tensor (no gradient). */
export function castF32(t: Tensor): Tensor {
  if (t.dtype === 'f32') return t;
  return new Tensor(Float32Array.from(t.i32()), t.shape);
}

/** x ** p for a constant exponent p. */
export function pow(x: Tensor, p: number): Tensor {
  requireF32(x, 'pow');
  const xd = contiguousData(x);
  const out = allocF32(x.size, false);
  for (let i = 0; i < out.length; i++) out[i] = Math.pow(xd[i], p);
  return record(new Tensor(out, x.shape), 'pow', [x], (g) => {
    const gx = allocF32(g.length, p === 0);
    if (p !== 0) for (let i = 0; i < g.length; i++) gx[i] = g[i] * p * Math.pow(xd[i], p - 1);
    return [gx];
  });
}
