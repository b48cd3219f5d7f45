/**
 * The static build's backend: the pure-TypeScript model in a Web Worker (./worker.ts), with the
 * interface of the served one. One request runs at a time in the worker, in arrival order.
 */
import type { Backend, BackendInfo, CompareResult, GenerateOutcome, GenerateParams, KgAnswer, KgMeta, ReportFile, ScoreResult, WordSpan } from './api.js';
import type { Reply, Request, WorkerInfo } from './protocol.js';

type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onText?: (text: string) => void;
}

export class WorkerBackend implements Backend {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly ready: Promise<WorkerInfo>;

  constructor(onStatus: (text: string) => void) {
    this.worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'tfree-model' });
    this.worker.onmessage = (ev: MessageEvent<Reply>) => {
      const m = ev.data;
      if (m.type === 'status') return onStatus(m.text);
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      if (m.type === 'text') p.onText?.(m.text);
      else {
        this.pending.delete(m.id);
        if (m.type === 'result') p.resolve(m.value);
        else p.reject(new Error(m.message));
      }
    };
    this.worker.onerror = (ev) => onStatus(`worker error: ${ev.message}`);
    this.ready = this.call({ op: 'init', baseUrl: document.baseURI }) as Promise<WorkerInfo>;
  }

  private call(body: RequestBody, onText?: (text: string) => void): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onText });
      this.worker.postMessage({ ...body, id } as Request);
    });
  }

  async info(): Promise<BackendInfo> {
    const w = await this.ready;
    return { mode: 'static', backend: w.backend, models: w.models, quantizedLabel: w.quantizedLabel };
  }

  async generate(params: GenerateParams, onText: (text: string) => void, signal: AbortSignal): Promise<GenerateOutcome> {
    await this.ready;
    const id = this.nextId;
    const onAbort = (): void => void this.worker.postMessage({ id: this.nextId++, op: 'cancel', target: id } satisfies Request);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return (await this.call({ op: 'generate', params }, onText)) as GenerateOutcome;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async split(text: string): Promise<WordSpan[]> {
    await this.ready;
    return (await this.call({ op: 'split', text })) as WordSpan[];
  }

  async score(text: string, model: string): Promise<ScoreResult> {
    await this.ready;
    return (await this.call({ op: 'score', text, model })) as ScoreResult;
  }

  async compare(prompt: string, maxTokens: number): Promise<CompareResult> {
    await this.ready;
    return (await this.call({ op: 'compare', prompt, maxTokens })) as CompareResult;
  }

  /** The report files copied into the build (report/index.json), if any. */
  async report(): Promise<ReportFile[]> {
    const res = await fetch('./report/index.json');
    if (!res.ok) return [];
    const { files } = (await res.json()) as { files: string[] };
    return files.map((name) => ({ name, url: `./report/${name.split('/').map(encodeURIComponent).join('/')}` }));
  }

  async kgMeta(): Promise<KgMeta | null> {
    return null;
  }

  async kgQuery(): Promise<KgAnswer[]> {
    throw new Error('no knowledge-graph model in the static build');
  }
}
