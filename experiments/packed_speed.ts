/**
 * Whole-model KV-cached HAT generation speed from packed weights vs f32 (issue 4), and what the
 * packed kernel's activation precision (int16 / int8) costs in held-out bits per byte.
 *
 *  1. bpb: the bundled tiny model (models/default) on held-out Brown text, f32 and each format
 *     (post-training quantization, block 32) with int16 and with int8 activations;
 *  2. speed: `generate` (cached) on the tiny model (weights ~10 MB f32: cache-resident) and on the
 *     `small` preset (31 M parameters, ~125 MB f32: far beyond the 32 MiB L3) with random weights
 *     (speed does not depend on the values), f32 vs each format x activation precision, all
 *     variants interleaved within each repetition; median bytes/s.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/packed_speed.js [--reps 5] [--gen-bytes 300]
 *      [--formats int8,int4,kmeans4,kmeans2,bin1] [--eval-bytes 16384] [--models tiny,small] [--no-bpb]
 *      [--json FILE]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadHATModel } from '../src/models/hat/checkpoint.js';
import { HATModel } from '../src/models/hat/model.js';
import { presetConfig } from '../src/models/hat/config.js';
import { HatSplitter } from '../src/models/hat/splitter.js';
import { generate } from '../src/models/hat/generate.js';
import { evaluateText } from '../src/models/hat/score.js';
import { parseFormat, quantizeModel, setPackedAct, setPackedLut, type PackedAct } from '../src/compress/index.js';
import { packedLutFits } from '../src/tensor/kernels/js_packed_lut.js';
import { arg, intArg, median } from './argv.js';

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..');
const REPS = intArg('reps', 5);
const GEN_BYTES = intArg('gen-bytes', 300);
const FORMATS = arg('formats', 'int8,int4,kmeans4,kmeans2,bin1').split(',');
const EVAL_BYTES = intArg('eval-bytes', 16384);
const JSON_OUT = arg('json', '');
const MODELS = arg('models', 'tiny,small').split(',');
const BPB = !process.argv.includes('--no-bpb');
const ACTS: PackedAct[] = ['int16', 'int8'];
const PROMPT = 'The jury said that the city';
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const splitterOf = (m: HATModel): HatSplitter => new HatSplitter({ maxWordSize: m.config.max_word_size, specialTokens: m.config.special_token_dict });

// ---- held-out text: two of the bundled model's validation documents (models/README.md) ----
const TMP = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'packed-speed-'));
const brown = nodePath.join(TMP, 'brown.jsonl');
execFileSync('node', [nodePath.join(ROOT, 'scripts', 'prepare-brown.mjs'), brown], { stdio: 'ignore' });
const held = fs
  .readFileSync(brown, 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { id: string; text: string })
  .filter((d) => d.id === 'ca38' || d.id === 'cg19')
  .map((d) => d.text)
  .join('\n')
  .slice(0, EVAL_BYTES);
fs.rmSync(TMP, { recursive: true, force: true });

const TINY = nodePath.join(ROOT, 'models', 'default');
const t0 = performance.now();

// ---- 1. bpb per format x activation precision (tiny model, PTQ) ----
const bpb = (m: HATModel): number => evaluateText(m, splitterOf(m), [held], { contextBytes: 512 }).bitsPerByte;
const bpbRows: { variant: string; bpb: number }[] = BPB ? [{ variant: 'f32', bpb: bpb(loadHATModel(TINY)) }] : [];
for (const f of BPB ? FORMATS : []) {
  const m = loadHATModel(TINY);
  quantizeModel(m, parseFormat(f, { blockSize: 32 }), { seed: 0 });
  for (const act of ACTS) {
    setPackedAct(m, act);
    bpbRows.push({ variant: `${f} ${act} act`, bpb: bpb(m) });
  }
  log(`bpb ${f}: ${bpbRows.slice(-2).map((r) => r.bpb.toFixed(4)).join(' / ')}`);
}

// ---- 2. generation speed ----
interface Variant {
  name: string;
  model: HATModel;
  act?: PackedAct;
  /** lookup-table path on (default) or off (1- and 2-bit formats, int8 activations, block 64k) */
  lut?: boolean;
}
function variants(base: () => HATModel, block: number): Variant[] {
  const out: Variant[] = [{ name: 'f32', model: base() }];
  for (const f of FORMATS) {
    const m = base();
    quantizeModel(m, parseFormat(f, { blockSize: block }), { seed: 0 });
    for (const act of ACTS) out.push({ name: `${f} ${act} act`, model: m, act, lut: true });
    const fmt = parseFormat(f, { blockSize: block });
    if (ACTS.includes('int8') && packedLutFits(fmt.bits, block, block, fmt.scaleDtype === 'BF16')) {
      out.push({ name: `${f} int8 act, decode kernel (LUT off)`, model: m, act: 'int8', lut: false });
    }
  }
  return out;
}
interface SpeedRow {
  model: string;
  variant: string;
  runs: number[];
  median: number;
  vsF32: number;
}
const speedRows: SpeedRow[] = [];
const models: [string, () => HATModel, number][] = [];
if (MODELS.includes('tiny')) models.push(['tiny (bundled, 2.6 M params)', () => loadHATModel(TINY), 32]);
if (MODELS.includes('small')) models.push(['small preset (31 M params, random weights)', () => new HATModel(presetConfig('small'), { seed: 1 }), 64]);
for (const [label, base, block] of models) {
  const vs = variants(base, block);
  log(`${label}: ${vs.length} variants built (${((performance.now() - t0) / 1e3).toFixed(0)} s)`);
  const runs = new Map<string, number[]>(vs.map((v) => [v.name, []]));
  const gen = (v: Variant, bytes: number, seed: number): number => {
    if (v.act) setPackedAct(v.model, v.act);
    if (v.lut !== undefined) setPackedLut(v.model, v.lut);
    const ts = performance.now();
    const r = generate(v.model, splitterOf(v.model), PROMPT, { maxBytes: bytes, temperature: 0.7, seed, stop: [] });
    return r.bytes.length / ((performance.now() - ts) / 1e3);
  };
  for (const v of vs) gen(v, 20, 0); // warm-up
  for (let rep = 0; rep < REPS; rep++) {
    // rotate the order each repetition so no variant always runs first
    for (let i = 0; i < vs.length; i++) {
      const v = vs[(i + rep) % vs.length];
      runs.get(v.name)?.push(gen(v, GEN_BYTES, rep + 1));
    }
    log(`${label}: repetition ${rep + 1}/${REPS} (${((performance.now() - t0) / 1e3).toFixed(0)} s)`);
  }
  const f32 = median(runs.get('f32') ?? []);
  for (const v of vs) {
    const r = runs.get(v.name) ?? [];
    speedRows.push({ model: label, variant: v.name, runs: r, median: median(r), vsF32: median(r) / f32 });
  }
}

// ---- report ----
const lines: string[] = [];
if (BPB) lines.push(`Held-out bpb (tiny bundled model, ${held.length} bytes of Brown documents ca38 + cg19, 512-byte contexts; PTQ, block 32):`, '');
if (BPB) lines.push('| weights | bpb | vs f32 |', '|---|--:|--:|');
for (const r of bpbRows) lines.push(`| ${r.variant} | ${r.bpb.toFixed(4)} | ${r.variant === 'f32' ? '-' : `${r.bpb - bpbRows[0].bpb >= 0 ? '+' : ''}${(r.bpb - bpbRows[0].bpb).toFixed(4)}`} |`);
lines.push('', `Cached generation (\`generate\`, prompt "${PROMPT}", ${GEN_BYTES} bytes, temperature 0.7), ${REPS} repetitions, variants interleaved (order rotated each repetition); median bytes/s. TFREE_THREADS=${process.env.TFREE_THREADS ?? 'default'}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average at the end ${os.loadavg()[0].toFixed(1)}.`, '');
lines.push('| model | weights | bytes/s (median) | all runs | vs f32 |', '|---|---|--:|---|--:|');
for (const r of speedRows) lines.push(`| ${r.model} | ${r.variant} | ${r.median.toFixed(1)} | ${r.runs.map((x) => x.toFixed(0)).join(', ')} | ${r.vsF32.toFixed(2)}x |`);
lines.push('', `Total run time: ${((performance.now() - t0) / 1e3).toFixed(0)} s.`);
process.stdout.write(`${lines.join('\n')}\n`);
if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify({ bpb: bpbRows, speed: speedRows }, null, 1));
