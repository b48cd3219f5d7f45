/**
 * `tfree/convert`: Llama -> HAT conversion (the backbone takes the Llama's transformer blocks;
 * new byte encoder / decoder) and staged training runs around it. See docs/conversion.md.
 */
export { convertLlamaToHAT, hatConfigFromLlama, byteModuleSizes, ConversionError, type ConvertOptions, type Conversion, type ByteModuleSizes } from './llama_to_hat.js';
export { runStages, stageDir, type Stage, type StagedInit, type StageResult } from './staged.js';
export {
  exportLlamaGguf,
  planLlamaGguf,
  llamaGgufTensors,
  ggufTokenizerFromHF,
  checkGgufOutput,
  permuteQkForGguf,
  unpermuteQkFromGguf,
  GgufExportError,
  GGUF_EXPORT_TYPES,
  type GgufExportType,
  type LlamaTensorSource,
  type GgufTokenizer,
  type LlamaGgufOptions,
  type LlamaGgufPlan,
  type ExportGgufOptions,
  type ExportGgufResult,
} from './llama_gguf.js';
