/**
 * The kernel variants a kernel test runs on: the pure-TS kernels, and the native ones on every
 * kernel path the CPU has (cpuInfo().isas: avx512, avx2, neon, generic), each at 1 and 2 threads.
 * `setup` switches the addon to the variant; `restoreNative` puts back the default (the best path,
 * 2 threads).
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
  for (const simd of [...ex.cpuInfo().isas].reverse()) {
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
    ex.setIsa(ex.cpuInfo().best);
    ex.setThreads(2);
  }
}
