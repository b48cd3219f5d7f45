/**
 * Browser stand-in for src/tensor/kernels/native.ts (swapped in by web/vite.config.ts): there is no
 * C++ addon in a page, so loading it reports why and the pure-TypeScript kernels run.
 */
import type { Kernels, NativeExtras } from '../../../src/tensor/kernels/types.js';

export type NativeLoadResult = { kernels: Kernels; extras: NativeExtras; path: string } | { error: string };

const NO_ADDON = 'no native addon in the browser';

export function packageRoot(): string {
  throw new Error(NO_ADDON);
}

export function nativeAddonPath(): string {
  throw new Error(NO_ADDON);
}

export function loadNative(): { error: string } {
  return { error: NO_ADDON };
}
