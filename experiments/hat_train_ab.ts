/**
 * HAT training step of one preset at a fixed thread count, for two builds of tfree and the
 * PyTorch peer (bench/peers/hat_torch.py), interleaved so that machine load hits all alike.
 *
 *   node dist/experiments/hat_train_ab.js [--preset small] [--threads 1] [--rounds 3] [--steps 3]
 *        [--old /work/main] [--peer 1|0]
 *   node dist/experiments/hat_train_ab.js --profile [--preset small] [--threads 1] [--steps 3] [--shapes] [--sites]
 *
 * Each round runs, as separate processes one after the other: the old build (its
 * dist/experiments/hat_train_ab.js, or, when it has none, this build's worker importing the old
 * build's modules) and this build (in that order in odd rounds, the other way round in even
 * ones), then the peer; each does steps+1 steps (the first warms up) on the
 * bench's batch (same synthetic text, B x T, word split) and reports the best wall and CPU time of
 * a step. The summary gives per round the ratios new/old and PyTorch/new (wall and CPU s).
 * `--profile` instead runs this build once with timers around every kernel call (one process,
 * steps after the warm-up summed) and prints seconds per kernel and the rest of the step;
 * `--shapes` adds seconds per GEMM shape and per attention call shape, `--sites` seconds per
 * other kernel and calling op (the first three stack frames outside the kernel layer; slow).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arg, intArg, choiceArg, usageError, median } from './argv.js';
import { importHatTrain, presetBatch } from './hat_batch.js';

const HERE = nodePath.dirname(fileURLToPath(import.meta.url));
const ROOT = nodePath.resolve(HERE, '..', '..');

interface StepResult {
  wall: number[];
  cpu: number[];
  profile?: Record<string, number>;
  loss?: number;
}

/** Runs steps in this process with the modules of the build rooted at `root` (its dist/). */
async function worker(root: string, preset: string, threads: number, steps: number, profile: boolean): Promise<StepResult> {
  const imp = async <T>(p: string): Promise<T> => (await import(pathToFileURL(nodePath.join(root, 'dist', p)).href)) as T;
  type KIndex = typeof import('../src/tensor/kernels/index.js');
  type NN = typeof import('../src/nn/index.js');
  type IO = typeof import('../src/io/index.js');
  type Cfg = typeof import('../src/models/hat/config.js');
  type Model = typeof import('../src/models/hat/model.js');
  type Split = typeof import('../src/models/hat/splitter.js');
  const kidx = await imp<KIndex>('src/tensor/kernels/index.js');
  const nn = await imp<NN>('src/nn/index.js');
  const io = await imp<IO>('src/io/index.js');
  const cfgm = await imp<Cfg>('src/models/hat/config.js');
  const modelm = await imp<Model>('src/models/hat/model.js');
  const splitm = await imp<Split>('src/models/hat/splitter.js');
  const trainm = await importHatTrain(root);
  const nb = kidx.nativeBackend();
  if (!('kernels' in nb)) throw new Error(`no native kernels in ${root}: ${nb.error}`);
  nb.extras.setThreads(threads);
  const prof: Record<string, number> = {};
  // --shapes / --sites: seconds (and for GEMMs flops) per call shape or calling op
  const wantShapes = process.argv.includes('--shapes');
  const wantSites = process.argv.includes('--sites');
  const byKey: Record<string, { n: number; s: number; flop: number }> = {};
  const tally = (key: string, dt: number, flop: number): void => {
    const e = (byKey[key] ??= { n: 0, s: 0, flop: 0 });
    e.n++;
    e.s += dt;
    e.flop += flop;
  };
  if (profile) {
    const k = nb.kernels as unknown as Record<string, unknown>;
    for (const name of Object.keys(k)) {
      const f = k[name];
      if (typeof f !== 'function') continue;
      const fn = f as (...a: unknown[]) => unknown;
      k[name] = (...a: unknown[]): unknown => {
        const t = performance.now();
        const r = fn(...a);
        const dt = (performance.now() - t) / 1e3;
        prof[name] = (prof[name] ?? 0) + dt;
        if (name === 'gemm') {
          if (wantShapes) {
            // gemm(batch, transA, transB, M, N, K, ...)
            const [nb, ta, tb, M, N, K, alpha, , , , , , , , , beta] = a as number[];
            tally(`${nb}x ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} M${M} N${N} K${K}${beta !== 0 ? ' beta' : ''}${alpha !== 1 ? ' alpha' : ''}`, dt, 2 * nb * M * N * K);
          }
        } else if (name === 'attention' || name === 'attentionBackward') {
          if (wantShapes) {
            // attention(q, k, v, out, lse, a, scores) / attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, a, scores)
            const at = a[name === 'attention' ? 5 : 9] as { B: number; Hq: number; Hkv: number; Tq: number; Tk: number; D: number; causal: boolean; window: number; qSeg: unknown; mask: unknown };
            tally(`${name === 'attention' ? 'attn fwd' : 'attn bwd'} B${at.B} H${at.Hq}/${at.Hkv} Tq${at.Tq} Tk${at.Tk} D${at.D}${at.causal ? ' causal' : ''}${at.window > 0 ? ` w${at.window}` : ''}${at.qSeg !== null ? ' seg' : ''}${at.mask !== null ? ' mask' : ''}`, dt, 0);
          }
        } else if (wantSites) {
          // the op that called the kernel: the first stack frames outside the kernel layers
          const st = (new Error().stack ?? '').split('\n').slice(2);
          const fr = st.filter((l) => !l.includes('/kernels/') && !l.includes('hat_train_ab')).slice(0, 3).map((l) => l.trim().replace(/^at /, '').replace(/\(?file:\/\/[^ ]*\/dist\//, '').replace(/\)$/, ''));
          tally(`${name} <- ${fr.join(' <- ')}`, dt, 0);
        }
        return r;
      };
    }
  }
  const cfg = cfgm.presetConfig(preset);
  const model = new modelm.HATModel(cfg, { seed: 1 });
  const { batch } = presetBatch({ nn, io, splitm, trainm }, cfg, preset);
  const opt = new nn.AdamW(model.store, { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1, noDecay: nn.isNoDecayParam });
  const res: StepResult = { wall: [], cpu: [] };
  let total = 0;
  for (let s = 0; s <= steps; s++) {
    if (s === 1) {
      for (const key of Object.keys(prof)) prof[key] = 0;
      for (const key of Object.keys(byKey)) delete byKey[key];
    }
    const t = performance.now();
    const c0 = process.cpuUsage();
    model.store.zeroGrad({ recycle: true });
    const { loss } = model.loss(batch);
    const lossValue = loss.item();
    loss.backward(undefined, false, { freeActivations: true });
    if ('clipCoefficient' in nn) {
      // as the trainer does: clipping inside the AdamW update (builds before it: scale pass + step)
      opt.step(undefined, { gradScale: nn.clipCoefficient(model.store, 1).coef });
    } else {
      (nn as Pick<NN, 'clipGradNorm'>).clipGradNorm(model.store, 1);
      opt.step();
    }
    const cu = process.cpuUsage(c0);
    const w = (performance.now() - t) / 1e3;
    if (s > 0) {
      res.wall.push(w);
      res.cpu.push((cu.user + cu.system) / 1e6);
      total += w;
    }
    res.loss = lossValue;
  }
  if (profile) {
    let inK = 0;
    for (const v of Object.values(prof)) inK += v;
    prof['(outside kernels)'] = total - inK;
    prof['(step total)'] = total;
    res.profile = prof;
    if (wantShapes || wantSites) {
      // GFLOP/s only where the flops are counted (GEMM shapes)
      const rows = Object.entries(byKey).sort((x, y) => y[1].s - x[1].s);
      for (const [k, e] of rows) process.stderr.write(`${k.padEnd(34)} calls/step ${(e.n / steps).toFixed(0).padStart(4)}  ${(e.s / steps).toFixed(3)} s/step${e.flop > 0 ? `  ${(e.flop / e.s / 1e9).toFixed(1)} GFLOP/s` : ''}\n`);
    }
  }
  return res;
}

async function peerRun(preset: string, threads: number, steps: number): Promise<StepResult> {
  const nn = (await import('../src/nn/index.js')) as typeof import('../src/nn/index.js');
  const io = await import('../src/io/index.js');
  const cfgm = await import('../src/models/hat/config.js');
  const splitm = await import('../src/models/hat/splitter.js');
  const trainm = await import('../src/models/hat/train.js');
  const cfg = cfgm.presetConfig(preset);
  const { B, T, batch } = presetBatch({ nn, io, splitm, trainm }, cfg, preset);
  const n = String(threads);
  const env = { ...process.env, OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n };
  const job = { mode: 'train', config: cfgm.hatConfigToJSON(cfg), threads, B, T, bytes: Array.from(batch.bytes), cu: batch.cuSeqlens.map((c) => Array.from(c)), steps: steps + 1 };
  const r = spawnSync('/usr/bin/python3', [nodePath.join(ROOT, 'bench', 'peers', 'hat_torch.py')], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 26, env });
  if (r.status !== 0) throw new Error(`peer failed: ${r.stderr.slice(-1000)}`);
  const o = JSON.parse(r.stdout) as { step_s: number[]; step_cpu_s: number[] };
  return { wall: o.step_s.slice(1), cpu: o.step_cpu_s.slice(1) };
}

function child(root: string, preset: string, threads: number, steps: number): StepResult {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--worker', root, '--preset', preset, '--threads', String(threads), '--steps', String(steps)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    env: { ...process.env, TFREE_THREADS: String(threads) },
  });
  if (r.status !== 0) throw new Error(`worker ${root} failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as StepResult;
}

const min = (a: number[]): number => Math.min(...a);

async function main(): Promise<void> {
  const preset = choiceArg('preset', 'small', ['tiny', 'small']);
  const threads = intArg('threads', 1);
  const steps = intArg('steps', 3);
  if (process.argv.includes('--worker')) {
    const root = arg('worker', ROOT);
    const r = await worker(root, preset, threads, steps, process.argv.includes('--profile'));
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  if (process.argv.includes('--profile')) {
    const r = await worker(ROOT, preset, threads, steps, true);
    const prof = r.profile ?? {};
    const total = prof['(step total)'];
    const rows = Object.entries(prof).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
    console.log(`${preset}, ${threads} thread(s), ${steps} steps after warm-up, loss ${r.loss?.toFixed(4)}, best step ${min(r.wall).toFixed(3)} s wall / ${min(r.cpu).toFixed(3)} CPU s, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    for (const [k, v] of rows) console.log(`${k.padEnd(22)} ${(v / steps).toFixed(3).padStart(8)} s/step ${((100 * v) / total).toFixed(1).padStart(6)} %`);
    return;
  }
  const old = arg('old', '/work/main');
  const rounds = intArg('rounds', 3);
  const withPeer = arg('peer', '1') === '1';
  if (!existsSync(nodePath.join(old, 'dist', 'src', 'tensor', 'index.js'))) usageError(`--old ${old} has no built dist/ (give a built checkout)`);
  console.log(`HAT ${preset} training step, ${threads} thread(s), best of ${steps} steps per process; old = ${old}, new = ${ROOT}`);
  console.log('round  load   old wall/cpu s   new wall/cpu s   torch wall/cpu s   new/old wall cpu   torch/new wall cpu');
  // per round: new/old and PyTorch/new, wall and CPU s (for the min / median summary)
  const ratios: Record<string, number[]> = { 'new/old wall': [], 'new/old cpu': [], 'torch/new wall': [], 'torch/new cpu': [] };
  for (let i = 0; i < rounds; i++) {
    const load = os.loadavg()[0];
    // the builds swap places every round: under load the second process of a pair ran 3-5 %
    // slower in CPU s (same build in both slots, 2026-12-04), so a fixed order biases the ratio
    let o: StepResult;
    let n: StepResult;
    if (i % 2 === 0) {
      o = child(old, preset, threads, steps);
      n = child(ROOT, preset, threads, steps);
    } else {
      n = child(ROOT, preset, threads, steps);
      o = child(old, preset, threads, steps);
    }
    const p = withPeer ? await peerRun(preset, threads, steps) : null;
    const f = (r: StepResult | null): string => (r ? `${min(r.wall).toFixed(3)}/${min(r.cpu).toFixed(3)}` : '-');
    const ratio = (a: StepResult | null, b: StepResult): string => (a ? `${(min(a.wall) / min(b.wall)).toFixed(2)}x ${(min(a.cpu) / min(b.cpu)).toFixed(2)}x` : '-');
    console.log(`${String(i + 1).padEnd(6)} ${load.toFixed(1).padEnd(6)} ${f(o).padEnd(16)} ${f(n).padEnd(16)} ${f(p).padEnd(18)} ${ratio(o, n).padEnd(18)} ${ratio(p, n)}   (loss old ${o.loss} new ${n.loss}${o.loss === n.loss ? ', same bits' : ''})${i % 2 === 1 ? ' (new ran first)' : ''}`);
    ratios['new/old wall'].push(min(o.wall) / min(n.wall));
    ratios['new/old cpu'].push(min(o.cpu) / min(n.cpu));
    if (p) {
      ratios['torch/new wall'].push(min(p.wall) / min(n.wall));
      ratios['torch/new cpu'].push(min(p.cpu) / min(n.cpu));
    }
  }
  for (const [k, a] of Object.entries(ratios)) {
    if (a.length > 0) console.log(`${k.padEnd(15)} min ${min(a).toFixed(2)}x  median ${median(a).toFixed(2)}x  max ${Math.max(...a).toFixed(2)}x  (${a.length} rounds)`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
