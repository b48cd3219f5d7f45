/**
 * Shape-exact stand-ins of released HAT checkpoints: random weights in the released layout
 * (config.json field names, safetensors tensor names, shards + `model.safetensors.index.json`),
 * written tensor by tensor so an 8B model never sits in memory.
 *
 * Every size comes from the config: a `--like` preset is only a config.json template
 * (`LIKE_PRESETS`). The Llama-3.1-8B-TFree-HAT backbone shape is known (Llama 3.1 8B blocks);
 * its encoder and decoder sizes are NOT public (../shared/specs/hat.md §2, §9): the `hat-8b`
 * values below are assumptions, documented in docs/hat.md ("Release-size stand-ins").
 *
 * Values: each tensor draws from its own xorshift32 stream seeded by (seed, tensor name), so a
 * tensor's values depend only on the seed and its name. Uniform with std 1/sqrt(in) for
 * projections (o_proj and down_proj further divided by sqrt(2 x layers of the module), so the
 * residual stream grows slowly), norm weights 1, embeddings / latent query / first word
 * embedding std 1: activations stay O(1) through 32 layers.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Tensor } from '../../tensor/index.js';
import { f32ToBf16, f32ToF16, runToEnd, shardedWriteJob, type LazyTensorData, type StopFlag, type TensorEntries } from '../../io/index.js';
import { HATConfigError, makeHATConfig, parseHATConfig, readHATConfig, writeHATConfig, PRESETS, type HATConfig } from './config.js';
import { HATModel } from './model.js';

/** Assumed byte-module sizes of the 8B release (see the file comment and docs/hat.md). */
export const HAT_8B_ASSUMED = {
  byteHidden: 1024,
  byteHeads: 8,
  byteKvHeads: 8,
  byteIntermediate: 2816,
  encoderLayers: 8,
  decoderLayers: 4,
  slidingWindow: 768,
} as const;

const LLAMA31_ROPE_SCALING = { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 };

function hat8b(scale: 'full' | 'mini'): HATConfig {
  const mini = scale === 'mini';
  const cfg = makeHATConfig({
    ...HAT_8B_ASSUMED,
    // mini: the same structure (GQA 4:1 in the backbone, llama3 RoPE, windows) at test size
    byteHidden: mini ? 64 : HAT_8B_ASSUMED.byteHidden,
    byteHeads: mini ? 2 : HAT_8B_ASSUMED.byteHeads,
    byteKvHeads: mini ? 2 : HAT_8B_ASSUMED.byteKvHeads,
    byteIntermediate: mini ? 192 : HAT_8B_ASSUMED.byteIntermediate,
    encoderLayers: mini ? 2 : HAT_8B_ASSUMED.encoderLayers,
    decoderLayers: mini ? 2 : HAT_8B_ASSUMED.decoderLayers,
    backboneHidden: mini ? 128 : 4096,
    backboneHeads: mini ? 8 : 32,
    backboneKvHeads: mini ? 2 : 8,
    backboneIntermediate: mini ? 448 : 14336,
    backboneLayers: mini ? 2 : 32,
    ropeTheta: 500000,
    backboneRopeTheta: 500000,
  });
  cfg.backbone_config.rope_scaling = { ...LLAMA31_ROPE_SCALING };
  cfg.backbone_config.max_position_embeddings = 131072;
  cfg.torch_dtype = 'bfloat16';
  return parseHATConfig(cfg);
}

/** `--like` presets: config.json templates. */
export const LIKE_PRESETS: Record<string, () => HATConfig> = {
  /** Llama-3.1-8B-TFree-HAT shape: Llama 3.1 8B backbone; byte modules as HAT_8B_ASSUMED */
  'hat-8b': () => hat8b('full'),
  /** the hat-8b structure scaled down to test size (seconds, not minutes) */
  'hat-8b-mini': () => hat8b('mini'),
  /** tfree's tiny preset (about 2.5M parameters) */
  'hat-tiny': () => makeHATConfig(PRESETS.tiny),
  /** tfree's small preset (about 31M parameters) */
  'hat-small': () => makeHATConfig(PRESETS.small),
};

/** A preset name or a config.json path (file or folder). */
export function likeConfig(like: string): HATConfig {
  const p = LIKE_PRESETS[like];
  if (p !== undefined && Object.prototype.hasOwnProperty.call(LIKE_PRESETS, like)) return p();
  if (fs.existsSync(like)) return readHATConfig(like);
  throw new HATConfigError('', `--like "${like}" is neither a preset (${Object.keys(LIKE_PRESETS).join(', ')}) nor a config.json file or folder`);
}

/**
 * Builds a model whose every parameter is a zero view over one shared buffer (sized by the
 * largest tensor, never written, so its pages are never touched): the parameter names and
 * shapes of a config, in model order, at no memory cost.
 */
export function placeholderModel(cfg: HATConfig): HATModel {
  let shared = new ArrayBuffer(0);
  return new HATModel(cfg, {
    source: (_name, shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      if (shared.byteLength < n * 4) shared = new ArrayBuffer(n * 4);
      return new Tensor(new Float32Array(shared, 0, n), shape);
    },
  });
}

/** Parameter names and shapes of a config, in model order (no weights are allocated). */
export function hatParamShapes(cfg: HATConfig): [string, number[]][] {
  return placeholderModel(cfg)
    .store.entries()
    .map(([n, t]) => [n, t.shape.slice()]);
}

/** Number of parameters of a config (no weights are allocated). */
export function hatParamCount(cfg: HATConfig): number {
  return hatParamShapes(cfg).reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);
}

function hash32(s: string, h0: number): number {
  let h = (h0 ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0 || 0x9e3779b9;
}

/** The std of a synthetic tensor (0: constant 1, norm weights). */
export function synthStd(cfg: HATConfig, name: string, shape: readonly number[]): number {
  if (/norm\.weight$|layernorm\.weight$|^layer_norm\.weight$|norm_query\.weight$|norm_key\.weight$/.test(name)) return 0;
  if (shape.length !== 2) return 1; // latent_query, first_word_embedding [1, 1, H]
  if (name === 'encoder.embedding_layer.weight') return 1;
  const layers = name.startsWith('backbone.') ? cfg.backbone_config.num_hidden_layers : name.startsWith('decoder.') ? cfg.decoder_config.num_hidden_layers : cfg.encoder_config.num_hidden_layers;
  const base = 1 / Math.sqrt(shape[1]);
  return /(o_proj|down_proj)\.weight$/.test(name) ? base / Math.sqrt(2 * layers) : base;
}

/** The f32 values of one synthetic tensor (deterministic in seed and name). */
export function synthValues(cfg: HATConfig, name: string, shape: readonly number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const std = synthStd(cfg, name, shape);
  if (std === 0) return out.fill(1);
  const a = (std * Math.sqrt(3)) / 2147483648; // uniform(-std*sqrt3, std*sqrt3)
  let x = hash32(name, seed >>> 0);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x | 0) * a;
  }
  return out;
}

export type SynthDType = 'BF16' | 'F32' | 'F16';

export interface SynthOptions {
  dtype?: SynthDType;
  seed?: number;
  /** largest shard in bytes (default 5 GB, as the released checkpoints) */
  maxShardBytes?: number;
  /** called after each tensor's data was produced: (bytes done, total bytes, tensor name) */
  onProgress?: (done: number, total: number, name: string) => void;
}

/** Bytes the checkpoint's tensor data will take. */
export function synthBytes(cfg: HATConfig, dtype: SynthDType): number {
  return hatParamCount(cfg) * (dtype === 'F32' ? 4 : 2);
}

export interface SynthResult {
  files: string[];
  indexFile: string | undefined;
  bytes: number;
  params: number;
}

/**
 * Writes `<dir>/config.json` and random weights in the released layout, one tensor in memory
 * at a time. Returns the files written.
 */
export function writeSynthCheckpoint(dir: string, cfg: HATConfig, opts: SynthOptions = {}): SynthResult {
  return runToEnd(synthCheckpointJob(dir, cfg, opts));
}

/**
 * `writeSynthCheckpoint` as a job that yields after each tensor: run with `runYielding`, a set
 * `stop` ends it with WriteInterrupted (no temp file, no shard of this run and no config.json left).
 */
export function* synthCheckpointJob(dir: string, cfg: HATConfig, opts: SynthOptions = {}, stop?: StopFlag): Generator<void, SynthResult, void> {
  const dtype = opts.dtype ?? 'BF16';
  const seed = opts.seed ?? 0;
  const size = dtype === 'F32' ? 4 : 2;
  const shapes = hatParamShapes(cfg);
  const total = shapes.reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1) * size, 0);
  let done = 0;
  const entries = shapes.map(([name, shape]) => {
    const load = (): Float32Array | Uint16Array => {
      const v = synthValues(cfg, name, shape, seed);
      const data = dtype === 'F32' ? v : dtype === 'BF16' ? f32ToBf16(v) : f32ToF16(v);
      done += data.byteLength;
      opts.onProgress?.(done, total, name);
      return data;
    };
    return [name, { dtype, shape, load } as LazyTensorData] as const;
  }) as TensorEntries;
  yield; // nothing is written before this point (runWriteJob installs its Ctrl-C handler here)
  const res = yield* shardedWriteJob(dir, entries, { maxShardBytes: opts.maxShardBytes ?? 5_000_000_000, metadata: { format: 'pt', 'tfree.synthetic': `seed=${seed}` } }, stop);
  writeHATConfig(dir, { ...cfg, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16' });
  return { files: res.files, indexFile: res.indexFile, bytes: total, params: total / size };
}

/** Free bytes on the file system that holds `path` (or its nearest existing parent). */
export function freeBytes(path: string): number {
  let p = nodePath.resolve(path);
  while (!fs.existsSync(p)) {
    const up = nodePath.dirname(p);
    if (up === p) break;
    p = up;
  }
  const s = fs.statfsSync(p);
  return s.bavail * s.bsize;
}
