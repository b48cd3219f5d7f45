import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Rng } from '../../src/nn/index.js';
import {
  BYTE_TO_CHAR,
  HFTokenizer,
  bpeTokenizerJson,
  gpt2Pieces,
  loadTokenizer,
  saveBpeTokenizer,
  splitUtf8,
  trainBpe,
} from '../../src/models/llama/tokenizer/index.js';
import { tmpDir } from './fixture.js';

const G = BYTE_TO_CHAR[32]; // "Ġ"

/** A tiny byte-level BPE: bytes 0..255, merges (a b) (Ġ ab) (ab c) (c c), special <|eot|>. */
function tinyTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((c, b) => (vocab[c] = b));
  Object.assign(vocab, { ab: 256, [`${G}ab`]: 257, abc: 258, cc: 259 });
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    added_tokens: [{ id: 260, content: '<|eot|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: bl,
    post_processor: null,
    decoder: bl,
    model: { type: 'BPE', dropout: null, unk_token: null, byte_fallback: false, ignore_merges: false, vocab, merges: [['a', 'b'], [G, 'ab'], ['ab', 'c'], ['c', 'c']] },
  };
}

test('the byte alphabet is GPT-2 bytes_to_unicode', () => {
  assert.equal(BYTE_TO_CHAR[32], '\u0120');
  assert.equal(BYTE_TO_CHAR[10], '\u010a');
  assert.equal(BYTE_TO_CHAR[0], '\u0100');
  assert.equal(BYTE_TO_CHAR[65], 'A');
  assert.equal(BYTE_TO_CHAR[173], '\u0143'); // 0-32 -> U+0100.., 127-160 -> U+0121.., soft hyphen 173 last: U+0143
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
});

test('known encodings of a handcrafted tokenizer.json (derived by hand)', () => {
  const tok = new HFTokenizer(tinyTokenizerJson());
  const cases: [string, number[]][] = [
    ['abc', [258]], // a b c -> (a b) rank 0 -> ab c -> (ab c) rank 2 -> abc
    [' abc', [257, 99]], // Ġ a b c -> Ġ ab c -> (Ġ ab) rank 1 beats (ab c) rank 2 -> Ġab c
    ['ccc', [259, 99]], // the leftmost (c c) merges first
    ['abab', [256, 256]],
    ['x<|eot|>ab', [120, 260, 256]], // special tokens written in the text are recognised
    ['\u00e9', [195, 169]], // é is C3 A9
    ['  ab', [32, 257]], // pieces " " and " ab" (\s+(?!\S) leaves the last space to the word)
    ["it's", [105, 116, 39, 115]], // pieces "it" "'s"
  ];
  for (const [text, ids] of cases) {
    assert.deepEqual([...tok.encode(text)], ids, JSON.stringify(text));
    assert.equal(tok.decode(ids), text);
  }
  assert.equal(tok.vocabSize, 261);
  assert.equal(tok.byteLevel, true);
  assert.deepEqual([...tok.specialTokens], [['<|eot|>', 260]]);
  assert.equal(tok.decode([120, 260, 256], { skipSpecialTokens: true }), 'xab');
  assert.equal(tok.decode([44, 32, 46]), ', .', 'no clean-up of spaces before punctuation');
  assert.deepEqual([...tok.tokenBytes(257)], [32, 97, 98]);
  assert.throws(() => tok.decode([261]), /id 261 at index 0 is not in the vocabulary/);
});

const RANGES: [number, number][] = [
  [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], // ASCII, most likely
  [0x09, 0x0d], // tabs and newlines
  [0xa0, 0xff], // Latin-1
  [0x370, 0x3ff], // Greek
  [0x400, 0x4ff], // Cyrillic
  [0x300, 0x36f], // combining marks
  [0x4e00, 0x4fff], // CJK
  [0x1f300, 0x1f64f], // emoji (astral, surrogate pairs in JS)
  [0x2000, 0x206f], // general punctuation and odd spaces
  [0x660, 0x669], // Arabic-Indic digits
];

function randomText(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const [lo, hi] = RANGES[rng.int(RANGES.length)];
    s += String.fromCodePoint(lo + rng.int(hi - lo + 1));
  }
  return s;
}

const CORPUS = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.',
  "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
  'Der schnelle braune Fuchs springt über den faulen Hund. Über allen Gipfeln ist Ruh.',
  'In 1984, 42 numbers: 3.14159, 2.71828 and 1,000,000 were printed.\n\n  Indented line\tand a tab.',
  'the the the then there their they them these those this that thus',
];

test('round trip: decode(encode(text)) == text on random Unicode, decodeBytes(encodeBytes(bytes)) == bytes on random bytes', () => {
  const trained = trainBpe(CORPUS, { vocabSize: 400, specialTokens: ['<|endoftext|>'] });
  for (const tok of [new HFTokenizer(tinyTokenizerJson()), new HFTokenizer(bpeTokenizerJson(trained))]) {
    const rng = new Rng(17);
    for (let i = 0; i < 60; i++) {
      const text = randomText(rng, 1 + rng.int(80));
      const ids = tok.encode(text);
      assert.equal(tok.decode(ids), text);
      assert.deepEqual(tok.encodeBytes(new TextEncoder().encode(text)), ids, 'valid UTF-8 bytes encode as the text');
    }
    for (const text of CORPUS) assert.equal(tok.decode(tok.encode(text)), text);
    for (let i = 0; i < 60; i++) {
      const bytes = new Uint8Array(1 + rng.int(100));
      for (let j = 0; j < bytes.length; j++) bytes[j] = rng.int(256);
      const ids = tok.encodeBytes(bytes);
      assert.deepEqual(tok.decodeBytes(ids), bytes);
    }
  }
});

test('splitUtf8 separates valid runs from invalid bytes', () => {
  const b = Uint8Array.from([0x61, 0xc3, 0xa9, 0xff, 0x62, 0xe2, 0x82, 0x61, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x99, 0x82]);
  assert.deepEqual(splitUtf8(b), ['a\u00e9', 0xff, 'b', 0xe2, 0x82, 'a', 0xed, 0xa0, 0x80, '\u{1f642}']);
});

test('trainer: hand-derived merges, minFrequency and deterministic tie-breaking', () => {
  // pieces "ab" x1, " ab" x2, " abc" x1: (a b) 4, (Ġ a) 3, (b c) 1 -> ab; then (Ġ ab) 3 -> Ġab; then (Ġab c) 1 < 2
  const r = trainBpe(['ab ab ab abc'], { vocabSize: 1000 });
  assert.deepEqual(r.merges, [['a', 'b'], [G, 'ab']]);
  assert.equal(r.vocab.get(`${G}ab`), 257);
  assert.equal(r.lastMergeCount, 3);
  const r1 = trainBpe(['ab ab ab abc'], { vocabSize: 1000, minFrequency: 1 });
  assert.deepEqual(r1.merges.at(-1), [`${G}ab`, 'c']);
  // all pairs occur once: the smaller left id wins (Ġ = 32 < x = 120), then the new Ġz = 256 loses to x
  const t = trainBpe(['xy zw'], { vocabSize: 1000, minFrequency: 1 });
  assert.deepEqual(t.merges, [[G, 'z'], ['x', 'y'], [`${G}z`, 'w']]);
  // vocabSize caps the merges; special tokens take the last ids
  const c = trainBpe(CORPUS, { vocabSize: 300, specialTokens: ['<|endoftext|>', '<|pad|>'] });
  assert.equal(c.merges.length, 42);
  assert.deepEqual(c.specialTokens, [{ content: '<|endoftext|>', id: 298 }, { content: '<|pad|>', id: 299 }]);
  assert.throws(() => trainBpe(CORPUS, { vocabSize: 257, specialTokens: ['a', 'b'] }), /vocabSize must be an integer in \[258/);
});

/** Straightforward BPE training: recount every pair after every merge. */
function naiveTrain(texts: string[], vocabSize: number, minFrequency: number): [string, string][] {
  const counts = new Map<string, number>();
  for (const t of texts) for (const p of gpt2Pieces(t)) counts.set(p, (counts.get(p) ?? 0) + 1);
  const words = [...counts].map(([p, f]) => ({ ids: [...new TextEncoder().encode(p)], f }));
  const tokens = [...BYTE_TO_CHAR];
  const merges: [string, string][] = [];
  while (tokens.length < vocabSize) {
    const pc = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.ids.length; i++) pc.set(`${w.ids[i]},${w.ids[i + 1]}`, (pc.get(`${w.ids[i]},${w.ids[i + 1]}`) ?? 0) + w.f);
    let best: [number, number, number] | null = null;
    for (const [k, c] of pc) {
      const [a, b] = k.split(',').map(Number);
      if (best === null || c > best[2] || (c === best[2] && (a < best[0] || (a === best[0] && b < best[1])))) best = [a, b, c];
    }
    if (best === null || best[2] < minFrequency) break;
    const [a, b] = best;
    const s = tokens[a] + tokens[b];
    let id = tokens.indexOf(s);
    if (id < 0) id = tokens.push(s) - 1;
    merges.push([tokens[a], tokens[b]]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === a && w.ids[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(w.ids[i]);
      }
      w.ids = out;
    }
  }
  return merges;
}

test('trainer: incremental pair counts give the merges of a from-scratch recount; order of texts does not matter', () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 6; trial++) {
    const alphabet = ['a', 'b', 'a', 'ab', ' ', ' ', 'é', '1', '.', 'aa'];
    const texts = Array.from({ length: 8 }, () => Array.from({ length: 40 + rng.int(60) }, () => alphabet[rng.int(alphabet.length)]).join(''));
    const minFrequency = 1 + rng.int(3);
    const r = trainBpe(texts, { vocabSize: 256 + 60, minFrequency });
    assert.deepEqual(r.merges, naiveTrain(texts, 256 + 60, minFrequency), `trial ${trial}`);
    const shuffled = rng.shuffle(texts.slice());
    assert.deepEqual(bpeTokenizerJson(trainBpe(shuffled, { vocabSize: 256 + 60, minFrequency })), bpeTokenizerJson(r));
  }
});

test('trained tokenizer.json: saved, loaded by the reader, same ids as the training segmentation, deterministic file', () => {
  const dir = tmpDir('tok');
  const r = trainBpe(CORPUS, { vocabSize: 420, minFrequency: 1, specialTokens: ['<|endoftext|>'] });
  const file = nodePath.join(dir, 'tokenizer.json');
  saveBpeTokenizer(file, r);
  const again = nodePath.join(dir, 'again.json');
  saveBpeTokenizer(again, trainBpe(CORPUS, { vocabSize: 420, minFrequency: 1, specialTokens: ['<|endoftext|>'] }));
  assert.equal(fs.readFileSync(file, 'utf8'), fs.readFileSync(again, 'utf8'), 'training twice writes the same file');
  const tok = loadTokenizer(dir);
  const eot = r.vocab.size;
  assert.ok(eot > 300, `${eot - 256} merges`);
  assert.equal(tok.vocabSize, eot + 1);
  assert.equal(tok.tokenToId('<|endoftext|>'), eot);
  let total = 0;
  for (const text of CORPUS) {
    const expected = gpt2Pieces(text).flatMap((p) => [...(r.pieces.get(p) as Int32Array)]);
    assert.deepEqual([...tok.encode(text)], expected);
    total += expected.length;
  }
  const bytes = CORPUS.reduce((s, t) => s + new TextEncoder().encode(t).length, 0);
  assert.ok(total < 0.6 * bytes, `the trained vocabulary compresses its corpus (${total} tokens for ${bytes} bytes)`);
  assert.deepEqual([...tok.encode('the<|endoftext|>')], [...tok.encode('the'), eot]);
});

test('tokenizer files: clear errors', () => {
  const dir = tmpDir('tokbad');
  assert.throws(() => loadTokenizer(dir), /tokenizer\.json: cannot read: ENOENT/);
  fs.writeFileSync(nodePath.join(dir, 'tokenizer.json'), '{"model": ');
  assert.throws(() => loadTokenizer(dir), /tokenizer\.json: not valid JSON/);
  fs.writeFileSync(nodePath.join(dir, 'tokenizer.json'), '{"version": "1.0"}');
  assert.throws(() => loadTokenizer(dir), /tokenizer\.json: field "model" is missing/);
  const json = tinyTokenizerJson();
  const model = json.model as { vocab: Record<string, number> };
  delete model.vocab[G];
  assert.throws(() => new HFTokenizer(json, {}, 'x.json'), /x\.json: byte-level vocabulary lacks the token for byte 32/);
});

test('tokenizer_config.json gives bos/eos ids', () => {
  const dir = tmpDir('tokcfg');
  fs.writeFileSync(nodePath.join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  fs.writeFileSync(nodePath.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|eot|>', bos_token: { content: 'ab' } }));
  const tok = loadTokenizer(nodePath.join(dir, 'tokenizer.json'));
  assert.equal(tok.eosId, 260);
  assert.equal(tok.bosId, 256);
});

/** A Llama-3-layout tokenizer.json: Split(regex) + ByteLevel(no regex), ignore_merges, BOS template. */
function llama3StyleJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((c, b) => (vocab[c] = b));
  Object.assign(vocab, { '34': 256, [`${G}1`]: 257, abc: 258 });
  const bos = '<|begin_of_text|>';
  return {
    version: '1.0',
    added_tokens: [{ id: 259, content: bos, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [bos]: { id: bos, ids: [259], tokens: [bos] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, byte_fallback: false, ignore_merges: true, vocab, merges: [['3', '4'], [G, '1']] },
  };
}

test('Llama-3-layout tokenizer.json: its pre-tokenizer regex, ignore_merges and the BOS template (derived by hand)', () => {
  const l3 = new HFTokenizer(llama3StyleJson());
  // pieces "abc" " " "123" "45": abc is a vocabulary entry (ignore_merges), digits go in threes, so (3 4) and (Ġ 1) never apply
  assert.deepEqual([...l3.encode('abc 12345')], [258, 32, 49, 50, 51, 52, 53]);
  assert.deepEqual([...l3.encode('1234')], [49, 50, 51, 52]);
  assert.deepEqual([...l3.encode('abc', { addSpecialTokens: true })], [259, 258]);
  assert.equal(l3.decode([259, 258, 32, 49]), '<|begin_of_text|>abc 1');
  assert.equal(l3.decode([259, 258], { skipSpecialTokens: true }), 'abc');
  // the same vocabulary and merges under GPT-2 pre-tokenization: pieces "abc" " 12345" -> a b c, Ġ1 2 34 5
  const json = llama3StyleJson();
  json.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  (json.model as Record<string, unknown>).ignore_merges = false;
  assert.deepEqual([...new HFTokenizer(json).encode('abc 12345')], [97, 98, 99, 257, 50, 256, 53]);
  const rng = new Rng(2);
  for (let i = 0; i < 30; i++) {
    const text = randomText(rng, 60);
    assert.equal(l3.decode(l3.encode(text)), text);
  }
});
