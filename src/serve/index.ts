/**
 * `tfree/serve`: the HTTP server behind `tfree serve` (OpenAI-compatible completions and chat,
 * word splits, per-byte scores, base-vs-quantized comparison, BoxTE queries, the web playground),
 * and the operations it runs, usable without HTTP. See docs/serve.md.
 */
export { TfreeServer, type ServerOptions, type ServeModels } from './server.js';
export { split, score, generateText, compare, kgQuery, kgMeta, checkGenerationParams, OpsError, type WordSpan, type ScoreResult, type GenerationParams, type Generation, type GenerationOutput, type CompareResult, type KgModel, type KgMeta, type KgQuery, type KgAnswer } from './ops.js';
export { DEFAULT_LIMITS, type Limits } from './openai.js';
