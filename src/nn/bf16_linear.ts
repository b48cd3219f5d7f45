/**
 * A Linear layer whose weight stays in bfloat16 ([out, in] bit patterns, as stored in a
 * safetensors BF16 tensor): half the memory of f32, no f32 copy of the whole weight is ever
 * made. Drop-in for `Linear.forward` at inference (gradients flow to the input only).
 *
 * The product runs through `bf16Matmul` (one small interface): a tile of weight rows is widened
 * to f32 (exact: a bf16 value is the high half of its f32) into a scratch buffer and multiplied
 * by the kernel table's GEMM, so memory stays at the bf16 weight plus one tile. A native bf16
 * GEMV/GEMM kernel, when the kernel table has one, replaces the tile loop behind the same call.
 */
import { Tensor, add, kernels, record, shapeSize } from '../tensor/index.js';

/** Weight rows widened per tile (tile = rows x K floats). */
const TILE_FLOATS = 1 << 20;

let scratch = new Float32Array(0);
let scratchU32 = new Uint32Array(0);

function tile(n: number): { f: Float32Array; u: Uint32Array } {
  if (scratch.length < n) {
    scratch = new Float32Array(n);
    scratchU32 = new Uint32Array(scratch.buffer);
  }
  return { f: scratch, u: scratchU32 };
}

/** bf16 bit pattern -> number (exact). */
export function bf16ToNumber(h: number): number {
  const { f, u } = tile(1);
  u[0] = h << 16;
  return f[0];
}

/**
 * out[M, N] = x[M, K] @ W^T with W [N, K] given as bf16 bit patterns (row-major). Every output
 * element is written. Products and sums are f32 (the kernel table's GEMM).
 */
export function bf16Matmul(M: number, N: number, K: number, x: Float32Array, w: Uint16Array, out: Float32Array): void {
  if (w.length < N * K) throw new Error(`bf16Matmul: weight has ${w.length} values, [${N}, ${K}] needs ${N * K}`);
  if (x.length < M * K || out.length < M * N) throw new Error(`bf16Matmul: x or out too small for M=${M}, N=${N}, K=${K}`);
  const k = kernels();
  const rowsPerTile = Math.max(1, Math.min(N, Math.floor(TILE_FLOATS / K)));
  const { f, u } = tile(rowsPerTile * K);
  for (let n0 = 0; n0 < N; n0 += rowsPerTile) {
    const nr = Math.min(rowsPerTile, N - n0);
    const base = n0 * K;
    const len = nr * K;
    for (let i = 0; i < len; i++) u[i] = w[base + i] << 16;
    // C[M, nr] (columns n0.. of out, ldc N) = x[M, K] @ tile[nr, K]^T (M = 1: the GEMV path)
    k.gemm(1, false, true, M, nr, K, 1, x, 0, K, 0, f, 0, K, 0, 0, out, n0, N, 0);
  }
}

export class Bf16Linear {
  /** [out, in] bf16 bit patterns */
  readonly weight: Uint16Array;
  readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** the layer's name (its weight's parameter name without `.weight`) */
  readonly name: string;

  constructor(weight: Uint16Array, outFeatures: number, inFeatures: number, bias: Tensor | null = null, name = '<bf16 linear>') {
    if (weight.length !== outFeatures * inFeatures) throw new Error(`Bf16Linear ${name}: weight has ${weight.length} values, [${outFeatures}, ${inFeatures}] needs ${outFeatures * inFeatures}`);
    if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) throw new Error(`Bf16Linear ${name}: bias shape [${bias.shape.join(', ')}] does not match ${outFeatures} outputs`);
    this.weight = weight;
    this.bias = bias;
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.name = name;
  }

  /** Bytes of the weight. */
  get weightBytes(): number {
    return this.weight.byteLength;
  }

  /** x [..., in] -> [..., out] */
  forward(x: Tensor): Tensor {
    const K = this.inFeatures;
    const N = this.outFeatures;
    if (x.rank < 1 || x.shape[x.rank - 1] !== K) throw new Error(`Bf16Linear ${this.name}: input shape [${x.shape.join(', ')}] does not end in ${K}`);
    const xd = x.f32();
    const M = shapeSize(x.shape) / K;
    const out = new Float32Array(M * N);
    bf16Matmul(M, N, K, xd, this.weight, out);
    let y = new Tensor(out, [...x.shape.slice(0, -1), N]);
    const w = this.weight;
    y = record(y, 'bf16_linear', [x], (g) => {
      // gx[M, K] = g[M, N] @ W[N, K], one widened row of W at a time
      const gx = new Float32Array(M * K);
      for (let n = 0; n < N; n++) {
        for (let m = 0; m < M; m++) {
          const gv = g[m * N + n];
          if (gv === 0) continue;
          for (let i = 0; i < K; i++) gx[m * K + i] += gv * bf16ToNumber(w[n * K + i]);
        }
      }
      return [gx];
    });
    if (this.bias !== null) y = add(y, this.bias);
    return y;
  }
}
