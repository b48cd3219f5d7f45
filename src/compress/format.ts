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
export type ScaleMode = 'absmax' | 'absmean';
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
 * Parses `NAME[:absmax|absmean]`. Defaults as the study: absmax scales above 2 bits, absmean
 * at <= 2 bits (int2, kmeans1/2), absmean for bin1 and ternary (BitNet).
 */
export function parseFormat(spec: string, opts: FormatOptions = {}): QuantFormat {
  const [base, mode, extra] = spec.trim().toLowerCase().split(':');
  if (extra !== undefined) throw new FormatError(`format "${spec}": expected NAME or NAME:absmax|absmean`);
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
    throw new FormatError(`unknown format "${spec}" (formats: ${FORMAT_NAMES.join(', ')}, optionally with :absmax or :absmean)`);
  }
  const defMode: ScaleMode = kind === 'bin' || kind === 'ternary' || bits <= 2 ? 'absmean' : 'absmax';
  if (mode !== undefined && mode !== 'absmax' && mode !== 'absmean') throw new FormatError(`format "${spec}": scale mode must be absmax or absmean, got "${mode}"`);
  const scaleMode = (mode as ScaleMode | undefined) ?? defMode;
  const blockSize = opts.blockSize ?? 64;
  if (!Number.isInteger(blockSize) || blockSize < 8 || blockSize % 8 !== 0) throw new FormatError(`block size must be a positive multiple of 8, got ${blockSize}`);
  const scaleDtype = opts.scaleDtype ?? 'BF16';
  if (scaleDtype !== 'BF16' && scaleDtype !== 'F16') throw new FormatError(`scale dtype must be BF16 or F16, got ${String(scaleDtype)}`);
  const baseName = kind === 'bin' ? 'bin1' : kind === 'ternary' ? 'ternary' : `${kind}${bits}`;
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

/** Checks that a [rows, cols] matrix can be stored in format f; throws naming the tensor. */
export function checkShape(f: QuantFormat, shape: readonly number[], tensor: string): void {
  if (shape.length !== 2) throw new FormatError(`tensor "${tensor}": only 2-D weights can be quantized, got shape [${shape.join(', ')}]`);
  const cols = shape[1];
  if (cols % f.blockSize !== 0) {
    throw new FormatError(`tensor "${tensor}": block size ${f.blockSize} does not divide the row length ${cols} (shape [${shape.join(', ')}]); pick a block size that divides it`);
  }
}
