import { defaultKgModel } from './kg.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec, ParsedArgs } from '../args.js';
import { UserError } from '../errors.js';
import { checkInputPath } from '../resources.js';
import { QUANTIZE_BLOCK_OPTION, QUANTIZE_OPTION, configDifferences, loadHATForCli, quantizeOption } from '../hat_model.js';
import { loadModel } from '../../models/boxte/train.js';
import { DEFAULT_LIMITS, type Limits } from '../../serve/openai.js';
import { TfreeServer } from '../../serve/server.js';
import type { KgModel } from '../../serve/ops.js';

/** `web/dist/` of the package (this file is dist/src/cli/commands/serve.js). */
function defaultWebDir(): string {
  return fileURLToPath(new URL('../../../../web/dist/', import.meta.url));
}

function folder(a: ParsedArgs, name: string): string | undefined {
  const v = a.options[name];
  if (v === undefined || v === '') return undefined;
  const dir = String(v);
  checkInputPath(dir, `--${name}`, 'dir');
  return dir;
}

function positive(a: ParsedArgs, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const v = a.options[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new UserError(`--${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** A BoxTE checkpoint: the file itself, or the one checkpoint (*.safetensors) in a folder. */
function loadKg(path: string): KgModel {
  checkInputPath(path, '--kg', 'any');
  let file = path;
  if (statSync(path).isDirectory()) {
    const found = readdirSync(path).filter((f) => f.endsWith('.safetensors')).sort();
    if (found.length !== 1) throw new UserError(`--kg ${path}: expected one BoxTE checkpoint (*.safetensors) in the folder, found ${found.length}; give the file`);
    file = join(path, found[0]);
  }
  try {
    const { model, vocab } = loadModel(file);
    return { model, vocab };
  } catch (e) {
    throw new UserError(`--kg ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'serve models over HTTP: OpenAI-compatible completions (max_tokens in bytes) and the web playground',
  usage:
    'tfree serve [--model DIR] [--quantized DIR] [--kg PATH] [--report DIR] [--web DIR] [--host 127.0.0.1] [--port 8080] [--allow-host H,..] [--max-prompt-bytes N] [--max-tokens-limit N] [--max-queue N] [--max-body-bytes N] [--chunk-bytes 8]',
  details: [
    'Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions (stream: true for',
    'server-sent events), POST /tfree/split|score|compare|kg/query, GET /tfree/kg/meta, GET /tfree/report[/FILE],',
    'and static files of the web folder at /. max_tokens and usage count BYTES of UTF-8 (a HAT model',
    'generates bytes). Requests take turns generating --chunk-bytes bytes each (fair queueing); more',
    'than --max-queue admitted requests get 429. Ctrl-C (SIGINT) or SIGTERM shuts down gracefully.',
    'A request whose Host header names another server gets 403 (DNS rebinding; --allow-host adds names);',
    'POST bodies must be Content-Type: application/json (415 otherwise).',
    'API reference: docs/serve.md.',
  ].join('\n'),
  options: {
    model: { type: 'string', help: 'the base model (model id "base"); default: the bundled model', meta: 'DIR' },
    quantize: QUANTIZE_OPTION,
    'quantize-block': QUANTIZE_BLOCK_OPTION,
    quantized: { type: 'string', help: 'a compressed copy (model id "quantized"; enables /tfree/compare)', meta: 'DIR' },
    kg: { type: 'string', help: 'a BoxTE checkpoint (tfree kg train --out), or a folder holding one (default: the bundled ICEWS14 model)', meta: 'PATH' },
    report: { type: 'string', help: 'a report folder served under /tfree/report (tfree eval ... --report)', meta: 'DIR' },
    web: { type: 'string', help: 'the web playground folder served at / (default: web/dist of the package when built)', meta: 'DIR' },
    host: { type: 'string', help: 'address to listen on', default: '127.0.0.1' },
    'allow-host': { type: 'string', help: 'also accept these names in the Host header (comma-separated; * = any); by default only localhost, 127.0.0.1, ::1 and the bound address', meta: 'H,..' },
    port: { type: 'int', help: 'port (0: any free port)', default: 8080, min: 0, max: 65535 },
    'max-prompt-bytes': { type: 'int', help: 'largest prompt / text in bytes', default: DEFAULT_LIMITS.maxPromptBytes, min: 1 },
    'max-tokens-limit': { type: 'int', help: 'largest max_tokens (bytes) a request may ask for', default: DEFAULT_LIMITS.maxTokensLimit, min: 1 },
    'max-queue': { type: 'int', help: 'most requests admitted at once (more get 429)', default: DEFAULT_LIMITS.maxQueue, min: 1 },
    'max-body-bytes': { type: 'int', help: 'largest request body (more get 413)', default: DEFAULT_LIMITS.maxBodyBytes, min: 1 },
    'chunk-bytes': { type: 'int', help: 'bytes a request generates per turn of the fair queue', default: 8, min: 1 },
  },
  async run(args) {
    const limits: Limits = {
      maxPromptBytes: positive(args, 'max-prompt-bytes'),
      maxTokensLimit: positive(args, 'max-tokens-limit'),
      maxQueue: positive(args, 'max-queue'),
      maxBodyBytes: positive(args, 'max-body-bytes'),
    };
    const port = positive(args, 'port', 0, 65535);
    const chunkBytes = positive(args, 'chunk-bytes');
    const reportDir = folder(args, 'report');
    let webDir = folder(args, 'web');
    if (webDir === undefined && existsSync(join(defaultWebDir(), 'index.html'))) webDir = defaultWebDir();
    const qDir = folder(args, 'quantized');
    const base = loadHATForCli(args.options.model, { quantize: quantizeOption(args) });
    const quantized = qDir !== undefined ? loadHATForCli(qDir) : undefined;
    if (quantized) {
      const diff = configDifferences(base.model.config, quantized.model.config);
      if (diff.splitter.length > 0) throw new UserError(`--quantized ${String(qDir)}: its ${diff.splitter.join(', ')} differ${diff.splitter.length === 1 ? 's' : ''} from the base model's; the server splits text once for both`);
      if (diff.other.length > 0) process.stderr.write(`tfree serve: warning: --quantized ${String(qDir)} does not look like a quantized copy of the base model (config differs in ${diff.other.slice(0, 4).join(', ')}${diff.other.length > 4 ? ', ...' : ''})\n`);
    }
    const kgPath = args.options.kg;
    // without --kg, the bundled ICEWS14 BoxTE model (when present) answers the playground's KG form
    const kg = typeof kgPath === 'string' && kgPath !== '' ? loadKg(kgPath) : existsSync(defaultKgModel()) ? loadKg(defaultKgModel()) : undefined;
    const allowHosts = typeof args.options['allow-host'] === 'string' ? args.options['allow-host'].split(',').map((h) => h.trim()).filter((h) => h !== '') : [];
    const server = new TfreeServer({ models: { splitter: base.splitter, base: base.model, quantized: quantized?.model, kg }, limits, reportDir, webDir, chunkBytes, allowHosts });
    let url: string;
    try {
      url = await server.listen(port, String(args.options.host));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new UserError(`--port ${port}: already in use on ${String(args.options.host)} (another server?); choose another --port, or --port 0 for any free one`);
      throw new UserError(`cannot listen on ${String(args.options.host)}:${port}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const extras = [kg ? 'BoxTE queries' : '', webDir ? 'web playground' : '', reportDir ? 'DTM report' : ''].filter((s) => s !== '');
    process.stdout.write(`tfree serve: listening on ${url} (models: ${server.modelIds().join(', ')}${extras.length > 0 ? `; ${extras.join(', ')}` : ''}; Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string): void => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        process.stderr.write(`tfree serve: ${sig}, shutting down (${server.scheduler.size} requests in progress)\n`);
        server.close().then(resolve, resolve);
      };
      const onInt = (): void => stop('SIGINT');
      const onTerm = (): void => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
    return 0;
  },
};
