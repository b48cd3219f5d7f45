/**
 * The kernel variants a kernel test runs on: the pure-TS kernels, and the native ones on every
 * kernel path the CPU has (cpuInfo().isas: avx512, avx2, neon, generic), each at 1 and 2 threads;
 * or, for one kernel family (gemm, packed, packedLut, bf16), on every implementation of that family
 * the CPU runs (e.g. packed: avx512-vnni, avx512-ymm = the AVX-VNNI code with EVEX encoding, avxvnni,
 * avx2, generic; gemm on AMD Zen 4: avx512-zmm, avx2, generic). `setup` switches the addon to the variant; `restoreNative` puts back the default
 * (the best path, 2 threads); `skippedPaths` names the implementations this CPU lacks.
 */
import { jsKernels, nativeBackend, type Kernels } from '../../src/tensor/kernels/index.js';
import type { KernelFamily, NativeExtrasInternal } from '../../src/tensor/kernels/native.js';
import { hasNative } from './numeric.js';

export interface KernelVariant {
  name: string;
  k: Kernels;
  setup: () => void;
  /** the native implementation of the family (undefined for the TS kernels and per-ISA variants) */
  path?: string;
}

/** Every implementation a family has in some build (for skip messages), best first. */
const KNOWN: Record<KernelFamily, readonly string[]> = {
  gemm: ['avx512', 'avx512-zmm', 'avx2', 'neon', 'generic'],
  packed: ['avx512-vnni', 'avx512-ymm', 'avxvnni', 'avx2', 'generic'],
  packedLut: ['avx512', 'avx2', 'generic'],
  bf16: ['amx-bf16', 'avx512-bf16', 'avx512', 'avx2', 'generic'],
};

function extras(): NativeExtrasInternal | undefined {
  const nb = nativeBackend();
  return hasNative() && 'kernels' in nb ? (nb.extras as NativeExtrasInternal) : undefined;
}

/** The native implementations of `family` this CPU and build run, best first ([] without the addon). */
export function familyPaths(family: KernelFamily): string[] {
  return extras()?.familyPaths(family) ?? [];
}

/** The implementations of `family` this CPU or build lacks, with the reason (for test diagnostics). */
export function skippedPaths(family: KernelFamily): string[] {
  if (!extras()) return [`${family}: native addon unavailable`];
  const have = new Set(familyPaths(family));
  return KNOWN[family].filter((p) => !have.has(p)).map((p) => `${family} ${p}: not supported by this CPU or build`);
}

/** Switches the addon to one implementation of `family` (the best ISA cap otherwise). */
export function usePath(family: KernelFamily, path: string): void {
  const ex = extras();
  if (!ex) throw new Error('native addon unavailable');
  ex.setIsa(ex.cpuInfo().best);
  ex.setKernelPath(family, path);
}

export function kernelVariants(family?: KernelFamily): KernelVariant[] {
  const out: KernelVariant[] = [{ name: 'js', k: jsKernels, setup: () => undefined }];
  const nb = nativeBackend();
  const ex = extras();
  if (!ex || !('kernels' in nb)) return out;
  if (family !== undefined) {
    for (const path of ex.familyPaths(family)) {
      for (const threads of [1, 2]) {
        out.push({
          name: `native ${family} ${path} ${threads}T`,
          k: nb.kernels,
          path,
          setup: () => {
            usePath(family, path);
            ex.setThreads(threads);
          },
        });
      }
    }
    return out;
  }
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
  const ex = extras();
  if (ex) {
    ex.setIsa(ex.cpuInfo().best);
    ex.setThreads(2);
  }
}
