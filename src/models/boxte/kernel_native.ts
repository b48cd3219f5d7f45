/**
 * Binding of the native BoxTE kernels (native/boxte.cc, registered into the tfree addon). Null when
 * the addon is missing or predates them; ops.ts then falls back to the TypeScript kernels.
 */
import { createRequire } from 'node:module';
import { nativeBackend } from '../../tensor/index.js';
import { nativeAddonPath } from '../../tensor/kernels/native.js';
import type { ExpRows, NegativesArgs, ScoreBatchArgs, TrainGroupsArgs } from './kernel.js';
import type { AdamRowsArgs, BoxKernels, RankBatchArgs } from './ops.js';

/** The addon functions of native/boxte.cc as the binding calls them (experiments load several builds' addons with it). */
export interface BoxteAddon {
  boxteScoreBatch(
    d: number, E: number, Q: number, tanh: boolean, order: number,
    headTable: Float32Array, headAdd: Float32Array, tailTable: Float32Array, tailAdd: Float32Array,
    l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array, R: number, rel: Int32Array, out: Float32Array,
    headExp?: Float32Array | null, headOk?: Uint8Array | null, tailExp?: Float32Array | null, tailOk?: Uint8Array | null,
  ): void;
  boxteRankBatch(
    d: number, E: number, Q: number, tanh: boolean, order: number,
    headTable: Float32Array, headAdd: Float32Array, tailTable: Float32Array, tailAdd: Float32Array,
    l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array, R: number, rel: Int32Array,
    gold: Int32Array, better: Uint8Array, count: Int32Array, goldScore: Float32Array,
    headExp?: Float32Array | null, headOk?: Uint8Array | null, tailExp?: Float32Array | null, tailOk?: Uint8Array | null,
  ): void;
  boxteExpRows(rows: number, d: number, x: Float32Array, outExp: Float32Array, outOk: Uint8Array): void;
  boxteTrainGroups(
    B: number, n: number, d: number, tanh: boolean, order: number, base: Float32Array, bump: Float32Array, E: number,
    l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array, R: number, tb: Float32Array,
    h: Int32Array, r: Int32Array, t: Int32Array, negEnt: Int32Array, negTail: Uint8Array, gradScale: number,
    gBase: Float32Array, gBump: Float32Array, gc: Float32Array, gw: Float32Array, gTb: Float32Array,
    slots?: Float32Array | null, nslots?: number, stamps?: Int32Array | null, step?: number,
  ): number;
  boxteNegatives(
    seed: number, E: number, nT: number, h: Int32Array, r: Int32Array, t: Int32Array, tau: Int32Array, n: number,
    table: Float64Array, mask: number, outEnt: Int32Array, outTail: Uint8Array, filter?: Uint32Array,
  ): void;
  boxteAdamRows(
    p: Float32Array, g0: Float32Array, slots: Float32Array | null, nslots: number, slotOffset: number, m: Float32Array, v: Float32Array,
    lr: number, b1: number, b2: number, eps: number, bc1: number, bc2: number,
    stamps?: Int32Array | null, step?: number, d?: number, table?: number,
  ): void;
  /** count, then count x the 17 arguments of boxteAdamRows (count <= 2), then expD (optional) */
  boxteAdamRowsStart(count: number, ...args: unknown[]): void;
  /** as boxteAdamRowsStart, started by the next boxteTrainGroups after its parallel part */
  boxteAdamRowsArm(count: number, ...args: unknown[]): void;
  boxteAdamRowsWait(): void;
  boxteExpTableStart(base: Float32Array, bump: Float32Array, d: number): void;
  boxteIsa(): string;
  boxteCorners(...args: unknown[]): void;
  boxteCornersBwd(...args: unknown[]): void;
  boxteTimeReg(T: number, row: number, K: Float32Array, scale: number, gK: Float32Array, add?: boolean): number;
  boxteBoxTable(n: number, stacked: Float32Array, l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array): void;
  boxteCornerGrad(n: number, gc: Float32Array, gw: Float32Array, g: Float32Array): void;
  boxteTimeBumps(B: number, d: number, k: number, useAlpha: boolean, noBumpDay0: boolean, K: Float32Array, alpha: Float32Array, r: Int32Array, tau: Int32Array, out: Float32Array): void;
  boxteTimeBumpsBwd(
    B: number, d: number, k: number, useAlpha: boolean, noBumpDay0: boolean, K: Float32Array, alpha: Float32Array, r: Int32Array, tau: Int32Array,
    gTb: Float32Array, gK: Float32Array, gA: Float32Array,
  ): void;
}

/** scoreBatch / rankBatch's optional trailing arguments: headExp, headOk, tailExp, tailOk (null: computed there). */
function exps(a: ScoreBatchArgs | RankBatchArgs): [Float32Array | null, Uint8Array | null, Float32Array | null, Uint8Array | null] {
  const h = a.headExp ?? null;
  const t = a.tailExp ?? null;
  return [h?.exp ?? null, h?.ok ?? null, t?.exp ?? null, t?.ok ?? null];
}

/** boxteAdamRows' 17 arguments for one table (the stamps' four null / 0 without `lazy`) */
function adamArgs(a: AdamRowsArgs): Parameters<BoxteAddon['boxteAdamRows']> {
  const s = a.slots;
  const z = a.lazy;
  return [
    a.p, a.g0, s === null ? null : s.data, s === null ? 0 : s.count, s === null ? 0 : s.offset, a.m, a.v, a.lr, a.b1, a.b2, a.eps, a.bc1, a.bc2,
    z === undefined ? null : z.stamps, z === undefined ? 0 : z.step, z === undefined ? 1 : z.d, z === undefined ? 0 : z.table,
  ];
}

/** The native BoxTE kernels (their path follows the addon's dispatch: TFREE_ISA / extras.setIsa). */
export type NativeBoxKernels = BoxKernels;

/**
 * A background job (adamRowsStart, expTableStart; a pipelined epoch leaves one running between JS
 * turns) writes into the caller's arrays from the pool's threads: a process that exits meanwhile
 * (process.exit, e.g. a second Ctrl-C) must wait for it first, or the teardown frees what the
 * workers still write. Registered once, on the first job.
 */
let exitHookSet = false;
function settleAtExit(wait: () => void): void {
  if (exitHookSet) return;
  exitHookSet = true;
  process.once('exit', () => wait());
}

let cached: NativeBoxKernels | null | undefined;

export function nativeBoxKernels(): NativeBoxKernels | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (!('kernels' in nativeBackend())) return null;
  let addon: Partial<BoxteAddon>;
  try {
    addon = createRequire(import.meta.url)(nativeAddonPath()) as Partial<BoxteAddon>;
  } catch {
    return null;
  }
  const score = addon.boxteScoreBatch;
  const rank = addon.boxteRankBatch;
  const expRows = addon.boxteExpRows;
  const train = addon.boxteTrainGroups;
  const negatives = addon.boxteNegatives;
  const adam = addon.boxteAdamRows;
  const adamStart = addon.boxteAdamRowsStart;
  const adamWait = addon.boxteAdamRowsWait;
  const adamArm = addon.boxteAdamRowsArm;
  // adamRowsStart / adamRowsArm: the background Adam of up to two tables, started now or by the next
  // trainGroups; either way the process waits for it at exit
  const adamJob = (name: string, fn: ((count: number, ...args: unknown[]) => void) | undefined) =>
    typeof fn === 'function' && typeof adamWait === 'function'
      ? (list: readonly AdamRowsArgs[], expD?: number): void => {
          if (list.length > 2) throw new Error(`${name}: at most 2 tables, got ${list.length}`);
          settleAtExit(adamWait);
          fn(list.length, ...list.flatMap(adamArgs), expD);
        }
      : null;
  const expStart = addon.boxteExpTableStart;
  const isa = addon.boxteIsa;
  const corners = addon.boxteCorners;
  const cornersBwd = addon.boxteCornersBwd;
  const timeReg = addon.boxteTimeReg;
  const tbF = addon.boxteTimeBumps;
  const tbB = addon.boxteTimeBumpsBwd;
  const bt = addon.boxteBoxTable;
  const cg = addon.boxteCornerGrad;
  if (typeof corners !== 'function' || typeof cornersBwd !== 'function' || typeof timeReg !== 'function') return null;
  if (typeof score !== 'function' || typeof train !== 'function' || typeof negatives !== 'function' || typeof adam !== 'function' || typeof isa !== 'function') return null;
  const n = nativeBackend();
  cached = {
    name: 'native',
    get isa(): string {
      return isa();
    },
    small: {
      corners: (R, d, half, tanh, hd, tl, stacked, invGeo, sigma) => corners(R, d, half, tanh, ...hd, ...tl, stacked, invGeo, sigma),
      cornersBwd: (R, d, half, tanh, hShape, hSize, tShape, tSize, stacked, invGeo, sigma, g, gh, gt) =>
        cornersBwd(R, d, half, tanh, hShape, hSize, tShape, tSize, stacked, invGeo, sigma, g, ...gh, ...gt),
      timeReg: (T, row, K, scale, gK, add) => timeReg(T, row, K, scale, gK, add === true),
      timeBumps: typeof tbF === 'function' ? tbF : null,
      timeBumpsBwd: typeof tbB === 'function' ? tbB : null,
      boxTable: typeof bt === 'function' ? bt : null,
      cornerGrad: typeof cg === 'function' ? cg : null,
    },
    threads: () => ('kernels' in n ? n.extras.getThreads() : 1),
    negatives(a: NegativesArgs): void {
      negatives(a.seed >>> 0, a.known.E, a.known.nT, a.h, a.r, a.t, a.tau, a.n, a.known.table, a.known.mask, a.ent, a.tail, a.known.filter);
    },
    adamRows(a: AdamRowsArgs): void {
      adam(...adamArgs(a));
    },
    adamRowsStart: adamJob('adamRowsStart', adamStart),
    adamRowsArm: adamJob('adamRowsArm', adamArm),
    adamRowsWait: typeof adamWait === 'function' ? (): void => adamWait() : (): void => {},
    expTableStart:
      typeof expStart === 'function'
        ? (base: Float32Array, bump: Float32Array, d: number): void => {
            if (typeof adamWait === 'function') settleAtExit(adamWait);
            expStart(base, bump, d);
          }
        : null,
    scoreBatch(a: ScoreBatchArgs): void {
      const b = a.boxes;
      score(a.d, a.E, a.Q, a.tanh, a.order, a.headTable, a.headAdd, a.tailTable, a.tailAdd, b.l, b.u, b.c, b.w, b.R, a.rel, a.out, ...exps(a));
    },
    expRows(rows: number, d: number, x: Float32Array): ExpRows | null {
      // only the AVX-512 and AVX2 kernels run on the exponentials
      if (typeof expRows !== 'function' || (isa() !== 'avx512' && isa() !== 'avx2')) return null;
      const out = { exp: new Float32Array(rows * d), ok: new Uint8Array(rows) };
      expRows(rows, d, x, out.exp, out.ok);
      return out;
    },
    rankBatch:
      typeof rank === 'function'
        ? (a: RankBatchArgs): void => {
            const b = a.boxes;
            rank(a.d, a.E, a.Q, a.tanh, a.order, a.headTable, a.headAdd, a.tailTable, a.tailAdd, b.l, b.u, b.c, b.w, b.R, a.rel, a.gold, a.better, a.count, a.goldScore, ...exps(a));
          }
        : null,
    trainGroups(a: TrainGroupsArgs): number {
      const b = a.boxes;
      const E = a.base.length / a.d;
      return train(
        a.B, a.n, a.d, a.tanh, a.order, a.base, a.bump, E, b.l, b.u, b.c, b.w, b.R, a.tb,
        a.h, a.r, a.t, a.negEnt, a.negTail, a.gradScale, a.gBase, a.gBump, a.gc, a.gw, a.gTb,
        a.slots === undefined ? null : a.slots.data, a.slots === undefined ? 0 : a.slots.count,
        a.lazy === undefined ? null : a.lazy.stamps, a.lazy === undefined ? 0 : a.lazy.step,
      );
    },
  };
  return cached;
}
