import type { CommandSpec, ParsedArgs } from '../args.js';
import { UserError } from '../errors.js';
import { Progress } from '../progress.js';
import { checkInputPath, checkOutputPath, refuseInputAsOutput } from '../resources.js';
import { GgufError, GgufInterrupted, SafetensorsError } from '../../io/index.js';
import { LlamaConfigError } from '../../models/llama/index.js';
import { GGUF_EXPORT_TYPES, GgufExportError, exportLlamaGguf, type GgufExportType } from '../../convert/llama_gguf.js';

async function runGguf(a: ParsedArgs): Promise<number> {
  const dir = a.options.model;
  if (typeof dir !== 'string') throw new UserError('give the Llama checkpoint folder with --model DIR');
  checkInputPath(dir, '--model', 'dir');
  const out = a.options.out;
  if (typeof out !== 'string') throw new UserError('give the output file with --out FILE.gguf');
  const type = String(a.options.type) as GgufExportType;
  const json = a.options.json === true;
  const tokenizer = typeof a.options.tokenizer === 'string' ? a.options.tokenizer : undefined;
  checkOutputPath(out, '--out', 'file');
  refuseInputAsOutput(out, '--out', [dir, tokenizer]);
  let bar: Progress | undefined;
  let res;
  let stop = false;
  const onSigint = (): void => {
    if (stop) process.exit(130);
    stop = true;
  };
  process.on('SIGINT', onSigint);
  try {
    res = await exportLlamaGguf(dir, out, {
      shouldStop: () => stop,
      type,
      tokenizer,
      overwrite: a.options.overwrite === true,
      onTensor: (done, total) => {
        bar ??= new Progress({ total, label: 'export', enabled: !json });
        bar.update(done);
      },
    });
  } catch (e) {
    if (e instanceof GgufInterrupted) {
      bar?.stop();
      process.stderr.write(`tfree export: interrupted; ${out} was not written\n`);
      return 130;
    }
    if (e instanceof GgufExportError || e instanceof GgufError || e instanceof LlamaConfigError || e instanceof SafetensorsError) throw new UserError(e.message);
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
  bar?.finish();
  if (json) process.stdout.write(`${JSON.stringify({ out: res.out, bytes: res.fileSize, tensors: res.tensors, type: res.type, f16_fallback: res.fallback, pre_tokenizer: res.pre })}\n`);
  else {
    process.stdout.write(`wrote ${res.out}: ${res.tensors} tensors, ${(res.fileSize / 2 ** 20).toFixed(1)} MiB, ${res.type} (pre-tokenizer ${res.pre})\n`);
    if (res.fallback.length > 0) process.stdout.write(`F16 instead of ${res.type} (rows not a multiple of 32): ${res.fallback.join(', ')}\n`);
  }
  return 0;
}

const GGUF_DETAILS = [
  'DIR is a HF Llama folder (config.json, model.safetensors or shards, tokenizer.json); the file',
  'follows ggml\'s GGUF v3 spec with llama.cpp\'s "llama" tensor names (docs/gguf.md). Norms stay F32;',
  'with q8_0/q4_0 a weight whose rows are not a multiple of 32 is written as F16. An existing',
  'output file is replaced only with --overwrite. Ctrl-C stops after the current tensor, removes the',
  'partial file and exits 130.',
].join('\n');

export const exportCommand: CommandSpec = {
  name: 'export',
  summary: 'export a Llama checkpoint folder to GGUF (f32, f16, q8_0, q4_0) for llama.cpp',
  usage: 'tfree export gguf --model DIR --out FILE.gguf [--type f32|f16|q8_0|q4_0] [--tokenizer PATH] [--overwrite] [--json]',
  details: `gguf: ${GGUF_DETAILS.split('\n').join('\n  ')}`,
  options: {
    model: { type: 'string', help: 'Llama checkpoint folder', meta: 'DIR' },
    out: { type: 'string', help: 'GGUF file to write', meta: 'FILE' },
    type: { type: 'string', help: 'weight type: f32, f16, q8_0, q4_0', default: 'f16', choices: GGUF_EXPORT_TYPES },
    tokenizer: { type: 'string', help: 'tokenizer.json or its folder (default DIR/tokenizer.json)', meta: 'PATH' },
    overwrite: { type: 'boolean', help: 'replace an existing output file' },
    json: { type: 'boolean', help: 'print one JSON object, no progress bar' },
  },
  subcommands: {
    gguf: {
      summary: 'a Llama checkpoint folder as one GGUF file (f32, f16, q8_0, q4_0) for llama.cpp',
      usage: 'tfree export gguf --model DIR --out FILE.gguf [--type f32|f16|q8_0|q4_0] [--tokenizer PATH] [--overwrite] [--json]',
      details: GGUF_DETAILS,
      run: (a) => runGguf(a),
    },
  },
};
