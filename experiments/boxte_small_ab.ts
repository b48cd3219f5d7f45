/**
 * The parts of a BoxTE training step outside the training kernel, call by call, for two or more
 * builds (docs/results/boxte_speed.md, "Outside the kernel"): each `--root` is a tfree checkout with dist/ and
 * the native addon built (as for boxte_speed_ab.ts). Per round and root a fresh process builds the
 * ICEWS14 trainer (d, k=2, 75 negatives, batch 256), runs 3 steps, then times each call `--reps`
 * times on one batch and keeps the minimum: the negatives, the corners forward (with zeroGrad), the
 * time bumps forward, the box table, the corner gradient, the corners backward, the time-bump
 * backward, the regulariser, the Adam of the relation and time parameters (on the gradients of one
 * step) through AdamW.step (before 3ed7f4e) and through adamRows (the trainer's path since),
 * and the entity tables'
 * fused Adam with one batch's gradient pattern (rows the candidates touch non-zero, per chunk)
 * after a 64 MB sweep evicted the caches ("entity Adam (cold)"). Roots alternate within each round; the
 * parent prints per call the min / median over rounds of each root and the ratio of the last root
 * to the first. The thread count and path come from TFREE_THREADS / TFREE_ISA.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_small_ab.js --root OLD --root NEW
 *      [--data ../shared/data/icews14] [--dim 154] [--reps 100] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { arg, args, usageError, intArg } from './argv.js';
import { rootTrainer } from './boxte_root.js';
import type { KeyTable } from '../src/models/boxte/kernel.js';

async function child(): Promise<void> {
  const { root, kg, cfg, tr } = await rootTrainer(1);
  const sm = (await import(`${root}/dist/src/models/boxte/small.js`)) as typeof import('../src/models/boxte/small.js');
  const trm = (await import(`${root}/dist/src/models/boxte/train.js`)) as typeof import('../src/models/boxte/train.js');
  const ops = (await import(`${root}/dist/src/models/boxte/ops.js`)) as typeof import('../src/models/boxte/ops.js');
  const d = cfg.dim;
  const reps = intArg('reps', 100);
  // the trainer's own buffers (private fields of Trainer)
  const priv = tr as unknown as { trainSet: KeyTable; gBase: Float32Array; gBump: Float32Array; slots: { data: Float32Array; count: number } | null };
  const perm = tr.rng.permutation(kg.train.h.length);
  for (let i = 0; i < 3; i++) tr.step(perm.subarray(256 * i, 256 * (i + 1)));
  const m = tr.model;
  const R = cfg.numRelations;
  const E = cfg.numEntities;
  const sc = new sm.StepScratch();
  const idx = perm.subarray(256 * 5, 256 * 6);
  const pick = (a: Int32Array): Int32Array => idx.map((i) => a[i]);
  const [h, r, t, tau] = [pick(kg.train.h), pick(kg.train.r), pick(kg.train.t), pick(kg.train.tau)];
  const out: Record<string, number> = {};
  const time = (name: string, f: (i: number) => void): void => {
    let best = Infinity;
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      f(i);
      best = Math.min(best, performance.now() - t0);
    }
    out[name] = best;
  };
  time('negatives', (i) => trm.sampleNegatives(1000 + i, h, r, t, tau, 75, priv.trainSet, sc));
  let corners = sm.cornersForward(m, sc);
  time('zeroGrad + corners forward', () => {
    tr.opt.zeroGrad();
    corners = sm.cornersForward(m, sc);
  });
  time('time bumps forward', () => sm.timeBumpsForward(m, r, tau, sc));
  time('box table', () => sm.boxTableStep(corners.stacked, R, d, sc));
  const gc = Float32Array.from({ length: 2 * R * d }, (_, i) => Math.sin(i) * 1e-3);
  const gw = Float32Array.from({ length: 2 * R * d }, (_, i) => Math.cos(i) * 1e-3);
  const gTb = Float32Array.from({ length: 256 * d }, (_, i) => Math.sin(i * 0.7) * 1e-3);
  time('corner gradient', () => sm.cornerGradStep(gc, gw, R, d, sc));
  const cg = Float32Array.from(sm.cornerGradStep(gc, gw, R, d, sc));
  time('corners backward', () => {
    tr.opt.zeroGrad();
    sm.cornersBackward(m, corners, cg, sc);
  });
  time('time bumps backward', () => {
    if (m.timeBumpTable !== null) m.timeBumpTable.grad = null;
    if (m.alpha !== null) m.alpha.grad = null;
    sm.timeBumpsBackward(m, r, tau, gTb, sc);
  });
  time('regulariser', () => sm.timeRegulariserStep(m, 0.1, sc));
  tr.opt.zeroGrad();
  sm.cornersBackward(m, corners, cg, sc);
  sm.timeBumpsBackward(m, r, tau, gTb, sc);
  sm.timeRegulariserStep(m, 0.1, sc);
  const k = ops.boxKernels();
  const adam = k.adamRows;
  if (adam !== null) {
    // the trainer's fused path for them (since 3ed7f4e): adamRows per parameter, gradients restored before each call
    const grads = m.store.entries().flatMap(([, p]) => (p.grad === null ? [] : [[p, Float32Array.from(p.grad.f32()), p.grad.f32()] as const]));
    const moments = grads.map(([, saved]) => [new Float32Array(saved.length), new Float32Array(saved.length)] as const);
    let best = Infinity;
    for (let rep = 0; rep < reps; rep++) {
      for (const [, saved, g] of grads) g.set(saved);
      const t0 = performance.now();
      grads.forEach(([p, , g], j) => adam({ p: p.f32(), g0: g, slots: null, m: moments[j][0], v: moments[j][1], lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 0.5, bc2: 0.5 }));
      best = Math.min(best, performance.now() - t0);
    }
    out['relation, time: adamRows'] = best;
  }
  time('relation, time: AdamW.step', () => tr.opt.step());
  if (adam !== null) {
    // chunk c of the kernel's count takes groups [c B / n, (c + 1) B / n): its rows go to g0 (c = 0) or slot c - 1
    const neg = trm.sampleNegatives(99, h, r, t, tau, 75, priv.trainSet, sc);
    const sl = priv.slots;
    const nsl = sl === null ? 0 : sl.count;
    const rowsOf = (c: number): Set<number> => {
      const i0 = Math.floor((c * 256) / (nsl + 1));
      const i1 = Math.floor(((c + 1) * 256) / (nsl + 1));
      return new Set([...h.subarray(i0, i1), ...t.subarray(i0, i1), ...neg.ent.subarray(i0 * 75, i1 * 75)]);
    };
    const st = tr.opt.momentsOf('entity.base');
    const big = new Float32Array(16 << 20);
    let best = Infinity;
    for (let rep = 0; rep < 30; rep++) {
      for (const e of rowsOf(0)) for (const g of [priv.gBase, priv.gBump]) g.fill(1e-4, e * d, (e + 1) * d);
      if (sl !== null) {
        for (let s = 0; s < nsl; s++) for (const e of rowsOf(s + 1)) for (const o of [0, E * d]) sl.data.fill(1e-4, s * 2 * E * d + o + e * d, s * 2 * E * d + o + (e + 1) * d);
      }
      big.fill(rep);
      const t0 = performance.now();
      for (const [p, g0, offset] of [[m.entityBase, priv.gBase, 0], [m.entityBump, priv.gBump, E * d]] as const) {
        adam({ p: p.f32(), g0, slots: sl === null || nsl === 0 ? null : { data: sl.data, count: nsl, offset }, m: st.m, v: st.v, lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 0.5, bc2: 0.5 });
      }
      best = Math.min(best, performance.now() - t0);
    }
    out['entity Adam (cold)'] = best;
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function parent(): void {
  const roots = args('root');
  if (roots.length === 0) usageError('give --root DIR (twice: old and new)');
  const data = arg('data', fileURLToPath(new URL('../../../shared/data/icews14', import.meta.url)));
  const res = new Map<string, Record<string, number[]>>();
  for (let round = 0; round < intArg('rounds', 3); round++) {
    for (const root of roots) {
      const line = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', '--root', root, '--data', data, '--dim', arg('dim', '154'), '--reps', arg('reps', '100')], { encoding: 'utf8' });
      const o = JSON.parse(line) as Record<string, number>;
      const acc = res.get(root) ?? {};
      for (const [key, v] of Object.entries(o)) (acc[key] ??= []).push(v);
      res.set(root, acc);
    }
  }
  const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const first = res.get(roots[0]) ?? {};
  const last = res.get(roots[roots.length - 1]) ?? {};
  process.stdout.write(`call (ms) | ${roots.map((x) => `${x} min / median`).join(' | ')} | last/first min, median\n`);
  for (const key of Object.keys(first)) {
    const cells = roots.map((x) => {
      const v = res.get(x)?.[key] ?? [NaN];
      return `${Math.min(...v).toFixed(3)} / ${med(v).toFixed(3)}`;
    });
    const a = first[key];
    const b = last[key] ?? [NaN];
    process.stdout.write(`${key} | ${cells.join(' | ')} | ${(Math.min(...b) / Math.min(...a)).toFixed(2)}, ${(med(b) / med(a)).toFixed(2)}\n`);
  }
}

if (process.argv.includes('--child')) {
  await child();
} else {
  parent();
}
