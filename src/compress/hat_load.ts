/**
 * Loading a HAT checkpoint at release size (8B) without a whole f32 copy:
 *
 * 1. config.json is parsed; every shard header and the index are opened and checked
 *    (openCheckpoint); the parameter names and shapes the config needs are listed from a
 *    placeholder model (no weights allocated); then missing, unexpected, mis-shaped and
 *    wrongly typed tensors are errors naming the file and the tensor - all before any large
 *    allocation, and an estimate of the memory the model will take is checked against the
 *    machine's memory.
 * 2. Tensors are read one at a time straight into their final buffer (a positioned read per
 *    tensor; Node has no mmap): Linear weights stay bf16 (`Bf16Linear`) when stored as BF16, or
 *    are quantized on load (`quantize`: `PackedLinear`, the f32 copy of one tensor lives only
 *    while it is quantized); every other parameter (norms, embedding, latent query, lm_head when
 *    excluded from quantization) becomes f32. Every tensor is checked for non-finite values as
 *    it is read.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { Tensor, kernels } from '../tensor/index.js';
import { Bf16Linear, ParamStore } from '../nn/index.js';
import { firstNonFinite, openCheckpoint, SafetensorsError, type Checkpoint } from '../io/index.js';
import { HATCheckpointError, HATModel, readHATConfig, type HATConfig } from '../models/hat/index.js';
import { checkLayerCounts } from '../models/hat/checkpoint.js';
import { placeholderModel } from '../models/hat/synth.js';
import { findLinears, nameFilter, replaceAt, type NameFilter } from './modules.js';
import { PackedLinear } from './packed_linear.js';
import { PackedCheckpointError, loadPackedModel, readPackedCheckpoint } from './checkpoint.js';
import { NonFiniteWeightError, packedBytes, quantizeMatrix } from './quantize.js';
import { FormatError, checkShape, fitBlock, type QuantFormat } from './format.js';

export interface LazyLoadOptions extends NameFilter {
  /** quantize the selected Linear weights on load (default: none) */
  quantize?: QuantFormat;
  /** keep BF16-stored Linear weights in bf16 (default true); false widens them to f32 */
  keepBf16?: boolean;
  /** k-means seed prefix (default: the weight name) */
  seed?: number | string;
  /** k-means formats: fit the codebook on at most this many weights per tensor (seeded sample; default 65536) */
  maxSamples?: number;
  /** called after each tensor: (bytes read so far, total bytes on disk, tensor name) */
  onProgress?: (done: number, total: number, name: string) => void;
  /** memory the process may use (default: os.totalmem()); larger estimates are an error */
  memoryLimit?: number;
  /** what the refusal of a load too large for memory suggests (default: LOAD_QUANTIZED_HINT) */
  memoryHint?: string;
}

/** The default end of the refusal of a load too large for memory: for the commands that take --quantize. */
export const LOAD_QUANTIZED_HINT = 'load it quantized (--quantize int8, kmeans4, int4 or bin1)';

export interface LazyLoadStats {
  /** bytes of tensor data read from disk */
  bytesRead: number;
  /** bytes the loaded weights hold in memory (f32 params, bf16 and packed weights) */
  modelBytes: number;
  /** Linear layers by how they are held */
  layers: { f32: number; bf16: number; packed: number };
  /** quantized weights whose row length the asked block does not divide: the block used instead (the largest power of two below it that divides) */
  reducedBlocks: { name: string; cols: number; blockSize: number }[];
}

function ignorable(name: string): boolean {
  return name.endsWith('rotary_emb.inv_freq');
}

function list(xs: string[]): string {
  return xs.slice(0, 4).join(', ') + (xs.length > 4 ? `, ... (${xs.length} in all)` : '');
}

type Plan = 'f32' | 'bf16' | 'quant';

/** Default k-means sample per tensor when quantizing on load (the fit dominates the load time otherwise). */
export const LOAD_KMEANS_SAMPLES = 65536;

/**
 * Checks a checkpoint against a config from the headers alone (tensor names, shapes, dtypes, the
 * memory the load needs); returns the tensors' plans (how each Linear weight will be held), with
 * `quantize` each quantized weight's format (where the asked block does not divide its row length,
 * the largest power-of-two block below it that does, as `tfree quantize` does; an error when none
 * does), and the estimated bytes in memory.
 */
export function checkHATCheckpoint(ck: Checkpoint, cfg: HATConfig, opts: LazyLoadOptions = {}): { plans: Map<string, Plan>; formats: Map<string, QuantFormat>; modelBytes: number; diskBytes: number } {
  const where = ck.indexFile ?? ck.path;
  checkLayerCounts(cfg, ck.names(), where); // before a config's 10^8 claimed layers are built
  const ph = placeholderModel(cfg);
  const expected = ph.store.entries();
  const missing = expected.filter(([n]) => !ck.has(n)).map(([n]) => n);
  if (missing.length > 0) throw new HATCheckpointError(`${where}: missing tensor${missing.length > 1 ? 's' : ''} ${list(missing)} (required by the config)`, missing[0]);
  const need = new Set(expected.map(([n]) => n));
  const unexpected = ck.names().filter((n) => !need.has(n) && !ignorable(n));
  if (unexpected.length > 0) throw new HATCheckpointError(`${where}: unexpected tensor${unexpected.length > 1 ? 's' : ''} ${list(unexpected)} (not part of this config's model)`, unexpected[0]);
  const linear = new Set(findLinears(ph).map((s) => s.weightName));
  const keep = nameFilter(opts);
  const plans = new Map<string, Plan>();
  const formats = new Map<string, QuantFormat>();
  let modelBytes = 0;
  let diskBytes = 0;
  for (const [name, t] of expected) {
    const info = ck.info(name);
    if (info.shape.length !== t.shape.length || info.shape.some((d, i) => d !== t.shape[i])) {
      throw new HATCheckpointError(`${info.file}: tensor "${name}" has shape [${info.shape.join(', ')}], the config needs [${t.shape.join(', ')}]`, name);
    }
    if (info.dtype !== 'F32' && info.dtype !== 'BF16' && info.dtype !== 'F16') {
      throw new HATCheckpointError(`${info.file}: tensor "${name}" is ${info.dtype}; expected F32, BF16 or F16`, name);
    }
    diskBytes += info.byteLength;
    const n = t.size;
    let plan: Plan = 'f32';
    if (linear.has(name)) {
      if (opts.quantize !== undefined && keep(name)) {
        try {
          const f = fitBlock(opts.quantize, t.shape[1]);
          checkShape(f, t.shape, name);
          formats.set(name, f);
        } catch (e) {
          if (e instanceof FormatError) throw new HATCheckpointError(`${info.file}: ${e.message}`, name);
          throw e;
        }
        plan = 'quant';
      }
      else if (info.dtype === 'BF16' && opts.keepBf16 !== false) plan = 'bf16';
    }
    plans.set(name, plan);
    modelBytes += plan === 'f32' ? 4 * n : plan === 'bf16' ? 2 * n : Math.ceil((n * (opts.quantize?.bits ?? 8)) / 8) + (2 * n) / (opts.quantize?.blockSize ?? 64);
  }
  const limit = opts.memoryLimit ?? os.totalmem();
  if (modelBytes > limit) {
    throw new HATCheckpointError(`${where}: the model needs about ${gib(modelBytes)} in memory, more than the ${gib(limit)} available; ${opts.memoryHint ?? LOAD_QUANTIZED_HINT}`);
  }
  return { plans, formats, modelBytes, diskBytes };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 3 : 1)} GiB`;
}

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SafetensorsError) throw new HATCheckpointError(e.message, e.tensor);
    throw e;
  }
}

/**
 * Loads `<dir>` (config.json + model.safetensors or shards with index) tensor by tensor; see the
 * file comment. Errors (HATConfigError, HATCheckpointError) are one line naming file and tensor.
 */
export function loadHATLazy(dir: string, opts: LazyLoadOptions = {}): { model: HATModel; stats: LazyLoadStats } {
  const cfg = readHATConfig(nodePath.join(dir, 'config.json'));
  const ck = wrap(() => openCheckpoint(dir));
  try {
    return wrap(() => build(ck, cfg, opts));
  } finally {
    ck.close();
  }
}

function build(ck: Checkpoint, cfg: HATConfig, opts: LazyLoadOptions): { model: HATModel; stats: LazyLoadStats } {
  const { plans, formats, diskBytes } = checkHATCheckpoint(ck, cfg, opts);
  let done = 0;
  const nonFinite = (name: string, bad: number): HATCheckpointError => {
    const info = ck.info(name);
    return new HATCheckpointError(`${info.file}: tensor "${name}" has a non-finite value at element ${bad} (${info.dtype} [${info.shape.join(', ')}])`, name);
  };
  // weights to quantize: read into one reused buffer, widened to f32 (native, threaded) into another;
  // the quantizer reports a non-finite value (the same position in the stored tensor)
  let raw = new Uint8Array(0);
  let wide = new Float32Array(0);
  const readForQuant = (name: string): Float32Array => {
    const info = ck.info(name);
    let out: Float32Array;
    if (info.dtype !== 'BF16') out = ck.readAs(name, 'f32').data;
    else {
      const n = info.byteLength / 2;
      if (raw.length < info.byteLength) raw = new Uint8Array(info.byteLength);
      if (wide.length < n) wide = new Float32Array(n);
      out = wide.subarray(0, n);
      kernels().widenBf16(ck.read(name, { into: raw }).data as Uint16Array, out, n);
    }
    done += info.byteLength;
    opts.onProgress?.(done, diskBytes, name);
    return out;
  };
  const read = (name: string): { dtype: string; data: Float32Array | Uint16Array } => {
    const info = ck.info(name);
    const plan = plans.get(name);
    const t = plan === 'bf16' ? ck.read(name) : ck.readAs(name, 'f32');
    // check the stored values (bf16/f16 bit patterns before widening: same positions)
    const bad = plan === 'bf16' ? firstNonFinite('BF16', t.data as Uint16Array) : firstNonFinite('F32', t.data as Float32Array);
    if (bad >= 0) throw new HATCheckpointError(`${info.file}: tensor "${name}" has a non-finite value at element ${bad} (${info.dtype} [${info.shape.join(', ')}])`, name);
    done += info.byteLength;
    opts.onProgress?.(done, diskBytes, name);
    return { dtype: t.dtype, data: t.data as Float32Array | Uint16Array };
  };
  // linear weights that will not be f32 get a placeholder (a never-written view of one shared buffer)
  let shared = new ArrayBuffer(0);
  const model = new HATModel(cfg, {
    source: (name, shape) => {
      if (plans.get(name) !== 'f32') {
        const n = shape.reduce((a, b) => a * b, 1);
        if (shared.byteLength < n * 4) shared = new ArrayBuffer(n * 4);
        return new Tensor(new Float32Array(shared, 0, n), shape);
      }
      return new Tensor(read(name).data as Float32Array, shape);
    },
  });
  const layers = { f32: 0, bf16: 0, packed: 0 };
  const reducedBlocks: LazyLoadStats['reducedBlocks'] = [];
  let modelBytes = 0;
  const converted = new Set<string>();
  for (const site of findLinears(model)) {
    const plan = plans.get(site.weightName);
    const out = site.linear.outFeatures;
    const inp = site.linear.inFeatures;
    if (plan === 'bf16') {
      const w = read(site.weightName).data as Uint16Array;
      replaceAt(site, new Bf16Linear(w, out, inp, site.linear.bias, site.name));
      modelBytes += w.byteLength;
      layers.bf16++;
      converted.add(site.weightName);
    } else if (plan === 'quant' && opts.quantize !== undefined) {
      const w = readForQuant(site.weightName);
      const f = formats.get(site.weightName) ?? opts.quantize;
      if (f.blockSize !== opts.quantize.blockSize) reducedBlocks.push({ name: site.weightName, cols: inp, blockSize: f.blockSize });
      let p;
      try {
        p = quantizeMatrix(w, out, inp, f, { name: site.weightName, seed: opts.seed === undefined ? site.weightName : `${opts.seed}:${site.weightName}`, maxSamples: opts.maxSamples ?? LOAD_KMEANS_SAMPLES });
      } catch (e) {
        if (e instanceof NonFiniteWeightError) throw nonFinite(site.weightName, e.index);
        throw new HATCheckpointError(`${ck.info(site.weightName).file}: tensor "${site.weightName}": ${(e as Error).message.replace(/^tensor "[^"]*": /, '')}`, site.weightName);
      }
      replaceAt(site, new PackedLinear(p, site.linear.bias, site.name));
      modelBytes += packedBytes(p);
      layers.packed++;
      converted.add(site.weightName);
    } else layers.f32++;
  }
  const rest = new ParamStore();
  for (const [name, t] of model.store.entries()) {
    if (converted.has(name)) continue;
    rest.add(name, t);
    modelBytes += t.size * 4;
  }
  Reflect.set(model, 'store', rest);
  return { model, stats: { bytesRead: done, modelBytes, layers, reducedBlocks } };
}

/** True when `<dir>/model.safetensors` is a packed checkpoint (`tfree quantize` / `tfree train --qat`). */
export function isPackedModelDir(dir: string): boolean {
  const file = `${dir}/model.safetensors`;
  if (!fs.existsSync(file)) return false;
  const ck = openCheckpoint(file);
  try {
    return ck.metadata['tfree.packed'] === '1';
  } finally {
    ck.close();
  }
}

/**
 * Loads a packed HAT checkpoint: the packed Linear weights become PackedLinear layers that run
 * from codes + scales (never dequantized to f32); the other tensors load as f32. The
 * placeholders the model is built with for the packed weights are dropped with its old store.
 */
export function loadPackedHATModel(dir: string): HATModel {
  const cfg = readHATConfig(`${dir}/config.json`);
  const file = `${dir}/model.safetensors`;
  const ck = openCheckpoint(file);
  let packedNames: Set<string>;
  try {
    const { packed } = readPackedCheckpoint(ck, file);
    packedNames = new Set(packed.keys());
    checkLayerCounts(cfg, [...ck.names()], file);
  } finally {
    ck.close();
  }
  // placeholders (zeros) for every parameter; loadPackedModel fills the plain ones from the file
  const model = new HATModel(cfg, { source: (_name, shape) => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape }) });
  const { store } = loadPackedModel(model, model.store, file);
  const missing = [...packedNames].filter((n) => store.has(n));
  if (missing.length > 0) throw new PackedCheckpointError(`${file}: packed tensor "${missing[0]}" was not placed`);
  Reflect.set(model, 'store', store);
  return model;
}
