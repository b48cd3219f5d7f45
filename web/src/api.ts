/**
 * What the page asks of a backend, and the served backend: the HTTP API of `tfree serve`
 * (docs/serve.md) on the page's own origin. The static build uses ./worker_backend.ts instead,
 * with the same interface. Result shapes are those of src/serve/ops.ts (type imports only: no
 * model code in the page's own bundle).
 */
import type { CompareResult, KgAnswer, KgMeta, ScoreResult, WordSpan } from '../../src/serve/ops.js';

export type { CompareResult, KgAnswer, KgMeta, ScoreResult, WordSpan };

export interface BackendInfo {
  mode: 'served' | 'static';
  /** kernel backend behind it (native | js) */
  backend: string;
  /** model ids: "base", and "quantized" when one is loaded */
  models: string[];
  /** a line describing the quantized model, when known */
  quantizedLabel?: string;
  /** false when the backend is known to have no KG model / no DTM report (the page then does not ask) */
  kg?: boolean;
  report?: boolean;
}

export interface GenerateParams {
  prompt: string;
  model: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
}

export interface GenerateOutcome {
  text: string;
  finishReason: string;
}

export interface KgQueryParams {
  head: string;
  relation: string;
  date: string;
  k: number;
}

export interface ReportFile {
  name: string;
  url: string;
}

export interface Backend {
  info(): Promise<BackendInfo>;
  /** streams the continuation through onText; resolves when done or aborted */
  generate(p: GenerateParams, onText: (text: string) => void, signal: AbortSignal): Promise<GenerateOutcome>;
  split(text: string): Promise<WordSpan[]>;
  score(text: string, model: string): Promise<ScoreResult>;
  compare(prompt: string, maxTokens: number): Promise<CompareResult>;
  /** files of the DTM report (empty when there is none) */
  report(): Promise<ReportFile[]>;
  /** null when no KG model is loaded */
  kgMeta(): Promise<KgMeta | null>;
  kgQuery(q: KgQueryParams): Promise<KgAnswer[]>;
}

/** An error answer of the API: `{"error":{"message",...}}`. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function failure(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, res.status);
}

/**
 * fetch, with a failure to reach the server (it stopped, the network went away: a TypeError such
 * as "Failed to fetch") said as such; an abort passes through.
 */
async function request(path: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(path, init);
  } catch (e) {
    throw lost(e, init?.signal);
  }
}

function lost(e: unknown, signal?: AbortSignal | null): unknown {
  if (signal?.aborted === true || !(e instanceof TypeError)) return e;
  return new ApiError(`lost the connection to tfree serve (${e.message}); is it still running?`, 0);
}

async function getJson<T>(path: string): Promise<T> {
  const res = await request(path);
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

async function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const res = await request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

interface CompletionChunk {
  choices?: { text?: string; finish_reason?: string | null }[];
  error?: { message?: string };
}

/**
 * Reads `data: {...}` events of a server-sent event stream until `data: [DONE]`; a stream that
 * ends without it (the server or a proxy closed it early) is an error, not a finished text.
 */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, ''))
          .join('\n');
        if (data === '[DONE]') return;
        if (data !== '') yield data;
      }
    }
    throw new ApiError('the server closed the stream before it ended (no [DONE]); the text may be cut short', 0);
  } finally {
    reader.releaseLock();
  }
}

/** The API of `tfree serve` on this origin. */
export class HttpBackend implements Backend {
  async info(): Promise<BackendInfo> {
    const h = await getJson<{ status: string; models: string[]; backend: string; kg?: boolean; report?: boolean }>('./health');
    return { mode: 'served', backend: h.backend, models: h.models, kg: h.kg, report: h.report };
  }

  async generate(p: GenerateParams, onText: (text: string) => void, signal: AbortSignal): Promise<GenerateOutcome> {
    const body = { model: p.model, prompt: p.prompt, max_tokens: p.maxTokens, temperature: p.temperature, top_p: p.topP, seed: p.seed, stream: true };
    let text = '';
    let finishReason = 'stop';
    try {
      const res = await fetch('./v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
      if (!res.ok || res.body === null) throw await failure(res);
      for await (const data of sseEvents(res.body)) {
        const chunk = JSON.parse(data) as CompletionChunk;
        if (chunk.error !== undefined) throw new ApiError(chunk.error.message ?? 'generation failed', 500);
        const c = chunk.choices?.[0];
        if (c?.text) {
          text += c.text;
          onText(c.text);
        }
        if (c?.finish_reason) finishReason = c.finish_reason;
      }
    } catch (e) {
      if (signal.aborted) return { text, finishReason: 'aborted' };
      throw lost(e, signal);
    }
    return { text, finishReason };
  }

  async split(text: string): Promise<WordSpan[]> {
    return (await postJson<{ words: WordSpan[] }>('./tfree/split', { text })).words;
  }

  score(text: string, model: string): Promise<ScoreResult> {
    return postJson<ScoreResult>('./tfree/score', { text, model });
  }

  compare(prompt: string, maxTokens: number): Promise<CompareResult> {
    return postJson<CompareResult>('./tfree/compare', { prompt, max_tokens: maxTokens });
  }

  async report(): Promise<ReportFile[]> {
    const res = await request('./tfree/report');
    if (res.status === 404) return [];
    if (!res.ok) throw await failure(res);
    const { files } = (await res.json()) as { files: string[] };
    return files.map((name) => ({ name, url: `./tfree/report/${name.split('/').map(encodeURIComponent).join('/')}` }));
  }

  async kgMeta(): Promise<KgMeta | null> {
    const res = await request('./tfree/kg/meta');
    if (res.status === 404) return null;
    if (!res.ok) throw await failure(res);
    return (await res.json()) as KgMeta;
  }

  async kgQuery(q: KgQueryParams): Promise<KgAnswer[]> {
    return (await postJson<{ answers: KgAnswer[] }>('./tfree/kg/query', q)).answers;
  }
}
