/**
 * `npm run bench -- --only kg`: BoxTE throughput on ICEWS14 (../shared or $TFREE_ICEWS14; a synthetic KG of the same
 * size when it is missing) at the paper's bounded configuration (d=154, k=2, 75 negatives,
 * batch 256): one training epoch as `kg train` runs it (facts/s) and one full time-aware filtered evaluation of the test
 * split (queries/s, each query scoring all entities), with the native kernels, the pure-TS
 * kernels (a few steps / facts only) and the PyTorch peer `bench/boxte_torch.py` (Debian
 * python3-torch, CPU, same threads; a fixed number of steps / facts, rates compared).
 * --quick measures a part of the epoch and of the evaluation and extrapolates.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTemporalKG, syntheticKG, type TemporalKG } from '../src/io/kg.js';
import { withBackend, nativeBackend } from '../src/tensor/index.js';
import { KnownFacts, Trainer, boxKernels, defaultConfig, defaultTrainOptions, evaluateSplit, loadModel, subsample, type BoxTE, type BoxTEConfig } from '../src/models/boxte/index.js';
import type { BenchRecord } from './main.js';

export interface KgBenchContext {
  emit(r: BenchRecord): void;
  note(s: string): void;
  table(title: string, head: string[], rows: (string | number)[][]): void;
  quick: boolean;
}

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface PeerResult {
  torch: string;
  threads: number;
  train_facts_per_s: number;
  epoch_s: number;
  eval_queries_per_s: number;
  full_test_eval_s: number;
}

function runPeer(data: string, threads: number, quick: boolean, note: (s: string) => void): PeerResult | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) {
    note('kg: no /usr/bin/python3; PyTorch peer skipped');
    return null;
  }
  const script = join(repo, 'bench', 'boxte_torch.py');
  // torch.set_num_threads does not reach the OpenBLAS pool of Debian's torch: cap it too (bench/hat.ts)
  const n = String(threads);
  const env = { ...process.env, OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n };
  const r = spawnSync(py, [script, '--data', data, '--threads', n, '--steps', quick ? '8' : '30', '--eval-facts', quick ? '16' : '48'], { encoding: 'utf8', timeout: 1_200_000, env });
  if (r.status !== 0) {
    note(`kg: PyTorch peer failed or unavailable (${(r.stderr || r.error?.message || '').trim().split('\n').pop() ?? ''}); skipped`);
    return null;
  }
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as PeerResult;
  } catch {
    note('kg: could not parse the PyTorch peer output; skipped');
    return null;
  }
}

export function benchKg(ctx: KgBenchContext): void {
  const { emit, note, table, quick } = ctx;
  // TFREE_ICEWS14=DIR points at the dataset when ../shared is not beside the repository (a worktree)
  const icews = process.env.TFREE_ICEWS14 ?? join(repo, '..', 'shared', 'data', 'icews14');
  let kg: TemporalKG;
  let dataName: string;
  let dataDir: string | null = null;
  if (existsSync(join(icews, 'train.txt'))) {
    kg = readTemporalKG(icews);
    dataName = 'ICEWS14';
    dataDir = icews;
  } else {
    kg = syntheticKG({ entities: 7128, relations: 230, times: 365, groups: 12, facts: 90_000, seed: 1 });
    dataName = 'synthetic (ICEWS14-sized)';
    note('kg: ../shared/data/icews14 missing; using a synthetic KG of the same size (no PyTorch peer)');
  }
  const n = nativeBackend();
  const threads = 'kernels' in n ? n.extras.getThreads() : 1;
  const cfg = defaultConfig({ numEntities: kg.entities.length, numRelations: kg.relations.length, numTimes: kg.numTimes, dim: 154, k: 2 });
  const setting = `${dataName} d=154 k=2 n=75 b=256`;
  const N = kg.train.h.length;
  const rows: (string | number)[][] = [];

  const trainRate = (backend: 'native' | 'js', steps: number, c: BoxTEConfig = cfg): { factsPerS: number; epochS: number; phases: Record<string, number> } => {
    return withBackend(backend, () => {
      const tr = new Trainer(kg, c, { ...defaultTrainOptions, seed: 1 });
      tr.step(tr.rng.permutation(N).subarray(0, 256)); // warm-up (the optimizer's moments are made here)
      for (const key of Object.keys(tr.phaseSeconds)) tr.phaseSeconds[key] = 0;
      // the epoch as `kg train` runs it (Trainer.epochJob: its steps pipelined, each step's entity Adam
      // running beside the next step's batch, negatives and small calls), stopped after `steps` steps;
      // the clock stops once the last step's background work has finished (return() settles)
      const t0 = performance.now();
      const job = tr.epochJob();
      let done = 0;
      try {
        while (done < steps) {
          const r = job.next();
          if (r.done === true) break;
          done = r.value;
        }
      } finally {
        job.return({ loss: 0, seconds: 0, facts: 0, lr: 0 });
      }
      const sec = (performance.now() - t0) / 1000;
      const facts = Math.min(N, done * 256);
      const phases: Record<string, number> = {};
      for (const [key, v] of Object.entries(tr.phaseSeconds)) phases[key] = (v / sec) * (N / (facts / sec));
      return { factsPerS: facts / sec, epochS: N / (facts / sec), phases };
    });
  };
  // model: the model evaluated (default: the trainer's freshly initialised one). The native ranking
  // stops summing a candidate's distance once it is past the true fact's, so a trained model (most
  // candidates clearly worse) ranks faster than one at initialisation (all scores close together).
  // the filter (every split's facts) as Trainer.knownFacts builds it, once for every evaluation
  const known = new KnownFacts(cfg.numEntities, cfg.numRelations, Math.max(cfg.numTimes, 1), [kg.train, kg.valid, kg.test]);
  const evalRate = (backend: 'native' | 'js', facts: number, model?: BoxTE): { qps: number; fullS: number; mrr: number } => {
    return withBackend(backend, () => {
      const evaluated = model ?? new Trainer(kg, cfg, { ...defaultTrainOptions, seed: 1 }).model;
      const q = subsample(kg.test, facts);
      const t0 = performance.now();
      const m = evaluateSplit(evaluated, q, known);
      const sec = (performance.now() - t0) / 1000;
      return { qps: m.queries / sec, fullS: (2 * kg.test.h.length) / (m.queries / sec), mrr: m.mrr };
    });
  };

  const native = 'kernels' in n;
  const stepsPerEpoch = Math.ceil(N / 256);
  const ours = native ? trainRate('native', quick ? 40 : stepsPerEpoch) : null;
  const cfg1000 = { ...cfg, dim: 1000 };
  const ours1000 = native ? trainRate('native', quick ? 5 : 30, cfg1000) : null;
  const oursJs = trainRate('js', quick ? 3 : 8);
  const ev = native ? evalRate('native', quick ? 500 : 0) : null;
  // the bundled ICEWS14 model (trained 1200 epochs, docs/boxte.md) where the data is ICEWS14
  const bundled = join(repo, 'models', 'boxte-icews14', 'boxte-icews14-d154.safetensors');
  const evTrained = native && dataDir !== null && existsSync(bundled) ? evalRate('native', quick ? 500 : 0, loadModel(bundled).model) : null;
  const evJs = evalRate('js', quick ? 16 : 48);
  const peer = dataDir !== null ? runPeer(dataDir, threads, quick, note) : null;

  const trainCase = `train epoch ${setting}`;
  const evalCase = `filtered eval test (all entities) ${setting}`;
  const peerName = peer ? `PyTorch ${peer.torch} CPU (${peer.threads} threads)` : null;
  const isa = native ? withBackend('native', () => boxKernels().isa) : 'js';
  const load = (): string => {
    try {
      return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    } catch {
      return 'n/a';
    }
  };
  note(`kg: native kernels ${isa}, ${threads} thread(s); load average at the end: ${load()}`);
  if (ours) note(`kg: where a native d=154 epoch goes (s): ${Object.entries(ours.phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  if (ours1000) {
    emit({ bench: 'kg', case: `train epoch ${dataName} d=1000 k=2 n=75 b=256`, value: ours1000.factsPerS, unit: 'facts/s', peer: null, ratio_vs_peer: null, backend: 'native', threads, isa, epoch_s: ours1000.epochS, measured_steps: quick ? 5 : 30 });
    note(`kg: d=1000 epoch ${ours1000.epochS.toFixed(1)} s (extrapolated from ${quick ? 5 : 30} steps); phases (s): ${Object.entries(ours1000.phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  }
  if (ours1000) rows.push([`train d=1000 (native ${isa})`, ours1000.factsPerS, ours1000.epochS, '-']);
  if (ours) {
    emit({ bench: 'kg', case: trainCase, value: ours.factsPerS, unit: 'facts/s', peer: peerName, ratio_vs_peer: peer ? ours.factsPerS / peer.train_facts_per_s : null, backend: 'native', threads, isa, epoch_s: ours.epochS, measured_steps: quick ? 40 : stepsPerEpoch });
    rows.push([`train (native ${isa})`, ours.factsPerS, ours.epochS, peer ? `${(ours.factsPerS / peer.train_facts_per_s).toFixed(1)}x` : '-']);
  }
  emit({ bench: 'kg', case: trainCase, value: oursJs.factsPerS, unit: 'facts/s', peer: peerName, ratio_vs_peer: peer ? oursJs.factsPerS / peer.train_facts_per_s : null, backend: 'js', epoch_s: oursJs.epochS });
  rows.push(['train (pure TS)', oursJs.factsPerS, oursJs.epochS, peer ? `${(oursJs.factsPerS / peer.train_facts_per_s).toFixed(1)}x` : '-']);
  if (peer) {
    emit({ bench: 'kg', case: trainCase, value: peer.train_facts_per_s, unit: 'facts/s', peer: null, ratio_vs_peer: null, backend: 'pytorch', threads: peer.threads, epoch_s: peer.epoch_s });
    rows.push([`train (${peerName})`, peer.train_facts_per_s, peer.epoch_s, '1.0x']);
  }
  if (ev) {
    emit({ bench: 'kg', case: evalCase, value: ev.qps, unit: 'queries/s', peer: peerName, ratio_vs_peer: peer ? ev.qps / peer.eval_queries_per_s : null, backend: 'native', threads, isa, full_eval_s: ev.fullS });
    rows.push([`eval, model at init (native ${isa})`, ev.qps, ev.fullS, peer ? `${(ev.qps / peer.eval_queries_per_s).toFixed(1)}x` : '-']);
  }
  if (evTrained) {
    emit({ bench: 'kg', case: `${evalCase}, bundled trained model`, value: evTrained.qps, unit: 'queries/s', peer: peerName, ratio_vs_peer: peer ? evTrained.qps / peer.eval_queries_per_s : null, backend: 'native', threads, isa, full_eval_s: evTrained.fullS, mrr: evTrained.mrr });
    rows.push([`eval, bundled trained model, MRR ${evTrained.mrr.toFixed(4)} (native ${isa})`, evTrained.qps, evTrained.fullS, peer ? `${(evTrained.qps / peer.eval_queries_per_s).toFixed(1)}x` : '-']);
  }
  emit({ bench: 'kg', case: evalCase, value: evJs.qps, unit: 'queries/s', peer: peerName, ratio_vs_peer: peer ? evJs.qps / peer.eval_queries_per_s : null, backend: 'js', full_eval_s: evJs.fullS });
  rows.push(['eval, model at init (pure TS)', evJs.qps, evJs.fullS, peer ? `${(evJs.qps / peer.eval_queries_per_s).toFixed(1)}x` : '-']);
  if (peer) {
    emit({ bench: 'kg', case: evalCase, value: peer.eval_queries_per_s, unit: 'queries/s', peer: null, ratio_vs_peer: null, backend: 'pytorch', threads: peer.threads, full_eval_s: peer.full_test_eval_s });
    rows.push([`eval (${peerName})`, peer.eval_queries_per_s, peer.full_test_eval_s, '1.0x']);
  }
  table(`BoxTE on ${setting}, ${threads} thread(s) (train: facts/s and s/epoch; eval: queries/s and s per full test evaluation)`, ['case', 'rate', 'seconds', 'vs PyTorch'], rows);
}
