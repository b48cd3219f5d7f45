/**
 * Activation-side lookup-table matmul for 1- and 2-bit codes (native/kernels.h, PackedLutArgs):
 * the pure-TypeScript twin of native/packed_lut_generic.cc, with the same float32 operations in the
 * same order (Math.fround after each), so the two (and the AVX2 version) agree bit for bit; and
 * `packedLutLayout`, the load-time row-interleaving of codes and scales that all three take.
 */
import type { Kernels } from './types.js';
import { levelsI8, rne, scaleValue } from './js_packed.js';

const fr = Math.fround;

/** Whether the lookup-table kernel computes this layout: 1 or 2 bits, blocks a multiple of 64 dividing K, bf16 scales. */
export function packedLutFits(bits: number, K: number, blockSize: number, scaleBf16: boolean): boolean {
  return (bits === 1 || bits === 2) && scaleBf16 && blockSize % 64 === 0 && blockSize > 0 && K % blockSize === 0;
}

/**
 * Position in the row-interleaved code layout of byte j of row r (< 32) of a tile (relative to the
 * tile's start, tile * rb * 32): the tile's codes are `bits` streams of rb * 32 / bits bytes, stream h
 * holding code bytes 8h .. 8h + 7 of each group of 64 weights (8 * bits bytes per row and group),
 * 32 rows side by side: ((u * 8 + jj) * 32 + r) in stream h for byte j = u * 8 * bits + 8h + jj.
 * (One stream for 1-bit codes; two for 2-bit codes, so that a kernel reading a pair of tiles has
 * four code streams in flight: docs/results/engine.md.)
 */
function lutCodePos(j: number, r: number, rb: number, bits: number): number {
  const jb = j % (8 * bits);
  const u = (j - jb) / (8 * bits);
  return (jb >> 3) * ((rb * 32) / bits) + (u * 8 + (jb & 7)) * 32 + r;
}

/**
 * Row-interleaved layout of packed codes (N rows of K*bits/8 bytes, MSB-first) and their bf16 block
 * scales [N, K/B]: tiles of 32 rows, the last zero-padded; the codes of a tile at tile*rb*32, each
 * byte where `lutCodePos` puts it (bits streams per tile, 32 rows side by side); scales[(tile*nB +
 * b)*32 + r] = scale of block b of row 32*tile + r. Both are views of one zeroed buffer from `alloc`
 * (codes, then the scales 64 bytes aligned): pass `kernels().weightBuffer`, whose native form puts
 * the buffer on huge pages; default a plain one. An in-memory layout only (built at load from the
 * plain row-major codes; files keep the plain form).
 */
export function packedLutLayout(
  N: number,
  K: number,
  bits: number,
  blockSize: number,
  codes: Uint8Array,
  scales: Uint16Array,
  alloc: (bytes: number) => Uint8Array = (bytes) => new Uint8Array(bytes),
): { codes: Uint8Array; scales: Uint16Array } {
  const rb = (K * bits) / 8;
  const nB = K / blockSize;
  const nT = Math.ceil(N / 32);
  const cBytes = nT * 32 * rb;
  const sOff = Math.ceil(cBytes / 64) * 64;
  const buf = alloc(sOff + nT * 32 * nB * 2);
  const c = buf.subarray(0, cBytes);
  const s = new Uint16Array(buf.buffer, buf.byteOffset + sOff, nT * 32 * nB);
  for (let n = 0; n < N; n++) {
    const tile = n >> 5;
    const r = n & 31;
    for (let j = 0; j < rb; j++) c[tile * rb * 32 + lutCodePos(j, r, rb, bits)] = codes[n * rb + j];
    for (let b = 0; b < nB; b++) s[(tile * nB + b) * 32 + r] = scales[n * nB + b];
  }
  return { codes: c, scales: s };
}

/** Inverse of packedLutLayout: the plain row-major codes [N, K*bits/8] and scales [N, K/blockSize]. */
export function packedLutUnlayout(N: number, K: number, bits: number, blockSize: number, layout: { codes: Uint8Array; scales: Uint16Array }): { codes: Uint8Array; scales: Uint16Array } {
  const rb = (K * bits) / 8;
  const nB = K / blockSize;
  const codes = new Uint8Array(N * rb);
  const scales = new Uint16Array(N * nB);
  for (let n = 0; n < N; n++) {
    const tile = n >> 5;
    const r = n & 31;
    for (let j = 0; j < rb; j++) codes[n * rb + j] = layout.codes[tile * rb * 32 + lutCodePos(j, r, rb, bits)];
    for (let b = 0; b < nB; b++) scales[n * nB + b] = layout.scales[(tile * nB + b) * 32 + r];
  }
  return { codes, scales };
}

/** The int8 tables of one activation row (tab [K/64][Q][16], ts [K/64]), as packed_lut_tables. */
function lutTables(x: Float32Array, off: number, K: number, bits: number, L8: Int16Array, tab: Int8Array, tOff: number, ts: Float32Array, sOff: number): void {
  const E = 4 / bits;
  const Q = 64 / E;
  const mask = (1 << bits) - 1;
  const T = new Float32Array(Q * 16);
  for (let u = 0; u * 64 < K; u++) {
    const xg = off + u * 64;
    let amax = 0;
    let finite = true;
    for (let q = 0; q < Q; q++) {
      for (let j = 0; j < 16; j++) {
        let t = 0;
        for (let i = 0; i < E; i++) t = fr(t + fr(L8[(j >> (4 - bits * (i + 1))) & mask] * x[xg + q * E + i]));
        T[q * 16 + j] = t;
        const a = Math.abs(t);
        if (!(a <= 3.4e38)) finite = false;
        else if (a > amax) amax = a;
      }
    }
    const tg = tOff + u * Q * 16;
    if (!finite || amax === 0) {
      tab.fill(0, tg, tg + Q * 16);
      ts[sOff + u] = finite ? 0 : NaN;
      continue;
    }
    const inv = fr(127 / amax);
    for (let i = 0; i < Q * 16; i++) tab[tg + i] = rne(fr(T[i] * inv));
    ts[sOff + u] = fr(amax / 127);
  }
}

export const packedLutMatmulJs: Kernels['packedLutMatmul'] = (M, N, K, x, xOff, codes, bits, levels, scales, blockSize, out, outOff) => {
  if (bits !== 1 && bits !== 2) throw new RangeError(`packedLutMatmul: bits must be 1 or 2, got ${bits}`);
  if (!(blockSize >= 64) || blockSize % 64 !== 0 || K % blockSize !== 0) throw new RangeError(`packedLutMatmul: blockSize (${blockSize}) must be a multiple of 64 that divides K (${K})`);
  const rb = (K * bits) / 8;
  const nB = K / blockSize;
  const nT = Math.ceil(N / 32);
  if (levels.length < 2 ** bits || codes.length < nT * 32 * rb || scales.length < nT * 32 * nB || x.length < xOff + M * K || out.length < outOff + M * N) {
    throw new RangeError('packedLutMatmul: an array is too short for the given sizes');
  }
  if (M === 0 || N === 0) return;
  if (K === 0) {
    out.fill(0, outOff, outOff + M * N);
    return;
  }
  const nU = K / 64;
  const Q = 16 * bits;
  const { L16: L8, ls } = levelsI8(levels, 2 ** bits);
  const tab = new Int8Array(M * nU * Q * 16);
  const ts = new Float32Array(M * nU);
  for (let m = 0; m < M; m++) lutTables(x, xOff + m * K, K, bits, L8, tab, m * nU * Q * 16, ts, m * nU);
  for (let n = 0; n < N; n++) {
    const tile = n >> 5;
    const r = n & 31;
    const col = tile * rb * 32 + r;
    const ss = (rb * 32) / bits; // bytes per code stream (lutCodePos)
    for (let m = 0; m < M; m++) {
      let acc = 0;
      for (let u = 0; u < nU; u++) {
        const tg = (m * nU + u) * Q * 16;
        let s = 0;
        for (let q = 0; q < Q; q++) {
          const byte = codes[col + (q >> 4) * ss + (u * 8 + ((q >> 1) & 7)) * 32];
          s += tab[tg + q * 16 + (q & 1 ? byte & 15 : byte >> 4)];
        }
        const sc = scaleValue(scales[(tile * nB + Math.floor((u * 64) / blockSize)) * 32 + r], true);
        const comb = fr(fr(sc * ls) * ts[m * nU + u]);
        acc = fr(acc + fr(s * comb));
      }
      out[outOff + m * N + n] = acc;
    }
  }
};
