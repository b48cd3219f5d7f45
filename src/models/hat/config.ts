/**
 * HAT configuration: plain objects with exactly the field names of the released `config.json`
 * (Hugging Face remote code `HATArchitectureConfig`, spec docs/hat.md and ../shared/specs/hat.md
 * §6), parsing with validation (every error names the field path), defaults as the reference,
 * presets, and `config.json` read/write.
 *
 * Defaults (from the reference `config.py`): top level `eos_token_id` 192, `max_word_size` 100,
 * `sliding_window` 768, `max_position_embeddings` 262144, `special_token_dict`
 * {"<|eot_id|>": 192}; per module `vocab_size` 0, `use_cache` true, `sliding_window` null,
 * `hidden_act` "silu", `key_query_norm` false, `key_query_norm_per_head` false,
 * `is_neox_style` true. Fields the reference requires (sizes, `rms_norm_eps`, `rope_theta`) are
 * required here too; `rope_scaling` (null), `mlp_bias` (false) and a module's
 * `max_position_embeddings` (the top-level value) are filled in when absent.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ropeScalingFromHF, type RopeScaling } from '../../nn/index.js';
import { writeFileAtomic } from '../../io/safetensors.js';

/** A config error: `path` is the dotted field path (e.g. `encoder_config.hidden_size`). */
export class HATConfigError extends Error {
  override readonly name = 'HATConfigError';
  readonly path: string;
  readonly detail: string;
  constructor(path: string, detail: string, file?: string) {
    super(`${file !== undefined ? `${file}: ` : ''}${path === '' ? '' : `${path}: `}${detail}`);
    this.path = path;
    this.detail = detail;
  }
}

/** Per-module transformer settings (`TransformerHATModelConfig.to_dict`). */
export interface TransformerHATModelConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  rms_norm_eps: number;
  intermediate_size: number;
  max_position_embeddings: number;
  /** Hugging Face `rope_scaling` object ({"rope_type": "llama3", ...}) or null */
  rope_scaling: Record<string, unknown> | null;
  rope_theta: number;
  mlp_bias: boolean;
  use_cache: boolean;
  /** causal sliding window in bytes (key j visible to query i iff 0 <= i - j < window); null: unlimited */
  sliding_window: number | null;
  key_query_norm: boolean;
  key_query_norm_per_head: boolean;
  is_neox_style: boolean;
  transformers_version?: string;
}

/** `CrossAttentionConfig.to_dict`. */
export interface CrossAttentionConfig {
  hidden_size_q: number;
  hidden_size_kv: number;
  hidden_size: number;
  num_attention_heads: number;
  attention_num_kv_heads: number;
  /** stored for round trips; not used by the model (as in the reference) */
  word_window_size: number;
  key_query_norm: boolean;
  key_query_norm_per_head: boolean;
}

export interface EncoderHATModelConfig extends TransformerHATModelConfig {
  cross_attention_config: CrossAttentionConfig;
}

export interface DecoderHATModelConfig extends TransformerHATModelConfig {
  cross_attn_every_layer: boolean;
  cross_attention_config: CrossAttentionConfig;
}

/** The whole `config.json` (`HATArchitectureConfig.to_dict`). */
export interface HATConfig {
  encoder_config: EncoderHATModelConfig;
  backbone_config: TransformerHATModelConfig;
  decoder_config: DecoderHATModelConfig;
  model_type: string;
  transformers_version: string;
  auto_map: Record<string, string>;
  special_token_dict: Record<string, number>;
  eos_token_id: number;
  max_word_size: number;
  sliding_window: number;
  max_position_embeddings: number;
  torch_dtype: string;
  architectures: string[];
}

export const HAT_MODEL_TYPE = 'hierarchical_autoregressive_transformer';
const TRANSFORMERS_VERSION = '4.46.3';
const AUTO_MAP = { AutoConfig: 'config.HATArchitectureConfig', AutoModelForCausalLM: 'model.HATForCausalLM' };

// ---- field readers ---------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

class Reader {
  constructor(
    readonly o: Obj,
    readonly path: string,
  ) {}

  private has(k: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.o, k) && this.o[k] !== undefined;
  }

  int(k: string, opts: { min?: number; max?: number; def?: number } = {}): number {
    const p = join(this.path, k);
    if (!this.has(k)) {
      if (opts.def !== undefined) return opts.def;
      throw new HATConfigError(p, 'is required (an integer)');
    }
    const v = this.o[k];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new HATConfigError(p, `must be an integer, got ${show(v)}`);
    const min = opts.min ?? 1;
    if (v < min) throw new HATConfigError(p, `must be >= ${min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) throw new HATConfigError(p, `must be <= ${opts.max}, got ${v}`);
    return v;
  }

  pos(k: string, def?: number): number {
    const p = join(this.path, k);
    if (!this.has(k)) {
      if (def !== undefined) return def;
      throw new HATConfigError(p, 'is required (a positive number)');
    }
    const v = this.o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new HATConfigError(p, `must be a positive number, got ${show(v)}`);
    return v;
  }

  bool(k: string, def?: boolean): boolean {
    const p = join(this.path, k);
    if (!this.has(k)) {
      if (def !== undefined) return def;
      throw new HATConfigError(p, 'is required (true or false)');
    }
    const v = this.o[k];
    if (typeof v !== 'boolean') throw new HATConfigError(p, `must be true or false, got ${show(v)}`);
    return v;
  }

  str(k: string, def: string): string {
    if (!this.has(k)) return def;
    const v = this.o[k];
    if (typeof v !== 'string') throw new HATConfigError(join(this.path, k), `must be a string, got ${show(v)}`);
    return v;
  }

  obj(k: string): Reader {
    const p = join(this.path, k);
    if (!this.has(k)) throw new HATConfigError(p, 'is required (an object)');
    const v = this.o[k];
    if (!isObj(v)) throw new HATConfigError(p, `must be an object, got ${show(v)}`);
    return new Reader(v, p);
  }
}

// ---- parsing ---------------------------------------------------------------------------------

function parseTransformer(r: Reader, defaults: { maxPos: number }): TransformerHATModelConfig {
  const p = r.path;
  const hidden = r.int('hidden_size');
  const heads = r.int('num_attention_heads');
  const kvHeads = r.int('num_key_value_heads', { def: heads });
  if (hidden % heads !== 0) throw new HATConfigError(join(p, 'hidden_size'), `${hidden} is not divisible by num_attention_heads ${heads}`);
  if (heads % kvHeads !== 0) throw new HATConfigError(join(p, 'num_key_value_heads'), `num_attention_heads ${heads} is not a multiple of ${kvHeads}`);
  if ((hidden / heads) % 2 !== 0) throw new HATConfigError(join(p, 'hidden_size'), `head size ${hidden / heads} must be even for RoPE`);
  const rs = r.o.rope_scaling;
  if (rs !== undefined && rs !== null && !isObj(rs)) throw new HATConfigError(join(p, 'rope_scaling'), `must be an object or null, got ${show(rs)}`);
  try {
    ropeScalingFromHF(rs ?? null);
  } catch (e) {
    throw new HATConfigError(join(p, 'rope_scaling'), (e as Error).message);
  }
  const swRaw = r.o.sliding_window;
  let sliding: number | null = null;
  if (swRaw !== undefined && swRaw !== null) sliding = r.int('sliding_window');
  const act = r.str('hidden_act', 'silu');
  if (act !== 'silu') throw new HATConfigError(join(p, 'hidden_act'), `only "silu" is supported, got ${show(act)}`);
  if (r.o.attention_bias === true) throw new HATConfigError(join(p, 'attention_bias'), 'attention biases are not supported (the released models have none)');
  if (r.o.head_dim !== undefined && r.o.head_dim !== null && r.o.head_dim !== hidden / heads) {
    throw new HATConfigError(join(p, 'head_dim'), `must equal hidden_size / num_attention_heads = ${hidden / heads}, got ${show(r.o.head_dim)}`);
  }
  const cfg: TransformerHATModelConfig = {
    vocab_size: r.int('vocab_size', { min: 0, def: 0 }),
    hidden_size: hidden,
    num_hidden_layers: r.int('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    rms_norm_eps: r.pos('rms_norm_eps'),
    intermediate_size: r.int('intermediate_size'),
    max_position_embeddings: r.int('max_position_embeddings', { def: defaults.maxPos }),
    rope_scaling: (rs ?? null) as Record<string, unknown> | null,
    rope_theta: r.pos('rope_theta'),
    mlp_bias: r.bool('mlp_bias', false),
    use_cache: r.bool('use_cache', true),
    sliding_window: sliding,
    key_query_norm: r.bool('key_query_norm', false),
    key_query_norm_per_head: r.bool('key_query_norm_per_head', false),
    is_neox_style: r.bool('is_neox_style', true),
  };
  if (typeof r.o.transformers_version === 'string') cfg.transformers_version = r.o.transformers_version;
  if (cfg.key_query_norm) {
    throw new HATConfigError(join(p, 'key_query_norm'), 'q/k norm inside the Llama layers is not supported (its parameter names in the released transformer_backbone.py are not public)');
  }
  if (!cfg.is_neox_style) throw new HATConfigError(join(p, 'is_neox_style'), 'only neox-style (rotate-half) RoPE is supported');
  return cfg;
}

function parseCross(r: Reader): CrossAttentionConfig {
  const p = r.path;
  const hidden = r.int('hidden_size');
  const heads = r.int('num_attention_heads');
  const kv = r.int('attention_num_kv_heads');
  if (hidden % heads !== 0) throw new HATConfigError(join(p, 'hidden_size'), `${hidden} is not divisible by num_attention_heads ${heads}`);
  if (heads % kv !== 0) throw new HATConfigError(join(p, 'attention_num_kv_heads'), `num_attention_heads ${heads} is not a multiple of ${kv}`);
  return {
    hidden_size_q: r.int('hidden_size_q'),
    hidden_size_kv: r.int('hidden_size_kv'),
    hidden_size: hidden,
    num_attention_heads: heads,
    attention_num_kv_heads: kv,
    word_window_size: r.int('word_window_size', { min: 0, def: 0 }),
    key_query_norm: r.bool('key_query_norm', false),
    key_query_norm_per_head: r.bool('key_query_norm_per_head', false),
  };
}

function expectEq(path: string, got: number, want: number, why: string): void {
  if (got !== want) throw new HATConfigError(path, `must equal ${want} (${why}), got ${got}`);
}

/**
 * Parses and validates a `config.json` object. Throws HATConfigError naming the field (and the
 * file, when given) on the first problem. Unknown extra fields are ignored.
 */
export function parseHATConfig(json: unknown, file?: string): HATConfig {
  try {
    if (!isObj(json)) throw new HATConfigError('', `the config must be a JSON object, got ${show(json)}`);
    const r = new Reader(json, '');
    const modelType = r.str('model_type', HAT_MODEL_TYPE);
    if (modelType !== HAT_MODEL_TYPE) throw new HATConfigError('model_type', `must be "${HAT_MODEL_TYPE}", got ${show(modelType)}`);
    const maxPos = r.int('max_position_embeddings', { def: 262144 });
    const enc = r.obj('encoder_config');
    const dec = r.obj('decoder_config');
    const encoder: EncoderHATModelConfig = { ...parseTransformer(enc, { maxPos }), cross_attention_config: parseCross(enc.obj('cross_attention_config')) };
    const backbone = parseTransformer(r.obj('backbone_config'), { maxPos });
    const decoder: DecoderHATModelConfig = {
      ...parseTransformer(dec, { maxPos }),
      cross_attn_every_layer: dec.bool('cross_attn_every_layer'),
      cross_attention_config: parseCross(dec.obj('cross_attention_config')),
    };
    expectEq('encoder_config.vocab_size', encoder.vocab_size, 256, 'one embedding per byte value');
    expectEq('decoder_config.vocab_size', decoder.vocab_size, 256, 'one logit per byte value');
    expectEq('backbone_config.vocab_size', backbone.vocab_size, 0, 'the backbone has no embedding table');
    expectEq('decoder_config.hidden_size', decoder.hidden_size, encoder.hidden_size, 'the decoder runs on the encoder activations: encoder_config.hidden_size');
    const ec = encoder.cross_attention_config;
    const dc = decoder.cross_attention_config;
    expectEq('encoder_config.cross_attention_config.hidden_size_q', ec.hidden_size_q, backbone.hidden_size, 'backbone_config.hidden_size');
    expectEq('encoder_config.cross_attention_config.hidden_size_kv', ec.hidden_size_kv, encoder.hidden_size, 'encoder_config.hidden_size');
    expectEq('decoder_config.cross_attention_config.hidden_size_q', dc.hidden_size_q, decoder.hidden_size, 'decoder_config.hidden_size');
    expectEq('decoder_config.cross_attention_config.hidden_size_kv', dc.hidden_size_kv, backbone.hidden_size, 'backbone_config.hidden_size');
    // the reference rotates the cross-attention heads with the module's own rotary embedding
    expectEq('encoder_config.cross_attention_config.hidden_size', ec.hidden_size / ec.num_attention_heads, encoder.hidden_size / encoder.num_attention_heads, 'cross-attention head size = encoder head size, as the reference rotary embedding requires; value shown is hidden_size / num_attention_heads');
    expectEq('decoder_config.cross_attention_config.hidden_size', dc.hidden_size / dc.num_attention_heads, decoder.hidden_size / decoder.num_attention_heads, 'cross-attention head size = decoder head size, as the reference rotary embedding requires; value shown is hidden_size / num_attention_heads');
    const eos = r.int('eos_token_id', { min: 0, max: 255, def: 192 });
    const stdRaw = json.special_token_dict;
    let special: Record<string, number> = { '<|eot_id|>': 192 };
    if (stdRaw !== undefined && stdRaw !== null) {
      if (!isObj(stdRaw)) throw new HATConfigError('special_token_dict', `must be an object {string: byte}, got ${show(stdRaw)}`);
      special = {};
      for (const [k, v] of Object.entries(stdRaw)) {
        if (k === '') throw new HATConfigError('special_token_dict', 'has an empty token string');
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) throw new HATConfigError(`special_token_dict.${k}`, `must be a byte value 0..255, got ${show(v)}`);
        special[k] = v;
      }
    }
    const archRaw = json.architectures;
    const architectures = Array.isArray(archRaw) && archRaw.every((a) => typeof a === 'string') ? (archRaw as string[]) : ['HATDecoderForCausalLM'];
    const autoRaw = json.auto_map;
    const autoMap = isObj(autoRaw) && Object.values(autoRaw).every((v) => typeof v === 'string') ? (autoRaw as Record<string, string>) : { ...AUTO_MAP };
    return {
      encoder_config: encoder,
      backbone_config: backbone,
      decoder_config: decoder,
      model_type: modelType,
      transformers_version: r.str('transformers_version', TRANSFORMERS_VERSION),
      auto_map: autoMap,
      special_token_dict: special,
      eos_token_id: eos,
      max_word_size: r.int('max_word_size', { def: 100 }),
      sliding_window: r.int('sliding_window', { def: 768 }),
      max_position_embeddings: maxPos,
      torch_dtype: r.str('torch_dtype', 'bfloat16'),
      architectures,
    };
  } catch (e) {
    if (e instanceof HATConfigError && file !== undefined) throw new HATConfigError(e.path, e.detail, file);
    throw e;
  }
}

/** The RoPE scaling of a module config in src/nn form. */
export function ropeScalingOf(c: TransformerHATModelConfig): RopeScaling | null {
  return ropeScalingFromHF(c.rope_scaling);
}

// ---- presets ---------------------------------------------------------------------------------

export interface PresetSizes {
  /** encoder and decoder width (they must be equal) */
  byteHidden: number;
  byteHeads: number;
  byteKvHeads: number;
  byteIntermediate: number;
  encoderLayers: number;
  decoderLayers: number;
  backboneHidden: number;
  backboneHeads: number;
  backboneKvHeads: number;
  backboneIntermediate: number;
  backboneLayers: number;
  /** encoder/decoder sliding window in bytes */
  slidingWindow: number;
  ropeTheta?: number;
  backboneRopeTheta?: number;
  rmsNormEps?: number;
}

/** A full config from a handful of sizes (cross-attention width = byte width, as head sizes must match). */
export function makeHATConfig(s: PresetSizes): HATConfig {
  const eps = s.rmsNormEps ?? 1e-5;
  const module = (hidden: number, heads: number, kv: number, ffn: number, layers: number, vocab: number, window: number | null, theta: number): TransformerHATModelConfig => ({
    vocab_size: vocab,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    rms_norm_eps: eps,
    intermediate_size: ffn,
    max_position_embeddings: 262144,
    rope_scaling: null,
    rope_theta: theta,
    mlp_bias: false,
    use_cache: true,
    sliding_window: window,
    key_query_norm: false,
    key_query_norm_per_head: false,
    is_neox_style: true,
    transformers_version: TRANSFORMERS_VERSION,
  });
  const theta = s.ropeTheta ?? 10000;
  const cross = (q: number, kv: number): CrossAttentionConfig => ({
    hidden_size_q: q,
    hidden_size_kv: kv,
    hidden_size: s.byteHidden,
    num_attention_heads: s.byteHeads,
    attention_num_kv_heads: s.byteKvHeads,
    word_window_size: 0,
    key_query_norm: false,
    key_query_norm_per_head: false,
  });
  const cfg: HATConfig = {
    encoder_config: {
      ...module(s.byteHidden, s.byteHeads, s.byteKvHeads, s.byteIntermediate, s.encoderLayers, 256, s.slidingWindow, theta),
      cross_attention_config: cross(s.backboneHidden, s.byteHidden),
    },
    backbone_config: module(s.backboneHidden, s.backboneHeads, s.backboneKvHeads, s.backboneIntermediate, s.backboneLayers, 0, null, s.backboneRopeTheta ?? theta),
    decoder_config: {
      ...module(s.byteHidden, s.byteHeads, s.byteKvHeads, s.byteIntermediate, s.decoderLayers, 256, s.slidingWindow, theta),
      cross_attn_every_layer: true,
      cross_attention_config: cross(s.byteHidden, s.backboneHidden),
    },
    model_type: HAT_MODEL_TYPE,
    transformers_version: TRANSFORMERS_VERSION,
    auto_map: { ...AUTO_MAP },
    special_token_dict: { '<|eot_id|>': 192 },
    eos_token_id: 192,
    max_word_size: 100,
    sliding_window: s.slidingWindow,
    max_position_embeddings: 262144,
    torch_dtype: 'float32',
    architectures: ['HATDecoderForCausalLM'],
  };
  return parseHATConfig(cfg); // validates
}

export const PRESETS = {
  /** about 2.5M parameters: trains in minutes on 2 cores */
  tiny: {
    byteHidden: 128,
    byteHeads: 4,
    byteKvHeads: 4,
    byteIntermediate: 352,
    encoderLayers: 1,
    decoderLayers: 2,
    backboneHidden: 256,
    backboneHeads: 4,
    backboneKvHeads: 4,
    backboneIntermediate: 704,
    backboneLayers: 2,
    slidingWindow: 256,
  },
  /** about 31M parameters */
  small: {
    byteHidden: 256,
    byteHeads: 4,
    byteKvHeads: 4,
    byteIntermediate: 704,
    encoderLayers: 2,
    decoderLayers: 3,
    backboneHidden: 512,
    backboneHeads: 8,
    backboneKvHeads: 8,
    backboneIntermediate: 1408,
    backboneLayers: 8,
    slidingWindow: 768,
  },
} as const satisfies Record<string, PresetSizes>;

export type PresetName = keyof typeof PRESETS;

/** The config of a named preset (`tiny`, `small`). */
export function presetConfig(name: string): HATConfig {
  if (!Object.prototype.hasOwnProperty.call(PRESETS, name)) {
    throw new HATConfigError('', `unknown preset "${name}" (known: ${Object.keys(PRESETS).join(', ')})`);
  }
  return makeHATConfig(PRESETS[name as PresetName]);
}

// ---- config.json -----------------------------------------------------------------------------

/** The `config.json` object in the reference key order. */
export function hatConfigToJSON(cfg: HATConfig): Obj {
  const module = (c: TransformerHATModelConfig): Obj => ({
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    rms_norm_eps: c.rms_norm_eps,
    intermediate_size: c.intermediate_size,
    max_position_embeddings: c.max_position_embeddings,
    rope_scaling: c.rope_scaling,
    rope_theta: c.rope_theta,
    mlp_bias: c.mlp_bias,
    use_cache: c.use_cache,
    sliding_window: c.sliding_window,
    transformers_version: c.transformers_version ?? TRANSFORMERS_VERSION,
    key_query_norm: c.key_query_norm,
    key_query_norm_per_head: c.key_query_norm_per_head,
    is_neox_style: c.is_neox_style,
  });
  const cross = (c: CrossAttentionConfig): Obj => ({
    hidden_size_q: c.hidden_size_q,
    hidden_size_kv: c.hidden_size_kv,
    hidden_size: c.hidden_size,
    num_attention_heads: c.num_attention_heads,
    attention_num_kv_heads: c.attention_num_kv_heads,
    word_window_size: c.word_window_size,
    key_query_norm: c.key_query_norm,
    key_query_norm_per_head: c.key_query_norm_per_head,
  });
  return {
    encoder_config: { ...module(cfg.encoder_config), cross_attention_config: cross(cfg.encoder_config.cross_attention_config) },
    backbone_config: module(cfg.backbone_config),
    decoder_config: {
      ...module(cfg.decoder_config),
      cross_attn_every_layer: cfg.decoder_config.cross_attn_every_layer,
      cross_attention_config: cross(cfg.decoder_config.cross_attention_config),
    },
    model_type: cfg.model_type,
    transformers_version: cfg.transformers_version,
    auto_map: cfg.auto_map,
    special_token_dict: cfg.special_token_dict,
    eos_token_id: cfg.eos_token_id,
    max_word_size: cfg.max_word_size,
    sliding_window: cfg.sliding_window,
    max_position_embeddings: cfg.max_position_embeddings,
    torch_dtype: cfg.torch_dtype,
    architectures: cfg.architectures,
  };
}

/** Writes `<dir>/config.json` atomically (temp file + rename). */
export function writeHATConfig(dir: string, cfg: HATConfig): string {
  fs.mkdirSync(dir, { recursive: true });
  return writeHATConfigFile(nodePath.join(dir, 'config.json'), cfg);
}

/** Writes a HAT config.json to `path` atomically (e.g. a part of a staged output, src/io/staged.ts). */
export function writeHATConfigFile(path: string, cfg: HATConfig): string {
  writeFileAtomic(path, `${JSON.stringify(hatConfigToJSON(cfg), null, 2)}\n`);
  return path;
}

/** Reads and validates `<dir>/config.json` (or a config file path). Errors name the file and field. */
export function readHATConfig(dirOrFile: string): HATConfig {
  let path = dirOrFile;
  try {
    if (fs.statSync(dirOrFile).isDirectory()) path = nodePath.join(dirOrFile, 'config.json');
  } catch {
    throw new HATConfigError('', 'no such file or folder', dirOrFile);
  }
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && path !== dirOrFile) throw new HATConfigError('', 'a folder without config.json (not a HAT checkpoint)', dirOrFile);
    throw new HATConfigError('', `cannot read: ${code ?? (e as Error).message}`, path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HATConfigError('', `is not valid JSON: ${(e as Error).message}`, path);
  }
  return parseHATConfig(json, path);
}
