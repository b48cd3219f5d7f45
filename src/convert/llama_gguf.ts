/**
 * Llama checkpoint folder (HF layout) -> one GGUF file that llama.cpp loads as architecture
 * `llama` (docs/gguf.md). What is written, following ggml's GGUF spec and the names llama.cpp
 * reads for this architecture:
 *
 *   metadata  general.architecture = "llama", general.name, general.file_type,
 *             general.quantization_version = 2 (quantized files only),
 *             llama.{context_length, embedding_length, block_count, feed_forward_length,
 *             rope.dimension_count, rope.freq_base, attention.head_count, attention.head_count_kv,
 *             attention.layer_norm_rms_epsilon, attention.key_length, attention.value_length,
 *             vocab_size}, llama.rope.scaling.{type,factor} for linear scaling,
 *             tokenizer.ggml.{model = "gpt2", pre, tokens, token_type, merges, bos_token_id,
 *             eos_token_id, add_bos_token} from the folder's byte-level BPE tokenizer.json,
 *             tokenizer.chat_template from tokenizer_config.json when it has one
 *   tensors   token_embd.weight, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 *             ffn_gate, ffn_up, ffn_down}.weight, output_norm.weight, output.weight (absent when
 *             the embeddings are tied: llama.cpp then uses token_embd), rope_freqs.weight (llama3
 *             rope scaling: the per-frequency divisors inv_freq / scaled inv_freq)
 *
 * Dims are written in ggml order (a HF [out, in] weight has ne = [in, out]). The q and k
 * projections are permuted from HF's rotate-half layout to the interleaved-pair layout that
 * llama.cpp's LLAMA rope uses (row h*D + 2i + j  <-  row h*D + j*D/2 + i, per head h).
 * Norm weights and rope_freqs are F32; every 2-D weight takes the requested type (F32, F16,
 * Q8_0, Q4_0), except that a weight whose row length is not a multiple of 32 falls back to F16
 * under Q8_0/Q4_0 (listed in the result).
 *
 * Tensors are read, converted and written one at a time (peak memory: one f32 tensor and its
 * encoding), so an 8B checkpoint exports in a few GB.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { GgufError, encodeGgml, firstNonFinite, gv, openCheckpoint, writeGgufAsync, type GgmlType, type GgufTensorSpec, type GgufValue } from '../io/index.js';
import { defaultInvFreq, llama3InvFreq, ropeScalingFromHF } from '../nn/index.js';
import { readLlamaConfig, type LlamaConfig } from '../models/llama/index.js';

/** The input cannot be exported (message names the file and field or tensor). */
export class GgufExportError extends Error {
  override readonly name = 'GgufExportError';
}

export type GgufExportType = 'f32' | 'f16' | 'q8_0' | 'q4_0';
export const GGUF_EXPORT_TYPES: readonly GgufExportType[] = Object.freeze(['f32', 'f16', 'q8_0', 'q4_0']);

const GGML_OF: Record<GgufExportType, GgmlType> = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' };
/** general.file_type values (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0). */
const FILE_TYPE: Record<GgufExportType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

/** A source of a Llama's tensors by HF name (a checkpoint folder, or generated weights in benches). */
export interface LlamaTensorSource {
  has(name: string): boolean;
  shape(name: string): number[];
  /** the tensor as f32, row-major */
  read(name: string): Float32Array;
}

/** HF name, GGUF name and HF shape of every tensor a Llama of this config stores, in file order. */
export function llamaGgufTensors(c: LlamaConfig): { hf: string; gguf: string; shape: number[] }[] {
  const H = c.hidden_size;
  const D = c.head_dim;
  const out: { hf: string; gguf: string; shape: number[] }[] = [{ hf: 'model.embed_tokens.weight', gguf: 'token_embd.weight', shape: [c.vocab_size, H] }];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const b = `blk.${i}`;
    out.push(
      { hf: `${p}.input_layernorm.weight`, gguf: `${b}.attn_norm.weight`, shape: [H] },
      { hf: `${p}.self_attn.q_proj.weight`, gguf: `${b}.attn_q.weight`, shape: [c.num_attention_heads * D, H] },
      { hf: `${p}.self_attn.k_proj.weight`, gguf: `${b}.attn_k.weight`, shape: [c.num_key_value_heads * D, H] },
      { hf: `${p}.self_attn.v_proj.weight`, gguf: `${b}.attn_v.weight`, shape: [c.num_key_value_heads * D, H] },
      { hf: `${p}.self_attn.o_proj.weight`, gguf: `${b}.attn_output.weight`, shape: [H, c.num_attention_heads * D] },
      { hf: `${p}.post_attention_layernorm.weight`, gguf: `${b}.ffn_norm.weight`, shape: [H] },
      { hf: `${p}.mlp.gate_proj.weight`, gguf: `${b}.ffn_gate.weight`, shape: [c.intermediate_size, H] },
      { hf: `${p}.mlp.up_proj.weight`, gguf: `${b}.ffn_up.weight`, shape: [c.intermediate_size, H] },
      { hf: `${p}.mlp.down_proj.weight`, gguf: `${b}.ffn_down.weight`, shape: [H, c.intermediate_size] },
    );
  }
  out.push({ hf: 'model.norm.weight', gguf: 'output_norm.weight', shape: [H] });
  if (!c.tie_word_embeddings) out.push({ hf: 'lm_head.weight', gguf: 'output.weight', shape: [c.vocab_size, H] });
  return out;
}

/**
 * HF rotate-half q/k rows -> llama.cpp interleaved-pair rows, per head of D rows:
 * out row h*D + 2i + j = in row h*D + j*D/2 + i (the inverse of HF's conversion permute).
 */
export function permuteQkForGguf(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const D = rows / heads;
  if (!Number.isInteger(D) || D % 2 !== 0) throw new GgufExportError(`cannot permute ${rows} rows into ${heads} heads of even size`);
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < D / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const src = h * D + j * (D / 2) + i;
        const dst = h * D + 2 * i + j;
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** The inverse of `permuteQkForGguf` (for readers and tests). */
export function unpermuteQkFromGguf(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const D = rows / heads;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < D / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const src = h * D + 2 * i + j;
        const dst = h * D + j * (D / 2) + i;
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

// ---- tokenizer ---------------------------------------------------------------------------------

/** The tokenizer part of a GGUF file (tokenizer.ggml.* keys). */
export interface GgufTokenizer {
  tokens: string[];
  /** 1 normal, 3 control, 4 user defined, 5 unused */
  tokenTypes: Int32Array;
  merges: string[];
  /** llama.cpp pre-tokenizer name: "llama-bpe" (Llama 3 regex), "gpt-2" (ByteLevel regex), "default" */
  pre: string;
  addBos: boolean;
  chatTemplate: string | null;
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Which llama.cpp pre-tokenizer matches a tokenizer.json pre_tokenizer. */
function preTokenizerName(pre: unknown): string {
  const s = JSON.stringify(pre ?? null);
  if (s.includes('Split') && s.includes("(?i:'s|'t|'re|'ve|'m|'ll|'d)") && s.includes('\\\\p{N}{1,3}')) return 'llama-bpe';
  if (isObj(pre) && pre.type === 'ByteLevel' && pre.use_regex !== false) return 'gpt-2';
  return 'default';
}

/**
 * Builds the GGUF tokenizer keys from a HF byte-level BPE tokenizer.json (and tokenizer_config.json
 * when given). Ids the tokenizer leaves unused below `vocabSize` become `[PAD<id>]` tokens of type
 * unused, as llama.cpp's converter writes them.
 */
export function ggufTokenizerFromHF(tokJson: unknown, where: string, vocabSize: number, tokConfig: unknown = null): GgufTokenizer {
  if (!isObj(tokJson) || !isObj(tokJson.model)) throw new GgufExportError(`${where}: not a tokenizer.json (no "model" object)`);
  const m = tokJson.model;
  if (m.type !== 'BPE' || !isObj(m.vocab) || !Array.isArray(m.merges)) throw new GgufExportError(`${where}: only BPE tokenizers (model.type "BPE" with vocab and merges) can be exported to GGUF, got model.type ${JSON.stringify(m.type)}`);
  const tokens: (string | undefined)[] = new Array<string | undefined>(vocabSize).fill(undefined);
  const types = new Int32Array(vocabSize).fill(1);
  const put = (tok: string, id: unknown, type: number): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new GgufExportError(`${where}: token ${JSON.stringify(tok)} has a bad id ${JSON.stringify(id)}`);
    if (id >= vocabSize) throw new GgufExportError(`${where}: token ${JSON.stringify(tok)} has id ${id}, but the model's vocab_size is ${vocabSize}`);
    tokens[id] = tok;
    types[id] = type;
  };
  for (const [tok, id] of Object.entries(m.vocab)) put(tok, id, 1);
  for (const a of Array.isArray(tokJson.added_tokens) ? tokJson.added_tokens : []) {
    if (!isObj(a) || typeof a.content !== 'string') throw new GgufExportError(`${where}: added_tokens holds a malformed entry`);
    put(a.content, a.id, a.special === true ? 3 : 4);
  }
  const out: string[] = tokens.map((t, i) => {
    if (t !== undefined) return t;
    types[i] = 5;
    return `[PAD${i}]`;
  });
  const merges = m.merges.map((x, i) => {
    if (typeof x === 'string') return x;
    if (Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string') return `${x[0]} ${x[1]}`;
    throw new GgufExportError(`${where}: merge ${i} is neither "a b" nor ["a", "b"]`);
  });
  const cfg = isObj(tokConfig) ? tokConfig : {};
  const post = JSON.stringify(tokJson.post_processor ?? null);
  const addBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : post.includes('TemplateProcessing') && post.includes('begin_of_text');
  return { tokens: out, tokenTypes: types, merges, pre: preTokenizerName(tokJson.pre_tokenizer), addBos, chatTemplate: typeof cfg.chat_template === 'string' ? cfg.chat_template : null };
}

// ---- building the file -------------------------------------------------------------------------

export interface LlamaGgufOptions {
  type: GgufExportType;
  /** general.name (default "tfree-llama") */
  name?: string;
}

export interface LlamaGgufPlan {
  metadata: [string, GgufValue][];
  tensors: GgufTensorSpec[];
  /** weights written as F16 because their rows are not a multiple of 32 */
  fallback: string[];
}

/** The metadata and tensor list (lazy data) of a Llama GGUF file; checks every tensor's presence and shape first. */
export function planLlamaGguf(c: LlamaConfig, src: LlamaTensorSource, tok: GgufTokenizer, opts: LlamaGgufOptions, where = 'checkpoint'): LlamaGgufPlan {
  const want = GGML_OF[opts.type];
  if (want === undefined) throw new GgufExportError(`unknown GGUF type "${String(opts.type)}" (types: ${GGUF_EXPORT_TYPES.join(', ')})`);
  if (c.attention_bias || c.mlp_bias) throw new GgufExportError(`${where}: attention_bias / mlp_bias checkpoints are not exported (llama.cpp's llama graph would need bias tensors this exporter does not write)`);
  if (tok.tokens.length !== c.vocab_size) throw new GgufExportError(`${where}: the tokenizer has ${tok.tokens.length} ids, the model ${c.vocab_size}`);
  const names = llamaGgufTensors(c);
  const problems: string[] = [];
  for (const t of names) {
    if (!src.has(t.hf)) problems.push(`missing ${t.hf}`);
    else {
      const s = src.shape(t.hf);
      if (s.length !== t.shape.length || s.some((d, i) => d !== t.shape[i])) problems.push(`${t.hf} is [${s.join(', ')}], the config needs [${t.shape.join(', ')}]`);
    }
  }
  if (problems.length > 0) throw new GgufExportError(`${where}: checkpoint does not match config.json: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? `; ... (${problems.length} in all)` : ''}`);
  const scaling = ropeScalingFromHF(c.rope_scaling);
  const fallback: string[] = [];
  const tensors: GgufTensorSpec[] = names.map((t) => {
    const is2d = t.shape.length === 2;
    let type: GgmlType = is2d ? want : 'F32';
    if (is2d && (want === 'Q8_0' || want === 'Q4_0') && t.shape[1] % 32 !== 0) {
      type = 'F16';
      fallback.push(t.hf);
    }
    const dims = [...t.shape].reverse();
    const heads = t.gguf.endsWith('attn_q.weight') ? c.num_attention_heads : t.gguf.endsWith('attn_k.weight') ? c.num_key_value_heads : 0;
    return {
      name: t.gguf,
      dims,
      type,
      data: () => {
        let w = src.read(t.hf);
        const bad = firstNonFinite('F32', w);
        if (bad >= 0) throw new GgufExportError(`${where}: tensor "${t.hf}": value ${bad} is ${w[bad]}; a GGUF export needs finite weights`);
        if (heads > 0) w = permuteQkForGguf(w, t.shape[0], t.shape[1], heads);
        try {
          return encodeGgml(type, w, `${where}: tensor "${t.hf}"`);
        } catch (e) {
          if (e instanceof GgufError) throw new GgufExportError(e.message);
          throw e;
        }
      },
    };
  });
  if (scaling !== null && scaling.type === 'llama3') {
    const base = defaultInvFreq(c.head_dim, c.rope_theta);
    const scaled = llama3InvFreq(base, scaling);
    const factors = base.map((b, i) => b / scaled[i]);
    tensors.push({ name: 'rope_freqs.weight', dims: [factors.length], type: 'F32', data: () => encodeGgml('F32', factors) });
  }
  const L = 'llama';
  const meta: [string, GgufValue][] = [
    ['general.architecture', gv.str(L)],
    ['general.name', gv.str(opts.name ?? 'tfree-llama')],
    ['general.file_type', gv.u32(FILE_TYPE[opts.type])],
  ];
  if (opts.type === 'q8_0' || opts.type === 'q4_0') meta.push(['general.quantization_version', gv.u32(2)]);
  meta.push(
    [`${L}.vocab_size`, gv.u32(c.vocab_size)],
    [`${L}.context_length`, gv.u32(c.max_position_embeddings)],
    [`${L}.embedding_length`, gv.u32(c.hidden_size)],
    [`${L}.block_count`, gv.u32(c.num_hidden_layers)],
    [`${L}.feed_forward_length`, gv.u32(c.intermediate_size)],
    [`${L}.rope.dimension_count`, gv.u32(c.head_dim)],
    [`${L}.rope.freq_base`, gv.f32(c.rope_theta)],
    [`${L}.attention.head_count`, gv.u32(c.num_attention_heads)],
    [`${L}.attention.head_count_kv`, gv.u32(c.num_key_value_heads)],
    [`${L}.attention.layer_norm_rms_epsilon`, gv.f32(c.rms_norm_eps)],
    [`${L}.attention.key_length`, gv.u32(c.head_dim)],
    [`${L}.attention.value_length`, gv.u32(c.head_dim)],
  );
  if (scaling !== null && scaling.type === 'linear') meta.push([`${L}.rope.scaling.type`, gv.str('linear')], [`${L}.rope.scaling.factor`, gv.f32(scaling.factor)]);
  meta.push(['tokenizer.ggml.model', gv.str('gpt2')], ['tokenizer.ggml.pre', gv.str(tok.pre)], ['tokenizer.ggml.tokens', gv.strs(tok.tokens)], ['tokenizer.ggml.token_type', gv.i32s(tok.tokenTypes)], ['tokenizer.ggml.merges', gv.strs(tok.merges)]);
  const eos = Array.isArray(c.eos_token_id) ? c.eos_token_id[0] : c.eos_token_id;
  for (const [k, id] of [['bos', c.bos_token_id], ['eos', eos]] as const) {
    if (id === null || id === undefined) continue;
    if (id >= c.vocab_size) throw new GgufExportError(`${where}: ${k}_token_id ${id} is outside the vocabulary (${c.vocab_size})`);
    meta.push([`tokenizer.ggml.${k}_token_id`, gv.u32(id)]);
  }
  meta.push(['tokenizer.ggml.add_bos_token', gv.bool(tok.addBos && c.bos_token_id !== null)]);
  if (tok.chatTemplate !== null) meta.push(['tokenizer.chat_template', gv.str(tok.chatTemplate)]);
  return { metadata: meta, tensors, fallback };
}

export interface ExportGgufOptions extends LlamaGgufOptions {
  /** tokenizer.json path or its folder (default DIR/tokenizer.json) */
  tokenizer?: string;
  /** replace an existing output file (default: refuse) */
  overwrite?: boolean;
  /** called after each tensor is written (done, total) */
  onTensor?: (done: number, total: number) => void;
  /** polled after each tensor: true stops (temp file removed, GgufInterrupted thrown) */
  shouldStop?: () => boolean;
}

export interface ExportGgufResult {
  out: string;
  fileSize: number;
  tensors: number;
  type: GgufExportType;
  fallback: string[];
  pre: string;
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new GgufExportError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GgufExportError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Checks an output file path before any work: it is not a folder, it exists only with overwrite,
 * and its folder (or, when that is missing, the nearest existing folder above it, where the write
 * creates it, as every tfree output does) is a writable folder.
 */
export function checkGgufOutput(out: string, overwrite: boolean): void {
  let dir = nodePath.dirname(nodePath.resolve(out));
  while (!fs.existsSync(dir) && nodePath.dirname(dir) !== dir) dir = nodePath.dirname(dir);
  if (!fs.statSync(dir).isDirectory()) throw new GgufExportError(`${out}: ${dir} is a file, not a folder`);
  if (fs.existsSync(out)) {
    if (fs.statSync(out).isDirectory()) throw new GgufExportError(`${out}: is a folder; give a file name (e.g. model.gguf)`);
    if (!overwrite) throw new GgufExportError(`${out}: exists; pass --overwrite to replace it`);
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new GgufExportError(`${out}: the folder ${dir} is not writable`);
  }
}

/**
 * Exports a HF Llama checkpoint folder (config.json, safetensors, tokenizer.json) to one GGUF file,
 * atomically; yields after every tensor so `shouldStop` (e.g. set by SIGINT) can end it cleanly.
 */
export async function exportLlamaGguf(dir: string, out: string, opts: ExportGgufOptions): Promise<ExportGgufResult> {
  if (!GGUF_EXPORT_TYPES.includes(opts.type)) throw new GgufExportError(`unknown GGUF type "${String(opts.type)}" (types: ${GGUF_EXPORT_TYPES.join(', ')})`);
  checkGgufOutput(out, opts.overwrite ?? false);
  const config = readLlamaConfig(dir);
  let tokPath = opts.tokenizer ?? nodePath.join(dir, 'tokenizer.json');
  if (fs.existsSync(tokPath) && fs.statSync(tokPath).isDirectory()) tokPath = nodePath.join(tokPath, 'tokenizer.json');
  if (!fs.existsSync(tokPath)) throw new GgufExportError(`${tokPath}: no tokenizer.json (GGUF files carry the vocabulary); give one with --tokenizer PATH`);
  const tokCfgPath = nodePath.join(nodePath.dirname(tokPath), 'tokenizer_config.json');
  const tok = ggufTokenizerFromHF(readJson(tokPath), tokPath, config.vocab_size, fs.existsSync(tokCfgPath) ? readJson(tokCfgPath) : null);
  const ck = openCheckpoint(dir);
  try {
    const src: LlamaTensorSource = { has: (n) => ck.has(n), shape: (n) => ck.info(n).shape.slice(), read: (n) => ck.readAs(n, 'f32').data };
    const plan = planLlamaGguf(config, src, tok, { type: opts.type, name: opts.name ?? nodePath.basename(nodePath.resolve(dir)) }, dir);
    const onTensor = opts.onTensor;
    if (onTensor !== undefined) {
      const n = plan.tensors.length;
      plan.tensors = plan.tensors.map((t, i) => ({ ...t, data: () => {
        const b = t.data();
        onTensor(i + 1, n);
        return b;
      } }));
    }
    const { fileSize } = await writeGgufAsync(out, plan.metadata, plan.tensors, { shouldStop: opts.shouldStop });
    return { out, fileSize, tensors: plan.tensors.length, type: opts.type, fallback: plan.fallback, pre: tok.pre };
  } finally {
    ck.close();
  }
}
