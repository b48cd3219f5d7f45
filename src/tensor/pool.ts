/**
 * A recycling pool of Float32Array gradient buffers for the autograd engine.
 *
 * A training step allocates hundreds of MB of gradient temporaries, the same sizes every step.
 * Fresh typed arrays cost page faults and zero-filling of memory the OS hands back (a fresh output
 * slowed a 2048x256x256 GEMM by 25 %), so backward closures allocate with `allocF32`, and
 * `runBackward` gives back (`releaseF32`) each gradient it has finished with when it owns it
 * alone. Only arrays that came from `allocF32` are ever recycled, and only by the engine.
 * `allocF32` returns zeroed memory unless asked not to, so results do not depend on reuse.
 */

import { kernels } from './kernels/index.js';

const free = new Map<number, Float32Array[]>();
/** arrays handed out by allocF32 and not claimed by a tensor (.grad) since */
const pooled = new WeakSet<Float32Array>();
/** arrays waiting in `free` (a second release of one is ignored) */
const waiting = new WeakSet<Float32Array>();
let pooledFloats = 0;
/** at most this many floats wait in the pool (beyond it released arrays go to the GC) */
let limitFloats = 256 * 1024 * 1024; // 1 GiB
/** tests: the value every allocF32(n, false) array is filled with (null: left as it is) */
let poison: number | null = null;

/**
 * A Float32Array of n elements, from the pool when one of that length waits (zeroed unless
 * zero = false: then its contents are whatever was there, and the caller must write every element).
 */
export function allocF32(n: number, zero = true): Float32Array {
  const list = free.get(n);
  let a = list !== undefined ? list.pop() : undefined;
  if (a === undefined) {
    a = freshF32(n);
    pooled.add(a);
  } else {
    pooledFloats -= n;
    waiting.delete(a);
    if (zero) a.fill(0);
  }
  if (!zero && poison !== null) a.fill(poison);
  return a;
}

/**
 * For tests: from now on every array that allocF32(n, false) hands out (fresh or reused) is
 * first filled with v (NaN: an element the op fails to overwrite shows in its result); null
 * turns it off. Returns the previous setting.
 */
export function poisonUnzeroedF32(v: number | null): number | null {
  const prev = poison;
  poison = v;
  return prev;
}

/** Whether a is a recyclable array from allocF32 (not a view, not claimed). */
export function isPooled(a: Float32Array): boolean {
  return pooled.has(a);
}

/** Takes a out of recycling for good (it became a tensor's storage that outlives the step). */
export function claimF32(a: Float32Array): void {
  pooled.delete(a);
}

/**
 * Gives a tensor's storage that nothing will read again (a gradient dropped by
 * `ParamStore.zeroGrad({ recycle: true })`) to the pool; views and foreign storage are ignored.
 */
export function recycleF32(a: Float32Array): void {
  if (a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength) return;
  pooled.add(a);
  releaseF32(a);
}

/** Gives a back for reuse. Only for arrays from allocF32 that nothing references any more. */
export function releaseF32(a: Float32Array): void {
  if (!pooled.has(a) || waiting.has(a) || a.length === 0 || pooledFloats + a.length > limitFloats) return;
  waiting.add(a);
  let list = free.get(a.length);
  if (list === undefined) {
    list = [];
    free.set(a.length, list);
  }
  list.push(a);
  pooledFloats += a.length;
}

/** Drops every waiting array (their memory goes to the GC) and optionally sets the pool's limit in floats. */
export function clearPool(limit?: number): void {
  for (const list of free.values()) for (const a of list) waiting.delete(a);
  free.clear();
  pooledFloats = 0;
  if (limit !== undefined) {
    if (!Number.isInteger(limit) || limit < 0) throw new Error(`clearPool: limit must be a non-negative integer, got ${limit}`);
    limitFloats = limit;
  }
}

/** Floats waiting in the pool (for tests and diagnostics). */
export function pooledSize(): number {
  return pooledFloats;
}

/** Arrays of at least this many floats (2 MiB: one whole huge page) come from freshF32's mapping. */
export const HUGE_MIN_FLOATS = 1 << 19;

/**
 * Whether freshF32 puts large arrays on huge pages: TFREE_HUGE (0 | 1) when set, else on. Any other
 * value throws (the CLI checks it before a command runs: one line, exit 2).
 */
export function hugePagesEnabled(): boolean {
  const v = process.env.TFREE_HUGE;
  if (v === undefined || v === '') return true;
  if (v !== '0' && v !== '1') throw new Error(`TFREE_HUGE must be 0 or 1, got "${v}"`);
  return v === '1';
}

/**
 * A zeroed Float32Array of n elements. From HUGE_MIN_FLOATS on, its memory is the backend's
 * `weightBuffer` (native, Linux: a mapping of its own started on a 2 MiB boundary, its whole 2 MiB
 * pages advised for transparent huge pages, the tail on 4 KiB pages: no memory added; V8's own
 * arrays are never advised, and THP's common "madvise" mode leaves them on 4 KiB pages): the GEMM
 * packing's strided reads and the kernels' streams then walk far fewer TLB entries (the small-preset
 * HAT step about 2 % less CPU time, docs/results/engine.md). `TFREE_HUGE=0`: ordinary arrays (hugePagesEnabled). For
 * arrays the process keeps or recycles (the pool's, parameters, optimizer moments), not short-lived ones.
 */
export function freshF32(n: number): Float32Array {
  if (n >= HUGE_MIN_FLOATS && hugePagesEnabled()) {
    let b: Uint8Array | null = null;
    try {
      b = kernels().weightBuffer(4 * n);
    } catch {
      b = null; // no usable backend: the op that needs one says why
    }
    if (b !== null && b.byteOffset === 0 && b.byteLength === 4 * n) return new Float32Array(b.buffer, 0, n);
  }
  return new Float32Array(n);
}
