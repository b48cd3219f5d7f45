/**
 * Where a BoxTE training step goes, per phase (docs/results/boxte_speed.md): for each `--root` (a tfree
 * checkout with dist/ and the native addon built, as for boxte_speed_ab.ts), a fresh process builds
 * the ICEWS14 trainer (d, k=2, 75 negatives, batch 256), runs 3 warm-up steps, then repeats one
 * batch `--reps` times and prints the minimum wall milliseconds of each phase of `Trainer.step`
 * (`phaseSeconds`; the minimum filters out time the process was not running, so it approaches the
 * quiet-machine figure) and the mean CPU milliseconds of a step (both threads). `--fresh` steps
 * through consecutive batches of the epoch's permutation instead of repeating one, and adds the
 * mean wall milliseconds of each phase and of a whole step.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_phases.js --root OLD --root NEW
 *      [--data ../shared/data/icews14] [--dim 154] [--reps 60] [--rounds 2] [--fresh]
 */
import { runRootsInterleaved, intArg } from './argv.js';
import { rootTrainer } from './boxte_root.js';

async function child(): Promise<void> {
  const { root, kg, cfg, tr } = await rootTrainer(1);
  const d = cfg.dim;
  const reps = intArg('reps', 60);
  const perm = tr.rng.permutation(kg.train.h.length);
  for (let i = 0; i < 3; i++) tr.step(perm.subarray(256 * i, 256 * (i + 1)));
  const fresh = process.argv.includes('--fresh');
  const batches = Math.floor(perm.length / 256);
  const mins: Record<string, number> = {};
  const sums: Record<string, number> = {};
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    for (const k of Object.keys(tr.phaseSeconds)) tr.phaseSeconds[k] = 0;
    const b = fresh ? (3 + i) % batches : 0;
    tr.step(perm.subarray(256 * b, 256 * (b + 1)));
    for (const [k, v] of Object.entries(tr.phaseSeconds)) {
      mins[k] = Math.min(mins[k] ?? Infinity, v * 1000);
      sums[k] = (sums[k] ?? 0) + v * 1000;
    }
  }
  const wall = performance.now() - t0;
  const cu = process.cpuUsage(c0);
  const round = (x: number): number => Math.round(x * 100) / 100;
  const per = (o: Record<string, number>, f: (v: number) => number): Record<string, number> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(f(v))]));
  const out: Record<string, unknown> = { root, d, phase_min_ms: per(mins, (v) => v), step_cpu_ms: round((cu.user + cu.system) / 1000 / reps) };
  if (fresh) Object.assign(out, { phase_mean_ms: per(sums, (v) => v / reps), step_wall_ms: round(wall / reps) });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv.includes('--child')) {
  await child();
} else {
  runRootsInterleaved(import.meta.url, ['--dim', String(intArg('dim', 154)), '--reps', String(intArg('reps', 60)), ...(process.argv.includes('--fresh') ? ['--fresh'] : [])], '2', 'once or more');
}
