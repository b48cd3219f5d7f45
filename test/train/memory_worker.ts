/**
 * Child process for memory.test.ts: trains a tiny Llama-style LM for N steps and prints one JSON
 * line per checkpoint with RSS and heap after a forced GC (run with --expose-gc).
 * argv: backend steps every
 */
import { crossEntropy, setBackend } from '../../src/tensor/index.js';
import { AdamW, ParamStore, Rng, VarBuilder, clipGradNorm, cosineLr, init, isNoDecayParam } from '../../src/nn/index.js';
import { LlamaLM } from '../../src/models/llama/model.js';

const [backend, stepsArg, everyArg] = process.argv.slice(2);
setBackend(backend === 'native' ? 'native' : 'js');
const steps = Number(stepsArg);
const every = Number(everyArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const store = new ParamStore();
const cfg = { vocabSize: 16, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2 };
const model = new LlamaLM(new VarBuilder(store, { rng: 5, defaultInit: init.normal(0.02) }), cfg);
const opt = new AdamW(store, { lr: 3e-3, noDecay: isNoDecayParam });
const rng = new Rng(6);
const B = 4;
const T = 16;
let first = NaN;
let loss = NaN;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));
for (let s = 1; s <= steps; s++) {
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T / 2; t++) ids[b * T + t] = ids[b * T + T / 2 + t] = rng.int(cfg.vocabSize);
    for (let t = T / 2 - 1; t < T - 1; t++) targets[b * T + t] = ids[b * T + t + 1];
  }
  store.zeroGrad();
  const l = crossEntropy(model.forward(ids, B, T), targets);
  l.backward();
  clipGradNorm(store, 1.0);
  opt.step(cosineLr(s - 1, { lr: 3e-3, warmupSteps: 10, totalSteps: steps, minLrRatio: 0.1 }));
  loss = l.item();
  if (s === 1) first = loss;
  if (s % every === 0) {
    // ArrayBuffer backing stores are swept after the GC: collect twice around a short pause
    gc();
    await settle();
    gc();
    await settle();
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ step: s, rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external + m.arrayBuffers, loss, first })}\n`);
  }
}
