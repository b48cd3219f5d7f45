/**
 * Loader of the native C++ kernel addon (`native/`, built by `scripts/build-native.mjs` on install).
 *
 * `loadNative()` never throws: it returns `{ error }` with the reason (including the content of
 * `native/build/BUILD_FAILED.txt` when the install-time build failed) so the caller can fall back
 * to the pure-TypeScript kernels and say why, once.
 *
 * The addon's functions have the exact positional signatures of the `Kernels` interface (nullable
 * arguments accept `null`), so they are assigned directly: no wrapper closure per call. The
 * exception is attention, whose 14 shape and mask arguments the interface takes as one
 * `AttentionArgs` object and the addon positionally (`attnTuple`, a few calls per layer).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { AttentionArgs, Kernels, NativeExtras } from './types.js';

/** Diagnostics beyond `NativeExtras` (kept out of the `Kernels` interface). */
export interface NativeExtrasInternal extends NativeExtras {
  /** Older name of setIsa. */
  setSimd(isa: string): string;
  /** Whether the CPU check found AVX2 and FMA. */
  readonly cpuAvx2: boolean;
  /**
   * Implementations of a kernel family this CPU and build run, best first: gemm ('avx512' = the
   * 14x32 AVX-512 GEMM, the default on AVX-512 CPUs but AMD Zen 4; 'avx512-zmm' = the same kernel on
   * Zen 4, listed but not the default there (its AVX2 GEMM measured faster), a test path; 'avx2',
   * 'neon', 'generic'), packed ('avx512-vnni',
   * 'avx512-ymm' = the AVX-VNNI kernel's code with EVEX encoding, a test path; 'avxvnni', 'avx2',
   * 'generic'), packedLut ('avx512', 'avx2', 'generic'), bf16 ('amx-bf16' = AMX tiles for bf16
   * activations and 16 rows or more, listed but not the default until measured; 'avx512-bf16' =
   * vdpbf16ps, 'avx512', 'avx2', 'generic').
   */
  familyPaths(family: KernelFamily): string[];
  /** Forces one implementation of a family (tests, bench; the next setIsa undoes it); returns it. */
  setKernelPath(family: KernelFamily, path: string): string;
}

/** Kernel families whose implementation tests and benches can force one by one. */
export type KernelFamily = 'gemm' | 'packed' | 'packedLut' | 'bf16';

export type NativeLoadResult = { kernels: Kernels; extras: NativeExtrasInternal; path: string } | { error: string };

/** The functions the addon exports (checked at load time). */
const KERNEL_NAMES = [
  'gemm',
  'unary',
  'unaryBackward',
  'swiglu',
  'swigluBackward',
  'binary',
  'copyStrided',
  'affine',
  'axpy',
  'reduce',
  'sumSquares',
  'softmax',
  'softmaxBackward',
  'rmsnorm',
  'rmsnormBackward',
  'layernorm',
  'layernormBackward',
  'gather',
  'scatterAdd',
  'rope',
  'attention',
  'attentionBackward',
  'attentionScoresSize',
  'crossEntropy',
  'crossEntropyBackward',
  'adamw',
  'packedMatmul',
  'packedLutMatmul',
  'weightBuffer',
  'bf16Matmul',
  'quantizeBlocks',
  'kmeansLloyd',
  'widenBf16',
] as const satisfies readonly (keyof Kernels)[];

const EXTRA_NAMES = [
  'getThreads',
  'setThreads',
  'simd',
  'setSimd',
  'setIsa',
  'cpuInfo',
  'fmaPeak',
  'int8Peak',
  'readSum',
  'openblasLoad',
  'openblasSgemm',
  'openblasSgemv',
  'noop',
  'familyPaths',
  'setKernelPath',
] as const satisfies readonly (keyof NativeExtrasInternal)[];

/** The addon's attention arguments in its positional order (those of `AttentionArgs`). */
type AttnTuple = [
  B: number,
  Hq: number,
  Hkv: number,
  Tq: number,
  Tk: number,
  D: number,
  scale: number,
  causal: boolean,
  window: number,
  qPos: Int32Array | null,
  kPos: Int32Array | null,
  qSeg: Int32Array | null,
  kSeg: Int32Array | null,
  mask: Uint8Array | null,
];

function attnTuple(a: AttentionArgs): AttnTuple {
  return [a.B, a.Hq, a.Hkv, a.Tq, a.Tk, a.D, a.scale, a.causal, a.window, a.qPos, a.kPos, a.qSeg, a.kSeg, a.mask];
}

type F32 = Float32Array;

/** The addon's attention functions (native/addon.cc: Attention, AttentionBackward, AttentionScores). */
interface AddonAttention {
  attention(q: F32, k: F32, v: F32, out: F32, lse: F32, ...rest: [...AttnTuple, F32 | null]): void;
  attentionBackward(q: F32, k: F32, v: F32, out: F32, lse: F32, gOut: F32, gq: F32, gk: F32, gv: F32, ...rest: [...AttnTuple, F32 | null]): void;
  attentionScoresSize(...a: AttnTuple): number;
}

type Addon = Omit<Kernels, 'name' | keyof AddonAttention> & AddonAttention & NativeExtrasInternal;

/** Package root: this file is dist/src/tensor/kernels/native.js, four levels below it. */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../../../', import.meta.url));
}

/** Path of the built addon (`TFREE_NATIVE_PATH` overrides it). */
export function nativeAddonPath(): string {
  return process.env.TFREE_NATIVE_PATH ?? join(packageRoot(), 'native', 'build', 'Release', 'tfree_native.node');
}

function buildFailure(root: string): string | null {
  try {
    const p = join(root, 'native', 'build', 'BUILD_FAILED.txt');
    return existsSync(p) ? readFileSync(p, 'utf8').trim() : null;
  } catch {
    return null;
  }
}

let cached: NativeLoadResult | undefined;

/** Loads (once) and returns the native kernels, or `{ error }` saying why they are unavailable. */
export function loadNative(): { kernels: Kernels; extras: NativeExtrasInternal } | { error: string } {
  if (cached === undefined) cached = loadUncached();
  return cached;
}

function loadUncached(): NativeLoadResult {
  let root: string;
  let path: string;
  try {
    root = packageRoot();
    path = nativeAddonPath();
  } catch (e) {
    return { error: `cannot locate the package root: ${String(e)}` };
  }
  if (!existsSync(path)) {
    const failed = buildFailure(root);
    return {
      error: failed
        ? `native addon build failed at install time: ${failed}`
        : `native addon not built (${path} missing; run \`npm run build\` or \`node scripts/build-native.mjs\`)`,
    };
  }
  let addon: Addon;
  try {
    const require = createRequire(import.meta.url);
    addon = require(path) as Addon;
  } catch (e) {
    return { error: `cannot load ${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
  for (const name of [...KERNEL_NAMES, ...EXTRA_NAMES]) {
    if (typeof addon[name] !== 'function') return { error: `${path} lacks function '${name}' (stale build?)` };
  }
  const kernels: Kernels = {
    name: 'native',
    gemm: addon.gemm,
    unary: addon.unary,
    unaryBackward: addon.unaryBackward,
    swiglu: addon.swiglu,
    swigluBackward: addon.swigluBackward,
    binary: addon.binary,
    copyStrided: addon.copyStrided,
    affine: addon.affine,
    axpy: addon.axpy,
    reduce: addon.reduce,
    sumSquares: addon.sumSquares,
    softmax: addon.softmax,
    softmaxBackward: addon.softmaxBackward,
    rmsnorm: addon.rmsnorm,
    rmsnormBackward: addon.rmsnormBackward,
    layernorm: addon.layernorm,
    layernormBackward: addon.layernormBackward,
    gather: addon.gather,
    scatterAdd: addon.scatterAdd,
    rope: addon.rope,
    attention: (q, k, v, out, lse, a, scores) => addon.attention(q, k, v, out, lse, ...attnTuple(a), scores ?? null),
    attentionBackward: (q, k, v, out, lse, gOut, gq, gk, gv, a, scores) => addon.attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, ...attnTuple(a), scores ?? null),
    attentionScoresSize: (a) => addon.attentionScoresSize(...attnTuple(a)),
    crossEntropy: addon.crossEntropy,
    crossEntropyBackward: addon.crossEntropyBackward,
    adamw: addon.adamw,
    packedMatmul: addon.packedMatmul,
    packedLutMatmul: addon.packedLutMatmul,
    weightBuffer: addon.weightBuffer,
    bf16Matmul: addon.bf16Matmul,
    quantizeBlocks: addon.quantizeBlocks,
    kmeansLloyd: addon.kmeansLloyd,
    widenBf16: addon.widenBf16,
  };
  const extras: NativeExtrasInternal = {
    getThreads: addon.getThreads,
    setThreads: addon.setThreads,
    simd: addon.simd,
    setSimd: addon.setSimd,
    setIsa: addon.setIsa,
    cpuInfo: addon.cpuInfo,
    fmaPeak: addon.fmaPeak,
    int8Peak: addon.int8Peak,
    readSum: addon.readSum,
    openblasLoad: addon.openblasLoad,
    openblasSgemm: addon.openblasSgemm,
    openblasSgemv: addon.openblasSgemv,
    noop: addon.noop,
    familyPaths: addon.familyPaths,
    setKernelPath: addon.setKernelPath,
    cpuAvx2: addon.cpuAvx2 === true,
  };
  return { kernels, extras, path };
}
