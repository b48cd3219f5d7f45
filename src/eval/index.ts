/**
 * `tfree/eval`: Divergent Token Metrics (FDT / SDT against the base model's greedy
 * continuations) for HAT and token-level models, per-component compression sweeps, FDT-guided
 * sparsity / precision plans, quantized-vs-base comparison, FLOPs per byte, and the reports.
 * See docs/eval.md.
 */
export { divergence, wordDivergence, meanKl, percentile, summarize, textLevelDivergence, type Divergence, type DtmSummary } from './dtm.js';
export {
  DtmEvaluator,
  parsePrompts,
  buildReferences,
  makeReference,
  greedyContinuation,
  teacherForced,
  type Reference,
  type ReferenceOptions,
  type TeacherForced,
  type DtmOptions,
  type DtmReport,
  type HeldOutScore,
} from './hat_dtm.js';
export { TokenDtmEvaluator, buildTokenReferences, tokenTeacherForced, type TokenReference, type TokenDtmReport } from './token_dtm.js';
export { listComponents, componentLabel, componentFormat, componentBits, applyCompression, blockFor, type Component, type ComponentCompression } from './components.js';
export {
  runSweep,
  scoreCompressed,
  parseLevel,
  levelsForTargets,
  planInputsProblem,
  sparsityPlan,
  precisionPlan,
  GUIDES,
  type LevelSpec,
  type Score,
  type SweepRow,
  type SweepComponent,
  type SweepResult,
  type SweepOptions,
  type Guide,
  type PlanFile,
} from './sweep.js';
export { PlanError, fdtSparsityPlan, fdtPrecisionPlan, uniformSparsityPlan, type SparsityPlan, type SparsityPlanOptions, type PrecisionPlan, type SparsityComponent, type PrecisionComponent, type SparsityPoint, type FormatOption } from './plan.js';
export { compareQuantized, compareTable, quantizeAllInMemory, DEMO_PROMPTS, DEMO_TEXT, type CompareRow, type CompareOptions } from './compare.js';
export { hatFlopsPerByte, llamaFlopsPerByte, type FlopsBreakdown } from './flops.js';
export { perturb, PERTURBATIONS, TextEditor, type Perturbation } from './perturb.js';
export { writeDtmReport, writeSweepReport, writePlanReport, sweepMarkdown, planTable } from './report.js';
export { parseKgTrainLog, kgCurvesSvg, writeKgCurves, KgLogError, type KgTrainLog, type KgEpochRecord, type KgValidRecord, type KgCurveOptions } from './kg_curves.js';
