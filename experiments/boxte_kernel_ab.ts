/**
 * The BoxTE training kernel alone (`boxteTrainGroups`, forward + backward of one batch), two or more
 * builds in one process: each `--root` is a tfree checkout with its native addon built
 * (native/build/Release/tfree_native.node); the addons are loaded side by side and called in turn,
 * `--reps` times each after 2 warm-up calls, so every build sees the same machine load. Inputs are
 * random with ICEWS14's sizes (7128 entities, 230 relations, batch 256, 75 negatives, tanh, L2; `--dim`,
 * default 154); `--mod M` draws every entity id below M (M = 256: all rows in L2, the compute alone);
 * before each call a 48 MB sweep evicts the caches as Adam's does (`--evict 0`: none). Prints per root
 * the minimum and median milliseconds of a call, and new / old (last root against the first).
 * Threads: TFREE_THREADS.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_kernel_ab.js --root OLD --root NEW [--dim 154]
 *      [--reps 30] [--mod 7128] [--evict 1]
 */
import { createRequire } from 'node:module';
import type { BoxteAddon } from '../src/models/boxte/kernel_native.js';
import { arg, args, usageError, intArg } from './argv.js';

type TrainAddon = Pick<BoxteAddon, 'boxteIsa' | 'boxteTrainGroups'>;

const roots = args('root');
if (roots.length === 0) usageError('give --root DIR (once or more)');
const d = intArg('dim', 154);
const reps = intArg('reps', 30);
const E = 7128;
const R = 230;
const B = 256;
const n = 75;
const M = intArg('mod', E);
const evict = arg('evict', '1') !== '0';
const req = createRequire(import.meta.url);
const addons = roots.map((r) => req(`${r}/native/build/Release/tfree_native.node`) as TrainAddon);

let seed = 12345;
const rnd = (): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
};
const normal = (sd: number): number => sd * Math.sqrt(-2 * Math.log(rnd() + 1e-9)) * Math.cos(2 * Math.PI * rnd());
const floats = (len: number, f: (i: number) => number): Float32Array => Float32Array.from({ length: len }, (_, i) => f(i));
const ints = (len: number, m: number): Int32Array => Int32Array.from({ length: len }, () => Math.floor(rnd() * m));
const base = floats(E * d, () => normal(0.4));
const bump = floats(E * d, () => normal(0.4));
const lo = floats(2 * R * d, () => normal(0.3));
const hi = floats(2 * R * d, () => normal(0.3));
const l = floats(2 * R * d, (i) => Math.min(lo[i], hi[i]));
const u = floats(2 * R * d, (i) => Math.max(lo[i], hi[i]));
const c = floats(2 * R * d, (i) => (l[i] + u[i]) / 2);
const w = floats(2 * R * d, (i) => u[i] - l[i] + 1);
const tb = floats(B * d, () => normal(0.1));
const h = ints(B, M);
const r = ints(B, R);
const t = ints(B, M);
const negEnt = ints(B * n, M);
const negTail = Uint8Array.from({ length: B * n }, () => (rnd() < 0.5 ? 1 : 0));
const bufs = addons.map(() => ({
  gBase: new Float32Array(E * d), gBump: new Float32Array(E * d), gc: new Float32Array(2 * R * d), gw: new Float32Array(2 * R * d),
  gTb: new Float32Array(B * d), slots: new Float32Array(2 * E * d),
}));
const big = new Float32Array(12e6);
const times: number[][] = addons.map(() => []);
for (let rep = 0; rep < reps + 2; rep++) {
  addons.forEach((a, i) => {
    if (evict) for (let k = 0; k < big.length; k += 16) big[k] += 1;
    const g = bufs[i];
    const t0 = process.hrtime.bigint();
    a.boxteTrainGroups(B, n, d, true, 2, base, bump, E, l, u, c, w, R, tb, h, r, t, negEnt, negTail, 1 / B, g.gBase, g.gBump, g.gc, g.gw, g.gTb, g.slots, 1);
    if (rep >= 2) times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
  });
}
const sorted = times.map((x) => x.slice().sort((p, q) => p - q));
const stats = sorted.map((x) => ({ min: x[0], median: x[x.length >> 1] }));
roots.forEach((root, i) => {
  process.stdout.write(`${JSON.stringify({ root, isa: addons[i].boxteIsa(), d, min_ms: +stats[i].min.toFixed(2), median_ms: +stats[i].median.toFixed(2) })}\n`);
});
if (roots.length > 1) {
  const a = stats[0];
  const b = stats[stats.length - 1];
  process.stdout.write(`${JSON.stringify({ new_over_old: { min: +(b.min / a.min).toFixed(3), median: +(b.median / a.median).toFixed(3) } })}\n`);
}
