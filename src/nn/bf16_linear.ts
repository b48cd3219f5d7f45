/**
 * A Linear layer `y = x W^T + b` whose weight stays in bf16 ([out, in] bit patterns, 2 bytes per
 * weight): bf16 checkpoints run without an f32 copy of their weights. Forward runs the bf16-weight
 * kernel `kernels().bf16Matmul` (native/kernels.h, Bf16Args: AVX-512 vdpbf16ps or widening
 * AVX-512F / AVX2 kernels, pure TS twin); gradients flow to the input (the weight is frozen; the
 * backward pass widens it transiently, 256 rows at a time).
 *
 * API (small on purpose):
 *   new Bf16Linear(weight, outFeatures, inFeatures, bias?, name?, act?)  weight: Uint16Array bf16
 *   Bf16Linear.fromLinear(linear, name?)   rounds an f32 Linear's weight to bf16 (nearest even)
 *   layer.forward(x)                       x [..., in] f32 -> [..., out]
 *   layer.act = 'f32' | 'bf16'             activation precision, see `Bf16Act`
 *   layer.weightBytes                      bytes of the bf16 weight
 * `toBf16` / `bf16ToF32` (src/tensor/kernels/js_bf16.ts, exported by src/tensor) convert arrays.
 */
import { Tensor, add, kernels, record, shapeSize, toBf16 } from '../tensor/index.js';
import type { Linear } from './linear.js';

/**
 * Activation precision of a Bf16Linear: 'f32' (default) multiplies the f32 activations by the
 * exactly widened weights; 'bf16' first rounds the activations to bf16 (relative error <= 2^-9 per
 * activation), the function AVX512_BF16's vdpbf16ps computes: on CPUs with it, the faster choice
 * for batched (compute-bound) calls; batch-1 GEMV is bound by reading the weights either way.
 */
export type Bf16Act = 'f32' | 'bf16';

export class Bf16Linear {
  readonly weight: Uint16Array;
  readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly name: string;
  act: Bf16Act;

  constructor(weight: Uint16Array, outFeatures: number, inFeatures: number, bias: Tensor | null = null, name = '<bf16 linear>', act: Bf16Act = 'f32') {
    if (!Number.isInteger(outFeatures) || !Number.isInteger(inFeatures) || outFeatures < 0 || inFeatures < 0 || weight.length !== outFeatures * inFeatures) {
      throw new Error(`Bf16Linear ${name}: weight has ${weight.length} values, expected ${outFeatures} x ${inFeatures}`);
    }
    if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) {
      throw new Error(`Bf16Linear ${name}: bias shape [${bias.shape.join(', ')}] does not match ${outFeatures} outputs`);
    }
    this.weight = weight;
    this.outFeatures = outFeatures;
    this.inFeatures = inFeatures;
    this.bias = bias;
    this.name = name;
    this.act = act;
  }

  /** A Bf16Linear with the weight of `linear` rounded to bf16 (nearest even); the bias is shared. */
  static fromLinear(linear: Linear, name?: string): Bf16Linear {
    const w = linear.weight.f32();
    return new Bf16Linear(toBf16(w), linear.outFeatures, linear.inFeatures, linear.bias, name);
  }

  /** Bytes of the bf16 weight. */
  get weightBytes(): number {
    return this.weight.byteLength;
  }

  /** x [..., in] -> [..., out] */
  forward(x: Tensor): Tensor {
    const K = this.inFeatures;
    const N = this.outFeatures;
    if (x.rank < 1 || x.shape[x.rank - 1] !== K) throw new Error(`Bf16Linear ${this.name}: input shape [${x.shape.join(', ')}] does not end in ${K}`);
    if (x.dtype !== 'f32') throw new Error(`Bf16Linear ${this.name}: input must be f32, got ${x.dtype}`);
    const M = shapeSize(x.shape) / K;
    const out = new Float32Array(M * N);
    kernels().bf16Matmul(M, N, K, x.f32(), 0, this.weight, out, 0, this.act === 'bf16');
    let y = new Tensor(out, [...x.shape.slice(0, -1), N]);
    const w = this.weight;
    y = record(y, 'bf16_linear', [x], (g) => {
      // gx = g W, W widened 256 rows at a time (gx += g[:, n0:n1] W[n0:n1, :])
      const gx = new Float32Array(M * K);
      const rows = 256;
      const wf = new Float32Array(Math.min(rows, N) * K);
      const wu = new Uint32Array(wf.buffer);
      for (let n0 = 0; n0 < N; n0 += rows) {
        const nb = Math.min(rows, N - n0);
        for (let i = 0; i < nb * K; i++) wu[i] = w[n0 * K + i] << 16;
        kernels().gemm(1, false, false, M, K, nb, 1, g, n0, N, 0, wf, 0, K, 0, n0 === 0 ? 0 : 1, gx, 0, K, 0);
      }
      return [gx];
    });
    if (this.bias !== null) y = add(y, this.bias);
    return y;
  }
}
