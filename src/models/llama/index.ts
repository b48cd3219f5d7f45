/**
 * `tfree/llama`: the token-level Llama baseline (Hugging Face `LlamaForCausalLM` names and
 * config.json), checkpoints, KV-cache generation, token data, and tokenizers (HF tokenizer.json,
 * byte-level BPE training). See docs/llama.md and docs/tokenizers.md.
 */
export { LlamaLM, nextTokenLoss, tokenBatch, type LlamaLMConfig, type LlamaForwardOptions, type TokenBatch } from './model.js';
export { LlamaConfigError, parseLlamaConfig, lmConfigFromHF, hfConfigFromLM, llamaConfigToJson, type LlamaConfig } from './config.js';
export { LlamaCheckpointError, readLlamaConfig, loadLlama, saveLlama, type LoadedLlama, type SaveLlamaOptions } from './checkpoint.js';
export { generate, sampleToken, argmax, type SamplingOptions, type GenerateOptions, type GenerateResult } from './generate.js';
export { tokenBatchFromPacked, perByteLoss, llamaTrainable, evaluateTokenText, scoreTokenContinuations, TokenPieces, type PackedTokens, type WordEncoder, type TokenTextEvalResult } from './token_data.js';
export {
  TokenizerError,
  HFTokenizer,
  loadTokenizer,
  trainBpe,
  bpeTokenizerJson,
  saveBpeTokenizer,
  gpt2Pieces,
  GPT2_PATTERN,
  type TextTokenizer,
  type EncodeOptions,
  type DecodeOptions,
  type BpeTrainOptions,
  type BpeTrainResult,
} from './tokenizer/index.js';
