import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParamStore, VarBuilder, init } from '../../src/nn/index.js';
import { LlamaLM, generate, loadTokenizer, saveLlama } from '../../src/models/llama/index.js';
import { tmpDir } from './fixture.js';

const MAIN = nodePath.join(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

function tfree(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('tfree llama train-tokenizer and generate', () => {
  const dir = tmpDir('cli');
  const corpus = nodePath.join(dir, 'corpus.txt');
  fs.writeFileSync(corpus, 'the cat sat on the mat. the dog sat on the log. '.repeat(20));
  const train = tfree('llama', 'train-tokenizer', corpus, '--out', nodePath.join(dir, 'tokenizer.json'), '--vocab-size', '300', '--json');
  assert.equal(train.code, 0, train.err);
  const summary = JSON.parse(train.out) as { vocab: number; merges: number };
  assert.ok(summary.merges > 10 && summary.vocab <= 300, train.out);
  const tok = loadTokenizer(dir);
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { rng: 1, defaultInit: init.normal(0.3) }), {
    vocabSize: 300, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, tieWordEmbeddings: true,
  });
  saveLlama(model, dir);
  const gen = tfree('llama', 'generate', '--model', dir, '--prompt', 'the cat', '--max-new-tokens', '6', '--greedy', '--json');
  assert.equal(gen.code, 0, gen.err);
  const res = JSON.parse(gen.out) as { tokens: number[]; text: string; prompt_tokens: number };
  const expected = generate(model, tok.encode('the cat'), { maxNewTokens: 6, stopTokens: [tok.tokenToId('<|endoftext|>') as number] });
  assert.deepEqual(res.tokens, [...expected.tokens]);
  assert.equal(res.text, tok.decode(expected.tokens, { skipSpecialTokens: true }));

  const missing = tfree('llama', 'generate', '--model', nodePath.join(dir, 'nope'), '--prompt', 'x');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^tfree llama generate: --model .*nope: no such folder\n$/);
  const emptyDir = nodePath.join(dir, 'empty');
  fs.mkdirSync(emptyDir, { recursive: true });
  const noConfig = tfree('llama', 'generate', '--model', emptyDir, '--prompt', 'x');
  assert.equal(noConfig.code, 2);
  assert.match(noConfig.err, /^tfree llama generate: .*empty.*config\.json: cannot read: ENOENT\n$/);
  const badP = tfree('llama', 'generate', '--model', dir, '--prompt', 'x', '--top-p', '0', '--temperature', '1');
  assert.equal(badP.code, 2);
  assert.match(badP.err, /--top-p must be a number in \(0, 1\], got 0/);
  assert.equal(tfree('llama', 'frobnicate').code, 2);
});

test('tfree llama train-tokenizer: merges that stop early end the bar at the merges made and the summary says why', () => {
  const dir = tmpDir('cli-early');
  const corpus = nodePath.join(dir, 'corpus.txt');
  // 10 distinct pieces: 17 merges make each one token, far short of the 3839 of --vocab-size 4096
  fs.writeFileSync(corpus, 'the cat sat on the mat. the dog sat on the log. '.repeat(20));
  const out = nodePath.join(dir, 'tokenizer.json');
  const r = tfree('llama', 'train-tokenizer', corpus, '--out', out);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `wrote ${out}: 274 ids (17 merges, the last seen 20 times; 10 distinct pieces)\nmerges stopped early, at 17 of 3839 (--vocab-size 4096): no pair of tokens left to merge (every piece of the text is one token); more text gives more merges\n`);
  // the bar (stderr is not a terminal here: one line per draw) ends at 17/3839, never at 3839/3839
  const bars = r.err.trim().split('\n');
  assert.match(bars[bars.length - 1], /^merges \[\.+\]\s+0% 17\/3839 .*\| stopped early$/);
  assert.doesNotMatch(r.err, /3839\/3839|100%/);
  // --min-frequency: the best pair is seen too rarely
  const f = tfree('llama', 'train-tokenizer', corpus, '--out', out, '--overwrite', '--min-frequency', '30', '--json');
  assert.equal(f.code, 0, f.err);
  const js = JSON.parse(f.out) as { merges: number; target_merges: number; stop: string; last_merge_count: number };
  assert.deepEqual([js.merges, js.target_merges, js.stop, js.last_merge_count], [9, 3839, 'min_frequency', 40]);
  const m = tfree('llama', 'train-tokenizer', corpus, '--out', out, '--overwrite', '--min-frequency', '1000');
  assert.match(m.out, /\(0 merges; 10 distinct pieces\)\nmerges stopped early, at 0 of 3839 \(--vocab-size 4096\): no pair of tokens seen 1000 times or more \(--min-frequency 1000\); more text or a lower --min-frequency gives more merges\n$/);
  // reached: the bar is full and nothing is said
  const v = tfree('llama', 'train-tokenizer', corpus, '--out', out, '--overwrite', '--vocab-size', '260', '--special', '');
  assert.equal(v.code, 0, v.err);
  assert.equal(v.out, `wrote ${out}: 260 ids (4 merges, the last seen 79 times; 10 distinct pieces)\n`);
  assert.match(v.err, /100% 4\/4/);
});

test('tfree llama train-tokenizer never replaces an existing --out unasked (a model folder\'s tokenizer.json)', () => {
  const dir = tmpDir('cli-ow');
  const corpus = nodePath.join(dir, 'corpus.txt');
  fs.writeFileSync(corpus, 'the cat sat on the mat. the dog sat on the log. '.repeat(20));
  const out = nodePath.join(dir, 'tokenizer.json');
  fs.writeFileSync(out, '{"the model\'s own": true}\n');
  const r = tfree('llama', 'train-tokenizer', corpus, '--out', out, '--vocab-size', '300');
  assert.equal(r.code, 2);
  assert.equal(r.err, `tfree llama train-tokenizer: --out ${out} exists; pass --overwrite to replace it, or choose another --out\n`);
  assert.equal(fs.readFileSync(out, 'utf8'), '{"the model\'s own": true}\n');
  const ow = tfree('llama', 'train-tokenizer', corpus, '--out', out, '--vocab-size', '300', '--overwrite', '--json');
  assert.equal(ow.code, 0, ow.err);
  assert.equal(loadTokenizer(out).vocabSize, (JSON.parse(ow.out) as { vocab: number }).vocab);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('tfree llama train-tokenizer: a missing or folder input text is one line, exit 2, nothing written', () => {
  const dir = tmpDir('cli-in');
  const out = nodePath.join(dir, 'tok.json');
  const missing = nodePath.join(dir, 'nope.txt');
  const r = tfree('llama', 'train-tokenizer', missing, '--out', out, '--vocab-size', '300');
  assert.equal(r.code, 2);
  assert.equal(r.err, `tfree llama train-tokenizer: text file ${missing}: no such file\n`);
  const d = tfree('llama', 'train-tokenizer', dir, '--out', out, '--vocab-size', '300');
  assert.equal(d.code, 2);
  assert.equal(d.err, `tfree llama train-tokenizer: text file ${dir}: is a folder; give a file\n`);
  assert.equal(fs.existsSync(out), false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('tfree llama generate: a missing tokenizer.json and a --tokenizer that is not JSON are one line each', () => {
  const dir = tmpDir('cli-tok');
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { rng: 1, defaultInit: init.normal(0.3) }), {
    vocabSize: 300, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, tieWordEmbeddings: true,
  });
  saveLlama(model, dir);
  // it said 'DIR/tokenizer.json: cannot read: ENOENT'
  const none = tfree('llama', 'generate', '--model', dir, '--prompt', 'x');
  assert.equal(none.code, 2);
  assert.equal(none.err, `tfree llama generate: --model ${dir} has no tokenizer.json; give one with --tokenizer PATH (tfree llama train-tokenizer makes one)\n`);
  // JSON.parse quotes the start of the file with its newlines: the message spanned three lines
  const text = nodePath.join(dir, 'notes.txt');
  fs.writeFileSync(text, '# notes\n\nnot a tokenizer\n');
  const bad = tfree('llama', 'generate', '--model', dir, '--prompt', 'x', '--tokenizer', text);
  assert.equal(bad.code, 2);
  assert.equal(bad.err.split('\n').length, 2, bad.err);
  assert.match(bad.err, /^tfree llama generate: .*notes\.txt: not valid JSON: .*"# notes\\n\\n/);
  fs.rmSync(dir, { recursive: true, force: true });
});
