/**
 * `tfree/boxte`: BoxTE temporal knowledge-graph completion: the model, training (with resumable
 * checkpoints), filtered-rank evaluation (MRR, Hits@k). See docs/boxte.md.
 */
export { BoxTE, defaultConfig, validateConfig, paramCount, boxDistance, type BoxTEConfig, type Boxes } from './model.js';
export { filteredRank, filteredRanks, metricsFromRanks, evaluateSplit, subsample, type RankMetrics, KnownFacts, type RankOptions } from './eval.js';
export {
  Trainer,
  defaultTrainOptions,
  vocabOf,
  sampleNegatives,
  modelMetadata,
  parseModelMetadata,
  checkVocab,
  loadModel,
  FORMAT,
  type TrainOptions,
  type KgVocab,
  type TrainState,
  type EpochResult,
} from './train.js';
export { boxKernels, type BoxKernels } from './ops.js';
