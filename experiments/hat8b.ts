/**
 * HAT at release size on this machine (issue 14 items 2 and 3): load time, peak RSS and
 * generation speed of a `tfree synth-model --like hat-8b` checkpoint, per weight mode.
 *
 * Modes (one measurement per process, so peak RSS is that of one load):
 *   read:  read every tensor of the checkpoint with the same positioned reads the loader uses,
 *          into a buffer per tensor that is dropped (the "time to read the files")
 *   load:  loadHATLazy with --weights bf16 | int8 | int4 | kmeans4 | bin1 (quantized on load),
 *          then, per thread count: prompt prefill (all prompt words batched through the GEMM
 *          path) and teacher-forced generation over English text (one encoder and decoder
 *          step per byte, one backbone step per finished word, logits every byte - the work of
 *          generation; random weights would emit random bytes whose word lengths are not those
 *          of text)
 * --cold drops the page cache first (needs root: `echo 1 > /proc/sys/vm/drop_caches`).
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/hat8b.js --model DIR --mode read|load
 *      [--weights int8] [--threads 1,2] [--prompt-bytes 200] [--gen-bytes 64] [--cold]
 * Prints one JSON line (wall seconds, and CPU seconds of the process: the machine is shared).
 */
import { execSync } from 'node:child_process';
import * as fs from 'node:fs';
import { kernels } from '../src/tensor/index.js';
import { loadNative } from '../src/tensor/kernels/native.js';
import { openCheckpoint } from '../src/io/index.js';
import { loadHATLazy, parseFormat } from '../src/compress/index.js';
import { HATDecodingState } from '../src/models/hat/generate.js';
import { HatSplitter } from '../src/models/hat/splitter.js';
import { HAT8B_TEXT as TEXT } from './hat8b_text.js';
import { arg, intArg, usageError } from './argv.js';

const MODEL = arg('model', '');
const MODE = arg('mode', 'load');
const WEIGHTS = arg('weights', 'int8');
const THREADS = arg('threads', '1,2').split(',').map(Number);
const PROMPT_BYTES = intArg('prompt-bytes', 200);
const GEN_BYTES = intArg('gen-bytes', 64);
const COLD = process.argv.includes('--cold');

function gib(b: number): number {
  return Math.round((b / 2 ** 30) * 1000) / 1000;
}

function dropCaches(): void {
  execSync('sync; echo 1 > /proc/sys/vm/drop_caches', { stdio: 'ignore', shell: '/bin/sh' });
}

function diskBytes(dir: string): number {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .reduce((s, f) => s + fs.statSync(`${dir}/${f}`).size, 0);
}

function main(): void {
  if (MODEL === '') usageError('give --model DIR (a HAT checkpoint folder)');
  if (COLD) dropCaches();
  const rss0 = process.memoryUsage().rss;
  const out: Record<string, unknown> = { model: MODEL, mode: MODE, cold: COLD, disk_gib: gib(diskBytes(MODEL)), kernels: kernels().name };
  if (MODE === 'read') {
    const t0 = performance.now();
    const ck = openCheckpoint(MODEL);
    let bytes = 0;
    for (const n of ck.names()) bytes += ck.read(n).data.byteLength;
    ck.close();
    const s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage();
    Object.assign(out, { read_cpu_s: (cpu.user + cpu.system) / 1e6, read_s: s, read_gib_s: gib(bytes) / s, bytes, peak_rss_gib: gib(process.resourceUsage().maxRSS * 1024) });
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const { model, stats } = loadHATLazy(MODEL, WEIGHTS === 'bf16' ? {} : { quantize: parseFormat(WEIGHTS) });
  const loadS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const loadCpuS = (cpu.user + cpu.system) / 1e6;
  const peakLoad = process.resourceUsage().maxRSS * 1024;
  Object.assign(out, {
    weights: WEIGHTS,
    load_s: loadS,
    load_cpu_s: loadCpuS,
    model_gib: gib(stats.modelBytes),
    layers: stats.layers,
    rss_before_gib: gib(rss0),
    peak_rss_after_load_gib: gib(peakLoad),
    rss_target_gib: gib(1.15 * stats.modelBytes + 2 ** 30),
  });
  const splitter = new HatSplitter({ maxWordSize: model.config.max_word_size, specialTokens: model.config.special_token_dict });
  const all = splitter.encode(TEXT.repeat(4));
  const words: Uint8Array[] = [];
  let nb = 0;
  for (const w of all) {
    if (nb >= PROMPT_BYTES) break;
    words.push(w);
    nb += w.length;
  }
  const rest: number[] = [];
  for (const w of all.slice(words.length)) for (const b of w) if (rest.length < GEN_BYTES) rest.push(b);
  const runs: Record<string, unknown>[] = [];
  for (const th of THREADS) {
    const nat = loadNative();
    if ('kernels' in nat) nat.extras.setThreads(th);
    else if (th !== 1) throw new Error(`threads ${th} needs the native addon: ${nat.error}`);
    const st = new HATDecodingState(model);
    const p0 = performance.now();
    const pc0 = process.cpuUsage();
    st.prefill(words);
    const prefillS = (performance.now() - p0) / 1000;
    const pc = process.cpuUsage(pc0);
    let cur = words[words.length - 1];
    let finished = 0;
    const g0 = performance.now();
    const gc0 = process.cpuUsage();
    for (const b of rest) {
      st.logits();
      const split = splitter.appendByte(cur, b);
      if (split.complete) finished += split.words.length - 1;
      cur = split.words[split.words.length - 1];
      st.push(b, split);
    }
    const genS = (performance.now() - g0) / 1000;
    const gc = process.cpuUsage(gc0);
    const lg = st.logits();
    if (!lg.every(Number.isFinite)) throw new Error('non-finite logits');
    runs.push({
      threads: th,
      prompt_bytes: nb,
      prompt_words: words.length,
      prefill_s: prefillS,
      prefill_cpu_s: (pc.user + pc.system) / 1e6,
      prompt_bytes_s: nb / prefillS,
      gen_bytes: rest.length,
      gen_words: finished,
      gen_s: genS,
      gen_cpu_s: (gc.user + gc.system) / 1e6,
      gen_bytes_s: rest.length / genS,
      gen_words_s: finished / genS,
    });
  }
  Object.assign(out, { runs, peak_rss_gib: gib(process.resourceUsage().maxRSS * 1024) });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main();
