/**
 * Multi-file outputs of the real binary (quantize / prune --overwrite, kg export --overwrite): a
 * rename that fails while the files are put into place leaves the complete old output, never new
 * weights beside old files. The failure is injected with a preload that makes fs.renameSync fail
 * (EIO) once, for the first rename onto a file of that name.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { saveHATModel } from '../../src/models/hat/checkpoint.js';
import { testConfig, randomModel } from '../hat/util.js';
import { smallKgModel, tfree } from './run.js';

const root = fs.mkdtempSync(join(tmpdir(), 'tfree-staged-cli-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const hook = join(root, 'fail-rename.cjs');
fs.writeFileSync(
  hook,
  `const fs = require('node:fs');
const path = require('node:path');
const name = process.env.TFREE_TEST_FAIL_RENAME;
const rename = fs.renameSync;
let failed = false;
fs.renameSync = function (from, to) {
  if (!failed && path.basename(String(to)) === name) {
    failed = true;
    throw Object.assign(new Error('EIO: i/o error (injected by the test), rename ' + from + ' -> ' + to), { code: 'EIO' });
  }
  return rename.call(this, from, to);
};
require('node:module').syncBuiltinESMExports();
`,
);
const failingRename = (name: string): Record<string, string> => ({ NODE_OPTIONS: `--require ${hook}`, TFREE_TEST_FAIL_RENAME: name });

const files = (dir: string): Map<string, Buffer> => new Map(fs.readdirSync(dir).sort().map((n) => [n, fs.readFileSync(join(dir, n))]));

function assertSame(dir: string, before: Map<string, Buffer>, what: string): void {
  const now = files(dir);
  assert.deepEqual([...now.keys()], [...before.keys()], `${what}: the same files, no temp file`);
  for (const [n, b] of before) assert.ok(now.get(n)?.equals(b), `${what}: ${n} is the old one`);
}

test('quantize / prune --overwrite: a rename failing after the weights were put in place leaves the old output, complete', () => {
  const src = join(root, 'model');
  saveHATModel(src, randomModel(testConfig({ window: 16 }), 3, 0.3));
  fs.writeFileSync(join(src, 'tokenizer.json'), '{}');
  for (const [cmd, first, second] of [
    ['quantize', ['--format', 'int8'], ['--format', 'int4']],
    ['prune', ['--sparsity', '0.3'], ['--sparsity', '0.6']],
  ] as const) {
    const out = join(root, `${cmd}-out`);
    const r0 = tfree([cmd, ...first, '--model', src, '--out', out]);
    assert.equal(r0.code, 0, r0.err);
    const before = files(out);
    // tokenizer.json is put in place last (before: after the weights and config.json)
    const r = tfree([cmd, ...second, '--model', src, '--out', out, '--overwrite'], { env: failingRename('tokenizer.json') });
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, new RegExp(`(^|\\n)tfree ${cmd}: .*tokenizer\\.json: write failed: EIO: i/o error \\(injected by the test\\).*; no file was replaced: .* holds its old files, unchanged\\n$`));
    assertSame(out, before, cmd);
    // the same run without the failure replaces the output
    const ok = tfree([cmd, ...second, '--model', src, '--out', out, '--overwrite']);
    assert.equal(ok.code, 0, ok.err);
    assert.ok(!files(out).get('model.safetensors')?.equals(before.get('model.safetensors') as Buffer), `${cmd}: new weights`);
  }
});

test('kg export --overwrite: a rename failing at the third file leaves the four old files; a model without time bumps removes the old times.tsv', () => {
  fs.mkdirSync(join(root, 'kg'));
  const ckpt = smallKgModel(join(root, 'kg'));
  const out = join(root, 'kg-export');
  const r0 = tfree(['kg', 'export', '--model', ckpt, '--out', out]);
  assert.equal(r0.code, 0, r0.err);
  // an older export's files (as from another model), which the failed run must leave as they are
  for (const n of fs.readdirSync(out)) fs.appendFileSync(join(out, n), 'old\n');
  const before = files(out);
  assert.deepEqual([...before.keys()], ['embeddings.safetensors', 'entities.tsv', 'relations.tsv', 'times.tsv']);
  const r = tfree(['kg', 'export', '--model', ckpt, '--out', out, '--overwrite'], { env: failingRename('relations.tsv') });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /^tfree kg export: .*relations\.tsv: write failed: EIO: i\/o error \(injected by the test\).*; no file was replaced: .* holds its old files, unchanged\n$/);
  assertSame(out, before, 'kg export');
  const ok = tfree(['kg', 'export', '--model', ckpt, '--out', out, '--overwrite']);
  assert.equal(ok.code, 0, ok.err);
  for (const [n, b] of files(join(root, 'kg-export'))) assert.ok(!b.equals(before.get(n) as Buffer), `${n} replaced`);
  // the export of a model without time bumps (boxe) over it removes its times.tsv (it stayed, beside the other model's files)
  const data = join(root, 'kg-data-boxe');
  assert.equal(tfree(['kg', 'synth', '--out', data]).code, 0);
  const boxe = join(root, 'kg-boxe.safetensors');
  const t = tfree(['kg', 'train', '--data', data, '--out', boxe, '--arch', 'boxe', '--dim', '8', '--epochs', '1', '--batch', '16', '--negatives', '4', '--valid-every', '0', '--json']);
  assert.equal(t.code, 0, t.err);
  const r2 = tfree(['kg', 'export', '--model', boxe, '--out', out, '--overwrite']);
  assert.equal(r2.code, 0, r2.err);
  assert.deepEqual(fs.readdirSync(out).sort(), ['embeddings.safetensors', 'entities.tsv', 'relations.tsv']);
});

test('quantize / prune --overwrite of a folder holding a sharded model: its index and shards go with it (the folder held both, and no loader took it)', () => {
  const src = join(root, 'model-shards-src');
  saveHATModel(src, randomModel(testConfig({ window: 16 }), 3, 0.3));
  for (const [cmd, ...rest] of [['quantize', '--format', 'int8'], ['prune', '--sparsity', '0.5']]) {
    const out = join(root, `${cmd}-over-shards`);
    const s = tfree(['synth-model', '--like', 'hat-small', '--out', out, '--shard-gb', '0.02', '--quiet']);
    assert.equal(s.code, 0, s.err);
    fs.writeFileSync(join(out, 'notes.txt'), 'mine');
    assert.ok(fs.readdirSync(out).includes('model.safetensors.index.json'));
    const r = tfree([cmd, ...rest, '--model', src, '--out', out, '--overwrite']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(fs.readdirSync(out).sort(), ['config.json', 'model.safetensors', 'notes.txt'], `${cmd}: no old index or shard`);
    const i = tfree(['inspect', out, '--json']);
    assert.equal(i.code, 0, `${cmd}: ${i.err}`);
  }
});
