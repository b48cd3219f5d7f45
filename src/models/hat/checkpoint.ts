/**
 * HAT checkpoints in the released layout: a folder with `config.json` and either
 * `model.safetensors` or `model-0000i-of-0000N.safetensors` shards plus
 * `model.safetensors.index.json`. Tensors are F32, BF16 or F16 (converted to f32 on load, read
 * one at a time). Loading is strict: a missing, unexpected or mis-shaped tensor is an error
 * naming the tensor (and the file).
 */
import * as nodePath from 'node:path';
import { fromFloat32, openCheckpoint, writeShardedSafetensors, SafetensorsError, type Checkpoint, type TensorEntries } from '../../io/index.js';
import { readHATConfig, writeHATConfig, type HATConfig } from './config.js';
import { HATModel } from './model.js';
import { Tensor } from '../../tensor/index.js';

/** A checkpoint that does not match the model (or cannot be read). */
export class HATCheckpointError extends Error {
  override readonly name = 'HATCheckpointError';
  /** the offending tensor, when one is to blame */
  readonly tensor: string | undefined;
  constructor(message: string, tensor?: string) {
    super(message);
    this.tensor = tensor;
  }
}

/** Buffers that some exports carry and that are not parameters. */
function ignorable(name: string): boolean {
  return name.endsWith('rotary_emb.inv_freq');
}

function list(xs: string[]): string {
  return xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, ... (${xs.length} in all)` : '');
}

/** Builds a model from an open checkpoint, strictly. */
export function modelFromCheckpoint(ck: Checkpoint, cfg: HATConfig): HATModel {
  const where = ck.indexFile ?? ck.path;
  const requested = new Set<string>();
  const model = new HATModel(cfg, {
    source: (name, shape) => {
      requested.add(name);
      if (!ck.has(name)) return undefined;
      const info = ck.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new HATCheckpointError(`${info.file}: tensor "${name}" has shape [${info.shape.join(', ')}], the config needs [${shape.join(', ')}]`, name);
      }
      if (info.dtype !== 'F32' && info.dtype !== 'BF16' && info.dtype !== 'F16') {
        throw new HATCheckpointError(`${info.file}: tensor "${name}" is ${info.dtype}; expected F32, BF16 or F16`, name);
      }
      // a fresh tensor is adopted by the model without a copy (one buffer per tensor)
      return new Tensor(ck.readAs(name, 'f32').data, info.shape);
    },
  });
  const missing = model.store.names().filter((n) => !ck.has(n));
  if (missing.length > 0) throw new HATCheckpointError(`${where}: missing tensor${missing.length > 1 ? 's' : ''} ${list(missing)} (required by the config)`, missing[0]);
  const unexpected = ck.names().filter((n) => !requested.has(n) && !ignorable(n));
  if (unexpected.length > 0) throw new HATCheckpointError(`${where}: unexpected tensor${unexpected.length > 1 ? 's' : ''} ${list(unexpected)} (not part of this config's model)`, unexpected[0]);
  return model;
}

/**
 * Loads `<dir>/config.json` and the weights of `<dir>`. Errors (HATConfigError,
 * HATCheckpointError) name the file and the field or tensor.
 */
export function loadHATModel(dir: string): HATModel {
  const cfg = readHATConfig(nodePath.join(dir, 'config.json'));
  let ck: Checkpoint;
  try {
    ck = openCheckpoint(dir);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new HATCheckpointError(e.message, e.tensor);
    throw e;
  }
  try {
    return modelFromCheckpoint(ck, cfg);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new HATCheckpointError(e.message, e.tensor);
    throw e;
  } finally {
    ck.close();
  }
}

export interface SaveOptions {
  /** tensor dtype on disk (default F32) */
  dtype?: 'F32' | 'BF16' | 'F16';
  /** largest shard in bytes; more data gives `model-0000i-of-0000N.safetensors` + index (default 5 GB, as HF) */
  maxShardBytes?: number;
  /** extra `__metadata__` (always gets format=pt) */
  metadata?: Record<string, string>;
}

/**
 * Writes `config.json` and the weights in the released layout (each file atomically; a stale
 * single file or index of the other layout is removed).
 */
export function saveHATModel(dir: string, model: HATModel, opts: SaveOptions = {}): { files: string[]; indexFile: string | undefined } {
  const dtype = opts.dtype ?? 'F32';
  const entries: TensorEntries = model.store.entries().map(([name, t]) => {
    const shape = t.shape.slice();
    return [name, { dtype, shape, load: () => fromFloat32(dtype, t.f32()) }] as const;
  }) as TensorEntries;
  const res = writeShardedSafetensors(dir, entries, { maxShardBytes: opts.maxShardBytes ?? 5_000_000_000, metadata: { format: 'pt', ...opts.metadata } });
  const cfg: HATConfig = { ...model.config, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16' };
  writeHATConfig(dir, cfg);
  return { files: res.files, indexFile: res.indexFile };
}
