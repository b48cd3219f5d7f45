/**
 * Token-level DTM (src/eval/token_dtm.ts): tokens grouped into words, FDT = N for the base model
 * itself, and a perturbed model diverging, against the direct definition.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ParamStore, VarBuilder, init } from '../../src/nn/index.js';
import { HFTokenizer, LlamaLM, bpeTokenizerJson, trainBpe } from '../../src/models/llama/index.js';
import { splitBytes } from '../../src/models/hat/splitter.js';
import { TokenDtmEvaluator, tokenTeacherForced, tokensPerWord } from '../../src/eval/token_dtm.js';

const TEXTS = ['the jury said that the city was careful and the people of the city said so', 'in the morning the council met and the members said that the roads were bad'];

function model(seed: number, vocab: number): LlamaLM {
  return new LlamaLM(new VarBuilder(new ParamStore(), { rng: seed, defaultInit: init.normal(0.2) }), { vocabSize: vocab, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, numKvHeads: 2, tieWordEmbeddings: true });
}

test('tokensPerWord: a token belongs to the word of its first byte; tokenless words merge', () => {
  const tok = new HFTokenizer(bpeTokenizerJson(trainBpe(TEXTS, { vocabSize: 300 })));
  const ids = tok.encode(' the city said');
  const lens = splitBytes(tok.decodeBytes(ids), { maxWordSize: 100 }).map((w) => w.length);
  const per = tokensPerWord(tok, ids, lens);
  assert.equal(per.reduce((a, b) => a + b, 0), ids.length);
  assert.equal(per.length, 3);
  // byte-level ids (one token per byte): every word gets its length in tokens
  const bytes = new TextEncoder().encode(' ab cd');
  const byteIds = Array.from(bytes, (b) => tok.encodeBytes(Uint8Array.of(b))[0]);
  assert.deepEqual(tokensPerWord(tok, byteIds, [3, 3]), [3, 3]);
  // a token spanning two words counts for the first; the second word has no token of its own and merges
  const the = tok.encode(' the');
  assert.equal(the.length, 1, '" the" is one token of this BPE');
  assert.deepEqual(tokensPerWord(tok, [the[0], byteIds[1], byteIds[2]], [2, 2, 2]), [1, 2]);
});

test('token DTM: the base model against itself gives FDT = N; another model matches the direct definition', () => {
  const tok = new HFTokenizer(bpeTokenizerJson(trainBpe(TEXTS, { vocabSize: 300 })));
  const base = model(1, tok.vocabSize);
  const words = (b: Uint8Array): number[] => splitBytes(b, { maxWordSize: 100 }).map((w) => w.length);
  const ev = new TokenDtmEvaluator(base, tok, ['the jury said', 'in the morning'], 12, words);
  const self = ev.evaluate(base);
  assert.equal(self.tokens.fdt_mean, 12);
  assert.equal(self.tokens.sdt_share, 0);
  assert.equal(self.base_consistency, 1);
  const other = model(2, tok.vocabSize);
  const r = ev.evaluate(other);
  const a = tokenTeacherForced(base, ev.refs);
  const b = tokenTeacherForced(other, ev.refs);
  const fdts = a.map((x, i) => {
    const k = x.argmax.findIndex((v, t) => v !== b[i].argmax[t]);
    return k < 0 ? 12 : k;
  });
  assert.deepEqual(r.fdt_tokens, fdts);
  assert.ok(r.tokens.fdt_mean < 12, 'a different model diverges');
  assert.ok(r.kl_bits > 0);
});
