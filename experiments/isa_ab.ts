/**
 * Kernel-path A/B of two builds (issue 13: "on AVX2-only CPUs nothing gets slower than today"):
 * each `--root` is a tfree checkout with `dist/` and the native addon built (the old one e.g. from
 * `git worktree add --detach DIR 8a08f85`, then `npx tsc -p tsconfig.json && node
 * scripts/build-native.mjs` there). For each round and each root (the order alternates every
 * round), a fresh process loads that root's library (dist/src/...) with `--isa` forced
 * (TFREE_ISA for builds with dispatch, TFREE_SIMD for the older ones; the child checks which path
 * is in force and fails when it is not the one asked for) and times one group of workloads (the
 * roots alternate per group too, so old and new runs of a group are seconds apart) on the same
 * inputs (made here, from fixed seeds):
 *
 *  - sgemm N (1 and 2 threads): C = A B, square f32, `kernels.gemm`;
 *  - gemv KxN FORMAT (1 thread): batch-1 packed-weight matmul, `kernels.packedMatmul` with int8
 *    activations (PackedLinear's default) and int16 ones; bin1 also through `packedLutMatmul` (the
 *    lookup-table path PackedLinear takes for it by default);
 *  - hat train PRESET (1 thread): one AdamW step (zero-grad, forward, loss, backward, clip, step) on
 *    a B x 512 packed batch of synthetic text, as bench/hat.ts;
 *  - hat generate PRESET (1 thread): KV-cached decoding forced along a fixed text, as bench/hat.ts;
 *  - boxte train / rank (1 thread): BoxTE training steps (batch 256, 75 negatives, d 154, k 2) on
 *    ICEWS14 and the filtered ranking of test facts, as experiments/boxte_speed_ab.ts (fresh model).
 *
 * Each child prints one JSON line: per workload the best wall time of its repetitions and the CPU
 * time of that same repetition (all threads of the process; on a loaded machine the CPU time moves
 * far less than the wall time, so it is the figure to read for the 1-thread rows). The parent prints per workload and root the best and median over
 * rounds, and the ratios new/old (the last root over the first) of wall and CPU time: the ratio of the
 * best times and the median of the per-round ratios (below 1: the new build is faster).
 *
 * Run: npx tsc -p tsconfig.json && nice -n 5 node dist/experiments/isa_ab.js --root OLD --root NEW
 *      [--isa avx2] [--rounds 3] [--only sgemm,gemv,hat,boxte] [--data ../shared/data/icews14] [--json FILE]
 *      (`--only hatgen`: the HAT generation rows without the training steps)
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/nn/index.js';
import { syntheticText } from '../bench/hat.js';
import { rootNative, rootPacked } from './root_modules.js';
import { args, arg, usageError, intArg, median } from './argv.js';
import { importHatTrain } from './hat_batch.js';


function randArray(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal(0, scale);
  return a;
}

interface Timing {
  wall: number;
  cpu: number;
}
/** Runs fn once to warm up, then `reps` times; the fastest repetition's wall and CPU seconds. */
function timeBest(fn: () => void, reps: number): Timing {
  fn();
  let best: Timing = { wall: Infinity, cpu: Infinity };
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    const wall = (performance.now() - t0) / 1e3;
    const cu = process.cpuUsage(c0);
    if (wall < best.wall) best = { wall, cpu: (cu.user + cu.system) / 1e6 };
  }
  return best;
}

async function child(): Promise<void> {
  const root = arg('root', '');
  const isa = arg('isa', 'avx2');
  const only = arg('only', 'sgemm,gemv,hat,boxte').split(',');
  const { kernels: k, extras: ex } = await rootNative(root);
  const inForce = ex.simd();
  if (inForce !== isa) throw new Error(`${root}: kernel path in force is ${inForce}, not ${isa}`);
  const paths = 'cpuInfo' in ex && typeof ex.cpuInfo === 'function' ? ex.cpuInfo().paths : { all: inForce };
  const out: Record<string, Timing> = {};

  if (only.includes('sgemm')) {
    for (const N of [1024, 2048]) {
      const A = randArray(N * N, 1);
      const B = randArray(N * N, 2);
      const C = new Float32Array(N * N);
      for (const threads of [1, 2]) {
        ex.setThreads(threads);
        out[`sgemm ${N} f32, ${threads} thread${threads > 1 ? 's' : ''}`] = timeBest(() => k.gemm(1, false, false, N, N, N, 1, A, 0, N, 0, B, 0, N, 0, 0, C, 0, N, 0), N >= 2048 ? 3 : 8);
      }
    }
  }
  ex.setThreads(1);

  if (only.includes('gemv')) {
    const { cq, lut: lutMod } = await rootPacked(root);
    for (const [K, N] of [
      [4096, 4096],
      [4096, 11008],
    ]) {
      const W = randArray(N * K, 21 + N, 0.05);
      const x = randArray(K, 22);
      const y = new Float32Array(N);
      for (const f of ['int8', 'int4', 'kmeans4', 'bin1']) {
        const p = cq.quantizeMatrix(W, N, K, cq.parseFormat(f), { name: `ab.${f}`, maxSamples: 65536 });
        const bf16 = p.format.scaleDtype === 'BF16';
        for (const act8 of [true, false]) {
          out[`gemv ${K}x${N} ${f}, ${act8 ? 'int8' : 'int16'} act`] = timeBest(() => k.packedMatmul(1, N, K, x, 0, p.codes, p.format.bits, p.levels, p.scales, bf16, p.format.blockSize, y, 0, act8), 12);
        }
        if (lutMod.packedLutFits(p.format.bits, K, p.format.blockSize, bf16)) {
          const L = lutMod.packedLutLayout(N, K, p.format.bits, p.format.blockSize, p.codes, p.scales);
          out[`gemv ${K}x${N} ${f}, lookup table`] = timeBest(() => k.packedLutMatmul(1, N, K, x, 0, L.codes, p.format.bits, p.levels, L.scales, p.format.blockSize, y, 0), 12);
        }
      }
    }
  }

  if (only.includes('hat') || only.includes('hatgen')) {
    const train = only.includes('hat');
    const nn = (await import(`${root}/dist/src/nn/index.js`)) as typeof import('../src/nn/index.js');
    const io = (await import(`${root}/dist/src/io/index.js`)) as typeof import('../src/io/index.js');
    const hc = (await import(`${root}/dist/src/models/hat/config.js`)) as typeof import('../src/models/hat/config.js');
    const hm = (await import(`${root}/dist/src/models/hat/model.js`)) as typeof import('../src/models/hat/model.js');
    const hg = (await import(`${root}/dist/src/models/hat/generate.js`)) as typeof import('../src/models/hat/generate.js');
    const hs = (await import(`${root}/dist/src/models/hat/sampling.js`)) as typeof import('../src/models/hat/sampling.js');
    const sp = (await import(`${root}/dist/src/models/hat/splitter.js`)) as typeof import('../src/models/hat/splitter.js');
    const tr = await importHatTrain(root);
    const shapes = { tiny: { B: 8, steps: 4, genBytes: 256 }, small: { B: 4, steps: 3, genBytes: 128 } };
    for (const preset of ['tiny', 'small'] as const) {
      const sh = shapes[preset];
      const cfg = hc.presetConfig(preset);
      const model = new hm.HATModel(cfg, { seed: 1 });
      const text = syntheticText(sh.B * 512 * 2, 3);
      const packer = new io.BytePacker([{ source: 'synthetic', bytes: text }], { seqBytes: 512, split: (b) => sp.splitBytes(b, { maxWordSize: cfg.max_word_size }).map((w) => w.length), eos: null, shuffle: false });
      const batch = tr.hatBatch(packer.next(sh.B));
      const opt = new nn.AdamW(model.store, { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1, noDecay: nn.isNoDecayParam });
      if (train) {
        out[`hat train ${preset} B${sh.B} T512, 1 thread`] = timeBest(() => {
          model.store.zeroGrad();
          model.loss(batch).loss.backward();
          nn.clipGradNorm(model.store, 1);
          opt.step();
        }, sh.steps);
      }
      const splitter = new sp.HatSplitter({ maxWordSize: cfg.max_word_size, specialTokens: cfg.special_token_dict });
      const pw = splitter.encode('The jury said');
      const cont = syntheticText(sh.genBytes, 7).subarray(0, sh.genBytes);
      out[`hat generate ${preset} cached, ${sh.genBytes} bytes, 1 thread`] = timeBest(() => {
        const state = new hg.HATDecodingState(model);
        state.prefill(pw);
        let cur = pw[pw.length - 1];
        for (const b of cont) {
          hs.argmax(state.logits());
          const split = splitter.appendByte(cur, b);
          cur = split.complete ? split.words[split.words.length - 1] : split.words[0];
          state.push(b, split);
        }
      }, 2);
    }
  }

  if (only.includes('boxte')) {
    const io = (await import(`${root}/dist/src/io/kg.js`)) as typeof import('../src/io/kg.js');
    const bx = (await import(`${root}/dist/src/models/boxte/index.js`)) as typeof import('../src/models/boxte/index.js');
    const kg = io.readTemporalKG(arg('data', ''));
    const cfg = bx.defaultConfig({ numEntities: kg.entities.length, numRelations: kg.relations.length, numTimes: kg.numTimes, dim: 154, k: 2 });
    const trn = new bx.Trainer(kg, cfg, { ...bx.defaultTrainOptions, seed: 1 });
    const perm = trn.rng.permutation(kg.train.h.length);
    let s = 0;
    const steps = 10;
    out[`boxte train ${steps} steps (batch 256, d 154), 1 thread`] = timeBest(() => {
      for (let i = 0; i < steps; i++, s++) trn.step(perm.subarray(s * 256, (s + 1) * 256));
    }, 3);
    const q = bx.subsample(kg.test, 200);
    const known = trn.knownFacts();
    out['boxte rank 200 test facts (filtered, both sides), 1 thread'] = timeBest(() => void bx.evaluateSplit(trn.model, q, known), 3);
  }
  process.stdout.write(`${JSON.stringify({ root, isa, paths, times: out })}\n`);
}

if (process.argv.includes('--child')) {
  await child();
} else {
  const roots = args('root');
  if (roots.length !== 2) usageError('give --root OLD --root NEW');
  const isa = arg('isa', 'avx2');
  const rounds = intArg('rounds', 3);
  const data = arg('data', fileURLToPath(new URL('../../../shared/data/icews14', import.meta.url)));
  const only = arg('only', 'sgemm,gemv,hat,boxte');
  // per root: workload -> per-round timings
  const res = roots.map(() => new Map<string, Timing[]>());
  const loads: number[] = [];
  const groups = only.split(',');
  for (let r = 0; r < rounds; r++) {
    for (let g = 0; g < groups.length; g++) {
      const order = (r + g) % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const env = { ...process.env, TFREE_ISA: isa, TFREE_SIMD: isa };
        const line = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', '--root', roots[i], '--isa', isa, '--data', data, '--only', groups[g]], { encoding: 'utf8', env });
        const j = JSON.parse(line) as { paths: Record<string, string>; times: Record<string, Timing> };
        if (r === 0 && g === 0) process.stderr.write(`${roots[i]}: paths ${JSON.stringify(j.paths)}\n`);
        for (const [name, t] of Object.entries(j.times)) {
          const m = res[i].get(name) ?? [];
          m.push(t);
          res[i].set(name, m);
        }
        loads.push(os.loadavg()[0]);
        process.stderr.write(`round ${r + 1}/${rounds} ${groups[g]} ${roots[i]} done (load ${os.loadavg()[0].toFixed(2)})\n`);
      }
    }
  }
  const rows: string[] = [
    `TFREE_ISA=${isa}; old = ${roots[0]}, new = ${roots[1]}; ${rounds} rounds, roots alternating; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}); 1-minute load average over the runs ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}.`,
    '',
    '| workload | old best ms | new best ms | new/old wall, best | new/old wall, median of rounds | new/old CPU, best | new/old CPU, median of rounds |',
    '|---|--:|--:|--:|--:|--:|--:|',
  ];
  const json: Record<string, unknown>[] = [];
  for (const [name, oldT] of res[0]) {
    const newT = res[1].get(name);
    if (!newT) continue;
    const bw = (ts: Timing[]): number => Math.min(...ts.map((t) => t.wall));
    const bc = (ts: Timing[]): number => Math.min(...ts.map((t) => t.cpu));
    const perRound = (f: (t: Timing) => number): number => median(oldT.map((o, i) => f(newT[i]) / f(o)));
    const row = {
      workload: name,
      old_ms: bw(oldT) * 1e3,
      new_ms: bw(newT) * 1e3,
      wall_best: bw(newT) / bw(oldT),
      wall_median: perRound((t) => t.wall),
      cpu_best: bc(newT) / bc(oldT),
      cpu_median: perRound((t) => t.cpu),
      old_runs_ms: oldT.map((t) => t.wall * 1e3),
      new_runs_ms: newT.map((t) => t.wall * 1e3),
      old_runs_cpu_ms: oldT.map((t) => t.cpu * 1e3),
      new_runs_cpu_ms: newT.map((t) => t.cpu * 1e3),
    };
    json.push(row);
    rows.push(`| ${name} | ${row.old_ms.toFixed(2)} | ${row.new_ms.toFixed(2)} | ${row.wall_best.toFixed(2)} | ${row.wall_median.toFixed(2)} | ${row.cpu_best.toFixed(2)} | ${row.cpu_median.toFixed(2)} |`);
  }
  process.stdout.write(`${rows.join('\n')}\n`);
  const jf = arg('json', '');
  if (jf) {
    fs.writeFileSync(`${jf}.tmp`, JSON.stringify({ isa, roots, rounds, loads, rows: json }, null, 1));
    fs.renameSync(`${jf}.tmp`, jf);
  }
}
