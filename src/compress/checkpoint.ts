/**
 * Packed checkpoints: safetensors files in which each quantized weight `W` ([out, in]) is stored as
 *   `W.codes`    U8   [out, in*bits/8]   MSB-first code stream per row (quantize.ts)
 *   `W.scales`   BF16 or F16 [out, in/blockSize]
 *   `W.codebook` F32  [2^bits]           (k-means formats only: the fitted centroids)
 * plus one `__metadata__` entry per quantized weight, `tfree.quant.W` =
 * `{"format":"kmeans4","shape":[out,in],"block":64,"scale":"BF16","rules":2}`. `rules` is the version
 * of the quantization rules the codes were computed with (FORMAT_RULES in format.ts; absent = 1):
 * a file written under rules 1 loads unchanged (reconstruction does not depend on the rules) and
 * its formats are reported under today's name of the rule that wrote them (`int4:absmean` of
 * rules 1 is `int4:meanstep`). Every other tensor is stored as it was (dtype kept). Loading
 * validates everything and names the tensor on any mismatch.
 */
import { firstNonFinite, openCheckpoint, runToEnd, writeSafetensorsJob, type LazyTensorData, type StopFlag, type TensorData, type TensorReader } from '../io/index.js';
import { ParamStore } from '../nn/index.js';
import { FORMAT_RULES, FormatError, checkShape, fitBlock, fixedLevels, formatNameForRules, parseFormat, type QuantFormat } from './format.js';
import { findLinears, nameFilter, replaceAt, type NameFilter } from './modules.js';
import { PackedLinear } from './packed_linear.js';
import { dequantize, quantizeMatrix, readWeightBuffer, rowBytes, type PackedMatrix, type QuantizeOptions } from './quantize.js';

export const QUANT_META_PREFIX = 'tfree.quant.';

/** A problem with a packed checkpoint; the message names the file and tensor. */
export class PackedCheckpointError extends Error {
  override readonly name = 'PackedCheckpointError';
}

interface QuantMeta {
  format: string;
  shape: [number, number];
  block: number;
  scale: 'BF16' | 'F16';
  /** quantization rules version (FORMAT_RULES; absent in files written before it existed = 1) */
  rules?: number;
}

/** The safetensors entries of one packed weight. */
export function packedEntries(name: string, p: PackedMatrix): [string, TensorData][] {
  const f = p.format;
  const out: [string, TensorData][] = [
    [`${name}.codes`, { dtype: 'U8', shape: [p.rows, rowBytes(p.cols, f.bits)], data: p.codes }],
    [`${name}.scales`, { dtype: f.scaleDtype, shape: [p.rows, p.cols / f.blockSize], data: p.scales }],
  ];
  if (f.kind === 'kmeans') out.push([`${name}.codebook`, { dtype: 'F32', shape: [p.levels.length], data: p.levels }]);
  return out;
}

export function packedMetaValue(p: PackedMatrix): string {
  const m: QuantMeta = { format: p.format.name, shape: [p.rows, p.cols], block: p.format.blockSize, scale: p.format.scaleDtype, rules: FORMAT_RULES };
  return JSON.stringify(m);
}

/** Writes a packed checkpoint atomically: packed weights plus plain tensors (any dtype). */
export function writePackedCheckpoint(
  path: string,
  packed: ReadonlyMap<string, PackedMatrix>,
  plain: Iterable<[string, TensorData | LazyTensorData]>,
  metadata: Record<string, string> = {},
): { fileSize: number } {
  return runToEnd(packedCheckpointJob(path, packed, plain, metadata));
}

/** `writePackedCheckpoint` as a job that yields after each tensor (`stop`: see writeSafetensorsJob). */
export function* packedCheckpointJob(
  path: string,
  packed: ReadonlyMap<string, PackedMatrix>,
  plain: Iterable<[string, TensorData | LazyTensorData]>,
  metadata: Record<string, string> = {},
  stop?: StopFlag,
): Generator<void, { fileSize: number }, void> {
  const entries: [string, TensorData | LazyTensorData][] = [];
  const meta: Record<string, string> = { ...metadata, 'tfree.packed': '1' };
  for (const [name, p] of packed) {
    entries.push(...packedEntries(name, p));
    meta[`${QUANT_META_PREFIX}${name}`] = packedMetaValue(p);
  }
  for (const e of plain) {
    if (packed.has(e[0])) throw new PackedCheckpointError(`tensor "${e[0]}" is given both packed and plain`);
    entries.push(e);
  }
  return yield* writeSafetensorsJob(path, entries, meta, stop);
}

function fail(file: string, tensor: string, msg: string): never {
  throw new PackedCheckpointError(`${file}: tensor "${tensor}": ${msg}`);
}

function parseMeta(file: string, name: string, raw: string): QuantMeta {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    fail(file, name, `metadata ${QUANT_META_PREFIX}${name} is not JSON: ${raw.slice(0, 80)}`);
  }
  const o = v as Partial<QuantMeta> | null;
  if (o === null || typeof o !== 'object' || typeof o.format !== 'string' || !Array.isArray(o.shape) || o.shape.length !== 2 || !o.shape.every((d) => Number.isSafeInteger(d) && d > 0) || !Number.isSafeInteger(o.block) || (o.scale !== 'BF16' && o.scale !== 'F16')) {
    fail(file, name, `metadata ${QUANT_META_PREFIX}${name} must be {"format","shape":[out,in],"block","scale":"BF16"|"F16"}, got ${raw.slice(0, 120)}`);
  }
  if (o.rules !== undefined && (!Number.isSafeInteger(o.rules) || o.rules < 1 || o.rules > FORMAT_RULES)) {
    fail(file, name, `metadata ${QUANT_META_PREFIX}${name}: quantization rules ${JSON.stringify(o.rules)} are not known to this version (1..${FORMAT_RULES})`);
  }
  return o as QuantMeta;
}

/** The packed weights described by a checkpoint's metadata (validated), and the names of its plain tensors. */
export function readPackedCheckpoint(reader: TensorReader, file = 'checkpoint'): { packed: Map<string, PackedMatrix>; plain: string[] } {
  const packed = new Map<string, PackedMatrix>();
  const owned = new Set<string>();
  for (const [key, raw] of Object.entries(reader.metadata)) {
    if (!key.startsWith(QUANT_META_PREFIX)) continue;
    const name = key.slice(QUANT_META_PREFIX.length);
    const m = parseMeta(file, name, raw);
    let f: QuantFormat;
    try {
      f = parseFormat(formatNameForRules(m.format, m.rules ?? 1), { blockSize: m.block, scaleDtype: m.scale });
      checkShape(f, m.shape, name);
    } catch (e) {
      if (e instanceof FormatError) fail(file, name, e.message);
      throw e;
    }
    const [rows, cols] = m.shape;
    const want = (suffix: string, dtype: string, shape: number[]): TensorData => {
      const t = `${name}.${suffix}`;
      if (!reader.has(t)) fail(file, t, `missing (needed by the ${f.name} weight "${name}")`);
      const info = reader.info(t);
      if (info.dtype !== dtype || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        fail(file, t, `expected ${dtype} [${shape.join(', ')}] for ${f.name} [${rows}, ${cols}], found ${info.dtype} [${info.shape.join(', ')}]`);
      }
      owned.add(t);
      return suffix === 'codebook' ? reader.read(t) : readWeightBuffer(reader, t);
    };
    const codes = want('codes', 'U8', [rows, rowBytes(cols, f.bits)]).data as Uint8Array;
    const scales = want('scales', f.scaleDtype, [rows, cols / f.blockSize]).data as Uint16Array;
    let levels: Float32Array;
    if (f.kind === 'kmeans') {
      levels = want('codebook', 'F32', [2 ** f.bits]).data as Float32Array;
      const bad = firstNonFinite('F32', levels);
      if (bad >= 0) fail(file, `${name}.codebook`, `entry ${bad} is ${levels[bad]}`);
    } else {
      levels = fixedLevels(f);
      if (reader.has(`${name}.codebook`)) fail(file, `${name}.codebook`, `unexpected: format ${f.name} has no codebook`);
    }
    for (let i = 0; i < scales.length; i++) {
      const e = f.scaleDtype === 'BF16' ? (scales[i] >> 7) & 0xff : (scales[i] >> 10) & 0x1f;
      if (e === (f.scaleDtype === 'BF16' ? 0xff : 0x1f)) fail(file, `${name}.scales`, `scale ${i} is not finite`);
    }
    if (reader.has(name)) fail(file, name, 'stored both packed and plain');
    packed.set(name, { format: f, rows, cols, codes, scales, levels });
  }
  const plain = reader.names().filter((n) => !owned.has(n));
  for (const n of plain) {
    const m = /^(.*)\.(codes|scales|codebook)$/.exec(n);
    if (m !== null && !packed.has(m[1]) && reader.info(n).dtype === 'U8') fail(file, n, `looks like packed codes but the metadata has no ${QUANT_META_PREFIX}${m[1]} entry`);
  }
  return { packed, plain };
}

export interface QuantizeModelOptions extends NameFilter {
  /** k-means seed prefix (default: the weight name) */
  seed?: number | string;
  /** fit k-means on at most this many values per tensor */
  maxSamples?: number;
  /** per-weight fixed codebooks (e.g. from QAT) */
  codebooks?: ReadonlyMap<string, Float32Array>;
}

/**
 * Quantizes the selected Linear layers of a built model in memory and swaps them for
 * PackedLinear layers (each weight's block reduced by fitBlock where it does not divide the row
 * length). Returns the packed weights by weight name.
 */
export function quantizeModel(model: object, format: QuantFormat, opts: QuantizeModelOptions = {}): Map<string, PackedMatrix> {
  const keep = nameFilter(opts);
  const out = new Map<string, PackedMatrix>();
  for (const site of findLinears(model)) {
    if (!keep(site.weightName)) continue;
    const w = site.linear.weight;
    const q: QuantizeOptions = { name: site.weightName, seed: opts.seed === undefined ? site.weightName : `${opts.seed}:${site.weightName}`, maxSamples: opts.maxSamples, codebook: opts.codebooks?.get(site.weightName) ?? null };
    const p = quantizeMatrix(w.f32(), w.shape[0], w.shape[1], fitBlockFor(format, w.shape[1], site.weightName), q);
    out.set(site.weightName, p);
    replaceAt(site, new PackedLinear(p, site.linear.bias, site.name));
  }
  return out;
}

/** fitBlock with the tensor named in the error. */
export function fitBlockFor(f: QuantFormat, cols: number, tensor: string): QuantFormat {
  try {
    return fitBlock(f, cols);
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(`tensor "${tensor}": ${e.message}`);
    throw e;
  }
}

/**
 * Loads a packed checkpoint into a built model: Linear layers whose weight is packed become
 * PackedLinear layers (no f32 copy of those weights is kept), every other parameter is loaded
 * from the checkpoint. Returns a ParamStore of the remaining (unpacked) parameters; the f32
 * weights the model was built with become garbage once the caller drops the old store.
 */
export function loadPackedModel(model: object, store: ParamStore, path: string): { store: ParamStore; packed: Map<string, PackedMatrix> } {
  const ckpt = openCheckpoint(path);
  try {
    const { packed, plain } = readPackedCheckpoint(ckpt, path);
    const used = new Set<string>();
    for (const site of findLinears(model)) {
      const p = packed.get(site.weightName);
      if (p === undefined) continue;
      if (p.rows !== site.linear.outFeatures || p.cols !== site.linear.inFeatures) {
        fail(path, site.weightName, `packed shape [${p.rows}, ${p.cols}] does not match the model's [${site.linear.outFeatures}, ${site.linear.inFeatures}]`);
      }
      replaceAt(site, new PackedLinear(p, site.linear.bias, site.name));
      used.add(site.weightName);
    }
    for (const name of packed.keys()) if (!used.has(name)) fail(path, name, 'is packed but the model has no Linear layer with this weight');
    const rest = new ParamStore();
    for (const [name, t] of store.entries()) if (!used.has(name)) rest.add(name, t);
    const plainSet = new Set(plain);
    rest.loadFrom((name) => (plainSet.has(name) ? ckpt.readAs(name, "f32") : undefined), { sourceNames: plain });
    return { store: rest, packed };
  } finally {
    ckpt.close();
  }
}

/** Dequantized f32 weights of a packed checkpoint's entries (for inspection and tests). */
export function dequantizeAll(packed: ReadonlyMap<string, PackedMatrix>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [n, p] of packed) out.set(n, dequantize(p));
  return out;
}
