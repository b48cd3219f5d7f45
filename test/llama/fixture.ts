/**
 * Test fixture: a HF-layout Llama checkpoint written by the test itself (random weights stored
 * as BF16, sharded with model.safetensors.index.json), and an independent float64 reference
 * forward of LlamaForCausalLM written as plain loops (embedding, RMSNorm, RoPE rotate-half with
 * Llama 3 frequency scaling, grouped-query attention with a causal mask, SwiGLU, final norm,
 * head), reading the same BF16 values.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { Rng } from '../../src/nn/index.js';
import { bf16ToF32, f32ToBf16, writeShardedSafetensors, type TensorData } from '../../src/io/index.js';

export interface FixtureOptions {
  tied: boolean;
  seed: number;
  /** extra or replaced config.json fields */
  configPatch?: Record<string, unknown>;
  /** drop these tensors from the files */
  drop?: string[];
  /** add these tensors to the files */
  extra?: Record<string, TensorData>;
  /** per-shard byte limit (default small enough for several shards) */
  maxShardBytes?: number;
}

export const BASE_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 37,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  // with head_dim 8 the wavelengths are 6.3, 63, 628, 6283: one below high_freq_wavelen (16),
  // one between, two above low_freq_wavelen (64), so all three llama3 branches are used
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  max_position_embeddings: 512,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  torch_dtype: 'bfloat16',
};

export function tmpDir(label: string): string {
  return fs.mkdtempSync(nodePath.join(os.tmpdir(), `tfree-llama-${label}-`));
}

/** Names and shapes of a LlamaForCausalLM state dict, in HF order. */
export function hfTensorShapes(c: typeof BASE_CONFIG, tied: boolean): [string, number[]][] {
  const H = c.hidden_size;
  const D = H / c.num_attention_heads;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [c.vocab_size, H]]];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      [`${p}.self_attn.q_proj.weight`, [c.num_attention_heads * D, H]],
      [`${p}.self_attn.k_proj.weight`, [c.num_key_value_heads * D, H]],
      [`${p}.self_attn.v_proj.weight`, [c.num_key_value_heads * D, H]],
      [`${p}.self_attn.o_proj.weight`, [H, c.num_attention_heads * D]],
      [`${p}.mlp.gate_proj.weight`, [c.intermediate_size, H]],
      [`${p}.mlp.up_proj.weight`, [c.intermediate_size, H]],
      [`${p}.mlp.down_proj.weight`, [H, c.intermediate_size]],
      [`${p}.input_layernorm.weight`, [H]],
      [`${p}.post_attention_layernorm.weight`, [H]],
    );
  }
  out.push(['model.norm.weight', [H]]);
  if (!tied) out.push(['lm_head.weight', [c.vocab_size, H]]);
  return out;
}

/** Writes the fixture; returns the folder and the stored weights decoded to float64. */
export function writeFixture(dir: string, opts: FixtureOptions): { dir: string; weights: Map<string, Float64Array>; config: typeof BASE_CONFIG & { tie_word_embeddings: boolean } } {
  const config = { ...BASE_CONFIG, tie_word_embeddings: opts.tied, ...(opts.configPatch ?? {}) } as typeof BASE_CONFIG & { tie_word_embeddings: boolean };
  const rng = new Rng(opts.seed);
  const weights = new Map<string, Float64Array>();
  const entries: [string, TensorData][] = [];
  for (const [name, shape] of hfTensorShapes(BASE_CONFIG, opts.tied)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (name.endsWith('norm.weight')) rng.fillUniform(v, 0.7, 1.3);
    else rng.fillNormal(v, 0, name.includes('embed') ? 1 : 0.25);
    const bits = f32ToBf16(v);
    weights.set(name, Float64Array.from(bf16ToF32(bits)));
    if (!(opts.drop ?? []).includes(name)) entries.push([name, { dtype: 'BF16', shape, data: bits }]);
  }
  for (const [name, t] of Object.entries(opts.extra ?? {})) entries.push([name, t]);
  fs.mkdirSync(dir, { recursive: true });
  writeShardedSafetensors(dir, entries, { maxShardBytes: opts.maxShardBytes ?? 6000, metadata: { format: 'pt' } });
  fs.writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return { dir, weights, config };
}

// ---- float64 reference forward -----------------------------------------------------------------

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

/** y = W x with W [out, in] row-major. */
function matvec(W: Float64Array, x: Float64Array, out: number): Float64Array {
  const inF = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inF; i++) s += W[o * inF + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** Llama 3 scaled inverse frequencies, straight from the formula (float64). */
export function refInvFreq(headDim: number, theta: number, rs: { factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number } | null): Float64Array {
  const inv = new Float64Array(headDim / 2);
  for (let i = 0; i < inv.length; i++) {
    const f = 1 / Math.pow(theta, (2 * i) / headDim);
    if (rs === null) {
      inv[i] = f;
      continue;
    }
    const wavelen = (2 * Math.PI) / f;
    const lowWl = rs.original_max_position_embeddings / rs.low_freq_factor;
    const highWl = rs.original_max_position_embeddings / rs.high_freq_factor;
    if (wavelen < highWl) inv[i] = f;
    else if (wavelen > lowWl) inv[i] = f / rs.factor;
    else {
      const smooth = (rs.original_max_position_embeddings / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      inv[i] = (1 - smooth) * (f / rs.factor) + smooth * f;
    }
  }
  return inv;
}

/** rotate-half RoPE of one head vector at position pos */
function rope(x: Float64Array, pos: number, inv: Float64Array): Float64Array {
  const h = x.length / 2;
  const y = new Float64Array(x.length);
  for (let i = 0; i < h; i++) {
    const c = Math.cos(pos * inv[i]);
    const s = Math.sin(pos * inv[i]);
    y[i] = x[i] * c - x[i + h] * s;
    y[i + h] = x[i + h] * c + x[i] * s;
  }
  return y;
}

/** Logits [T][vocab] of one sequence (positions 0..T-1). */
export function referenceLogits(c: typeof BASE_CONFIG & { tie_word_embeddings: boolean }, W: Map<string, Float64Array>, ids: ArrayLike<number>): Float64Array[] {
  const get = (n: string): Float64Array => {
    const w = W.get(n);
    if (w === undefined) throw new Error(`reference: no weight ${n}`);
    return w;
  };
  const H = c.hidden_size;
  const Hq = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const D = H / Hq;
  const T = ids.length;
  const rs = c.rope_scaling as Parameters<typeof refInvFreq>[2];
  const inv = refInvFreq(D, c.rope_theta, rs);
  const emb = get('model.embed_tokens.weight');
  let xs: Float64Array[] = [];
  for (let t = 0; t < T; t++) xs.push(emb.slice(ids[t] * H, (ids[t] + 1) * H));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const hn = xs.map((x) => rmsnorm(x, get(`${p}.input_layernorm.weight`), c.rms_norm_eps));
    const q = hn.map((x) => matvec(get(`${p}.self_attn.q_proj.weight`), x, Hq * D));
    const k = hn.map((x) => matvec(get(`${p}.self_attn.k_proj.weight`), x, Hkv * D));
    const v = hn.map((x) => matvec(get(`${p}.self_attn.v_proj.weight`), x, Hkv * D));
    const qr = q.map((qt, t) => Array.from({ length: Hq }, (_, h) => rope(qt.slice(h * D, (h + 1) * D), t, inv)));
    const kr = k.map((kt, t) => Array.from({ length: Hkv }, (_, h) => rope(kt.slice(h * D, (h + 1) * D), t, inv)));
    const attnOut: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const o = new Float64Array(Hq * D);
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / (Hq / Hkv));
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let d = 0;
          for (let i = 0; i < D; i++) d += qr[t][h][i] * kr[s][g][i];
          scores.push(d / Math.sqrt(D));
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) for (let i = 0; i < D; i++) o[h * D + i] += (e[s] / z) * v[s][g * D + i];
      }
      attnOut.push(matvec(get(`${p}.self_attn.o_proj.weight`), o, H));
    }
    xs = xs.map((x, t) => x.map((val, i) => val + attnOut[t][i]));
    xs = xs.map((x) => {
      const hn2 = rmsnorm(x, get(`${p}.post_attention_layernorm.weight`), c.rms_norm_eps);
      const gate = matvec(get(`${p}.mlp.gate_proj.weight`), hn2, c.intermediate_size);
      const up = matvec(get(`${p}.mlp.up_proj.weight`), hn2, c.intermediate_size);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
      const down = matvec(get(`${p}.mlp.down_proj.weight`), act, H);
      return x.map((val, i) => val + down[i]);
    });
  }
  const head = c.tie_word_embeddings ? emb : get('lm_head.weight');
  return xs.map((x) => matvec(head, rmsnorm(x, get('model.norm.weight'), c.rms_norm_eps), c.vocab_size));
}
