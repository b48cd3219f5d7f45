/**
 * A Linear layer that runs from packed weights (codes + block scales + levels) through the
 * packed-matmul kernel, never holding an f32 copy of the weight. Drop-in for `Linear.forward`.
 *
 * Gradients flow to the input (so a frozen packed model can sit under trainable layers): the
 * backward pass dequantizes the weight transiently; the packed weight itself is not trainable.
 *
 * Activation precision (`act`, docs/compression.md "Kernels"): 'int8' (default) rounds the input
 * per group of 64 to int8 (as ONNX Runtime's MatMulNBits at accuracy level 4 and llama.cpp do)
 * and runs the kernel's vpmaddubsw path, 32 products per instruction; 'int16' rounds to int16
 * (relative error 2^-16 of the group's absmax instead of 2^-8) at half the multiply rate. The
 * default can be changed with the environment variable TFREE_PACKED_ACT=int8|int16.
 *
 * Lookup-table path (`lut`, docs/compression.md "Lookup-table kernel"): 1- and 2-bit formats with
 * bf16 scales and blocks a multiple of 64 run in int8 mode through `packedLutMatmul` (tables of
 * activation partial sums, weights row-interleaved once on first use). On by default; the
 * environment variable TFREE_PACKED_LUT=0|1 changes the default, `lut = false` forces the decode
 * kernel for one layer.
 */
import { Tensor, add, kernels, record, shapeSize } from '../tensor/index.js';
import { packedLutFits, packedLutLayout } from '../tensor/kernels/js_packed_lut.js';
import { dequantize, packedBytes, type PackedMatrix } from './quantize.js';

/** Activation precision of the packed kernel. */
export type PackedAct = 'int8' | 'int16';

/** The default activation precision: TFREE_PACKED_ACT when set (int8 | int16), else int8. */
export function defaultPackedAct(): PackedAct {
  const v = process.env.TFREE_PACKED_ACT;
  if (v === undefined || v === '') return 'int8';
  if (v !== 'int8' && v !== 'int16') throw new Error(`TFREE_PACKED_ACT must be int8 or int16, got "${v}"`);
  return v;
}

/** Whether the lookup-table path is on by default: TFREE_PACKED_LUT (0 | 1) when set, else on. */
export function defaultPackedLut(): boolean {
  const v = process.env.TFREE_PACKED_LUT;
  if (v === undefined || v === '') return true;
  if (v !== '0' && v !== '1') throw new Error(`TFREE_PACKED_LUT must be 0 or 1, got "${v}"`);
  return v === '1';
}

export class PackedLinear {
  readonly packed: PackedMatrix;
  readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** name of the layer (for error messages) */
  readonly name: string;
  /** activation precision of the kernel (see the class comment); may be changed at any time */
  act: PackedAct;
  /** use the lookup-table kernel where it fits (see the class comment); may be changed at any time */
  lut: boolean = defaultPackedLut();
  private lutLayout: { codes: Uint8Array; scales: Uint16Array } | null = null;

  constructor(packed: PackedMatrix, bias: Tensor | null = null, name = '<packed linear>', act: PackedAct = defaultPackedAct()) {
    this.packed = packed;
    this.act = act;
    this.bias = bias;
    this.inFeatures = packed.cols;
    this.outFeatures = packed.rows;
    this.name = name;
    if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== packed.rows)) {
      throw new Error(`PackedLinear ${name}: bias shape [${bias.shape.join(', ')}] does not match ${packed.rows} outputs`);
    }
  }

  /** Whether forward runs the lookup-table kernel (int8 mode, a format and layout it computes, `lut` on). */
  usesLut(): boolean {
    const f = this.packed.format;
    return this.lut && this.act === 'int8' && packedLutFits(f.bits, this.inFeatures, f.blockSize, f.scaleDtype === 'BF16');
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
    if (this.usesLut()) {
      this.lutLayout ??= packedLutLayout(N, K, p.format.bits, p.format.blockSize, p.codes, p.scales);
      kernels().packedLutMatmul(M, N, K, xd, 0, this.lutLayout.codes, p.format.bits, p.levels, this.lutLayout.scales, p.format.blockSize, out, 0);
    } else {
      kernels().packedMatmul(M, N, K, xd, 0, p.codes, p.format.bits, p.levels, p.scales, p.format.scaleDtype === 'BF16', p.format.blockSize, out, 0, this.act === 'int8');
    }
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

/** Calls fn on every PackedLinear reachable from `model` (each once); returns how many. */
export function forEachPackedLinear(model: object, fn: (layer: PackedLinear) => void): number {
  let n = 0;
  const seen = new Set<object>();
  const walk = (obj: object): void => {
    if (seen.has(obj)) return;
    seen.add(obj);
    if (obj instanceof PackedLinear) {
      fn(obj);
      n++;
      return;
    }
    for (const v of Object.values(obj)) {
      if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof Tensor) continue;
      walk(v as object);
    }
  };
  walk(model);
  return n;
}

/**
 * The activation precision a model computes its Linear layers with, for result records: the
 * `act` of its PackedLinear layers ('int8' or 'int16'; 'mixed' when they differ), or 'f32' when it
 * has none (plain or fake-quantized f32 weights multiply f32 activations).
 */
export function activationPrecision(model: object): PackedAct | 'mixed' | 'f32' {
  const acts = new Set<PackedAct>();
  forEachPackedLinear(model, (l) => acts.add(l.act));
  if (acts.size === 0) return 'f32';
  return acts.size === 1 ? [...acts][0] : 'mixed';
}

/** Sets the activation precision of every PackedLinear reachable from `model`; returns how many. */
export function setPackedAct(model: object, act: PackedAct): number {
  return forEachPackedLinear(model, (l) => (l.act = act));
}

/** Turns the lookup-table path on or off for every PackedLinear reachable from `model`; returns how many. */
export function setPackedLut(model: object, lut: boolean): number {
  return forEachPackedLinear(model, (l) => (l.lut = lut));
}
