import assert from 'node:assert/strict';
import { chunkWords, evaluateText, scoreContinuation, scoreContinuations } from '../../src/models/hat/score.js';
import { forEachBackend } from '../helpers/numeric.js';
import { refHAT } from './reference.js';
import { TestSplitter, concatBytes, randomModel, testConfig, wordLens } from './util.js';

function refLogSoftmax(logits: Float64Array, pos: number, k: number): number {
  const row = logits.subarray(pos * 256, (pos + 1) * 256);
  const mx = Math.max(...row);
  let z = 0;
  for (const x of row) z += Math.exp(x - mx);
  return row[k] - mx - Math.log(z);
}

function refArgmax(logits: Float64Array, pos: number): number {
  const row = logits.subarray(pos * 256, (pos + 1) * 256);
  let best = 0;
  for (let i = 1; i < 256; i++) if (row[i] > row[best]) best = i;
  return best;
}

forEachBackend('hat score: continuation log-likelihood = sum of float64 byte log-probs (prompt and continuation split apart)', () => {
  const sp = new TestSplitter(8);
  const m = randomModel(testConfig({ window: 6 }), 40, 0.4);
  const prompt = 'The cat sat on';
  const conts = [' the mat.', ' a hat', 'ü!'];
  const many = scoreContinuations(m, sp, prompt, conts);
  conts.forEach((c, i) => {
    const words = [...sp.encode(prompt), ...sp.encode(c)];
    const bytes = concatBytes(words);
    const ref = refHAT(m, bytes, wordLens(words)).logits.data;
    const P = concatBytes(sp.encode(prompt)).length;
    let want = 0;
    for (let t = P; t < bytes.length; t++) want += refLogSoftmax(ref, t - 1, bytes[t]);
    const one = scoreContinuation(m, sp, prompt, c);
    assert.equal(one.bytes, bytes.length - P);
    assert.ok(Math.abs(one.logprob - want) < 1e-3 * Math.abs(want) + 1e-4, `${c}: ${one.logprob} vs float64 ${want}`);
    assert.ok(Math.abs(many[i].logprob - one.logprob) < 1e-4, `batched ${many[i].logprob} vs single ${one.logprob}`);
    assert.ok(one.logprob < 0);
  });
  // the greedy flag: the argmax continuation is greedy, a changed one is not
  const words = sp.encode(prompt);
  const bytes = concatBytes(words);
  const ref = refHAT(m, bytes, wordLens(words)).logits.data;
  const next = refArgmax(ref, bytes.length - 1);
  if (next < 0x80 && next !== 0x20) {
    assert.equal(scoreContinuation(m, sp, prompt, String.fromCharCode(next)).greedy, true);
    assert.equal(scoreContinuation(m, sp, prompt, String.fromCharCode(next === 0x41 ? 0x42 : 0x41)).greedy, false);
  }
  // empty prompt: the first byte has no context and is not scored
  assert.equal(scoreContinuation(m, sp, '', 'abc').bytes, 2);
});

forEachBackend('hat score: evaluateText bits per byte, byte and word accuracy match a float64 recount', () => {
  const sp = new TestSplitter(6);
  const m = randomModel(testConfig({ window: 8 }), 41, 0.4);
  const docs = ['one two three four five six seven', 'Grüße aus Köln und Bonn', 'x'];
  const ctx = 16;
  const res = evaluateText(m, sp, docs, { contextBytes: ctx, batchSize: 3 });
  let nats = 0;
  let predicted = 0;
  let hits = 0;
  let words = 0;
  let correct = 0;
  let chunks = 0;
  for (const d of docs) {
    for (const ws of chunkWords(sp.encode(d), ctx)) {
      chunks++;
      const bytes = concatBytes(ws);
      const ref = refHAT(m, bytes, wordLens(ws)).logits.data;
      const hit: boolean[] = [false];
      for (let t = 1; t < bytes.length; t++) {
        nats -= refLogSoftmax(ref, t - 1, bytes[t]);
        hit.push(refArgmax(ref, t - 1) === bytes[t]);
        predicted++;
      }
      hits += hit.filter(Boolean).length;
      let s = 0;
      ws.forEach((w, k) => {
        if (k > 0) {
          words++;
          if (hit.slice(s, s + w.length).every(Boolean)) correct++;
        }
        s += w.length;
      });
    }
  }
  assert.equal(res.chunks, chunks);
  assert.ok(chunks >= 6, `only ${chunks} chunks`);
  assert.equal(res.predictedBytes, predicted);
  assert.equal(res.totalBytes, docs.reduce((s, d) => s + Buffer.byteLength(d), 0));
  assert.ok(Math.abs(res.nats - nats) < 1e-4 * nats, `nats ${res.nats} vs ${nats}`);
  assert.ok(Math.abs(res.bitsPerByte - nats / predicted / Math.LN2) < 1e-4);
  assert.equal(res.byteAccuracy, hits / predicted);
  assert.equal(res.words, words);
  assert.equal(res.correctWords, correct);
  // the batch size does not change the result
  const res1 = evaluateText(m, sp, docs, { contextBytes: ctx, batchSize: 1 });
  assert.ok(Math.abs(res1.nats - res.nats) < 1e-5 * nats);
  assert.equal(res1.correctWords, res.correctWords);
  assert.throws(() => chunkWords([new Uint8Array(20)], 16), /a word of 20 bytes does not fit a chunk of 16 bytes/);
});
