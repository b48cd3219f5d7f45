/**
 * Calibration for Wanda on a checkpoint folder: builds the model its config.json describes (the
 * model types this layer can construct: `llama`, the Llama-style LM of src/models/llama, and
 * `hierarchical_autoregressive_transformer`, HAT), feeds calibration text through it and returns
 * every Linear's input-feature L2 norms.
 *
 * Llama: text becomes token ids byte by byte (id = byte mod vocab size), a stand-in for token-level
 * models (documented; a tokenizer is another issue). HAT: the text is split into words by the
 * model's own splitter and run in chunks of `seqLen` bytes (default 512), as `tfree eval text`
 * does; every Linear (byte encoder, word backbone, decoder) sees its own inputs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../io/index.js';
import { ParamStore, VarBuilder, init } from '../nn/index.js';
import { LlamaLM, type LlamaLMConfig } from '../models/llama/model.js';
import { HAT_MODEL_TYPE, HATConfigError } from '../models/hat/config.js';
import { HATCheckpointError, loadHATModel } from '../models/hat/checkpoint.js';
import { evaluateText } from '../models/hat/score.js';
import type { HATModel } from '../models/hat/model.js';
import { HatSplitter } from '../models/hat/splitter.js';
import { checkpointDir } from './convert.js';
import { collectInputNorms } from './prune.js';
import type { NameFilter } from './modules.js';

/** Thrown when the checkpoint's model type cannot be built here. */
export class CalibrationError extends Error {
  override readonly name = 'CalibrationError';
}

function intField(cfg: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new CalibrationError(`${file}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** LlamaLMConfig from a Hugging Face style config.json object. */
export function llamaConfigFromJson(cfg: Record<string, unknown>, file = 'config.json'): LlamaLMConfig {
  const heads = intField(cfg, 'num_attention_heads', file);
  return {
    vocabSize: intField(cfg, 'vocab_size', file),
    hiddenSize: intField(cfg, 'hidden_size', file),
    intermediateSize: intField(cfg, 'intermediate_size', file),
    numLayers: intField(cfg, 'num_hidden_layers', file),
    numHeads: heads,
    numKvHeads: intField(cfg, 'num_key_value_heads', file, heads),
    ropeTheta: typeof cfg.rope_theta === 'number' ? cfg.rope_theta : undefined,
    rmsNormEps: typeof cfg.rms_norm_eps === 'number' ? cfg.rms_norm_eps : undefined,
  };
}

export interface CalibrationOptions extends NameFilter {
  /** tokens of calibration text to run (default 2048) */
  tokens?: number;
  /** sequence length per forward pass (default 128 tokens for llama, 512 bytes for HAT) */
  seqLen?: number;
}

/** Input norms per Linear weight of the checkpoint's model on the calibration text. */
export function calibrateCheckpoint(inPath: string, text: Uint8Array, opts: CalibrationOptions = {}): Map<string, Float32Array> {
  const dir = checkpointDir(inPath);
  const cfgFile = join(dir, 'config.json');
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CalibrationError(`Wanda needs the model's config: cannot read ${cfgFile}: ${(e as Error).message}`);
  }
  const type = cfg.model_type;
  if (text.length < 2) throw new CalibrationError('calibration text is empty');
  if (type === HAT_MODEL_TYPE) return calibrateHAT(dir, text, opts);
  if (type !== 'llama') {
    throw new CalibrationError(`${cfgFile}: Wanda calibration can build model_type "llama" or "${HAT_MODEL_TYPE}", this checkpoint has ${JSON.stringify(type)} (use --method magnitude)`);
  }
  const mc = llamaConfigFromJson(cfg, cfgFile);
  const ckpt = openCheckpoint(inPath);
  try {
    const store = new ParamStore();
    const model = new LlamaLM(new VarBuilder(store, { defaultInit: init.normal(0.02), source: (n) => (ckpt.has(n) ? ckpt.readAs(n, 'f32') : undefined) }), mc);
    const T = opts.seqLen ?? 128;
    const total = Math.min(opts.tokens ?? 2048, text.length);
    return collectInputNorms(
      model,
      () => {
        for (let s = 0; s < total; s += T) {
          const n = Math.min(T, total - s);
          const ids = new Int32Array(n);
          for (let i = 0; i < n; i++) ids[i] = text[s + i] % mc.vocabSize;
          model.forward(ids, 1, n);
        }
      },
      opts,
    );
  } finally {
    ckpt.close();
  }
}

function calibrateHAT(dir: string, text: Uint8Array, opts: CalibrationOptions): Map<string, Float32Array> {
  let model: HATModel;
  try {
    model = loadHATModel(dir);
  } catch (e) {
    if (e instanceof HATConfigError || e instanceof HATCheckpointError) throw new CalibrationError(`Wanda needs the model: ${e.message}`);
    throw e;
  }
  const splitter = new HatSplitter({ maxWordSize: model.config.max_word_size, specialTokens: model.config.special_token_dict });
  const bytes = text.subarray(0, Math.min(opts.tokens ?? 2048, text.length));
  const doc = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  return collectInputNorms(model, () => void evaluateText(model, splitter, [doc], { contextBytes: opts.seqLen ?? 512, batchSize: 1 }), opts);
}
