/**
 * Compression report (`node dist/bench/compress_report.js [--steps N] [--qat-steps N]`):
 *  1. round-trip MSE per format on random Gaussian weights and on the weights of a small
 *     byte-level Llama-style LM trained here on the repository's own text (docs, sources);
 *  2. that model's validation bits per byte per format after post-training quantization (PTQ)
 *     and after a short QAT run (the study's recipe: centroids fitted once, then fixed), with
 *     a greedy sample from the packed model;
 *  3. the effective bits per weight table.
 * Writes bench/results/compress_report.json. Every figure is measured in this run.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { argmax, crossEntropy, noGrad } from '../src/tensor/index.js';
import { AdamW, ParamStore, Rng, VarBuilder, clipGradNorm, cosineLr, init } from '../src/nn/index.js';
import { LlamaLM, type LlamaLMConfig } from '../src/models/llama/model.js';
import { FORMAT_NAMES, dequantize, enableQat, findLinears, formatSize, parseFormat, quantizeMatrix, quantizeModel } from '../src/compress/index.js';
import { nameFilter } from '../src/compress/modules.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const steps = opt('steps', 400);
const qatSteps = opt('qat-steps', 60);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = (s: string): void => void process.stdout.write(`${s}\n`);

function corpus(): Uint8Array {
  const parts: Buffer[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, n.name);
      if (n.isDirectory()) walk(p);
      else if (/\.(md|ts)$/.test(n.name)) parts.push(readFileSync(p));
    }
  };
  walk(join(root, 'docs'));
  walk(join(root, 'src'));
  return Uint8Array.from(Buffer.concat(parts));
}

const mse = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length;

function main(): void {
  const text = corpus();
  const split = Math.floor(text.length * 0.9);
  const train = text.subarray(0, split);
  const valid = text.subarray(split);
  out(`corpus: ${text.length} bytes of the repository's docs and sources (90% train / 10% validation)`);
  const cfg: LlamaLMConfig = { vocabSize: 256, hiddenSize: 128, intermediateSize: 384, numLayers: 2, numHeads: 4, numKvHeads: 2 };
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { rng: 1, defaultInit: init.normal(0.02) }), cfg);
  const rng = new Rng(2);
  const B = 16;
  const T = 64;
  const batch = (): { ids: Int32Array; tg: Int32Array } => {
    const ids = new Int32Array(B * T);
    const tg = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const s = rng.int(train.length - T - 1);
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = train[s + t];
        tg[b * T + t] = train[s + t + 1];
      }
    }
    return { ids, tg };
  };
  const validBpb = (m: LlamaLM = model): number => {
    let nll = 0;
    let n = 0;
    noGrad(() => {
      for (let s = 0; s + T + 1 <= Math.min(valid.length, 64 * T); s += T) {
        const ids = Int32Array.from(valid.subarray(s, s + T));
        const tg = Int32Array.from(valid.subarray(s + 1, s + T + 1));
        nll += crossEntropy(m.forward(ids, 1, T), tg).item() * T;
        n += T;
      }
    });
    return nll / n / Math.LN2;
  };
  const trainSteps = (nSteps: number, lr: number, after?: () => void): void => {
    const o = new AdamW(store, { lr, weightDecay: 0.01 });
    const sched = { lr, warmupSteps: Math.min(20, nSteps / 5), totalSteps: nSteps, minLrRatio: 0.1 };
    for (let s = 0; s < nSteps; s++) {
      const { ids, tg } = batch();
      store.zeroGrad();
      crossEntropy(model.forward(ids, B, T), tg).backward();
      clipGradNorm(store, 1);
      o.step(cosineLr(s, sched));
      after?.();
    }
  };
  const t0 = performance.now();
  trainSteps(steps, 3e-3);
  const f32Bpb = validBpb();
  out(`trained ${steps} steps (B ${B}, T ${T}) in ${((performance.now() - t0) / 1e3).toFixed(0)} s: validation ${f32Bpb.toFixed(3)} bits/byte (f32)`);
  const trained = new Map(store.entries().map(([n, t]) => [n, t.f32().slice()]));
  const keep = nameFilter();
  const linears = findLinears(model).filter((s) => keep(s.weightName));

  // 1. round-trip MSE, random vs trained weights (mean over the quantized matrices, relative to the weights' mean square)
  const gauss = new Rng(3).fillNormal(new Float32Array(256 * 512), 0, 0.02);
  const rows: Record<string, unknown>[] = [];
  out('\nround-trip MSE (relative = MSE / mean(w^2)):');
  out('| format | bits/w (4096x4096) | random N(0, 0.02^2) MSE | relative | trained LM MSE (mean over 14 matrices) | relative |');
  out('|---|---:|---:|---:|---:|---:|');
  for (const name of FORMAT_NAMES) {
    const f = parseFormat(name);
    const rm = mse(gauss, dequantize(quantizeMatrix(gauss, 256, 512, f, { name: 'gauss' })));
    const rms = gauss.reduce((s, v) => s + v * v, 0) / gauss.length;
    let tm = 0;
    let trel = 0;
    for (const s of linears) {
      const w = s.linear.weight;
      const e = mse(w.f32(), dequantize(quantizeMatrix(w.f32(), w.shape[0], w.shape[1], f, { name: s.weightName })));
      tm += e / linears.length;
      trel += e / (w.f32().reduce((a, v) => a + v * v, 0) / w.size) / linears.length;
    }
    const bpw = formatSize(f, 4096, 4096).bitsPerWeight;
    rows.push({ format: name, bits_per_weight: bpw, random_mse: rm, random_rel: rm / rms, trained_mse: tm, trained_rel: trel });
    out(`| ${name} | ${bpw.toFixed(4)} | ${rm.toExponential(3)} | ${(rm / rms).toExponential(2)} | ${tm.toExponential(3)} | ${trel.toExponential(2)} |`);
  }

  // 2. validation bpb per format: PTQ, then QAT from the trained weights
  out(`\nvalidation bits/byte (f32: ${f32Bpb.toFixed(3)}); QAT: ${qatSteps} steps from the trained f32 weights, centroids fixed:`);
  out('| format | PTQ bpb | QAT bpb | packed sample (greedy, prompt "export function ") |');
  out('|---|---:|---:|---|');
  const restore = (): void => {
    for (const [n, d] of trained) (store.get(n).data as Float32Array).set(d);
  };
  const bpbRows: Record<string, unknown>[] = [];
  // the fair baseline for QAT: f32 training continued for the same steps
  restore();
  trainSteps(qatSteps, 1e-3);
  const f32Cont = validBpb();
  out(`| f32 (continued ${qatSteps} steps, no quantization) | ${f32Bpb.toFixed(3)} | ${f32Cont.toFixed(3)} | - |`);
  bpbRows.push({ format: 'f32', ptq_bpb: f32Bpb, qat_bpb: f32Cont });
  for (const name of ['int8', 'int4', 'kmeans4', 'int2', 'kmeans2', 'ternary', 'bin1', 'kmeans1']) {
    const f = parseFormat(name);
    restore();
    const fresh = (): LlamaLM => {
      return new LlamaLM(new VarBuilder(new ParamStore(), { rng: 1, defaultInit: init.normal(0.02), source: (n) => store.get(n) }), cfg);
    };
    // PTQ: packed copy of the trained model
    const ptqModel = fresh();
    quantizeModel(ptqModel, f);
    const ptq = validBpb(ptqModel);
    // QAT on the shared model, then pack a copy with QAT's codebooks
    const q = enableQat(model, f);
    trainSteps(qatSteps, 1e-3, () => q.step());
    const books = q.codebooks();
    q.remove();
    const qatModel = fresh();
    quantizeModel(qatModel, f, { codebooks: books });
    const qat = validBpb(qatModel);
    // greedy sample from the packed QAT model
    const prompt = Array.from(new TextEncoder().encode('export function '));
    noGrad(() => {
      for (let i = 0; i < 40; i++) {
        const ids = Int32Array.from(prompt.slice(-T));
        const logits = qatModel.forward(ids, 1, ids.length);
        const a = argmax(logits, -1).i32();
        prompt.push(a[ids.length - 1]);
      }
    });
    const sample = new TextDecoder().decode(Uint8Array.from(prompt)).replace(/\n/g, '\\n').replace(/\|/g, '\\|');
    bpbRows.push({ format: name, ptq_bpb: ptq, qat_bpb: qat, sample });
    out(`| ${name} | ${ptq.toFixed(3)} | ${qat.toFixed(3)} | \`${sample}\` |`);
  }
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'compress_report.json'), `${JSON.stringify({ date: new Date().toISOString(), steps, qatSteps, f32_bpb: f32Bpb, mse: rows, bpb: bpbRows }, null, 1)}\n`);
}

main();
