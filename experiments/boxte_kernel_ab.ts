/**
 * The BoxTE training kernel alone (`boxteTrainGroups`, forward + backward of one batch), two or more
 * builds in one process: each `--root` is a tfree checkout with its native addon built
 * (native/build/Release/tfree_native.node); the addons are loaded side by side and called in turn,
 * `--reps` times each after 2 warm-up calls, so every build sees the same machine load. Inputs are
 * random with ICEWS14's sizes (7128 entities, 230 relations, batch 256, 75 negatives, tanh, L2; `--dim`,
 * default 154); `--mod M` draws every entity id below M (M = 256: all rows in L2, the compute alone);
 * before each call a 48 MB sweep evicts the caches as Adam's does (`--evict 0`: none). Prints per root
 * the minimum and median milliseconds of a call, and new / old (last root against the first).
 * `--check` first runs every root once on zeroed buffers and exits 1 unless the loss and all five
 * gradients have the bits of the first root's (with `--reps 0` nothing else; `--negatives` sets n, e.g. an even n for an odd group
 * size; `--no-tanh`, `--order 1` the other kernel variants). `--lazy` times the trainer's path (lazy
 * zeroing of the entity gradients: stamps, a new step per call). Threads: TFREE_THREADS.
 *
 * `--root DIR@ISA` caps that entry's addon at ISA (`setIsa`; the same root may appear twice, e.g.
 * `--root .@avx2 --root .@avx512` compares two paths of one build).
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_kernel_ab.js --root OLD --root NEW [--dim 154]
 *      [--reps 30] [--mod 7128] [--evict 1] [--check] [--negatives 75] [--no-tanh] [--order 2] [--lazy]
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BoxteAddon } from '../src/models/boxte/kernel_native.js';
import { arg, args, usageError, intArg, choiceArg, rootSpec } from './argv.js';

type TrainAddon = Pick<BoxteAddon, 'boxteIsa' | 'boxteTrainGroups'>;

const roots = args('root');
if (roots.length === 0) usageError('give --root DIR (once or more)');
const d = intArg('dim', 154);
const reps = intArg('reps', 30, 0);
const E = 7128;
const R = 230;
const B = 256;
const n = intArg('negatives', 75, 0);
const useTanh = !process.argv.includes('--no-tanh');
const order = choiceArg('order', '2', ['1', '2']) === '1' ? 1 : 2;
const M = intArg('mod', E);
const evict = arg('evict', '1') !== '0';
const req = createRequire(import.meta.url);
// ROOT@ISA: that root's addon capped at ISA (setIsa); a root named twice is loaded from a copy of
// its addon file, so each entry has its own instance (own thread pool, own path in force)
const seenAddons = new Set<string>();
const addons = roots.map((spec) => {
  const { root: r, at: isa } = rootSpec(spec);
  // (by real path: `--root .` and `--root ./@avx2` name one file, which require would load once)
  let file = fs.realpathSync(`${r}/native/build/Release/tfree_native.node`);
  if (seenAddons.has(file)) {
    const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tfree-addon-')), 'tfree_native.node');
    fs.copyFileSync(file, copy);
    file = copy;
  }
  seenAddons.add(file);
  const addon = req(file) as TrainAddon & { setIsa(name: string): string };
  if (isa !== '') addon.setIsa(isa);
  return addon;
});

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
  gTb: new Float32Array(B * d), slots: new Float32Array(2 * E * d), stamps: new Int32Array(2 * 2 * E),
}));
const lazy = process.argv.includes('--lazy');
if (process.argv.includes('--check')) {
  // zeroed buffers; then lazy zeroing (stamps, the trainer's path) on buffers of stale garbage, two
  // steps (the second finds the first's stamps), the slot's gradients compared too
  const outs = addons.flatMap((a) => {
    const g = [new Float32Array(E * d), new Float32Array(E * d), new Float32Array(2 * R * d), new Float32Array(2 * R * d), new Float32Array(B * d)];
    const loss = a.boxteTrainGroups(B, n, d, useTanh, order, base, bump, E, l, u, c, w, R, tb, h, r, t, negEnt, negTail, 1 / B, g[0], g[1], g[2], g[3], g[4], new Float32Array(2 * E * d), 1);
    const z = [new Float32Array(E * d).fill(7.5), new Float32Array(E * d).fill(7.5), new Float32Array(2 * R * d), new Float32Array(2 * R * d), new Float32Array(B * d), new Float32Array(2 * E * d).fill(7.5)];
    const stamps = new Int32Array(2 * 2 * E);
    let lz = 0;
    for (const step of [1, 2]) {
      z[2].fill(0);
      z[3].fill(0);
      lz = a.boxteTrainGroups(B, n, d, useTanh, order, base, bump, E, l, u, c, w, R, tb, h, r, t, negEnt, negTail, 1 / B, z[0], z[1], z[2], z[3], z[4], z[5], 1, stamps, step);
    }
    // rows not stamped this step are stale: compare only stamped ones (zero the others)
    for (let q = 0; q < 2; q++)
      for (let s2 = 0; s2 < 2; s2++) {
        const tbl = s2 === 0 ? z[q] : z[5].subarray(q * E * d, (q + 1) * E * d);
        for (let e = 0; e < E; e++) if (stamps[(2 * s2 + q) * E + e] !== 2) tbl.fill(0, e * d, (e + 1) * d);
      }
    return [{ loss, g }, { loss: lz, g: z }];
  });
  const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);
  let ok = true;
  outs.forEach((o, i) => {
    const ref = outs[i % 2];
    const diff = o.g.map((g, q) => bits(g).findIndex((v, k) => v !== bits(ref.g[q])[k]));
    const same = Object.is(o.loss, ref.loss) && diff.every((k) => k < 0);
    ok &&= same;
    process.stdout.write(`${JSON.stringify({ root: roots[i >> 1], lazy: i % 2 === 1, d, n, tanh: useTanh, order, loss: o.loss, same_bits: same, first_diff: diff })}\n`);
  });
  if (!ok) process.exit(1);
  if (reps === 0) process.exit(0);
}
const big = new Float32Array(12e6);
const times: number[][] = addons.map(() => []);
const cpus: number[][] = addons.map(() => []);
for (let rep = 0; rep < reps + 2; rep++) {
  addons.forEach((a, i) => {
    if (evict) for (let k = 0; k < big.length; k += 16) big[k] += 1;
    const g = bufs[i];
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    a.boxteTrainGroups(B, n, d, useTanh, order, base, bump, E, l, u, c, w, R, tb, h, r, t, negEnt, negTail, 1 / B, g.gBase, g.gBump, g.gc, g.gw, g.gTb, g.slots, 1, lazy ? g.stamps : undefined, rep + 1);
    if (rep >= 2) {
      times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
      const cu = process.cpuUsage(c0);
      cpus[i].push((cu.user + cu.system) / 1e3);
    }
  });
}
const sorted = times.map((x) => x.slice().sort((p, q) => p - q));
const stats = sorted.map((x) => ({ min: x[0], median: x[x.length >> 1] }));
const cpuStats = cpus.map((x) => x.slice().sort((p, q) => p - q)).map((x) => ({ min: x[0], median: x[x.length >> 1] }));
roots.forEach((root, i) => {
  process.stdout.write(`${JSON.stringify({ root, isa: addons[i].boxteIsa(), d, min_ms: +stats[i].min.toFixed(2), median_ms: +stats[i].median.toFixed(2), cpu_min_ms: +cpuStats[i].min.toFixed(2), cpu_median_ms: +cpuStats[i].median.toFixed(2) })}\n`);
});
if (roots.length > 1) {
  const a = stats[0];
  const b = stats[stats.length - 1];
  const ca = cpuStats[0];
  const cb = cpuStats[cpuStats.length - 1];
  process.stdout.write(`${JSON.stringify({ new_over_old: { min: +(b.min / a.min).toFixed(3), median: +(b.median / a.median).toFixed(3), cpu_min: +(cb.min / ca.min).toFixed(3), cpu_median: +(cb.median / ca.median).toFixed(3) } })}\n`);
}
