/**
 * In-process A/B of the f32 SGEMM on the GEMM calls of one HAT small-preset training step
 * (1 thread by default): the 27 shapes that `hat_train_ab.js --profile --shapes` lists, each called
 * as often as in a step (forward x W^T = NT, backward g W = NN, weight gradient g^T x = TN; all
 * contiguous, beta 0). Each `--root` is a tfree checkout with dist/ and the native addon built; all
 * addons are loaded into this one process. Per round every root runs the step's GEMMs once (the
 * order rotates every round); the output gives per root the best and median seconds per step's
 * GEMMs (wall and CPU), the ratios to the first root (of the bests and the median of the
 * per-round ratios), per shape the best GFLOP/s of each root, and whether every root gave the
 * first root's bits on every shape.
 *
 * Run: npx tsc -p tsconfig.json && flock /work/bench.lock node dist/experiments/hat_gemm_ab.js \
 *        --root OLD --root NEW [--rounds 8] [--threads 1] [--isa avx2] [--preset small|tiny] [--flush 64]
 * `--root DIR@ISA` / `--root DIR@GEMMPATH` (e.g. `--root ../b@avx512-zmm`) runs that build on another
 * ISA level / gemm family path. `--flush MIB` writes a MIB MiB buffer before every call (untimed), so
 * that the operands come from DRAM as in a training step, not from the caches of the previous call.
 */
import * as os from 'node:os';
import { args, arg, intArg, choiceArg, usageError, median } from './argv.js';
import { gemmRoots } from './root_modules.js';
import { randArray } from '../bench/rand.js';


// [transA, transB, M, N, K, calls per step] of the small preset (hat_train_ab --profile --shapes, 2026-12-04)
const SMALL: [string, number, number, number, number][] = [
  ['NN', 432, 512, 1408, 16], ['NT', 432, 1408, 512, 16], ['TN', 1408, 512, 432, 16],
  ['TN', 704, 256, 2048, 10], ['NN', 2048, 256, 704, 10], ['TN', 512, 512, 432, 32],
  ['NN', 432, 512, 512, 32], ['NT', 432, 512, 512, 32], ['NT', 2048, 704, 256, 10],
  ['TN', 256, 256, 2048, 23], ['NT', 2048, 256, 256, 23], ['NN', 2048, 256, 256, 23],
  ['NT', 432, 512, 1408, 8], ['TN', 512, 1408, 432, 8], ['NN', 432, 1408, 512, 8],
  ['TN', 256, 704, 2048, 5], ['NT', 2048, 256, 704, 5], ['NN', 2048, 704, 256, 5],
  ['TN', 256, 512, 432, 4], ['NT', 432, 256, 512, 4], ['NN', 432, 512, 256, 4],
  ['TN', 256, 256, 432, 3], ['NN', 432, 256, 256, 3], ['NT', 432, 256, 256, 3],
  ['NT', 432, 512, 256, 1], ['TN', 512, 256, 432, 1], ['NN', 432, 256, 512, 1],
];
// tiny (hat_train_ab --preset tiny --profile --shapes, 2026-12-04; the 22 largest of 30)
const TINY: [string, number, number, number, number][] = [
  ['NN', 4096, 128, 352, 6], ['NT', 4096, 128, 128, 14], ['NT', 4096, 352, 128, 6], ['TN', 128, 128, 4096, 14],
  ['TN', 352, 128, 4096, 6], ['NN', 4096, 128, 128, 14], ['TN', 128, 352, 4096, 3], ['TN', 704, 256, 880, 4],
  ['NT', 880, 704, 256, 4], ['NT', 4096, 128, 352, 3], ['NN', 880, 256, 704, 4], ['NN', 4096, 352, 128, 3],
  ['NN', 880, 256, 256, 8], ['TN', 256, 256, 880, 8], ['NT', 880, 256, 256, 8], ['TN', 256, 704, 880, 2],
  ['NT', 880, 256, 704, 2], ['NN', 880, 704, 256, 2], ['NN', 880, 256, 128, 3], ['NT', 880, 128, 256, 3],
  ['TN', 256, 128, 4096, 1], ['NN', 4096, 128, 256, 1],
];

const roots = args('root');
if (roots.length < 2) usageError('give --root OLD --root NEW [--root ...]');
const rounds = intArg('rounds', 8);
const threads = intArg('threads', 1);
const isa = arg('isa', 'avx2');
const preset = choiceArg('preset', 'small', ['small', 'tiny']);
// --flush MIB: before every call, write one float per cache line of a MIB MiB buffer, so that A, B
// and C come from DRAM rather than from the caches of the previous call (as between the kernels of
// a training step); the flush is not timed (subtracted from the wall and CPU seconds)
const flushMiB = intArg('flush', 0);
if (!(flushMiB >= 0)) usageError('bad --flush');
const junk = new Float32Array(flushMiB * 262144);
const shapes = preset === 'small' ? SMALL : TINY;

const { nat, paths: pathNames } = await gemmRoots(roots, isa); // --root DIR@ISA / DIR@GEMMPATH: see gemmRoots
for (const nb of nat) nb.extras.setThreads(threads);
const R = roots.length;
const names = roots.map((_, i) => (i === 0 ? 'old' : R === 2 ? 'new' : `new${i}`));

interface Shape {
  key: string;
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  calls: number;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array[];
  /** per root: best seconds of one call */
  best: number[];
  same: boolean[];
}
const list: Shape[] = shapes.map(([t, M, N, K, calls], i) => ({
  key: `${t} M${M} N${N} K${K} x${calls}`,
  ta: t[0] === 'T',
  tb: t[1] === 'T',
  M,
  N,
  K,
  calls,
  A: randArray(M * K, 2 * i + 1),
  B: randArray(K * N, 2 * i + 2),
  C: roots.map(() => new Float32Array(M * N)),
  best: roots.map(() => Infinity),
  same: roots.map(() => true),
}));
const flop = list.reduce((s, x) => s + 2 * x.M * x.N * x.K * x.calls, 0);

const wall: number[][] = roots.map(() => []);
const cpu: number[][] = roots.map(() => []);
const loads: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < R; k++) {
    const i = (k + r) % R;
    const g = nat[i].kernels;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let flushS = 0;
    for (const s of list) {
      const lda = s.ta ? s.M : s.K;
      const ldb = s.tb ? s.K : s.N;
      const C = s.C[i];
      for (let c = 0; c < s.calls; c++) {
        if (junk.length > 0) {
          const f0 = performance.now();
          for (let j = 0; j < junk.length; j += 16) junk[j] += 1;
          flushS += (performance.now() - f0) / 1e3;
        }
        C.fill(NaN);
        const t = performance.now();
        g.gemm(1, s.ta, s.tb, s.M, s.N, s.K, 1, s.A, 0, lda, 0, s.B, 0, ldb, 0, 0, C, 0, s.N, 0);
        s.best[i] = Math.min(s.best[i], (performance.now() - t) / 1e3);
      }
    }
    wall[i].push((performance.now() - t0) / 1e3 - flushS);
    const cu = process.cpuUsage(c0);
    cpu[i].push((cu.user + cu.system) / 1e6 - flushS);
  }
  for (const s of list)
    for (let i = 1; i < R; i++) {
      const a = s.C[0],
        b = s.C[i];
      for (let k = 0; k < a.length; k++) if (!(a[k] === b[k] || (Number.isNaN(a[k]) && Number.isNaN(b[k])))) s.same[i] = false;
    }
  loads.push(os.loadavg()[0]);
  process.stderr.write(`round ${r + 1}/${rounds} (load ${os.loadavg()[0].toFixed(2)})\n`);
}

const out: string[] = [
  `HAT ${preset} step's GEMMs (${list.length} shapes, ${(flop / 1e9).toFixed(1)} GFLOP), ${threads} thread(s), ${isa}; ${rounds} rounds, rotating order${flushMiB > 0 ? `; caches flushed (${flushMiB} MiB written) before every call, untimed` : ''}; load ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
  `${roots.map((r, i) => `${names[i]} = ${r} (gemm path ${pathNames[i]})`).join(', ')}`,
];
for (let i = 0; i < R; i++) {
  const per = (xs: number[], ys: number[]): string =>
    i === 0 ? '' : `; ${names[i]}/old speed best ${(Math.min(...ys) / Math.min(...xs)).toFixed(3)}, median of rounds ${median(xs.map((t, k) => ys[k] / t)).toFixed(3)}`;
  if (i > 0) out.push(`${names[i]}/old speed per round (wall): ${wall[0].map((t, k) => (t / wall[i][k]).toFixed(3)).join(' ')}`);
  out.push(
    `${names[i]}: wall s best ${Math.min(...wall[i]).toFixed(4)} median ${median(wall[i]).toFixed(4)} (${(flop / Math.min(...wall[i]) / 1e9).toFixed(1)} GFLOP/s)${per(wall[i], wall[0])}`,
    `${' '.repeat(names[i].length)}  CPU s best ${Math.min(...cpu[i]).toFixed(4)} median ${median(cpu[i]).toFixed(4)}${per(cpu[i], cpu[0])}`,
  );
}
// the least noisy figure on a shared machine: each shape's best call, times its calls per step
const sumBest = roots.map((_, i) => list.reduce((t, x) => t + x.best[i] * x.calls, 0));
out.push(`sum over shapes of calls x best call: ${sumBest.map((t, i) => `${names[i]} ${t.toFixed(4)} s (${(flop / t / 1e9).toFixed(1)} GFLOP/s)`).join(', ')}${R > 1 ? `; ${sumBest.slice(1).map((t, i) => `${names[i + 1]}/old ${(sumBest[0] / t).toFixed(3)}`).join(', ')}` : ''}`);
out.push('', `| shape | ${names.map((n) => `${n} GFLOP/s (best call)`).join(' | ')} | same bits |`, `|---|${names.map(() => '--:|').join('')}---|`);
for (const s of list) {
  const gf = (t: number): string => ((2 * s.M * s.N * s.K) / t / 1e9).toFixed(1);
  out.push(`| ${s.key} | ${s.best.map(gf).join(' | ')} | ${s.same.slice(1).every((x) => x) ? 'yes' : 'NO'} |`);
}
process.stdout.write(`${out.join('\n')}\n`);
