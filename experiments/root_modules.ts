/**
 * A build's modules for the A/B scripts (gemv_ab, isa_ab): each `--root` is a tfree checkout with
 * dist/ and the native addon built; these load that build's code, not this checkout's.
 */
import { NATIVE_ISAS, type Kernels, type NativeExtras } from '../src/tensor/kernels/index.js';
import type { KernelFamily, NativeExtrasInternal } from '../src/tensor/kernels/native.js';
import { rootSpec, usageError } from './argv.js';

export interface RootNative {
  kernels: Kernels;
  extras: NativeExtras;
}

/** The root's native kernel table; throws when its addon does not load. */
export async function rootNative(root: string): Promise<RootNative> {
  const km = (await import(`${root}/dist/src/tensor/kernels/index.js`)) as typeof import('../src/tensor/kernels/index.js');
  const nb = km.nativeBackend();
  if (!('kernels' in nb)) throw new Error(`${root}: native addon not loaded: ${nb.error}`);
  return nb;
}

/** Forces the root's `family` to implementation `path` (setKernelPath); a usage error naming the root when it has none such. */
export function forceKernelPath(nb: RootNative, root: string, family: KernelFamily, path: string): void {
  const ex = nb.extras as NativeExtrasInternal;
  try {
    ex.setKernelPath(family, path);
  } catch (e) {
    usageError(`${root}: no ${family} path ${path} (${e instanceof Error ? e.message : String(e)}; this build runs ${ex.familyPaths(family).join(', ')})`);
  }
}

/**
 * The GEMM A/B scripts' roots (sgemm_ab, hat_gemm_ab): each `--root DIR[@NAME]` loaded and set to
 * its path. `DIR@ISA` runs ISA level ISA instead of `isa`; `DIR@NAME` with a NAME that is no ISA
 * level runs that build's gemm family path NAME (e.g. avx512-zmm) at the best ISA. The builds must
 * differ: one checkout imported twice is one module instance. Returns the tables and the gemm path
 * each root runs (cpuInfo().paths.gemm; builds before the gemm family: paths.ops).
 */
export async function gemmRoots(specs: string[], isa: string): Promise<{ nat: RootNative[]; paths: string[] }> {
  const isaLevels: readonly string[] = NATIVE_ISAS;
  const nat: RootNative[] = [];
  const paths: string[] = [];
  for (const spec of specs) {
    const { root: r, at } = rootSpec(spec);
    const path = at === '' ? isa : at;
    const nb = await rootNative(r);
    if (nat.some((o) => o.extras === nb.extras)) usageError(`${r}: named twice (one module instance); give another checkout`);
    if (isaLevels.includes(path)) {
      if (nb.extras.setIsa(path) !== path) usageError(`${r}: kernel path ${path} not available`);
    } else {
      nb.extras.setIsa(nb.extras.cpuInfo().best);
      forceKernelPath(nb, r, 'gemm', path);
    }
    const p = nb.extras.cpuInfo().paths;
    paths.push(p.gemm ?? p.ops);
    nat.push(nb);
  }
  return { nat, paths };
}

/** The root's quantizer (tfree/compress) and lookup-table layout (js_packed_lut). */
export async function rootPacked(root: string): Promise<{ cq: typeof import('../src/compress/index.js'); lut: typeof import('../src/tensor/kernels/js_packed_lut.js') }> {
  const cq = (await import(`${root}/dist/src/compress/index.js`)) as typeof import('../src/compress/index.js');
  const lut = (await import(`${root}/dist/src/tensor/kernels/js_packed_lut.js`)) as typeof import('../src/tensor/kernels/js_packed_lut.js');
  return { cq, lut };
}
