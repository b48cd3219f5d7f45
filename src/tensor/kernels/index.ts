/**
 * Backend selection. `TFREE_BACKEND=native|js` picks the kernels; without it the native addon is
 * used when it loaded, else the pure-TS kernels (with one stderr note saying why).
 */
import { jsKernels } from './js.js';
import { loadNative } from './native.js';
import type { Kernels, NativeExtras } from './types.js';

export * from './types.js';
export { jsKernels } from './js.js';

export type BackendName = 'native' | 'js';

let nativeCache: { kernels: Kernels; extras: NativeExtras } | { error: string } | undefined;

/** Loads the addon once; returns it or the reason it is unavailable. */
export function nativeBackend(): { kernels: Kernels; extras: NativeExtras } | { error: string } {
  if (nativeCache === undefined) nativeCache = loadNative();
  return nativeCache;
}

/** The native kernels when available, else undefined. */
export function nativeKernels(): Kernels | undefined {
  const n = nativeBackend();
  return 'kernels' in n ? n.kernels : undefined;
}

/** The native kernel path names (ISA levels); which of them a CPU can run is cpuInfo().isas. */
export const NATIVE_ISAS = ['generic', 'avx2', 'avx512', 'neon'] as const;

/**
 * Checks TFREE_ISA (else its older name TFREE_SIMD, which also takes "none"): undefined when unset
 * or usable, else a one-line reason (an unknown name, or a path this CPU or build lacks).
 */
export function isaEnvError(): string | undefined {
  const isaVar = process.env.TFREE_ISA;
  const name = isaVar !== undefined && isaVar !== '' ? 'TFREE_ISA' : 'TFREE_SIMD';
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const v = name === 'TFREE_SIMD' && raw === 'none' ? 'generic' : raw;
  if (!(NATIVE_ISAS as readonly string[]).includes(v)) return `${name} must be one of ${NATIVE_ISAS.join(', ')}, got "${raw}"`;
  const n = nativeBackend();
  if (!('kernels' in n)) return undefined;
  const info = n.extras.cpuInfo();
  if (!info.isas.includes(v)) return `${name}=${raw}: this CPU or build lacks that path (paths here: ${info.isas.join(', ')})`;
  return undefined;
}

/**
 * Names of the backends usable in this process (js always). `TFREE_BACKEND=js` hides the native
 * one, so a whole run (tests included) exercises the pure-TS fallback alone.
 */
export function availableBackends(): BackendName[] {
  if (process.env.TFREE_BACKEND === 'js') return ['js'];
  return nativeKernels() ? ['native', 'js'] : ['js'];
}

let current: Kernels | undefined;
let warned = false;

function pickDefault(): Kernels {
  const want = process.env.TFREE_BACKEND;
  if (want === 'js') return jsKernels;
  const n = nativeBackend();
  if ('kernels' in n) return n.kernels;
  if (want === 'native') {
    throw new Error(`TFREE_BACKEND=native, but the native kernels are unavailable: ${n.error}`);
  }
  if (want !== undefined && want !== '' && want !== 'auto') {
    throw new Error(`TFREE_BACKEND must be "native", "js" or "auto", got "${want}"`);
  }
  if (!warned) {
    warned = true;
    process.stderr.write(`tfree: native kernels unavailable (${n.error}); using the pure-TypeScript kernels\n`);
  }
  return jsKernels;
}

/** The kernels every tensor op uses. */
export function kernels(): Kernels {
  if (current === undefined) current = pickDefault();
  return current;
}

/** Switches the backend for this process. Throws when native is asked for but unavailable. */
export function setBackend(name: BackendName): void {
  if (name === 'js') {
    current = jsKernels;
    return;
  }
  const n = nativeBackend();
  if (!('kernels' in n)) throw new Error(`native kernels unavailable: ${n.error}`);
  current = n.kernels;
}

export function backendName(): BackendName {
  return kernels().name;
}

/** Runs fn with the given backend, restoring the previous one afterwards. */
export function withBackend<T>(name: BackendName, fn: () => T): T {
  const prev = kernels();
  setBackend(name);
  try {
    return fn();
  } finally {
    current = prev;
  }
}
