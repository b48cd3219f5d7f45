/**
 * Fused ops that models use as single units: softmax / log-softmax, RMSNorm, LayerNorm,
 * embedding gather (scatter-add gradient), index-select, cross-entropy with ignore-index, RoPE.
 */
import { kernels } from '../kernels/index.js';
import { Tensor, normAxis, record, shapeSize, shapeStr } from '../tensor.js';
import { allocF32 } from '../pool.js';
import { contiguousData, permute } from './shape.js';

function lastAxisRows(x: Tensor, op: string): { rows: number; cols: number } {
  if (x.dtype !== 'f32') throw new Error(`${op}: expected f32, got ${x.toString()}`);
  if (x.rank === 0) throw new Error(`${op}: needs at least one dimension`);
  const cols = x.shape[x.rank - 1];
  return { rows: cols === 0 ? 0 : x.size / cols, cols };
}

/** Moves `axis` last (a view), applies fn over the last axis, and moves it back. */
function onAxis(x: Tensor, axis: number, fn: (t: Tensor) => Tensor): Tensor {
  const a = normAxis(axis, x.rank);
  if (a === x.rank - 1) return fn(x);
  const dims = Array.from({ length: x.rank }, (_, i) => i);
  dims.splice(a, 1);
  dims.push(a);
  const inv = new Array<number>(x.rank);
  for (let i = 0; i < dims.length; i++) inv[dims[i]] = i;
  return permute(fn(permute(x, dims)), inv);
}

function softmaxImpl(x: Tensor, log: boolean): Tensor {
  const name = log ? 'logSoftmax' : 'softmax';
  const { rows, cols } = lastAxisRows(x, name);
  const xd = contiguousData(x);
  const out = allocF32(x.size, false);
  kernels().softmax(xd, out, rows, cols, log);
  return record(new Tensor(out, x.shape), name, [x], (g) => {
    const gx = allocF32(g.length, false);
    kernels().softmaxBackward(out, g, gx, rows, cols, log, false);
    return [gx];
  });
}

/** Softmax over an axis (last by default). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return onAxis(x, axis, (t) => softmaxImpl(t, false));
}

/** Log-softmax over an axis (last by default). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return onAxis(x, axis, (t) => softmaxImpl(t, true));
}

/** RMSNorm over the last axis with weight w [cols]. */
export function rmsNorm(x: Tensor, w: Tensor, eps = 1e-6): Tensor {
  const { rows, cols } = lastAxisRows(x, 'rmsNorm');
  if (w.rank !== 1 || w.shape[0] !== cols) throw new Error(`rmsNorm: weight ${shapeStr(w.shape)} does not match last dim ${cols} of ${shapeStr(x.shape)}`);
  const xd = contiguousData(x);
  const wd = w.f32();
  const out = allocF32(x.size, false);
  const rstd = new Float32Array(rows);
  kernels().rmsnorm(xd, wd, out, rstd, rows, cols, eps);
  return record(new Tensor(out, x.shape), 'rmsNorm', [x, w], (g) => {
    const gx = allocF32(g.length, false);
    const gw = w.requiresGrad ? allocF32(cols) : null; // accumulated over the rows
    kernels().rmsnormBackward(xd, wd, rstd, g, gx, gw, rows, cols, false);
    return [x.requiresGrad ? gx : null, gw];
  });
}

/**
 * SwiGLU's gate product silu(gate) * up of two same-shaped tensors: the same values and
 * gradients, bit for bit, as mul(silu(gate), up), in one kernel pass each way and without keeping
 * silu(gate) for the backward.
 */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (gate.dtype !== 'f32' || up.dtype !== 'f32') throw new Error(`swiglu: expected f32 tensors, got ${gate.toString()} and ${up.toString()}`);
  if (gate.rank !== up.rank || gate.shape.some((d, i) => d !== up.shape[i])) {
    throw new Error(`swiglu: gate ${shapeStr(gate.shape)} and up ${shapeStr(up.shape)} differ in shape`);
  }
  const n = gate.size;
  const gd = contiguousData(gate);
  const ud = contiguousData(up);
  const out = allocF32(n, false);
  kernels().swiglu(gd, ud, out, n);
  return record(new Tensor(out, gate.shape), 'swiglu', [gate, up], (g) => {
    const gGate = allocF32(n, false);
    const gUp = allocF32(n, false);
    kernels().swigluBackward(gd, ud, g, gGate, gUp, n);
    return [gate.requiresGrad ? gGate : null, up.requiresGrad ? gUp : null];
  });
}

/** LayerNorm over the last axis; w and b optional ([cols]). */
export function layerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps = 1e-5): Tensor {
  const { rows, cols } = lastAxisRows(x, 'layerNorm');
  for (const p of [w, b]) {
    if (p && (p.rank !== 1 || p.shape[0] !== cols)) throw new Error(`layerNorm: parameter ${shapeStr(p.shape)} does not match last dim ${cols}`);
  }
  const xd = contiguousData(x);
  const wd = w ? w.f32() : null;
  const bd = b ? b.f32() : null;
  const out = allocF32(x.size, false);
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  kernels().layernorm(xd, wd, bd, out, mean, rstd, rows, cols, eps);
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  return record(new Tensor(out, x.shape), 'layerNorm', inputs, (g) => {
    const gx = allocF32(g.length, false);
    const gw = w && w.requiresGrad ? allocF32(cols) : null; // gw, gb: accumulated over the rows
    const gb = b && b.requiresGrad ? allocF32(cols) : null;
    kernels().layernormBackward(xd, wd, mean, rstd, g, gx, gw, gb, rows, cols, false);
    const res: (Float32Array | null)[] = [x.requiresGrad ? gx : null];
    if (w) res.push(gw);
    if (b) res.push(gb);
    return res;
  });
}

function checkIds(ids: Int32Array, n: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (v < 0 || v >= n) throw new Error(`${what}: index ${v} at position ${i} is out of range [0, ${n})`);
  }
}

/** Rows of table [n, dim] picked by integer ids (any shape): result [...ids.shape, dim]. */
export function embedding(ids: Tensor | Int32Array, table: Tensor): Tensor {
  if (table.rank !== 2) throw new Error(`embedding: table must be 2-D, got ${shapeStr(table.shape)}`);
  const idsT = ids instanceof Tensor ? ids : new Tensor(ids, [ids.length]);
  const id = idsT.i32();
  const [n, dim] = table.shape;
  checkIds(id, n, `embedding ${table.name ?? ''}`.trim());
  const td = table.f32();
  const out = allocF32(id.length * dim, false);
  kernels().gather(td, id, out, id.length, dim);
  return record(new Tensor(out, [...idsT.shape, dim]), 'embedding', [table], (g) => {
    const gt = allocF32(n * dim);
    kernels().scatterAdd(g, id, gt, id.length, dim);
    return [gt];
  });
}

/** Selects entries along `axis` by integer indices (gradient scatter-adds back). */
export function indexSelect(x: Tensor, axis: number, index: Tensor | Int32Array): Tensor {
  const a = normAxis(axis, x.rank);
  const idx = index instanceof Tensor ? index.i32() : index;
  const n = x.shape[a];
  checkIds(idx, n, 'indexSelect');
  const outer = shapeSize(x.shape.slice(0, a));
  const inner = shapeSize(x.shape.slice(a + 1));
  const xd = contiguousData(x);
  const m = idx.length;
  const out = allocF32(outer * m * inner, false);
  const k = kernels();
  for (let o = 0; o < outer; o++) {
    k.gather(xd.subarray(o * n * inner, (o + 1) * n * inner), idx, out.subarray(o * m * inner, (o + 1) * m * inner), m, inner);
  }
  const shape = x.shape.slice();
  shape[a] = m;
  return record(new Tensor(out, shape), 'indexSelect', [x], (g) => {
    const gx = allocF32(x.size);
    for (let o = 0; o < outer; o++) {
      k.scatterAdd(g.subarray(o * m * inner, (o + 1) * m * inner), idx, gx.subarray(o * n * inner, (o + 1) * n * inner), m, inner);
    }
    return [gx];
  });
}

export interface CrossEntropyOptions {
  /** targets equal to this are skipped (default -100, as PyTorch) */
  ignoreIndex?: number;
  /** 'mean' over non-ignored rows (default), 'sum', or 'none' (per-row losses) */
  reduction?: 'mean' | 'sum' | 'none';
}

/** Cross-entropy of logits [..., C] against integer targets [...] (fused log-softmax + NLL). */
export function crossEntropy(logits: Tensor, targets: Tensor | Int32Array, opts: CrossEntropyOptions = {}): Tensor {
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const { rows, cols } = lastAxisRows(logits, 'crossEntropy');
  const t = targets instanceof Tensor ? targets.i32() : targets;
  if (t.length !== rows) throw new Error(`crossEntropy: ${t.length} targets for ${rows} rows of logits ${shapeStr(logits.shape)}`);
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== ignore && (t[i] < 0 || t[i] >= cols)) throw new Error(`crossEntropy: target ${t[i]} at row ${i} is out of range [0, ${cols}) (ignore index ${ignore})`);
  }
  const xd = contiguousData(logits);
  const losses = new Float32Array(rows);
  const lse = new Float32Array(rows);
  const count = kernels().crossEntropy(xd, t, losses, lse, rows, cols, ignore);
  let out: Tensor;
  let gRows: (g: Float32Array) => Float32Array;
  if (reduction === 'none') {
    out = new Tensor(losses, logits.shape.slice(0, -1));
    gRows = (g) => g;
  } else {
    let s = 0;
    for (let i = 0; i < rows; i++) s += losses[i];
    const div = reduction === 'mean' ? Math.max(count, 1) : 1;
    out = Tensor.scalar(reduction === 'mean' && count === 0 ? 0 : s / div);
    gRows = (g) => new Float32Array(rows).fill(g[0] / div);
  }
  return record(out, 'crossEntropy', [logits], (g) => {
    const gx = allocF32(rows * cols, false);
    kernels().crossEntropyBackward(xd, t, lse, gRows(g), gx, rows, cols, ignore, false);
    return [gx];
  });
}

const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array; maxPos: number }>();

/** cos/sin tables [maxPos, rotDim/2] for RoPE with base theta (cached). */
export function ropeTables(rotDim: number, theta: number, maxPos: number, invFreq?: Float32Array): { cos: Float32Array; sin: Float32Array } {
  const key = `${rotDim}:${theta}:${invFreq ? Array.from(invFreq).join(',') : ''}`;
  const hit = ropeCache.get(key);
  if (hit && hit.maxPos >= maxPos) return hit;
  const h = rotDim / 2;
  const size = Math.max(maxPos, hit ? hit.maxPos * 2 : 0, 64);
  const cos = new Float32Array(size * h);
  const sin = new Float32Array(size * h);
  for (let i = 0; i < h; i++) {
    const f = invFreq ? invFreq[i] : Math.pow(theta, -(2 * i) / rotDim);
    for (let p = 0; p < size; p++) {
      cos[p * h + i] = Math.cos(p * f);
      sin[p * h + i] = Math.sin(p * f);
    }
  }
  const entry = { cos, sin, maxPos: size };
  ropeCache.set(key, entry);
  return entry;
}

export interface RopeOptions {
  theta?: number;
  /** number of leading features per head that rotate (default: all) */
  rotaryDim?: number;
  /** explicit inverse frequencies (e.g. Llama 3 scaled), length rotaryDim/2 */
  invFreq?: Float32Array;
}

/**
 * Rotary position embedding (neox rotate-half) on x [..., T, H, D] with per-token positions
 * pos (length = number of tokens = x.size / (H*D), non-negative integers).
 */
export function rope(x: Tensor, pos: Int32Array | Tensor, opts: RopeOptions = {}): Tensor {
  if (x.rank < 2) throw new Error(`rope: expected [..., heads, headDim], got ${shapeStr(x.shape)}`);
  const { p, rows, H, D, rot, tab } = ropeSetup(x, pos, opts);
  const xd = contiguousData(x);
  const out = allocF32(x.size, false);
  kernels().rope(xd, out, p, tab.cos, tab.sin, rows, H, D, rot, false);
  return record(new Tensor(out, x.shape), 'rope', [x], (g) => {
    const gx = allocF32(g.length, false);
    kernels().rope(g, gx, p, tab.cos, tab.sin, rows, H, D, rot, true);
    return [gx];
  });
}

/**
 * rope(x) of x [B, T, H, D] written head-major: [B, H, T, D], the values (and gradients) of
 * permute(rope(x, pos), [0, 2, 1, 3]) made contiguous, without the copy: the attention kernels
 * take their q and k in that layout. The backward reads the head-major gradient directly.
 */
export function ropeHeads(x: Tensor, pos: Int32Array | Tensor, opts: RopeOptions = {}): Tensor {
  if (x.rank !== 4) throw new Error(`ropeHeads: expected [B, T, heads, headDim], got ${shapeStr(x.shape)}`);
  const { p, rows, H, D, rot, tab } = ropeSetup(x, pos, opts);
  const [B, T] = x.shape;
  const xd = contiguousData(x);
  const out = allocF32(x.size, false);
  if (rows > 0) kernels().rope(xd, out, p, tab.cos, tab.sin, rows, H, D, rot, false, T, true);
  return record(new Tensor(out, [B, H, T, D]), 'ropeHeads', [x], (g) => {
    const gx = allocF32(g.length, false);
    if (rows > 0) kernels().rope(g, gx, p, tab.cos, tab.sin, rows, H, D, rot, true, T, false);
    return [gx];
  });
}

function ropeSetup(
  x: Tensor,
  pos: Int32Array | Tensor,
  opts: RopeOptions,
): { p: Int32Array; rows: number; H: number; D: number; rot: number; tab: { cos: Float32Array; sin: Float32Array } } {
  const D = x.shape[x.rank - 1];
  const H = x.shape[x.rank - 2];
  const rot = opts.rotaryDim ?? D;
  if (rot % 2 !== 0 || rot > D) throw new Error(`rope: rotary dim ${rot} must be even and <= head dim ${D}`);
  const p = pos instanceof Tensor ? pos.i32() : pos;
  const rows = H * D === 0 ? 0 : x.size / (H * D);
  if (p.length !== rows) throw new Error(`rope: ${p.length} positions for ${rows} tokens of ${shapeStr(x.shape)}`);
  let maxPos = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] < 0) throw new Error(`rope: negative position ${p[i]} at ${i}`);
    if (p[i] > maxPos) maxPos = p[i];
  }
  const tab = ropeTables(rot, opts.theta ?? 10000, maxPos + 1, opts.invFreq);
  return { p, rows, H, D, rot, tab };
}
