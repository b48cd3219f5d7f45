/**
 * `tfree demo` / `npm start`: a short tour of the engine: which kernels run, how fast a matrix
 * product is, and a 2-layer Llama-style model learning a copy task from scratch, saved to
 * safetensors and loaded back. (The HAT issue replaces this with the byte-level model.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argmax, backendName, crossEntropy, jsKernels, kernels, nativeBackend, noGrad } from '../../tensor/index.js';
import { AdamW, ParamStore, Rng, VarBuilder, clipGradNorm, cosineLr, init, isNoDecayParam } from '../../nn/index.js';
import { openCheckpoint, writeSafetensors } from '../../io/index.js';
import { LlamaLM, type LlamaLMConfig } from '../../models/llama/model.js';
import { Progress } from '../progress.js';

const out = (s: string): void => void process.stdout.write(`${s}\n`);

function gemmGflops(k: typeof jsKernels, n: number): number {
  const a = new Float32Array(n * n).map((_, i) => Math.sin(i));
  const b = new Float32Array(n * n).map((_, i) => Math.cos(i));
  const c = new Float32Array(n * n);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    k.gemm(1, false, false, n, n, n, 1, a, 0, n, 0, b, 0, n, 0, 0, c, 0, n, 0);
    best = Math.min(best, performance.now() - t);
  }
  return (2 * n ** 3) / (best / 1e3) / 1e9;
}

export function runEngineDemo(opts: { steps: number; seed: number }): void {
  const nb = nativeBackend();
  out(`tfree engine demo (Node ${process.version})`);
  out(`kernels: ${backendName()}${'kernels' in nb ? ` (native ${nb.extras.simd()} path, ${nb.extras.getThreads()} threads)` : ` (native unavailable: ${nb.error})`}`);
  const g = gemmGflops(kernels(), 512);
  const gj = gemmGflops(jsKernels, 256);
  out(`512x512 matrix product: ${g.toFixed(1)} GFLOP/s on ${backendName()}; the pure-TS twin does ${gj.toFixed(2)} GFLOP/s (256x256)`);

  // a 2-layer Llama-style model learns to repeat a random 8-token sequence
  const cfg: LlamaLMConfig = { vocabSize: 32, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2 };
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { rng: opts.seed, defaultInit: init.normal(0.02) }), cfg);
  out(`\nmodel: Llama-style, ${cfg.numLayers} layers, dim ${cfg.hiddenSize}, GQA ${cfg.numHeads}/${cfg.numKvHeads} heads, ${store.numParams().toLocaleString('en-US')} parameters`);
  out('task: see 8 random tokens, then repeat them (loss on the repeat)');
  const rng = new Rng(opts.seed + 1);
  const B = 16;
  const half = 8;
  const T = 2 * half;
  const batch = (): { ids: Int32Array; targets: Int32Array } => {
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-100);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < half; t++) ids[b * T + t] = ids[b * T + half + t] = rng.int(cfg.vocabSize);
      for (let t = half - 1; t < T - 1; t++) targets[b * T + t] = ids[b * T + t + 1];
    }
    return { ids, targets };
  };
  const sched = { lr: 1e-2, warmupSteps: Math.min(20, opts.steps), totalSteps: opts.steps, minLrRatio: 0.1 }; // fewer steps than the warmup: all warmup
  const opt = new AdamW(store, { lr: sched.lr, betas: [0.9, 0.98], weightDecay: 0.01, noDecay: isNoDecayParam });
  const bar = new Progress({ total: opts.steps, label: 'train' });
  const t0 = performance.now();
  let first = NaN;
  let last = NaN;
  for (let s = 0; s < opts.steps; s++) {
    const { ids, targets } = batch();
    store.zeroGrad();
    const loss = crossEntropy(model.forward(ids, B, T), targets);
    loss.backward();
    clipGradNorm(store, 1.0);
    opt.step(cosineLr(s, sched));
    last = loss.item();
    if (s === 0) first = last;
    bar.update(s + 1, `loss ${last.toFixed(3)}`);
  }
  const sec = (performance.now() - t0) / 1e3;
  out(`loss ${first.toFixed(3)} -> ${last.toFixed(3)} in ${opts.steps} steps (${sec.toFixed(1)} s, ${((opts.steps * B * T) / sec).toFixed(0)} tokens/s)`);

  // accuracy on fresh sequences, then a safetensors round trip that must give identical logits
  const { ids, targets } = batch();
  const logits = noGrad(() => model.forward(ids, B, T));
  const pred = argmax(logits, -1).i32();
  let ok = 0;
  let n = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] < 0) continue;
    n++;
    if (pred[i] === targets[i]) ok++;
  }
  out(`copy accuracy on new sequences: ${((100 * ok) / n).toFixed(1)}% (chance ${(100 / cfg.vocabSize).toFixed(1)}%)`);
  const dir = mkdtempSync(join(tmpdir(), 'tfree-demo-'));
  try {
    const file = join(dir, 'model.safetensors');
    writeSafetensors(file, store.toRecord(), { format: 'pt' });
    const ck = openCheckpoint(file);
    const store2 = new ParamStore();
    const model2 = new LlamaLM(new VarBuilder(store2, { rng: 999 }), cfg);
    store2.loadFrom((name) => (ck.has(name) ? ck.readAs(name, 'f32').data as Float32Array : undefined));
    ck.close();
    const logits2 = noGrad(() => model2.forward(ids, B, T));
    const a = logits.f32();
    const b2 = logits2.f32();
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b2[i]));
    out(`saved ${ck.names().length} tensors to safetensors and loaded them into a fresh model: max |logit difference| = ${maxDiff}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
