import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generate, generateStream, generateUncached, type GenerateOptions } from '../../src/models/hat/generate.js';
import { Sampler, argmax } from '../../src/models/hat/sampling.js';
import { HatSplitter } from '../../src/models/hat/splitter.js';
import { Rng, forEachBackend } from '../helpers/numeric.js';
import { TestSplitter, randomModel, testConfig } from './util.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const prompts = ['Hello wo', 'x', 'Grüße aus Köln,', '€ 5 für 日本 ', 'a🙂b', 'one two three four five six'];

forEachBackend('hat generate: cached == uncached, byte for byte (greedy and sampled; multi-byte characters)', () => {
  const splitter = new TestSplitter(8);
  let words = 0;
  let multiByteStarts = 0;
  const small = testConfig({ window: 5 });
  small.max_word_size = 8; // the decoder cache is trimmed to window - 1 + max_word_size + 4 bytes: trimming happens
  for (const [mi, cfg] of [small, testConfig({ window: 64, crossEveryLayer: false, gqa: false })].entries()) {
    const m = randomModel(cfg, 20 + mi, 0.5);
    prompts.forEach((prompt, pi) => {
      const modes: GenerateOptions[] = [
        { greedy: true, maxBytes: 40, eos: -1 },
        { temperature: 1, seed: pi, maxBytes: 40, eos: -1 },
        { temperature: 0.7, topK: 20, topP: 0.9, seed: 100 + pi, maxBytes: 30 },
      ];
      for (const opts of modes) {
        const a = generate(m, splitter, prompt, opts);
        const b = generateUncached(m, splitter, prompt, opts);
        const what = `model ${mi}, prompt ${JSON.stringify(prompt)}, ${JSON.stringify(opts)}`;
        assert.equal(hex(a.bytes), hex(b.bytes), what);
        assert.equal(a.stopReason, b.stopReason, what);
        assert.deepEqual(a.wordStarts, b.wordStarts, what);
        words += a.wordStarts.length;
        for (const s of a.wordStarts) if (a.bytes[s] >= 0xc2 && a.bytes[s] < 0xf5 && s + 1 < a.bytes.length && (a.bytes[s + 1] & 0xc0) === 0x80) multiByteStarts++;
      }
    });
  }
  // the runs cover many word ends, including words that start with a multi-byte character
  // (decoded first with the previous word's prediction, then again after the split)
  assert.ok(words > 50, `only ${words} word ends`);
  assert.ok(multiByteStarts > 3, `only ${multiByteStarts} multi-byte word starts`);
});

forEachBackend('hat generate: eos and stop strings end generation; maxBytes bounds it; streamed text equals the result', () => {
  const splitter = new TestSplitter(8);
  const m = randomModel(testConfig({ window: 8 }), 30, 0.5);
  // find the greedy continuation, then use a piece of it as a stop string
  const free = generate(m, splitter, 'abc de', { greedy: true, maxBytes: 24, eos: -1 });
  assert.equal(free.bytes.length, 24);
  assert.equal(free.stopReason, 'max_bytes');
  const cut = 10;
  const stopBytes = free.bytes.subarray(cut, cut + 3);
  const stop = new TextDecoder().decode(stopBytes);
  if (new TextEncoder().encode(stop).length === 3 && !free.bytes.subarray(0, cut + 2).some((_, i) => i + 3 <= cut + 2 && hex(free.bytes.subarray(i, i + 3)) === hex(stopBytes))) {
    const r = generate(m, splitter, 'abc de', { greedy: true, maxBytes: 24, eos: -1, stop: [stop] });
    assert.equal(r.stopReason, 'stop');
    assert.equal(hex(r.bytes), hex(free.bytes.subarray(0, cut)));
  }
  // eos: make the model's greedy pick the eos byte by choosing eos = the first greedy byte
  const first = free.bytes[0];
  const e = generate(m, splitter, 'abc de', { greedy: true, maxBytes: 24, eos: first });
  assert.equal(e.stopReason, 'eos');
  assert.equal(e.bytes.length, 0);
  const z = generate(m, splitter, 'abc de', { greedy: true, maxBytes: 0 });
  assert.equal(z.bytes.length, 0);
  // streaming callback pieces concatenate to the text, and never split a character
  const pieces: string[] = [];
  const s = generate(m, splitter, 'Grüße', { temperature: 1, seed: 3, maxBytes: 60, eos: -1, onText: (t) => pieces.push(t) });
  assert.equal(pieces.join(''), s.text);
  assert.equal(s.text, new TextDecoder().decode(s.bytes));
  assert.throws(() => generate(m, splitter, '', {}), /the prompt is empty/);
});

test('hat generate: the async stream yields the same text as generate', async () => {
  const splitter = new TestSplitter(8);
  const m = randomModel(testConfig({ window: 8 }), 31, 0.5);
  const opts = { temperature: 0.9, seed: 5, maxBytes: 50, eos: -1, stop: ['zz'] };
  const want = generate(m, splitter, 'stream me', opts);
  const it = generateStream(m, splitter, 'stream me', opts);
  let text = '';
  for (;;) {
    const r = await it.next();
    if (r.done === true) {
      assert.equal(hex(r.value.bytes), hex(want.bytes));
      break;
    }
    text += r.value;
  }
  assert.equal(text, want.text);
});

test('hat generate: onWord reports the words of the output (they concatenate to it)', () => {
  const splitter = new TestSplitter(6);
  const m = randomModel(testConfig({ window: 8 }), 32, 0.5);
  const got: Uint8Array[] = [];
  const r = generate(m, splitter, 'ab', { temperature: 1, seed: 9, maxBytes: 50, eos: -1, onWord: (w) => got.push(w) });
  assert.equal(hex(Buffer.concat(got)), hex(r.bytes));
  const starts = [0];
  for (const w of got.slice(0, -1)) starts.push(starts[starts.length - 1] + w.length);
  // word starts after the first (which may continue the prompt's last word)
  assert.deepEqual(starts.slice(1), r.wordStarts.filter((s) => s > 0));
});

test('hat sampling: greedy is argmax; temperature/top-k/top-p follow their distributions; seeds repeat', () => {
  const logits = new Float32Array(256).fill(-5);
  logits[10] = 2;
  logits[20] = 1.5;
  logits[30] = 1;
  logits[40] = 0.999;
  assert.equal(argmax(logits), 10);
  assert.equal(new Sampler({ greedy: true }).sample(logits), 10);
  assert.equal(new Sampler({ temperature: 0 }).sample(logits), 10);
  const count = (opts: ConstructorParameters<typeof Sampler>[0], n: number): Map<number, number> => {
    const s = new Sampler(opts);
    const c = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const b = s.sample(logits);
      c.set(b, (c.get(b) ?? 0) + 1);
    }
    return c;
  };
  const n = 20000;
  // top-k 2: only 10 and 20, in ratio e^(0.5)
  const k2 = count({ topK: 2, seed: 1 }, n);
  assert.deepEqual([...k2.keys()].sort((a, b) => a - b), [10, 20]);
  const ratio = (k2.get(10) ?? 0) / (k2.get(20) ?? 1);
  assert.ok(Math.abs(ratio - Math.exp(0.5)) < 0.08, `top-k ratio ${ratio}`);
  // top-p: 10, 20 and 30 hold p = (e^2 + e^1.5 + e^1) / Z; with p just below that only those three remain
  const z = Math.exp(2) + Math.exp(1.5) + Math.exp(1) + Math.exp(0.999) + 252 * Math.exp(-5);
  const p3 = (Math.exp(2) + Math.exp(1.5) + Math.exp(1)) / z;
  const tp = count({ topP: p3 - 1e-3, seed: 2 }, 5000);
  assert.deepEqual([...tp.keys()].sort((a, b) => a - b), [10, 20, 30]);
  // temperature 1 without filters: frequency of byte 10 ~ e^2 / Z
  const all = count({ seed: 3 }, n);
  const f10 = (all.get(10) ?? 0) / n;
  assert.ok(Math.abs(f10 - Math.exp(2) / z) < 0.015, `p(10) = ${f10}`);
  // same seed, same stream
  const a = new Sampler({ seed: 7 });
  const b = new Sampler({ seed: 7 });
  const r = new Rng(1);
  for (let i = 0; i < 50; i++) {
    const l = new Float32Array(256).map(() => r.uniform(-2, 2));
    assert.equal(a.sample(l), b.sample(l));
  }
  assert.throws(() => new Sampler({ topP: 0 }), /top-p must be in \(0, 1\]/);
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
});

forEachBackend('hat generate: cached == uncached with the HAT splitter (German, CJK, emoji, special token)', () => {
  const m = randomModel(testConfig({ window: 12 }), 33, 0.5);
  const splitter = new HatSplitter({ maxWordSize: 16 });
  let words = 0;
  for (const [i, prompt] of ['Grüße aus Köln, ', '東京は', 'Emoji 🙂👍🏽 and', 'snake_case andCamelCase', 'end<|eot_id|>next'].entries()) {
    for (const opts of [{ greedy: true, maxBytes: 36, eos: -1 }, { temperature: 1, seed: i, maxBytes: 36 }] as GenerateOptions[]) {
      const a = generate(m, splitter, prompt, opts);
      const b = generateUncached(m, splitter, prompt, opts);
      assert.equal(hex(a.bytes), hex(b.bytes), `${prompt} ${JSON.stringify(opts)}`);
      assert.deepEqual(a.wordStarts, b.wordStarts);
      words += a.wordStarts.length;
    }
  }
  assert.ok(words > 20, `only ${words} word ends`);
});
