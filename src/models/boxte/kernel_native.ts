/**
 * Binding of the native BoxTE kernels (native/boxte.cc, registered into the tfree addon). Null when
 * the addon is missing or predates them; ops.ts then falls back to the TypeScript kernels.
 */
import { createRequire } from 'node:module';
import { nativeBackend } from '../../tensor/index.js';
import { nativeAddonPath } from '../../tensor/kernels/native.js';
import type { ScoreBatchArgs, TrainGroupsArgs } from './kernel.js';
import type { BoxKernels } from './ops.js';

interface BoxteAddon {
  boxteScoreBatch(
    d: number, E: number, Q: number, tanh: boolean, order: number,
    headTable: Float32Array, headAdd: Float32Array, tailTable: Float32Array, tailAdd: Float32Array,
    l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array, R: number, rel: Int32Array, out: Float32Array,
  ): void;
  boxteTrainGroups(
    B: number, n: number, d: number, tanh: boolean, order: number, base: Float32Array, bump: Float32Array, E: number,
    l: Float32Array, u: Float32Array, c: Float32Array, w: Float32Array, R: number, tb: Float32Array,
    h: Int32Array, r: Int32Array, t: Int32Array, negEnt: Int32Array, negTail: Uint8Array, gradScale: number,
    gBase: Float32Array, gBump: Float32Array, gc: Float32Array, gw: Float32Array, gTb: Float32Array,
  ): number;
}

let cached: BoxKernels | null | undefined;

export function nativeBoxKernels(): BoxKernels | null {
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
  const train = addon.boxteTrainGroups;
  if (typeof score !== 'function' || typeof train !== 'function') return null;
  cached = {
    name: 'native',
    scoreBatch(a: ScoreBatchArgs): void {
      const b = a.boxes;
      score(a.d, a.E, a.Q, a.tanh, a.order, a.headTable, a.headAdd, a.tailTable, a.tailAdd, b.l, b.u, b.c, b.w, b.R, a.rel, a.out);
    },
    trainGroups(a: TrainGroupsArgs): number {
      const b = a.boxes;
      const E = a.base.length / a.d;
      return train(
        a.B, a.n, a.d, a.tanh, a.order, a.base, a.bump, E, b.l, b.u, b.c, b.w, b.R, a.tb,
        a.h, a.r, a.t, a.negEnt, a.negTail, a.gradScale, a.gBase, a.gBump, a.gc, a.gw, a.gTb,
      );
    },
  };
  return cached;
}
