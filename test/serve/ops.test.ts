/**
 * src/serve/ops.ts against independent computations: per-byte probabilities against a padded
 * batch forward and against evaluateText's bits per byte; stepwise generation against generate();
 * stop strings against indexOf; compare's divergent positions against a brute-force loop of
 * prefix forwards; kgQuery against one model.score call per candidate.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noGrad } from '../../src/tensor/index.js';
import { HatSplitter, batchFromWords, evaluateText, generate, type HATModel } from '../../src/models/hat/index.js';
import { appendWords } from '../../src/eval/hat_dtm.js';
import { BoxTE, defaultConfig } from '../../src/models/boxte/model.js';
import { Generation, OpsError, compare, compareSteps, generateText, kgMeta, kgQuery, score, split } from '../../src/serve/ops.js';
import { randomModel, testConfig } from '../hat/util.js';
import { Rng } from '../helpers/numeric.js';

const splitter = new HatSplitter();
const enc = new TextEncoder();

/** A random model whose greedy text is ASCII (lm_head rows of bytes >= 128 are zero). */
function asciiModel(seed: number): HATModel {
  const m = randomModel(testConfig({ window: 16 }), seed, 0.5);
  const w = m.lmHead.weight;
  (w.data as Float32Array).fill(0, w.offset + 128 * w.shape[1], w.offset + 256 * w.shape[1]);
  return m;
}

/** A copy of `m` with noise of relative size `eps` on every lm_head weight (a stand-in for quantization). */
function perturbed(m: HATModel, seed: number, eps: number): HATModel {
  const q = randomModel(m.config, seed, 0.5);
  const rng = new Rng(seed);
  for (const [name, t] of m.store.entries()) {
    const dst = q.store.get(name).data as Float32Array;
    const src = t.data as Float32Array;
    const noisy = name.endsWith('lm_head.weight');
    for (let i = 0; i < src.length; i++) dst[i] = src[i] + (noisy && src[i] !== 0 ? eps * rng.uniform() : 0);
  }
  return q;
}

test('ops.split: spans cover the text bytes in order and concatenate to the text', () => {
  const text = 'Grüße aus Köln, 日本 🙂 ok.\nnext';
  const words = split(splitter, text);
  assert.ok(words.length > 5);
  assert.equal(words.map((w) => w.text).join(''), text);
  let at = 0;
  for (const w of words) {
    assert.equal(w.start, at);
    assert.equal(w.end - w.start, enc.encode(w.text).length);
    at = w.end;
  }
  assert.equal(at, enc.encode(text).length);
  assert.deepEqual(split(splitter, ''), []);
});

test('ops.score: byte probabilities equal a padded batch forward; bpb equals evaluateText', () => {
  const m = randomModel(testConfig({ window: 8 }), 3, 0.5);
  const text = 'The cat sat on the mat, naïvely.';
  const r = score(m, splitter, text);
  const bytes = Array.from(enc.encode(text));
  assert.deepEqual(r.bytes, bytes);
  assert.equal(r.byte_probs.length, bytes.length);
  assert.equal(r.byte_probs[0], null);
  assert.equal(r.words.map((w) => w.text).join(''), text);
  // independent: the text as row 1 of a batch padded to more bytes, next to another text; log-softmax in float64
  const words = splitter.encode(text);
  const other = splitter.encode('something else entirely, longer than the first row by a bit');
  const batch = batchFromWords([{ words: other }, { words }], bytes.length + 40);
  const lg = noGrad(() => m.forward(batch)).f32();
  let bits = 0;
  for (let t = 1; t < bytes.length; t++) {
    const row = Array.from(lg.subarray((batch.T + t - 1) * 256, (batch.T + t) * 256));
    const mx = Math.max(...row);
    const z = row.reduce((s, x) => s + Math.exp(x - mx), 0);
    const p = Math.exp(row[bytes[t]] - mx) / z;
    const got = r.byte_probs[t];
    assert.ok(got !== null && Math.abs(got - p) <= 1e-4 * p + 1e-7, `byte ${t}: ${got} vs ${p}`);
    bits -= Math.log2(p);
  }
  assert.ok(r.bpb !== null && Math.abs(r.bpb - bits / (bytes.length - 1)) < 1e-4);
  const ev = evaluateText(m, splitter, [text], { contextBytes: 4096 });
  assert.ok(Math.abs((r.bpb ?? 0) - ev.bitsPerByte) < 1e-4, `${r.bpb} vs ${ev.bitsPerByte}`);
  assert.equal(score(m, splitter, 'x').bpb, null);
});

test('ops.Generation: chunks of any size give generate()s text; seeds repeat; stop strings cut at the first match', () => {
  const m = asciiModel(5);
  const params = { maxBytes: 48, temperature: 0.9, topP: 0.95, seed: 11, eos: -1 };
  const want = generate(m, splitter, 'Once upon', params);
  for (const chunk of [1, 3, 16]) {
    const g = new Generation(m, splitter, 'Once upon', params);
    let text = '';
    let steps = 0;
    while (!g.done) {
      text += g.step(chunk);
      steps++;
    }
    text += g.step(0);
    assert.equal(text, want.text, `chunk ${chunk}`);
    assert.equal(g.result?.bytes.length, want.bytes.length);
    assert.ok(steps >= Math.floor(want.bytes.length / chunk), `chunk ${chunk}: ${steps} steps`);
  }
  const a = generateText(m, splitter, 'Once upon', { ...params, seed: 99 });
  const b = generateText(m, splitter, 'Once upon', { ...params, seed: 99 });
  assert.deepEqual(a, b);
  const c = generateText(m, splitter, 'Once upon', { ...params, seed: 100 });
  assert.notEqual(c.text, a.text);
  // greedy (temperature 0) is seed-independent
  const g1 = generateText(m, splitter, 'Once upon', { maxBytes: 40, temperature: 0, seed: 1, eos: -1 });
  const g2 = generateText(m, splitter, 'Once upon', { maxBytes: 40, temperature: 0, seed: 2, eos: -1 });
  assert.equal(g1.text, g2.text);
  assert.equal(g1.bytes, 40);
  assert.equal(g1.stop_reason, 'max_bytes');
  // stop: a piece of the greedy text; the output is the text before its first occurrence
  const stop = g1.text.slice(20, 23);
  const s = generateText(m, splitter, 'Once upon', { maxBytes: 40, temperature: 0, eos: -1, stop: [stop, 'never-there'] });
  assert.equal(s.stop_reason, 'stop');
  assert.equal(s.text, g1.text.slice(0, g1.text.indexOf(stop)));
  // streamed pieces with a stop string never show the stop string
  const pieces: string[] = [];
  generateText(m, splitter, 'Once upon', { maxBytes: 40, temperature: 0, eos: -1, stop: [stop] }, (t) => pieces.push(t));
  assert.equal(pieces.join(''), s.text);
  assert.throws(() => new Generation(m, splitter, '', { maxBytes: 4 }), OpsError);
  assert.throws(() => new Generation(m, splitter, 'a', { maxBytes: 4, topP: 0 }), (e: unknown) => e instanceof OpsError && e.param === 'top_p');
  assert.throws(() => new Generation(m, splitter, 'a', { maxBytes: -1 }), (e: unknown) => e instanceof OpsError && e.param === 'max_tokens');
});

test('ops.compare: divergent bytes and words equal a brute-force loop of prefix forwards', () => {
  const base = asciiModel(7);
  const N = 24;
  const prompt = 'The cat sat';
  let sawSome = false;
  for (const [seed, eps] of [[1, 0.02], [2, 0.2], [3, 0.6]] as const) {
    const q = perturbed(base, seed, eps);
    const r = compare(base, q, splitter, prompt, N);
    const cont = enc.encode(r.base_text);
    assert.equal(cont.length, N);
    assert.equal(r.base_text, generate(base, splitter, prompt, { greedy: true, maxBytes: N, eos: -1 }).text);
    assert.equal(r.quantized_text, generate(q, splitter, prompt, { greedy: true, maxBytes: N, eos: -1 }).text);
    // brute force: for every continuation byte i, both models' argmax after prompt + cont[:i]
    const pw = splitter.encode(prompt);
    const brute: number[] = [];
    for (let i = 0; i < N; i++) {
      const words = appendWords(splitter, pw, cont.subarray(0, i));
      const batch = batchFromWords([{ words }]);
      const last = (mm: HATModel): number => {
        const row = noGrad(() => mm.forward(batch)).f32().subarray((batch.T - 1) * 256, batch.T * 256);
        let best = 0;
        for (let k = 1; k < 256; k++) if (row[k] > row[best]) best = k;
        return best;
      };
      if (last(q) !== last(base)) brute.push(i);
    }
    assert.deepEqual(r.divergent_bytes, brute, `eps ${eps}`);
    assert.equal(r.sdt_bytes, brute.length);
    assert.equal(r.fdt_bytes, brute.length > 0 ? brute[0] : null);
    // words: spans tile the continuation; a word diverges iff it holds a divergent byte
    assert.equal(r.base_words.map((w) => w.text).join(''), r.base_text);
    assert.equal(r.base_words[r.base_words.length - 1].end, N);
    const bruteWords = r.base_words.flatMap((w, j) => (brute.some((i) => i >= w.start && i < w.end) ? [j] : []));
    assert.deepEqual(r.divergent_words, bruteWords);
    assert.equal(r.sdt_words, bruteWords.length);
    assert.equal(r.fdt_words, bruteWords.length > 0 ? bruteWords[0] : null);
    if (brute.length > 0 && brute.length < N) sawSome = true;
  }
  assert.ok(sawSome, 'some perturbation gives a partial divergence');
  // the base against itself: no divergence
  const same = compare(base, base, splitter, prompt, 10);
  assert.deepEqual(same.divergent_bytes, []);
  assert.equal(same.fdt_bytes, null);
  assert.equal(same.fdt_words, null);
  assert.equal(same.quantized_text, same.base_text);
  // one step per generated byte of each model, then the result
  const it = compareSteps(base, base, splitter, prompt, 5);
  let steps = 0;
  while (it.next().done !== true) steps++;
  assert.ok(steps >= 8 && steps <= 10, `${steps} steps`);
  assert.throws(() => compare(base, base, splitter, prompt, 0), OpsError);
});

test('ops.kgQuery: ranked tails equal per-candidate scores; dates map to time indices', () => {
  const E = 9;
  const cfg = defaultConfig({ numEntities: E, numRelations: 3, numTimes: 5, dim: 6, k: 2 });
  const model = new BoxTE(cfg);
  const vocab = {
    entities: Array.from({ length: E }, (_, i) => `e${i}`),
    relations: ['likes', 'visits', 'meets'],
    numTimes: 5,
    timeKind: 'date' as const,
    origin: '2014-01-01',
  };
  const meta = kgMeta(vocab);
  assert.deepEqual(meta.dates, ['2014-01-01', '2014-01-02', '2014-01-03', '2014-01-04', '2014-01-05']);
  assert.deepEqual(meta.relations, vocab.relations);
  const r = kgQuery({ model, vocab }, { head: 'e2', relation: 'visits', date: '2014-01-04', k: 4 });
  const each = vocab.entities.map((_, t) => noGrad(() => model.score(Int32Array.of(2), Int32Array.of(1), Int32Array.of(t), Int32Array.of(3))).f32()[0]);
  const order = each.map((s, i) => ({ s, i })).sort((a, b) => a.s - b.s || a.i - b.i);
  assert.equal(r.answers.length, 4);
  r.answers.forEach((a, j) => {
    assert.equal(a.rank, j + 1);
    assert.equal(a.entity, `e${order[j].i}`);
    assert.ok(Math.abs(a.score - order[j].s) < 1e-5);
  });
  // another day gives other scores (the time bumps matter)
  const other = kgQuery({ model, vocab }, { head: 'e2', relation: 'visits', date: '2014-01-02', k: E });
  assert.equal(other.answers.length, E);
  assert.notEqual(other.answers.map((a) => a.score).join(), kgQuery({ model, vocab }, { head: 'e2', relation: 'visits', date: '2014-01-04', k: E }).answers.map((a) => a.score).join());
  assert.throws(() => kgQuery({ model, vocab }, { head: 'nobody', relation: 'visits', date: 0 }), (e: unknown) => e instanceof OpsError && e.param === 'head');
  assert.throws(() => kgQuery({ model, vocab }, { head: 'e1', relation: 'visits', date: '2014-02-01' }), (e: unknown) => e instanceof OpsError && e.param === 'date');
  assert.equal(kgQuery({ model, vocab: { ...vocab, timeKind: 'index', origin: null } }, { head: 'e1', relation: 'likes', date: '4', k: 1 }).answers.length, 1);
});
