/**
 * A Linear layer that runs from packed weights (codes + block scales + levels) through the
 * packed-matmul kernel, never holding an f32 copy of the weight. Drop-in for `Linear.forward`.
 *
 * Gradients flow to the input (so a frozen packed model can sit under trainable layers): the
 * backward pass dequantizes the weight transiently; the packed weight itself is not trainable.
 */
import { Tensor, add, kernels, record, shapeSize } from '../tensor/index.js';
import { dequantize, packedBytes, type PackedMatrix } from './quantize.js';

export class PackedLinear {
  readonly packed: PackedMatrix;
  readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** name of the layer (for error messages) */
  readonly name: string;

  constructor(packed: PackedMatrix, bias: Tensor | null = null, name = '<packed linear>') {
    this.packed = packed;
    this.bias = bias;
    this.inFeatures = packed.cols;
    this.outFeatures = packed.rows;
    this.name = name;
    if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== packed.rows)) {
      throw new Error(`PackedLinear ${name}: bias shape [${bias.shape.join(', ')}] does not match ${packed.rows} outputs`);
    }
  }

  /** Bytes of the packed weight (codes, scales, codebook). */
  get weightBytes(): number {
    return packedBytes(this.packed);
  }

  /** x [..., in] -> [..., out] */
  forward(x: Tensor): Tensor {
    const K = this.inFeatures;
    const N = this.outFeatures;
    if (x.rank < 1 || x.shape[x.rank - 1] !== K) {
      throw new Error(`PackedLinear ${this.name}: input shape [${x.shape.join(', ')}] does not end in ${K}`);
    }
    if (x.dtype !== 'f32') throw new Error(`PackedLinear ${this.name}: input must be f32, got ${x.dtype}`);
    const xd = x.f32();
    const M = shapeSize(x.shape) / K;
    const out = new Float32Array(M * N);
    const p = this.packed;
    kernels().packedMatmul(M, N, K, xd, 0, p.codes, p.format.bits, p.levels, p.scales, p.format.scaleDtype === 'BF16', p.format.blockSize, out, 0);
    let y = new Tensor(out, [...x.shape.slice(0, -1), N]);
    y = record(y, 'packed_linear', [x], (g) => {
      const W = dequantize(p);
      const gx = new Float32Array(M * K);
      kernels().gemm(1, false, false, M, K, N, 1, g, 0, N, 0, W, 0, K, 0, 0, gx, 0, K, 0);
      return [gx];
    });
    if (this.bias !== null) y = add(y, this.bias);
    return y;
  }
}
