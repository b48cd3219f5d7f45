/**
 * Hugging Face Llama `config.json` (LlamaConfig field names) and its mapping to `LlamaLMConfig`.
 *
 * `parseLlamaConfig` validates every field it uses and names the field (and the file) in its
 * error; fields it does not use are ignored, as transformers does. `llamaConfigToJson` writes the
 * config back in the HF layout (with `architectures: ["LlamaForCausalLM"]`).
 */
import { ropeScalingFromHF, type RopeScaling } from '../../nn/index.js';
import type { LlamaLMConfig } from './model.js';

/** The fields of a HF Llama config.json that this model reads (HF names). */
export interface LlamaConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** default num_attention_heads (multi-head attention) */
  num_key_value_heads: number;
  /** default hidden_size / num_attention_heads */
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** null, linear or llama3 scaling (HF dict, kept as given) */
  rope_scaling: Record<string, unknown> | null;
  tie_word_embeddings: boolean;
  max_position_embeddings: number;
  /** null when absent; HF allows a list of eos ids (Llama 3.1 instruct) */
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  attention_bias: boolean;
  mlp_bias: boolean;
  /** "silu" is the only activation implemented */
  hidden_act: 'silu';
}

/** A config error: says which field is wrong and where. */
export class LlamaConfigError extends Error {
  override readonly name = 'LlamaConfigError';
}

type Json = Record<string, unknown>;

function fail(where: string, field: string, msg: string): never {
  throw new LlamaConfigError(`${where}: field "${field}" ${msg}`);
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function posInt(o: Json, key: string, where: string, def?: number): number {
  const v = o[key];
  if (v === undefined || v === null) {
    if (def !== undefined) return def;
    fail(where, key, 'is missing (a positive integer is required)');
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(where, key, `must be a positive integer, got ${show(v)}`);
  return v;
}

function posNum(o: Json, key: string, where: string, def: number): number {
  const v = o[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(where, key, `must be a positive number, got ${show(v)}`);
  return v;
}

function bool(o: Json, key: string, where: string, def: boolean): boolean {
  const v = o[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') fail(where, key, `must be true or false, got ${show(v)}`);
  return v;
}

function tokenId(o: Json, key: string, where: string, vocab: number, list: boolean): number | number[] | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  const one = (x: unknown): number => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0 || x >= vocab) fail(where, key, `must be a token id in [0, ${vocab}), got ${show(v)}`);
    return x;
  };
  if (Array.isArray(v)) {
    if (!list || v.length === 0) fail(where, key, `must be ${list ? 'a token id or a non-empty list of ids' : 'a token id'}, got ${show(v)}`);
    return v.map(one);
  }
  return one(v);
}

/**
 * Validates a parsed config.json object. `where` names the source in errors (e.g. the file path).
 * Checks shapes (heads divide, GQA groups), rope scaling (via src/nn: default, linear, llama3) and
 * token ids, and rejects configs of other architectures (model_type other than "llama").
 */
export function parseLlamaConfig(json: unknown, where = 'config.json'): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new LlamaConfigError(`${where}: expected a JSON object, got ${show(json)}`);
  const o = json as Json;
  const mt = o.model_type;
  if (mt !== undefined && mt !== 'llama') fail(where, 'model_type', `is ${show(mt)}; only "llama" is supported`);
  const act = o.hidden_act ?? 'silu';
  if (act !== 'silu') fail(where, 'hidden_act', `is ${show(act)}; only "silu" (SwiGLU) is supported`);
  const vocab_size = posInt(o, 'vocab_size', where);
  const hidden_size = posInt(o, 'hidden_size', where);
  const intermediate_size = posInt(o, 'intermediate_size', where);
  const num_hidden_layers = posInt(o, 'num_hidden_layers', where);
  const num_attention_heads = posInt(o, 'num_attention_heads', where);
  const num_key_value_heads = posInt(o, 'num_key_value_heads', where, num_attention_heads);
  if (num_attention_heads % num_key_value_heads !== 0) {
    fail(where, 'num_key_value_heads', `(${num_key_value_heads}) must divide num_attention_heads (${num_attention_heads})`);
  }
  let head_dim: number;
  if (o.head_dim === undefined || o.head_dim === null) {
    if (hidden_size % num_attention_heads !== 0) {
      fail(where, 'hidden_size', `(${hidden_size}) is not divisible by num_attention_heads (${num_attention_heads}) and no head_dim is given`);
    }
    head_dim = hidden_size / num_attention_heads;
  } else head_dim = posInt(o, 'head_dim', where);
  if (head_dim % 2 !== 0) fail(where, 'head_dim', `must be even for rotary embeddings, got ${head_dim}`);
  const rms_norm_eps = posNum(o, 'rms_norm_eps', where, 1e-6);
  const rope_theta = posNum(o, 'rope_theta', where, 10000);
  const rs = o.rope_scaling ?? null;
  try {
    ropeScalingFromHF(rs);
  } catch (e) {
    fail(where, 'rope_scaling', `is invalid: ${(e as Error).message}`);
  }
  const max_position_embeddings = posInt(o, 'max_position_embeddings', where, 2048);
  const pretraining_tp = o.pretraining_tp;
  if (pretraining_tp !== undefined && pretraining_tp !== null && pretraining_tp !== 1) {
    fail(where, 'pretraining_tp', `is ${show(pretraining_tp)}; only 1 is supported`);
  }
  return {
    vocab_size,
    hidden_size,
    intermediate_size,
    num_hidden_layers,
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    rms_norm_eps,
    rope_theta,
    rope_scaling: rs === null ? null : { ...(rs as Json) },
    tie_word_embeddings: bool(o, 'tie_word_embeddings', where, false),
    max_position_embeddings,
    bos_token_id: tokenId(o, 'bos_token_id', where, vocab_size, false) as number | null,
    eos_token_id: tokenId(o, 'eos_token_id', where, vocab_size, true),
    attention_bias: bool(o, 'attention_bias', where, false),
    mlp_bias: bool(o, 'mlp_bias', where, false),
    hidden_act: 'silu',
  };
}

/** The model config of a HF config. */
export function lmConfigFromHF(c: LlamaConfig): LlamaLMConfig {
  const scaling: RopeScaling | null = ropeScalingFromHF(c.rope_scaling);
  return {
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads: c.num_key_value_heads,
    headDim: c.head_dim,
    ropeTheta: c.rope_theta,
    ropeScaling: scaling,
    rmsNormEps: c.rms_norm_eps,
    tieWordEmbeddings: c.tie_word_embeddings,
    attentionBias: c.attention_bias,
    mlpBias: c.mlp_bias,
    maxPositionEmbeddings: c.max_position_embeddings,
    bosTokenId: c.bos_token_id,
    eosTokenId: c.eos_token_id,
  };
}

function ropeScalingToHF(s: RopeScaling | null | undefined): Record<string, unknown> | null {
  if (s === null || s === undefined) return null;
  if (s.type === 'linear') return { rope_type: 'linear', factor: s.factor };
  return {
    rope_type: 'llama3',
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
}

/** The HF config of a model config (defaults filled in as the model uses them). */
export function hfConfigFromLM(cfg: LlamaLMConfig): LlamaConfig {
  if (cfg.window !== undefined && cfg.window !== 0) throw new LlamaConfigError('LlamaLMConfig.window (sliding attention) has no field in a HF Llama config');
  return {
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim ?? cfg.hiddenSize / cfg.numHeads,
    rms_norm_eps: cfg.rmsNormEps ?? 1e-5,
    rope_theta: cfg.ropeTheta ?? 10000,
    rope_scaling: ropeScalingToHF(cfg.ropeScaling),
    tie_word_embeddings: cfg.tieWordEmbeddings ?? false,
    max_position_embeddings: cfg.maxPositionEmbeddings ?? 2048,
    bos_token_id: cfg.bosTokenId ?? null,
    eos_token_id: cfg.eosTokenId ?? null,
    attention_bias: cfg.attentionBias ?? false,
    mlp_bias: cfg.mlpBias ?? false,
    hidden_act: 'silu',
  };
}

/** config.json text for a HF config (LlamaForCausalLM, stable key order). */
export function llamaConfigToJson(c: LlamaConfig, torchDtype: 'float32' | 'bfloat16' | 'float16' = 'float32'): string {
  const out = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    ...c,
    attention_dropout: 0,
    pretraining_tp: 1,
    torch_dtype: torchDtype,
    use_cache: true,
  };
  return JSON.stringify(out, null, 2) + '\n';
}
