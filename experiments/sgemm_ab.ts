/**
 * In-process A/B of the f32 SGEMM (issue 13: SGEMM 1024 and 2048 at 2 threads >= 85 % of the FMA
 * peak and >= 1.0x OpenBLAS) between builds, with OpenBLAS (Debian's, through the last root's
 * dlopen) in the same loop. Each `--root` is a tfree checkout with dist/ and the native addon built
 * (two or more: the first is "old", each other one is compared with it); all addons are loaded into
 * this one process, each with its own thread pool. For every round and case (size x threads) the
 * runners (the roots, then OpenBLAS) take turns in an order that rotates every round and case;
 * each turn is `--calls` back-to-back calls of C = A B (square, row-major, no transposes, beta 0),
 * all timed (wall and process CPU time); between turns a `--sleep` ms pause (default 2: the tfree
 * pools' workers spin 0.2 ms before sleeping; OpenBLAS's spin about 0.1 s, see `--blas-sleep`).
 * The FMA peak of the path (the bench's probe, `fmaPeak`) is taken before and after the rounds,
 * the best kept. Output per case: best and median GFLOP/s and % of peak of each runner, the speed
 * ratios of each root to the first and to OpenBLAS (of the bests, and the median over rounds of
 * the per-round ratio of each round's best calls), and whether every root gave the bits of the
 * first (which every change of the driver must keep). 1-thread cases also per CPU second.
 *
 * Run: npx tsc -p tsconfig.json && flock /work/bench.lock node dist/experiments/sgemm_ab.js \
 *        --root OLD --root NEW [--root NEW2 ...] [--sizes 1024,2048] [--threads 1,2] [--rounds 6]
 *        [--calls 3] [--sleep 2] [--blas-sleep 2] [--no-blas] [--isa avx2]   (--root DIR@ISA: that build on path ISA;
 *        --root DIR@GEMMPATH, e.g. DIR@avx512-zmm: that build's gemm family path GEMMPATH, setKernelPath)
 * The header names the GEMM path each root ran (cpuInfo().paths.gemm; builds before the gemm family:
 * paths.ops): since the gemm family, DIR@avx512 on AMD Zen 4 runs the avx2 GEMM (its default there).
 */
import * as os from 'node:os';
import { args, arg, usageError, median } from './argv.js';
import { gemmRoots } from './root_modules.js';
import { randArray } from '../bench/rand.js';

const sleep = (ms: number): void => {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

const roots = args('root');
if (roots.length < 2) usageError('give --root OLD --root NEW [--root ...]');
const sizes = arg('sizes', '1024,2048').split(',').map(Number);
const threadList = arg('threads', '1,2').split(',').map(Number);
const rounds = Number(arg('rounds', '6'));
const calls = Number(arg('calls', '3'));
const pause = Number(arg('sleep', '2'));
const blasPause = Number(arg('blas-sleep', String(pause)));
const useBlas = !process.argv.includes('--no-blas');
const isa = arg('isa', 'avx2');
if (sizes.some((s) => !(s > 0)) || threadList.some((t) => !(t > 0)) || !(rounds > 0) || !(calls > 0)) usageError('bad --sizes / --threads / --rounds / --calls');

const { nat, paths: gemmPaths } = await gemmRoots(roots, isa); // --root DIR@ISA / DIR@GEMMPATH: see gemmRoots
const ex = nat[nat.length - 1].extras;
const blas = useBlas ? ex.openblasLoad() : null;
if (useBlas && !blas) process.stderr.write('OpenBLAS not found: running without it\n');


const peak = new Map<number, number>();
const measurePeak = (): void => {
  for (const t of threadList) peak.set(t, Math.max(peak.get(t) ?? 0, ex.fmaPeak(1e8, t, isa)));
};
measurePeak();

const R = roots.length;
const BLAS = R; // runner index of OpenBLAS
const runners = Array.from({ length: blas ? R + 1 : R }, (_, i) => i);
const names = [...roots.map((_, i) => (i === 0 ? 'old' : R === 2 ? 'new' : `new${i}`)), 'OpenBLAS'];

interface Case {
  N: number;
  threads: number;
  A: Float32Array;
  B: Float32Array;
  /** per runner: C, and per round the list of call times (s) and CPU times (s) */
  C: Float32Array[];
  times: number[][][];
  cpu: number[][][];
  same: boolean[];
}
const cases: Case[] = [];
for (const N of sizes) {
  const A = randArray(N * N, 1);
  const B = randArray(N * N, 2);
  for (const threads of threadList) {
    cases.push({ N, threads, A, B, C: runners.map(() => new Float32Array(N * N)), times: runners.map(() => []), cpu: runners.map(() => []), same: roots.map(() => true) });
  }
}
const loads: number[] = [];
for (let r = 0; r < rounds; r++) {
  cases.forEach((c, ci) => {
    const order = runners.map((_, k) => runners[(k + r + ci) % runners.length]);
    for (const i of order) {
      const ts: number[] = [];
      const cs: number[] = [];
      if (i < R) nat[i].extras.setThreads(c.threads);
      for (let k = 0; k < calls; k++) {
        c.C[i].fill(NaN);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        if (i < R) nat[i].kernels.gemm(1, false, false, c.N, c.N, c.N, 1, c.A, 0, c.N, 0, c.B, 0, c.N, 0, 0, c.C[i], 0, c.N, 0);
        else ex.openblasSgemm(c.N, c.N, c.N, c.A, c.B, c.C[i], c.threads);
        ts.push((performance.now() - t0) / 1e3);
        const cu = process.cpuUsage(c0);
        cs.push((cu.user + cu.system) / 1e6);
      }
      c.times[i].push(ts);
      c.cpu[i].push(cs);
      sleep(i === BLAS ? blasPause : pause);
    }
    for (let i = 1; i < R; i++) {
      const a = c.C[0],
        b = c.C[i];
      for (let k = 0; k < a.length; k++) if (!(a[k] === b[k])) c.same[i] = false;
    }
  });
  loads.push(os.loadavg()[0]);
  process.stderr.write(`round ${r + 1}/${rounds} (load ${os.loadavg()[0].toFixed(2)})\n`);
}
measurePeak();

const gf = (N: number, t: number): number => (2 * N * N * N) / t / 1e9;
const out: string[] = [
  `${roots.map((r, i) => `${names[i]} = ${r} (gemm ${gemmPaths[i]})`).join(', ')}; ${isa}; ${rounds} rounds x ${calls} calls per runner, rotating order, ${pause} ms pause (${blasPause} ms after OpenBLAS); ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}); 1-minute load ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}.`,
  `FMA peak (${isa} probe, best of 2): ${threadList.map((t) => `${t} thr ${(peak.get(t) ?? NaN).toFixed(1)}`).join(', ')} GFLOP/s. ${blas ? `peer: ${blas}` : 'no OpenBLAS'}`,
  '',
];
const newer = roots.map((_, i) => i).filter((i) => i > 0);
out.push(
  `| case | ${runners.map((i) => `${names[i]} GFLOP/s best / median (% peak)`).join(' | ')} | ${newer.map((i) => `${names[i]}/old best, median of rounds |${blas ? ` ${names[i]}/OpenBLAS best, median of rounds |` : ''}`).join(' ')} same bits |`,
  `|---|${runners.map(() => '--:|').join('')}${newer.map(() => (blas ? '--:|--:|' : '--:|')).join('')}---|`,
);
for (const c of cases) {
  const pk = peak.get(c.threads) ?? NaN;
  const best = runners.map((i) => Math.min(...c.times[i].flat()));
  const med = runners.map((i) => median(c.times[i].flat()));
  const roundBest = runners.map((i) => c.times[i].map((ts) => Math.min(...ts)));
  const cell = (i: number): string => `${gf(c.N, best[i]).toFixed(1)} / ${gf(c.N, med[i]).toFixed(1)} (${((100 * gf(c.N, best[i])) / pk).toFixed(0)} / ${((100 * gf(c.N, med[i])) / pk).toFixed(0)} %)`;
  // speed of runner i over runner j: of the bests, and the median of the per-round ratios
  const ratio = (i: number, j: number): string => `${(best[j] / best[i]).toFixed(3)}, ${median(roundBest[i].map((t, k) => roundBest[j][k] / t)).toFixed(3)}`;
  out.push(
    `| ${c.N}, ${c.threads} thr | ${runners.map(cell).join(' | ')} | ${newer.map((i) => `${ratio(i, 0)} |${blas ? ` ${ratio(i, BLAS)} |` : ''}`).join(' ')} ${newer.map((i) => (c.same[i] ? 'yes' : 'NO')).join(' / ')} |`,
  );
}
out.push('', 'ratios are speed ratios (above 1: the first named faster); % peak = GFLOP/s over the probe at that thread count');
// Per CPU second too: on a loaded machine the CPU time leaves out the time other processes had the
// cores. At 2 threads it also counts the spinning of a thread that waits for the other (builds whose
// pool waits yield the core after ~0.1 ms count less of it; OpenBLAS's idle threads spin ~0.1 s after each
// call, partly inside the next runner's timing), so read those rows with care.
{
  out.push('', 'per CPU second (process user + system time): GFLOP/s best / median; speed ratios to old (and OpenBLAS): of the bests, median of per-round ratios');
  for (const c of cases) {
    const best = runners.map((i) => Math.min(...c.cpu[i].flat()));
    const med = runners.map((i) => median(c.cpu[i].flat()));
    const rb = runners.map((i) => c.cpu[i].map((ts) => Math.min(...ts)));
    const ratio = (i: number, j: number): string => `${(best[j] / best[i]).toFixed(3)}, ${median(rb[i].map((t, k) => rb[j][k] / t)).toFixed(3)}`;
    out.push(
      `${c.N}, ${c.threads} thr: ${runners.map((i) => `${names[i]} ${gf(c.N, best[i]).toFixed(1)} / ${gf(c.N, med[i]).toFixed(1)}`).join(', ')}; ${newer.map((i) => `${names[i]}/old ${ratio(i, 0)}${blas ? `, ${names[i]}/OpenBLAS ${ratio(i, BLAS)}` : ''}`).join('; ')}`,
    );
  }
}
process.stdout.write(`${out.join('\n')}\n`);
