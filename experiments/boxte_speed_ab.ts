/**
 * BoxTE speed of two builds side by side (issue 15's before/after): each `--root` is a tfree
 * checkout with `dist/` and the native addon built (e.g. an older commit unpacked with
 * `git archive COMMIT | tar -x -C DIR`, then `npx tsc -p tsconfig.json && node scripts/build-native.mjs`
 * there). For each round and each root, a fresh process trains `--steps` steps on ICEWS14 (d, k=2,
 * 75 negatives, batch 256) and ranks `--eval-facts` test facts; it prints one JSON line per run with
 * the epoch and full-test-evaluation times extrapolated from them, wall and CPU (both threads).
 * Roots alternate within each round, so both see the same machine load.
 *
 * `--model FILE` ranks with that trained model instead of the fresh one (the ranking's early exit
 * only pays off on a trained model; the file must match --data).
 *
 * `--epochs E` (E >= 1) trains E whole epochs through `Trainer.epochJob` instead (the path of `kg
 * train` and trainEpoch, whose steps may overlap: the entity Adam of one step runs beside the next
 * step's small calls) after one warm-up step, and prints each epoch's wall seconds and the
 * milliseconds between the job's yields (one step each): minimum / median over all steps, and
 * step_ms_q10 / q50 / q90 over the full batches only, without each epoch's first step (it also sets
 * up the epoch: the permutation, the exponentials no previous step left) and its last (a partial batch
 * where the batch size does not divide the facts: 122 facts on ICEWS14, ~7 ms, which is what the
 * minimum over all steps reports), those two listed apart (step_ms_first, step_ms_last); no evaluation.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_speed_ab.js --root OLD --root NEW
 *      [--data ../shared/data/icews14] [--dim 154] [--steps 40] [--eval-facts 300] [--rounds 2] [--model FILE] [--epochs E]
 */
import { arg, median, runRootsInterleaved, intArg } from './argv.js';
import { rootTrainer } from './boxte_root.js';

async function child(): Promise<void> {
  const { root, bx, kg, cfg, tr } = await rootTrainer(1);
  const d = cfg.dim;
  const steps = intArg('steps', 40);
  const N = kg.train.h.length;
  const perm = tr.rng.permutation(N);
  tr.step(perm.subarray(0, 256));
  const epochs = intArg('epochs', 0, 0);
  if (epochs > 0) {
    const walls: number[] = [];
    const gaps: number[] = [];
    const inner: number[] = [];
    const first: number[] = [];
    const last: number[] = [];
    for (let e = 0; e < epochs; e++) {
      const job = tr.epochJob();
      const e0 = performance.now();
      let t = e0;
      const g: number[] = [];
      for (;;) {
        const r = job.next();
        const now = performance.now();
        if (r.done === true) break;
        g.push(now - t);
        t = now;
      }
      walls.push(Math.round(performance.now() - e0) / 1000);
      gaps.push(...g);
      inner.push(...g.slice(1, -1));
      first.push(g[0]);
      last.push(g[g.length - 1]);
    }
    const ms = (x: number): number => Math.round(x * 1000) / 1000;
    gaps.sort((x, y) => x - y);
    inner.sort((x, y) => x - y);
    const q = (p: number): number => (inner.length === 0 ? NaN : ms(inner[Math.floor(p * (inner.length - 1))]));
    const out = {
      root,
      d,
      epoch_wall_s: walls,
      step_ms_min: ms(gaps[0]),
      step_ms_median: ms(median(gaps)),
      step_ms_q10: q(0.1),
      step_ms_q50: q(0.5),
      step_ms_q90: q(0.9),
      step_ms_first: first.map(ms),
      step_ms_last: last.map(ms),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  let c0 = process.cpuUsage();
  let t0 = performance.now();
  for (let s = 1; s <= steps; s++) tr.step(perm.subarray(s * 256, (s + 1) * 256));
  let w = (performance.now() - t0) / 1000;
  let cu = process.cpuUsage(c0);
  const per = Math.ceil(N / 256) / steps;
  const out: Record<string, number | string> = { root, d, train_epoch_wall_s: w * per, train_epoch_cpu_s: ((cu.user + cu.system) / 1e6) * per };
  const ef = intArg('eval-facts', 300, 0);
  if (ef > 0) {
    const q = bx.subsample(kg.test, ef);
    const model = arg('model', '') === '' ? tr.model : bx.loadModel(arg('model', '')).model;
    c0 = process.cpuUsage();
    t0 = performance.now();
    out.eval_mrr = bx.evaluateSplit(model, q, tr.knownFacts()).mrr;
    w = (performance.now() - t0) / 1000;
    cu = process.cpuUsage(c0);
    const scale = kg.test.h.length / q.h.length;
    out.eval_full_wall_s = w * scale;
    out.eval_full_cpu_s = ((cu.user + cu.system) / 1e6) * scale;
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv.includes('--child')) {
  await child();
} else {
  runRootsInterleaved(import.meta.url, ['--dim', String(intArg('dim', 154)), '--steps', String(intArg('steps', 40)), '--eval-facts', String(intArg('eval-facts', 300, 0)), '--model', arg('model', ''), '--epochs', String(intArg('epochs', 0, 0))], '2', 'twice: old and new');
}
