/**
 * Llama -> HAT conversion (the recipe of Llama-3.1-8B-TFree-HAT, ../shared/specs/hat.md §3):
 * the Llama's transformer blocks become the HAT backbone, its embedding matrix, final norm and
 * head are dropped, and new byte-level encoder, connectors and decoder are initialised.
 *
 *   model.layers.{i}.<rest>  ->  backbone.layers.{i}.<rest>     copied value for value
 *   model.embed_tokens.weight, model.norm.weight, lm_head.weight  dropped
 *   encoder.*, encoder_connector.*, decoder_connector.*, decoder.*, layer_norm, lm_head  seeded init
 *
 * The backbone config takes the Llama's shape (hidden, layers, heads, kv heads, intermediate,
 * rms eps, rope theta and rope scaling, max positions now counted in words); the byte modules'
 * sizes come from a preset (tiny, small) with optional overrides. BF16, F16 and F32 source
 * values are exact in f32, so the copied parameters hold exactly the source values and a
 * checkpoint saved in the source dtype stores the source bytes again.
 *
 * Only the headers are read to check the input; the backbone tensors are then read one at a time
 * (the embedding matrix and head are never read).
 */
import * as nodePath from 'node:path';
import { openCheckpoint, SafetensorsError, type Checkpoint } from '../io/index.js';
import { HATModel } from '../models/hat/model.js';
import { HATConfigError, PRESETS, makeHATConfig, parseHATConfig, type HATConfig, type PresetSizes } from '../models/hat/config.js';
import { LlamaConfigError, readLlamaConfig, type LlamaConfig } from '../models/llama/index.js';

/** The input is not a convertible Llama checkpoint (message names the file and field or tensor). */
export class ConversionError extends Error {
  override readonly name = 'ConversionError';
}

/** The byte-module part of a preset (the backbone sizes come from the Llama). */
export type ByteModuleSizes = Pick<
  PresetSizes,
  'byteHidden' | 'byteHeads' | 'byteKvHeads' | 'byteIntermediate' | 'encoderLayers' | 'decoderLayers' | 'slidingWindow' | 'ropeTheta' | 'rmsNormEps'
>;

/** The byte-module sizes of a named preset, with overrides. */
export function byteModuleSizes(preset: string, overrides: Partial<ByteModuleSizes> = {}): ByteModuleSizes {
  if (!Object.prototype.hasOwnProperty.call(PRESETS, preset)) {
    throw new ConversionError(`unknown preset "${preset}" (known: ${Object.keys(PRESETS).join(', ')})`);
  }
  const p: PresetSizes = PRESETS[preset as keyof typeof PRESETS];
  const s: ByteModuleSizes = {
    byteHidden: p.byteHidden,
    byteHeads: p.byteHeads,
    byteKvHeads: p.byteKvHeads,
    byteIntermediate: p.byteIntermediate,
    encoderLayers: p.encoderLayers,
    decoderLayers: p.decoderLayers,
    slidingWindow: p.slidingWindow,
  };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (s as unknown as Record<string, number>)[k] = v;
  return s;
}

/**
 * The HAT config of a converted Llama: backbone = the Llama's blocks (shape, norm eps, RoPE theta
 * and scaling, max positions), encoder/decoder = `bytes`. Throws ConversionError for Llamas the
 * HAT backbone cannot express (attention biases, head_dim != hidden / heads).
 */
export function hatConfigFromLlama(llama: LlamaConfig, bytes: ByteModuleSizes, where = 'config.json'): HATConfig {
  if (llama.attention_bias) throw new ConversionError(`${where}: field "attention_bias" is true; the HAT backbone has no attention biases`);
  if (llama.head_dim * llama.num_attention_heads !== llama.hidden_size) {
    throw new ConversionError(
      `${where}: field "head_dim" is ${llama.head_dim} but hidden_size / num_attention_heads is ${llama.hidden_size / llama.num_attention_heads}; the HAT config derives the head size from hidden_size`,
    );
  }
  let cfg: HATConfig;
  try {
    cfg = makeHATConfig({
      ...bytes,
      backboneHidden: llama.hidden_size,
      backboneHeads: llama.num_attention_heads,
      backboneKvHeads: llama.num_key_value_heads,
      backboneIntermediate: llama.intermediate_size,
      backboneLayers: llama.num_hidden_layers,
      backboneRopeTheta: llama.rope_theta,
    });
  } catch (e) {
    if (e instanceof HATConfigError) throw new ConversionError(`byte-module sizes: ${e.message}`);
    throw e;
  }
  cfg.backbone_config = {
    ...cfg.backbone_config,
    rms_norm_eps: llama.rms_norm_eps,
    rope_theta: llama.rope_theta,
    rope_scaling: llama.rope_scaling === null ? null : { ...llama.rope_scaling },
    max_position_embeddings: llama.max_position_embeddings,
    mlp_bias: llama.mlp_bias,
  };
  return parseHATConfig(cfg); // validates the combination
}

/** The Llama tensor a HAT backbone parameter is copied from (undefined: not a backbone parameter). */
export function llamaSourceName(hatName: string): string | undefined {
  return hatName.startsWith('backbone.layers.') ? `model.layers.${hatName.slice('backbone.layers.'.length)}` : undefined;
}

/** Llama tensors the HAT has no place for (dropped on purpose). */
const DROPPED = new Set(['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']);

function ignorable(name: string): boolean {
  return name.endsWith('.rotary_emb.inv_freq');
}

const EXACT_DTYPES = new Set(['BF16', 'F16', 'F32']);

function list(xs: string[]): string {
  return xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, ... (${xs.length} in all)` : '');
}

export interface ConvertOptions {
  /** byte-module preset (default tiny) */
  preset?: string;
  /** overrides of the preset's byte-module sizes */
  bytes?: Partial<ByteModuleSizes>;
  /** initialisation seed of encoder, connectors and decoder (default 0) */
  seed?: number;
}

export interface Conversion {
  model: HATModel;
  llamaConfig: LlamaConfig;
  /** HAT parameter names copied from the Llama (in model order) */
  copied: string[];
  /** Llama tensors left out (embedding, final norm, head) */
  dropped: string[];
  /** HAT parameters initialised fresh */
  initialised: string[];
  /** dtypes of the copied source tensors, e.g. ["BF16"] */
  sourceDtypes: string[];
}

/** Names and shapes of the Llama's transformer-block tensors (`model.layers.{i}.*`, HF layout). */
export function llamaBlockShapes(c: LlamaConfig): Map<string, number[]> {
  const H = c.hidden_size;
  const I = c.intermediate_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const out = new Map<string, number[]>();
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    out.set(`${p}.self_attn.q_proj.weight`, [q, H]);
    out.set(`${p}.self_attn.k_proj.weight`, [kv, H]);
    out.set(`${p}.self_attn.v_proj.weight`, [kv, H]);
    out.set(`${p}.self_attn.o_proj.weight`, [H, q]);
    out.set(`${p}.mlp.gate_proj.weight`, [I, H]);
    if (c.mlp_bias) out.set(`${p}.mlp.gate_proj.bias`, [I]);
    out.set(`${p}.mlp.up_proj.weight`, [I, H]);
    if (c.mlp_bias) out.set(`${p}.mlp.up_proj.bias`, [I]);
    out.set(`${p}.mlp.down_proj.weight`, [H, I]);
    if (c.mlp_bias) out.set(`${p}.mlp.down_proj.bias`, [H]);
    out.set(`${p}.input_layernorm.weight`, [H]);
    out.set(`${p}.post_attention_layernorm.weight`, [H]);
  }
  return out;
}

/** Checks the checkpoint's names, shapes and dtypes against the HAT backbone (headers only). */
function checkCheckpoint(ck: Checkpoint, wanted: Map<string, readonly number[]>, where: string): void {
  const missing: string[] = [];
  const problems: string[] = [];
  for (const [src, shape] of wanted) {
    if (!ck.has(src)) {
      missing.push(src);
      continue;
    }
    const info = ck.info(src);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      problems.push(`tensor "${src}" in ${nodePath.basename(info.file)} has shape [${info.shape.join(', ')}], config.json needs [${shape.join(', ')}]`);
    } else if (!EXACT_DTYPES.has(info.dtype)) {
      problems.push(`tensor "${src}" in ${nodePath.basename(info.file)} is ${info.dtype}; conversion copies BF16, F16 or F32 values exactly and supports no other dtype`);
    }
  }
  if (missing.length > 0) problems.unshift(`missing tensor${missing.length > 1 ? 's' : ''} ${list(missing)} (required by config.json)`);
  const unexpected = ck.names().filter((n) => !wanted.has(n) && !DROPPED.has(n) && !ignorable(n));
  if (unexpected.length > 0) problems.push(`unexpected tensor${unexpected.length > 1 ? 's' : ''} ${list(unexpected)} (not part of a Llama with this config.json)`);
  if (problems.length > 0) throw new ConversionError(`${where}: ${problems.join('; ')}`);
}

/**
 * Converts a Hugging Face Llama checkpoint folder into a HAT model (in memory; save it with
 * saveHATModel). Errors (ConversionError) name the file and the field or tensor.
 */
export function convertLlamaToHAT(dir: string, opts: ConvertOptions = {}): Conversion {
  let llamaConfig: LlamaConfig;
  try {
    llamaConfig = readLlamaConfig(dir);
  } catch (e) {
    if (e instanceof LlamaConfigError) throw new ConversionError(`not a Llama checkpoint: ${e.message}`);
    throw e;
  }
  const cfg = hatConfigFromLlama(llamaConfig, byteModuleSizes(opts.preset ?? 'tiny', opts.bytes), nodePath.join(dir, 'config.json'));
  let ck: Checkpoint;
  try {
    ck = openCheckpoint(dir);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ConversionError(e.message);
    throw e;
  }
  try {
    const shapes = llamaBlockShapes(llamaConfig);
    checkCheckpoint(ck, shapes, ck.indexFile ?? ck.path);
    const copied: string[] = [];
    const dtypes = new Set<string>();
    const model = new HATModel(cfg, {
      seed: opts.seed ?? 0,
      source: (name) => {
        const src = llamaSourceName(name);
        if (src === undefined) return undefined;
        if (!shapes.has(src)) throw new Error(`convertLlamaToHAT: backbone parameter "${name}" has no Llama counterpart in llamaBlockShapes`);
        copied.push(name);
        dtypes.add(ck.info(src).dtype);
        return ck.readAs(src, 'f32').data;
      },
    });
    if (copied.length !== shapes.size) throw new Error(`convertLlamaToHAT: the backbone took ${copied.length} of the ${shapes.size} Llama block tensors`);
    const copiedSet = new Set(copied);
    return {
      model,
      llamaConfig,
      copied,
      dropped: ck.names().filter((n) => DROPPED.has(n)),
      initialised: model.store.names().filter((n) => !copiedSet.has(n)),
      sourceDtypes: [...dtypes].sort(),
    };
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ConversionError(e.message);
    throw e;
  } finally {
    ck.close();
  }
}
