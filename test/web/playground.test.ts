/**
 * The web playground in a real browser (Debian's chromium driven by playwright-core; no browser
 * download): the served build against `tfree serve` (bundled model, a kmeans4 copy made here, a
 * DTM report folder) and the static build (model in a Web Worker) from a tiny static server.
 * Checks that text streams in and equals the library's greedy generation, that the word chips and
 * the heat strip match the splitter and the text, and that the divergence marks match the metrics
 * the page shows. Screenshots go to test-artifacts/web/.
 *
 * Skips when /usr/bin/chromium (or TFREE_CHROMIUM), playwright-core or the web build
 * (`npm run build:web`) is missing. The static build runs the same pure-TS code in the browser
 * whatever TFREE_BACKEND says, so its part runs only in the default-backend pass.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { withBackend, type BackendName } from '../../src/tensor/index.js';
import { HatSplitter, generate, loadHATModel, type HATModel } from '../../src/models/hat/index.js';
import { parseFormat, quantizeCheckpoint } from '../../src/compress/index.js';
import { loadModel as loadKgModel } from '../../src/models/boxte/train.js';
import { kgQuery } from '../../src/serve/ops.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chromiumPath = process.env.TFREE_CHROMIUM ?? '/usr/bin/chromium';
const servedDir = join(root, 'web', 'dist');
const staticDir = join(root, 'web', 'dist-static');
const modelDir = join(root, 'models', 'default');
const reportDir = join(root, 'docs', 'results', 'dtm', 'sweep');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const serveJs = join(root, 'dist', 'src', 'cli', 'commands', 'serve.js');
const artifacts = join(root, 'test-artifacts', 'web');
const PROMPT = 'The old house on the hill';
const GEN_BYTES = 60;
const COMPARE_BYTES = 160;

function missing(): string | null {
  if (!existsSync(chromiumPath)) return `${chromiumPath} missing (apt-get install chromium)`;
  if (!existsSync(join(servedDir, 'index.html')) || !existsSync(join(staticDir, 'index.html'))) return 'web build missing (npm run build:web)';
  return null;
}

let browser: Browser | undefined;
let skip = missing();

async function launch(): Promise<Browser | undefined> {
  if (skip !== null) return undefined;
  let pw: typeof import('playwright-core');
  try {
    pw = await import('playwright-core');
  } catch {
    skip = 'playwright-core not installed';
    return undefined;
  }
  return pw.chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

before(async () => {
  browser = await launch();
  if (browser !== undefined) mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
});

/** A page that records uncaught errors, console errors and failed requests. */
async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
  // every failed request but the KG probe, whose 404 says "no KG model" and hides the panel
  page.on('response', (r) => {
    if (r.status() >= 400 && !(r.status() === 404 && r.url().endsWith('/tfree/kg/meta'))) errors.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 45_000 });
  return { page, errors };
}

async function setInput(page: Page, id: string, value: string): Promise<void> {
  await page.fill(`#${id}`, value);
}

/** Generates greedily; returns the streamed continuation. */
async function generateOnPage(page: Page, bytes: number): Promise<string> {
  await setInput(page, 'max-bytes', String(bytes));
  await setInput(page, 'temperature', '0');
  // count the updates of the output while it streams
  await page.evaluate(
    "window.__pieces = 0; new MutationObserver(() => window.__pieces++).observe(document.querySelector('#gen-output .continuation'), { childList: true, characterData: true, subtree: true })",
  );
  // whether Stop was still enabled when the summary appeared (the finished text is scored next: nothing to stop)
  await page.evaluate(
    "window.__stopAtSummary = null; new MutationObserver(() => { if (window.__stopAtSummary === null && document.querySelector('#gen-info').textContent.includes('bytes in')) window.__stopAtSummary = !document.querySelector('#stop').disabled; }).observe(document.querySelector('#gen-info'), { childList: true, characterData: true, subtree: true })",
  );
  await page.click('#generate');
  await page.waitForFunction("document.querySelector('#gen-info').textContent.includes('bytes in')", null, { timeout: 30_000 });
  await page.waitForSelector('#heat .heat-byte', { timeout: 30_000 });
  assert.equal(await page.evaluate('window.__stopAtSummary'), false, 'Stop is disabled once the text is complete (it stayed enabled, with no effect, while the text was scored)');
  const pieces = (await page.evaluate('window.__pieces')) as number;
  assert.ok(pieces > 1, `the text arrives in pieces while it is generated (${pieces} updates)`);
  return (await page.textContent('#gen-output .continuation')) ?? '';
}

/** Starts a long sampled generation and stops it once text has appeared. */
async function stopOnPage(page: Page): Promise<void> {
  await setInput(page, 'max-bytes', '2000');
  await setInput(page, 'temperature', '0.8');
  await page.click('#generate');
  await page.waitForFunction("document.querySelector('#gen-output .continuation').textContent.length > 0", null, { timeout: 30_000 });
  await page.click('#stop');
  await page.waitForFunction("document.querySelector('#gen-info').textContent.includes('bytes in')", null, { timeout: 30_000 });
  const info = (await page.textContent('#gen-info')) ?? '';
  assert.match(info, /finish: aborted/, 'Stop ends the generation');
  assert.ok(Number(/^(\d+) bytes/.exec(info)?.[1]) < 2000, info);
  await page.waitForSelector('#generate:not([disabled])', { timeout: 30_000 }); // usable again once the text is scored
}

/** The chips and the heat strip after generation cover prompt + continuation. */
async function checkAnalysis(page: Page, text: string): Promise<void> {
  const splitter = new HatSplitter();
  const chips = await page.locator('#chips .chip').count();
  assert.equal(chips, splitter.encode(text).length, 'one chip per word of prompt + continuation');
  const generated = await page.locator('#chips .chip.generated').count();
  assert.ok(generated > 0 && generated < chips, `generated chips styled apart (${generated} of ${chips})`);
  const cells = await page.locator('#heat .heat-byte').count();
  assert.equal(cells, Array.from(text).length, 'one heat cell per character');
  assert.equal(await page.locator('#heat .heat-byte.no-context').count(), 1, 'only the first byte has no context');
  const ps = await page.locator('#heat .heat-byte:not(.no-context)').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-p'))));
  assert.ok(ps.every((p) => p > 0 && p <= 1), 'probabilities in (0, 1]');
  assert.ok(new Set(ps.map((p) => p.toFixed(3))).size > 3, 'probabilities vary along the text');
  assert.match((await page.textContent('#heat-info')) ?? '', /bits per byte/);
}

/** Runs compare; checks the marks against the metrics table; returns SDT in bytes. */
async function compareOnPage(page: Page, bytes: number): Promise<number> {
  await setInput(page, 'compare-bytes', String(bytes));
  await page.click('#compare');
  await page.waitForSelector('#compare-result:not([hidden])', { timeout: 30_000 });
  const cell = async (id: string): Promise<string> => ((await page.textContent(`#${id}`)) ?? '').trim();
  const sdtBytes = Number(await cell('sdt-bytes'));
  const sdtWords = Number(await cell('sdt-words'));
  const fdtBytes = await cell('fdt-bytes');
  assert.equal(Number(await cell('n-bytes')), bytes, 'the base continuation has the requested length');
  const base = (await page.locator('#compare-base .byte').allTextContents()).join('');
  const ascii = [...base].every((c) => c.charCodeAt(0) < 128);
  assert.equal(await page.locator('#compare-base .fdt-marker').count(), fdtBytes === 'none' ? 0 : 1, 'one FDT marker when there is a divergence');
  assert.equal(await page.locator('#compare-base .byte.fdt').count(), fdtBytes === 'none' ? 0 : 1);
  if (ascii) assert.equal(await page.locator('#compare-base .byte.divergent').count(), sdtBytes, 'one highlight per divergent byte (SDT)');
  assert.equal(await page.locator('#compare-base .word.divergent').count(), sdtWords, 'divergent words underlined');
  if (fdtBytes !== 'none') {
    // the marked byte is the FDT-th byte of the continuation
    const before = await page.locator('#compare-base .byte').evaluateAll((els) => {
      const fdt = els.findIndex((e) => e.classList.contains('fdt'));
      return els.slice(0, fdt).reduce((s, e) => s + new TextEncoder().encode(e.textContent ?? '').length, 0);
    });
    assert.equal(before, Number(fdtBytes), 'the FDT marker sits on the first divergent byte');
  }
  return sdtBytes;
}

function greedy(model: HATModel, bytes: number, backend?: BackendName): string {
  const run = (): string => generate(model, new HatSplitter(), PROMPT, { greedy: true, maxBytes: bytes }).text;
  return backend === undefined ? run() : withBackend(backend, run);
}

// ---- served ---------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitHealthy(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < 30_000) {
    if (child.exitCode !== null) throw new Error(`tfree serve exited with ${child.exitCode}: ${log()}`);
    try {
      if ((await fetch(`${url}health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tfree serve did not answer /health in 30 s: ${log()}`);
}

describe('served playground (tfree serve --web)', () => {
  let tmp = '';
  let child: ChildProcess | undefined;
  let url = '';
  const skipServed = (): string | null => skip ?? (existsSync(serveJs) ? null : 'tfree serve not built');
  const kgFile = (): string => join(tmp, 'kg.safetensors');

  before(async () => {
    if (skipServed() !== null) return;
    tmp = mkdtempSync(join(tmpdir(), 'tfree-web-'));
    quantizeCheckpoint(modelDir, join(tmp, 'q'), parseFormat('kmeans4', { blockSize: 32 }), { maxSamples: 4096 });
    // a tiny BoxTE model on a synthetic temporal KG, for the query form
    for (const a of [
      ['kg', 'synth', '--out', join(tmp, 'kg'), '--seed', '1'],
      ['kg', 'train', '--data', join(tmp, 'kg'), '--out', kgFile(), '--dim', '16', '--epochs', '20', '--negatives', '10', '--valid-every', '0'],
    ]) {
      const r = spawnSync(process.execPath, [cli, ...a], { encoding: 'utf8' });
      assert.equal(r.status, 0, `tfree ${a.join(' ')}: ${r.stderr}`);
    }
    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    const args = [cli, 'serve', '--model', modelDir, '--quantized', join(tmp, 'q'), '--kg', kgFile(), '--report', reportDir, '--web', servedDir, '--host', '127.0.0.1', '--port', String(port)];
    let out = '';
    child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitHealthy(url, child, () => out);
  });

  after(() => {
    child?.kill();
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  test('generate, chips, heat strip, compare marks, report plots', async (t) => {
    const why = skipServed();
    if (why !== null) return t.skip(why);
    const { page, errors } = await openPage(url);
    assert.match((await page.textContent('#status')) ?? '', /served by tfree serve/);
    assert.equal(await page.locator('#chips .chip').count(), new HatSplitter().encode(PROMPT).length, 'prompt chips');
    const text = await generateOnPage(page, GEN_BYTES);
    assert.ok(text.length > 0, 'text appears');
    assert.equal(text, greedy(loadHATModel(modelDir), GEN_BYTES), 'the streamed text is the greedy continuation');
    await checkAnalysis(page, PROMPT + text);
    await page.screenshot({ path: join(artifacts, 'served-generate.png'), fullPage: true });
    const sdt = await compareOnPage(page, COMPARE_BYTES);
    assert.ok(sdt > 0, 'kmeans4 diverges from the base model somewhere in 160 bytes');
    // report plots from --report, loaded as images
    assert.equal(await page.locator('#report-panel').isVisible(), true);
    const widths: number[] = [];
    for (const img of await page.locator('#report-figures img').all()) {
      widths.push(
        await img.evaluate(async (i) => {
          await i.decode().catch(() => undefined);
          return i.naturalWidth as number;
        }),
      );
    }
    assert.ok(widths.length > 0 && widths.every((w) => w > 0), `report plots render (${widths.join(', ')})`);
    await stopOnPage(page);
    await page.locator('#compare-panel').screenshot({ path: join(artifacts, 'served-compare.png') });
    await page.screenshot({ path: join(artifacts, 'served-top.png'), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1000 } });
    await page.screenshot({ path: join(artifacts, 'served.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('BoxTE query form: ranked answers of (head, relation, ?, date)', async (t) => {
    const why = skipServed();
    if (why !== null) return t.skip(why);
    const { page, errors } = await openPage(url);
    assert.equal(await page.locator('#kg-panel').isVisible(), true, 'KG panel shown with --kg');
    const kg = loadKgModel(kgFile());
    const q = { head: kg.vocab.entities[3], relation: kg.vocab.relations[1], date: '5', k: 5 };
    await setInput(page, 'kg-head', q.head);
    await setInput(page, 'kg-relation', q.relation);
    await setInput(page, 'kg-date', q.date);
    await setInput(page, 'kg-k', String(q.k));
    await page.click('#kg-query');
    await page.waitForSelector('#kg-answers li', { timeout: 10_000 });
    const shown = (await page.locator('#kg-answers li').allTextContents()).map((s) => s.split(' ')[0]);
    assert.deepEqual(shown, kgQuery({ model: kg.model, vocab: kg.vocab }, q).answers.map((a) => a.entity), 'the ranking of the library');
    await page.locator('#kg-panel').screenshot({ path: join(artifacts, 'served-kg.png') });
    // a bad entity gives the server's message, not a crash, and no stale answers
    await setInput(page, 'kg-head', 'no-such-entity');
    await page.click('#kg-query');
    await page.waitForSelector('#kg-error:not([hidden])', { timeout: 10_000 });
    assert.match((await page.textContent('#kg-error')) ?? '', /unknown entity/);
    assert.equal(await page.locator('#kg-answers li').count(), 0);
    assert.deepEqual(
      errors.filter((e) => !e.startsWith('400 ')),
      [],
    );
    await page.close();
  });

  test('a plain tfree serve (no --report, no --quantized): no failed requests on load', async (t) => {
    const why = skipServed();
    if (why !== null) return t.skip(why);
    const port = await freePort();
    const plainUrl = `http://127.0.0.1:${port}/`;
    let out = '';
    const plain = spawn(process.execPath, [cli, 'serve', '--model', modelDir, '--web', servedDir, '--host', '127.0.0.1', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    plain.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    plain.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitHealthy(plainUrl, plain, () => out);
      const { page, errors } = await openPage(plainUrl);
      const failed: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') failed.push(m.text());
      });
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]', { timeout: 45_000 });
      assert.equal(await page.locator('#report-panel').isVisible(), false, 'no report panel without --report');
      assert.equal(await page.locator('#compare-unavailable').isVisible(), true, 'compare says what it needs');
      assert.deepEqual([...errors, ...failed], [], 'the page asks only for what /health says is there (a 404 probe of /tfree/report was a console error)');
      await page.close();
    } finally {
      plain.kill();
    }
  });

  test('what users get wrong: form values, a lost server, a phone-width screen', async (t) => {
    const why = skipServed();
    if (why !== null) return t.skip(why);
    const { page, errors } = await openPage(url);
    const completions: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/v1/completions')) completions.push(r.url());
    });
    const status = async (): Promise<string> => (await page.textContent('#status')) ?? '';
    // out-of-range or empty fields are refused by name, before any request (they were clamped to 1 byte or sent as 0)
    for (const [id, value, said] of [
      ['max-bytes', '0', /^Max bytes: 0 is out of range \(1 to 2048\)/],
      ['max-bytes', '', /^Max bytes: give a number/],
      ['max-bytes', '2.5', /^Max bytes: give a whole number/],
      ['temperature', '', /^Temperature: give a number \(0 to 2\)/],
      ['temperature', '3', /^Temperature: 3 is out of range \(0 to 2\)/],
      ['top-p', '', /^Top p: give a number/],
    ] as const) {
      await setInput(page, 'max-bytes', '8');
      await setInput(page, 'temperature', '0');
      await setInput(page, 'top-p', '0.95');
      await setInput(page, id, value);
      await page.click('#generate');
      await page.waitForFunction("document.querySelector('#status').classList.contains('error')", null, { timeout: 10_000 });
      assert.match(await status(), said, `${id} = ${JSON.stringify(value)}`);
    }
    await setInput(page, 'compare-bytes', '-3');
    await page.click('#compare');
    assert.match(await status(), /^Bytes to compare: -3 is out of range/);
    assert.deepEqual(completions, [], 'no request for a refused form');
    // a good generation clears the error line
    await setInput(page, 'top-p', '0.95');
    await page.click('#generate');
    await page.waitForFunction("document.querySelector('#gen-info').textContent.includes('bytes in')", null, { timeout: 30_000 });
    await page.waitForSelector('#generate:not([disabled])', { timeout: 30_000 });
    assert.match(await status(), /^ready/);
    // a refused form after that generation: its summary line does not stay beside the error
    assert.match((await page.textContent('#gen-info')) ?? '', /bytes in/);
    await setInput(page, 'max-bytes', '0');
    await page.click('#generate');
    await page.waitForFunction("document.querySelector('#status').classList.contains('error')", null, { timeout: 10_000 });
    assert.equal(await page.textContent('#gen-info'), '', 'the summary of the earlier generation is cleared');
    await setInput(page, 'max-bytes', '8');
    // the KG form: an empty or out-of-range answer count is said in the form (it asked for 1 answer, or the browser blocked it silently)
    for (const [k, said] of [
      ['', /^Answers: give a number/],
      ['0', /^Answers: 0 is out of range \(1 to 100\)/],
    ] as const) {
      await setInput(page, 'kg-k', k);
      await page.click('#kg-query');
      await page.waitForSelector('#kg-error:not([hidden])', { timeout: 10_000 });
      assert.match((await page.textContent('#kg-error')) ?? '', said);
      await page.evaluate("document.querySelector('#kg-error').hidden = true");
    }
    await setInput(page, 'kg-k', '10');
    await setInput(page, 'kg-head', ' ');
    await page.click('#kg-query');
    await page.waitForSelector('#kg-error:not([hidden])', { timeout: 10_000 });
    assert.match((await page.textContent('#kg-error')) ?? '', /^Head: give one/, 'an empty head is said in the form (the server answered: unknown entity "")');
    // a special-token string in the prompt is one byte to the model: the generated words are still the ones after the prompt (they were counted from the prompt's UTF-8 length)
    const special = 'Hi<|eot_id|>The';
    await page.fill('#prompt', special);
    await setInput(page, 'max-bytes', '24');
    await page.click('#generate');
    await page.waitForFunction("document.querySelector('#gen-info').textContent.startsWith('24 bytes in')", null, { timeout: 30_000 });
    await page.waitForSelector('#generate:not([disabled])', { timeout: 30_000 });
    const chips = await page.locator('#chips .chip').evaluateAll((els) => els.map((e) => e.classList.contains('generated')));
    assert.equal(chips.filter((g) => !g).length, new HatSplitter().encode(special).length, `only the prompt's words are styled as prompt (${JSON.stringify(chips)})`);
    assert.ok(chips.slice(new HatSplitter().encode(special).length).every((g) => g), 'every word after them as generated');
    await page.fill('#prompt', PROMPT);
    // the server going away mid-request: said as such
    await page.route('**/v1/completions', (r) => r.abort('connectionreset'));
    await page.click('#generate');
    await page.waitForFunction("document.querySelector('#status').classList.contains('error')", null, { timeout: 10_000 });
    assert.match(await status(), /^generate: lost the connection to tfree serve .*is it still running\?/);
    await page.unroute('**/v1/completions');
    await page.waitForSelector('#generate:not([disabled])', { timeout: 10_000 });
    // a stream closed without its [DONE] is said to be cut, not shown as a finished text
    await page.route('**/v1/completions', (r) =>
      r.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: `data: ${JSON.stringify({ choices: [{ text: ' cut', finish_reason: null }] })}\n\n` }),
    );
    await page.click('#generate');
    await page.waitForFunction("document.querySelector('#status').classList.contains('error')", null, { timeout: 10_000 });
    assert.match(await status(), /^generate: the server closed the stream before it ended/);
    await page.unroute('**/v1/completions');
    await page.waitForSelector('#generate:not([disabled])', { timeout: 10_000 });
    // phone width: nothing wider than the screen (the compare panel was 32 px too wide)
    await setInput(page, 'compare-bytes', '80');
    await page.click('#compare');
    await page.waitForSelector('#compare-result:not([hidden])', { timeout: 30_000 });
    await page.setViewportSize({ width: 360, height: 740 });
    const [scroll, client] = (await page.evaluate('[document.documentElement.scrollWidth, document.documentElement.clientWidth]')) as [number, number];
    assert.ok(scroll <= client, `no sideways scrolling at 360 px (${scroll} > ${client})`);
    await page.screenshot({ path: join(artifacts, 'served-narrow.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });
});

// ---- static ---------------------------------------------------------------------------------

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.md': 'text/markdown' };

/** Serves a folder read-only on loopback (workers need http, not file://). */
async function staticServer(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file = normalize(join(dir, path));
    if (file !== resolve(dir) && !file.startsWith(resolve(dir) + sep)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

describe('static playground (model in a Web Worker)', () => {
  let server: Server | undefined;
  let url = '';
  const skipStatic = (): string | null => skip ?? (process.env.TFREE_BACKEND === 'js' ? 'the browser runs the same code in both passes: default pass only' : null);

  before(async () => {
    if (skipStatic() !== null) return;
    ({ server, url } = await staticServer(staticDir));
  });

  after(() => {
    server?.close();
  });

  test('loads the bundled model in the worker, generates, scores and compares', async (t) => {
    const why = skipStatic();
    if (why !== null) return t.skip(why);
    const { page, errors } = await openPage(url);
    assert.match((await page.textContent('#status')) ?? '', /Web Worker.*js kernels.*kmeans4/);
    const text = await generateOnPage(page, GEN_BYTES);
    assert.equal(text, greedy(loadHATModel(modelDir), GEN_BYTES, 'js'), 'the worker streams the greedy continuation');
    await checkAnalysis(page, PROMPT + text);
    const sdt = await compareOnPage(page, COMPARE_BYTES);
    assert.ok(sdt > 0, 'the kmeans4 copy made in the worker diverges somewhere in 160 bytes');
    assert.ok((await page.locator('#report-figures img').count()) > 0, 'report plots copied into the build');
    await stopOnPage(page);
    await page.screenshot({ path: join(artifacts, 'static.png'), fullPage: true });
    await page.screenshot({ path: join(artifacts, 'static-top.png'), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1000 } });
    // the served limits hold here too: a prompt over tfree serve's --max-prompt-bytes default is refused (the worker fed it through the model, unstoppable)
    await page.fill('#prompt', 'a'.repeat(9000));
    await page.click('#generate');
    await page.waitForFunction("document.querySelector('#status').textContent.startsWith('generate:')", null, { timeout: 10_000 });
    assert.match((await page.textContent('#status')) ?? '', /^generate: the prompt is 9000 bytes, over the limit of 8192/);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
