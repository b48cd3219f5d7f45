/**
 * The static build's model server: a Web Worker that loads the bundled HAT model
 * (models/default, copied into the build as model/), makes a kmeans4 copy of it in memory with
 * src/compress, and answers the page's requests (./protocol.ts) with src/serve/ops.ts, on the
 * pure-TypeScript kernels. Requests run one at a time; generation yields between a few bytes so
 * that a cancel can arrive.
 */
import './shims/globals.js';
import { setBackend, backendName } from '../../src/tensor/index.js';
import { Checkpoint, openSafetensorsBuffer, type SafetensorsFile } from '../../src/io/safetensors.js';
import { HatSplitter, modelFromCheckpoint, parseHATConfig, type HATModel } from '../../src/models/hat/index.js';
import { parseFormat } from '../../src/compress/format.js';
import { quantizeModel } from '../../src/compress/checkpoint.js';
import { Generation, compareSteps, score, split } from '../../src/serve/ops.js';
import type { Reply, Request, WorkerInfo } from './protocol.js';

const QUANT_FORMAT = 'kmeans4';
const QUANT_BLOCK = 32;
/** k-means fit on at most this many weights per tensor (the CLI default is 2^20; 4096 fits 16 centroids well and takes ~1 s) */
const QUANT_SAMPLES = 4096;

/**
 * The limits of `tfree serve`'s defaults (DEFAULT_LIMITS of src/serve/openai.ts, --max-prompt-bytes
 * and --max-tokens-limit), so that the static page refuses what the served one refuses instead of
 * running a 100 kB prompt or a million bytes on the pure-TS kernels (a running request cannot be
 * stopped while it feeds its prompt).
 */
const MAX_PROMPT_BYTES = 8192;
const MAX_TOKENS_LIMIT = 2048;

function checkText(name: string, text: string): void {
  const n = new TextEncoder().encode(text).length;
  if (n > MAX_PROMPT_BYTES) throw new Error(`the ${name} is ${n} bytes, over the limit of ${MAX_PROMPT_BYTES} (as tfree serve's --max-prompt-bytes)`);
}

function checkRange(name: string, v: number, lo: number, hi: number, loOpen = false): void {
  if (!Number.isFinite(v) || (loOpen ? v <= lo : v < lo) || v > hi) throw new Error(`${name} must be in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${v}`);
}

interface Loaded {
  base: HATModel;
  quantized: HATModel;
  splitter: HatSplitter;
}

let loaded: Loaded | null = null;
const cancelled = new Set<number>();
const queue: Request[] = [];
let busy = false;

function post(m: Reply): void {
  self.postMessage(m);
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function fetchBytes(url: URL): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url.pathname}: ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

function buildModel(file: SafetensorsFile, configJson: unknown): HATModel {
  const ck = new Checkpoint(file.path, undefined, [file], new Map(file.names().map((n) => [n, file])), undefined);
  return modelFromCheckpoint(ck, parseHATConfig(configJson, 'model/config.json'));
}

async function init(baseUrl: string): Promise<WorkerInfo> {
  const t0 = performance.now();
  setBackend('js');
  post({ type: 'status', text: 'loading the bundled model…' });
  const dir = new URL('model/', baseUrl);
  const [configText, weights] = await Promise.all([fetch(new URL('config.json', dir)).then((r) => r.text()), fetchBytes(new URL('model.safetensors', dir))]);
  const configJson = JSON.parse(configText) as unknown;
  const file = openSafetensorsBuffer(weights, 'model/model.safetensors');
  const base = buildModel(file, configJson);
  post({ type: 'status', text: `quantizing a copy to ${QUANT_FORMAT} (block ${QUANT_BLOCK})…` });
  await turn();
  const quantized = buildModel(file, configJson);
  const packed = quantizeModel(quantized, parseFormat(QUANT_FORMAT, { blockSize: QUANT_BLOCK }), { maxSamples: QUANT_SAMPLES });
  const splitter = new HatSplitter({ maxWordSize: base.config.max_word_size, specialTokens: base.config.special_token_dict });
  loaded = { base, quantized, splitter };
  return {
    backend: backendName(),
    models: ['base', 'quantized'],
    quantizedLabel: `${QUANT_FORMAT}, block ${QUANT_BLOCK}, ${packed.size} matrices, made in the browser`,
    loadSeconds: (performance.now() - t0) / 1000,
  };
}

function need(): Loaded {
  if (loaded === null) throw new Error('the model is not loaded yet');
  return loaded;
}

function modelOf(name: string): HATModel {
  const l = need();
  if (name === 'base') return l.base;
  if (name === 'quantized') return l.quantized;
  throw new Error(`unknown model ${JSON.stringify(name)} (base or quantized)`);
}

async function run(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'init':
      return init(req.baseUrl);
    case 'split':
      checkText('text', req.text);
      return split(need().splitter, req.text);
    case 'score':
      checkText('text', req.text);
      return score(modelOf(req.model), need().splitter, req.text);
    case 'generate': {
      const p = req.params;
      checkText('prompt', p.prompt);
      checkRange('max bytes', p.maxTokens, 1, MAX_TOKENS_LIMIT);
      checkRange('temperature', p.temperature, 0, 2);
      checkRange('top p', p.topP, 0, 1, true);
      const g = new Generation(modelOf(p.model), need().splitter, p.prompt, {
        maxBytes: p.maxTokens,
        temperature: p.temperature,
        topP: p.topP,
        seed: p.seed,
        greedy: p.temperature === 0,
      });
      let text = '';
      while (!g.done) {
        if (cancelled.delete(req.id)) return { text, finishReason: 'aborted' };
        const piece = g.step(4);
        if (piece !== '') {
          text += piece;
          post({ type: 'text', id: req.id, text: piece });
        }
        await turn();
      }
      const reason = g.result?.stopReason;
      return { text, finishReason: reason === 'max_bytes' ? 'length' : 'stop' };
    }
    case 'compare': {
      const l = need();
      checkText('prompt', req.prompt);
      checkRange('bytes to compare', req.maxTokens, 1, MAX_TOKENS_LIMIT);
      const it = compareSteps(l.base, l.quantized, l.splitter, req.prompt, req.maxTokens);
      for (let n = 0; ; n++) {
        const r = it.next();
        if (r.done === true) return r.value;
        if (n % 16 === 15) await turn();
      }
    }
    case 'cancel':
      return null;
  }
}

async function drain(): Promise<void> {
  if (busy) return;
  busy = true;
  while (queue.length > 0) {
    const req = queue.shift() as Request;
    try {
      post({ type: 'result', id: req.id, value: await run(req) });
    } catch (e) {
      post({ type: 'error', id: req.id, message: e instanceof Error ? e.message : String(e) });
    }
  }
  busy = false;
}

self.onmessage = (ev: MessageEvent<Request>) => {
  const req = ev.data;
  if (req.op === 'cancel') {
    cancelled.add(req.target);
    return;
  }
  queue.push(req);
  void drain();
};
