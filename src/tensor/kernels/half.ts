/**
 * float32 bit pattern -> bfloat16 / float16 bit pattern (round to nearest, ties to even), shared
 * by src/io/dtype.ts (safetensors conversions) and the quantizer twin (js_quant.ts), which must
 * round block scales exactly as the stored files do.
 */

/** float32 bits -> bfloat16 bits (nearest even; NaN stays a quiet NaN with its sign). */
export function f32BitsToBf16(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) {
    // NaN: keep sign and top payload bits, force the quiet bit so it stays a NaN.
    return ((u >>> 16) | 0x0040) & 0xffff;
  }
  // Round to nearest, ties to even. `u + bias` stays below 2^32 for all non-NaN inputs.
  const bias = 0x7fff + ((u >>> 16) & 1);
  return ((u + bias) >>> 16) & 0xffff;
}

/** float32 bits -> float16 bits (nearest even; overflow -> inf; NaN stays a NaN). */
export function f32BitsToF16(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00; // +-inf
    return sign | 0x7c00 | 0x0200 | (mant >>> 13); // NaN, quiet bit forced
  }
  if (exp > 142) return sign | 0x7c00; // |x| >= 2^16: overflow to inf
  if (exp >= 113) {
    // normal float16 range (before rounding)
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++; // carry may reach inf: correct
    return sign | h;
  }
  // subnormal float16 (or zero): value in units of 2^-24 is M * 2^(exp - 126)
  const shift = 126 - exp; // >= 14
  if (shift > 24) return sign; // below half the smallest subnormal
  const m = mant | 0x800000;
  let q = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (q & 1) !== 0)) q++; // may become the smallest normal: correct
  return sign | q;
}
