/**
 * The corners' vector log (native/boxte.cc, log_abs_eps_avx2: glibc's log algorithm, four doubles at a
 * time on AVX2 + FMA) against std::log(|f| + 1e-8) for every non-negative float f (2^31 + 1 bit
 * patterns, 0 to +inf; `--step S` checks every S-th): prints the number of results that differ in
 * any bit (must be 0; -1 where the addon has no AVX2 path) and the seconds taken. boxteCorners relies
 * on it to keep std::log's bits (docs/boxte.md, ninth pass). Threads: TFREE_THREADS.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_log_check.js [--step 1]
 */
import { createRequire } from 'node:module';
import { intArg } from './argv.js';
import { nativeAddonPath } from '../src/tensor/kernels/native.js';

const addon = createRequire(import.meta.url)(nativeAddonPath()) as { boxteLogCheck?: (lo: number, hi: number, step: number) => number; boxteIsa?: () => string };
if (typeof addon.boxteLogCheck !== 'function') {
  process.stderr.write('boxte_log_check: the native addon has no boxteLogCheck (rebuild: node scripts/build-native.mjs)\n');
  process.exit(1);
}
const step = intArg('step', 1, 1, 1 << 30);
const t0 = performance.now();
const mismatches = addon.boxteLogCheck(0, 0x7f800001, step);
process.stdout.write(`${JSON.stringify({ isa: addon.boxteIsa?.(), step, checked: Math.ceil(0x7f800001 / step), mismatches, seconds: Math.round(performance.now() - t0) / 1000 })}\n`);
if (mismatches !== 0) process.exitCode = 1;
