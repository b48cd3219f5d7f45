/**
 * The trainer's packed batches as HAT batches: the HAT layout derived from them must agree with
 * the packer on targets, document segments and word boundaries, and the HAT loss through the
 * trainer adapter must equal the loss of the same rows built word by word.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/nn/index.js';
import { BytePacker, wordLayout, type TextDocument } from '../../src/io/index.js';
import { makeHATConfig } from '../../src/models/hat/config.js';
import { HATModel, batchFromWords, prepareLayout, type WordRow } from '../../src/models/hat/model.js';
import { splitBytes } from '../../src/models/hat/splitter.js';
import { hatBatch, hatTrainable } from '../../src/models/hat/train.js';

const enc = new TextEncoder();

function docs(n: number): TextDocument[] {
  const rng = new Rng(4);
  const words = ['Hello,', 'world!', 'über', 'naïve', 'camelCase', '3.14', '日本語', 'a', 'zebra', '\n', '  '];
  return Array.from({ length: n }, (_, i) => ({ source: `d${i}`, bytes: enc.encode(Array.from({ length: 2 + rng.int(30) }, () => words[rng.int(words.length)]).join(' ')) }));
}

const cfg = makeHATConfig({
  byteHidden: 16,
  byteHeads: 2,
  byteKvHeads: 1,
  byteIntermediate: 24,
  encoderLayers: 1,
  decoderLayers: 1,
  backboneHidden: 24,
  backboneHeads: 2,
  backboneKvHeads: 1,
  backboneIntermediate: 32,
  backboneLayers: 1,
  slidingWindow: 16,
});

test('packed batches map onto HAT batches: same targets, words and documents; same loss as word-built rows', () => {
  const split = (b: Uint8Array): number[] => splitBytes(b, { maxWordSize: cfg.max_word_size }).map((w) => w.length);
  const packer = new BytePacker(docs(20), { seqBytes: 48, split, seed: 2 });
  const model = new HATModel(cfg, { seed: 3 });
  const trainable = hatTrainable(model, 'F32');
  for (let k = 0; k < 4; k++) {
    const b = packer.next(3);
    const hb = hatBatch(b);
    const L = prepareLayout(hb);
    assert.deepEqual(Array.from(L.targets), Array.from(b.targets), 'next-byte targets agree');
    // the same rows, built from their words with one document id per segment
    const lay = wordLayout(b);
    const rows: WordRow[] = [];
    for (let r = 0; r < b.rows; r++) {
      const words: Uint8Array[] = [];
      const ids: number[] = [];
      for (let w = b.rowWords[r]; w < b.rowWords[r + 1]; w++) {
        if (lay.segments[w] < 0) continue; // padding
        words.push(Uint8Array.from(b.bytes.subarray(lay.starts[w], lay.starts[w] + b.wordLens[w])));
        ids.push(lay.segments[w]);
      }
      rows.push({ words, docs: ids });
    }
    const ref = model.loss(batchFromWords(rows, b.seqBytes));
    const got = trainable.loss(b, { step: 0, training: true, rng: new Rng(0) });
    assert.equal(got.bytes, b.targetCount);
    assert.equal(ref.count, b.targetCount);
    assert.ok(Math.abs(got.loss.item() - ref.loss.item()) < 1e-6, `${got.loss.item()} vs ${ref.loss.item()}`);
  }
});
