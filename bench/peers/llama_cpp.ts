/**
 * Benchmark and test peer (not part of tfree): llama.cpp through the npm package node-llama-cpp,
 * installed on demand outside the project's dependencies by scripts/install-llama-cpp.sh into
 * .llama-cpp/ (or the folder named by TFREE_LLAMA_CPP_DIR). Loaded with its prebuilt CPU binary
 * only: gpu false, build "never", skipDownload, so nothing is compiled or downloaded at run time.
 *
 * Only the few calls used here are typed (minimal structural interfaces, checked at run time by
 * use): getLlama, loadModel, createContext, getSequence, controlledEvaluate, evaluate.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { pathToFileURL } from 'node:url';

interface NlcSequence {
  controlledEvaluate(input: [number, { generateNext: { logits: boolean } }][]): Promise<({ next: { logits?: Map<number, number> } } | undefined)[]>;
  evaluate(tokens: number[], opts: { temperature: number }): AsyncGenerator<number, void>;
}
interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(o: Record<string, unknown>): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcLlama {
  loadModel(o: { modelPath: string; gpuLayers: number; useMmap?: boolean }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<NlcLlama>;
}

/** The folder expected to hold node_modules/node-llama-cpp. */
export function llamaCppDir(): string {
  const env = process.env.TFREE_LLAMA_CPP_DIR;
  if (env !== undefined && env !== '') return nodePath.resolve(env);
  return nodePath.resolve(new URL('../../..', import.meta.url).pathname, '.llama-cpp');
}

/** Why the peer is unavailable (a message for a skip), or null when it can be loaded. */
export function llamaCppMissing(): string | null {
  const pkg = nodePath.join(llamaCppDir(), 'node_modules', 'node-llama-cpp', 'package.json');
  if (!fs.existsSync(pkg)) return `node-llama-cpp not installed in ${llamaCppDir()} (run: sh scripts/install-llama-cpp.sh, or set TFREE_LLAMA_CPP_DIR)`;
  return null;
}

/** node-llama-cpp's version string, from its package.json. */
export function llamaCppVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(nodePath.join(llamaCppDir(), 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** A loaded llama.cpp (CPU, prebuilt binary). */
export async function openLlamaCpp(maxThreads?: number): Promise<NlcLlama> {
  const missing = llamaCppMissing();
  if (missing !== null) throw new Error(missing);
  const pkgDir = nodePath.join(llamaCppDir(), 'node_modules', 'node-llama-cpp');
  const pkg = JSON.parse(fs.readFileSync(nodePath.join(pkgDir, 'package.json'), 'utf8')) as { exports?: { '.'?: { import?: { default?: string } | string } }; main?: string };
  const e = pkg.exports?.['.']?.import;
  const entry = (typeof e === 'string' ? e : e?.default) ?? pkg.main ?? 'dist/index.js';
  const mod = (await import(pathToFileURL(nodePath.join(pkgDir, entry)).href)) as NlcModule;
  return mod.getLlama({ gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: 'error', ...(maxThreads !== undefined ? { maxThreads } : {}) });
}

export interface ContextOptions {
  threads: number;
  contextSize: number;
  batchSize?: number;
  /** keep the KV cache in F32 (default F16 in llama.cpp) */
  f32Kv?: boolean;
  /** memory-map the file (llama.cpp's default, true); false reads it into memory */
  mmap?: boolean;
}

function contextOpts(o: ContextOptions): Record<string, unknown> {
  const r: Record<string, unknown> = { contextSize: o.contextSize, batchSize: o.batchSize ?? Math.min(o.contextSize, 512), threads: o.threads, flashAttention: false };
  if (o.f32Kv === true) Object.assign(r, { experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  return r;
}

/** llama.cpp's raw logits after each token of `ids` (one causal pass), as [T][vocab]. */
export async function llamaCppLogits(llama: NlcLlama, gguf: string, ids: readonly number[], vocab: number, o: ContextOptions): Promise<Float32Array[]> {
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  try {
    const ctx = await model.createContext(contextOpts(o));
    try {
      const res = await ctx.getSequence().controlledEvaluate(ids.map((t) => [t, { generateNext: { logits: true } }]));
      return ids.map((_, t) => {
        const m = res[t]?.next.logits;
        if (m === undefined) throw new Error(`llama.cpp returned no logits for position ${t}`);
        const out = new Float32Array(vocab).fill(NaN);
        for (const [id, v] of m) out[id] = v;
        return out;
      });
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

export interface GenerationTiming {
  load_s: number;
  prompt_tokens: number;
  prompt_s: number;
  generated_tokens: number;
  gen_s: number;
  /** CPU seconds of this process (llama.cpp's threads included) during prompt processing / generation */
  prompt_cpu_s: number;
  gen_cpu_s: number;
  tokens: number[];
}

/**
 * Loads a GGUF, evaluates `prompt` and greedily generates `maxNew` tokens (no stop tokens);
 * load time, time to the first generated token (prompt processing) and the time of the rest.
 */
export async function llamaCppGenerate(llama: NlcLlama, gguf: string, prompt: readonly number[], maxNew: number, o: ContextOptions): Promise<GenerationTiming> {
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: o.mmap ?? true });
  try {
    const ctx = await model.createContext(contextOpts(o));
    const load_s = (performance.now() - t0) / 1000;
    try {
      const seq = ctx.getSequence();
      const tokens: number[] = [];
      const cpu = (): number => {
        const c = process.cpuUsage();
        return (c.user + c.system) / 1e6;
      };
      const t1 = performance.now();
      const c1 = cpu();
      let tFirst = 0;
      let cFirst = 0;
      for await (const tok of seq.evaluate([...prompt], { temperature: 0 })) {
        if (tokens.length === 0) {
          tFirst = performance.now();
          cFirst = cpu();
        }
        tokens.push(tok);
        if (tokens.length >= maxNew) break;
      }
      const t2 = performance.now();
      const c2 = cpu();
      return { load_s, prompt_tokens: prompt.length, prompt_s: (tFirst - t1) / 1000, generated_tokens: tokens.length - 1, gen_s: (t2 - tFirst) / 1000, prompt_cpu_s: cFirst - c1, gen_cpu_s: c2 - cFirst, tokens };
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}
