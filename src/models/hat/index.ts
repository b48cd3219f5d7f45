/**
 * `tfree/hat`: the Hierarchical Autoregressive Transformer (byte encoder, word backbone, byte
 * decoder): config, model, checkpoints, the word splitter, generation and scoring. See docs/hat.md.
 */
export {
  HATConfigError,
  HAT_MODEL_TYPE,
  PRESETS,
  parseHATConfig,
  readHATConfig,
  writeHATConfig,
  writeHATConfigFile,
  hatConfigToJSON,
  makeHATConfig,
  presetConfig,
  type HATConfig,
  type TransformerHATModelConfig,
  type CrossAttentionConfig,
  type EncoderHATModelConfig,
  type DecoderHATModelConfig,
  type PresetSizes,
  type PresetName,
} from './config.js';
export { HATModel, batchFromWords, IGNORE_INDEX, type HATModelOptions, type ForwardOptions, type HATBatch, type WordRow } from './model.js';
export { HATCheckpointError, loadHATModel, saveHATModel, modelFromCheckpoint, type SaveOptions } from './checkpoint.js';
export { Sampler, argmax, type SamplingOptions } from './sampling.js';
export { generate, generateSteps, HATDecodingState, type GenerateOptions, type GenerateResult, type StopReason, type WordSplitter } from './generate.js';
export { scoreContinuation, scoreContinuations, evaluateText, type ContinuationScore, type TextEvalOptions, type TextEvalResult } from './score.js';
export {
  HatSplitter,
  WordStream,
  ChunkedSplitter,
  splitText,
  splitBytes,
  splitBytesOffsets,
  appendByte,
  isWordComplete,
  DEFAULT_MAX_WORD_SIZE,
  DEFAULT_SPECIAL_TOKENS,
  UNICODE_VERSION,
  type HatSplitterOptions,
  type DecodeOptions,
  type SplitOptions,
  type AppendByteOptions,
  type AppendByteResult,
} from './splitter.js';
export { hatBatch, hatTrainable } from './train.js';
export * from './synth.js';
export * from './chat.js';
