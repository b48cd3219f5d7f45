/**
 * In-process A/B of the batch-1 packed GEMV (issue 13: >= 80 % of the read-bandwidth probe at 2
 * threads) between two builds: each `--root` is a tfree checkout with dist/ and the native addon
 * built; both addons are loaded into this one process (each with its own thread pool, set to
 * `--threads`) and timed on the same packed matrices (quantized once here with the last root's
 * compress module), alternating per round (the order flips every round) together with the
 * bandwidth probe (`readSum` over a 64 MiB buffer, the bench's figure). Per call: three back-to-back
 * calls, the best of the last two; between roots a 2 ms sleep, so that the other pool's workers have
 * stopped spinning. Workloads: int8 / int4 / kmeans4 with int8 activations (the decode kernel,
 * `packedMatmul`), kmeans2 and bin1 through the lookup-table kernel (`packedLutMatmul`), at
 * 4096x4096 and 4096x11008 (`--shapes 4096x11008`, `--formats int4,bin1-lut`; `--act16` adds the
 * int16-activation rows of the decode formats). Output bits are compared between the roots
 * (`same bits` column). The LUT cases give each root its own layout, built by that root's `packedLutLayout`
 * (the in-memory layout may differ between builds), in its `weightBuffer` where the root has one
 * (huge pages), else a plain one. `--cold`: one call per root and round, right after a 48 MiB read
 * (`readSum`) has evicted the matrix, the tables and the code from the caches, as in the bench's
 * interleaved loop (where every other workload runs between two calls of one case); without it the
 * matrix is warm (4096² fits the 32 MiB L3 of the Zen 3 VM). Under load the best and the median can
 * both mislead: the lines after the table give per case the 10 / 25 / 50th percentiles of each root
 * and the quartiles of the per-round new/old ratios.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/gemv_ab.js --root OLD --root NEW
 *      [--threads 2] [--rounds 15] [--shapes 4096x4096,4096x11008] [--formats ...] [--act16] [--cold]
 *      (`--root DIR@PATH`: that build's packed kernels forced to PATH, e.g. avx512-zmm)
 */
import * as os from 'node:os';
import { args, arg, usageError, intArg, median, rootSpec } from './argv.js';
import { forceKernelPath, rootNative, rootPacked, type RootNative } from './root_modules.js';

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const roots = args('root');
if (roots.length !== 2) usageError('give --root OLD --root NEW');
const threads = intArg('threads', 2);
const rounds = intArg('rounds', 15);
const shapes = arg('shapes', '4096x4096,4096x11008')
  .split(',')
  .map((s) => s.split('x').map(Number) as [number, number]);
const formats = arg('formats', 'int8,int4,kmeans4,kmeans2-lut,bin1-lut').split(',');
const act16 = process.argv.includes('--act16');
const cold = process.argv.includes('--cold');

// `--root DIR@PATH`: that build's packed family forced to implementation PATH (setKernelPath; e.g.
// avx512-zmm against avx2 of two checkouts of one commit; one checkout named twice is one module)
const nat: RootNative[] = [];
for (let i = 0; i < roots.length; i++) {
  const { root: r, at: path } = rootSpec(roots[i]);
  roots[i] = r;
  const nb = await rootNative(r);
  if (nat.some((o) => o.extras === nb.extras)) usageError(`${r}: named twice (one module instance); give another checkout`);
  nb.extras.setThreads(threads);
  if (path !== '') forceKernelPath(nb, r, 'packed', path);
  nat.push(nb);
}
const { cq } = await rootPacked(roots[1]);
// each root's own LUT layout function (the layout is an in-memory form that may differ between builds)
const lutMods = await Promise.all(roots.map(async (r) => (await rootPacked(r)).lut));
const { Rng } = (await import(`${roots[1]}/dist/src/nn/index.js`)) as typeof import('../src/nn/index.js');
const randArray = (n: number, seed: number, scale = 1): Float32Array => {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal(0, scale);
  return a;
};

interface Case {
  name: string;
  bytes: number;
  run: (n: RootNative, y: Float32Array) => void;
  N: number;
}
const cases: Case[] = [];
for (const [K, N] of shapes) {
  const W = randArray(N * K, 21 + N, 0.05);
  const x = randArray(K, 22);
  for (const f of formats) {
    const lut = f.endsWith('-lut');
    const fname = lut ? f.slice(0, -4) : f;
    const p = cq.quantizeMatrix(W, N, K, cq.parseFormat(fname), { name: `ab.${fname}`, maxSamples: 65536 });
    const bf16 = p.format.scaleDtype === 'BF16';
    const bytes = cq.formatSize(p.format, N, K).totalBytes;
    if (lut) {
      // each root's own layout buffer, from its weightBuffer where it has one (2 MiB pages), as its PackedLinear
      const Ls = new Map(
        nat.map((nb, ri) => {
          const wb = (nb.kernels as Partial<RootNative['kernels']>).weightBuffer;
          return [nb, lutMods[ri].packedLutLayout(N, K, p.format.bits, p.format.blockSize, p.codes, p.scales, typeof wb === 'function' ? (b: number) => wb(b) : undefined)] as const;
        }),
      );
      cases.push({
        name: `${K}x${N} ${fname} LUT`,
        bytes,
        N,
        run: (n, y) => {
          const L = Ls.get(n)!;
          n.kernels.packedLutMatmul(1, N, K, x, 0, L.codes, p.format.bits, p.levels, L.scales, p.format.blockSize, y, 0);
        },
      });
    } else {
      for (const act8 of act16 ? [true, false] : [true]) {
        cases.push({ name: `${K}x${N} ${fname} ${act8 ? 'int8' : 'int16'} act`, bytes, N, run: (n, y) => n.kernels.packedMatmul(1, N, K, x, 0, p.codes, p.format.bits, p.levels, p.scales, bf16, p.format.blockSize, y, 0, act8) });
      }
    }
  }
}
const big = randArray(16 * 2 ** 20, 7);
const flush = cold ? new Float32Array(12 * 2 ** 20).fill(1) : new Float32Array(0);
const probeBytes = big.length * 4;

// times[root][case] per round (seconds); probe per round (seconds, best of 2, the same addon's readSum)
const times = roots.map(() => cases.map(() => [] as number[]));
const probe = roots.map(() => [] as number[]);
const same = cases.map(() => true);
const ys = roots.map(() => cases.map((c) => new Float32Array(c.N)));
const loads: number[] = [];
const timeOne = (fn: () => void): number => {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    fn();
    const dt = (performance.now() - t0) / 1e3;
    if (i > 0) best = Math.min(best, dt);
  }
  return best;
};
for (let r = 0; r < rounds; r++) {
  for (let ci = 0; ci <= cases.length; ci++) {
    const order = (r + ci) % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      if (ci === cases.length) {
        probe[i].push(timeOne(() => void nat[i].extras.readSum(big, threads)));
      } else {
        ys[i][ci].fill(NaN);
        if (cold) {
          nat[i].extras.readSum(flush, threads);
          const t0 = performance.now();
          cases[ci].run(nat[i], ys[i][ci]);
          times[i][ci].push((performance.now() - t0) / 1e3);
        } else {
          times[i][ci].push(timeOne(() => cases[ci].run(nat[i], ys[i][ci])));
        }
      }
      sleep(2);
    }
    if (ci < cases.length) {
      const a = ys[0][ci],
        b = ys[1][ci];
      for (let k = 0; k < a.length; k++) if (!(a[k] === b[k] || (Number.isNaN(a[k]) && Number.isNaN(b[k])))) same[ci] = false;
    }
  }
  loads.push(os.loadavg()[0]);
  process.stderr.write(`round ${r + 1}/${rounds} (load ${os.loadavg()[0].toFixed(2)})\n`);
}
const pbw = roots.map((_, i) => probeBytes / Math.min(...probe[i]) / 1e9);
const pbwMed = roots.map((_, i) => probeBytes / median(probe[i]) / 1e9);
const out: string[] = [
  `${threads} threads${cold ? ', cold caches' : ''}; old = ${roots[0]}, new = ${roots[1]}; ${rounds} rounds, alternating; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}); 1-minute load ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}.`,
  `probe (64 MiB readSum): best ${pbw.map((v) => v.toFixed(1)).join(' / ')} GB/s, median ${pbwMed.map((v) => v.toFixed(1)).join(' / ')} GB/s (old / new); % columns: GB/s of the packed bytes over the best probe (median: over the median probe)`,
  '',
  '| case | old best ms | new best ms | old median ms | new median ms | old % probe best / median | new % probe best / median | new/old best | new/old median of rounds | same bits |',
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
];
const pb = Math.max(...pbw),
  pm = median([...probe[0], ...probe[1]]);
cases.forEach((c, ci) => {
  const o = times[0][ci],
    n = times[1][ci];
  const pct = (t: number, ref: number): string => ((100 * c.bytes) / t / 1e9 / ref).toFixed(0);
  const pmGBs = probeBytes / pm / 1e9;
  out.push(
    `| ${c.name} | ${(Math.min(...o) * 1e3).toFixed(3)} | ${(Math.min(...n) * 1e3).toFixed(3)} | ${(median(o) * 1e3).toFixed(3)} | ${(median(n) * 1e3).toFixed(3)} | ${pct(Math.min(...o), pb)} / ${pct(median(o), pmGBs)} | ${pct(Math.min(...n), pb)} / ${pct(median(n), pmGBs)} | ${(Math.min(...n) / Math.min(...o)).toFixed(3)} | ${median(o.map((t, k) => n[k] / t)).toFixed(3)} | ${same[ci] ? 'yes' : 'NO'} |`,
  );
});
const quantile = (xs: number[], f: number): number => xs.slice().sort((a, b) => a - b)[Math.floor(f * (xs.length - 1))];
out.push('');
cases.forEach((c, ci) => {
  const o = times[0][ci],
    n = times[1][ci];
  const r = o.map((t, k) => n[k] / t);
  const qs = (xs: number[], fs: number[], scale: number, digits: number): string => fs.map((f) => (quantile(xs, f) * scale).toFixed(digits)).join(' / ');
  out.push(
    `${c.name}: p10 / p25 / p50 ms old ${qs(o, [0.1, 0.25, 0.5], 1e3, 3)}, new ${qs(n, [0.1, 0.25, 0.5], 1e3, 3)}; new/old per round p25 / p50 / p75 ${qs(r, [0.25, 0.5, 0.75], 1, 3)}`,
  );
});
process.stdout.write(`${out.join('\n')}\n`);
