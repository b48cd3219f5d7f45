/**
 * tfree benchmarks. `npm run bench [-- --json] [-- --only GROUP] [-- --quick]`
 *
 * Groups: peak (FMA peak, read bandwidth), sgemm, gemv, overhead, ops (fused kernels), packed
 * (GEMV from packed weights, bench/packed.ts), splitter (HAT words), hat (HAT training and cached
 * generation vs PyTorch; bench/hat.ts), serve (a load test of `tfree serve`; bench/serve.ts).
 * Every figure is measured in this run; peers (Debian OpenBLAS through the addon's dlopen) run
 * interleaved with ours so that the machine's drift hits both alike. Every row names the native
 * kernel path (ISA) it ran on: the SGEMM rows run every SIMD implementation of the gemm family the
 * CPU has (familyPaths('gemm'): avx512, or avx512-zmm on AMD Zen 4 where avx2 is the default; avx2;
 * neon) and give % of the FMA peak of that implementation's level; other groups use the path in force (TFREE_ISA caps it). Times are the best of the
 * repetitions (the run least disturbed by other load), with the median kept in the JSON too.
 * Results: a table on stdout (or JSON lines with --json) and bench/results/<group>.json.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsKernels, nativeBackend, type Kernels, type NativeExtras, UnaryOp } from '../src/tensor/kernels/index.js';
import { Tensor, add, attention, rmsNorm, softmax, withBackend } from '../src/tensor/index.js';
import { HatSplitter, WordStream, splitBytes, splitBytesOffsets, splitText } from '../src/models/hat/splitter.js';
import { benchHat } from './hat.js';
import { benchPacked, type PackedBenchEnv } from './packed.js';
import type { NativeExtrasInternal } from '../src/tensor/kernels/native.js';
import { benchKg } from './kg.js';
import { benchServe } from './serve.js';
import { randArray } from './rand.js';

export interface BenchRecord {
  bench: string;
  case: string;
  value: number;
  unit: string;
  peer: string | null;
  ratio_vs_peer: number | null;
  /** extra facts (median, peak %, threads...) */
  [k: string]: string | number | null | undefined;
}

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const quick = argv.includes('--quick') || process.env.TFREE_BENCH_QUICK === '1';
const onlyIdx = argv.indexOf('--only');
const only = onlyIdx >= 0 ? argv[onlyIdx + 1] : undefined;
const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');

const records: BenchRecord[] = [];

/** The kernel path(s) the current group runs on (set per group in main; "-" without the addon). */
let groupIsa = '-';

function emit(r: BenchRecord): void {
  if (r.isa === undefined) r.isa = r.backend === 'js' ? 'js' : groupIsa;
  records.push(r);
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
}

function note(s: string): void {
  if (!json) process.stdout.write(`${s}\n`);
  else process.stderr.write(`${s}\n`);
}

/** Prints a table; a table without its own ISA column gets one (the group's kernel path). */
function table(title: string, head: string[], rows: (string | number)[][]): void {
  if (json) return;
  if (!head.includes('ISA')) {
    head = [...head, 'ISA'];
    rows = rows.map((r) => [...r, groupIsa]);
  }
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)));
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  process.stdout.write(`\n${title}\n${line(head)}\n|${w.map((x, i) => (i === 0 ? '-'.repeat(x + 2) : `${'-'.repeat(x + 1)}:`)).join('|')}|\n${cells.map(line).join('\n')}\n`);
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

/**
 * Times fns interleaved: each rep runs every fn once; returns best and median wall seconds per fn,
 * and the best process CPU seconds (user + system, all threads) per fn: on a loaded machine the
 * CPU time leaves out the time other processes had the cores.
 */
function timeInterleaved(fns: (() => void)[], opts: { minReps?: number; maxReps?: number; budgetSec?: number } = {}): { best: number; median: number; cpu: number }[] {
  const minReps = opts.minReps ?? 3;
  const maxReps = opts.maxReps ?? 50;
  const budget = (opts.budgetSec ?? 1.5) * (quick ? 0.3 : 1);
  for (const f of fns) f(); // warm-up
  const times: number[][] = fns.map(() => []);
  const cpu: number[] = fns.map(() => Infinity);
  const t0 = now();
  for (let rep = 0; rep < maxReps; rep++) {
    fns.forEach((f, i) => {
      const c = process.cpuUsage();
      const s = now();
      f();
      times[i].push(now() - s);
      const u = process.cpuUsage(c);
      cpu[i] = Math.min(cpu[i], (u.user + u.system) / 1e6);
    });
    if (rep + 1 >= minReps && now() - t0 > budget) break;
  }
  return times.map((ts, i) => {
    const sorted = ts.slice().sort((a, b) => a - b);
    return { best: sorted[0], median: sorted[Math.floor(sorted.length / 2)], cpu: cpu[i] };
  });
}

function native(): { kernels: Kernels; extras: NativeExtras } | undefined {
  const n = nativeBackend();
  if ('kernels' in n) return n;
  note(`native kernels unavailable (${n.error}): native figures are skipped`);
  return undefined;
}

// ---------------------------------------------------------------------------------------------

export interface Peak {
  /** FMA peak of the path in force (the one every group but sgemm uses), 1 and 2 threads */
  fma1: number;
  fma2: number;
  /** FMA peak per kernel path the CPU has (GFLOP/s at 1 and 2 threads) */
  fmaByIsa: Record<string, { t1: number; t2: number; cpu1: number }>;
  /** int8 dot-product peak (vpdpbusd; GOP/s) and its instruction set, when the CPU has one */
  int8: { isa: string; t1: number; t2: number } | null;
  /** streaming read of a 64 MiB buffer (the GEMV's footprint, read repeatedly as the GEMV is) */
  readGBs1: number;
  readGBs2: number;
  /** streaming read of a 512 MiB buffer (beyond any cache: DRAM) */
  dramGBs1: number;
  dramGBs2: number;
}

let peakCache: Peak | undefined;

function measurePeak(n: { kernels: Kernels; extras: NativeExtras }): Peak {
  if (peakCache) return peakCache;
  const iters = quick ? 2e7 : 1e8;
  const info = n.extras.cpuInfo();
  const fmaByIsa: Record<string, { t1: number; t2: number; cpu1: number }> = {};
  const simdIsas = info.isas.filter((i) => i !== 'generic');
  for (const isa of simdIsas) fmaByIsa[isa] = { t1: 0, t2: 0, cpu1: 0 };
  let i8isa = '';
  let i8t1 = 0;
  let i8t2 = 0;
  // interleaved, best of 3: the probes see the same load
  for (let r = 0; r < 3; r++) {
    for (const isa of simdIsas) {
      // 1 thread: also per CPU second (the flops done / the CPU time the call got)
      const c = process.cpuUsage();
      const s = now();
      const g1 = n.extras.fmaPeak(iters, 1, isa);
      const wall = now() - s;
      const u = process.cpuUsage(c);
      fmaByIsa[isa].t1 = Math.max(fmaByIsa[isa].t1, g1);
      fmaByIsa[isa].cpu1 = Math.max(fmaByIsa[isa].cpu1, (g1 * wall) / ((u.user + u.system) / 1e6));
      fmaByIsa[isa].t2 = Math.max(fmaByIsa[isa].t2, n.extras.fmaPeak(iters, 2, isa));
    }
    const a = n.extras.int8Peak(iters / 2, 1);
    const b = n.extras.int8Peak(iters / 2, 2);
    if (a && b) {
      i8isa = a.isa;
      i8t1 = Math.max(i8t1, a.gops);
      i8t2 = Math.max(i8t2, b.gops);
    }
  }
  const int8: Peak['int8'] = i8isa ? { isa: i8isa, t1: i8t1, t2: i8t2 } : null;
  const inForce = fmaByIsa[info.paths.ops] ?? { t1: n.extras.fmaPeak(iters, 1), t2: n.extras.fmaPeak(iters, 2), cpu1: NaN };
  const fma1 = inForce.t1;
  const fma2 = inForce.t2;
  // The VM reports a 32 MiB L3 but the host's may be larger (a 64 MiB GEMV ran faster than a
  // 256 MiB streaming read): the GEMV is compared with a read of the same footprint, and the
  // DRAM figure is shown beside it.
  const gemvSized = randArray(16 * 2 ** 20, 7); // 64 MiB
  const [r1, r2] = timeInterleaved([() => void n.extras.readSum(gemvSized, 1), () => void n.extras.readSum(gemvSized, 2)], { minReps: 5, maxReps: 40, budgetSec: 2 });
  const huge = new Float32Array(128 * 2 ** 20).fill(1); // 512 MiB
  const [d1, d2] = timeInterleaved([() => void n.extras.readSum(huge, 1), () => void n.extras.readSum(huge, 2)], { minReps: 3, maxReps: 6, budgetSec: 3 });
  const gb = gemvSized.length * 4;
  const hb = huge.length * 4;
  peakCache = { fma1, fma2, fmaByIsa, int8, readGBs1: gb / r1.best / 1e9, readGBs2: gb / r2.best / 1e9, dramGBs1: hb / d1.best / 1e9, dramGBs2: hb / d2.best / 1e9 };
  return peakCache;
}

function benchPeak(): void {
  const n = native();
  if (!n) return;
  const p = measurePeak(n);
  const rows: (string | number)[][] = [];
  for (const [isa, v] of Object.entries(p.fmaByIsa)) {
    emit({ bench: 'peak', case: `fma ${isa} 1 thread`, value: v.t1, unit: 'GFLOP/s', peer: null, ratio_vs_peer: null, isa });
    emit({ bench: 'peak', case: `fma ${isa} 2 threads`, value: v.t2, unit: 'GFLOP/s', peer: null, ratio_vs_peer: null, isa });
    emit({ bench: 'peak', case: `fma ${isa} 1 thread per CPU second`, value: v.cpu1, unit: 'GFLOP/s', peer: null, ratio_vs_peer: null, isa });
    rows.push([`FMA peak GFLOP/s (f32)`, v.t1, v.t2, isa], [`FMA peak GFLOP/s (f32) per CPU second`, v.cpu1, NaN, isa]);
  }
  if (p.int8) {
    emit({ bench: 'peak', case: `int8 dot ${p.int8.isa} 1 thread`, value: p.int8.t1, unit: 'GOP/s', peer: null, ratio_vs_peer: null, isa: p.int8.isa });
    emit({ bench: 'peak', case: `int8 dot ${p.int8.isa} 2 threads`, value: p.int8.t2, unit: 'GOP/s', peer: null, ratio_vs_peer: null, isa: p.int8.isa });
    rows.push(['int8 dot-product peak GOP/s (vpdpbusd)', p.int8.t1, p.int8.t2, p.int8.isa]);
  } else {
    note('no VNNI (vpdpbusd) on this CPU: int8 peak not measured');
  }
  emit({ bench: 'peak', case: 'read bandwidth 64 MiB 1 thread', value: p.readGBs1, unit: 'GB/s', peer: null, ratio_vs_peer: null });
  emit({ bench: 'peak', case: 'read bandwidth 64 MiB 2 threads', value: p.readGBs2, unit: 'GB/s', peer: null, ratio_vs_peer: null });
  emit({ bench: 'peak', case: 'read bandwidth 512 MiB 1 thread', value: p.dramGBs1, unit: 'GB/s', peer: null, ratio_vs_peer: null });
  emit({ bench: 'peak', case: 'read bandwidth 512 MiB 2 threads', value: p.dramGBs2, unit: 'GB/s', peer: null, ratio_vs_peer: null });
  rows.push(['read GB/s, 64 MiB (GEMV footprint)', p.readGBs1, p.readGBs2, groupIsa], ['read GB/s, 512 MiB (DRAM)', p.dramGBs1, p.dramGBs2, groupIsa]);
  table('Machine ceiling (measured now)', ['measure', '1 thread', '2 threads', 'ISA'], rows);
}

function benchSgemm(): void {
  const n = native();
  const sizes = quick ? [256, 512, 1024] : [256, 512, 1024, 2048];
  const blas = n ? n.extras.openblasLoad() : null;
  if (n && !blas) note('OpenBLAS not found: install the peer with `apt-get install -y --no-install-recommends libopenblas-dev` (the bench installs nothing)');
  if (blas) note(`SGEMM peer: ${blas}`);
  const peak = n ? measurePeak(n) : undefined;
  const info = n?.extras.cpuInfo();
  const ex = n ? (n.extras as NativeExtrasInternal) : undefined;
  // every SIMD GEMM the CPU runs (the gemm family, best first: on AMD Zen 4 avx512-zmm, then avx2,
  // the default there), each forced per call; all interleaved with OpenBLAS in one loop
  const gemmPaths = ex ? ex.familyPaths('gemm').filter((p) => p !== 'generic') : [];
  // the ISA level whose FMA peak a GEMM path is compared with
  const level = (p: string): string => (p.startsWith('avx512') ? 'avx512' : p);
  const rows: (string | number)[][] = [];
  for (const N of sizes) {
    const A = randArray(N * N, 1);
    const B = randArray(N * N, 2);
    const C = new Float32Array(N * N);
    const flop = 2 * N * N * N;
    for (const threads of [1, 2]) {
      if (!n || !ex || !info || !peak) break;
      n.extras.setThreads(threads);
      n.extras.setIsa(info.best);
      const fns = gemmPaths.map((p) => (): void => {
        ex.setKernelPath('gemm', p);
        n.kernels.gemm(1, false, false, N, N, N, 1, A, 0, N, 0, B, 0, N, 0, 0, C, 0, N, 0);
      });
      if (blas) fns.push(() => n.extras.openblasSgemm(N, N, N, A, B, C, threads));
      const t = timeInterleaved(fns, { maxReps: N >= 2048 ? 8 : 30, budgetSec: N >= 2048 ? 4 : 1.5 });
      n.extras.setIsa(info.isa);
      const gb = blas ? flop / t[gemmPaths.length].best / 1e9 : NaN;
      gemmPaths.forEach((gp, i) => {
        const isa = level(gp);
        const g = flop / t[i].best / 1e9;
        const pk = peak.fmaByIsa[isa][threads === 1 ? 't1' : 't2'];
        // 1 thread: the same per CPU second (OpenBLAS's idle threads may spin, so not at 2)
        const gc = threads === 1 ? flop / t[i].cpu / 1e9 : NaN;
        const gbc = threads === 1 && blas ? flop / t[gemmPaths.length].cpu / 1e9 : NaN;
        emit({
          bench: 'sgemm',
          case: `${N}x${N}x${N} f32, ${threads} thread${threads > 1 ? 's' : ''}, ${gp}`,
          value: g,
          unit: 'GFLOP/s',
          peer: blas ? 'openblas' : null,
          ratio_vs_peer: blas ? g / gb : null,
          peer_value: blas ? gb : null,
          pct_of_peak: (100 * g) / pk,
          median: flop / t[i].median / 1e9,
          cpu_gflops: gc,
          cpu_pct_of_peak: (100 * gc) / peak.fmaByIsa[isa].cpu1,
          cpu_ratio_vs_peer: gc / gbc,
          threads,
          backend: 'native',
          isa: gp,
          default_gemm: gp === info.paths.gemm ? 1 : 0,
        });
        rows.push([
          `${N}`,
          `${threads}`,
          gp === info.paths.gemm ? `${gp} (default)` : gp,
          g,
          `${fmt((100 * g) / pk)}%`,
          blas ? gb : NaN,
          blas ? `${(g / gb).toFixed(2)}x` : '-',
          threads === 1 ? `${fmt((100 * gc) / peak.fmaByIsa[isa].cpu1)}%` : '-',
          threads === 1 && blas ? `${(gc / gbc).toFixed(2)}x` : '-',
        ]);
      });
    }
    n?.extras.setThreads(2);
    if (N <= (quick ? 256 : 512)) {
      const tj = timeInterleaved([() => jsKernels.gemm(1, false, false, N, N, N, 1, A, 0, N, 0, B, 0, N, 0, 0, C, 0, N, 0)], { minReps: 2, maxReps: 5, budgetSec: 2 });
      const gj = flop / tj[0].best / 1e9;
      emit({ bench: 'sgemm', case: `${N}x${N}x${N} f32, pure TS`, value: gj, unit: 'GFLOP/s', peer: null, ratio_vs_peer: null, backend: 'js' });
      rows.push([`${N} (pure TS)`, '1', 'js', gj, peak ? `${fmt((100 * gj) / peak.fma1)}%` : '-', NaN, '-', '-', '-']);
    }
  }
  table('SGEMM C = A B (square, f32), each gemm path forced; % of the FMA peak of its ISA level; OpenBLAS in the same loop', ['size', 'threads', 'ISA', 'tfree GFLOP/s', '% of its FMA peak', 'OpenBLAS GFLOP/s', 'tfree/OpenBLAS', '% of peak, CPU time', 'tfree/OpenBLAS, CPU time'], rows);
}

function benchGemv(): void {
  const n = native();
  const K = 4096;
  const N = 4096;
  const W = randArray(N * K, 3); // [out, in]: y = x W^T (the Linear layout)
  const x = randArray(K, 4);
  const y = new Float32Array(N);
  const bytes = N * K * 4;
  const rows: (string | number)[][] = [];
  if (n) {
    const blas = n.extras.openblasLoad();
    const peak = measurePeak(n);
    for (const threads of [1, 2]) {
      n.extras.setThreads(threads);
      const fns = [() => n.kernels.gemm(1, false, true, 1, N, K, 1, x, 0, K, 0, W, 0, K, 0, 0, y, 0, N, 0)];
      if (blas) fns.push(() => n.extras.openblasSgemv(N, K, W, x, y, threads));
      const t = timeInterleaved(fns, { maxReps: 100 });
      const gbs = bytes / t[0].best / 1e9;
      const bw = threads === 1 ? peak.readGBs1 : peak.readGBs2;
      const peerGbs = blas ? bytes / t[1].best / 1e9 : NaN;
      emit({
        bench: 'gemv',
        case: `1x${K} . ${K}x${N} f32, ${threads} thread${threads > 1 ? 's' : ''}`,
        value: gbs,
        unit: 'GB/s',
        peer: blas ? 'openblas' : null,
        ratio_vs_peer: blas ? gbs / peerGbs : null,
        peer_value: blas ? peerGbs : null,
        pct_of_read_bandwidth: (100 * gbs) / bw,
        ms: t[0].best * 1e3,
        gflops: (2 * N * K) / t[0].best / 1e9,
        threads,
      });
      rows.push([threads, t[0].best * 1e3, gbs, `${fmt((100 * gbs) / bw)}%`, peerGbs, blas ? `${(gbs / peerGbs).toFixed(2)}x` : '-']);
    }
    n.extras.setThreads(2);
  }
  const tj = timeInterleaved([() => jsKernels.gemm(1, false, true, 1, N, K, 1, x, 0, K, 0, W, 0, K, 0, 0, y, 0, N, 0)], { minReps: 2, maxReps: 5 });
  const gj = bytes / tj[0].best / 1e9;
  emit({ bench: 'gemv', case: `1x${K} . ${K}x${N} f32, pure TS`, value: gj, unit: 'GB/s', peer: null, ratio_vs_peer: null, ms: tj[0].best * 1e3 });
  rows.push(['pure TS', tj[0].best * 1e3, gj, '-', NaN, '-']);
  table('GEMV y = x W^T, W 4096x4096 f32 (64 MiB, memory-bound)', ['threads', 'ms', 'GB/s', '% of 64 MiB read', 'OpenBLAS GB/s', 'tfree/OpenBLAS'], rows);
}

function benchOverhead(): void {
  const n = native();
  const reps = quick ? 20000 : 200000;
  const x = randArray(16, 5);
  const out = new Float32Array(16);
  const perCall = (f: () => void): number => {
    for (let i = 0; i < 1000; i++) f();
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const s = now();
      for (let i = 0; i < reps; i++) f();
      best = Math.min(best, ((now() - s) / reps) * 1e6);
    }
    return best;
  };
  const rows: (string | number)[][] = [];
  const add1 = (name: string, us: number, backend: string): void => {
    emit({ bench: 'overhead', case: name, value: us, unit: 'us/call', peer: null, ratio_vs_peer: null, backend });
    rows.push([name, backend, us]);
  };
  if (n) {
    add1('N-API no-op call (1 typed array)', perCall(() => n.extras.noop(x)), 'native');
    add1('kernel: unary exp on 16 floats', perCall(() => n.kernels.unary(UnaryOp.Exp, x, out, 16)), 'native');
    add1('kernel: 1x64 . 64x64 gemm', (() => {
      const W = randArray(64 * 64, 9);
      const v = randArray(64, 10);
      const y = new Float32Array(64);
      return perCall(() => n.kernels.gemm(1, false, true, 1, 64, 64, 1, v, 0, 64, 0, W, 0, 64, 0, 0, y, 0, 64, 0));
    })(), 'native');
  }
  add1('kernel: unary exp on 16 floats', perCall(() => jsKernels.unary(UnaryOp.Exp, x, out, 16)), 'js');
  const ta = Tensor.from(randArray(16, 11), [4, 4]);
  const tb = Tensor.from(randArray(16, 12), [4, 4]);
  for (const backend of n ? (['native', 'js'] as const) : (['js'] as const)) {
    withBackend(backend, () => add1('tensor op: add [4,4] + [4,4] (alloc + kernel)', perCall(() => void add(ta, tb)), backend));
  }
  table('Per-call overhead (best of 5 loops)', ['call', 'backend', 'us/call'], rows);
}

function benchOps(): void {
  const n = native();
  const rows: (string | number)[][] = [];
  const cases: { name: string; run: () => void }[] = [
    {
      name: 'softmax [512, 4096]',
      run: (() => {
        const t = Tensor.from(randArray(512 * 4096, 13), [512, 4096]);
        return () => void softmax(t);
      })(),
    },
    {
      name: 'rmsNorm [2048, 1024]',
      run: (() => {
        const t = Tensor.from(randArray(2048 * 1024, 14), [2048, 1024]);
        const w = Tensor.from(randArray(1024, 15), [1024]);
        return () => void rmsNorm(t, w);
      })(),
    },
    {
      name: 'causal attention fwd B1 H8 T512 D64',
      run: (() => {
        const q = Tensor.from(randArray(8 * 512 * 64, 16), [1, 8, 512, 64]);
        return () => void attention(q, q, q, { causal: true });
      })(),
    },
  ];
  for (const c of cases) {
    const backends = n ? (['native', 'js'] as const) : (['js'] as const);
    const t: Record<string, number> = {};
    for (const b of backends) t[b] = withBackend(b, () => timeInterleaved([c.run], { minReps: 2, maxReps: 10, budgetSec: 1 })[0].best) * 1e3;
    if (n) {
      emit({ bench: 'ops', case: c.name, value: t.native, unit: 'ms', peer: 'tfree pure TS', ratio_vs_peer: t.js / t.native, backend: 'native' });
    }
    emit({ bench: 'ops', case: c.name, value: t.js, unit: 'ms', peer: null, ratio_vs_peer: null, backend: 'js' });
    rows.push([c.name, n ? t.native : NaN, t.js, n ? `${(t.js / t.native).toFixed(1)}x` : '-']);
  }
  table('Fused ops (forward, ms)', ['op', 'native ms', 'pure TS ms', 'speed-up'], rows);
}

/** Mixed-script text (English, German, Russian, Chinese, code, emoji), deterministic. */
function mixedText(bytes: number): string {
  const pieces = [
    'The quick brown fox jumps over the lazy dog, and then it runs away. ',
    'Fügen Sie 225 g dünn geschnittenen Schweinebauch hinzu und braten Sie ihn an. ',
    'Съешь же ещё этих мягких французских булок, да выпей чаю. ',
    '我们是朋友，他们也是。今天天气很好！',
    'function parseHTML(doc: string): Node[] { return doc.split("\\n").map((l) => l.trim()); }\n',
    'Hi 👋🏽 see you at 10:30 — 3.14 ≈ π, $100 (approx.) 🇩🇪\n\n',
  ];
  let s = '';
  let x = 12345;
  while (s.length < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += pieces[x % pieces.length];
  }
  return s;
}

function benchSplitter(): void {
  const text = mixedText(quick ? 1 << 20 : 4 << 20);
  const bytes = new TextEncoder().encode(text);
  const small = bytes.subarray(0, quick ? 1 << 16 : 1 << 18);
  const splitter = new HatSplitter();
  const mb = bytes.length / 1e6;
  const cases: { name: string; mb: number; run: () => void }[] = [
    { name: 'splitBytesOffsets', mb, run: () => void splitBytesOffsets(bytes) },
    { name: 'HatSplitter.encodeToOffsets (string)', mb, run: () => void splitter.encodeToOffsets(text) },
    { name: 'splitBytes (a view per word)', mb, run: () => void splitBytes(bytes) },
    { name: 'HatSplitter.encode (string)', mb, run: () => void splitter.encode(text) },
    { name: 'splitText', mb, run: () => void splitText(text) },
    {
      name: 'WordStream.push per byte',
      mb: small.length / 1e6,
      run: () => {
        const w = new WordStream();
        for (const b of small) w.push(b);
        w.finish();
      },
    },
  ];
  const rows: (string | number)[][] = [];
  for (const c of cases) {
    const t = timeInterleaved([c.run], { minReps: 2, maxReps: 10, budgetSec: 2 })[0];
    const words = c.name === 'splitBytesOffsets' ? splitBytesOffsets(bytes).length - 1 : NaN;
    emit({ bench: 'splitter', case: c.name, value: c.mb / t.best, unit: 'MB/s', peer: null, ratio_vs_peer: null, median_MBps: c.mb / t.median, mb: c.mb });
    rows.push([c.name, c.mb, c.mb / t.best, Number.isNaN(words) ? '-' : (bytes.length / words).toFixed(2)]);
  }
  table('HAT word splitter (mixed-script text, one thread)', ['case', 'MB', 'MB/s', 'bytes/word'], rows);
}

const groups: Record<string, () => void | Promise<void>> = {
  peak: benchPeak,
  sgemm: benchSgemm,
  gemv: benchGemv,
  overhead: benchOverhead,
  ops: benchOps,
  packed: () => benchPacked(benchEnv()),
  splitter: benchSplitter,
  kg: () => benchKg({ emit, note, table, quick }),
  hat: () => benchHat({ quick, emit, note, table }),
  serve: () => benchServe({ emit, note, table, quick }),
};

function benchEnv(): PackedBenchEnv {
  return { native, measurePeak, timeInterleaved, randArray, emit, note, table, fmt, now, quick };
}

async function main(): Promise<void> {
  if (only !== undefined && !(only in groups)) {
    process.stderr.write(`bench: unknown group "${only}"; groups: ${Object.keys(groups).join(', ')}\n`);
    process.exit(2);
  }
  const n = nativeBackend();
  const info = 'kernels' in n ? n.extras.cpuInfo() : undefined;
  note(`tfree bench: node ${process.version}, native ${'kernels' in n ? `${n.extras.simd()}, ${n.extras.getThreads()} threads` : 'unavailable'}${quick ? ', quick mode' : ''}`);
  if (info) {
    note(`cpu: ${info.brand || info.arch} (${info.vendor || info.arch}); features: ${info.features.join(' ')}`);
    note(`kernel paths: ${Object.entries(info.paths).map(([f, p]) => `${f}=${p}`).join(', ')} (paths on this CPU: ${info.isas.join(', ')})`);
  }
  // which kernel family's path labels each group's rows
  const familyOf: Record<string, string[]> = { gemv: ['gemm'], packed: ['packed', 'packedLut'], kg: ['boxte'] };
  for (const [name, fn] of Object.entries(groups)) {
    if (only !== undefined && name !== only) continue;
    groupIsa = info ? (familyOf[name] ?? ['ops']).map((f) => info.paths[f] ?? '?').join('/') : '-';
    const start = records.length;
    await fn();
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `${name}.json`);
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, records: records.slice(start) }, null, 1)}\n`);
    renameSync(tmp, file);
  }
  note(`\nresults written to ${resultsDir}`);
}

void main();
