/**
 * Quantizers of the formats in format.ts (the study's `quantizer.py` rules) and the packed
 * matrix they produce.
 *
 * Per block of B weights along a row: a scale s (rounded to the stored bf16/f16 first, so codes are
 * chosen for the scale that is stored), then codes. The rules are the reference's (1-Bit-Wonder
 * `quantizer.py`, format rules 2 in format.ts), with the block statistic floored at SCALE_EPS:
 *   int<n>    s = absmax/qmax (absmean mode: mean|w|/qmax, clipping beyond mean|w|; tfree's own
 *             meanstep mode: s = mean|w|); q = round_half_even(clamp(w/s, -qmax, qmax))
 *   kmeans<n> s = absmax (n > 2) or mean|w| (n <= 2); code = nearest centroid of w/s (a value on a
 *             midpoint takes the lower centroid, as torch.bucketize); the 2^n centroids are
 *             fitted once per tensor on all w/s (k-means, kmeans.ts)
 *   bin1      s = mean|w| of the block; code = sign(w - mean of the block) (BitNet), where the
 *             reference's sign(0) = 0 cannot be stored in one bit and becomes +1;
 *             `bin1:tensormean` (tfree's own): sign(w - mean of the whole tensor)
 *   ternary   s = mean|w|; q = round_half_even(clamp(w/s, -1, 1))
 * Reconstruction: w^ = s * levels[code].
 *
 * Codes are packed per row as an MSB-first bit stream: element i of a row occupies bits
 * [i*bits, (i+1)*bits) counted from the most significant bit of the row's first byte. For 1, 2, 4
 * and 8 bits this is the study's layout (E = 8/bits codes per byte, first element in the high
 * bits); 3-bit codes run across byte boundaries.
 */
import { bf16BitsToNumber, f16BitsToNumber, numberToBf16Bits, numberToF16Bits, type TensorData, type TensorReader } from '../io/index.js';
import { kernels } from '../tensor/index.js';
import { QuantKind, QuantScaleMode, midpoints, roundHalfEven } from '../tensor/kernels/js_quant.js';
import { SCALE_EPS, checkShape, fixedLevels, type QuantFormat } from './format.js';
import { kmeans1dOf } from './kmeans.js';

/** A weight matrix [rows, cols] in a packed format. */
export interface PackedMatrix {
  readonly format: QuantFormat;
  readonly rows: number;
  readonly cols: number;
  /** rows x rowBytes(cols) bytes, MSB-first bit stream per row */
  readonly codes: Uint8Array;
  /** rows x cols/blockSize scale bit patterns (bf16 or f16 as format.scaleDtype) */
  readonly scales: Uint16Array;
  /** 2^bits reconstruction levels in scale units (k-means centroids, or the fixed table) */
  readonly levels: Float32Array;
}

export interface QuantizeOptions {
  /** tensor name for error messages and the k-means seed */
  name?: string;
  /** k-means seed (default: the tensor name) */
  seed?: number | string;
  /** k-means: use these centroids instead of fitting (QAT with fixed centroids) */
  codebook?: Float32Array | null;
  /** k-means: per-weight importance weights for the fit (same length as w) */
  importance?: Float32Array | null;
  /** k-means: fit on at most this many values (default 2^20) */
  maxSamples?: number;
}

/** Bytes per packed row. */
export function rowBytes(cols: number, bits: number): number {
  return (cols * bits) / 8;
}

export function scaleToBits(f: QuantFormat, s: number): number {
  return f.scaleDtype === 'BF16' ? numberToBf16Bits(s) : numberToF16Bits(s);
}

export function scaleFromBits(f: QuantFormat, b: number): number {
  return f.scaleDtype === 'BF16' ? bf16BitsToNumber(b) : f16BitsToNumber(b);
}

/** Unpacked result: one code per weight. */
export interface Codes {
  codes: Uint8Array;
  scales: Uint16Array;
  levels: Float32Array;
}

export { roundHalfEven };

/** A weight matrix holds a non-finite value (at element `index`), so it cannot be quantized. */
export class NonFiniteWeightError extends Error {
  override readonly name = 'NonFiniteWeightError';
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(message);
  }
}

const KIND: Record<QuantFormat['kind'], QuantKind> = { int: QuantKind.Int, kmeans: QuantKind.Kmeans, bin: QuantKind.Bin, ternary: QuantKind.Ternary };
const MODE: Record<QuantFormat['scaleMode'], QuantScaleMode> = { absmax: QuantScaleMode.Absmax, absmean: QuantScaleMode.Absmean, meanstep: QuantScaleMode.Meanstep };

/**
 * The block quantizer kernel (kernels().quantizeBlocks: native, threaded over rows, or its TS twin)
 * on one matrix: scales always, packed codes when `codes` is given.
 */
function runQuantizer(w: Float32Array, rows: number, cols: number, f: QuantFormat, name: string, mid: Float64Array | null, codes: Uint8Array | null, scales: Uint16Array): void {
  let centre = NaN;
  if (f.kind === 'bin' && f.centre === 'tensor' && codes !== null) {
    centre = 0;
    for (let i = 0; i < w.length; i++) centre += w[i];
    centre /= w.length;
  }
  const bad = kernels().quantizeBlocks(w, rows, cols, KIND[f.kind], f.bits, f.blockSize, MODE[f.scaleMode], f.scaleDtype === 'BF16', SCALE_EPS, mid, centre, codes, scales);
  if (bad >= 0) throw new NonFiniteWeightError(`tensor "${name}": value ${bad} is ${w[bad]}; cannot quantize non-finite weights`, bad);
}

/**
 * Reads one tensor of a checkpoint into `kernels().weightBuffer` (on the native backend 2 MiB
 * transparent huge pages from 1 MiB on, as quantizeMatrix's codes and scales): for packed codes and
 * scales, which the decode kernels stream on every call.
 */
export function readWeightBuffer(reader: TensorReader, name: string): TensorData {
  return reader.read(name, { into: kernels().weightBuffer(reader.info(name).byteLength) });
}

/** Quantizes a row-major [rows, cols] matrix into a packed matrix (the rules in the file comment). */
export function quantizeMatrix(w: Float32Array, rows: number, cols: number, f: QuantFormat, opts: QuantizeOptions = {}): PackedMatrix {
  const name = opts.name ?? '<weight>';
  checkShape(f, [rows, cols], name);
  if (w.length !== rows * cols) throw new Error(`tensor "${name}": ${w.length} values for shape [${rows}, ${cols}]`);
  // codes and scales from weightBuffer: on the native backend 2 MiB transparent huge pages from
  // 1 MiB on (the decode kernel streams them on every call: fewer TLB misses), else plain arrays
  const k = kernels();
  const nScales = (rows * cols) / f.blockSize;
  const sBuf = k.weightBuffer(nScales * 2);
  const scales = new Uint16Array(sBuf.buffer, sBuf.byteOffset, nScales);
  const codes = k.weightBuffer(rows * rowBytes(cols, f.bits));
  let levels: Float32Array;
  let mid: Float64Array | null = null;
  if (f.kind === 'kmeans') {
    const k = 2 ** f.bits;
    if (opts.codebook) {
      if (opts.codebook.length !== k) throw new Error(`tensor "${name}": codebook has ${opts.codebook.length} entries, ${f.name} needs ${k}`);
      levels = Float32Array.from(opts.codebook).sort();
    } else {
      // the codebook is fitted on w / s (as float32) at the sampled positions only
      runQuantizer(w, rows, cols, f, name, null, null, scales);
      const B = f.blockSize;
      const sv = new Float64Array(scales.length);
      for (let b = 0; b < sv.length; b++) sv[b] = scaleFromBits(f, scales[b]);
      const norm = new Float32Array(1);
      const value = (i: number): number => {
        const s = sv[Math.floor(i / B)];
        norm[0] = s > 0 ? w[i] / s : 0;
        return norm[0];
      };
      levels = kmeans1dOf(w.length, value, k, { seed: opts.seed ?? name, weights: opts.importance ?? null, maxSamples: opts.maxSamples }).centroids;
    }
    mid = midpoints(levels);
  } else levels = fixedLevels(f);
  runQuantizer(w, rows, cols, f, name, mid, codes, scales);
  return { format: f, rows, cols, codes, scales, levels };
}

/** Computes scales and one code per weight (no packing). */
export function quantizeCodes(w: Float32Array, rows: number, cols: number, f: QuantFormat, opts: QuantizeOptions = {}): Codes {
  const p = quantizeMatrix(w, rows, cols, f, opts);
  return { codes: unpackCodes(p.codes, rows, cols, f.bits), scales: p.scales, levels: p.levels };
}

/** Packs one code per weight into the MSB-first row bit stream. */
export function packCodes(codes: Uint8Array, rows: number, cols: number, bits: number): Uint8Array {
  const rb = rowBytes(cols, bits);
  if ((bits === 1 || bits === 2 || bits === 4 || bits === 8) && (cols * bits) % 8 === 0) {
    // whole codes per byte and rows end on byte boundaries: the row streams are one stream
    if (bits === 8) return codes.slice(0, rows * cols);
    const out = new Uint8Array(rows * rb);
    const per = 8 / bits;
    const mask = (1 << bits) - 1;
    for (let o = 0, i = 0; o < out.length; o++) {
      let b = 0;
      for (let k = 0; k < per; k++) b = (b << bits) | (codes[i++] & mask);
      out[o] = b;
    }
    return out;
  }
  const out = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    let bit = r * rb * 8;
    for (let i = 0; i < cols; i++, bit += bits) {
      const c = codes[r * cols + i];
      for (let t = bits - 1; t >= 0; t--) {
        const pos = bit + (bits - 1 - t);
        if ((c >> t) & 1) out[pos >> 3] |= 0x80 >> (pos & 7);
      }
    }
  }
  return out;
}

/** Unpacks the row bit streams to one code per weight. */
export function unpackCodes(packed: Uint8Array, rows: number, cols: number, bits: number): Uint8Array {
  const out = new Uint8Array(rows * cols);
  if (bits === 8) {
    out.set(packed.subarray(0, rows * cols));
    return out;
  }
  const rb = rowBytes(cols, bits);
  for (let r = 0; r < rows; r++) {
    let bit = r * rb * 8;
    for (let i = 0; i < cols; i++) {
      let c = 0;
      for (let t = 0; t < bits; t++, bit++) c = (c << 1) | ((packed[bit >> 3] >> (7 - (bit & 7))) & 1);
      out[r * cols + i] = c;
    }
  }
  return out;
}

/** Reconstructs w^ = s * levels[code] from unpacked codes (float32). */
export function dequantizeCodes(c: Codes, rows: number, cols: number, f: QuantFormat): Float32Array {
  const B = f.blockSize;
  const out = new Float32Array(rows * cols);
  let blk = -1;
  let s = 0;
  for (let i = 0; i < out.length; i++) {
    const b = Math.floor(i / B);
    if (b !== blk) {
      blk = b;
      s = scaleFromBits(f, c.scales[b]);
    }
    out[i] = s * c.levels[c.codes[i]];
  }
  return out;
}

/** Reconstructs the float32 matrix of a packed matrix. */
export function dequantize(p: PackedMatrix): Float32Array {
  return dequantizeCodes({ codes: unpackCodes(p.codes, p.rows, p.cols, p.format.bits), scales: p.scales, levels: p.levels }, p.rows, p.cols, p.format);
}

/** Quantize-dequantize (the fake quantization of QAT). */
export function fakeQuantize(w: Float32Array, rows: number, cols: number, f: QuantFormat, opts: QuantizeOptions = {}): Float32Array {
  return dequantizeCodes(quantizeCodes(w, rows, cols, f, opts), rows, cols, f);
}

/** Bytes held by a packed matrix. */
export function packedBytes(p: PackedMatrix): number {
  return p.codes.byteLength + p.scales.byteLength + (p.format.kind === 'kmeans' ? p.levels.byteLength : 0);
}
