import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type { CommandSpec, ParsedArgs } from '../args.js';
import { UserError } from '../errors.js';
import { Progress } from '../progress.js';
import { checkInputPath, checkOutputPath, refuseInputAsOutput } from '../resources.js';
import { checkFinite } from '../hat_model.js';
import { SAMPLING_DEFAULTS } from '../../nn/index.js';
import { SafetensorsError } from '../../io/index.js';
import { OneBitWonderError, isOneBitWonderDir, loadOneBitWonder } from '../../compress/onebitwonder.js';
import {
  LlamaCheckpointError,
  LlamaConfigError,
  TokenizerError,
  generate,
  loadLlama,
  loadTokenizer,
  saveBpeTokenizer,
  trainBpe,
} from '../../models/llama/index.js';

/** Runs fn, turning the model/tokenizer/file errors into one-line user errors. */
function userErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof LlamaConfigError || e instanceof LlamaCheckpointError || e instanceof OneBitWonderError || e instanceof TokenizerError || e instanceof SafetensorsError) throw new UserError(e.message);
    throw e;
  }
}

function opt<T extends string | number | boolean>(a: ParsedArgs, name: string, def: T): T {
  const v = a.options[name];
  return (v === undefined ? def : v) as T;
}

function runGenerate(a: ParsedArgs): void {
  const dir = a.options.model;
  if (typeof dir !== 'string') throw new UserError('give the checkpoint folder with --model DIR');
  checkInputPath(dir, '--model', 'dir');
  const prompt = a.options.prompt;
  if (typeof prompt !== 'string') throw new UserError('give the prompt with --prompt TEXT');
  const tokPath = opt(a, 'tokenizer', nodePath.join(dir, 'tokenizer.json'));
  // a 1-Bit-Wonder export (quantization_config.json beside config.json) runs from its packed weights
  const { model, store } = userErrors(() => (isOneBitWonderDir(dir) ? loadOneBitWonder(dir) : loadLlama(dir)));
  checkFinite(store, dir);
  if (a.options.tokenizer === undefined && !fs.existsSync(tokPath)) {
    throw new UserError(`--model ${dir} has no tokenizer.json; give one with --tokenizer PATH (tfree llama train-tokenizer makes one)`);
  }
  if (a.options.tokenizer !== undefined) checkInputPath(tokPath, '--tokenizer', 'any');
  const tok = userErrors(() => loadTokenizer(tokPath));
  if (tok.vocabSize > model.cfg.vocabSize) throw new UserError(`${tokPath}: the tokenizer has ${tok.vocabSize} ids but the model only ${model.cfg.vocabSize}`);
  let ids = Array.from(tok.encode(prompt, { addSpecialTokens: true }));
  if (ids.length === 0 && tok.bosId !== null) ids = [tok.bosId];
  if (ids.length === 0) throw new UserError('the prompt is empty and the tokenizer has no BOS token to start from');
  const maxNew = opt(a, 'max-new-tokens', 64);
  const json = opt(a, 'json', false);
  const progress = new Progress({ total: maxNew, label: 'generate', enabled: !json });
  let n = 0;
  const stops = tok.eosId !== null ? [tok.eosId, ...[model.cfg.eosTokenId ?? []].flat()] : undefined;
  let res;
  try {
    res = generate(model, ids, {
      maxNewTokens: maxNew,
      temperature: opt(a, 'greedy', false) ? 0 : opt(a, 'temperature', SAMPLING_DEFAULTS.temperature),
      topK: opt(a, 'top-k', SAMPLING_DEFAULTS.topK),
      topP: opt(a, 'top-p', SAMPLING_DEFAULTS.topP),
      seed: opt(a, 'seed', 0),
      useCache: opt(a, 'cache', true),
      stopTokens: stops,
      onToken: () => progress.update(++n),
    });
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('generate:')) throw new UserError(e.message);
    throw e;
  }
  progress.finish();
  const text = userErrors(() => tok.decode(res.tokens, { skipSpecialTokens: true }));
  if (json) {
    process.stdout.write(`${JSON.stringify({ prompt_tokens: ids.length, tokens: [...res.tokens], text, stop: res.stop })}\n`);
  } else process.stdout.write(`${prompt}${text}\n`);
}

function runTrainTokenizer(a: ParsedArgs, files: string[]): void {
  if (files.length === 0) throw new UserError('give one or more text files: tfree llama train-tokenizer FILE... --out tokenizer.json');
  const out = a.options.out;
  if (typeof out !== 'string') throw new UserError('give the output file with --out tokenizer.json');
  checkOutputPath(out, '--out', 'file');
  refuseInputAsOutput(out, '--out', files);
  // a model folder's tokenizer.json is part of the model: never replaced unasked
  if (fs.existsSync(out) && a.options.overwrite !== true) throw new UserError(`--out ${out} exists; pass --overwrite to replace it, or choose another --out`);
  for (const f of files) checkInputPath(f, 'text file', 'file');
  const texts = files.map((f) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new UserError(`${f}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  });
  const vocabSize = opt(a, 'vocab-size', 4096);
  const specials = String(opt(a, 'special', '<|endoftext|>')).split(',').filter((s) => s !== '');
  const json = opt(a, 'json', false);
  const minFrequency = opt(a, 'min-frequency', 2);
  const progress = new Progress({ total: Math.max(vocabSize - 256 - specials.length, 1), label: 'merges', enabled: !json });
  let r;
  try {
    r = trainBpe(texts, { vocabSize, minFrequency, specialTokens: specials, onProgress: (m) => progress.update(m) });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  // the bar ends at the merges made: short of its total when they stopped early
  const why = r.stop === 'no_pairs' ? 'no pair of tokens left to merge (every piece of the text is one token); more text gives more merges' : `no pair of tokens seen ${minFrequency} times or more (--min-frequency ${minFrequency}); more text or a lower --min-frequency gives more merges`;
  if (r.stop === 'vocab') progress.finish();
  else progress.stop('stopped early', r.merges.length);
  saveBpeTokenizer(out, r);
  const summary = {
    out,
    vocab: r.vocab.size + r.specialTokens.length,
    vocab_size: vocabSize,
    merges: r.merges.length,
    target_merges: r.targetMerges,
    stop: r.stop,
    last_merge_count: r.lastMergeCount,
    pieces: r.pieces.size,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const merges = `${summary.merges} merges${summary.merges > 0 ? `, the last seen ${summary.last_merge_count} times` : ''}`;
  const early = r.stop === 'vocab' ? '' : `\nmerges stopped early, at ${summary.merges} of ${r.targetMerges} (--vocab-size ${vocabSize}): ${why}`;
  process.stdout.write(`wrote ${out}: ${summary.vocab} ids (${merges}; ${summary.pieces} distinct pieces)${early}\n`);
}

const GEN = ['generate'] as const;
const TOK = ['train-tokenizer'] as const;

export const llamaCommand: CommandSpec = {
  name: 'llama',
  summary: 'token-level Llama: generate from a HF checkpoint folder, train a byte-level BPE tokenizer',
  usage: 'tfree llama generate --model DIR --prompt TEXT [options] | tfree llama train-tokenizer FILE... --out tokenizer.json [options]',
  subcommands: {
    generate: {
      summary: 'continue a prompt with a Llama checkpoint (token-level)',
      usage: 'tfree llama generate --model DIR --prompt TEXT [--max-new-tokens N] [--greedy | --temperature T --top-k K --top-p P] [--seed S] [--json]',
      details: 'DIR holds config.json and model.safetensors (or shards + model.safetensors.index.json); a 1-Bit-Wonder\nexport (quantization_config.json, *.weight_packed tensors) runs packed. The tokenizer is\nDIR/tokenizer.json unless --tokenizer is given. Sampling defaults are those of tfree generate; --greedy or --temperature 0 is greedy.',
      run: (a) => runGenerate(a),
    },
    'train-tokenizer': {
      summary: 'GPT-2-style byte-level BPE over text files (UTF-8), written as a HF tokenizer.json',
      usage: 'tfree llama train-tokenizer FILE... --out tokenizer.json [--vocab-size N] [--min-frequency N] [--special A,B] [--overwrite] [--json]',
      positionals: 'FILE...',
      run: (a) => runTrainTokenizer(a, a.positionals),
    },
  },
  options: {
    model: { type: 'string', help: 'checkpoint folder', meta: 'DIR', subs: GEN },
    tokenizer: { type: 'string', help: 'tokenizer.json or its folder (default DIR/tokenizer.json)', meta: 'PATH', subs: GEN },
    prompt: { type: 'string', help: 'text to continue', meta: 'TEXT', subs: GEN },
    'max-new-tokens': { type: 'int', help: 'tokens to generate (a Llama counts tokens, not bytes)', default: 64, min: 0, max: 1 << 20, subs: GEN },
    greedy: { type: 'boolean', help: 'always take the most likely token (same as --temperature 0)', subs: GEN },
    temperature: { type: 'number', help: 'sampling temperature (0: greedy)', default: SAMPLING_DEFAULTS.temperature, min: 0, max: 100, subs: GEN },
    'top-k': { type: 'int', help: 'keep the k most likely tokens (0: all)', default: SAMPLING_DEFAULTS.topK, min: 0, subs: GEN },
    'top-p': { type: 'number', help: 'nucleus probability (1: all)', default: SAMPLING_DEFAULTS.topP, above: 0, max: 1, subs: GEN },
    seed: { type: 'int', help: 'sampling seed', default: 0, min: 0, max: 2 ** 31 - 1, subs: GEN },
    cache: { type: 'boolean', help: 'use the KV cache', default: true, subs: GEN },
    out: { type: 'string', help: 'tokenizer.json to write', meta: 'FILE', subs: TOK },
    'vocab-size': { type: 'int', help: 'ids in all: 256 bytes + merges + special tokens', default: 4096, min: 257, max: 1 << 20, subs: TOK },
    'min-frequency': { type: 'int', help: 'stop when the best pair occurs fewer times', default: 2, min: 1, subs: TOK },
    special: { type: 'string', help: 'comma-separated special tokens', default: '<|endoftext|>', subs: TOK },
    overwrite: { type: 'boolean', help: 'replace an existing --out file (refused otherwise)', subs: TOK },
    json: { type: 'boolean', help: 'print one JSON object, no progress bar' },
  },
};
