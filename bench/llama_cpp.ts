/**
 * llama.cpp side of the 8B comparison (issue 14): a Llama-3.1-8B-shaped model with random weights,
 * written by tfree's GGUF exporter as Q4_0, run by llama.cpp (node-llama-cpp's prebuilt CPU
 * binary; sh scripts/install-llama-cpp.sh). Figures: load time (model + context), prompt
 * tokens/s, generated tokens/s (greedy, no stop), peak RSS of the process, at 1 and 2 threads.
 *
 *   node dist/bench/llama_cpp.js synth --out FILE.gguf [--type q4_0] [--seed 1] [--layers 32]
 *   node dist/bench/llama_cpp.js run --gguf FILE.gguf [--threads 1,2] [--prompt 64] [--gen 64] [--reps 1] [--no-mmap] [--json]
 *        [--hat DIR --hat-weights int4 --hat-prompt-bytes 200 --hat-gen-bytes 48] [--tokenizer PATH]
 *
 * Side by side (--hat): llama.cpp at every thread count, then tfree's HAT (experiments/hat8b.js:
 * load quantized, then prompt and generation at every thread count, one process), then llama.cpp
 * again, so the HAT run is bracketed by the peer's in the same invocation. bytes/s of llama.cpp =
 * tokens/s x bytes per token, the bytes per token being those of the English text the HAT reads
 * and generates (experiments/hat8b_text.ts) under the Llama 3 tokenizer given by --tokenizer (a
 * tokenizer.json or folder, or Meta's tiktoken tokenizer.model; not part of the repository).
 *
 * With mmap (llama.cpp's default) the CPU backend keeps the mapped file and a repacked copy of the
 * Q4_0 weights (its CPU_REPACK buffer), so the peak RSS is about twice the file; --no-mmap reads
 * the file into memory and keeps only the repacked weights.
 *
 * `synth` never holds more than one tensor in f32 (the 2.1 GB embedding is the largest), `run`
 * measures each (threads, repetition) in a fresh child process so every peak RSS is its own, and
 * runs the thread counts interleaved. The tokenizer in the file is a synthetic byte-level BPE with
 * Llama 3's size (128,000 regular ids: the 256 byte symbols, 65,536 two-symbol and 62,208
 * three-symbol merges; 256 special ids with Llama 3's names): the measured runs feed token ids,
 * so its content does not matter, only that the output layer has Llama 3's 128,256 rows.
 * Results: a table on stdout, and bench/results/llama_cpp.json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/nn/index.js';
import { writeGgufAsync } from '../src/io/index.js';
import { parseLlamaConfig } from '../src/models/llama/index.js';
import { BYTE_TO_CHAR } from '../src/models/llama/tokenizer/bytes.js';
import { checkGgufOutput, planLlamaGguf, type GgufExportType, type GgufTokenizer, type LlamaTensorSource } from '../src/convert/llama_gguf.js';
import { llamaCppGenerate, llamaCppMissing, llamaCppVersion, openLlamaCpp } from './peers/llama_cpp.js';
import { loadTiktoken, loadTokenizer, type TextTokenizer } from '../src/models/llama/tokenizer/index.js';
import { HAT8B_TEXT } from '../experiments/hat8b_text.js';

const argv = process.argv.slice(2);
function flag(name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
}

/** Llama-3.1-8B's config.json values (meta-llama/Llama-3.1-8B). */
export function llama8bConfig(layers = 32): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: layers,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 128,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    max_position_embeddings: 131072,
    tie_word_embeddings: false,
    bos_token_id: 128000,
    eos_token_id: 128001,
    hidden_act: 'silu',
  };
}

/** A byte-level BPE vocabulary of Llama 3's size (see the file comment). */
export function syntheticLlama3Tokenizer(): GgufTokenizer {
  const tokens: string[] = [...BYTE_TO_CHAR];
  const merges: string[] = [];
  for (let a = 0; a < 256 && tokens.length < 128000; a++) {
    for (let b = 0; b < 256 && tokens.length < 128000; b++) {
      merges.push(`${BYTE_TO_CHAR[a]} ${BYTE_TO_CHAR[b]}`);
      tokens.push(BYTE_TO_CHAR[a] + BYTE_TO_CHAR[b]);
    }
  }
  for (let k = 256; tokens.length < 128000; k++) {
    const left = tokens[k];
    for (let b = 0; b < 256 && tokens.length < 128000; b++) {
      merges.push(`${left} ${BYTE_TO_CHAR[b]}`);
      tokens.push(left + BYTE_TO_CHAR[b]);
    }
  }
  const specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|reserved_special_token_1|>', '<|finetune_right_pad_id|>', '<|reserved_special_token_2|>', '<|start_header_id|>', '<|end_header_id|>', '<|eom_id|>', '<|eot_id|>', '<|python_tag|>'];
  for (let i = 0; tokens.length < 128256; i++) tokens.push(i < specials.length ? specials[i] : `<|reserved_special_token_${i - 8}|>`);
  const types = new Int32Array(128256).fill(1);
  types.fill(3, 128000);
  return { tokens, tokenTypes: types, merges, pre: 'llama-bpe', addBos: true, chatTemplate: null };
}

/** Uniform(-a, a) from xorshift32 (seeded per tensor): Rng's generator is too slow for 8e9 values. */
function fillFast(v: Float32Array, seed: number, a: number): void {
  let x = seed >>> 0 || 1;
  const k = (2 * a) / 2 ** 32;
  for (let i = 0; i < v.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = (x >>> 0) * k - a;
  }
}

async function synth(): Promise<void> {
  const out = flag('out', '');
  if (out === '') throw new Error('give --out FILE.gguf');
  const type = flag('type', 'q4_0') as GgufExportType;
  const seed = Number(flag('seed', '1'));
  const layers = Number(flag('layers', '32'));
  checkGgufOutput(out, argv.includes('--overwrite'));
  const config = parseLlamaConfig(llama8bConfig(layers), 'llama-3.1-8b (synthetic)');
  const rng = new Rng(seed);
  const shapes = new Map<string, number[]>();
  const H = config.hidden_size;
  shapes.set('model.embed_tokens.weight', [config.vocab_size, H]);
  shapes.set('lm_head.weight', [config.vocab_size, H]);
  shapes.set('model.norm.weight', [H]);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    shapes.set(`${p}.self_attn.q_proj.weight`, [4096, H]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [1024, H]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [1024, H]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [H, 4096]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [config.intermediate_size, H]);
    shapes.set(`${p}.mlp.up_proj.weight`, [config.intermediate_size, H]);
    shapes.set(`${p}.mlp.down_proj.weight`, [H, config.intermediate_size]);
    shapes.set(`${p}.input_layernorm.weight`, [H]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [H]);
  }
  let done = 0;
  const t0 = performance.now();
  const src: LlamaTensorSource = {
    has: (n) => shapes.has(n),
    shape: (n) => shapes.get(n) ?? [],
    read: (n) => {
      const s = shapes.get(n) ?? [];
      const v = new Float32Array(s.reduce((a, b) => a * b, 1));
      if (s.length === 1) v.fill(1);
      else fillFast(v, rng.fork(n).int(2 ** 31) + 1, 0.035); // uniform, std 0.02
      done++;
      if (done % 16 === 0) process.stderr.write(`synth: ${done}/${shapes.size} tensors, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
      return v;
    },
  };
  const plan = planLlamaGguf(config, src, syntheticLlama3Tokenizer(), { type, name: 'random-llama-3.1-8b-shape' }, 'synthetic');
  const { fileSize } = await writeGgufAsync(out, plan.metadata, plan.tensors);
  process.stdout.write(`wrote ${out}: ${plan.tensors.length} tensors, ${(fileSize / 2 ** 30).toFixed(2)} GiB, ${type}, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
}

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m === null ? NaN : Number(m[1]) * 1024;
}

/** One measurement in this process: prints one JSON line. */
async function child(): Promise<void> {
  const gguf = flag('gguf', '');
  const threads = Number(flag('threads', '1'));
  const promptN = Number(flag('prompt', '64'));
  const gen = Number(flag('gen', '64'));
  const rng = new Rng(Number(flag('seed', '7')));
  const prompt = Array.from({ length: promptN }, () => 1000 + rng.int(100000));
  const llama = await openLlamaCpp(threads);
  const mmap = !argv.includes('--no-mmap');
  const r = await llamaCppGenerate(llama, gguf, prompt, gen + 1, { threads, contextSize: promptN + gen + 8, batchSize: Math.max(promptN, 1), mmap });
  await llama.dispose();
  process.stdout.write(`${JSON.stringify({ threads, mmap, load_s: r.load_s, prompt_tokens: r.prompt_tokens, prompt_s: r.prompt_s, prompt_tok_s: r.prompt_tokens / r.prompt_s, generated_tokens: r.generated_tokens, gen_s: r.gen_s, gen_tok_s: r.generated_tokens / r.gen_s, prompt_cpu_s: r.prompt_cpu_s, gen_cpu_s: r.gen_cpu_s, peak_rss_bytes: peakRssBytes() })}\n`);
}

/** A tokenizer file: tiktoken (`base64 rank` lines) or tokenizer.json / a folder holding one. */
function openTokenizer(path: string): TextTokenizer {
  if (fs.statSync(path).isFile() && !path.endsWith('.json')) {
    const head = fs.readFileSync(path, { encoding: 'utf8' }).slice(0, 64);
    if (/^[A-Za-z0-9+/=]+ \d+\r?\n/.test(head)) return loadTiktoken(path);
  }
  return loadTokenizer(path);
}

/** Bytes per token of a text under a tokenizer (no special tokens). */
function bytesPerToken(tok: TextTokenizer, text: string): { bytes: number; tokens: number; bytes_per_token: number } {
  const bytes = Buffer.byteLength(text, 'utf8');
  const tokens = tok.encode(text).length;
  return { bytes, tokens, bytes_per_token: bytes / tokens };
}

type Row = Record<string, number> & { mmap?: boolean };

function llamaRows(gguf: string, threads: number[], self: string, promptTokens: string, tag: string): Row[] {
  const rows: Row[] = [];
  for (const t of threads) {
    const res = spawnSync(process.execPath, [self, 'child', '--gguf', gguf, '--threads', String(t), '--prompt', promptTokens, '--gen', flag('gen', '64'), ...(argv.includes('--no-mmap') ? ['--no-mmap'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (res.status !== 0) throw new Error(`child failed (${res.status}): ${res.stderr.slice(-2000)}`);
    const line = res.stdout.trim().split('\n').pop() ?? '';
    rows.push(JSON.parse(line) as Row);
    process.stderr.write(`llama.cpp threads ${t} ${tag}: ${line}\n`);
  }
  return rows;
}

function run(): void {
  const missing = llamaCppMissing();
  if (missing !== null) {
    process.stderr.write(`llama_cpp bench skipped: ${missing}\n`);
    return;
  }
  const gguf = flag('gguf', '');
  if (gguf === '' || !fs.existsSync(gguf)) throw new Error('give an existing --gguf FILE (make one with: synth --out FILE.gguf)');
  const threads = flag('threads', '1,2').split(',').map(Number);
  const reps = Number(flag('reps', '1'));
  const self = fileURLToPath(import.meta.url);
  const hatDir = flag('hat', '');
  const tokPath = flag('tokenizer', '');
  const tok = tokPath === '' ? null : openTokenizer(tokPath);
  const hatPromptBytes = Number(flag('hat-prompt-bytes', '200'));
  const hatGenBytes = Number(flag('hat-gen-bytes', '48'));
  // the HAT's text: bytes per Llama 3 token over the whole paragraph and over the spans it reads / generates
  const textStats = tok === null ? null : { text: bytesPerToken(tok, HAT8B_TEXT) };
  const promptTokens = flag('prompt', textStats === null ? '64' : String(Math.round(hatPromptBytes / textStats.text.bytes_per_token)));
  const rows: Row[] = [];
  let hat: Record<string, unknown> | null = null;
  for (let rep = 0; rep < reps; rep++) {
    rows.push(...llamaRows(gguf, threads, self, promptTokens, `rep ${rep}`));
    if (hatDir !== '' && rep === 0) {
      const exp = nodePath.join(nodePath.dirname(self), '..', 'experiments', 'hat8b.js');
      const args = [exp, '--model', hatDir, '--mode', 'load', '--weights', flag('hat-weights', 'int4'), '--threads', threads.join(','), '--prompt-bytes', String(hatPromptBytes), '--gen-bytes', String(hatGenBytes)];
      process.stderr.write(`HAT: node ${args.join(' ')}\n`);
      const res = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (res.status !== 0) throw new Error(`HAT run failed (${res.status}): ${res.stderr.slice(-2000)}`);
      hat = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      process.stderr.write(`HAT: ${JSON.stringify(hat)}\n`);
      rows.push(...llamaRows(gguf, threads, self, promptTokens, `rep ${rep}, after the HAT run`));
    }
  }
  const bpt = textStats?.text.bytes_per_token ?? NaN;
  const info = { gguf, gguf_bytes: fs.statSync(gguf).size, node_llama_cpp: llamaCppVersion(), tokenizer: tokPath, text_tokens: textStats, rows, hat, cpu: fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '' };
  const dir = nodePath.join(nodePath.dirname(self), '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(nodePath.join(dir, 'llama_cpp.json'), JSON.stringify(info, null, 2));
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(info)}\n`);
    return;
  }
  process.stdout.write(`llama.cpp (node-llama-cpp ${info.node_llama_cpp}, CPU prebuilt) on ${gguf} (${(info.gguf_bytes / 2 ** 30).toFixed(2)} GiB)\n`);
  if (textStats !== null) process.stdout.write(`bytes per Llama 3 token of the HAT's text: ${textStats.text.bytes} bytes / ${textStats.text.tokens} tokens = ${bpt.toFixed(3)}\n`);
  // generated bytes per CPU second: the process's CPU time while generating (both threads counted)
  process.stdout.write('| side | threads | load s | prompt tok/s | generated tok/s | prompt bytes/s | generated bytes/s | generated bytes per CPU s | peak RSS GiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '-');
  for (const r of rows) process.stdout.write(`| llama.cpp Q4_0${r.mmap === false ? ' (no mmap)' : ''} | ${r.threads} | ${f(r.load_s)} | ${f(r.prompt_tok_s)} | ${f(r.gen_tok_s)} | ${f(r.prompt_tok_s * bpt)} | ${f(r.gen_tok_s * bpt)} | ${f((r.generated_tokens * bpt) / r.gen_cpu_s)} | ${f(r.peak_rss_bytes / 2 ** 30)} |\n`);
  if (hat !== null) {
    const hr = (hat.runs as Record<string, number>[]) ?? [];
    for (const r of hr) process.stdout.write(`| tfree HAT ${String(hat.weights)} | ${r.threads} | ${f(Number(hat.load_s))} | - | - | ${f(r.prompt_bytes_s)} | ${f(r.gen_bytes_s)} | ${f(r.gen_bytes / r.gen_cpu_s)} | ${f(Number(hat.peak_rss_gib))} |\n`);
  }
}

const mode = argv[0];
if (mode === 'synth') await synth();
else if (mode === 'child') await child();
else if (mode === 'run') run();
else {
  process.stderr.write('usage: node dist/bench/llama_cpp.js synth --out FILE.gguf [--type q4_0] | run --gguf FILE.gguf [--threads 1,2] [--prompt 64] [--gen 64] [--reps 1]\n');
  process.exitCode = 2;
}
