/**
 * The kernel variants a kernel test runs on: the pure-TS kernels, and the native ones with each
 * path of the packed / bf16 kernel families this CPU has (avx512: AVX-512 VNNI / 512-bit LUT /
 * vdpbf16ps; avx512-ymm: the AVX-VNNI kernel's 256-bit code with EVEX encoding; avxvnni; avx2) and
 * the portable path, each at 1 and 2 threads. `setup` switches the addon to the variant;
 * `restoreNative` puts back the default (the best path, 2 threads). Paths this CPU lacks are
 * listed by `skippedPaths` (tests print them).
 */
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import type { NativeExtrasInternal, PackedIsaName } from '../../src/tensor/kernels/native.js';
import { hasNative } from './numeric.js';

export interface KernelVariant {
  name: string;
  k: Kernels;
  setup: () => void;
  /** the native path (undefined for the TS kernels) */
  path?: PackedIsaName;
}

const SIMD_PATHS: readonly PackedIsaName[] = ['avx512', 'avx512-ymm', 'avxvnni', 'avx2'];

/** The native SIMD paths this CPU runs (best first). */
export function nativePaths(): PackedIsaName[] {
  const nb = nativeBackend();
  if (!hasNative() || !('kernels' in nb)) return [];
  const ex = nb.extras as NativeExtrasInternal;
  return SIMD_PATHS.filter((p) => ex.cpuAvx2 && ex.packedIsaSupported(p));
}

/** The SIMD paths this CPU lacks, with the reason (for skip messages). */
export function skippedPaths(): string[] {
  if (!hasNative()) return ['native: addon unavailable'];
  const have = new Set(nativePaths());
  return SIMD_PATHS.filter((p) => !have.has(p)).map((p) => `${p}: not supported by this CPU`);
}

export function kernelVariants(): KernelVariant[] {
  const out: KernelVariant[] = [{ name: 'js', k: jsKernels, setup: () => undefined }];
  const nb = nativeBackend();
  if (!hasNative() || !('kernels' in nb)) return out;
  const ex = nb.extras as NativeExtrasInternal;
  for (const path of [...nativePaths(), 'generic' as const]) {
    for (const threads of [1, 2]) {
      out.push({
        name: `native ${path} ${threads}T`,
        k: nb.kernels,
        path,
        setup: () => {
          ex.setSimd(path === 'generic' ? 'generic' : 'avx2');
          if (path !== 'generic') ex.setPackedIsa(path);
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
    ex.setPackedIsa('auto');
    ex.setThreads(2);
  }
}
