/**
 * The tensor: a typed-array storage with a shape, strides and an offset (so reshape, transpose,
 * slice and broadcast are views that copy only when a kernel needs contiguous memory), plus the
 * reverse-mode autograd engine.
 *
 * Autograd: every differentiable op records a `GradNode` on its output when gradients are enabled
 * and an input requires them. `backward()` walks the graph in reverse topological order, calls
 * each node's backward (which works on contiguous Float32Array gradients), accumulates into
 * `.grad` of leaf tensors that require grad, and releases every node it has processed, so the
 * saved activations of a step become garbage as soon as their gradients are computed.
 */

import { kernels } from './kernels/index.js';
import { allocF32, claimF32, isPooled, releaseF32 } from './pool.js';

export type DType = 'f32' | 'i32' | 'i8' | 'u8';
export type Storage = Float32Array | Int32Array | Int8Array | Uint8Array;
export type Shape = readonly number[];

/** A recorded op: its inputs and how to map the output gradient to input gradients. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /**
   * g: contiguous gradient of the output (do not modify it). Returns for each input a
   * contiguous gradient of that input's shape, or null where the input needs none. It may
   * return `g` itself (the engine copies before accumulating into a borrowed array).
   */
  backward(g: Float32Array): (Float32Array | null)[];
}

let gradEnabled = true;

/** Runs fn with gradient recording off (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

function checkShape(shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape ${shapeStr(shape)}: dimensions must be non-negative integers`);
  }
}

function allocStorage(dtype: DType, n: number): Storage {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'i8':
      return new Int8Array(n);
    case 'u8':
      return new Uint8Array(n);
  }
}

function dtypeOf(data: Storage): DType {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Int8Array) return 'i8';
  return 'u8';
}

let nextId = 1;

export class Tensor {
  readonly id: number;
  readonly dtype: DType;
  readonly data: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  /** Whether gradients flow to this tensor (leaf parameters, or results of ops on them). */
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf that requires grad (contiguous, same shape). */
  grad: Tensor | null = null;
  /** The op that produced this tensor (null for leaves and after backward released it). */
  node: GradNode | null = null;
  /** Optional name (parameters carry their checkpoint name). */
  name: string | undefined;

  constructor(data: Storage, shape: Shape, strides?: readonly number[], offset = 0, requiresGrad = false) {
    checkShape(shape);
    this.id = nextId++;
    this.data = data;
    this.dtype = dtypeOf(data);
    this.shape = shape.slice();
    this.strides = strides ? strides.slice() : contiguousStrides(shape);
    this.offset = offset;
    this.requiresGrad = requiresGrad;
    if (strides === undefined && offset === 0 && data.length < shapeSize(shape)) {
      throw new Error(`tensor data has ${data.length} elements but shape ${shapeStr(shape)} needs ${shapeSize(shape)}`);
    }
  }

  // ---- construction ------------------------------------------------------------------------

  static zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
    return new Tensor(allocStorage(dtype, shapeSize(shape)), shape);
  }

  static full(shape: Shape, value: number): Tensor {
    const t = Tensor.zeros(shape);
    t.data.fill(value);
    return t;
  }

  static ones(shape: Shape): Tensor {
    return Tensor.full(shape, 1);
  }

  /** Wraps (no copy) or converts a plain array (copy) into a tensor of the given shape. */
  static from(values: Storage | ArrayLike<number>, shape?: Shape, dtype?: DType): Tensor {
    let data: Storage;
    if (
      values instanceof Float32Array ||
      values instanceof Int32Array ||
      values instanceof Int8Array ||
      values instanceof Uint8Array
    ) {
      data = dtype === undefined || dtype === dtypeOf(values) ? values : convert(values, dtype);
    } else {
      data = allocStorage(dtype ?? 'f32', values.length);
      for (let i = 0; i < values.length; i++) data[i] = values[i];
    }
    const s = shape ?? [data.length];
    if (shapeSize(s) !== data.length) {
      throw new Error(`Tensor.from: ${data.length} values do not fill shape ${shapeStr(s)} (${shapeSize(s)} elements)`);
    }
    return new Tensor(data, s);
  }

  static scalar(v: number): Tensor {
    return new Tensor(Float32Array.of(v), []);
  }

  /** Integer range [0, n) as i32 (or f32). */
  static arange(n: number, dtype: DType = 'i32'): Tensor {
    const t = Tensor.zeros([n], dtype);
    for (let i = 0; i < n; i++) t.data[i] = i;
    return t;
  }

  // ---- basic properties -----------------------------------------------------------------------

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return shapeSize(this.shape);
  }

  /** Size of dimension d (negative counts from the end). */
  dim(d: number): number {
    return this.shape[normAxis(d, this.rank)];
  }

  isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }

  /** Marks this leaf as a trainable parameter. */
  requireGrad(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${shapeStr(this.shape)}${this.name ? `, ${this.name}` : ''})`;
  }

  /** Contiguous f32 storage for this tensor's elements (no copy when already contiguous). */
  f32(): Float32Array {
    if (this.dtype !== 'f32') throw new Error(`expected an f32 tensor, got ${this.dtype} ${shapeStr(this.shape)}`);
    const n = this.size;
    if (this.isContiguous()) {
      const d = this.data as Float32Array;
      return this.offset === 0 && d.length === n ? d : d.subarray(this.offset, this.offset + n);
    }
    return materialize(this) as Float32Array;
  }

  /** Contiguous i32 storage (converting from other integer types when needed). */
  i32(): Int32Array {
    if (this.dtype === 'i32' && this.isContiguous()) {
      const d = this.data as Int32Array;
      return this.offset === 0 && d.length === this.size ? d : d.subarray(this.offset, this.offset + this.size);
    }
    const out = new Int32Array(this.size);
    const src = this.isContiguous() ? this.data.subarray(this.offset, this.offset + this.size) : materialize(this);
    for (let i = 0; i < out.length; i++) out[i] = src[i];
    return out;
  }

  /** A copy of the values as a plain JS array (flat, row-major). */
  toArray(): number[] {
    return Array.from(this.dtype === 'f32' ? this.f32() : this.i32());
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got ${shapeStr(this.shape)}`);
    return this.data[this.offset];
  }

  /** A contiguous, detached copy. */
  clone(): Tensor {
    const src = this.dtype === 'f32' ? this.f32() : this.isContiguous() ? this.data.subarray(this.offset, this.offset + this.size) : materialize(this);
    return new Tensor(src.slice(), this.shape);
  }

  /** The same storage without graph history (gradients do not flow through). */
  detach(): Tensor {
    // the storage now outlives the graph: backward must not recycle it
    if (this.data instanceof Float32Array) producer.delete(this.data);
    return new Tensor(this.data, this.shape, this.strides, this.offset);
  }

  // ---- autograd -------------------------------------------------------------------------------

  /**
   * Back-propagates from this tensor. Without an explicit gradient the tensor must hold one
   * element (a loss) and its gradient is 1. Leaf gradients accumulate across calls until
   * `zeroGrad`. The graph is released as it is processed unless retainGraph is set.
   * `opts.freeActivations`: see BackwardOptions.
   */
  backward(grad?: Tensor | Float32Array, retainGraph = false, opts: BackwardOptions = {}): void {
    let g0: Float32Array;
    if (grad === undefined) {
      if (this.size !== 1) throw new Error(`backward() without a gradient needs a scalar, got ${shapeStr(this.shape)}`);
      g0 = Float32Array.of(1);
    } else {
      g0 = grad instanceof Tensor ? grad.f32() : grad;
      if (g0.length !== this.size) throw new Error(`backward: gradient has ${g0.length} elements, tensor ${shapeStr(this.shape)} has ${this.size}`);
    }
    runBackward(this, g0, retainGraph, opts.freeActivations === true && !retainGraph);
  }
}

export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for a rank-${rank} tensor`);
  return a;
}

function convert(values: Storage, dtype: DType): Storage {
  const out = allocStorage(dtype, values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i];
  return out;
}

/** Copies a strided view of any dtype into fresh contiguous storage (pure TS; used for non-f32). */
function materialize(t: Tensor): Storage {
  const n = t.size;
  const out = allocStorage(t.dtype, n);
  const rank = t.rank;
  if (n === 0) return out;
  const idx = new Array<number>(rank).fill(0);
  let src = t.offset;
  for (let i = 0; i < n; i++) {
    out[i] = t.data[src];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += t.strides[d];
      if (idx[d] < t.shape[d]) break;
      src -= t.strides[d] * t.shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Options of `Tensor.backward`. */
export interface BackwardOptions {
  /**
   * Give the storage of every intermediate tensor of the graph (not the root, not leaves) back
   * to the buffer pool (src/tensor/pool.ts) as soon as the backward pass has gone past the op
   * that produced it, so the next forward reuses warm memory instead of allocating fresh.
   * Only for a caller that reads nothing of the graph after backward but the leaves' gradients
   * (a training step that took the loss value before): any other tensor of the forward, or a
   * view of one, may then hold another step's numbers. Ignored with retainGraph.
   */
  freeActivations?: boolean;
}

/** storage -> id of the recorded op output that allocated it from the pool (views share storage) */
const producer = new WeakMap<Float32Array, number>();

/** Attaches a grad node to `out` when recording is on and any input requires grad. */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], backward: (g: Float32Array) => (Float32Array | null)[]): Tensor {
  if (!gradEnabled) return out;
  let any = false;
  for (const t of inputs) if (t.requiresGrad) any = true;
  if (!any) return out;
  out.requiresGrad = true;
  out.node = { op, inputs, backward };
  if (out.data instanceof Float32Array && isPooled(out.data) && !producer.has(out.data)) producer.set(out.data, out.id);
  return out;
}

interface GradSlot {
  arr: Float32Array;
  /** the slot alone owns arr (a pool array): it goes back to the pool when the slot is done with it */
  owned: boolean;
  /** arr is owned jointly by several slots (add's [g, g]): the slot holds one count in `shared` */
  counted?: boolean;
}

function runBackward(root: Tensor, g0: Float32Array, retainGraph: boolean, freeActivations: boolean): void {
  if (!root.requiresGrad) throw new Error('backward: this tensor does not require grad (no parameter with requiresGrad contributed to it)');
  // reverse topological order via iterative DFS
  const order: Tensor[] = [];
  const seen = new Set<number>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root.id);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c.id)) {
        seen.add(c.id);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  // Pool arrays owned jointly by several slots (a gradient handed to several inputs, as add's
  // [g, g] along the residual stream) -> the number of slots holding them; the last one to let
  // go gives the array back to the pool (before, such arrays were never recycled: ~9 M floats of
  // fresh allocation per small-preset HAT step).
  const shared = new Map<Float32Array, number>();
  const drop = (arr: Float32Array): void => {
    const n = (shared.get(arr) ?? 1) - 1;
    if (n > 0) shared.set(arr, n);
    else {
      shared.delete(arr);
      releaseF32(arr);
    }
  };
  const grads = new Map<number, GradSlot>();
  grads.set(root.id, { arr: g0, owned: false });
  for (let oi = order.length - 1; oi >= 0; oi--) {
    const t = order[oi];
    const slot = grads.get(t.id);
    grads.delete(t.id);
    if (slot === undefined) continue;
    const node = t.node;
    if (node === null) {
      // a leaf that requires grad: accumulate into .grad
      accumulateLeaf(t, slot, shared, drop);
      continue;
    }
    const gin = node.backward(slot.arr);
    if (!retainGraph) t.node = null;
    // slot.arr goes back to the pool after this node unless a gradient handed on shares its memory
    let handedOn = false;
    for (let k = 0; k < node.inputs.length; k++) {
      const inp = node.inputs[k];
      const gi = gin[k];
      if (gi === null || gi === undefined || !inp.requiresGrad) continue;
      if (gi.length !== inp.size) {
        throw new Error(`internal: ${node.op} backward gave ${gi.length} gradient values for input ${k} of shape ${shapeStr(inp.shape)}`);
      }
      const sharesSlot = gi.buffer === slot.arr.buffer;
      if (sharesSlot) handedOn = true;
      // the inputs that take this same array (add's [g, g] gives one array to two inputs)
      let takers = 0;
      let first = -1;
      for (let j = 0; j < gin.length; j++) {
        if (gin[j] === gi && node.inputs[j].requiresGrad) {
          takers++;
          if (first < 0) first = j;
        }
      }
      // whether the slots that take gi hold counts in `shared` (gi a pool array that nothing else owns)
      let counted = false;
      if (gi === slot.arr) {
        counted = slot.counted === true || (slot.owned && takers > 1);
        // the first taker of slot.arr inherits the slot's ownership: the slot's count (if it held
        // one) becomes `takers` counts
        if (counted && k === first) shared.set(gi, (slot.counted === true ? (shared.get(gi) ?? 1) - 1 : 0) + takers);
      } else if (!sharesSlot && gi !== g0 && takers > 1) {
        counted = true;
        if (k === first) shared.set(gi, takers);
      }
      const owned = !counted && takers === 1 && (gi === slot.arr ? slot.owned : !sharesSlot && gi !== g0);
      const prev = grads.get(inp.id);
      if (prev === undefined) {
        grads.set(inp.id, counted ? { arr: gi, owned: false, counted: true } : { arr: gi, owned });
      } else {
        if (!prev.owned) {
          const copy = allocF32(prev.arr.length, false);
          copy.set(prev.arr);
          if (prev.counted === true) drop(prev.arr);
          prev.arr = copy;
          prev.owned = true;
          prev.counted = false;
        }
        addInto(prev.arr, gi);
        if (counted) drop(gi);
        else if (owned) releaseF32(gi);
      }
    }
    if (!handedOn) {
      if (slot.owned) releaseF32(slot.arr);
      else if (slot.counted === true) drop(slot.arr);
    }
    // every consumer of t ran before t (reverse topological order): its storage is free now
    if (freeActivations && t !== root && t.data instanceof Float32Array && producer.get(t.data) === t.id) {
      producer.delete(t.data);
      releaseF32(t.data);
    }
  }
}

function addInto(acc: Float32Array, g: Float32Array): void {
  // acc + 1 * g rounds once, as acc[i] += g[i] does: the same bits on every backend
  kernels().axpy(acc.length, 1, g, acc);
}

function accumulateLeaf(t: Tensor, slot: GradSlot, shared: Map<Float32Array, number>, drop: (arr: Float32Array) => void): void {
  if (t.grad === null) {
    let arr = slot.arr;
    if (slot.counted === true && shared.get(arr) === 1) {
      shared.delete(arr); // the last holder of a jointly owned array: it becomes the leaf's alone
      claimF32(arr);
    } else if (!slot.owned) {
      arr = arr.slice();
      if (slot.counted === true) drop(slot.arr);
    } else claimF32(arr); // now the leaf's .grad: never recycled
    t.grad = new Tensor(arr, t.shape);
  } else {
    addInto(t.grad.data as Float32Array, slot.arr);
    if (slot.owned) releaseF32(slot.arr);
    else if (slot.counted === true) drop(slot.arr);
  }
}
