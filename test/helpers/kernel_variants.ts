/**
 * The kernel variants a kernel test runs on: the pure-TS kernels, and the native ones with the AVX2
 * path (when the CPU has it) and the portable path, each at 1 and 2 threads. `setup` switches the
 * addon to the variant; `restoreNative` puts back the default (AVX2 when available, 2 threads).
 */
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import type { NativeExtrasInternal } from '../../src/tensor/kernels/native.js';
import { hasNative } from './numeric.js';

export interface KernelVariant {
  name: string;
  k: Kernels;
  setup: () => void;
}

export function kernelVariants(): KernelVariant[] {
  const out: KernelVariant[] = [{ name: 'js', k: jsKernels, setup: () => undefined }];
  const nb = nativeBackend();
  if (!hasNative() || !('kernels' in nb)) return out;
  const ex = nb.extras as NativeExtrasInternal;
  for (const simd of ex.cpuAvx2 ? (['avx2', 'generic'] as const) : (['generic'] as const)) {
    for (const threads of [1, 2]) {
      out.push({
        name: `native ${simd} ${threads}T`,
        k: nb.kernels,
        setup: () => {
          ex.setSimd(simd);
          ex.setThreads(threads);
        },
      });
    }
  }
  return out;
}

export function restoreNative(): void {
  const nb = nativeBackend();
  if ('kernels' in nb) {
    const ex = nb.extras as NativeExtrasInternal;
    if (ex.cpuAvx2) ex.setSimd('avx2');
    ex.setThreads(2);
  }
}
