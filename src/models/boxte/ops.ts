/**
 * Picks the BoxTE kernels of the active tensor backend: the native C++ twin when the native
 * backend is active and the addon has them, else the pure-TypeScript kernels.
 */
import { backendName } from '../../tensor/index.js';
import { scoreBatchJs, trainGroupsJs, type ScoreBatchArgs, type TrainGroupsArgs } from './kernel.js';
import { nativeBoxKernels } from './kernel_native.js';

export interface BoxKernels {
  readonly name: 'js' | 'native';
  trainGroups(a: TrainGroupsArgs): number;
  scoreBatch(a: ScoreBatchArgs): void;
}

const jsBoxKernels: BoxKernels = { name: 'js', trainGroups: trainGroupsJs, scoreBatch: scoreBatchJs };

export function boxKernels(): BoxKernels {
  if (backendName() === 'native') {
    const n = nativeBoxKernels();
    if (n !== null) return n;
  }
  return jsBoxKernels;
}

export { jsBoxKernels };
