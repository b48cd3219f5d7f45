/**
 * The kernel variants a kernel test runs on: the pure-TS kernels, and the native ones with the AVX2
 * path (when the CPU has it), the NEON path (arm64 builds) and the portable path, each at 1 and 2
 * threads. `setup` switches the addon to the variant; `restoreNative` puts back the default (the
 * first of `simdPaths`, 2 threads).
 */
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import type { NativeExtrasInternal } from '../../src/tensor/kernels/native.js';
import { hasNative } from './numeric.js';

export interface KernelVariant {
  name: string;
  k: Kernels;
  setup: () => void;
}

export type SimdPath = 'avx2' | 'neon' | 'generic';

/** The native code paths this machine can run, the default (load-time choice) first. */
export function simdPaths(ex: NativeExtrasInternal): SimdPath[] {
  const out: SimdPath[] = [];
  if (ex.cpuAvx2) out.push('avx2');
  if (ex.cpuNeon) out.push('neon');
  out.push('generic');
  return out;
}

export function kernelVariants(): KernelVariant[] {
  const out: KernelVariant[] = [{ name: 'js', k: jsKernels, setup: () => undefined }];
  const nb = nativeBackend();
  if (!hasNative() || !('kernels' in nb)) return out;
  const ex = nb.extras as NativeExtrasInternal;
  for (const simd of simdPaths(ex)) {
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
    ex.setSimd(simdPaths(ex)[0]);
    ex.setThreads(2);
  }
}
