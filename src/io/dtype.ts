/**
 * Element types of the safetensors format and conversions between them.
 *
 * Raw storage arrays per dtype (all little-endian on disk):
 *
 * | dtype | bytes | array          | notes                                          |
 * |-------|-------|----------------|------------------------------------------------|
 * | F64   | 8     | Float64Array   |                                                |
 * | F32   | 4     | Float32Array   |                                                |
 * | F16   | 2     | Uint16Array    | IEEE 754 binary16 bit patterns                 |
 * | BF16  | 2     | Uint16Array    | bfloat16 bit patterns (upper half of a float32) |
 * | I64   | 8     | BigInt64Array  | `int64ToNumbers` gives numbers (|x| <= 2^53)   |
 * | I32   | 4     | Int32Array     |                                                |
 * | I16   | 2     | Int16Array     |                                                |
 * | I8    | 1     | Int8Array      |                                                |
 * | U8    | 1     | Uint8Array     |                                                |
 * | BOOL  | 1     | Uint8Array     | one byte per element, 0 = false, 1 = true      |
 */
import { f32BitsToBf16, f32BitsToF16 } from '../tensor/kernels/half.js';

export interface DTypeArrayMap {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type DType = keyof DTypeArrayMap;
export type DTypeArray = DTypeArrayMap[DType];

/** Every supported dtype, in a fixed order. */
export const DTYPES: readonly DType[] = Object.freeze(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);

const SIZES: Readonly<Record<DType, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
});

/** True when `s` names a supported dtype (exact, case-sensitive spelling as in safetensors headers). */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(SIZES, s);
}

/** Bytes per element of `dtype`. */
export function dtypeSize(dtype: DType): number {
  return SIZES[dtype];
}

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): DTypeArray; new (length: number): DTypeArray };

const CTORS: Readonly<Record<DType, ArrayCtor>> = Object.freeze({
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
});

/** Name of the typed array class that holds raw `dtype` data (for messages). */
export function dtypeArrayName(dtype: DType): string {
  return CTORS[dtype].name;
}

/** True when `data` is the raw storage array type of `dtype` (e.g. Uint16Array for BF16). */
export function isArrayOfDType<D extends DType>(dtype: D, data: unknown): data is DTypeArrayMap[D] {
  return data instanceof CTORS[dtype];
}

/** A zero-filled raw array of `length` elements of `dtype`. */
export function allocDTypeArray<D extends DType>(dtype: D, length: number): DTypeArrayMap[D] {
  return new CTORS[dtype](length) as DTypeArrayMap[D];
}

/**
 * A raw array of `dtype` viewing `length` elements of `buffer` at `byteOffset`
 * (which must be a multiple of the element size).
 */
export function dtypeArrayView<D extends DType>(dtype: D, buffer: ArrayBuffer, byteOffset: number, length: number): DTypeArrayMap[D] {
  return new CTORS[dtype](buffer, byteOffset, length) as DTypeArrayMap[D];
}

// ---------------------------------------------------------------------------
// Byte order

/** True on little-endian hosts (all common Node platforms). */
export const HOST_IS_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of each `elemSize`-byte element of `bytes` in place. */
export function swapBytesInPlace(bytes: Uint8Array, elemSize: number): void {
  if (elemSize <= 1) return;
  for (let i = 0; i + elemSize <= bytes.length; i += elemSize) {
    for (let a = i, b = i + elemSize - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/**
 * Little-endian bytes of `data`: a view of the same memory on little-endian hosts,
 * a byte-swapped copy on big-endian ones.
 */
export function littleEndianBytes(data: DTypeArray): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_IS_LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return view;
  const copy = view.slice();
  swapBytesInPlace(copy, data.BYTES_PER_ELEMENT);
  return copy;
}

// ---------------------------------------------------------------------------
// bfloat16

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bfloat16 bits -> number (exact). */
export function bf16BitsToNumber(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}


/**
 * number -> bfloat16 bits, rounding to nearest even. The number is first rounded to
 * float32 (`Math.fround`); for float32 inputs the result is exact RNE.
 */
export function numberToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToBf16(u32Scratch[0]);
}

/** float32 values -> bfloat16 bit patterns (round to nearest even; NaN stays NaN, inf stays inf). */
export function f32ToBf16(src: Float32Array | ArrayLike<number>): Uint16Array {
  const n = src.length;
  const out = new Uint16Array(n);
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = f32BitsToBf16(bits[i]);
  } else {
    for (let i = 0; i < n; i++) out[i] = numberToBf16Bits(src[i]);
  }
  return out;
}

/** bfloat16 bit patterns -> float32 values (exact). */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const n = src.length;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  return out;
}

// ---------------------------------------------------------------------------
// float16 (IEEE 754 binary16)

/** float16 bits -> number (exact). */
export function f16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

let f16Table: Float32Array | undefined;

/** All 65536 float16 values as float32 (built on first use, 256 KiB). */
function f16ToF32Table(): Float32Array {
  if (f16Table === undefined) {
    const t = new Float32Array(65536);
    const tb = new Uint32Array(t.buffer);
    for (let h = 0; h < 65536; h++) {
      const exp = (h >>> 10) & 0x1f;
      if (exp === 0x1f) {
        // inf / NaN: widen the payload so NaN bit patterns (incl. sign) survive a round trip
        tb[h] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
      } else {
        t[h] = f16BitsToNumber(h);
      }
    }
    f16Table = t;
  }
  return f16Table;
}


/**
 * number -> float16 bits, rounding to nearest even. The number is first rounded to
 * float32 (`Math.fround`); for float32 inputs the result is exact RNE.
 */
export function numberToF16Bits(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToF16(u32Scratch[0]);
}

/** float32 values -> float16 bit patterns (round to nearest even; overflow -> inf; NaN stays NaN). */
export function f32ToF16(src: Float32Array | ArrayLike<number>): Uint16Array {
  const n = src.length;
  const out = new Uint16Array(n);
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = f32BitsToF16(bits[i]);
  } else {
    for (let i = 0; i < n; i++) out[i] = numberToF16Bits(src[i]);
  }
  return out;
}

/** float16 bit patterns -> float32 values (exact). */
export function f16ToF32(src: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const n = src.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = table[src[i]];
  return out;
}

// ---------------------------------------------------------------------------
// int64

const MAX_EXACT = 2n ** 53n;

/**
 * int64 values -> numbers. Throws a RangeError naming the first element whose magnitude
 * exceeds 2^53 (beyond which numbers cannot represent every integer).
 */
export function int64ToNumbers(src: BigInt64Array): Float64Array {
  const n = src.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = src[i];
    if (v > MAX_EXACT || v < -MAX_EXACT) {
      throw new RangeError(`int64 element ${i} = ${v} is beyond +-2^53 and cannot be represented exactly as a number`);
    }
    out[i] = Number(v);
  }
  return out;
}

/** Integer numbers -> int64. Throws a RangeError for non-integers and magnitudes beyond 2^53. */
export function numbersToInt64(src: ArrayLike<number>): BigInt64Array {
  const n = src.length;
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const v = src[i];
    if (!Number.isInteger(v) || Math.abs(v) > 2 ** 53) {
      throw new RangeError(`element ${i} = ${String(v)} is not an integer within +-2^53`);
    }
    out[i] = BigInt(v);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Conversions of whole arrays

/** Raw `dtype` data -> float32 (F16/BF16 exact, F64 rounded, I64 via `int64ToNumbers`). */
export function toFloat32(dtype: DType, data: DTypeArray): Float32Array {
  switch (dtype) {
    case 'F16':
      return f16ToF32(data as Uint16Array);
    case 'BF16':
      return bf16ToF32(data as Uint16Array);
    case 'I64':
      return Float32Array.from(int64ToNumbers(data as BigInt64Array));
    case 'F32':
      return (data as Float32Array).slice();
    default:
      return Float32Array.from(data as Exclude<DTypeArray, BigInt64Array>);
  }
}

/** Raw `dtype` data -> float64 (exact for every dtype; I64 throws beyond 2^53). */
export function toFloat64(dtype: DType, data: DTypeArray): Float64Array {
  switch (dtype) {
    case 'F16':
      return Float64Array.from(f16ToF32(data as Uint16Array));
    case 'BF16':
      return Float64Array.from(bf16ToF32(data as Uint16Array));
    case 'I64':
      return int64ToNumbers(data as BigInt64Array);
    case 'F64':
      return (data as Float64Array).slice();
    default:
      return Float64Array.from(data as Exclude<DTypeArray, BigInt64Array>);
  }
}

/**
 * The index of the first non-finite element (NaN, +-Infinity) of a float tensor's raw data (F16 /
 * BF16: the bit patterns, checked without widening), or -1 when all are finite.
 */
export function firstNonFinite(dtype: FloatDType, data: ArrayLike<number>): number {
  if (dtype === 'BF16') {
    for (let i = 0; i < data.length; i++) if ((data[i] & 0x7f80) === 0x7f80) return i;
  } else if (dtype === 'F16') {
    for (let i = 0; i < data.length; i++) if ((data[i] & 0x7c00) === 0x7c00) return i;
  } else {
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  }
  return -1;
}

/** A floating-point dtype that `fromFloat32` can produce. */
export type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16';

/** float32 values -> raw data of a floating-point dtype (F16/BF16 round to nearest even). */
export function fromFloat32<D extends FloatDType>(dtype: D, src: Float32Array): DTypeArrayMap[D] {
  switch (dtype) {
    case 'F16':
      return f32ToF16(src) as DTypeArrayMap[D];
    case 'BF16':
      return f32ToBf16(src) as DTypeArrayMap[D];
    case 'F64':
      return Float64Array.from(src) as DTypeArrayMap[D];
    default:
      return src.slice() as DTypeArrayMap[D];
  }
}
