/**
 * The attention kernels alone (forward and backward) on the calls a HAT training step makes,
 * timed for two or more builds of tfree, interleaved so that machine load hits all alike.
 *
 *   node dist/experiments/attention_kernel.js [--preset small] [--threads 1] [--rounds 5] [--reps 3]
 *        [--root /work/main --root .]   (default: this build only) [--per-shape]
 *
 * Each round runs, per root and one after the other, a fresh process (that root's own native
 * addon and modules) that does one forward + backward of the bench's HAT batch (bench/hat.ts
 * shapes, synthetic text, seed 1) with the kernel table wrapped to copy the arguments of every
 * `attention` and `attentionBackward` call, then replays each captured call `reps` times on fresh
 * output arrays (the backward's gq/gk/gv zeroed, as the op does) and reports the best time of
 * each call summed over the step's calls, and an FNV-1a hash of every output's bits (same hash =
 * same bits). The parent prints per round the seconds per step of each root and the ratios
 * against the first root, then min and median over the rounds; `--per-shape` also prints each
 * child's seconds per call shape (the best time of each call, summed over that shape's calls).
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arg, args, intArg, choiceArg, median } from './argv.js';
import { importHatTrain, presetBatch } from './hat_batch.js';

const HERE = nodePath.dirname(fileURLToPath(import.meta.url));
const ROOT = nodePath.resolve(HERE, '..', '..');

interface ChildResult {
  fwd: number;
  bwd: number;
  calls: number;
  hash: string;
  shapes: string[];
  /** per call shape: the best times of its calls summed (s) */
  perShape: Record<string, number>;
}

/** FNV-1a (32-bit) over the bytes of the arrays, as hex. */
function fnv(arrays: ArrayBufferView[]): string {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

type Arg = unknown;
const isArgsObject = (a: Arg): boolean => typeof a === 'object' && a !== null && !ArrayBuffer.isView(a);
const copyArg = (a: Arg): Arg => (a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint8Array ? a.slice() : isArgsObject(a) ? { ...(a as object) } : a);
const ATTN_FIELDS = ['B', 'Hq', 'Hkv', 'Tq', 'Tk', 'D', 'scale', 'causal', 'window', 'qPos', 'kPos', 'qSeg', 'kSeg', 'mask'] as const;

async function child(root: string, preset: string, threads: number, reps: number): Promise<ChildResult> {
  const imp = async <T>(p: string): Promise<T> => (await import(pathToFileURL(nodePath.join(root, 'dist', p)).href)) as T;
  const kidx = await imp<typeof import('../src/tensor/kernels/index.js')>('src/tensor/kernels/index.js');
  const nn = await imp<typeof import('../src/nn/index.js')>('src/nn/index.js');
  const io = await imp<typeof import('../src/io/index.js')>('src/io/index.js');
  const cfgm = await imp<typeof import('../src/models/hat/config.js')>('src/models/hat/config.js');
  const modelm = await imp<typeof import('../src/models/hat/model.js')>('src/models/hat/model.js');
  const splitm = await imp<typeof import('../src/models/hat/splitter.js')>('src/models/hat/splitter.js');
  const trainm = await importHatTrain(root);
  const nb = kidx.nativeBackend();
  if (!('kernels' in nb)) throw new Error(`no native kernels in ${root}: ${nb.error}`);
  nb.extras.setThreads(threads);
  const k = nb.kernels as unknown as Record<string, (...a: Arg[]) => unknown>;
  const captured: { name: 'attention' | 'attentionBackward'; args: Arg[] }[] = [];
  const orig = { attention: k.attention, attentionBackward: k.attentionBackward };
  for (const name of ['attention', 'attentionBackward'] as const) {
    const fn = orig[name];
    k[name] = (...a: Arg[]): unknown => {
      captured.push({ name, args: a.map(copyArg) });
      return fn(...a);
    };
  }
  const cfg = cfgm.presetConfig(preset);
  const model = new modelm.HATModel(cfg, { seed: 1 });
  const { batch } = presetBatch({ nn, io, splitm, trainm }, cfg, preset);
  const { loss } = model.loss(batch);
  loss.backward(undefined, false, { freeActivations: true });
  const res: ChildResult = { fwd: 0, bwd: 0, calls: captured.length, hash: '', shapes: [], perShape: {} };
  const outs: ArrayBufferView[] = [];
  for (const c of captured) {
    const a = c.args.map(copyArg);
    // attention(q, k, v, out, lse, <14 args>, scores?), attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, <14 args>, scores?);
    // <14 args> = B, Hq, Hkv, Tq, Tk, D, scale, causal, window, qPos, kPos, qSeg, kSeg, mask: positional
    // in builds before the AttentionArgs object (which this reads back into that order)
    const o = c.name === 'attention' ? [3, 4] : [6, 7, 8];
    const first = c.name === 'attention' ? 5 : 9;
    const rest = isArgsObject(a[first]) ? ATTN_FIELDS.map((f) => (a[first] as Record<string, unknown>)[f]) : a.slice(first, first + 14);
    const dims = rest.slice(0, 9) as (number | boolean)[];
    const masks = rest.slice(9).map((x) => (x === null ? '-' : '+')).join('');
    res.shapes.push(`${c.name} B${dims[0]} Hq${dims[1]} Hkv${dims[2]} Tq${dims[3]} Tk${dims[4]} D${dims[5]} causal ${dims[7]} window ${dims[8]} pos/seg/mask ${masks}`);
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      for (const i of o) {
        const arr = a[i] as Float32Array;
        arr.fill(c.name === 'attention' ? Number.NaN : 0); // forward outputs poisoned; backward accumulates into zeros
      }
      const t = performance.now();
      orig[c.name](...a);
      best = Math.min(best, (performance.now() - t) / 1e3);
    }
    const key = res.shapes[res.shapes.length - 1];
    res.perShape[key] = (res.perShape[key] ?? 0) + best;
    if (c.name === 'attention') res.fwd += best;
    else res.bwd += best;
    for (const i of o) outs.push(a[i] as Float32Array);
  }
  res.hash = fnv(outs);
  return res;
}


async function main(): Promise<void> {
  const preset = choiceArg('preset', 'small', ['tiny', 'small']);
  const threads = intArg('threads', 1);
  const reps = intArg('reps', 3);
  if (process.argv.includes('--child')) {
    const r = await child(arg('child', ROOT), preset, threads, reps);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const roots = args('root').map((r) => nodePath.resolve(r));
  if (roots.length === 0) roots.push(ROOT);
  const rounds = intArg('rounds', 5);
  const all = roots.map(() => ({ fwd: [] as number[], bwd: [] as number[], sum: [] as number[] }));
  console.log(`attention kernels of one HAT ${preset} training step (B x T as bench/hat.ts), ${threads} thread(s), best of ${reps} per call`);
  for (let i = 0; i < rounds; i++) {
    const line: string[] = [`round ${i + 1} load ${os.loadavg()[0].toFixed(1)}`];
    roots.forEach((root, j) => {
      const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', root, '--preset', preset, '--threads', String(threads), '--reps', String(reps)], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
        env: { ...process.env, TFREE_THREADS: String(threads) },
      });
      if (p.status !== 0) throw new Error(`child ${root} failed: ${p.stderr.slice(-2000)}`);
      const r = JSON.parse(p.stdout.trim().split('\n').pop() ?? '') as ChildResult;
      if (i === 0 && j === 0) for (const s of [...new Set(r.shapes)]) console.log(`  ${r.shapes.filter((x) => x === s).length}x ${s}`);
      all[j].fwd.push(r.fwd);
      all[j].bwd.push(r.bwd);
      all[j].sum.push(r.fwd + r.bwd);
      line.push(`${root}: fwd ${r.fwd.toFixed(4)} bwd ${r.bwd.toFixed(4)} s (hash ${r.hash})`);
      if (process.argv.includes('--per-shape')) for (const [sh, t] of Object.entries(r.perShape)) console.log(`    ${root}: ${t.toFixed(4)} s  ${sh}`);
    });
    console.log(line.join(' | '));
  }
  for (let j = 0; j < roots.length; j++) {
    const a = all[j];
    const rel = j === 0 ? '' : ` ratio vs ${roots[0]}: fwd min ${(Math.min(...all[0].fwd) / Math.min(...a.fwd)).toFixed(2)}x median ${(median(all[0].fwd) / median(a.fwd)).toFixed(2)}x, bwd min ${(Math.min(...all[0].bwd) / Math.min(...a.bwd)).toFixed(2)}x median ${(median(all[0].bwd) / median(a.bwd)).toFixed(2)}x, both min ${(Math.min(...all[0].sum) / Math.min(...a.sum)).toFixed(2)}x median ${(median(all[0].sum) / median(a.sum)).toFixed(2)}x`;
    console.log(`${roots[j]}: fwd min ${Math.min(...a.fwd).toFixed(4)} median ${median(a.fwd).toFixed(4)} s, bwd min ${Math.min(...a.bwd).toFixed(4)} median ${median(a.bwd).toFixed(4)} s${rel}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
