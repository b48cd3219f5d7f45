/**
 * The `hat` bench group: HAT training throughput (bytes/s of full AdamW steps) and cached
 * generation speed (bytes/s and words/s) for the `tiny` and `small` presets, beside the same
 * model in PyTorch (bench/peers/hat_torch.py, Debian's python3-torch, CPU) run in the same call
 * with the same shapes, batch, word boundaries and thread count. The peer is skipped with a note
 * when /usr/bin/python3 cannot import torch (the bench installs nothing).
 *
 * Training: one packed batch of B rows x T bytes from a seeded synthetic English-like text (one
 * document, so every row is one segment), split by the HAT splitter; a step is zero-grad,
 * forward, loss, backward, global-norm clip, AdamW. Generation: the KV-cached decoding path
 * (HATDecodingState, as `generate` uses it) after a short prompt, forced along N bytes of the
 * synthetic text so that the word schedule is that of real text whatever the (random) weights:
 * every byte is one encoder + one decoder step, an argmax over the logits and the splitter's
 * word-end test; every finished word is the connector and one backbone step. The peer replays
 * exactly this byte and word schedule, so both do the same work.
 *
 * Training rows also give the process CPU time per step (best step) of both sides and their
 * ratio: on a machine shared with other jobs it moves less than wall time; with more than one
 * thread it sums the threads, so there it compares CPU cost, not speed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeBackend } from '../src/tensor/kernels/index.js';
import { AdamW, Rng, clipCoefficient, isNoDecayParam } from '../src/nn/index.js';
import { BytePacker } from '../src/io/index.js';
import { hatConfigToJSON, presetConfig } from '../src/models/hat/config.js';
import { HATModel } from '../src/models/hat/model.js';
import { HATDecodingState } from '../src/models/hat/generate.js';
import { argmax } from '../src/models/hat/sampling.js';
import { HatSplitter, splitBytes } from '../src/models/hat/splitter.js';
import { hatBatch } from '../src/models/hat/train.js';
import { syntheticWords } from './synthetic_text.js';

export interface BenchContext {
  quick: boolean;
  emit(r: { bench: string; case: string; value: number; unit: string; peer: string | null; ratio_vs_peer: number | null; [k: string]: string | number | null | undefined }): void;
  note(s: string): void;
  table(title: string, head: string[], rows: (string | number)[][]): void;
}

const peerScript = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'peers', 'hat_torch.py');
const PYTHON = '/usr/bin/python3';

function torchAvailable(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'python3 cannot import torch (install the peer with `apt-get install -y python3-torch`)';
}

function runPeer(job: Record<string, unknown> & { threads: number }): Record<string, unknown> {
  // torch.set_num_threads does not reach the OpenBLAS that Debian's torch calls for its matrix
  // products (its own pool, one thread per core): cap every pool at the same count
  const n = String(job.threads);
  const env = { ...process.env, OPENBLAS_NUM_THREADS: n, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n };
  const r = spawnSync(PYTHON, [peerScript], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 26, env });
  if (r.status !== 0) throw new Error(`PyTorch peer failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** The bench's synthetic English-like text: `bytes` (or a few more) bytes from seed `seed`. */
export function syntheticText(bytes: number, seed: number): Uint8Array {
  return syntheticWords(new Rng(seed), bytes);
}

const best = (xs: number[]): number => Math.min(...xs);

export function benchHat(ctx: BenchContext): void {
  const nb = nativeBackend();
  const maxThreads = 'kernels' in nb ? nb.extras.getThreads() : 1;
  // one thread, and all threads (quick mode: all threads only)
  const threadCounts = ctx.quick || maxThreads === 1 ? [maxThreads] : [1, maxThreads];
  const peerMissing = torchAvailable();
  if (peerMissing !== null) ctx.note(`hat: PyTorch peer skipped: ${peerMissing}`);
  const rowsTrain: (string | number)[][] = [];
  const rowsGen: (string | number)[][] = [];
  const shapes: Record<string, { B: number; T: number; steps: number; genBytes: number }> = {
    tiny: { B: 8, T: 512, steps: ctx.quick ? 2 : 4, genBytes: ctx.quick ? 96 : 256 },
    small: { B: 4, T: 512, steps: ctx.quick ? 1 : 3, genBytes: ctx.quick ? 48 : 128 },
  };
  for (const threads of threadCounts) {
    if ('kernels' in nb) nb.extras.setThreads(threads);
    for (const preset of ['tiny', 'small'] as const) {
      const sh = shapes[preset];
      const cfg = presetConfig(preset);
      const model = new HATModel(cfg, { seed: 1 });
      // ---- training step
      const text = syntheticText(sh.B * sh.T * 2, 3);
      const packer = new BytePacker([{ source: 'synthetic', bytes: text }], { seqBytes: sh.T, split: (b) => splitBytes(b, { maxWordSize: cfg.max_word_size }).map((w) => w.length), eos: null, shuffle: false });
      const packed = packer.next(sh.B);
      const batch = hatBatch(packed);
      const opt = new AdamW(model.store, { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1, noDecay: isNoDecayParam });
      const times: number[] = [];
      const cpuTimes: number[] = []; // process CPU seconds per step: less moved by other jobs than wall time
      for (let s = 0; s <= sh.steps; s++) {
        const t = performance.now();
        const c0 = process.cpuUsage();
        model.store.zeroGrad({ recycle: true });
        const { loss } = model.loss(batch);
        loss.backward(undefined, false, { freeActivations: true }); // as the trainer does for HAT
        opt.step(undefined, { gradScale: clipCoefficient(model.store, 1).coef }); // clipping inside the update, as the trainer does
        const cu = process.cpuUsage(c0);
        if (s > 0) {
          times.push((performance.now() - t) / 1e3); // step 0 warms up
          cpuTimes.push((cu.user + cu.system) / 1e6);
        }
      }
      const ours = (sh.B * sh.T) / best(times);
      let peer: number | null = null;
      let peerCpu: number | null = null;
      if (peerMissing === null) {
        const cu = batch.cuSeqlens.map((c) => Array.from(c));
        const r = runPeer({ mode: 'train', config: hatConfigToJSON(cfg), threads, B: sh.B, T: sh.T, bytes: Array.from(batch.bytes), cu, steps: sh.steps + 1 });
        peer = (sh.B * sh.T) / best((r.step_s as number[]).slice(1));
        if (Array.isArray(r.step_cpu_s)) peerCpu = best((r.step_cpu_s as number[]).slice(1));
        if (typeof r.blas_threads === 'number' && r.blas_threads !== threads) ctx.note(`hat: the PyTorch peer's OpenBLAS ran ${r.blas_threads} threads, not ${threads}`);
      }
      const words = batch.cuSeqlens.reduce((a, c) => a + c.length - 1, 0);
      ctx.emit({
        bench: 'hat',
        case: `train ${preset} B${sh.B} T${sh.T}, ${threads} thread${threads > 1 ? 's' : ''}`,
        value: ours,
        unit: 'bytes/s',
        peer: peer !== null ? 'pytorch' : null,
        ratio_vs_peer: peer !== null ? ours / peer : null,
        peer_value: peer,
        step_ms: best(times) * 1e3,
        step_cpu_ms: best(cpuTimes) * 1e3,
        peer_step_cpu_ms: peerCpu !== null ? peerCpu * 1e3 : null,
        params: model.numParams(),
        words,
        threads,
      });
      const cpuRatio = peerCpu !== null ? `${(peerCpu / best(cpuTimes)).toFixed(2)}x` : '-';
      rowsTrain.push([preset, threads, `${sh.B}x${sh.T}`, model.numParams(), best(times) * 1e3, ours, peer ?? NaN, peer !== null ? `${(ours / peer).toFixed(2)}x` : '-', best(cpuTimes) * 1e3, cpuRatio]);

      // ---- cached generation, forced along a natural text (the word schedule of real text)
      const splitter = new HatSplitter({ maxWordSize: cfg.max_word_size, specialTokens: cfg.special_token_dict });
      const pw = splitter.encode('The jury said');
      const cont = syntheticText(sh.genBytes, 7).subarray(0, sh.genBytes);
      const run = (): { sec: number; words: number } => {
        const t = performance.now();
        const state = new HATDecodingState(model);
        state.prefill(pw);
        let cur = pw[pw.length - 1];
        let words = 0;
        for (const b of cont) {
          argmax(state.logits()); // the sampling work of greedy decoding (the text decides the byte)
          const split = splitter.appendByte(cur, b);
          if (split.complete) {
            words += split.words.length - 1;
            cur = split.words[split.words.length - 1];
          } else cur = split.words[0];
          state.push(b, split);
        }
        return { sec: (performance.now() - t) / 1e3, words };
      };
      run(); // warm-up
      const gt: number[] = [];
      let nWords = 0;
      for (let r = 0; r < (ctx.quick ? 1 : 2); r++) {
        const g = run();
        gt.push(g.sec);
        nWords = g.words;
      }
      const nBytes = cont.length;
      const gOurs = nBytes / best(gt);
      let gPeer: number | null = null;
      if (peerMissing === null) {
        const last = pw[pw.length - 1];
        const full = new Uint8Array(last.length + cont.length);
        full.set(last);
        full.set(cont, last.length);
        const words = splitBytes(full, { maxWordSize: cfg.max_word_size }).map((w) => Array.from(w));
        const r = runPeer({ mode: 'generate', config: hatConfigToJSON(cfg), threads, prompt_words: pw.slice(0, -1).map((w) => Array.from(w)), words, reps: ctx.quick ? 1 : 2 });
        gPeer = (r.bytes as number) / best(r.gen_s as number[]);
      }
      ctx.emit({
        bench: 'hat',
        case: `generate ${preset} cached greedy, ${threads} thread${threads > 1 ? 's' : ''}`,
        value: gOurs,
        unit: 'bytes/s',
        peer: gPeer !== null ? 'pytorch' : null,
        ratio_vs_peer: gPeer !== null ? gOurs / gPeer : null,
        peer_value: gPeer,
        words_per_s: nWords / best(gt),
        bytes: nBytes,
        words: nWords,
        threads,
      });
      rowsGen.push([preset, threads, nBytes, nWords, gOurs, nWords / best(gt), gPeer ?? NaN, gPeer !== null ? `${(gOurs / gPeer).toFixed(2)}x` : '-']);
    }
  }
  if ('kernels' in nb) nb.extras.setThreads(maxThreads);
  ctx.table('HAT training step (AdamW, full forward/backward); PyTorch with the same threads', ['preset', 'threads', 'batch', 'params', 'step ms', 'tfree bytes/s', 'PyTorch bytes/s', 'tfree/PyTorch', 'step CPU ms', 'tfree/PyTorch (CPU s)'], rowsTrain);
  ctx.table('HAT cached generation (greedy decoding work along a fixed text)', ['preset', 'threads', 'bytes', 'words', 'tfree bytes/s', 'tfree words/s', 'PyTorch bytes/s', 'tfree/PyTorch'], rowsGen);
}
