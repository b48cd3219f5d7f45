/**
 * The HatPaperEditor perturbations (src/eval/perturb.ts) and the FLOPs formulas (src/eval/flops.ts).
 * Pure string / arithmetic code: backend-independent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TextEditor, candidateIndices, perturb, sampleIndices } from '../../src/eval/perturb.js';
import { layerMacs, meanContext } from '../../src/eval/flops.js';
import { Rng } from '../../src/nn/index.js';

const chars = (s: string): string[] => Array.from(s);

test('candidates: interior alphanumerics whose two neighbours are alphanumeric', () => {
  // "ab cde, f9gh": a(0) b(1) ' '(2) c(3) d(4) e(5) ,(6) ' '(7) f(8) 9(9) g(10) h(11)
  assert.deepEqual(candidateIndices(chars('ab cde, f9gh')), [4, 9, 10]);
  assert.deepEqual(candidateIndices(chars('a b c')), []);
  assert.deepEqual(candidateIndices(chars('')), []);
  // code points, not UTF-16 units: "é" and "ß" are letters, "😀" is not
  assert.deepEqual(candidateIndices(chars('xéßy😀zz')), [1, 2]);
});

test('sample: floor(len x pct) distinct candidates, seeded', () => {
  const text = chars('the quick brown foxes jumped over the lazy dogs again and again');
  const cand = candidateIndices(text);
  const k = Math.floor(cand.length * 0.1);
  assert.ok(k >= 2);
  const a = sampleIndices(text, 0.1, new Rng(5));
  assert.equal(a.length, k);
  assert.equal(new Set(a).size, k);
  for (const i of a) assert.ok(cand.includes(i));
  assert.deepEqual(sampleIndices(text, 0.1, new Rng(5)), a, 'same seed, same sample');
  const others = [6, 7, 8, 9].map((s) => sampleIndices(text, 0.1, new Rng(s)).join(','));
  assert.ok(others.some((o) => o !== a.join(',')), 'other seeds give other samples');
  assert.deepEqual(sampleIndices(text, 0, new Rng(1)), []);
  assert.equal(sampleIndices(text, 1, new Rng(1)).length, cand.length);
  assert.throws(() => sampleIndices(text, 1.5, new Rng(1)), /pct/);
});

test('permute swaps each sampled character with the next, in sample order', () => {
  const text = 'abcdefghij klmnopqrst';
  const idx = sampleIndices(chars(text), 0.25, new Rng(3));
  const out = perturb(text, 'permute', new Rng(3), 0.25);
  const c = chars(text);
  for (const i of idx) [c[i], c[i + 1]] = [c[i + 1], c[i]];
  assert.equal(out, c.join(''));
  assert.notEqual(out, text);
  assert.equal(out.length, text.length);
  assert.deepEqual([...out].sort(), [...text].sort(), 'a permutation of the characters');
  assert.equal(out[0], 'a');
  assert.equal(out.indexOf(' '), text.indexOf(' '), 'spaces stay');
});

test('replace puts printable ASCII 33..126 at the sampled positions only', () => {
  const text = 'internationalization localization';
  const idx = sampleIndices(chars(text), 0.5, new Rng(9));
  const out = perturb(text, 'replace', new Rng(9), 0.5);
  assert.equal(out.length, text.length);
  for (let i = 0; i < text.length; i++) {
    if (idx.includes(i)) {
      const code = out.charCodeAt(i);
      assert.ok(code >= 33 && code <= 126, `position ${i}: code ${code}`);
    } else assert.equal(out[i], text[i], `position ${i} unchanged`);
  }
});

test('delete removes exactly the sampled characters', () => {
  const text = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const idx = new Set(sampleIndices(chars(text), 0.1, new Rng(2)));
  const out = perturb(text, 'delete', new Rng(2), 0.1);
  assert.equal(out.length, text.length - idx.size);
  assert.equal(out, [...text].filter((_, i) => !idx.has(i)).join(''));
  assert.equal(out[0], 'a');
  assert.equal(out[out.length - 1], '9');
});

test('uppercase and none; the editor is seeded and advances across texts', () => {
  assert.equal(perturb('Hello, world straße', 'uppercase', new Rng(0)), 'HELLO, WORLD STRASSE');
  assert.equal(perturb('unchanged text', 'none', new Rng(0)), 'unchanged text');
  const texts = ['the committee approved the proposal', 'the committee approved the proposal'];
  const e1 = new TextEditor('permute', 1);
  const a = texts.map((t) => e1.apply(t));
  const e2 = new TextEditor('permute', 1);
  assert.deepEqual(texts.map((t) => e2.apply(t)), a, 'same seed: same edits');
  assert.notEqual(a[0], texts[0]);
  // the generator advances: the two identical inputs get different edits (with this seed)
  assert.notEqual(a[0], a[1]);
});

test('FLOPs helpers: mean causal context and one layer against hand counts', () => {
  assert.equal(meanContext(4), (1 + 2 + 3 + 4) / 4);
  assert.equal(meanContext(6, 3), (1 + 2 + 3 + 3 + 3 + 3) / 6);
  assert.equal(meanContext(0), 0);
  // hidden 8, q 8, kv 4, mlp 16, ctx 5: 64 + 64 + 64 + 384 + 80
  assert.equal(layerMacs({ hidden: 8, q: 8, kv: 4, intermediate: 16 }, 5), 8 * 8 + 2 * 8 * 4 + 8 * 8 + 3 * 8 * 16 + 2 * 8 * 5);
});
