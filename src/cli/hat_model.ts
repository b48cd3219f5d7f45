/**
 * Loading a HAT model (and its splitter) for CLI commands: `--model DIR`, or the bundled
 * default model at `models/default/` of the package; config and checkpoint errors become
 * one-line UserErrors.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from './errors.js';
import { Progress } from './progress.js';
import { checkInputPath } from './resources.js';
import type { ParsedArgs } from './args.js';
import { HATConfigError } from '../models/hat/config.js';
import { HATCheckpointError } from '../models/hat/checkpoint.js';
import { HATModel } from '../models/hat/model.js';
import type { ParamStore } from '../nn/index.js';
import type { HATConfig } from '../models/hat/config.js';
import { HatSplitter, INVALID_UTF8_RULES, type InvalidUtf8Rule } from '../models/hat/splitter.js';
import { SafetensorsError } from '../io/index.js';
import { FormatError, PackedCheckpointError, describeReducedBlocks, isPackedModelDir, loadHATLazy, loadPackedHATModel, parseFormat, type QuantFormat } from '../compress/index.js';

/** `models/default/` of the package (this file is dist/src/cli/hat_model.js). */
export function defaultModelDir(): string {
  return fileURLToPath(new URL('../../../models/default/', import.meta.url));
}

export interface LoadedHAT {
  dir: string;
  model: HATModel;
  splitter: HatSplitter;
}

/** The `--quantize` option of the commands that load a HAT model (generate, chat, serve, eval). */
export const QUANTIZE_OPTION = {
  type: 'string',
  help: 'quantize the Linear weights tensor by tensor while loading: int8, int4, kmeans4, bin1, ... (lm_head stays f32); BF16 weights otherwise stay bf16',
  meta: 'FORMAT',
} as const;

/** The `--quantize-block` option (weights per scale block of `--quantize`). */
export const QUANTIZE_BLOCK_OPTION = { type: 'int', help: 'weights per scale block of --quantize (where it does not divide a row length, that weight gets the largest power-of-two block below it that does)', default: 64, meta: 'N', min: 1, max: 1 << 16 } as const;

/**
 * The quantization format of the `--quantize` flag (undefined when not given) with its
 * `--quantize-block`; a `--quantize-block` without `--quantize` is refused (it would be ignored).
 */
export function quantizeOption(a: ParsedArgs): QuantFormat | undefined {
  const v = a.options.quantize;
  if (v === undefined || v === '' || v === false) {
    if (a.given?.has('quantize-block') === true) throw new UserError('--quantize-block is the block of --quantize; give --quantize FORMAT too, or leave --quantize-block out');
    return undefined;
  }
  try {
    return parseFormat(String(v), { blockSize: Number(a.options['quantize-block'] ?? 64) });
  } catch (e) {
    if (e instanceof FormatError) throw new UserError(`--quantize: ${e.message}`);
    throw e;
  }
}

/** The `--invalid-utf8` option of the generating commands (generate, chat). */
export const INVALID_UTF8_OPTION = {
  type: 'string',
  help: 'word-end rule when the model emits invalid UTF-8: reference (the byte stays in the word, up to max_word_size) or resplit',
  default: 'reference',
  meta: 'RULE',
} as const;

/** The rule of an `--invalid-utf8` value. */
export function invalidUtf8Option(v: string | number | boolean | undefined): InvalidUtf8Rule {
  const s = v === undefined ? 'reference' : String(v);
  if (!(INVALID_UTF8_RULES as readonly string[]).includes(s)) throw new UserError(`--invalid-utf8 must be ${INVALID_UTF8_RULES.join(' or ')}, got "${s}"`);
  return s as InvalidUtf8Rule;
}

export interface LoadHATCliOptions {
  /** the splitter's word-end rule for invalid UTF-8 (default 'reference') */
  invalidUtf8?: InvalidUtf8Rule;
  /** quantize on load (`--quantize`) */
  quantize?: QuantFormat;
  /** progress of the tensor reads */
  onProgress?: (done: number, total: number, name: string) => void;
  /**
   * every Linear weight as an f32 `Linear` (BF16 ones widened), for the commands that compress
   * the weights in memory (`eval sweep`, `eval plan`); a packed checkpoint is then refused
   */
  f32?: boolean;
  /**
   * the end of the refusal of a model too large for memory: what this command can do instead
   * (default: F32_MEMORY_HINT with `f32`, else load it quantized with --quantize)
   */
  memoryHint?: string;
}

/** The memory refusal's advice for `eval sweep` / `eval plan` (`f32`), which take no --quantize. */
export const F32_MEMORY_HINT =
  'eval sweep and eval plan widen every Linear weight to f32 (4 bytes per weight, twice bf16) to compress it in memory, and take no --quantize; run them on a machine with that much memory, or compress with tfree quantize / tfree prune --out DIR and score each result against its base with tfree eval dtm --compressed DIR (the base loads as stored: bf16 stays bf16)';

/**
 * TFREE_TEST_MEMORY_LIMIT=BYTES (tests only): the memory the lazy loader checks a model against,
 * instead of the machine's, so a test can see a command's refusal of a model too large for memory.
 */
function testMemoryLimit(): number | undefined {
  const v = Number(process.env.TFREE_TEST_MEMORY_LIMIT ?? 0);
  return v > 0 ? v : undefined;
}

/**
 * The model of `--model DIR` (or the bundled default) with the splitter its config describes.
 * Plain checkpoints load tensor by tensor (bf16 Linear weights stay bf16; `quantize` packs them
 * on load); packed checkpoints load their packed layers.
 */
export function loadHATForCli(dirOpt: string | number | boolean | undefined, opts: LoadHATCliOptions = {}): LoadedHAT {
  let dir: string;
  if (dirOpt === undefined || dirOpt === '' || typeof dirOpt !== 'string') {
    dir = defaultModelDir();
    if (!fs.existsSync(`${dir}/config.json`)) {
      throw new UserError(`no --model given and the bundled default model is missing (${dir}); pass --model DIR (a folder with config.json and model.safetensors)`);
    }
  } else dir = dirOpt;
  checkInputPath(dir, '--model', 'dir');
  let model: HATModel;
  try {
    if (isPackedModelDir(dir)) {
      if (opts.quantize !== undefined) throw new UserError(`--quantize: ${dir} is already a packed (quantized) checkpoint`);
      if (opts.f32 === true) throw new UserError(`--model ${dir}: a packed (quantized) checkpoint; this command compresses the f32 weights of a plain checkpoint`);
      model = loadPackedHATModel(dir);
      checkFinite(model.store, dir); // the plain tensors of a packed checkpoint (the lazy loader checks the others as it reads)
    } else {
      // a progress bar on stderr for checkpoints above 1 GB
      let bar: Progress | undefined;
      const onProgress = opts.onProgress ?? ((done: number, total: number): void => {
        if (total < 1e9) return;
        bar ??= new Progress({ total: Math.ceil(total / 1e6), label: `loading ${dir}${opts.quantize !== undefined ? ` as ${opts.quantize.name}` : ''} (MB)` });
        bar.update(Math.floor(done / 1e6));
      });
      const loaded = loadHATLazy(dir, { quantize: opts.quantize, keepBf16: opts.f32 !== true, onProgress, memoryLimit: testMemoryLimit(), memoryHint: opts.memoryHint ?? (opts.f32 === true ? F32_MEMORY_HINT : undefined) });
      model = loaded.model;
      bar?.finish();
      const q = opts.quantize;
      const reduced = q === undefined ? null : describeReducedBlocks(loaded.stats.reducedBlocks.map((r) => ({ asked: q.blockSize, cols: r.cols, used: r.blockSize })), 'weight');
      if (q !== undefined && reduced !== null) process.stderr.write(`note: --quantize ${q.name}: ${reduced}\n`);
    }
  } catch (e) {
    if (e instanceof HATConfigError || e instanceof HATCheckpointError || e instanceof PackedCheckpointError || e instanceof SafetensorsError) throw new UserError(e.message);
    throw e;
  }
  const splitter = new HatSplitter({ maxWordSize: model.config.max_word_size, specialTokens: model.config.special_token_dict, invalidUtf8: opts.invalidUtf8 });
  return { dir, model, splitter };
}

/** Refuses a model with a NaN or infinite weight (one line naming the tensor): its results would be NaN. */
export function checkFinite(store: ParamStore, dir: string): void {
  const bad = store.firstNonFinite();
  if (bad !== undefined) throw new UserError(`${dir}: tensor "${bad.name}" holds ${bad.count} non-finite value${bad.count > 1 ? 's' : ''} (NaN or infinity) of ${bad.size}; the model is damaged`);
}

/**
 * How two HAT configs differ: `splitter` lists the fields that change how text becomes words
 * (a compressed model must split text exactly as its base), `other` the remaining fields except
 * the storage dtype (a compressed copy keeps the architecture; a difference means another model).
 */
export function configDifferences(a: HATConfig, b: HATConfig): { splitter: string[]; other: string[] } {
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y);
  const splitterKeys = ['max_word_size', 'special_token_dict', 'eos_token_id'] as const;
  const splitter = splitterKeys.filter((k) => !same(a[k], b[k]));
  const other: string[] = [];
  for (const k of Object.keys(a) as (keyof HATConfig)[]) {
    if (k === 'torch_dtype' || (splitterKeys as readonly string[]).includes(k)) continue;
    const av = a[k];
    const bv = b[k];
    if (typeof av === 'object' && av !== null && typeof bv === 'object' && bv !== null && !Array.isArray(av)) {
      for (const f of new Set([...Object.keys(av), ...Object.keys(bv)])) {
        if (f === 'transformers_version') continue;
        if (!same((av as Record<string, unknown>)[f], (bv as Record<string, unknown>)[f])) other.push(`${k}.${f}`);
      }
    } else if (!same(av, bv)) other.push(k);
  }
  return { splitter, other };
}
