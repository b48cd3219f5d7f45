import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../src/nn/index.js';
import { BytePacker, DataError, fingerprintDocuments, firstInvalidUtf8, readDocuments, splitTrainVal, wordLayout, type PackedBatch, type TextDocument } from '../../src/io/index.js';
import { spaceSplit } from './standin.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function tmp(): string {
  return fs.mkdtempSync(join(tmpdir(), 'tfree-data-'));
}

function randomText(rng: Rng, words: number): string {
  const alpha = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'über', 'naïve', '日本', 'x', 'longerword', 'zz'];
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(alpha[rng.int(alpha.length)]);
  return out.join(' ');
}

function docs(n: number, seed = 1): TextDocument[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => ({ source: `doc${i}`, bytes: enc.encode(randomText(rng, 3 + rng.int(60))) }));
}

test('readDocuments: folders recursively in sorted order, dotfiles skipped, JSONL by extension', () => {
  const d = tmp();
  try {
    fs.mkdirSync(join(d, 'b'));
    fs.mkdirSync(join(d, 'a'));
    fs.writeFileSync(join(d, 'b', 'z.txt'), 'zed');
    fs.writeFileSync(join(d, 'a', 'y.txt'), 'why');
    fs.writeFileSync(join(d, 'a', '.hidden'), 'no');
    fs.writeFileSync(join(d, 'c.jsonl'), '{"text": "one"}\n\n{"text": "two", "id": 3}\r\n{"text": ""}\n');
    fs.writeFileSync(join(d, 'empty.txt'), '');
    const got = readDocuments([d]);
    assert.deepEqual(
      got.map((x) => [x.source.slice(d.length + 1), dec.decode(x.bytes)]),
      [
        [join('a', 'y.txt'), 'why'],
        [join('b', 'z.txt'), 'zed'],
        ['c.jsonl:1', 'one'],
        ['c.jsonl:3', 'two'],
      ],
    );
    // a file given twice is read twice, in the given order
    assert.equal(readDocuments([join(d, 'b', 'z.txt'), join(d, 'a', 'y.txt')])[1].source, join(d, 'a', 'y.txt'));
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('readDocuments: bad inputs name the file and the line or byte offset', () => {
  const d = tmp();
  try {
    const cases: [string, string | Uint8Array, RegExp][] = [
      ['bad.jsonl', '{"text": "a"}\n{"text": oops}\n', /bad\.jsonl:2: invalid JSON/],
      ['missing.jsonl', '{"text": "a"}\n{"txt": "b"}\n', /missing\.jsonl:2: missing "text" field/],
      ['type.jsonl', '{"text": 5}\n', /type\.jsonl:1: "text" must be a string/],
      ['arr.jsonl', '[1]\n', /arr\.jsonl:1: expected a JSON object/],
      ['surrogate.jsonl', '{"text": "a\\ud800b"}\n', /surrogate\.jsonl:1: .*lone surrogate/],
      ['latin1.txt', new Uint8Array([0x61, 0x0a, 0x62, 0xe9, 0x63]), /latin1\.txt: invalid UTF-8 at byte offset 3 \(line 2, byte 2 of the line\)/],
      ['trunc.txt', new Uint8Array([0x61, 0xe2, 0x82]), /trunc\.txt: invalid UTF-8 at byte offset 1/],
    ];
    for (const [name, body, re] of cases) {
      fs.writeFileSync(join(d, name), body);
      assert.throws(() => readDocuments([join(d, name)]), (e: unknown) => e instanceof DataError && re.test(e.message), name);
    }
    assert.throws(() => readDocuments([join(d, 'nope')]), (e: unknown) => e instanceof DataError && /nope: cannot read \(ENOENT/.test(e.message));
    fs.writeFileSync(join(d, 'e.txt'), '');
    assert.throws(() => readDocuments([join(d, 'e.txt')]), /no text found/);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('firstInvalidUtf8 agrees with the WHATWG fatal decoder on random bytes', () => {
  const rng = new Rng(7);
  const fatal = new TextDecoder('utf-8', { fatal: true });
  const pool = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xa0, 0xed, 0x9f, 0xa0, 0xef, 0xf0, 0x90, 0xf4, 0x8f, 0xf5, 0xff];
  let valid = 0;
  for (let t = 0; t < 3000; t++) {
    const b = new Uint8Array(1 + rng.int(6)).map(() => pool[rng.int(pool.length)]);
    let ok = true;
    try {
      fatal.decode(b);
    } catch {
      ok = false;
    }
    const off = firstInvalidUtf8(b);
    assert.equal(off < 0, ok, `bytes ${Array.from(b, (x) => x.toString(16)).join(' ')}`);
    if (ok) valid++;
    else assert.doesNotThrow(() => fatal.decode(b.subarray(0, off)), 'everything before the offset is valid');
  }
  assert.ok(valid > 100 && valid < 2900);
});

function checkBatch(b: PackedBatch, eos: number | null): void {
  const T = b.seqBytes;
  const lay = wordLayout(b);
  let targets = 0;
  for (let r = 0; r < b.rows; r++) {
    let sum = 0;
    for (let w = b.rowWords[r]; w < b.rowWords[r + 1]; w++) {
      const s = lay.starts[w];
      // a word lies inside its row and inside one segment
      assert.ok(s >= r * T && s + b.wordLens[w] <= (r + 1) * T);
      for (let i = s; i < s + b.wordLens[w]; i++) assert.equal(b.segments[i], lay.segments[w]);
      sum += b.wordLens[w];
    }
    assert.equal(sum, T, 'words cover the row');
    for (let i = r * T; i < (r + 1) * T; i++) {
      const sameNext = i + 1 < (r + 1) * T && b.segments[i + 1] === b.segments[i] && b.segments[i] >= 0;
      assert.equal(b.targets[i], sameNext ? b.bytes[i + 1] : -100);
      if (b.targets[i] >= 0) targets++;
      if (b.segments[i] >= 0 && i > r * T && b.segments[i - 1] === b.segments[i]) assert.equal(b.positions[i], b.positions[i - 1] + 1);
      if (b.segments[i] < 0) assert.equal(b.bytes[i], 0);
    }
  }
  assert.equal(targets, b.targetCount);
  if (eos !== null) for (let i = 0; i < b.bytes.length; i++) if (b.bytes[i] === eos) assert.equal(b.targets[i], -100, 'nothing is predicted after the end of a document');
}

test('packing: rows covered by whole words, segments per document piece, next-byte targets; one pass gives back every document', () => {
  const ds = docs(30);
  ds.push({ source: 'long', bytes: enc.encode(randomText(new Rng(3), 200)) }); // longer than a row
  ds.push({ source: 'huge-word', bytes: enc.encode('a' + 'b'.repeat(150) + ' c') }); // a word longer than a row
  for (const eos of [192, null]) {
    const p = new BytePacker(ds, { seqBytes: 64, split: spaceSplit, shuffle: false, eos });
    let seen: number[] = [];
    let rows = 0;
    const rebuilt: number[][] = [];
    while (!p.done) {
      const b = p.next(5);
      if (b.rows === 0) break;
      checkBatch(b, eos);
      // stitch the segments back together in order
      let prev = NaN;
      for (let i = 0; i < b.bytes.length; i++) {
        if (b.segments[i] < 0) continue;
        if (b.segments[i] !== prev) {
          seen = [];
          rebuilt.push(seen);
          prev = b.segments[i];
        }
        seen.push(b.bytes[i]);
      }
      rows += b.rows;
    }
    assert.ok(rows > 10);
    const flat = rebuilt.flat();
    const want: number[] = [];
    for (const d of ds) {
      want.push(...d.bytes);
      if (eos !== null) want.push(eos);
    }
    assert.deepEqual(flat, want, `eos ${eos}: the concatenated segments give back the documents`);
  }
});

test('packing: the position saved after any batch continues the stream exactly, across epochs', () => {
  const ds = docs(12, 5);
  const a = new BytePacker(ds, { seqBytes: 48, split: spaceSplit, seed: 9 });
  const ref: PackedBatch[] = [];
  const positions = [];
  for (let i = 0; i < 40; i++) {
    positions.push(JSON.parse(JSON.stringify(a.position)));
    ref.push(a.next(3));
  }
  assert.ok(a.position.epoch >= 2, 'the test crosses epoch boundaries');
  for (const k of [0, 7, 19, 33]) {
    const b = new BytePacker(ds, { seqBytes: 48, split: spaceSplit, seed: 9 });
    b.setPosition(positions[k]);
    for (let i = k; i < 40; i++) assert.deepEqual(b.next(3), ref[i], `batch ${i} after restoring position ${k}`);
  }
  // another seed gives another order; the same seed the same
  const c = new BytePacker(ds, { seqBytes: 48, split: spaceSplit, seed: 10 });
  assert.notDeepEqual(c.next(3).bytes, ref[0].bytes);
  assert.deepEqual(new BytePacker(ds, { seqBytes: 48, split: spaceSplit, seed: 9 }).next(3), ref[0]);
  // every epoch visits every document once: count EOS bytes of the first two epochs' worth
  const e = new BytePacker(ds, { seqBytes: 48, split: spaceSplit, seed: 9 });
  let eos = 0;
  while (e.position.epoch < 2) {
    const b = e.next(1);
    for (const x of b.bytes) if (x === 192) eos++;
  }
  // (the row that crosses into epoch 2 may already hold a few epoch-2 documents)
  const p2 = e.position;
  assert.ok(eos >= 2 * ds.length && eos <= 2 * ds.length + p2.doc + 1, `${eos} end-of-document bytes for ${ds.length} documents x 2 epochs`);
});

test('train/validation split: seeded, independent of input order, falls back to tails for few documents', () => {
  const ds = docs(200, 2);
  const s1 = splitTrainVal(ds, { valFraction: 0.1, seed: 3 });
  assert.equal(s1.rule, 'documents');
  assert.equal(s1.train.length + s1.val.length, 200);
  assert.ok(s1.val.length > 5 && s1.val.length < 40);
  const rev = splitTrainVal(ds.slice().reverse(), { valFraction: 0.1, seed: 3 });
  assert.deepEqual(new Set(rev.val.map((d) => d.source)), new Set(s1.val.map((d) => d.source)));
  const s2 = splitTrainVal(ds, { valFraction: 0.1, seed: 4 });
  assert.notDeepEqual(s2.val.map((d) => d.source), s1.val.map((d) => d.source));
  const one = [{ source: 'only', bytes: enc.encode(randomText(new Rng(1), 500)) }];
  const s3 = splitTrainVal(one, { valFraction: 0.1, seed: 3 });
  assert.equal(s3.rule, 'tails');
  assert.equal(s3.train[0].bytes.length + s3.val[0].bytes.length, one[0].bytes.length);
  assert.ok(Math.abs(s3.val[0].bytes.length / one[0].bytes.length - 0.1) < 0.03);
  assert.equal(s3.val[0].bytes[0], 0x20, 'cut at a space');
  assert.notEqual(fingerprintDocuments(s1.train), fingerprintDocuments(s2.train));
  assert.equal(fingerprintDocuments(s1.train), fingerprintDocuments(splitTrainVal(ds, { valFraction: 0.1, seed: 3 }).train));
});
