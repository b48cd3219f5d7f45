/**
 * `tfree/compress`: weight formats and quantizers (int / k-means / 1-bit / ternary, the
 * 1-Bit-Wonder rules), packed checkpoints, packed Linear layers, QAT, pruning (magnitude, Wanda)
 * and checkpoint-to-checkpoint conversions (`tfree quantize` / `tfree prune`). See docs/api.md.
 */
export {
  FORMAT_NAMES,
  FORMAT_RULES,
  SCALE_EPS,
  FormatError,
  parseFormat,
  formatSize,
  formatNameForRules,
  blockFor,
  fitBlock,
  intQmax,
  fixedLevels,
  type FormatKind,
  type ScaleMode,
  type ScaleDtype,
  type QuantFormat,
  type FormatOptions,
  type SizeReport,
} from './format.js';
export { kmeans1d, kmeans1dOf, partialShuffle, type KMeansOptions, type KMeansResult } from './kmeans.js';
export {
  quantizeMatrix,
  readWeightBuffer,
  quantizeCodes,
  dequantize,
  dequantizeCodes,
  fakeQuantize,
  packCodes,
  unpackCodes,
  packedBytes,
  type PackedMatrix,
  type QuantizeOptions,
  type Codes,
} from './quantize.js';
export { findLinears, DEFAULT_EXCLUDE, type LinearSite, type NameFilter } from './modules.js';
export { PackedLinear, activationPrecision, setPackedAct, setPackedLut, defaultPackedAct, defaultPackedLut, forEachPackedLinear, type PackedAct } from './packed_linear.js';
export {
  QUANT_META_PREFIX,
  PackedCheckpointError,
  writePackedCheckpoint,
  readPackedCheckpoint,
  loadPackedModel,
  quantizeModel,
  dequantizeAll,
  type QuantizeModelOptions,
} from './checkpoint.js';
export { magnitudeMask, wandaMask, collectInputNorms, pruneModel, PruneMasks, type PruneOptions } from './prune.js';
export { enableQat, fakeQuantSTE, QatHandle, type QatOptions, type QatState } from './qat.js';
export { qatTrainable, writeQatPacked, writeQatPackedJob } from './qat_hat.js';
export {
  quantizeCheckpoint,
  quantizeCheckpointJob,
  pruneCheckpointJob,
  pruneCheckpoint,
  checkSelection,
  ConvertError,
  reportBitsPerWeight,
  blockNote,
  describeReducedBlocks,
  type ConvertReport,
  type TensorReport,
  type ConvertOptions,
  type QuantizeCheckpointOptions,
} from './convert.js';
export { calibrateCheckpoint, CalibrationError, type CalibrationOptions } from './calibrate.js';
export { loadHATLazy, loadPackedHATModel, isPackedModelDir, checkHATCheckpoint, LOAD_KMEANS_SAMPLES, type LazyLoadOptions, type LazyLoadStats } from './hat_load.js';
export {
  OneBitWonderError,
  ONE_BIT_WONDER_QUANT_FILE,
  isOneBitWonderDir,
  readOneBitWonderConfig,
  loadOneBitWonder,
  type RelativeScale,
  type OneBitWonderQuantConfig,
  type LoadedOneBitWonder,
} from './onebitwonder.js';
