/**
 * The BoxTE negative sampler alone (`boxteNegatives`, one batch: 256 facts x 75 negatives), two
 * builds in one process: each `--root` is a tfree checkout with its native addon built; the addons
 * are called in turn (the order alternating per repetition) on the same facts and seed, after a
 * 48 MB sweep that evicts the caches as a training step's tables do, and must give the same
 * negatives. Facts: `--facts` random quadruples with ICEWS14's sizes (7128 entities, 230 relations,
 * 365 days; the default 72826 = ICEWS14's training split gives its 256 KB key filter). Prints the
 * minimum, first quartile and median milliseconds of a call per root and new / old (second root
 * against the first). Threads: TFREE_THREADS.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_negatives_ab.js --root OLD --root NEW
 *      [--reps 300] [--facts 72826]
 */
import { createRequire } from 'node:module';
import type { BoxteAddon } from '../src/models/boxte/kernel_native.js';
import { buildKeyTable } from '../src/models/boxte/kernel.js';
import { args, usageError, intArg } from './argv.js';

const roots = args('root');
if (roots.length !== 2) usageError('give --root OLD --root NEW');
const reps = intArg('reps', 300);
const N = intArg('facts', 72826);
const [E, R, nT, B, n] = [7128, 230, 365, 256, 75];
const req = createRequire(import.meta.url);
const addons = roots.map((r) => req(`${r}/native/build/Release/tfree_native.node`) as Pick<BoxteAddon, 'boxteNegatives'>);
let seed = 7;
const rnd = (): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
};
const ints = (len: number, m: number): Int32Array => Int32Array.from({ length: len }, () => Math.floor(rnd() * m));
const facts = { h: ints(N, E), r: ints(N, R), t: ints(N, E), tau: ints(N, nT) };
const kt = buildKeyTable(E, R, nT, [facts]);
const big = new Float32Array(12e6);
const outs = addons.map(() => ({ ent: new Int32Array(B * n), tail: new Uint8Array(B * n) }));
const times: number[][] = addons.map(() => []);
for (let rep = 0; rep < reps; rep++) {
  const idx = ints(B, N);
  const [h, r, t, tau] = [facts.h, facts.r, facts.t, facts.tau].map((a) => idx.map((i) => a[i]));
  const s = Math.floor(rnd() * 4294967296) >>> 0;
  for (const i of rep % 2 === 1 ? [0, 1] : [1, 0]) {
    for (let k = 0; k < big.length; k += 16) big[k] += 1;
    const t0 = process.hrtime.bigint();
    addons[i].boxteNegatives(s, E, nT, h, r, t, tau, n, kt.table, kt.mask, outs[i].ent, outs[i].tail, kt.filter);
    times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  for (let q = 0; q < B * n; q++) {
    if (outs[0].ent[q] !== outs[1].ent[q] || outs[0].tail[q] !== outs[1].tail[q]) throw new Error(`the roots' negatives differ (repetition ${rep}, index ${q})`);
  }
}
const stats = times.map((x) => {
  const s = x.slice().sort((p, q) => p - q);
  return { min: +s[0].toFixed(3), q1: +s[s.length >> 2].toFixed(3), median: +s[s.length >> 1].toFixed(3) };
});
roots.forEach((root, i) => process.stdout.write(`${JSON.stringify({ root, filter_kb: (kt.filter.length * 4) / 1024, ms: stats[i] })}\n`));
const [a, b] = stats;
process.stdout.write(`${JSON.stringify({ threads: process.env.TFREE_THREADS ?? 'default', new_over_old: { min: +(b.min / a.min).toFixed(3), q1: +(b.q1 / a.q1).toFixed(3), median: +(b.median / a.median).toFixed(3) } })}\n`);
