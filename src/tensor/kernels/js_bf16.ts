/**
 * Pure-TypeScript twin of the bf16-weight matmul (native/kernels.h, Bf16Args; native/bf16_generic.cc):
 * out = xr W^T with W [N, K] bf16 bit patterns widened exactly, products and sums in float32 in
 * ascending k (Math.fround after each), so it agrees bit for bit with the portable native kernel;
 * xr = x (xBf16 false) or x rounded to bf16 (xBf16 true, the function vdpbf16ps computes). Also the
 * f32 <-> bf16 conversions (`toBf16`, nearest even, and `bf16ToF32`).
 */
import type { Kernels } from './types.js';

const fr = Math.fround;
const f1 = new Float32Array(1);
const u1 = new Uint32Array(f1.buffer);

/** bf16 bit pattern of a float32 value: round to nearest, ties to even; NaN stays a (quiet) NaN with its sign. */
export function bf16Bits(v: number): number {
  f1[0] = v;
  const b = u1[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 array -> bf16 bit patterns (nearest even). */
export function toBf16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = bf16Bits(x[i]);
  return out;
}

/** bf16 bit patterns -> float32 (exact). */
export function bf16ToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const ou = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) ou[i] = h[i] << 16;
  return out;
}

export const bf16MatmulJs: Kernels['bf16Matmul'] = (M, N, K, x, xOff, w, out, outOff, xBf16) => {
  if (x.length < xOff + M * K || w.length < N * K || out.length < outOff + M * N) {
    throw new RangeError('bf16Matmul: an array is too short for the given sizes');
  }
  if (M === 0 || N === 0) return;
  const xr = x.slice(xOff, xOff + M * K);
  if (xBf16) {
    const xu = new Uint32Array(xr.buffer);
    for (let i = 0; i < xr.length; i++) xu[i] = bf16Bits(xr[i]) << 16;
  }
  const wrow = new Float32Array(K);
  const wu = new Uint32Array(wrow.buffer);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) wu[k] = w[n * K + k] << 16;
    for (let m = 0; m < M; m++) {
      let acc = 0;
      const xo = m * K;
      for (let k = 0; k < K; k++) acc = fr(acc + fr(xr[xo + k] * wrow[k]));
      out[outOff + m * N + n] = acc;
    }
  }
};
