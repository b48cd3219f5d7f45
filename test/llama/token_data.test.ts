/**
 * The token-level training path on byte-packed text (src/models/llama/token_data.ts): token rows
 * from packed batches, the per-byte loss against a float64 hand computation, loss decrease under
 * the generic trainer, and the per-byte / per-word scorer against a direct computation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ParamStore, VarBuilder, init } from '../../src/nn/index.js';
import { noGrad } from '../../src/tensor/index.js';
import { BytePacker, type TextDocument } from '../../src/io/index.js';
import { Trainer } from '../../src/train/index.js';
import { HatSplitter } from '../../src/models/hat/splitter.js';
import {
  HFTokenizer,
  LlamaLM,
  TokenPieces,
  bpeTokenizerJson,
  evaluateTokenText,
  llamaTrainable,
  perByteLoss,
  scoreTokenContinuations,
  tokenBatchFromPacked,
  trainBpe,
} from '../../src/models/llama/index.js';
import { tmpDir } from './fixture.js';

const TEXTS = [
  'The jury said that the city had been careful. The jury praised the city and the people of the city.',
  'In the morning the council met again; the members said that the budget was not enough for the roads.',
  'She said the report was late, but the council read it and the jury agreed with the report in the end.',
];
const enc = new TextEncoder();
const docs: TextDocument[] = TEXTS.map((t, i) => ({ source: `d${i}`, bytes: enc.encode(t) }));

function setup(): { tok: HFTokenizer; pieces: TokenPieces; model: LlamaLM } {
  const tok = new HFTokenizer(bpeTokenizerJson(trainBpe(TEXTS, { vocabSize: 300, specialTokens: ['<|endoftext|>'] })));
  const pieces = new TokenPieces(tok, { eosId: tok.specialTokens.get('<|endoftext|>') as number });
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { rng: 4, defaultInit: init.normal(0.1) }), {
    vocabSize: tok.vocabSize,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    tieWordEmbeddings: true,
  });
  return { tok, pieces, model };
}

test('token rows of a packed batch: the tokens spell the packed bytes; targets stay inside a segment', () => {
  const { tok, pieces } = setup();
  const packer = new BytePacker(docs, { seqBytes: 64, split: pieces.split, shuffle: false });
  const b = packer.next(4);
  const p = tokenBatchFromPacked(b, pieces);
  const { rows, seqLen: T, ids, targets } = p.batch;
  const segments = p.batch.segments as Int32Array;
  assert.equal(rows, b.rows);
  let tokens = 0;
  let bytes = 0;
  let sawEos = false;
  for (let r = 0; r < rows; r++) {
    // the row's non-padding bytes are the concatenation of its tokens' bytes (eos = byte 192)
    const spelled: number[] = [];
    for (let t = 0; t < T; t++) {
      const i = r * T + t;
      if (segments[i] < 0) continue;
      if (ids[i] === pieces.eosId) {
        spelled.push(192);
        sawEos = true;
      } else spelled.push(...tok.tokenBytes(ids[i]));
      if (targets[i] !== -100) {
        assert.equal(targets[i], ids[i + 1], 'target = next token');
        assert.equal(segments[i + 1], segments[i], 'target in the same segment');
        tokens++;
        bytes += pieces.length(ids[i + 1]);
      } else if (t + 1 < T) assert.ok(segments[i + 1] !== segments[i], 'only the segment end is not predicted');
    }
    const packed = Array.from(b.bytes.subarray(r * b.seqBytes, (r + 1) * b.seqBytes)).filter((_, k) => b.segments[r * b.seqBytes + k] >= 0);
    assert.deepEqual(spelled, packed);
  }
  assert.ok(sawEos, 'the end-of-document byte maps to the end-of-text token');
  assert.equal(p.tokens, tokens);
  assert.equal(p.bytes, bytes);
  assert.ok(p.bytes > p.tokens, 'tokens hold several bytes on average');
});

test('per-byte loss equals a float64 hand computation: sum of -ln p(token) / bytes of the predicted tokens', () => {
  const { pieces, model } = setup();
  const b = new BytePacker(docs, { seqBytes: 48, split: pieces.split, shuffle: false }).next(3);
  const p = tokenBatchFromPacked(b, pieces);
  const { loss, bytes } = noGrad(() => perByteLoss(model, p));
  const logits = noGrad(() => model.forward(p.batch.ids, p.batch.rows, p.batch.seqLen, { segments: p.batch.segments, positions: p.batch.positions })).f32();
  const V = model.cfg.vocabSize;
  let nats = 0;
  let nb = 0;
  p.batch.targets.forEach((y, i) => {
    if (y === -100) return;
    const row = Array.from(logits.subarray(i * V, (i + 1) * V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    nats += lse - row[y];
    nb += pieces.length(y);
  });
  assert.equal(bytes, nb);
  const want = nats / nb;
  assert.ok(Math.abs(loss.item() - want) < 1e-4 * Math.max(1, want), `loss ${loss.item()} vs ${want}`);
  // per byte, not per token: the per-token mean is larger by bytes / tokens
  assert.ok(Math.abs(loss.item() * (p.bytes / p.tokens) - nats / p.tokens) < 1e-3);
});

test('the trainer lowers the per-byte loss of the token model', () => {
  const { pieces, model } = setup();
  const dir = tmpDir('tokentrain');
  try {
    const tr = new Trainer({
      model: llamaTrainable(model, pieces),
      settings: { steps: 25, batchRows: 2, accum: 1, lr: 1e-2, warmup: 2, minLrRatio: 0.1, weightDecay: 0, betas: [0.9, 0.95], eps: 1e-8, clip: 1, evalEvery: 0, evalBytes: 0, saveEvery: 0, seed: 1 },
      train: new BytePacker(docs, { seqBytes: 64, split: pieces.split, seed: 2 }),
      makeVal: () => new BytePacker(docs, { seqBytes: 64, split: pieces.split, shuffle: false }),
      outDir: dir,
    });
    const before = tr.evaluate(0);
    tr.runAll();
    const after = tr.log[tr.log.length - 1].valBpb as number;
    assert.ok(after < before - 0.5, `validation bpb ${before} -> ${after}`);
    assert.ok(fs.existsSync(nodePath.join(dir, 'model.safetensors')) && fs.existsSync(nodePath.join(dir, 'config.json')), 'saved as a HF Llama folder');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluateTokenText: bits per byte and word accuracy equal a direct computation on one chunk', () => {
  const { tok, model } = setup();
  const splitter = new HatSplitter();
  const text = TEXTS[0];
  const r = evaluateTokenText(model, tok, splitter, [text], { contextBytes: 4096 });
  const ids = tok.encode(text);
  const logits = noGrad(() => model.forward(ids, 1, ids.length)).f32();
  const V = model.cfg.vocabSize;
  let nats = 0;
  let bytes = 0;
  const hit: boolean[] = [false];
  const start = [0];
  for (let t = 0; t < ids.length; t++) start.push(start[t] + tok.tokenBytes(ids[t]).length);
  for (let t = 1; t < ids.length; t++) {
    const row = Array.from(logits.subarray((t - 1) * V, t * V));
    const m = Math.max(...row);
    nats += m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) - row[ids[t]];
    bytes += start[t + 1] - start[t];
    hit.push(row.indexOf(m) === ids[t]);
  }
  assert.equal(r.predictedBytes, bytes);
  assert.ok(Math.abs(r.bitsPerByte - nats / bytes / Math.LN2) < 1e-6);
  // words: all but the first; correct iff every token overlapping it is predicted and right
  const words = splitter.encode(text);
  let s = words[0].length;
  let correct = 0;
  for (const w of words.slice(1)) {
    const e = s + w.length;
    let ok = true;
    for (let t = 0; t < ids.length; t++) if (start[t] < e && start[t + 1] > s && !hit[t]) ok = false;
    if (ok) correct++;
    s = e;
  }
  assert.equal(r.words, words.length - 1);
  assert.equal(r.correctWords, correct);
  // continuation scores: the true continuation's log-probability equals the sum over its tokens
  const [sc] = scoreTokenContinuations(model, tok, 'The jury said', [' that the city']);
  const full = tok.encode('The jury said').length;
  const all = Int32Array.from([...tok.encode('The jury said'), ...tok.encode(' that the city')]);
  const lg = noGrad(() => model.forward(all, 1, all.length)).f32();
  let lp = 0;
  for (let t = full; t < all.length; t++) {
    const row = Array.from(lg.subarray((t - 1) * V, t * V));
    const m = Math.max(...row);
    lp += row[all[t]] - m - Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
  }
  assert.ok(Math.abs(sc.logprob - lp) < 1e-6);
  assert.equal(sc.bytes, ' that the city'.length);
});
