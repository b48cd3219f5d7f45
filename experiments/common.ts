/**
 * Shared setup of the HAT-vs-token experiments (quality, robustness, conversion, token_dtm):
 * the Brown corpus with the bundled model's held-out documents, our byte-level BPE tokenizer
 * trained on the training documents, the two compute-matched models and their training runs,
 * all cached under experiments/.cache/ (gitignored) so later experiments reuse them.
 *
 * `node dist/experiments/common.js hat|llama|hat-llama-shape|converted` trains just that model
 * (for running two trainings side by side); every experiment trains what it needs when missing.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { BytePacker, type TextDocument } from '../src/io/index.js';
import { ParamStore, VarBuilder, init } from '../src/nn/index.js';
import { Trainer, type LogEntry, type TrainSettings, type TrainableModel } from '../src/train/index.js';
import { runStages } from '../src/convert/staged.js';
import { convertLlamaToHAT } from '../src/convert/llama_to_hat.js';
import { makeHATConfig, PRESETS, type HATConfig } from '../src/models/hat/config.js';
import { HATModel } from '../src/models/hat/model.js';
import { loadHATModel } from '../src/models/hat/checkpoint.js';
import { HatSplitter, splitBytes } from '../src/models/hat/splitter.js';
import { LlamaLM, TokenPieces, llamaTrainable, loadLlama, loadTokenizer, saveBpeTokenizer, trainBpe, type HFTokenizer, type LlamaLMConfig } from '../src/models/llama/index.js';
import { hatFlopsPerByte, llamaFlopsPerByte } from '../src/eval/flops.js';
import { hatTrainable } from '../src/models/hat/train.js';
import { arg, intArg, numArg } from './argv.js';
export { arg, intArg, numArg };

export const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CACHE = process.env.TFREE_EXP_CACHE ?? nodePath.join(ROOT, 'experiments', '.cache');
export const RESULTS = nodePath.join(ROOT, 'docs', 'results');

export const log = (s: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ---- settings shared by all runs (change them and the cache keys change) ----------------------

export const SEED = 0;
/** TFREE_EXP_STEPS only for smoke tests (the cache keys include the steps) */
export const STEPS = Number(process.env.TFREE_EXP_STEPS ?? 300);
export const BATCH = 8;
export const SEQ_BYTES = 512;
export const LR = 2e-3;
export const WARMUP = Math.min(30, Math.floor(STEPS / 10));
export const EVAL_EVERY = 50;
export const EVAL_BYTES = 32768;
export const VOCAB = 4096;
export const EOT = '<|endoftext|>';

export function settings(steps = STEPS, lr = LR, warmup = WARMUP): TrainSettings {
  return { steps, batchRows: BATCH, accum: 1, lr, warmup, minLrRatio: 0.1, weightDecay: 0.1, betas: [0.9, 0.95], eps: 1e-8, clip: 1, evalEvery: EVAL_EVERY, evalBytes: EVAL_BYTES, saveEvery: 0, seed: SEED };
}

/** HAT: the `tiny` preset (the bundled model's shape). */
export function hatConfig(): HATConfig {
  return makeHATConfig(PRESETS.tiny);
}

/**
 * The token baseline: Llama blocks of the tiny HAT backbone's width (256, 4 heads, MLP 704), our
 * 4096-id BPE, tied embeddings; 4 layers and MLP width 608 chosen so that its training FLOPs per byte
 * match the tiny HAT's on the Brown training text (checked in quality.ts, within a few %).
 */
export function llamaConfig(vocabSize: number): LlamaLMConfig {
  return { vocabSize, hiddenSize: 256, intermediateSize: LLAMA_INTERMEDIATE, numLayers: LLAMA_LAYERS, numHeads: 4, numKvHeads: 4, ropeTheta: 10000, tieWordEmbeddings: true, rmsNormEps: 1e-5 };
}
export const LLAMA_LAYERS = Number(process.env.TFREE_EXP_LLAMA_LAYERS ?? 4);
export const LLAMA_INTERMEDIATE = Number(process.env.TFREE_EXP_LLAMA_MLP ?? 608);

// ---- data -------------------------------------------------------------------------------------

/** The bundled model's held-out Brown documents (models/README.md). */
export const VAL_IDS = new Set('ca38 cb11 cc04 cc08 cg19 cg20 cg31 cg50 cg57 ch27 cj47 cj61 cj67 cj76 ck05 ck06 cl01 cl03 cl04 cl12 cm06 cp29'.split(' '));

export interface Data {
  train: TextDocument[];
  val: TextDocument[];
  valTexts: string[];
}

let dataMemo: Data | null = null;
export function brown(): Data {
  if (dataMemo !== null) return dataMemo;
  fs.mkdirSync(CACHE, { recursive: true });
  const file = nodePath.join(CACHE, 'brown.jsonl');
  if (!fs.existsSync(file)) execFileSync('node', [nodePath.join(ROOT, 'scripts', 'prepare-brown.mjs'), file], { stdio: 'inherit' });
  const enc = new TextEncoder();
  const rows = fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; text: string });
  const docs = rows.map((d) => ({ source: d.id, bytes: enc.encode(d.text) }));
  const val = docs.filter((d) => VAL_IDS.has(d.source));
  if (val.length !== VAL_IDS.size) throw new Error(`${file}: found ${val.length} of the ${VAL_IDS.size} held-out documents`);
  // --val-chars N (smoke tests): score only the first N characters of each held-out document
  const vc = intArg('val-chars', 0, 0);
  const valTexts = rows.filter((d) => VAL_IDS.has(d.id)).map((d) => (vc > 0 ? d.text.slice(0, vc) : d.text));
  dataMemo = { train: docs.filter((d) => !VAL_IDS.has(d.source)), val, valTexts };
  return dataMemo;
}

/** Our BPE (trainBpe) on the training documents, cached. */
export function tokenizer(): HFTokenizer {
  const file = nodePath.join(CACHE, `bpe-${VOCAB}`, 'tokenizer.json');
  if (!fs.existsSync(file)) {
    const dec = new TextDecoder();
    const t0 = performance.now();
    const r = trainBpe(
      brown().train.map((d) => dec.decode(d.bytes)),
      { vocabSize: VOCAB, specialTokens: [EOT] },
    );
    fs.mkdirSync(nodePath.dirname(file), { recursive: true });
    saveBpeTokenizer(file, r);
    log(`BPE ${VOCAB} trained in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  }
  return loadTokenizer(file);
}

export function pieces(tok: HFTokenizer): TokenPieces {
  const eos = tok.specialTokens.get(EOT);
  if (eos === undefined) throw new Error(`tokenizer lacks ${EOT}`);
  return new TokenPieces(tok, { eosId: eos });
}

export const hatSplit = (b: Uint8Array): number[] => splitBytes(b, { maxWordSize: 100 }).map((w) => w.length);
export const splitter = (): HatSplitter => new HatSplitter({ maxWordSize: 100 });

/** Bytes per HAT word and per BPE token over the training documents (no end-of-document units). */
export function compressionRatios(tok: HFTokenizer): { bytesPerWord: number; bytesPerToken: number } {
  const file = nodePath.join(CACHE, `ratios-${VOCAB}.json`);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as { bytesPerWord: number; bytesPerToken: number };
  let bytes = 0;
  let words = 0;
  let tokens = 0;
  for (const d of brown().train) {
    bytes += d.bytes.length;
    words += hatSplit(d.bytes).length;
    tokens += tok.encodeBytes(d.bytes).length;
  }
  const r = { bytesPerWord: bytes / words, bytesPerToken: bytes / tokens };
  fs.writeFileSync(file, JSON.stringify(r));
  return r;
}

export function flopsPerByte(tok: HFTokenizer): { hat: number; llama: number; hatParts: Record<string, number>; llamaParts: Record<string, number> } {
  const r = compressionRatios(tok);
  const h = hatFlopsPerByte(hatConfig(), { bytesPerWord: r.bytesPerWord, seqBytes: SEQ_BYTES });
  const l = llamaFlopsPerByte(llamaConfig(tok.vocabSize), { bytesPerToken: r.bytesPerToken, seqBytes: SEQ_BYTES });
  return { hat: h.perByte, llama: l.perByte, hatParts: h.parts, llamaParts: l.parts };
}

// ---- training runs ----------------------------------------------------------------------------

export interface Run {
  dir: string;
  log: LogEntry[];
  seconds: number;
  /** text bytes the run trained on */
  trainBytes: number;
  params: number;
}

function readRun(dir: string): Run | null {
  const f = nodePath.join(dir, 'done.json');
  if (!fs.existsSync(f)) return null;
  return JSON.parse(fs.readFileSync(f, 'utf8')) as Run;
}

function finishRun(dir: string, logs: LogEntry[], t0: number, params: number, trainBytes: number): Run {
  const run: Run = { dir, log: logs, seconds: (performance.now() - t0) / 1e3, trainBytes, params };
  fs.writeFileSync(nodePath.join(dir, 'done.json'), JSON.stringify(run));
  return run;
}

/** Counts the text bytes a packer hands out (wraps next()). */
function countingPacker(p: BytePacker, counter: { bytes: number }): BytePacker {
  const next = p.next.bind(p);
  p.next = (rows: number) => {
    const b = next(rows);
    counter.bytes += b.textBytes;
    return b;
  };
  return p;
}

function trainOne(name: string, model: TrainableModel, split: (b: Uint8Array) => ArrayLike<number>, params: number, s = settings()): Run {
  const dir = nodePath.join(CACHE, name);
  const done = readRun(dir);
  if (done !== null) return done;
  fs.rmSync(dir, { recursive: true, force: true });
  const data = brown();
  const counter = { bytes: 0 };
  const t0 = performance.now();
  log(`training ${name} (${params.toLocaleString('en-US')} parameters, ${s.steps} steps)`);
  const tr = new Trainer({
    model,
    settings: s,
    train: countingPacker(new BytePacker(data.train, { seqBytes: SEQ_BYTES, split, seed: SEED }), counter),
    makeVal: () => new BytePacker(data.val, { seqBytes: SEQ_BYTES, split, shuffle: false }),
    outDir: dir,
    events: {
      onStep: (e) => {
        if (e.step % 25 === 0 || e.valBpb !== undefined) log(`${name} step ${e.step}: train bpb ${e.bpb.toFixed(3)}${e.valBpb !== undefined ? `, val ${e.valBpb.toFixed(3)}` : ''} (${e.time.toFixed(0)} s)`);
      },
    },
  });
  tr.runAll();
  return finishRun(dir, tr.log, t0, params, counter.bytes);
}

export function newHAT(cfg: HATConfig = hatConfig()): HATModel {
  return new HATModel(cfg, { seed: SEED });
}

export function newLlama(vocab: number): LlamaLM {
  const store = new ParamStore();
  return new LlamaLM(new VarBuilder(store, { rng: SEED, defaultInit: init.normal(0.02) }), llamaConfig(vocab));
}

/** The HAT of the quality comparison (tiny preset), trained or from the cache. */
export function hatRun(): { run: Run; model: HATModel } {
  const name = `hat-tiny-s${STEPS}`;
  let run = readRun(nodePath.join(CACHE, name));
  if (run === null) {
    const m = newHAT();
    run = trainOne(name, hatTrainable(m, 'F32'), hatSplit, m.numParams());
  }
  return { run, model: loadHATModel(run.dir) };
}

/** The token baseline, trained or from the cache. */
export function llamaRun(): { run: Run; model: LlamaLM; tok: HFTokenizer } {
  const tok = tokenizer();
  const name = `llama-L${LLAMA_LAYERS}-I${LLAMA_INTERMEDIATE}-v${VOCAB}-s${STEPS}`;
  let run = readRun(nodePath.join(CACHE, name));
  if (run === null) {
    const m = newLlama(tok.vocabSize);
    run = trainOne(name, llamaTrainable(m, pieces(tok)), pieces(tok).split, m.store.numParams());
  }
  return { run, model: loadLlama(run.dir).model, tok };
}

/** HAT config with the tiny byte modules and a backbone of the baseline Llama's blocks (what conversion gives). */
export function hatLlamaShapeConfig(vocab: number): HATConfig {
  const l = llamaConfig(vocab);
  return makeHATConfig({ ...PRESETS.tiny, backboneHidden: l.hiddenSize, backboneHeads: l.numHeads, backboneKvHeads: l.numKvHeads, backboneIntermediate: l.intermediateSize, backboneLayers: l.numLayers });
}

/** A HAT of the converted model's shape trained from scratch (conversion experiment). */
export function hatLlamaShapeRun(): Run {
  const tok = tokenizer();
  const name = `hat-llamashape-L${LLAMA_LAYERS}-I${LLAMA_INTERMEDIATE}-s${STEPS}`;
  const done = readRun(nodePath.join(CACHE, name));
  if (done !== null) return done;
  const m = newHAT(hatLlamaShapeConfig(tok.vocabSize));
  return trainOne(name, hatTrainable(m, 'F32'), hatSplit, m.numParams());
}

/** Stage-1 steps of the conversion (backbone frozen); stage 2 gets the rest of STEPS. */
export const STAGE1_STEPS = Math.round(STEPS / 3);
export const STAGE2_LR = 1e-3;

/**
 * The baseline Llama converted to HAT and trained in two stages for STEPS steps in all; stage 2 at
 * `stage2Lr` (default STAGE2_LR; the conversion experiment also runs it at LR, the scratch run's).
 */
export function convertedRun(stage2Lr = STAGE2_LR): Run {
  const { run: lrun } = llamaRun();
  const name = `converted-L${LLAMA_LAYERS}-I${LLAMA_INTERMEDIATE}-s${STAGE1_STEPS}+${STEPS - STAGE1_STEPS}${stage2Lr === STAGE2_LR ? '' : `-lr2-${stage2Lr}`}`;
  const dir = nodePath.join(CACHE, name);
  const done = readRun(dir);
  if (done !== null) return done;
  fs.rmSync(dir, { recursive: true, force: true });
  const conv = convertLlamaToHAT(lrun.dir, { preset: 'tiny', seed: SEED });
  const data = brown();
  const counter = { bytes: 0 };
  const t0 = performance.now();
  log(`training ${name} (${conv.model.numParams().toLocaleString('en-US')} parameters, ${conv.copied.length} tensors copied)`);
  const base = settings();
  const { steps: _s, lr: _l, warmup: _w, ...shared } = base;
  const res = runStages({
    model: hatTrainable(conv.model, 'F32'),
    stages: [
      { steps: STAGE1_STEPS, lr: LR, warmup: WARMUP, freeze: ['backbone'] },
      { steps: STEPS - STAGE1_STEPS, lr: stage2Lr, warmup: WARMUP },
    ],
    settings: shared,
    makeTrain: (k) => countingPacker(new BytePacker(data.train, { seqBytes: SEQ_BYTES, split: hatSplit, seed: SEED + k }), counter),
    makeVal: () => new BytePacker(data.val, { seqBytes: SEQ_BYTES, split: hatSplit, shuffle: false }),
    outDir: dir,
    events: (k) => ({
      onStep: (e) => {
        if (e.step % 25 === 0 || e.valBpb !== undefined) log(`${name} stage ${k + 1} step ${e.step}: train bpb ${e.bpb.toFixed(3)}${e.valBpb !== undefined ? `, val ${e.valBpb.toFixed(3)}` : ''}`);
      },
    }),
  });
  // one log over both stages, steps counted from the start
  const logs: LogEntry[] = [];
  let off = 0;
  for (const r of res) {
    for (const e of r.log) logs.push({ ...e, step: e.step + off });
    off += r.log.length;
  }
  return finishRun(dir, logs, t0, conv.model.numParams(), counter.bytes);
}

export function convertedModel(run: Run): HATModel {
  return loadHATModel(run.dir);
}

export function hatLlamaShapeModel(run: Run): HATModel {
  return loadHATModel(run.dir);
}

/** Writes a results file (atomically). */
export function writeResult(name: string, text: string): string {
  fs.mkdirSync(RESULTS, { recursive: true });
  const p = nodePath.join(RESULTS, name);
  fs.writeFileSync(`${p}.tmp`, text);
  fs.renameSync(`${p}.tmp`, p);
  return p;
}

// `node dist/experiments/common.js WHAT` trains one model into the cache
if (process.argv[1] !== undefined && nodePath.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const what = process.argv[2];
  if (what === 'hat') hatRun();
  else if (what === 'llama') llamaRun();
  else if (what === 'hat-llama-shape') hatLlamaShapeRun();
  else if (what === 'converted') convertedRun();
  else if (what === 'converted-lr') convertedRun(LR);
  else if (what === 'flops') {
    const tok = tokenizer();
    process.stdout.write(`${JSON.stringify({ ratios: compressionRatios(tok), ...flopsPerByte(tok), hatParams: newHAT().numParams(), llamaParams: newLlama(tok.vocabSize).store.numParams() })}\n`);
  } else {
    process.stderr.write('usage: node dist/experiments/common.js hat|llama|hat-llama-shape|converted|flops\n');
    process.exit(2);
  }
}

/** Writes docs/results/<name>, keeping a hand-written analysis after `<!-- analysis -->` across reruns. */
export function writeResultKeepingAnalysis(name: string, md: string): string {
  const p = nodePath.join(RESULTS, name);
  let analysis = '';
  if (fs.existsSync(p)) {
    const old = fs.readFileSync(p, 'utf8');
    const k = old.indexOf('<!-- analysis -->');
    if (k >= 0) analysis = old.slice(k + '<!-- analysis -->'.length).trim();
  }
  const body = md.includes('<!-- analysis -->') ? md : `${md}\n## What the numbers say\n\n<!-- analysis -->\n`;
  return writeResult(name, `${body}${analysis !== '' ? `\n${analysis}\n` : ''}`);
}

export const fmt = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
export const pct = (x: number, d = 1): string => (Number.isFinite(x) ? `${(100 * x).toFixed(d)}%` : '-');
export function mdTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
