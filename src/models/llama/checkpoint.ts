/**
 * Hugging Face Llama checkpoint folders: `config.json` + `model.safetensors`, or shards with
 * `model.safetensors.index.json`.
 *
 * Loading builds the model from config.json, then checks the checkpoint's tensor names, shapes
 * and dtypes against the model's parameters from the headers alone (missing, unexpected and
 * mis-shaped tensors are all named in one error) before any data is read; tensors are then read
 * one at a time and converted (BF16/F16/F32/F64 -> F32) straight into the parameters, so the
 * peak memory is the model plus one tensor.
 *
 * Saving writes the same layout: weights (f32, bf16 or f16; sharded above `maxShardBytes`),
 * every file written atomically (temp file + rename), config.json last. A tied model has no
 * `lm_head.weight` in the files, as Hugging Face saves it.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ParamStore, VarBuilder, init } from '../../nn/index.js';
import { fromFloat32, openCheckpoint, writeFileAtomic, writeShardedSafetensors, type Checkpoint, type LazyTensorData } from '../../io/index.js';
import { LlamaConfigError, hfConfigFromLM, lmConfigFromHF, llamaConfigToJson, parseLlamaConfig, type LlamaConfig } from './config.js';
import { LlamaLM } from './model.js';

/** A checkpoint that does not fit the model its config describes. */
export class LlamaCheckpointError extends Error {
  override readonly name = 'LlamaCheckpointError';
}

/** Reads and validates `<dir>/config.json` (or a config.json path). */
export function readLlamaConfig(path: string): LlamaConfig {
  const file = path.endsWith('.json') && !(fs.existsSync(path) && fs.statSync(path).isDirectory()) ? path : nodePath.join(path, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new LlamaConfigError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LlamaConfigError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return parseLlamaConfig(json, file);
}

/** Source names that HF checkpoints may hold and that carry no parameters (old rotary buffers). */
function ignorable(name: string): boolean {
  return /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(name);
}

const FLOAT_DTYPES = new Set(['F32', 'BF16', 'F16', 'F64']);

function list(xs: string[]): string {
  return xs.slice(0, 12).join(', ') + (xs.length > 12 ? `, ... (${xs.length} in all)` : '');
}

/** Checks names, shapes and dtypes of a checkpoint against a model's parameters (headers only). */
function checkAgainst(store: ParamStore, ck: Checkpoint, tied: boolean, where: string): void {
  const problems: string[] = [];
  const missing: string[] = [];
  const badShape: string[] = [];
  const badDtype: string[] = [];
  for (const [name, t] of store.entries()) {
    if (!ck.has(name)) {
      missing.push(name);
      continue;
    }
    const info = ck.info(name);
    if (info.shape.length !== t.shape.length || info.shape.some((d, i) => d !== t.shape[i])) {
      badShape.push(`${name} is [${info.shape.join(', ')}] in ${nodePath.basename(info.file)}, the config needs [${t.shape.join(', ')}]`);
    }
    if (!FLOAT_DTYPES.has(info.dtype)) badDtype.push(`${name} is ${info.dtype}`);
  }
  const unexpected = ck.names().filter((n) => !store.has(n) && !ignorable(n) && !(tied && n === 'lm_head.weight'));
  if (missing.length > 0) problems.push(`missing tensors: ${list(missing)}`);
  if (badShape.length > 0) problems.push(`mis-shaped tensors: ${list(badShape)}`);
  if (badDtype.length > 0) problems.push(`tensors of a non-float dtype: ${list(badDtype)}`);
  if (unexpected.length > 0) problems.push(`unexpected tensors: ${list(unexpected)}`);
  if (!tied && missing.length === 1 && missing[0] === 'lm_head.weight') {
    problems.push('(config.json says tie_word_embeddings is false; a tied checkpoint needs "tie_word_embeddings": true)');
  }
  if (problems.length > 0) throw new LlamaCheckpointError(`${where}: checkpoint does not match config.json: ${problems.join('; ')}`);
}

export interface LoadedLlama {
  model: LlamaLM;
  store: ParamStore;
  config: LlamaConfig;
  /** dtypes found in the checkpoint, e.g. ["BF16"] */
  dtypes: string[];
}

/**
 * Loads a HF Llama checkpoint folder (config.json + model.safetensors or sharded with
 * model.safetensors.index.json). Weights become f32. Throws `LlamaConfigError` /
 * `LlamaCheckpointError` / `SafetensorsError` naming the file and field or tensor.
 */
export function loadLlama(dir: string): LoadedLlama {
  const config = readLlamaConfig(dir);
  const cfg = lmConfigFromHF(config);
  const ck = openCheckpoint(dir);
  const dtypes = new Set<string>();
  const store = new ParamStore();
  try {
    // the layer count of the config against the checkpoint, before 10^8 claimed layers are allocated
    let have = 0;
    for (const n of ck.names()) {
      const m = /^model\.layers\.(\d+)\./.exec(n);
      if (m !== null) have = Math.max(have, Number(m[1]) + 1);
    }
    if (have !== cfg.numLayers) throw new LlamaCheckpointError(`${dir}: config.json num_hidden_layers is ${cfg.numLayers}, the checkpoint holds ${have} layers (model.layers.*)`);
  } catch (e) {
    ck.close();
    throw e;
  }
  const model = new LlamaLM(new VarBuilder(store, { defaultInit: init.zeros() }), cfg);
  try {
    checkAgainst(store, ck, cfg.tieWordEmbeddings ?? false, dir);
    for (const [name, t] of store.entries()) {
      dtypes.add(ck.info(name).dtype);
      (t.data as Float32Array).set(ck.readAs(name, 'f32').data);
    }
  } finally {
    ck.close();
  }
  return { model, store, config, dtypes: [...dtypes].sort() };
}

export interface SaveLlamaOptions {
  /** stored dtype (default F32) */
  dtype?: 'F32' | 'BF16' | 'F16';
  /** shard above this many data bytes (default 2 GiB); smaller gives several shards + index.json */
  maxShardBytes?: number;
}

/**
 * Saves a model as a HF Llama checkpoint folder (weights, then config.json). Each file is written
 * atomically; a tied model's files hold no `lm_head.weight`.
 */
export function saveLlama(model: LlamaLM, dir: string, opts: SaveLlamaOptions = {}): { files: string[] } {
  const dtype = opts.dtype ?? 'F32';
  const config = hfConfigFromLM(model.cfg);
  const own = model.store.entries().filter(([n]) => n.startsWith('model.') || n === 'lm_head.weight');
  const entries: [string, LazyTensorData][] = own.map(([name, t]) => {
    const shape = t.shape.slice();
    const load = dtype === 'F32' ? () => t.f32() : () => fromFloat32(dtype, t.f32());
    return [name, { dtype, shape, load } as LazyTensorData];
  });
  const res = writeShardedSafetensors(dir, entries, { maxShardBytes: opts.maxShardBytes ?? 2 ** 31, metadata: { format: 'pt' } });
  const torchDtype = dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16';
  const cfgPath = nodePath.join(dir, 'config.json');
  writeFileAtomic(cfgPath, llamaConfigToJson(config, torchDtype));
  return { files: [...res.files, ...(res.indexFile !== undefined ? [res.indexFile] : []), cfgPath] };
}
