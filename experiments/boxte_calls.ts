/**
 * Every native call of a BoxTE training step with its time: for each `--root` (a tfree checkout with
 * dist/ and the native addon built, as for boxte_phases.ts), a fresh process wraps the addon's
 * boxte* functions with a timer (before the Trainer binds them), builds the ICEWS14 trainer (d, k=2,
 * 75 negatives, batch 256), runs 5 warm-up steps, then `--steps` consecutive batches of the epoch's
 * permutation, and prints per call (boxteAdamRows split by parameter size): calls per step, minimum
 * and median milliseconds; the step's wall time and the time outside the native calls (the
 * TypeScript around them plus the timer's own cost), minimum and median over the steps.
 * Threads: TFREE_THREADS.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_calls.js --root R [--root R2]
 *      [--data ../shared/data/icews14] [--dim 154] [--steps 150] [--rounds 1]
 */
import { createRequire } from 'node:module';
import { arg, runRootsInterleaved, intArg } from './argv.js';
import { rootTrainer } from './boxte_root.js';

async function child(): Promise<void> {
  const root = arg('root', '');
  const addon = createRequire(import.meta.url)(`${root}/native/build/Release/tfree_native.node`) as Record<string, unknown>;
  const times: Record<string, number[]> = {};
  let inNative = 0;
  for (const name of Object.keys(addon)) {
    const f = addon[name];
    if (!name.startsWith('boxte') || name === 'boxteIsa' || typeof f !== 'function') continue;
    addon[name] = (...a: unknown[]): unknown => {
      const t0 = performance.now();
      const r: unknown = Reflect.apply(f, addon, a);
      const dt = performance.now() - t0;
      inNative += dt;
      const p = a[0];
      const key = name === 'boxteAdamRows' && p instanceof Float32Array ? `boxteAdamRows n=${p.length}${a.length > 13 ? ' (lazy)' : ''}` : name;
      (times[key] ??= []).push(dt);
      return r;
    };
  }
  const { kg, tr } = await rootTrainer(1);
  const steps = intArg('steps', 150);
  const perm = tr.rng.permutation(kg.train.h.length);
  const batches = Math.floor(perm.length / 256);
  const batch = (i: number): Int32Array => perm.subarray(256 * (i % batches), 256 * ((i % batches) + 1));
  for (let i = 0; i < 5; i++) tr.step(batch(i));
  for (const k of Object.keys(times)) times[k] = [];
  const wall: number[] = [];
  const outside: number[] = [];
  for (let i = 5; i < 5 + steps; i++) {
    inNative = 0;
    const t0 = performance.now();
    tr.step(batch(i));
    const w = performance.now() - t0;
    wall.push(w);
    outside.push(w - inNative);
  }
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  const stat = (v: number[]): [number, number] => {
    const s = [...v].sort((x, y) => x - y);
    return [round(s[0]), round(s[s.length >> 1])];
  };
  const calls: Record<string, { per_step: number; min_ms: number; median_ms: number }> = {};
  for (const [k, v] of Object.entries(times)) {
    if (v.length === 0) continue;
    const [mn, md] = stat(v);
    calls[k] = { per_step: round(v.length / steps), min_ms: mn, median_ms: md };
  }
  const [wm, wd] = stat(wall);
  const [om, od] = stat(outside);
  const out = { root, d: tr.model.cfg.dim, threads: process.env.TFREE_THREADS ?? 'default', steps, calls, step_wall_ms: { min: wm, median: wd }, outside_native_ms: { min: om, median: od } };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv.includes('--child')) {
  await child();
} else {
  runRootsInterleaved(import.meta.url, ['--dim', String(intArg('dim', 154)), '--steps', String(intArg('steps', 150))], '1', 'once or more');
}
