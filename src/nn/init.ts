/**
 * Parameter initialisers. Each is a small function `(out, shape, rng) => void` that fills a
 * fresh f32 buffer for a parameter of the given shape, drawing from the rng it is handed (the
 * VarBuilder hands each parameter its own stream, forked by the parameter's name).
 *
 * Fan conventions follow PyTorch (`torch.nn.init._calculate_fan_in_and_fan_out`): for a weight
 * [out, in, ...rest], fan_in = in * prod(rest) and fan_out = out * prod(rest); a 1-D tensor has
 * fan_in = fan_out = its length.
 */
import type { Rng } from './rng.js';

export type Init = (out: Float32Array, shape: readonly number[], rng: Rng) => void;

/** fan_in and fan_out of a weight shape (PyTorch conventions). */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  let rf = 1;
  for (let i = 2; i < shape.length; i++) rf *= shape[i];
  return { fanIn: shape[1] * rf, fanOut: shape[0] * rf };
}

export function zeros(): Init {
  return (out) => out.fill(0);
}

export function ones(): Init {
  return (out) => out.fill(1);
}

export function constant(value: number): Init {
  return (out) => out.fill(value);
}

/** U(a, b). */
export function uniform(a: number, b: number): Init {
  return (out, _shape, rng) => rng.fillUniform(out, a, b);
}

/** N(mean, std^2) (Hugging Face `initializer_range` init is `normal(0.02)`). */
export function normal(std: number, mean = 0): Init {
  return (out, _shape, rng) => rng.fillNormal(out, mean, std);
}

/**
 * Truncated normal N(mean, std^2) restricted to [a, b] by rejection (as torch.nn.init.trunc_normal_
 * in distribution; defaults a = mean - 2 std, b = mean + 2 std, the common "truncated at two
 * standard deviations" convention; PyTorch's own defaults are the absolute bounds [-2, 2]).
 */
export function truncatedNormal(std: number, opts: { mean?: number; a?: number; b?: number } = {}): Init {
  const mean = opts.mean ?? 0;
  const a = opts.a ?? mean - 2 * std;
  const b = opts.b ?? mean + 2 * std;
  if (!(a < b)) throw new Error(`truncatedNormal: empty interval [${a}, ${b}]`);
  if (std === 0) return constant(Math.min(Math.max(mean, a), b));
  // rejection is fine whenever the interval holds a reasonable share of the mass
  const za = (a - mean) / std;
  const zb = (b - mean) / std;
  if (zb < -6 || za > 6) throw new Error(`truncatedNormal: interval [${a}, ${b}] lies more than 6 std from the mean`);
  return (out, _shape, rng) => {
    for (let i = 0; i < out.length; i++) {
      let x: number;
      do x = rng.normal(mean, std);
      while (x < a || x > b);
      out[i] = x;
    }
  };
}

/** Gain for a nonlinearity (torch.nn.init.calculate_gain) for leaky_relu with slope a. */
export function leakyReluGain(a: number): number {
  return Math.sqrt(2 / (1 + a * a));
}

/**
 * Kaiming/He uniform: U(-bound, bound), bound = gain * sqrt(3 / fan), gain = sqrt(2 / (1 + a^2)).
 * The default a = sqrt(5) with mode fan_in is PyTorch's nn.Linear weight default, which reduces
 * to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 */
export function kaimingUniform(opts: { a?: number; mode?: 'fanIn' | 'fanOut' } = {}): Init {
  const a = opts.a ?? Math.sqrt(5);
  const mode = opts.mode ?? 'fanIn';
  return (out, shape, rng) => {
    const f = fans(shape);
    const fan = mode === 'fanIn' ? f.fanIn : f.fanOut;
    const bound = fan === 0 ? 0 : leakyReluGain(a) * Math.sqrt(3 / fan);
    rng.fillUniform(out, -bound, bound);
  };
}

/** Kaiming/He normal: N(0, (gain / sqrt(fan))^2), default a = 0 (ReLU gain sqrt 2), mode fan_in. */
export function kaimingNormal(opts: { a?: number; mode?: 'fanIn' | 'fanOut' } = {}): Init {
  const a = opts.a ?? 0;
  const mode = opts.mode ?? 'fanIn';
  return (out, shape, rng) => {
    const f = fans(shape);
    const fan = mode === 'fanIn' ? f.fanIn : f.fanOut;
    rng.fillNormal(out, 0, fan === 0 ? 0 : leakyReluGain(a) / Math.sqrt(fan));
  };
}

/** PyTorch nn.Linear bias default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the layer's fan_in. */
export function linearBiasUniform(fanIn: number): Init {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(-bound, bound);
}

/** Xavier/Glorot uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(gain = 1): Init {
  return (out, shape, rng) => {
    const f = fans(shape);
    const b = gain * Math.sqrt(6 / Math.max(f.fanIn + f.fanOut, 1));
    rng.fillUniform(out, -b, b);
  };
}

/** Xavier/Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal(gain = 1): Init {
  return (out, shape, rng) => {
    const f = fans(shape);
    rng.fillNormal(out, 0, gain * Math.sqrt(2 / Math.max(f.fanIn + f.fanOut, 1)));
  };
}

/**
 * GPT-2 style init of residual output projections (attention o_proj / MLP down_proj):
 * N(0, (std / sqrt(2 * nLayers))^2), so the residual stream's variance does not grow with depth.
 */
export function scaledOutputNormal(std: number, nLayers: number): Init {
  if (!(nLayers > 0)) throw new Error(`scaledOutputNormal: nLayers must be positive, got ${nLayers}`);
  return normal(std / Math.sqrt(2 * nLayers));
}

/** Fills from fixed values (tests, or copying a known tensor); the length must match. */
export function fromValues(values: ArrayLike<number>): Init {
  return (out, shape) => {
    if (values.length !== out.length) throw new Error(`fromValues: ${values.length} values for shape [${shape.join(', ')}] (${out.length} elements)`);
    for (let i = 0; i < out.length; i++) out[i] = values[i];
  };
}
