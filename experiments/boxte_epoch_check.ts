/**
 * One full BoxTE training epoch on ICEWS14 per `--root` (a tfree checkout with dist/ and the
 * native addon built, as for boxte_speed_ab.ts), seed 0, the paper's settings (d, k=2, 75
 * negatives, batch 256): prints the epoch's mean loss, its wall and CPU seconds (both threads) and
 * the SHA-1 of all parameters afterwards (first 12 hex digits), so two builds can be compared for
 * speed and for identical training (same loss and SHA-1 = the same bits). Roots alternate within
 * each round. The thread count and path come from TFREE_THREADS / TFREE_ISA.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_epoch_check.js --root OLD --root NEW
 *      [--data ../shared/data/icews14] [--dim 154] [--rounds 1]
 */
import { createHash } from 'node:crypto';
import { runRootsInterleaved, intArg } from './argv.js';
import { rootTrainer } from './boxte_root.js';

async function child(): Promise<void> {
  const { root, cfg, tr } = await rootTrainer(0);
  const d = cfg.dim;
  const c0 = process.cpuUsage();
  const res = tr.trainEpoch();
  const cu = process.cpuUsage(c0);
  const h = createHash('sha1');
  for (const [, p] of tr.model.store.entries()) {
    const a = p.f32();
    h.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  }
  const out = { root, d, loss: res.loss, epoch_wall_s: Math.round(res.seconds * 100) / 100, epoch_cpu_s: Math.round((cu.user + cu.system) / 1e4) / 100, sha1: h.digest('hex').slice(0, 12) };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv.includes('--child')) {
  await child();
} else {
  runRootsInterleaved(import.meta.url, ['--dim', String(intArg('dim', 154))], '1', 'once or more');
}
