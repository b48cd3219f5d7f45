/**
 * Pure-TypeScript twin of the packed-weight matmul (native/packed_generic.cc), both activation
 * modes (int16, and int8 with `act8`): the same function with the same float32 operations (Math.fround after each one), so both agree bit for
 * bit with the portable native version and to float32 rounding with the AVX2 one.
 *
 * Rows are decoded with a 256-entry table per packed byte (the study's "LUT8" idea): for 1, 2, 4
 * and 8 bits one table lookup yields the 8/bits int16 levels of a byte; 3-bit codes are read bit
 * by bit.
 */
import type { Kernels } from './types.js';

const fr = Math.fround;

/** Round half to even (C's nearbyint in the default rounding mode). */
export function rne(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/** Levels as integers: exact when all are integers with |L| <= intMax, else rne(L * q / max|L|) with scale max|L| / q. */
function levelsFixed(levels: Float32Array, n: number, intMax: number, q: number): { L16: Int16Array; ls: number } {
  const L16 = new Int16Array(n);
  let integral = true;
  let mx = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(levels[i]);
    if (!(a <= intMax) || !Number.isInteger(levels[i])) integral = false;
    if (a > mx) mx = a;
  }
  if (integral) {
    for (let i = 0; i < n; i++) L16[i] = levels[i];
    return { L16, ls: 1 };
  }
  if (!(mx > 0) || !Number.isFinite(mx)) return { L16, ls: Number.isFinite(mx) ? 0 : NaN };
  const inv = fr(q / mx);
  for (let i = 0; i < n; i++) L16[i] = rne(fr(levels[i] * inv));
  return { L16, ls: fr(mx / q) };
}

/** Levels as int16 with their scale (exact when they are integers of magnitude <= 8191, else 13-bit fixed point). */
export const levelsI16 = (levels: Float32Array, n: number): { L16: Int16Array; ls: number } => levelsFixed(levels, n, 8191, 8191);

/** int8 levels (act8 mode): exact when they are integers of magnitude <= 128, else 64/max fixed point (7 bits with the sign). */
export const levelsI8 = (levels: Float32Array, n: number): { L16: Int16Array; ls: number } => levelsFixed(levels, n, 128, 64);

/** x [K] -> integers per group of U (natural order), q = rne(x * qmax/absmax), and the group scales absmax/qmax. */
function quantizeX(x: Float32Array, off: number, K: number, U: number, qmax: number, x16: Int16Array, qOff: number, xs: Float32Array, sOff: number): void {
  for (let g = 0; g * U < K; g++) {
    const b = off + g * U;
    let amax = 0;
    let finite = true;
    for (let i = 0; i < U; i++) {
      const a = Math.abs(x[b + i]);
      if (!(a <= 3.4e38)) finite = false;
      else if (a > amax) amax = a;
    }
    const q = qOff + g * U;
    if (!finite || amax === 0) {
      x16.fill(0, q, q + U);
      xs[sOff + g] = finite ? 0 : NaN;
      continue;
    }
    const inv = fr(qmax / amax);
    for (let i = 0; i < U; i++) x16[q + i] = rne(fr(x[b + i] * inv));
    xs[sOff + g] = fr(amax / qmax);
  }
}

const f16Table = ((): Float32Array => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0x1f ? (m === 0 ? s * Infinity : NaN) : e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();
const bf16Scratch = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16Scratch.buffer);

export function scaleValue(h: number, bf16: boolean): number {
  if (!bf16) return f16Table[h];
  bf16Bits[0] = h << 16;
  return bf16Scratch[0];
}

export const packedMatmulJs: Kernels['packedMatmul'] = (M, N, K, x, xOff, codes, bits, levels, scales, scaleBf16, blockSize, out, outOff, act8 = false) => {
  if (![1, 2, 3, 4, 8].includes(bits)) throw new RangeError(`packedMatmul: bits must be 1, 2, 3, 4 or 8, got ${bits}`);
  if (!(blockSize >= 8) || blockSize % 8 !== 0 || K % blockSize !== 0) throw new RangeError(`packedMatmul: blockSize (${blockSize}) must be a multiple of 8 that divides K (${K})`);
  const rb = (K * bits) / 8;
  const nB = K / blockSize;
  if (levels.length < 2 ** bits || codes.length < N * rb || scales.length < N * nB || x.length < xOff + M * K || out.length < outOff + M * N) {
    throw new RangeError('packedMatmul: an array is too short for the given sizes');
  }
  if (M === 0 || N === 0) return;
  if (K === 0) {
    out.fill(0, outOff, outOff + M * N);
    return;
  }
  const U = blockSize % 64 === 0 ? 64 : blockSize;
  const nU = K / U;
  const { L16, ls } = act8 ? levelsI8(levels, 2 ** bits) : levelsI16(levels, 2 ** bits);
  const x16 = new Int16Array(M * K);
  const xs = new Float32Array(M * nU);
  const qmax = act8 ? 127 : 32767;
  for (let m = 0; m < M; m++) quantizeX(x, xOff + m * K, K, U, qmax, x16, m * K, xs, m * nU);
  // one table lookup per byte: E = 8/bits levels
  const E = bits === 3 ? 0 : 8 / bits;
  const lut = new Int16Array(E > 0 ? 256 * E : 0);
  for (let byte = 0; E > 0 && byte < 256; byte++) {
    for (let t = 0; t < E; t++) lut[byte * E + t] = L16[(byte >> (8 - bits * (t + 1))) & ((1 << bits) - 1)];
  }
  const wrow = new Int16Array(K);
  const sc = new Float32Array(nB);
  for (let n = 0; n < N; n++) {
    const r0 = n * rb;
    if (E > 0) {
      for (let j = 0, k = 0; j < rb; j++) {
        const base = codes[r0 + j] * E;
        for (let t = 0; t < E; t++) wrow[k++] = lut[base + t];
      }
    } else {
      for (let k = 0, bit = r0 * 8; k < K; k++) {
        let c = 0;
        for (let t = 0; t < 3; t++, bit++) c = (c << 1) | ((codes[bit >> 3] >> (7 - (bit & 7))) & 1);
        wrow[k] = L16[c];
      }
    }
    for (let b = 0; b < nB; b++) sc[b] = scaleValue(scales[n * nB + b], scaleBf16);
    for (let m = 0; m < M; m++) {
      const xq = m * K;
      let acc = 0;
      for (let u = 0; u < nU; u++) {
        let s = 0;
        for (let i = u * U, e = i + U; i < e; i++) s += wrow[i] * x16[xq + i];
        const comb = fr(fr(sc[Math.floor((u * U) / blockSize)] * ls) * xs[m * nU + u]);
        acc = fr(acc + fr(fr(s) * comb));
      }
      out[outOff + m * N + n] = acc;
    }
  }
};
