/**
 * Picks the BoxTE kernels of the active tensor backend: the native C++ twin when the native
 * backend is active and the addon has them, else the pure-TypeScript kernels.
 */
import { backendName } from '../../tensor/index.js';
import { negativesJs, scoreBatchJs, trainGroupsJs, type ExpRows, type NegativesArgs, type ScoreBatchArgs, type TrainGroupsArgs } from './kernel.js';
import { nativeBoxKernels } from './kernel_native.js';

/** Dense Adam (weight decay 0) of one entity table with its gradient spread over slots (see TrainGroupsArgs.slots). */
export interface AdamRowsArgs {
  p: Float32Array;
  /** gradient accumulated by chunk 0 (zeroed after the update) */
  g0: Float32Array;
  /** the other chunks' gradients: slot s of this table at data[s * 2 * n + offset] (zeroed after) */
  slots: { data: Float32Array; count: number; offset: number } | null;
  /**
   * The training kernel's lazy zeroing (`TrainGroupsArgs.lazy`, same stamps and step; rows of d,
   * this parameter = table 0 (base) or 1 (bump)): only the rows of g0 and of the slots stamped with
   * `step` are read (the others count as 0) and nothing is zeroed; same result as with zeroed buffers.
   */
  lazy?: { stamps: Int32Array; step: number; d: number; table: 0 | 1 };
  m: Float32Array;
  v: Float32Array;
  lr: number;
  b1: number;
  b2: number;
  eps: number;
  bc1: number;
  bc2: number;
}

/**
 * scoreBatch's inputs plus the gold candidate of each query: goldScore[q] = its score (as
 * scoreBatch computes it), better[q * E + x] = 1 when candidate x scores strictly below it (else 0),
 * count[q] = the number of such candidates. All three are written.
 */
export interface RankBatchArgs extends Omit<ScoreBatchArgs, 'out'> {
  gold: Int32Array;
  better: Uint8Array;
  count: Int32Array;
  goldScore: Float32Array;
}

export interface BoxKernels {
  readonly name: 'js' | 'native';
  /** instruction set of the kernels: 'avx512', 'avx2', 'generic' (native) or 'js' */
  readonly isa: string;
  /** threads the training kernel splits a batch over (1 for the TypeScript kernels) */
  threads(): number;
  trainGroups(a: TrainGroupsArgs): number;
  scoreBatch(a: ScoreBatchArgs): void;
  /** the comparisons of the filtered ranking without the score matrix (native only; see RankBatchArgs) */
  rankBatch: ((a: RankBatchArgs) => void) | null;
  /**
   * the exponentials of a [rows, d] entity table for scoreBatch / rankBatch's headExp / tailExp (computed
   * once when one table is scored by many calls); null where the kernels do not use them
   */
  expRows(rows: number, d: number, x: Float32Array): ExpRows | null;
  negatives(a: NegativesArgs): void;
  /** fused gradient sum + dense Adam + zeroing of an entity table (native only) */
  adamRows: ((a: AdamRowsArgs) => void) | null;
  /**
   * adamRows of one or two tables in the background (native, when the addon has it; else null): the
   * pool's workers run the updates and the call returns at once; until `adamRowsWait()` the caller
   * runs its other kernels on one thread (the pool is held; every boxte kernel but trainGroups gives
   * the same bits at any thread count, and trainGroups, scoreBatch, rankBatch, expRows and adamRows
   * wait first) and must not touch the arrays given. With one thread the updates run at once.
   * adamRows on other arrays does not wait (it runs on the calling thread meanwhile). `expD`: list is
   * [base, bump], both `lazy` with rows of expD; the job also computes the exponentials of the updated
   * tables, which the next expTableStart on them takes instead of starting its own job (AVX2 /
   * AVX-512; ignored elsewhere). base and bump must not change in between.
   */
  adamRowsStart: ((list: readonly AdamRowsArgs[], expD?: number) => void) | null;
  /**
   * adamRowsStart(list, expD) deferred into the next trainGroups (native, when the addon has it; else
   * null): that call starts the updates right after its parallel part, before it returns, so the pool's
   * worker goes from its kernel chunk to them. list must name that call's entity tables, gradients,
   * slots and stamps (the updates read their values at the end of its parallel part, as a start after
   * it would); wait with adamRowsWait. A trainGroups that throws, or another arm, drops them.
   */
  adamRowsArm: ((list: readonly AdamRowsArgs[], expD?: number) => void) | null;
  /** waits for the updates of the last adamRowsStart (the calling thread takes the ones not begun) */
  adamRowsWait: () => void;
  /**
   * the exponentials of the entity tables for the next trainGroups on them, computed in the background
   * (native AVX2 / AVX-512, tanh; else a no-op or null) while the caller runs its other kernels on one
   * thread; that trainGroups waits for them and uses them once. base and bump must not change in between.
   */
  expTableStart: ((base: Float32Array, bump: Float32Array, d: number) => void) | null;
  /** native twins of small.ts (corners forward/backward, regulariser); null: the TypeScript loops */
  small: SmallKernels | null;
}

/** See small.ts (same arguments as the TypeScript loops, arrays preallocated). */
export interface SmallKernels {
  corners(R: number, d: number, half: number, tanh: boolean, head: readonly [Float32Array, Float32Array, Float32Array], tail: readonly [Float32Array, Float32Array, Float32Array], stacked: Float32Array, invGeo: Float64Array, sigma: Float64Array): void;
  cornersBwd(
    R: number, d: number, half: number, tanh: boolean, hShape: Float32Array, hSize: Float32Array, tShape: Float32Array, tSize: Float32Array,
    stacked: Float32Array, invGeo: Float64Array, sigma: Float64Array, g: Float32Array, gHead: readonly [Float32Array, Float32Array, Float32Array], gTail: readonly [Float32Array, Float32Array, Float32Array],
  ): void;
  /** lambda-scaled regulariser value; writes its gradient into gK (add: adds it to gK, in float) */
  timeReg(T: number, row: number, K: Float32Array, scale: number, gK: Float32Array, add?: boolean): number;
  /** time bumps of a batch [B, d] (written) and their backward (adds into gK, gA); null when the addon predates them */
  timeBumps: ((B: number, d: number, k: number, useAlpha: boolean, noBumpDay0: boolean, K: Float32Array, alpha: Float32Array, r: Int32Array, tau: Int32Array, out: Float32Array) => void) | null;
  /** twins of boxTable / cornerGrad (kernel.ts) with n = R * d; null when the addon predates them */
  boxTable: ((n: number, stacked: Float32Array, l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array) => void) | null;
  cornerGrad: ((n: number, gc: Float32Array, gw: Float32Array, g: Float32Array) => void) | null;
  timeBumpsBwd:
    | ((B: number, d: number, k: number, useAlpha: boolean, noBumpDay0: boolean, K: Float32Array, alpha: Float32Array, r: Int32Array, tau: Int32Array, gTb: Float32Array, gK: Float32Array, gA: Float32Array) => void)
    | null;
}

const jsBoxKernels: BoxKernels = {
  name: 'js',
  isa: 'js',
  threads: () => 1,
  trainGroups: trainGroupsJs,
  scoreBatch: scoreBatchJs,
  rankBatch: null,
  expRows: () => null,
  negatives: negativesJs,
  adamRows: null,
  adamRowsStart: null,
  adamRowsArm: null,
  adamRowsWait: () => {},
  expTableStart: null,
  small: null,
};

export function boxKernels(): BoxKernels {
  if (backendName() === 'native') {
    const n = nativeBoxKernels();
    if (n !== null) return n;
  }
  return jsBoxKernels;
}

export { jsBoxKernels };
