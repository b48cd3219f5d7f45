/**
 * Weight formats: what a format name (`kmeans4`, `int2`, `bin1`, ...) means, how many bits it
 * stores per weight, and its effective bits per weight including block scales and codebooks.
 *
 * Every format quantizes a weight matrix W [out, in] in blocks of `blockSize` consecutive weights
 * along the input dimension; each block has one scale s (stored as bf16 or f16) and each weight a
 * `bits`-bit code c, reconstructed as  w^ = s * levels[c].  `levels` is the format's table of
 * 2^bits values in scale units: fixed for the integer / binary / ternary formats, fitted per
 * tensor (k-means centroids) for `kmeans<n>`.
 */

export type FormatKind = 'int' | 'kmeans' | 'bin' | 'ternary';
/**
 * How a block's scale is chosen (the reference's `relative_scale`, 1-Bit-Wonder `quantizer.py`):
 *   absmax    int: s = max|w| / qmax; k-means: s = max|w|
 *   absmean   int: s = mean|w| / qmax (the grid spans +-mean|w|, larger weights are clipped);
 *             k-means, bin1, ternary: s = mean|w|
 *   meanstep  int only, tfree's own rule: s = mean|w| (the grid step is mean|w|, spanning
 *             +-qmax * mean|w|); before format rules 2 this was what `int<n>:absmean` computed
 * The raw statistic is clamped to at least SCALE_EPS first, as the reference does.
 */
export type ScaleMode = 'absmax' | 'absmean' | 'meanstep';

/** The reference's lower bound on a block's scale statistic (`QuantizerArgs.eps`). */
export const SCALE_EPS = 1e-5;

/**
 * Version of the quantization rules behind the format names, recorded in packed checkpoints.
 *   1 (files without the field): `int<n>:absmean` (n > 2) meant s = mean|w| (now `int<n>:meanstep`),
 *     `bin1` centred by the tensor mean (now `bin1:tensormean`), ties rounded half up, no scale floor;
 *   2: the reference's rules (absmean / qmax, bin1 centred per block, ties to even, scale floor).
 * Reconstruction (s * levels[code]) does not depend on the rules, so files of either version load
 * and give exactly the weights they were written with.
 */
export const FORMAT_RULES = 2;

/** The name under today's rules of a format name written under `rules` (1 or 2). */
export function formatNameForRules(name: string, rules: number): string {
  if (rules >= 2) return name;
  const n = name.trim().toLowerCase();
  if (n === 'bin1' || n === 'binary') return 'bin1:tensormean';
  const m = /^int(\d+):absmean$/.exec(n);
  return m !== null && Number(m[1]) > 2 ? `int${m[1]}:meanstep` : name;
}
export type ScaleDtype = 'BF16' | 'F16';

export interface QuantFormat {
  /** canonical name, e.g. `kmeans4`, `int2:absmax` (the mode suffix only when not the default) */
  readonly name: string;
  readonly kind: FormatKind;
  /** stored bits per code (ternary: 2) */
  readonly bits: number;
  readonly blockSize: number;
  readonly scaleMode: ScaleMode;
  readonly scaleDtype: ScaleDtype;
  /**
   * bin1 only: what the sign is taken against: each block's mean ('block', the reference) or the
   * whole tensor's mean ('tensor': `bin1:tensormean`, tfree's rule before quantization rules 2)
   */
  readonly centre?: 'block' | 'tensor';
}

export interface FormatOptions {
  /** weights per block along the input dimension (default 64; a multiple of 8) */
  blockSize?: number;
  /** storage of the block scales (default BF16, as the study) */
  scaleDtype?: ScaleDtype;
}

/** The format names `parseFormat` accepts (for help texts and error messages). */
export const FORMAT_NAMES: readonly string[] = Object.freeze([
  'int8',
  'int4',
  'int3',
  'int2',
  'kmeans1',
  'kmeans2',
  'kmeans3',
  'kmeans4',
  'kmeans8',
  'bin1',
  'ternary',
]);

/** Thrown for a bad format name or option (the CLI turns it into a one-line error). */
export class FormatError extends Error {
  override readonly name = 'FormatError';
}

/**
 * Parses `NAME[:absmax|absmean|meanstep]` (and `bin1:tensormean`). Defaults as the study: absmax scales above 2 bits,
 * absmean at <= 2 bits (int2, kmeans1/2), absmean for bin1 and ternary (BitNet). `meanstep` is
 * for int formats only.
 */
export function parseFormat(spec: string, opts: FormatOptions = {}): QuantFormat {
  const [base, rawMode, extra] = spec.trim().toLowerCase().split(':');
  const tensorMean = rawMode === 'tensormean';
  const mode = tensorMean ? undefined : rawMode;
  if (extra !== undefined) throw new FormatError(`format "${spec}": expected NAME or NAME:absmax|absmean|meanstep`);
  const m = /^(int|kmeans)(\d+)$/.exec(base);
  let kind: FormatKind;
  let bits: number;
  if (m !== null) {
    kind = m[1] as FormatKind;
    bits = Number(m[2]);
    const ok = kind === 'int' ? [2, 3, 4, 8] : [1, 2, 3, 4, 8];
    if (!ok.includes(bits)) throw new FormatError(`unknown format "${spec}": ${kind} supports ${ok.join(', ')} bits (formats: ${FORMAT_NAMES.join(', ')})`);
  } else if (base === 'bin1' || base === 'binary') {
    kind = 'bin';
    bits = 1;
  } else if (base === 'ternary') {
    kind = 'ternary';
    bits = 2;
  } else {
    throw new FormatError(`unknown format "${spec}" (formats: ${FORMAT_NAMES.join(', ')}, optionally with :absmax, :absmean or (int) :meanstep)`);
  }
  const defMode: ScaleMode = kind === 'bin' || kind === 'ternary' || bits <= 2 ? 'absmean' : 'absmax';
  if (mode !== undefined && mode !== 'absmax' && mode !== 'absmean' && mode !== 'meanstep') throw new FormatError(`format "${spec}": scale mode must be absmax, absmean or meanstep, got "${mode}"`);
  if (mode === 'meanstep' && kind !== 'int') throw new FormatError(`format "${spec}": meanstep is a scale mode of the int formats only`);
  if (tensorMean && kind !== 'bin') throw new FormatError(`format "${spec}": tensormean is a variant of bin1 only`);
  const scaleMode = (mode as ScaleMode | undefined) ?? defMode;
  const blockSize = opts.blockSize ?? 64;
  if (!Number.isInteger(blockSize) || blockSize < 8 || blockSize % 8 !== 0) throw new FormatError(`block size must be a positive multiple of 8, got ${blockSize}`);
  const scaleDtype = opts.scaleDtype ?? 'BF16';
  if (scaleDtype !== 'BF16' && scaleDtype !== 'F16') throw new FormatError(`scale dtype must be BF16 or F16, got ${String(scaleDtype)}`);
  const baseName = kind === 'bin' ? 'bin1' : kind === 'ternary' ? 'ternary' : `${kind}${bits}`;
  if (kind === 'bin') {
    if (tensorMean) return { name: 'bin1:tensormean', kind, bits, blockSize, scaleMode, scaleDtype, centre: 'tensor' };
    return { name: scaleMode === defMode ? baseName : `${baseName}:${scaleMode}`, kind, bits, blockSize, scaleMode, scaleDtype, centre: 'block' };
  }
  return { name: scaleMode === defMode ? baseName : `${baseName}:${scaleMode}`, kind, bits, blockSize, scaleMode, scaleDtype };
}

/** Largest integer level of a symmetric int format: 2^(bits-1) - 1 (int2: 1, int4: 7, int8: 127). */
export function intQmax(bits: number): number {
  return 2 ** (bits - 1) - 1;
}

/**
 * The fixed level table of a non-k-means format (2^bits entries, indexed by code):
 *   int<n>:  code c holds the two's-complement n-bit integer (int8: c < 128 ? c : c - 256), so the
 *            used codes are -qmax..qmax and -2^(n-1) is never produced;
 *   bin1:    [-1, +1];  ternary: [-1, 0, +1, 0] (code 3 unused).
 */
export function fixedLevels(f: QuantFormat): Float32Array {
  const n = 2 ** f.bits;
  const out = new Float32Array(n);
  if (f.kind === 'int') for (let c = 0; c < n; c++) out[c] = c < n / 2 ? c : c - n;
  else if (f.kind === 'bin') out.set([-1, 1]);
  else if (f.kind === 'ternary') out.set([-1, 0, 1, 0]);
  else throw new FormatError(`format ${f.name} has a fitted codebook, not fixed levels`);
  return out;
}

/** Code of an integer level in an int format (two's complement in `bits` bits). */
export function intCode(q: number, bits: number): number {
  return q < 0 ? q + 2 ** bits : q;
}

export interface SizeReport {
  /** weights in the matrix */
  numel: number;
  codeBytes: number;
  scaleBytes: number;
  codebookBytes: number;
  totalBytes: number;
  /** total bits / weights */
  bitsPerWeight: number;
}

/** Bytes and effective bits per weight of an [rows, cols] matrix in format f. */
export function formatSize(f: QuantFormat, rows: number, cols: number): SizeReport {
  const numel = rows * cols;
  const codeBytes = (rows * cols * f.bits) / 8;
  const scaleBytes = rows * (cols / f.blockSize) * 2;
  const codebookBytes = f.kind === 'kmeans' ? 4 * 2 ** f.bits : 0;
  const totalBytes = codeBytes + scaleBytes + codebookBytes;
  return { numel, codeBytes, scaleBytes, codebookBytes, totalBytes, bitsPerWeight: (8 * totalBytes) / numel };
}

/**
 * The block size used for a row length: `want` if it divides `cols`, else the largest power of two
 * below `want` (and >= 8) that does. Throws a FormatError when none does.
 */
export function blockFor(cols: number, want: number): number {
  if (cols % want === 0) return want;
  for (let b = 2 ** Math.floor(Math.log2(want)); b >= 8; b /= 2) if (cols % b === 0 && b <= want) return b;
  throw new FormatError(`no block size <= ${want} (a power of two >= 8) divides the row length ${cols}`);
}

/** `f` with its block size reduced (blockFor) to divide a row length of `cols`; `f` itself when it already does. */
export function fitBlock(f: QuantFormat, cols: number): QuantFormat {
  const b = blockFor(cols, f.blockSize);
  return b === f.blockSize ? f : { ...f, blockSize: b };
}

/** Checks that a [rows, cols] matrix can be stored in format f; throws naming the tensor. */
export function checkShape(f: QuantFormat, shape: readonly number[], tensor: string): void {
  if (shape.length !== 2) throw new FormatError(`tensor "${tensor}": only 2-D weights can be quantized, got shape [${shape.join(', ')}]`);
  const cols = shape[1];
  if (cols % f.blockSize !== 0) {
    throw new FormatError(`tensor "${tensor}": block size ${f.blockSize} does not divide the row length ${cols} (shape [${shape.join(', ')}]); pick a block size that divides it`);
  }
}
