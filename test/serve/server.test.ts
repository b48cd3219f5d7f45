/**
 * `tfree serve` with the official `openai` npm client as the real client, against a server on an
 * ephemeral loopback port with the bundled model: completions and chat (streaming and not),
 * models, errors as the client surfaces them, fairness, queue limit, client disconnects,
 * --quantized (a kmeans4 copy made here) with /tfree/compare, the tfree extensions, static files,
 * and the CLI process (one URL line, graceful SIGTERM).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI, { APIError, BadRequestError, NotFoundError, RateLimitError } from 'openai';
import { defaultModelDir, loadHATForCli, type LoadedHAT } from '../../src/cli/hat_model.js';
import { main } from '../../src/cli/main.js';
import { parseFormat, quantizeCheckpoint } from '../../src/compress/index.js';
import { BoxTE, defaultConfig } from '../../src/models/boxte/model.js';
import { modelMetadata } from '../../src/models/boxte/train.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { compare, kgQuery, score } from '../../src/serve/ops.js';
import { TfreeServer, type ServerOptions } from '../../src/serve/server.js';

const tmp = mkdtempSync(join(tmpdir(), 'tfree-serve-'));
let base: LoadedHAT;
let quant: LoadedHAT;
let server: TfreeServer;
let url: string;
let client: OpenAI;

function kgModel(): NonNullable<ServerOptions['models']['kg']> {
  const E = 6;
  const model = new BoxTE(defaultConfig({ numEntities: E, numRelations: 2, numTimes: 3, dim: 4, k: 1 }));
  return { model, vocab: { entities: ['ann', 'bob', 'cy', 'dee', 'eve', 'fay'], relations: ['meets', 'calls'], numTimes: 3, timeKind: 'date', origin: '2020-05-01' } };
}

async function start(opts: Partial<ServerOptions> = {}): Promise<{ server: TfreeServer; url: string; client: OpenAI }> {
  const s = new TfreeServer({ models: { splitter: base.splitter, base: base.model, quantized: quant.model, kg: kgModel() }, log: () => {}, ...opts });
  const u = await s.listen(0, '127.0.0.1');
  return { server: s, url: u, client: new OpenAI({ baseURL: `${u}/v1`, apiKey: 'unused', maxRetries: 0 }) };
}

before(async () => {
  base = loadHATForCli(undefined);
  // a kmeans4 copy of two decoder matrices (all of them would take ~20 s; two show the path)
  quantizeCheckpoint(defaultModelDir(), join(tmp, 'kmeans4'), parseFormat('kmeans4', { blockSize: 32 }), { include: ['decoder.*mlp.down_proj*'] });
  quant = loadHATForCli(join(tmp, 'kmeans4'));
  mkdirSync(join(tmp, 'web', 'assets'), { recursive: true });
  writeFileSync(join(tmp, 'web', 'index.html'), '<!doctype html><title>tfree</title>');
  writeFileSync(join(tmp, 'web', 'assets', 'app.js'), 'console.log(1);');
  writeFileSync(join(tmp, 'secret.txt'), 'outside');
  symlinkSync(join(tmp, 'secret.txt'), join(tmp, 'web', 'link.txt'));
  mkdirSync(join(tmp, 'report'));
  writeFileSync(join(tmp, 'report', 'report.md'), '# report');
  writeFileSync(join(tmp, 'report', 'fdt.svg'), '<svg/>');
  ({ server, url, client } = await start({ webDir: join(tmp, 'web'), reportDir: join(tmp, 'report'), limits: { maxTokensLimit: 400, maxPromptBytes: 200 } }));
});

after(async () => {
  await server.close(100);
  rmSync(tmp, { recursive: true, force: true });
});

async function post(path: string, body: unknown, u = url): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${u}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

/** GET with the path sent as is (no URL normalisation). */
function rawGet(path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.path = path;
    req.on('error', reject);
    req.end();
  });
}

test('serve: completions with the openai client, streaming chunks concatenate to the non-streaming text', async () => {
  for (const params of [{ temperature: 0 }, { temperature: 0.8, top_p: 0.9, seed: 7 }]) {
    const full = await client.completions.create({ model: 'base', prompt: 'Once upon a time', max_tokens: 32, ...params });
    const text = full.choices[0].text;
    assert.equal(full.object, 'text_completion');
    assert.equal(full.usage?.prompt_tokens, 16);
    assert.equal(full.usage?.completion_tokens, Buffer.byteLength(text));
    if (full.choices[0].finish_reason === 'length') assert.equal(Buffer.byteLength(text), 32);
    const stream = await client.completions.create({ model: 'base', prompt: 'Once upon a time', max_tokens: 32, stream: true, ...params });
    let streamed = '';
    let chunks = 0;
    let finish: string | null = null;
    for await (const c of stream) {
      streamed += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      chunks++;
    }
    assert.equal(streamed, text, JSON.stringify(params));
    assert.ok(chunks >= 3, `${chunks} chunks`);
    assert.equal(finish, full.choices[0].finish_reason);
  }
  // the same seed repeats, another seed differs
  const a = await client.completions.create({ model: 'base', prompt: 'The', max_tokens: 40, seed: 1 });
  const b = await client.completions.create({ model: 'base', prompt: 'The', max_tokens: 40, seed: 1 });
  const c = await client.completions.create({ model: 'base', prompt: 'The', max_tokens: 40, seed: 2 });
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
  // stop: cut at the first occurrence of a piece of the greedy text
  const g = (await client.completions.create({ model: 'base', prompt: 'Once upon a time', max_tokens: 32, temperature: 0 })).choices[0].text;
  const stop = g.slice(10, 13);
  const s = await client.completions.create({ model: 'base', prompt: 'Once upon a time', max_tokens: 32, temperature: 0, stop: [stop] });
  assert.equal(s.choices[0].text, g.slice(0, g.indexOf(stop)));
  assert.equal(s.choices[0].finish_reason, 'stop');
});

test('serve: chat completions (template over messages), streaming and not; models list', async () => {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Tell me a story.' },
  ];
  const full = await client.chat.completions.create({ model: 'base', messages, max_tokens: 40, temperature: 0 });
  assert.equal(full.object, 'chat.completion');
  assert.equal(full.choices[0].message.role, 'assistant');
  const text = full.choices[0].message.content ?? '';
  assert.ok(!text.includes('<|eot_id|>') && !text.includes('<|start_header_id|>'));
  assert.equal(
    full.usage?.prompt_tokens,
    Buffer.byteLength('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a story.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'),
  );
  const stream = await client.chat.completions.create({ model: 'base', messages, max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let streamed = '';
  let role = '';
  let usageSeen = 0;
  for await (const c of stream) {
    streamed += c.choices[0]?.delta.content ?? '';
    role ||= c.choices[0]?.delta.role ?? '';
    if (c.usage) usageSeen = c.usage.completion_tokens;
  }
  assert.equal(streamed, text);
  assert.equal(role, 'assistant');
  assert.equal(usageSeen, full.usage?.completion_tokens);
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ['base', 'quantized'],
  );
});

test('serve: bad requests surface in the client as APIError with the right status', async () => {
  const expectStatus = async (p: Promise<unknown>, status: number, cls: abstract new (...a: never[]) => APIError, param?: string): Promise<void> => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
      assert.equal((e as APIError).status, status);
      if (param !== undefined) assert.equal((e as APIError).param, param);
      return true;
    });
  };
  await expectStatus(client.completions.create({ model: 'base', prompt: 'x', max_tokens: 401 }), 400, BadRequestError, 'max_tokens');
  await expectStatus(client.completions.create({ model: 'base', prompt: 'x'.repeat(201), max_tokens: 4 }), 400, BadRequestError, 'prompt');
  await expectStatus(client.completions.create({ model: 'base', prompt: 'x', temperature: 3 }), 400, BadRequestError, 'temperature');
  await expectStatus(client.completions.create({ model: 'base', prompt: '', max_tokens: 4 }), 400, BadRequestError, 'prompt');
  await expectStatus(client.completions.create({ model: 'gpt-4', prompt: 'x' }), 404, NotFoundError, 'model');
  await expectStatus(client.chat.completions.create({ model: 'base', messages: [{ role: 'tool', content: 'x', tool_call_id: 'a' }] }), 400, BadRequestError);
  // raw requests: bad JSON, wrong types, oversized body, unknown path, wrong method
  for (const [body, param] of [
    ['{"prompt": "x",', null],
    [{ prompt: 5 }, 'prompt'],
    [{ prompt: 'x', max_tokens: 'ten' }, 'max_tokens'],
    [{ prompt: 'x', stop: [1] }, 'stop'],
    [{ prompt: 'x', stream: 'yes' }, 'stream'],
    [{ prompt: 'x', n: 2 }, 'n'],
    ['[1, 2]', null],
  ] as const) {
    const r = await post('/v1/completions', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    const err = r.json.error as Record<string, unknown>;
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.param, param);
    assert.ok(typeof err.message === 'string' && err.message.length > 10);
  }
  // found walking docs/serve.md: include_usage "yes" was read as false (200), 1e999 said "must be a number, got number Infinity"
  for (const [body, param, message] of [
    [{ prompt: 'x', max_tokens: 2, stream: true, stream_options: { include_usage: 'yes' } }, 'stream_options.include_usage', '"stream_options.include_usage" must be true or false, got string'],
    ['{"prompt": "x", "temperature": 1e999}', 'temperature', '"temperature" must be a finite number, got number Infinity'],
  ] as const) {
    const r = await post('/v1/completions', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    const err = r.json.error as Record<string, unknown>;
    assert.deepEqual([err.param, err.code, err.message], [param, 'invalid_type', message]);
  }
  const big = await post('/v1/completions', { prompt: 'x', pad: 'y'.repeat(70000) });
  assert.equal(big.status, 413);
  assert.equal((await post('/v1/nothing', {})).status, 404);
  assert.equal((await fetch(`${url}/v1/completions`)).status, 405);
});

/** Reads a completion stream, calling `onChunk` with the text of each chunk. */
async function readStream(c: OpenAI, prompt: string, maxTokens: number, onChunk: (t: string) => void): Promise<string> {
  const stream = await c.completions.create({ model: 'base', prompt, max_tokens: maxTokens, temperature: 0, stream: true });
  let text = '';
  for await (const ch of stream) {
    const t = ch.choices[0]?.text ?? '';
    text += t;
    if (t !== '') onChunk(t);
  }
  return text;
}

test('serve: fair queue: a short request finishes while a long one is still generating, and both progress', async () => {
  const events: string[] = [];
  let longStarted!: () => void;
  const started = new Promise<void>((r) => (longStarted = r));
  const long = readStream(client, 'A long story begins', 200, () => {
    events.push('long');
    longStarted();
  }).then(() => events.push('long-done'));
  await started;
  const short = readStream(client, 'Short', 24, () => events.push('short')).then(() => events.push('short-done'));
  await Promise.all([long, short]);
  const sd = events.indexOf('short-done');
  const firstShort = events.indexOf('short');
  assert.ok(sd >= 0 && sd < events.indexOf('long-done'), events.join(' '));
  // the long request got chunks between the short one's first chunk and its end (interleaved turns)
  assert.ok(events.slice(firstShort, sd).includes('long'), events.join(' '));
  assert.ok(events.slice(sd).filter((e) => e === 'long').length > 3, 'the long one continues after');
});

test('serve: --max-queue: one request too many gets 429', async () => {
  const s = await start({ limits: { maxQueue: 1 } });
  try {
    let first!: () => void;
    const started = new Promise<void>((r) => (first = r));
    const long = readStream(s.client, 'Keep going', 100, () => first());
    await started;
    await assert.rejects(s.client.completions.create({ model: 'base', prompt: 'x', max_tokens: 4 }), (e: unknown) => e instanceof RateLimitError && e.status === 429);
    await long;
    const ok = await s.client.completions.create({ model: 'base', prompt: 'x', max_tokens: 4 });
    assert.equal(ok.usage?.completion_tokens, Buffer.byteLength(ok.choices[0].text));
  } finally {
    await s.server.close(100);
  }
});

test('serve: a client that disconnects mid-stream cancels its generation; the server keeps serving', async () => {
  const s = await start({ limits: { maxTokensLimit: 4000 } });
  try {
    for (const chat of [false, true]) {
      const turns0 = s.server.scheduler.turns;
      const stream = chat
        ? await s.client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4000, stream: true })
        : await s.client.completions.create({ model: 'base', prompt: 'Abort me', max_tokens: 4000, stream: true });
      let n = 0;
      for await (const c of stream) {
        assert.ok(c.id);
        if (++n === 3) break; // leaving the loop aborts the HTTP request
      }
      // the job leaves the queue long before its 4000 bytes (500 turns of 8 bytes)
      for (let i = 0; i < 500 && s.server.scheduler.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.server.scheduler.size, 0);
      assert.ok(s.server.scheduler.turns - turns0 < 200, `${s.server.scheduler.turns - turns0} turns`);
      const h = (await (await fetch(`${s.url}/health`)).json()) as Record<string, unknown>;
      assert.equal(h.status, 'ok');
      assert.equal(h.queue, 0);
    }
    // a raw socket that closes right after sending a request, and one that sends half a body
    await new Promise<void>((resolve) => {
      const req = request(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 1000 } });
      req.on('error', () => resolve());
      req.write('{"prompt": "half');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    const ok = await s.client.completions.create({ model: 'base', prompt: 'Still alive', max_tokens: 8 });
    assert.equal(ok.usage?.completion_tokens, Buffer.byteLength(ok.choices[0].text));
  } finally {
    await s.server.close(100);
  }
});

test('serve: --quantized: models, completions from the quantized model, /tfree/compare', async () => {
  const q = await client.completions.create({ model: 'quantized', prompt: 'Once upon a time', max_tokens: 32, temperature: 0 });
  assert.equal(q.model, 'quantized');
  const r = await post('/tfree/compare', { prompt: 'Once upon a time', max_tokens: 32 });
  assert.equal(r.status, 200);
  const want = compare(base.model, quant.model, base.splitter, 'Once upon a time', 32);
  assert.deepEqual(r.json, JSON.parse(JSON.stringify(want)));
  assert.equal(r.json.quantized_text, want.quantized_text);
  if (q.choices[0].finish_reason === 'length') assert.equal(q.choices[0].text, want.quantized_text);
  const div = r.json.divergent_bytes as number[];
  assert.equal(r.json.fdt_bytes, div.length > 0 ? div[0] : null);
  assert.equal(r.json.sdt_bytes, div.length);
  assert.equal(Buffer.byteLength(String(r.json.base_text)), 32);
  assert.equal((await post('/tfree/compare', { prompt: 'x', max_tokens: 401 })).status, 400);
  assert.equal((await post('/tfree/compare', { max_tokens: 4 })).status, 400);
  const s = await start({ models: { splitter: base.splitter, base: base.model } });
  try {
    assert.equal((await post('/tfree/compare', { prompt: 'x' }, s.url)).status, 404);
    assert.deepEqual(((await s.client.models.list()).data ?? []).map((m) => m.id), ['base']);
    assert.equal((await post('/tfree/kg/query', { head: 'ann', relation: 'meets', date: 0 }, s.url)).status, 404);
    assert.equal((await fetch(`${s.url}/tfree/report`)).status, 404);
    // /health says what is there, so the playground does not probe (a 404 is a console error in the browser)
    const h = (await (await fetch(`${s.url}/health`)).json()) as Record<string, unknown>;
    assert.equal(h.kg, false);
    assert.equal(h.report, false);
  } finally {
    await s.server.close(100);
  }
});

test('serve: /tfree/split, /tfree/score, /tfree/kg/*, /health', async () => {
  const sp = await post('/tfree/split', { text: 'Grüße, world' });
  assert.equal(sp.status, 200);
  const words = sp.json.words as { text: string; start: number; end: number }[];
  assert.equal(words.map((w) => w.text).join(''), 'Grüße, world');
  assert.equal(words[words.length - 1].end, Buffer.byteLength('Grüße, world'));
  const sc = await post('/tfree/score', { text: 'Hello there', model: 'quantized' });
  assert.deepEqual(sc.json, JSON.parse(JSON.stringify(score(quant.model, base.splitter, 'Hello there'))));
  assert.equal((await post('/tfree/score', { text: 7 })).status, 400);
  assert.equal((await post('/tfree/score', { text: 'x', model: 'other' })).status, 404);
  assert.equal((await post('/tfree/score', { text: 'x'.repeat(201) })).status, 400);
  const meta = (await (await fetch(`${url}/tfree/kg/meta`)).json()) as Record<string, unknown>;
  assert.deepEqual(meta.dates, ['2020-05-01', '2020-05-02', '2020-05-03']);
  const kq = await post('/tfree/kg/query', { head: 'bob', relation: 'calls', date: '2020-05-03', k: 3 });
  assert.equal(kq.status, 200);
  const kg = server.opts.models.kg;
  assert.ok(kg);
  assert.deepEqual(kq.json, JSON.parse(JSON.stringify(kgQuery(kg, { head: 'bob', relation: 'calls', date: '2020-05-03', k: 3 }))));
  const bad = await post('/tfree/kg/query', { head: 'zed', relation: 'calls', date: 0 });
  assert.equal(bad.status, 400);
  assert.equal((bad.json.error as Record<string, unknown>).param, 'head');
  assert.equal((await post('/tfree/kg/query', { head: 'bob', relation: 'calls' })).status, 400);
  const h = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
  assert.deepEqual(h.models, ['base', 'quantized']);
  assert.ok(h.backend === 'native' || h.backend === 'js');
  assert.equal(h.kg, true);
});

/** A raw request with any Host and Content-Type (fetch cannot set Host). */
function rawRequest(u: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: Record<string, unknown> | null }> {
  return new Promise((resolve, reject) => {
    const req = request(`${u}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: Record<string, unknown> | null = null;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('serve: the Host header must name this server (DNS rebinding), POST bodies must be application/json; --allow-host adds names', async () => {
  const port = new URL(url).port;
  const body = JSON.stringify({ text: 'Hello there' });
  const json = { 'content-type': 'application/json' };
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `LOCALHOST:${port}`]) {
    const r = await rawRequest(url, 'POST', '/tfree/split', { ...json, host }, body);
    assert.equal(r.status, 200, host);
  }
  assert.equal((await rawRequest(url, 'GET', '/health', { host: `[::1]:${port}` })).status, 200);
  for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${Number(port) + 1}`, `localhost.evil.example:${port}`, `127.0.0.1:${port}@evil`, 'a b']) {
    for (const [method, path] of [['GET', '/health'], ['GET', '/'], ['POST', '/tfree/split'], ['POST', '/v1/completions']] as const) {
      const r = await rawRequest(url, method, path, { ...json, host }, method === 'POST' ? body : undefined);
      assert.equal(r.status, 403, `${host} ${method} ${path}`);
      assert.equal((r.json?.error as Record<string, unknown>).code, 'host_not_allowed');
    }
  }
  // POST without application/json: text/plain (no CORS preflight), a form, none
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}` };
    if (type !== undefined) headers['content-type'] = type;
    for (const path of ['/tfree/split', '/v1/completions', '/v1/chat/completions', '/tfree/score']) {
      const r = await rawRequest(url, 'POST', path, headers, path === '/v1/completions' ? JSON.stringify({ model: 'base', prompt: 'Hi', max_tokens: 4 }) : body);
      assert.equal(r.status, 415, `${String(type)} ${path}`);
      assert.equal((r.json?.error as Record<string, unknown>).code, 'unsupported_media_type');
    }
  }
  assert.equal((await rawRequest(url, 'POST', '/tfree/split', { host: `127.0.0.1:${port}`, 'content-type': 'Application/JSON; charset=utf-8' }, body)).status, 200);
  // --allow-host: a named host (any port given must be the bound one); * accepts any
  const named = await start({ allowHosts: ['box.lan'] });
  try {
    const p2 = new URL(named.url).port;
    assert.equal((await rawRequest(named.url, 'GET', '/health', { host: `box.lan:${p2}` })).status, 200);
    assert.equal((await rawRequest(named.url, 'GET', '/health', { host: `other.lan:${p2}` })).status, 403);
  } finally {
    await named.server.close(100);
  }
  const any = await start({ allowHosts: ['*'] });
  try {
    assert.equal((await rawRequest(any.url, 'GET', '/health', { host: 'whatever.example' })).status, 200);
  } finally {
    await any.server.close(100);
  }
});

test('serve: static files and report files with content types; no path leaves the folder', async () => {
  const index = await rawGet('/');
  assert.equal(index.status, 200);
  assert.match(index.type, /^text\/html/);
  assert.match(index.body, /<title>tfree/);
  const js = await rawGet('/assets/app.js');
  assert.match(js.type, /^text\/javascript/);
  assert.equal((await rawGet('/missing.css')).status, 404);
  // dot segments are resolved by the URL parser (to /secret.txt inside the folder: none there);
  // encoded slashes, links out of the folder, NUL and bad escapes are refused
  for (const [p, status] of [['/../secret.txt', 404], ['/%2e%2e/secret.txt', 404], ['/assets/..%2f..%2fsecret.txt', 400], ['/link.txt', 400], ['/a%00b', 400], ['/%zz', 400]] as const) {
    const r = await rawGet(p);
    assert.equal(r.status, status, p);
    assert.ok(!r.body.includes('outside'), p);
  }
  const list = (await (await fetch(`${url}/tfree/report`)).json()) as Record<string, unknown>;
  assert.deepEqual(list.files, ['fdt.svg', 'report.md']);
  const svg = await rawGet('/tfree/report/fdt.svg');
  assert.equal(svg.type, 'image/svg+xml');
  assert.equal(svg.body, '<svg/>');
  assert.notEqual((await rawGet('/tfree/report/%2e%2e/secret.txt')).status, 200);
});

test('serve CLI: one URL line, requests answered, graceful exit on SIGTERM; bad flags exit 2', async () => {
  const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--max-queue', '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}`)));
  });
  const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
  assert.ok(m, line);
  const c = new OpenAI({ baseURL: `${m[1]}/v1`, apiKey: 'unused', maxRetries: 0 });
  const r = await c.completions.create({ model: 'base', prompt: 'Hi', max_tokens: 8 });
  assert.equal(r.usage?.completion_tokens, Buffer.byteLength(r.choices[0].text));
  const code = await new Promise<number | null>((resolve) => {
    child.on('exit', (cd) => resolve(cd));
    child.kill('SIGTERM');
  });
  assert.equal(code, 0);
  const run = async (args: string[]): Promise<{ code: number; err: string }> => {
    let err = '';
    const e = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
    try {
      return { code: await main(args), err };
    } finally {
      process.stderr.write = e;
    }
  };
  // in process: --kg with a checkpoint file, the URL line, a SIGINT ends it with 0
  const kg = kgModel();
  const kgFile = join(tmp, 'kg.safetensors');
  writeSafetensors(kgFile, kg.model.store.entries().map(([n, p]) => [n, { dtype: 'F32', shape: p.shape.slice(), data: p.f32() }] as const), modelMetadata(kg.model.cfg, kg.vocab));
  let printed = '';
  const o = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((t: string) => ((printed += t), true)) as typeof process.stdout.write;
  let running: Promise<number>;
  try {
    running = main(['serve', '--port', '0', '--kg', kgFile, '--report', join(tmp, 'report')]);
    for (let i = 0; i < 200 && !printed.includes('\n'); i++) await new Promise((r) => setTimeout(r, 10));
  } finally {
    process.stdout.write = o;
  }
  const u = /listening on (\S+)/.exec(printed)?.[1];
  assert.ok(u, printed);
  const meta = (await (await fetch(`${u}/tfree/kg/meta`)).json()) as Record<string, unknown>;
  assert.deepEqual(meta.entities, kg.vocab.entities);
  assert.equal((await fetch(`${u}/tfree/report/report.md`)).status, 200);
  const e = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    process.emit('SIGINT');
    assert.equal(await running, 0);
  } finally {
    process.stderr.write = e;
  }
  for (const args of [['--max-queue', '0'], ['--quantized', join(tmp, 'nope')], ['--web', join(tmp, 'nope')], ['--port', '70000'], ['--kg', join(tmp, 'web')]]) {
    const res = await run(['serve', ...args]);
    assert.equal(res.code, 2, args.join(' '));
    assert.equal(res.err.trim().split('\n').length, 1, res.err);
    assert.match(res.err, /^tfree serve: /);
  }
  // a port in use names the flag and the way out (it was 'cannot listen on 127.0.0.1:P: listen EADDRINUSE: address already in use 127.0.0.1:P')
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as { port: number }).port;
  try {
    const res = await run(['serve', '--port', String(port)]);
    assert.equal(res.code, 2);
    assert.equal(res.err, `tfree serve: --port ${port}: already in use on 127.0.0.1 (another server?); choose another --port, or --port 0 for any free one\n`);
  } finally {
    await new Promise((r) => busy.close(r));
  }
});

test('serve CLI: --allow-host reaches the server (a named Host is served, another gets 403)', async () => {
  const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--allow-host', 'box.lan, other.lan'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const u = /listening on (http:\/\/\S+)/.exec(line)?.[1];
    assert.ok(u, line);
    const port = new URL(u).port;
    assert.equal((await rawRequest(u, 'GET', '/health', { host: `box.lan:${port}` })).status, 200);
    assert.equal((await rawRequest(u, 'GET', '/health', { host: `other.lan:${port}` })).status, 200);
    assert.equal((await rawRequest(u, 'GET', '/health', { host: `evil.example:${port}` })).status, 403);
  } finally {
    const exited = new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on('exit', resolve)));
    child.kill('SIGTERM');
    await exited;
  }
});
