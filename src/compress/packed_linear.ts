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
 * kernel for one layer. Once the layout is built the layer drops the plain codes and scales, so
 * it holds one copy of the weight: `packed` rebuilds them from the layout when asked for (saving,
 * the backward pass, the decode kernel), and keeps them from then on.
 */
import { Tensor, add, kernels, record, shapeSize } from '../tensor/index.js';
import { packedLutFits, packedLutLayout, packedLutUnlayout } from '../tensor/kernels/js_packed_lut.js';
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
  /** the plain packed matrix; null while only the lookup-table layout holds the weight */
  private plain: PackedMatrix | null;
  /** format, sizes and levels (what every path needs besides codes and scales) */
  private readonly meta: Pick<PackedMatrix, 'format' | 'rows' | 'cols' | 'levels'>;

  constructor(packed: PackedMatrix, bias: Tensor | null = null, name = '<packed linear>', act: PackedAct = defaultPackedAct()) {
    this.plain = packed;
    this.meta = { format: packed.format, rows: packed.rows, cols: packed.cols, levels: packed.levels };
    this.act = act;
    this.bias = bias;
    this.inFeatures = packed.cols;
    this.outFeatures = packed.rows;
    this.name = name;
    if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== packed.rows)) {
      throw new Error(`PackedLinear ${name}: bias shape [${bias.shape.join(', ')}] does not match ${packed.rows} outputs`);
    }
  }

  /** The packed weight (codes, scales, levels); rebuilt from the lookup-table layout when that is all the layer holds. */
  get packed(): PackedMatrix {
    if (this.plain === null) {
      const m = this.meta;
      const l = this.lutLayout as { codes: Uint8Array; scales: Uint16Array };
      this.plain = { ...m, ...packedLutUnlayout(m.rows, m.cols, m.format.bits, m.format.blockSize, l) };
    }
    return this.plain;
  }

  /** Bytes of weight data the layer holds now (plain codes and scales, the lookup-table layout, levels). */
  get residentBytes(): number {
    let b = this.meta.levels.byteLength;
    if (this.plain !== null) b += this.plain.codes.byteLength + this.plain.scales.byteLength;
    if (this.lutLayout !== null) b += this.lutLayout.codes.byteLength + this.lutLayout.scales.byteLength;
    return b;
  }

  /** Whether forward runs the lookup-table kernel (int8 mode, a format and layout it computes, `lut` on). */
  usesLut(): boolean {
    const f = this.meta.format;
    return this.lut && this.act === 'int8' && packedLutFits(f.bits, this.inFeatures, f.blockSize, f.scaleDtype === 'BF16');
  }

  /** Bytes of the packed weight (codes, scales, codebook). */
  get weightBytes(): number {
    const m = this.meta;
    if (this.plain !== null) return packedBytes(this.plain);
    return (m.rows * m.cols * m.format.bits) / 8 + ((m.rows * m.cols) / m.format.blockSize) * 2 + (m.format.kind === 'kmeans' ? m.levels.byteLength : 0);
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
    const f = this.meta.format;
    if (this.usesLut()) {
      if (this.lutLayout === null) {
        const p = this.packed;
        const k = kernels();
        this.lutLayout = packedLutLayout(N, K, f.bits, f.blockSize, p.codes, p.scales, (bytes) => k.weightBuffer(bytes));
        this.plain = null; // one copy of the weight: `packed` rebuilds the plain form when asked
      }
      kernels().packedLutMatmul(M, N, K, xd, 0, this.lutLayout.codes, f.bits, this.meta.levels, this.lutLayout.scales, f.blockSize, out, 0);
    } else {
      const p = this.packed;
      kernels().packedMatmul(M, N, K, xd, 0, p.codes, f.bits, p.levels, p.scales, f.scaleDtype === 'BF16', f.blockSize, out, 0, this.act === 'int8');
    }
    let y = new Tensor(out, [...x.shape.slice(0, -1), N]);
    y = record(y, 'packed_linear', [x], (g) => {
      const W = dequantize(this.packed);
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
