/**
 * The playground page: wires the controls of index.html to a backend, the API of `tfree serve`
 * (served build) or the model in a Web Worker (static build, `__TFREE_STATIC__`).
 */
import { HttpBackend, type Backend, type BackendInfo, type CompareResult, type GenerateParams, type KgMeta } from './api.js';
import { drawChips, drawDivergence, drawHeat, drawOwnText } from './view.js';

declare const __TFREE_STATIC__: boolean;

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`#${id} missing from the page`);
  return e as T;
}

const status = $('status');
const prompt = $<HTMLTextAreaElement>('prompt');
const genModel = $<HTMLSelectElement>('gen-model');
const generateBtn = $<HTMLButtonElement>('generate');
const stopBtn = $<HTMLButtonElement>('stop');
const scoreBtn = $<HTMLButtonElement>('score');
const compareBtn = $<HTMLButtonElement>('compare');
const output = $('gen-output');
const promptEcho = output.querySelector('.prompt-echo') as HTMLElement;
const continuation = output.querySelector('.continuation') as HTMLElement;

/** A form value the page refuses (shown in the status line or the KG error), before any request. */
class FieldError extends Error {}

/**
 * The number in input #id, checked against its min and max attributes (and whole when `int`):
 * an empty, non-numeric or out-of-range field is an error naming the field, never silently
 * replaced by a default or clamped.
 */
function field(id: string, int = false): number {
  const input = $<HTMLInputElement>(id);
  const name = input.closest('label')?.firstChild?.textContent?.trim() ?? id;
  const raw = input.value.trim();
  const v = Number(raw);
  const min = input.min === '' ? -Infinity : Number(input.min);
  const max = input.max === '' ? Infinity : Number(input.max);
  const range = input.min !== '' && input.max !== '' ? ` (${input.min} to ${input.max})` : '';
  if (raw === '' || !Number.isFinite(v)) throw new FieldError(`${name}: give a number${range}`);
  if (int && !Number.isInteger(v)) throw new FieldError(`${name}: give a whole number${range}, not ${raw}`);
  if (v < min || v > max) throw new FieldError(`${name}: ${raw} is out of range${range}`);
  return v;
}

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The status line of a failed action: the form's own message, or the action's name and the error. */
function fail(action: string, e: unknown): void {
  say(e instanceof FieldError ? e.message : `${action}: ${message(e)}`, true);
}

async function makeBackend(): Promise<Backend> {
  if (__TFREE_STATIC__) {
    const { WorkerBackend } = await import('./worker_backend.js');
    return new WorkerBackend((t) => say(t));
  }
  return new HttpBackend();
}

let info: BackendInfo;
let backend: Backend;
let busy = false;

function setBusy(b: boolean): void {
  busy = b;
  generateBtn.disabled = b;
  scoreBtn.disabled = b;
  compareBtn.disabled = b || !info.models.includes('quantized');
}

// ---- word chips, live on the prompt ----

let splitTimer: ReturnType<typeof setTimeout> | undefined;
let splitSeq = 0;

async function splitPrompt(): Promise<void> {
  const seq = ++splitSeq;
  try {
    const words = await backend.split(prompt.value);
    if (seq === splitSeq) drawChips($('chips'), words);
    if (status.textContent?.startsWith('split:') === true) say(statusLine()); // the prompt that failed is gone
  } catch (e) {
    fail('split', e);
  }
}

// ---- scoring ----

async function scoreText(text: string, generatedFrom: number): Promise<void> {
  const r = await backend.score(text, genModel.value);
  drawChips($('chips'), r.words, generatedFrom);
  drawHeat($('heat'), r);
  $('heat-info').textContent =
    r.bpb === null ? 'Too short to score (the first byte has no context).' : `${r.bytes.length} bytes, ${r.words.length} words, ${r.bpb.toFixed(3)} bits per byte under the ${genModel.value} model.`;
}

// ---- generation ----

let abort: AbortController | null = null;

async function generate(): Promise<void> {
  if (busy) return;
  let params: GenerateParams;
  try {
    params = { prompt: prompt.value, model: genModel.value, maxTokens: field('max-bytes', true), temperature: field('temperature'), topP: field('top-p'), seed: field('seed', true) };
  } catch (e) {
    $('gen-info').textContent = ''; // an earlier generation's summary does not stand beside the refused request
    fail('generate', e);
    return;
  }
  say(statusLine());
  setBusy(true);
  stopBtn.disabled = false;
  abort = new AbortController();
  const p = prompt.value;
  promptEcho.textContent = p;
  continuation.textContent = '';
  $('gen-info').textContent = 'generating…';
  const t0 = performance.now();
  try {
    const res = await backend.generate(
      params,
      (t) => {
        continuation.textContent += t;
      },
      abort.signal,
    );
    stopBtn.disabled = true; // the text is complete: scoring it next cannot be stopped
    const s = (performance.now() - t0) / 1000;
    const n = new TextEncoder().encode(res.text).length;
    $('gen-info').textContent = `${n} bytes in ${s.toFixed(2)} s (${(n / s).toFixed(0)} bytes/s), finish: ${res.finishReason}`;
    // the prompt's length in the model's bytes (a special-token string such as <|eot_id|> is one byte), where the generated words start
    const promptBytes = (await backend.split(p)).at(-1)?.end ?? 0;
    await scoreText(p + res.text, promptBytes);
  } catch (e) {
    $('gen-info').textContent = '';
    fail('generate', e);
  } finally {
    stopBtn.disabled = true;
    abort = null;
    setBusy(false);
  }
}

// ---- compare ----

function showCompare(r: CompareResult, prompt: string): void {
  const show = (id: string, v: number | null): void => {
    $(id).textContent = v === null ? 'none' : String(v);
  };
  show('fdt-bytes', r.fdt_bytes);
  show('sdt-bytes', r.sdt_bytes);
  show('n-bytes', new TextEncoder().encode(r.base_text).length);
  show('fdt-words', r.fdt_words);
  show('sdt-words', r.sdt_words);
  show('n-words', r.base_words.length);
  drawDivergence($('compare-base'), r, prompt);
  drawOwnText($('compare-quant'), r.quantized_text, r.base_text, prompt);
  $('compare-result').hidden = false;
}

async function compare(): Promise<void> {
  if (busy) return;
  let bytes: number;
  try {
    bytes = field('compare-bytes', true);
  } catch (e) {
    fail('compare', e);
    return;
  }
  setBusy(true);
  say('comparing…');
  try {
    const p = prompt.value;
    showCompare(await backend.compare(p, bytes), p);
    say(statusLine());
  } catch (e) {
    $('compare-result').hidden = true; // no stale result beside the error
    fail('compare', e);
  } finally {
    setBusy(false);
  }
}

// ---- report and KG ----

async function loadReport(): Promise<void> {
  if (info.report === false) return;
  const files = await backend.report();
  const svgs = files.filter((f) => f.name.endsWith('.svg'));
  const docs = files.filter((f) => f.name.endsWith('.md'));
  if (files.length === 0) return;
  $('report-figures').replaceChildren(
    ...svgs.map((f) => {
      const fig = document.createElement('figure');
      const img = document.createElement('img');
      img.src = f.url;
      img.alt = `DTM report plot ${f.name}`;
      const cap = document.createElement('figcaption');
      cap.textContent = f.name;
      fig.append(img, cap);
      return fig;
    }),
  );
  const links = $('report-links');
  links.replaceChildren(document.createTextNode(`${svgs.length} plot${svgs.length === 1 ? '' : 's'}`));
  for (const d of docs) {
    const a = document.createElement('a');
    a.href = d.url;
    a.textContent = d.name;
    links.append(document.createTextNode(' · '), a);
  }
  $('report-panel').hidden = false;
}

function fillList(id: string, values: readonly string[]): void {
  $(id).replaceChildren(
    ...values.slice(0, 5000).map((v) => {
      const o = document.createElement('option');
      o.value = v;
      return o;
    }),
  );
}

async function loadKg(): Promise<void> {
  if (info.kg === false) return;
  const meta: KgMeta | null = await backend.kgMeta();
  if (meta === null) return;
  fillList('kg-entities', meta.entities);
  fillList('kg-relations', meta.relations);
  fillList('kg-dates', meta.dates);
  $<HTMLInputElement>('kg-head').value ||= meta.entities[0] ?? '';
  $<HTMLInputElement>('kg-relation').value ||= meta.relations[0] ?? '';
  $<HTMLInputElement>('kg-date').value ||= meta.dates[0] ?? '';
  $('kg-panel').hidden = false;
  $('kg-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void kgQuery();
  });
}

async function kgQuery(): Promise<void> {
  const err = $('kg-error');
  err.hidden = true;
  try {
    const text = (id: string, what: string): string => {
      const v = $<HTMLInputElement>(id).value;
      if (v.trim() === '') throw new FieldError(`${what}: give one (the list under the field has the model's)`);
      return v;
    };
    const answers = await backend.kgQuery({
      head: text('kg-head', 'Head'),
      relation: text('kg-relation', 'Relation'),
      date: text('kg-date', 'Date'),
      k: field('kg-k', true),
    });
    $('kg-answers').replaceChildren(
      ...answers.map((a) => {
        const li = document.createElement('li');
        li.textContent = `${a.entity} (distance ${a.score.toFixed(3)})`;
        return li;
      }),
    );
  } catch (e) {
    $('kg-answers').replaceChildren();
    err.textContent = message(e);
    err.hidden = false;
  }
}

// ---- start ----

function statusLine(): string {
  const where = info.mode === 'served' ? 'served by tfree serve' : 'static page: model in a Web Worker';
  return `ready · ${where} · ${info.backend} kernels · models: ${info.models.join(', ')}${info.quantizedLabel ? ` (quantized: ${info.quantizedLabel})` : ''}`;
}

async function start(): Promise<void> {
  backend = await makeBackend();
  info = await backend.info();
  genModel.replaceChildren(
    ...info.models.map((m) => {
      const o = document.createElement('option');
      o.value = m;
      o.textContent = m;
      return o;
    }),
  );
  const hasQuant = info.models.includes('quantized');
  $('compare-unavailable').hidden = hasQuant;
  if (info.quantizedLabel) $('compare-quant-caption').textContent = `quantized (${info.quantizedLabel}), greedy on its own`;
  document.body.dataset.mode = info.mode;
  setBusy(false);
  say(statusLine());
  generateBtn.addEventListener('click', () => void generate());
  stopBtn.addEventListener('click', () => abort?.abort());
  scoreBtn.addEventListener('click', () => {
    if (busy) return;
    say(statusLine());
    setBusy(true);
    scoreText(prompt.value, Infinity)
      .catch((e: unknown) => fail('score', e))
      .finally(() => setBusy(false));
  });
  compareBtn.addEventListener('click', () => void compare());
  prompt.addEventListener('input', () => {
    clearTimeout(splitTimer);
    splitTimer = setTimeout(() => void splitPrompt(), 200);
  });
  await splitPrompt();
  await Promise.all([loadReport().catch((e: unknown) => console.warn('report:', e)), loadKg().catch((e: unknown) => console.warn('kg:', e))]);
  document.body.dataset.ready = 'true';
}

start().catch((e: unknown) => say(`cannot start: ${message(e)}`, true));
