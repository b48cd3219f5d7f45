/**
 * BoxTE scale test (issue 15, item 4): training on a generated temporal KG of GDELT size and beyond
 * (10,000 entities, 20 relations, 366 timestamps, up to 2.5 M facts), d=154, k=2, 75 negatives,
 * batch 256. For each size a fresh child process builds the KG (`syntheticKG`, 80/10/10 split),
 * builds the trainer and times `--steps` training steps after one warm-up step; it reports
 * seconds per step, the extrapolated seconds per epoch (steps per epoch x seconds per step: the
 * per-step work does not depend on the number of facts, so an epoch is linear in facts) and the
 * peak resident memory of the process (maxRSS, which includes building the text splits).
 * `--full-epoch` times one whole epoch instead of extrapolating.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/boxte_scale.js [--sizes 500000,1000000,2500000]
 *      [--entities 10000] [--steps 40] [--full-epoch] [--json FILE]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { syntheticKG } from '../src/io/kg.js';
import { Trainer, boxKernels, defaultConfig, defaultTrainOptions } from '../src/models/boxte/index.js';
import { arg, intArg, usageError } from './argv.js';

interface SizeResult {
  facts_all: number;
  train_facts: number;
  entities: number;
  build_s: number;
  steps: number;
  s_per_step: number;
  epoch_s: number;
  epoch_measured: boolean;
  peak_rss_mb: number;
  phase_share: Record<string, number>;
  kernels: string;
  threads: number;
}

function child(facts: number, entities: number, steps: number, full: boolean): SizeResult {
  const t0 = performance.now();
  const kg = syntheticKG({ entities, relations: 20, times: 366, groups: 10, facts, seed: 3 });
  const cfg = defaultConfig({ numEntities: kg.entities.length, numRelations: kg.relations.length, numTimes: kg.numTimes, dim: 154, k: 2 });
  const tr = new Trainer(kg, cfg, { ...defaultTrainOptions, seed: 1 });
  const buildS = (performance.now() - t0) / 1000;
  const N = kg.train.h.length;
  const perEpoch = tr.stepsPerEpoch;
  let sPerStep: number;
  let epochS: number;
  let done: number;
  if (full) {
    const r = tr.trainEpoch();
    epochS = r.seconds;
    done = perEpoch;
    sPerStep = epochS / perEpoch;
  } else {
    const perm = tr.rng.permutation(N);
    tr.step(perm.subarray(0, 256));
    for (const k of Object.keys(tr.phaseSeconds)) tr.phaseSeconds[k] = 0;
    const t1 = performance.now();
    for (let s = 1; s <= steps; s++) tr.step(perm.subarray(s * 256, (s + 1) * 256));
    sPerStep = (performance.now() - t1) / 1000 / steps;
    epochS = sPerStep * perEpoch;
    done = steps;
  }
  const total = Object.values(tr.phaseSeconds).reduce((a, b) => a + b, 0);
  const share: Record<string, number> = {};
  for (const [k, v] of Object.entries(tr.phaseSeconds)) share[k] = Math.round((1000 * v) / total) / 1000;
  const k = boxKernels();
  return {
    facts_all: facts,
    train_facts: N,
    entities: kg.entities.length,
    build_s: buildS,
    steps: done,
    s_per_step: sPerStep,
    epoch_s: epochS,
    epoch_measured: full,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    phase_share: share,
    kernels: `${k.name} ${k.isa}`,
    threads: k.threads(),
  };
}

if (process.argv.includes('--child')) {
  const r = child(intArg('facts', 500000), intArg('entities', 10000), intArg('steps', 40), process.argv.includes('--full-epoch'));
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  const sizes = arg('sizes', '500000,1000000,2500000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1000)) usageError(`--sizes must be whole numbers >= 1000, comma-separated, got "${arg('sizes', '')}"`);
  const rows: SizeResult[] = [];
  for (const n of sizes) {
    const extra = process.argv.includes('--full-epoch') ? ['--full-epoch'] : [];
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', '--facts', String(n), '--entities', String(intArg('entities', 10000)), '--steps', String(intArg('steps', 40)), ...extra], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as SizeResult;
    rows.push(r);
    process.stderr.write(
      `${r.train_facts} train facts, ${r.entities} entities: build ${r.build_s.toFixed(1)} s, ${(r.s_per_step * 1000).toFixed(1)} ms/step over ${r.steps} steps -> ` +
        `${r.epoch_s.toFixed(0)} s/epoch (${(r.epoch_s / r.train_facts * 1e6).toFixed(1)} s per M facts), peak RSS ${r.peak_rss_mb.toFixed(0)} MB (${r.kernels}, ${r.threads} threads)\n`,
    );
  }
  const json = arg('json', '');
  if (json !== '') fs.writeFileSync(json, `${JSON.stringify(rows, null, 1)}\n`);
  else process.stdout.write(`${JSON.stringify(rows)}\n`);
}
