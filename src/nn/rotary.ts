/**
 * Rotary position embedding configuration: computes the inverse frequencies that the `rope` op
 * rotates by, including Llama 3.x frequency scaling exactly as Hugging Face
 * `_compute_llama3_parameters` (every step rounded to float32 as torch computes it).
 */
import { rope, ropeHeads, type Tensor } from '../tensor/index.js';

/** Llama 3.x `rope_scaling` ("rope_type": "llama3"). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Position interpolation ("rope_type": "linear"): inv_freq / factor. */
export interface LinearRopeScaling {
  type: 'linear';
  factor: number;
}

export type RopeScaling = Llama3RopeScaling | LinearRopeScaling;

export interface RotaryConfig {
  /** per-head feature size */
  headDim: number;
  /** base (HF `rope_theta`, default 10000) */
  theta?: number;
  /** rotating features per head (default headDim; HF `partial_rotary_factor * head_dim`) */
  rotaryDim?: number;
  scaling?: RopeScaling | null;
}

const f = Math.fround;

/** Unscaled inverse frequencies 1 / theta^(2i / dim), i < dim/2, in float32 as torch computes them. */
export function defaultInvFreq(rotaryDim: number, theta = 10000): Float32Array {
  if (!Number.isInteger(rotaryDim) || rotaryDim <= 0 || rotaryDim % 2 !== 0) throw new Error(`rotary: rotary dim must be a positive even integer, got ${rotaryDim}`);
  const h = rotaryDim / 2;
  const out = new Float32Array(h);
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)); `scalar / tensor` is reciprocal() * scalar
  for (let i = 0; i < h; i++) out[i] = f(1 / f(Math.pow(theta, f((2 * i) / rotaryDim))));
  return out;
}

/** Applies Llama 3 frequency scaling (HF `_compute_llama3_parameters`) to base inverse frequencies. */
export function llama3InvFreq(invFreq: Float32Array, s: Omit<Llama3RopeScaling, 'type'>): Float32Array {
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldCtx } = s;
  if (!(factor > 0) || !(highFreqFactor > lowFreqFactor) || !(oldCtx > 0)) {
    throw new Error(`rotary: invalid llama3 rope_scaling (factor ${factor}, low ${lowFreqFactor}, high ${highFreqFactor}, original ctx ${oldCtx})`);
  }
  // python scalars (double) are compared as doubles against f32 tensor values, but combined with
  // tensors in f32 arithmetic (the scalar rounded to f32 first); `scalar / tensor` in torch is
  // `tensor.reciprocal() * scalar`
  const lowFreqWavelen = oldCtx / lowFreqFactor;
  const highFreqWavelen = oldCtx / highFreqFactor;
  const twoPi = f(2 * Math.PI);
  const fFactor = f(factor);
  const fLow = f(lowFreqFactor);
  const fSpan = f(highFreqFactor - lowFreqFactor);
  const fCtx = f(oldCtx);
  const out = new Float32Array(invFreq.length);
  for (let i = 0; i < invFreq.length; i++) {
    const inv = invFreq[i];
    const wavelen = f(f(1 / inv) * twoPi);
    // wavelen > low_freq_wavelen: divide by factor; wavelen < high_freq_wavelen: unchanged
    let scaled = wavelen > lowFreqWavelen ? f(inv / fFactor) : inv;
    const medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (medium) {
      // smooth = (old_ctx / wavelen - low) / (high - low); (1 - smooth) * inv / factor + smooth * inv
      const smooth = f(f(f(f(1 / wavelen) * fCtx) - fLow) / fSpan);
      scaled = f(f(f(f(1 - smooth) * scaled) / fFactor) + f(smooth * scaled));
    }
    out[i] = scaled;
  }
  return out;
}

/** Inverse frequencies for a rotary configuration (length rotaryDim / 2). */
export function ropeInvFreq(cfg: RotaryConfig): Float32Array {
  const rot = cfg.rotaryDim ?? cfg.headDim;
  if (rot > cfg.headDim) throw new Error(`rotary: rotary dim ${rot} exceeds head dim ${cfg.headDim}`);
  const base = defaultInvFreq(rot, cfg.theta ?? 10000);
  const s = cfg.scaling;
  if (s === undefined || s === null) return base;
  if (s.type === 'llama3') return llama3InvFreq(base, s);
  if (s.type === 'linear') {
    if (!(s.factor > 0)) throw new Error(`rotary: linear scaling factor must be positive, got ${s.factor}`);
    return base.map((x) => f(x / s.factor));
  }
  const t: never = s;
  throw new Error(`rotary: unsupported scaling ${JSON.stringify(t)}`);
}

function num(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`rope_scaling.${key} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Parses a Hugging Face `rope_scaling` config entry (null/absent, "default", "linear" or "llama3";
 * both the `rope_type` and legacy `type` keys). Other types throw: they are not implemented.
 */
export function ropeScalingFromHF(json: unknown): RopeScaling | null {
  if (json === null || json === undefined) return null;
  if (typeof json !== 'object' || Array.isArray(json)) throw new Error(`rope_scaling must be an object or null, got ${JSON.stringify(json)}`);
  const o = json as Record<string, unknown>;
  const type = o.rope_type ?? o.type;
  switch (type) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor: num(o, 'factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: num(o, 'factor'),
        lowFreqFactor: num(o, 'low_freq_factor'),
        highFreqFactor: num(o, 'high_freq_factor'),
        originalMaxPositionEmbeddings: num(o, 'original_max_position_embeddings'),
      };
    default:
      throw new Error(`rope_scaling type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`);
  }
}

/** The rotary embedding of one attention geometry (no parameters). */
export class RotaryEmbedding {
  readonly headDim: number;
  readonly rotaryDim: number;
  readonly theta: number;
  readonly invFreq: Float32Array;

  constructor(cfg: RotaryConfig) {
    this.headDim = cfg.headDim;
    this.rotaryDim = cfg.rotaryDim ?? cfg.headDim;
    this.theta = cfg.theta ?? 10000;
    this.invFreq = ropeInvFreq(cfg);
  }

  /** Rotates x [..., T, H, headDim] by per-token positions (length = number of tokens). */
  apply(x: Tensor, positions: Int32Array): Tensor {
    if (x.shape[x.rank - 1] !== this.headDim) throw new Error(`rotary: input last dim ${x.shape[x.rank - 1]} != head dim ${this.headDim}`);
    return rope(x, positions, { theta: this.theta, rotaryDim: this.rotaryDim, invFreq: this.invFreq });
  }

  /** apply() of x [B, T, H, headDim], returned head-major [B, H, T, headDim] (no permute copy). */
  applyHeads(x: Tensor, positions: Int32Array): Tensor {
    if (x.shape[x.rank - 1] !== this.headDim) throw new Error(`rotary: input last dim ${x.shape[x.rank - 1]} != head dim ${this.headDim}`);
    return ropeHeads(x, positions, { theta: this.theta, rotaryDim: this.rotaryDim, invFreq: this.invFreq });
  }
}
