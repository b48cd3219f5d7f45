/**
 * Loading the Hugging Face exports of 1-Bit Wonder (`Aleph-Alpha-Research/1-Bit-Wonder`,
 * `export_to_hf.py`; ../shared/specs/compression.md §2.7) straight into packed layers.
 *
 * The layout that script writes (a Llama folder, read here as facts, no code taken from it):
 *   config.json                plain HF LlamaForCausalLM config (model_type "llama", no quantization fields)
 *   quantization_config.json   {"quant_method", "bits", "block_size", "relative_scale",
 *                               "num_centroids" (= 2^bits), "centroids" (one layer's, for information)}
 *   model.safetensors (or model-0000i-of-0000n.safetensors + model.safetensors.index.json):
 *     every quantized Linear `P` (the q/k/v/o and gate/up/down projections of each layer) as
 *       P.weight_packed  U8   [out, in / (8/bits)]   codes, 8/bits per byte, first element in the high bits
 *       P.scales         BF16 [out, in / block_size]  per-block scale (absmax, absmean, rms or 1)
 *       P.centroids      F32  [2^bits]                that layer's k-means centroids, sorted ascending
 *     with w^ = scales[r, c / block_size] * centroids[code[r, c]]; embeddings, norms and lm_head
 *     (and any layer that failed to quantize) as plain BF16 `.weight` tensors.
 * q/k rows are already in HF's rotate-half order (the export permutes them before quantizing).
 *
 * The code stream is tfree's packed layout byte for byte (src/compress/quantize.ts), so codes and
 * scales are used as stored, with the layer's centroids as the level table: a PackedLinear of
 * format kmeans<bits> (block size from quantization_config.json). The format's scale mode only
 * records how scales were computed; "rms" and "none" exports load with the format's default mode
 * in the name and `relativeScale` says what the file used (inference does not depend on it).
 *
 * The model's f32 weights are allocated but never written for packed layers (zero pages), and are
 * dropped: the resident memory is the packed weights plus the plain tensors in f32.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { firstNonFinite, openCheckpoint } from '../io/index.js';
import { ParamStore, VarBuilder, type Init } from '../nn/index.js';
import { LlamaLM, lmConfigFromHF, readLlamaConfig, type LlamaConfig } from '../models/llama/index.js';
import { FormatError, parseFormat, type QuantFormat } from './format.js';
import { findLinears, replaceAt } from './modules.js';
import { PackedLinear } from './packed_linear.js';
import { readWeightBuffer, type PackedMatrix } from './quantize.js';

/** A 1-Bit-Wonder export that does not load (names the file and the field or tensor). */
export class OneBitWonderError extends Error {
  override readonly name = 'OneBitWonderError';
}

export type RelativeScale = 'absmax' | 'absmean' | 'rms' | 'none';

/** quantization_config.json of a 1-Bit-Wonder export. */
export interface OneBitWonderQuantConfig {
  quantMethod: string;
  bits: 1 | 2 | 4 | 8;
  blockSize: number;
  relativeScale: RelativeScale;
}

export const ONE_BIT_WONDER_QUANT_FILE = 'quantization_config.json';

/**
 * Whether a folder holds a 1-Bit-Wonder export: a quantization_config.json with the fields
 * export_to_hf.py writes (`bits`, `block_size`, `relative_scale`, `num_centroids`) next to config.json.
 */
export function isOneBitWonderDir(dir: string): boolean {
  const f = nodePath.join(dir, ONE_BIT_WONDER_QUANT_FILE);
  if (!fs.existsSync(f) || !fs.existsSync(nodePath.join(dir, 'config.json'))) return false;
  try {
    const j = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
    return j !== null && typeof j === 'object' && 'bits' in j && 'block_size' in j && 'relative_scale' in j && 'num_centroids' in j;
  } catch {
    return false;
  }
}

/** Reads and validates quantization_config.json. */
export function readOneBitWonderConfig(dir: string): OneBitWonderQuantConfig {
  const file = nodePath.join(dir, ONE_BIT_WONDER_QUANT_FILE);
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new OneBitWonderError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new OneBitWonderError(`${file}: must be a JSON object`);
  const o = j as Record<string, unknown>;
  const bad = (k: string, why: string): never => {
    throw new OneBitWonderError(`${file}: field "${k}" ${why}, got ${JSON.stringify(o[k])}`);
  };
  const bits = o.bits;
  if (bits !== 1 && bits !== 2 && bits !== 4 && bits !== 8) bad('bits', 'must be 1, 2, 4 or 8 (the packed layouts of export_to_hf.py)');
  const blockSize = o.block_size;
  if (typeof blockSize !== 'number' || !Number.isInteger(blockSize) || blockSize < 8 || blockSize % 8 !== 0) bad('block_size', 'must be a positive multiple of 8');
  const rs = o.relative_scale;
  if (rs !== 'absmax' && rs !== 'absmean' && rs !== 'rms' && rs !== 'none') bad('relative_scale', 'must be absmax, absmean, rms or none');
  if (o.num_centroids !== undefined && o.num_centroids !== 2 ** (bits as number)) bad('num_centroids', `must be 2^bits = ${2 ** (bits as number)}`);
  const qm = typeof o.quant_method === 'string' ? o.quant_method : 'nonlinear';
  return { quantMethod: qm, bits: bits as 1 | 2 | 4 | 8, blockSize: blockSize as number, relativeScale: rs as RelativeScale };
}

export interface LoadedOneBitWonder {
  model: LlamaLM;
  /** the unpacked parameters (embeddings, norms, lm_head, any unquantized linear) */
  store: ParamStore;
  config: LlamaConfig;
  quant: OneBitWonderQuantConfig;
  /** packed weights by HF weight name (`model.layers.0.self_attn.q_proj.weight`) */
  packed: Map<string, PackedMatrix>;
}

const FLOAT = new Set(['F32', 'BF16', 'F16', 'F64']);
/** Leaves the fresh (zero) buffer untouched, so packed layers' f32 weights never become resident. */
const untouched: Init = () => undefined;

function list(xs: string[]): string {
  return xs.slice(0, 10).join('; ') + (xs.length > 10 ? `; ... (${xs.length} in all)` : '');
}

/**
 * Loads a 1-Bit-Wonder export folder: the Llama from config.json, every Linear with a
 * `.weight_packed` tensor as a PackedLinear (kmeans<bits>), the rest from the plain tensors. All
 * names, dtypes and shapes are checked from the headers before any data is read; problems are
 * listed in one error naming the folder and tensors.
 */
export function loadOneBitWonder(dir: string): LoadedOneBitWonder {
  const quant = readOneBitWonderConfig(dir);
  const config = readLlamaConfig(dir);
  const cfg = lmConfigFromHF(config);
  let format: QuantFormat;
  try {
    const mode = quant.relativeScale === 'absmax' || quant.relativeScale === 'absmean' ? `:${quant.relativeScale}` : '';
    format = parseFormat(`kmeans${quant.bits}${mode}`, { blockSize: quant.blockSize, scaleDtype: 'BF16' });
  } catch (e) {
    if (e instanceof FormatError) throw new OneBitWonderError(`${nodePath.join(dir, ONE_BIT_WONDER_QUANT_FILE)}: ${e.message}`);
    throw e;
  }
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { defaultInit: untouched }), cfg);
  const ck = openCheckpoint(dir);
  try {
    const problems: string[] = [];
    const owned = new Set<string>();
    const plan: { site: ReturnType<typeof findLinears>[number]; base: string; scaleDtype: 'BF16' | 'F16' }[] = [];
    const shapeOk = (name: string, dtypes: string[], shape: number[]): string | null => {
      owned.add(name);
      if (!ck.has(name)) return `missing ${name}`;
      const i = ck.info(name);
      if (!dtypes.includes(i.dtype) || i.shape.length !== shape.length || i.shape.some((d, k) => d !== shape[k])) {
        return `${name} is ${i.dtype} [${i.shape.join(', ')}] in ${nodePath.basename(i.file)}, expected ${dtypes.join('/')} [${shape.join(', ')}]`;
      }
      return null;
    };
    for (const site of findLinears(model)) {
      const base = site.name;
      const packedName = `${base}.weight_packed`;
      const any = ck.has(packedName) || ck.has(`${base}.scales`) || ck.has(`${base}.centroids`);
      if (!any) continue;
      const out = site.linear.outFeatures;
      const inF = site.linear.inFeatures;
      if (inF % quant.blockSize !== 0) {
        problems.push(`${base}: block_size ${quant.blockSize} does not divide its ${inF} inputs`);
        continue;
      }
      const errs = [
        shapeOk(packedName, ['U8'], [out, (inF * quant.bits) / 8]),
        shapeOk(`${base}.scales`, ['BF16', 'F16'], [out, inF / quant.blockSize]),
        shapeOk(`${base}.centroids`, ['F32'], [2 ** quant.bits]),
      ].filter((x): x is string => x !== null);
      if (ck.has(site.weightName)) errs.push(`${site.weightName} is stored both packed and plain`);
      problems.push(...errs);
      if (errs.length === 0) plan.push({ site, base, scaleDtype: ck.info(`${base}.scales`).dtype === 'F16' ? 'F16' : 'BF16' });
    }
    const packedWeights = new Set(plan.map((p) => p.site.weightName));
    const tied = cfg.tieWordEmbeddings ?? false;
    for (const [name, t] of store.entries()) {
      if (packedWeights.has(name)) continue;
      if (!ck.has(name)) {
        problems.push(`missing ${name}`);
        continue;
      }
      const i = ck.info(name);
      if (!FLOAT.has(i.dtype)) problems.push(`${name} is ${i.dtype}, expected a float dtype`);
      if (i.shape.length !== t.shape.length || i.shape.some((d, k) => d !== t.shape[k])) problems.push(`${name} is [${i.shape.join(', ')}] in ${nodePath.basename(i.file)}, config.json needs [${t.shape.join(', ')}]`);
    }
    const unexpected = ck.names().filter((n) => !store.has(n) && !owned.has(n) && !(tied && n === 'lm_head.weight') && !/rotary_emb\.inv_freq$/.test(n));
    if (unexpected.length > 0) problems.push(`unexpected tensors: ${unexpected.slice(0, 10).join(', ')}${unexpected.length > 10 ? ` ... (${unexpected.length} in all)` : ''}`);
    if (plan.length === 0 && problems.length === 0) problems.push('no tensor named *.weight_packed: this folder is not a quantized 1-Bit-Wonder export');
    if (problems.length > 0) throw new OneBitWonderError(`${dir}: 1-Bit-Wonder export does not match config.json / ${ONE_BIT_WONDER_QUANT_FILE}: ${list(problems)}`);

    const packed = new Map<string, PackedMatrix>();
    for (const { site, base, scaleDtype } of plan) {
      const codes = readWeightBuffer(ck, `${base}.weight_packed`).data as Uint8Array;
      const scales = readWeightBuffer(ck, `${base}.scales`).data as Uint16Array;
      const levels = Float32Array.from(ck.read(`${base}.centroids`).data as Float32Array);
      const badLevel = firstNonFinite('F32', levels);
      if (badLevel >= 0) throw new OneBitWonderError(`${dir}: tensor "${base}.centroids": entry ${badLevel} is ${levels[badLevel]}`);
      const badScale = firstNonFinite(scaleDtype, scales);
      if (badScale >= 0) throw new OneBitWonderError(`${dir}: tensor "${base}.scales": scale ${badScale} is not finite`);
      const f: QuantFormat = scaleDtype === format.scaleDtype ? format : { ...format, scaleDtype };
      const p: PackedMatrix = { format: f, rows: site.linear.outFeatures, cols: site.linear.inFeatures, codes, scales, levels };
      packed.set(site.weightName, p);
      replaceAt(site, new PackedLinear(p, site.linear.bias, site.name));
    }
    const rest = new ParamStore();
    for (const [name, t] of store.entries()) {
      if (packedWeights.has(name)) continue;
      const v = ck.readAs(name, 'f32').data;
      const bad = firstNonFinite('F32', v);
      if (bad >= 0) throw new OneBitWonderError(`${dir}: tensor "${name}": value ${bad} is ${v[bad]}`);
      (t.data as Float32Array).set(v);
      rest.add(name, t);
    }
    return { model, store: rest, config, quant, packed };
  } finally {
    ck.close();
  }
}
