/**
 * Checkpoint-to-checkpoint conversions behind `tfree quantize` and `tfree prune`: read any
 * safetensors checkpoint folder (config.json + model.safetensors, or sharded), transform the
 * selected 2-D weights, write `<out>/model.safetensors` atomically and copy the other files
 * (config.json, tokenizer files...) atomically beside it.
 */
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { firstNonFinite, fromFloat32, lazyTensorFrom, samePath, openCheckpoint, runToEnd, writeSafetensorsJob, writeStagedJob, type StagedOutput, type Checkpoint, type StopFlag, type FloatDType, type LazyTensorData, type TensorData } from '../io/index.js';
import { formatSize, type QuantFormat } from './format.js';
import { fitBlockFor, packedCheckpointJob } from './checkpoint.js';
import { nameFilter, type NameFilter } from './modules.js';
import { pruneMask, type PruneOptions } from './prune.js';
import { dequantize, packedBytes, quantizeMatrix, type PackedMatrix } from './quantize.js';

const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16']);

/** The folder a checkpoint path lives in (the path itself for folders). */
export function checkpointDir(path: string): string {
  return statSync(path).isDirectory() ? path : dirname(path);
}

/**
 * Copies the side files of inDir (every regular file that is not a safetensors file or index:
 * config.json, tokenizer files...) into `out` as parts (temp names until the commit); returns their names.
 */
function stageSideFiles(inDir: string, out: StagedOutput): string[] {
  const names: string[] = [];
  for (const name of readdirSync(inDir)) {
    if (name.endsWith('.safetensors') || name.endsWith('.safetensors.index.json') || name.startsWith('.')) continue;
    const src = join(inDir, name);
    if (!statSync(src).isFile()) continue;
    copyFileSync(src, out.part(name));
    names.push(name);
  }
  return names;
}

/**
 * The write phase of a conversion, one multi-file output (src/io/staged.ts): the side files are
 * copied to temp names, `weights(path)` writes model.safetensors to its temp name (yielding after
 * each tensor), then all are renamed into place together. A failure or a stop (WriteInterrupted)
 * before the end leaves no file of this run in outDir; a failed rename leaves the old output.
 */
function* writeWithSideFiles(inDir: string, outDir: string, weights: (path: string) => Generator<void, unknown, void>): Generator<void, string[], void> {
  return yield* writeStagedJob(outDir, function* (out) {
    const copied = stageSideFiles(inDir, out);
    yield* weights(out.part('model.safetensors'));
    for (const name of oldShardedModel(outDir)) out.remove(name);
    return copied;
  });
}

/**
 * The files of a sharded model already in outDir (`--overwrite`): its index and the shards it
 * names (plain file names only). The new model.safetensors replaces them; left beside it, the
 * folder held both and no loader would take it ('holds both model.safetensors and ...index.json').
 */
function oldShardedModel(outDir: string): string[] {
  const index = 'model.safetensors.index.json';
  if (!existsSync(join(outDir, index))) return [];
  let shards: string[] = [];
  try {
    const map = (JSON.parse(readFileSync(join(outDir, index), 'utf8')) as { weight_map?: Record<string, unknown> }).weight_map ?? {};
    shards = [...new Set(Object.values(map))].filter((f): f is string => typeof f === 'string' && f.endsWith('.safetensors') && basename(f) === f);
  } catch {
    // an unreadable index: it goes, its shards stay (they are not known)
  }
  return [index, ...shards];
}

export interface TensorReport {
  name: string;
  shape: number[];
  /** mean squared error of the transformed weight vs the original */
  mse: number;
  bytesIn: number;
  bytesOut: number;
  /** quantize: the format the tensor was stored in (its block reduced to divide the row length when needed) */
  format?: QuantFormat;
}

export interface ConvertReport {
  outFile: string;
  tensors: number;
  changed: TensorReport[];
  bytesIn: number;
  bytesOut: number;
  copied: string[];
}

export interface ConvertOptions extends NameFilter {
  /** called before each tensor (progress) */
  onTensor?: (index: number, total: number, name: string) => void;
  /** memory the conversion may use (default: os.totalmem()); a larger estimate is a ConvertError before any work */
  memoryLimit?: number;
}

/**
 * Refuses a conversion whose memory estimate exceeds `limit` before any work: `held` bytes of
 * converted weights are kept until the write, plus f32 working copies of the largest weight
 * (`largest` values: read, converted, compared).
 */
function checkConvertMemory(inPath: string, what: string, held: number, largest: number, limit = totalmem()): void {
  const need = held + 3 * 4 * largest;
  const gib = (b: number): string => (b / 2 ** 30).toFixed(1);
  if (need > limit) throw new ConvertError(`${what} ${inPath} needs about ${gib(need)} GiB in memory (the ${what === 'quantizing' ? 'packed' : 'pruned'} weights are held until the write), more than the ${gib(limit)} GiB available`);
}

/** A conversion the user's input rules out (the output folder is the input, no weight selected); nothing is written. */
export class ConvertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConvertError';
  }
}

function isCandidate(ckpt: Checkpoint, name: string, keep: (n: string) => boolean): boolean {
  const info = ckpt.info(name);
  return info.shape.length === 2 && FLOAT_DTYPES.has(info.dtype) && name.endsWith('.weight') && keep(name);
}

function noneSelected(inPath: string, filter: NameFilter): ConvertError {
  const pats = [...(filter.include !== undefined ? [`include ${filter.include.join(',')}`] : []), ...(filter.exclude !== undefined ? [`exclude ${filter.exclude.join(',')}`] : [])];
  return new ConvertError(`no weight of ${inPath} is selected (2-D float *.weight tensors${pats.length > 0 ? ` matching ${pats.join(', ')}` : ', embeddings and output head excluded'}); nothing to do`);
}

/**
 * Throws a ConvertError when the include/exclude patterns select no weight of the checkpoint
 * (what quantizeCheckpoint and pruneCheckpoint would transform), so that a caller can refuse
 * before slower preparation (e.g. Wanda calibration).
 */
export function checkSelection(inPath: string, filter: NameFilter): void {
  const ckpt = openCheckpoint(inPath);
  try {
    const keep = nameFilter(filter);
    if (!ckpt.names().some((n) => isCandidate(ckpt, n, keep))) throw noneSelected(inPath, filter);
  } finally {
    ckpt.close();
  }
}

function prepareOut(inPath: string, outDir: string): { ckpt: Checkpoint; inDir: string; outFile: string } {
  const inDir = resolve(checkpointDir(inPath));
  if (samePath(outDir, inDir)) throw new ConvertError(`the output folder must differ from the input folder (${outDir})`);
  const ckpt = openCheckpoint(inPath);
  return { ckpt, inDir, outFile: join(outDir, 'model.safetensors') };
}

function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return a.length === 0 ? 0 : s / a.length;
}

export interface QuantizeCheckpointOptions extends ConvertOptions {
  seed?: number | string;
  maxSamples?: number;
  /** per-tensor format (a plan): overrides `f` for the selected tensors; null leaves a tensor unchanged */
  formatFor?: (name: string) => QuantFormat | null;
}

/** Quantizes every selected 2-D `*.weight` of a checkpoint into a packed checkpoint folder. */
export function quantizeCheckpoint(inPath: string, outDir: string, f: QuantFormat, opts: QuantizeCheckpointOptions = {}): ConvertReport {
  return runToEnd(quantizeCheckpointJob(inPath, outDir, f, opts));
}

/**
 * `quantizeCheckpoint` as a job: the quantization runs before its first yield (nothing is written
 * before it); the write follows, yielding after each tensor. Run with `runYielding`, a set `stop`
 * ends the write with WriteInterrupted: no file of this run is left in outDir.
 */
export function* quantizeCheckpointJob(inPath: string, outDir: string, f: QuantFormat, opts: QuantizeCheckpointOptions = {}, stop?: StopFlag): Generator<void, ConvertReport, void> {
  const { ckpt, inDir, outFile } = prepareOut(inPath, outDir);
  try {
    const keep = nameFilter(opts);
    const names = ckpt.names();
    const want = (n: string): QuantFormat | null => (opts.formatFor ? opts.formatFor(n) : f);
    const selected = names.filter((n) => isCandidate(ckpt, n, keep) && want(n) !== null);
    if (selected.length === 0 && opts.formatFor === undefined) throw noneSelected(inPath, opts);
    // the block is reduced per tensor where it does not divide the row length (fails before any work when nothing fits)
    const formats = new Map<string, QuantFormat>();
    for (const n of selected) formats.set(n, fitBlockFor(want(n) as QuantFormat, ckpt.info(n).shape[1], n));
    const fmt = (n: string): QuantFormat => formats.get(n) as QuantFormat;
    const numel = (n: string): number => ckpt.info(n).shape.reduce((a, b) => a * b, 1);
    checkConvertMemory(inPath, 'quantizing', selected.reduce((s, n) => s + Math.ceil((numel(n) * fmt(n).bits) / 8) + (2 * numel(n)) / fmt(n).blockSize, 0), Math.max(0, ...selected.map(numel)), opts.memoryLimit);
    const packed = new Map<string, PackedMatrix>();
    const changed: TensorReport[] = [];
    selected.forEach((n, i) => {
      opts.onTensor?.(i, selected.length, n);
      const t = ckpt.readAs(n, 'f32');
      const [rows, cols] = t.shape;
      const p = quantizeMatrix(t.data, rows, cols, fmt(n), { name: n, seed: opts.seed === undefined ? n : `${opts.seed}:${n}`, maxSamples: opts.maxSamples });
      packed.set(n, p);
      changed.push({ name: n, shape: [rows, cols], mse: mse(t.data, dequantize(p)), bytesIn: ckpt.info(n).byteLength, bytesOut: packedBytes(p), format: p.format });
    });
    const plain: [string, LazyTensorData][] = names.filter((n) => !packed.has(n)).map((n) => [n, lazyTensorFrom(ckpt, n)]);
    const bytesPlain = names.filter((n) => !packed.has(n)).reduce((s, n) => s + ckpt.info(n).byteLength, 0);
    yield; // the write starts here (outDir is created only now: a run stopped while quantizing leaves no folder)
    const copied = yield* writeWithSideFiles(inDir, outDir, (path) => packedCheckpointJob(path, packed, plain, { 'tfree.source': basename(inDir) }, stop));
    const bytesIn = names.reduce((s, n) => s + ckpt.info(n).byteLength, 0);
    const bytesOut = bytesPlain + changed.reduce((s, r) => s + r.bytesOut, 0);
    return { outFile, tensors: names.length, changed, bytesIn, bytesOut, copied };
  } finally {
    ckpt.close();
  }
}

/**
 * The weights whose quantization block was reduced to fit their row length, grouped: "block 64
 * does not divide the row length 352: used block 32 for 3 tensors; ..." (`noun` counts them), or
 * null when there are none.
 */
export function describeReducedBlocks(items: { asked: number; cols: number; used: number }[], noun: string): string | null {
  const groups = new Map<string, number>();
  for (const { asked, cols, used } of items) {
    const key = `block ${asked} does not divide the row length ${cols}: used block ${used}`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  if (groups.size === 0) return null;
  return [...groups].map(([k, n]) => `${k} for ${n} ${noun}${n === 1 ? '' : 's'}`).join('; ');
}

/**
 * One line describing the tensors of a quantize report whose block was reduced to fit their row
 * length (`block 64 does not divide ...`), or null when every tensor got the block asked for.
 */
export function blockNote(r: ConvertReport, f: QuantFormat | ((name: string) => QuantFormat | null)): string | null {
  const items: { asked: number; cols: number; used: number }[] = [];
  for (const t of r.changed) {
    const asked = typeof f === 'function' ? f(t.name) : f;
    if (t.format === undefined || asked === null || t.format.blockSize === asked.blockSize) continue;
    items.push({ asked: asked.blockSize, cols: t.shape[1], used: t.format.blockSize });
  }
  const d = describeReducedBlocks(items, 'tensor');
  return d === null ? null : `note: ${d}`;
}

/** Prunes every selected 2-D `*.weight` of a checkpoint (dtype kept) into a new checkpoint folder. */
export function pruneCheckpoint(inPath: string, outDir: string, opts: PruneCheckpointOptions): ConvertReport {
  return runToEnd(pruneCheckpointJob(inPath, outDir, opts));
}

export type PruneCheckpointOptions = PruneOptions & ConvertOptions & { sparsityFor?: (name: string) => number | undefined };

/** `pruneCheckpoint` as a job: the pruning runs before its first yield; then the write (see quantizeCheckpointJob). */
export function* pruneCheckpointJob(inPath: string, outDir: string, opts: PruneCheckpointOptions, stop?: StopFlag): Generator<void, ConvertReport, void> {
  const { ckpt, inDir, outFile } = prepareOut(inPath, outDir);
  try {
    const keep = nameFilter(opts);
    const names = ckpt.names();
    const sparsityOf = (n: string): number | undefined => (opts.sparsityFor ? opts.sparsityFor(n) : opts.sparsity);
    const selected = new Set(names.filter((n) => isCandidate(ckpt, n, keep) && sparsityOf(n) !== undefined));
    if (selected.size === 0 && opts.sparsityFor === undefined) throw noneSelected(inPath, opts);
    checkConvertMemory(inPath, 'pruning', [...selected].reduce((s, n) => s + ckpt.info(n).byteLength, 0), Math.max(0, ...[...selected].map((n) => ckpt.info(n).shape.reduce((a, b) => a * b, 1))), opts.memoryLimit);
    const changed: TensorReport[] = [];
    const entries: [string, TensorData | LazyTensorData][] = [];
    let i = 0;
    for (const n of names) {
      if (!selected.has(n)) {
        entries.push([n, lazyTensorFrom(ckpt, n)]);
        continue;
      }
      opts.onTensor?.(i++, selected.size, n);
      const info = ckpt.info(n);
      const t = ckpt.readAs(n, 'f32');
      const [rows, cols] = t.shape;
      const bad = firstNonFinite('F32', t.data);
      if (bad >= 0) throw new ConvertError(`${inPath}: tensor "${n}": value ${bad} is ${t.data[bad]}; cannot prune non-finite weights (the model is damaged)`);
      const mask = pruneMask(n, t.data, rows, cols, { ...opts, sparsity: sparsityOf(n) as number });
      const pruned = Float32Array.from(t.data);
      for (let j = 0; j < mask.length; j++) if (mask[j] === 0) pruned[j] = 0;
      changed.push({ name: n, shape: [rows, cols], mse: mse(t.data, pruned), bytesIn: info.byteLength, bytesOut: info.byteLength });
      const dtype = info.dtype as FloatDType;
      entries.push([n, { dtype, shape: info.shape, data: fromFloat32(dtype, pruned) } as TensorData]);
    }
    yield; // the write starts here (outDir is created only now: a run stopped while pruning leaves no folder)
    const copied = yield* writeWithSideFiles(inDir, outDir, (path) => writeSafetensorsJob(path, entries, { 'tfree.pruned': JSON.stringify({ method: opts.method, sparsity: opts.sparsityFor ? 'plan' : opts.sparsity }) }, stop));
    const bytes = names.reduce((s, n) => s + ckpt.info(n).byteLength, 0);
    return { outFile, tensors: names.length, changed, bytesIn: bytes, bytesOut: bytes, copied };
  } finally {
    ckpt.close();
  }
}

/** Effective bits per weight of the quantized tensors in a report (each in the format it was stored in, else `f`). */
export function reportBitsPerWeight(r: ConvertReport, f: QuantFormat): number {
  let bits = 0;
  let n = 0;
  for (const t of r.changed) {
    const s = formatSize(t.format ?? f, t.shape[0], t.shape[1]);
    bits += 8 * s.totalBytes;
    n += s.numel;
  }
  return n === 0 ? 0 : bits / n;
}
