/**
 * Output paths, models never replaced unasked, and damaged checkpoints, through the real binary
 * (issue 16 items 2, 7, 8).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeHATConfig } from '../../src/models/hat/config.js';
import { saveHATModel } from '../../src/models/hat/checkpoint.js';
import { saveCheckpoint } from '../../src/train/index.js';
import { writeGgufFixture } from '../convert/gguf_fixture.js';
import { randomModel, testConfig } from '../hat/util.js';
import { parseFormat, quantizeCheckpoint } from '../../src/compress/index.js';
import { errLines, smallKgModel, tfree } from './run.js';

const root = fs.mkdtempSync(join(tmpdir(), 'tfree-outputs-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const text = join(root, 'text.txt');
fs.writeFileSync(text, Array.from({ length: 60 }, (_, i) => `Line ${i}: the cat sat on the mat.`).join('\n'));
const cfg = join(root, 'cfg');
writeHATConfig(cfg, testConfig({ window: 16 }));
const model = join(root, 'model');
saveHATModel(model, randomModel(testConfig({ window: 16 }), 5, 0.3));
const aFile = join(root, 'a-file');
fs.writeFileSync(aFile, 'x');
const trainArgs = ['--data', text, '--config', join(cfg, 'config.json'), '--steps', '2', '--batch', '1', '--seq-bytes', '64', '--eval-every', '0', '--json'];

function oneLine(args: string[], re: RegExp): void {
  const t0 = Date.now();
  const r = tfree(args);
  assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.err}`);
  const lines = errLines(r.err);
  assert.equal(lines.length, 1, `${args.join(' ')}: ${r.err}`);
  assert.match(lines[0], re, args.join(' '));
  assert.ok(Date.now() - t0 < 20_000, `${args.join(' ')}: checked before the work`);
}

test('train --out over a model folder (also --model X --out X) is refused unless --resume or --overwrite', () => {
  const before = fs.readFileSync(join(model, 'model.safetensors'));
  oneLine(['train', ...trainArgs, '--out', model], /already holds a model \(config\.json\); choose another --out, or pass --overwrite/);
  oneLine(['train', '--data', text, '--model', model, '--out', model, '--steps', '2'], /--model and --out are the same folder/);
  assert.deepEqual(fs.readFileSync(join(model, 'model.safetensors')), before, 'the model is untouched');
  const copy = join(root, 'copy');
  fs.cpSync(model, copy, { recursive: true });
  const r = tfree(['train', ...trainArgs, '--out', copy, '--overwrite']);
  assert.equal(r.code, 0, r.err);
  assert.notDeepEqual(fs.readFileSync(join(copy, 'model.safetensors')), before, '--overwrite replaced it');
  oneLine(['quantize', '--format', 'int8', '--block', '16', '--model', model, '--out', copy], /already holds a model/);
  oneLine(['kg', 'train', '--data', root, '--out', aFile], /a-file exists: pass --overwrite to replace it/);
});

test('output paths under a file, in /proc or /sys are one line before the work, for every command that writes', () => {
  const under = join(aFile, 'x');
  const prompts = join(root, 'prompts.txt');
  fs.writeFileSync(prompts, 'The cat\n');
  const kg = join(root, 'kg');
  assert.equal(tfree(['kg', 'synth', '--out', kg]).code, 0);
  const cases: [string[], RegExp][] = [
    [['train', ...trainArgs, '--out', under], /--out .*a-file\/x: .*a-file is a file, not a folder/],
    [['train', ...trainArgs, '--out', '/proc/tfree-run'], /--out \/proc\/tfree-run: cannot write under \/proc/],
    [['kg', 'synth', '--out', '/sys/tfree'], /cannot write under \/sys/],
    [['kg', 'synth', '--out', under], /is a file, not a folder/],
    [['kg', 'export', '--model', 'none.safetensors', '--out', under], /is a file, not a folder/],
    [['kg', 'train', '--data', kg, '--out', join(under, 'm.safetensors')], /is a file, not a folder/],
    [['quantize', '--format', 'int8', '--model', model, '--out', under], /is a file, not a folder/],
    [['prune', '--sparsity', '0.5', '--model', model, '--out', '/proc/x'], /cannot write under \/proc/],
    [['eval', 'sweep', '--model', model, '--prompts', prompts, '--out', join(under, 's.json')], /is a file, not a folder/],
    [['eval', 'sweep', '--model', model, '--prompts', prompts, '--out', root], /is a folder; give a file name/],
    [['eval', 'dtm', '--model', model, '--compressed', model, '--prompts', prompts, '--report', under], /--report .*is a file, not a folder/],
    [['eval', 'plan', '--model', model, '--prompts', prompts, '--out', '/proc/plans'], /cannot write under \/proc/],
    [['llama', 'train-tokenizer', text, '--out', '/sys/tokenizer.json'], /cannot write under \/sys/],
    [['convert', 'llama-to-hat', '--model', model, '--out', under], /is a file, not a folder/],
  ];
  for (const [args, re] of cases) oneLine(args, re);
});

test('a full disk (ENOSPC) is one line; the last checkpoint stays intact and no *.tmp-PID folder is left', (t) => {
  const mnt = join(root, 'small');
  fs.mkdirSync(mnt);
  // a 500 kB file system: the first checkpoint of this tiny model fits, the second does not
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=500k', 'tmpfs', mnt]);
  if (m.status !== 0) {
    t.skip('cannot mount a small tmpfs here (needs root)');
    return;
  }
  try {
    const out = join(mnt, 'run');
    const r = tfree(['train', ...trainArgs.filter((a) => a !== '--json'), '--steps', '40', '--save-every', '1', '--out', out]);
    assert.equal(r.code, 2, r.err);
    const lines = errLines(r.err).filter((l) => !/^train |HAT |^\s*$/.test(l) && !l.includes('['));
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], /^tfree train: .*ENOSPC: no space left on device/);
    const ck = join(out, 'checkpoints');
    assert.deepEqual(fs.readdirSync(ck).filter((n) => n.includes('.tmp-')), []);
    const latest = JSON.parse(fs.readFileSync(join(ck, 'latest.json'), 'utf8')) as { step: number; dir: string };
    assert.ok(latest.step >= 1);
    assert.ok(fs.existsSync(join(ck, latest.dir, 'state.json')) && fs.existsSync(join(ck, latest.dir, 'optimizer.safetensors')));
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('a read-only folder as --out is one line before the work (train, kg synth, quantize)', (t) => {
  const ro = join(root, 'ro');
  fs.mkdirSync(ro);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro]).status !== 0) {
    t.skip('cannot mount a read-only tmpfs here (needs root)');
    return;
  }
  try {
    oneLine(['train', ...trainArgs, '--out', join(ro, 'run')], /--out .*ro\/run: cannot write in .*ro \(read-only file system\)/);
    oneLine(['kg', 'synth', '--out', join(ro, 'kg')], /cannot write in .*\(read-only file system\)/);
    oneLine(['quantize', '--format', 'int8', '--block', '16', '--model', model, '--out', join(ro, 'q')], /cannot write in .*\(read-only file system\)/);
  } finally {
    spawnSync('umount', [ro]);
  }
});

test('a failed checkpoint write leaves no temp folder and the previous checkpoint current', () => {
  const ck = join(root, 'ck');
  const files = { model: { w: { dtype: 'F32' as const, shape: [2], data: new Float32Array([1, 2]) } }, optimizer: {}, state: { a: 1 } };
  saveCheckpoint(ck, 1, files);
  const bad = { ...files, model: { w: { dtype: 'F32' as const, shape: [2], load: (): Float32Array => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); } } } };
  assert.throws(() => saveCheckpoint(ck, 2, bad as unknown as typeof files), /ENOSPC/);
  assert.deepEqual(fs.readdirSync(ck).sort(), ['latest.json', 'step-00000001']);
});

test('train --resume on a damaged checkpoint: one line naming the file', () => {
  const out = join(root, 'run-damage');
  const r = tfree(['train', ...trainArgs, '--out', out, '--save-every', '1']);
  assert.equal(r.code, 0, r.err);
  const ck = join(out, 'checkpoints');
  const latest = JSON.parse(fs.readFileSync(join(ck, 'latest.json'), 'utf8')) as { dir: string };
  const dir = join(ck, latest.dir);
  const snapshot = fs.mkdtempSync(join(root, 'snap-'));
  fs.cpSync(ck, snapshot, { recursive: true });
  const restore = (): void => {
    fs.rmSync(ck, { recursive: true, force: true });
    fs.cpSync(snapshot, ck, { recursive: true });
  };
  const truncate = (f: string): void => fs.writeFileSync(f, fs.readFileSync(f).subarray(0, Math.floor(fs.statSync(f).size / 2)));
  const damages: [string, () => void, RegExp][] = [
    ['truncated latest.json', () => truncate(join(ck, 'latest.json')), /latest\.json: damaged checkpoint pointer/],
    ['truncated state.json', () => truncate(join(dir, 'state.json')), /state\.json: damaged training state/],
    ['truncated optimizer', () => truncate(join(dir, 'optimizer.safetensors')), /optimizer\.safetensors: damaged/],
    ['missing model', () => fs.rmSync(join(dir, 'model.safetensors')), /model\.safetensors: missing/],
    [
      'flipped header byte',
      () => {
        const f = join(dir, 'model.safetensors');
        const b = fs.readFileSync(f);
        b[9] ^= 0x55;
        fs.writeFileSync(f, b);
      },
      /model\.safetensors: damaged/,
    ],
    ['state without fields', () => fs.writeFileSync(join(dir, 'state.json'), '{"format":"tfree-train-state","version":1}'), /damaged checkpoint|settings differ/],
  ];
  for (const [what, damage, re] of damages) {
    restore();
    damage();
    const res = tfree(['train', ...trainArgs, '--out', out, '--resume']);
    assert.equal(res.code, 2, `${what}: ${res.err}`);
    const lines = errLines(res.err);
    assert.equal(lines.length, 1, `${what}: ${res.err}`);
    assert.match(lines[0], re, what);
  }
});

test('a missing or wrong-kind input (--model, --data) is one line naming the flag, for every command that reads one', () => {
  const none = join(root, 'none');
  const out = join(root, 'in-out');
  const cases: [string[], RegExp][] = [
    [['quantize', '--format', 'int8', '--model', none, '--out', out], /^tfree quantize: --model .*none: no such file or folder$/],
    [['prune', '--sparsity', '0.5', '--model', none, '--out', out], /^tfree prune: --model .*none: no such file or folder$/],
    // magnitude pruning reads a single .safetensors file too (as quantize); Wanda needs the folder's config.json
    [['prune', '--sparsity', '0.5', '--method', 'wanda', '--calib', aFile, '--model', aFile, '--out', out], /^tfree prune: --model .*a-file: is a file; give a folder$/],
    [['convert', 'llama-to-hat', '--model', none, '--out', out], /--model .*none: no such folder$/],
    [['export', 'gguf', '--model', none, '--out', join(root, 'x.gguf')], /--model .*none: no such folder$/],
    [['llama', 'generate', '--model', none, '--prompt', 'x'], /--model .*none: no such folder$/],
    [['train', '--data', none, '--out', out], /^tfree train: --data .*none: no such file or folder$/],
    [['kg', 'stats', '--data', none], /^tfree kg stats: --data .*none: no such folder$/],
    [['kg', 'stats', '--data', aFile], /^tfree kg stats: --data .*a-file: is a file; give a folder$/],
    [['generate', '--model', aFile, '--prompt', 'x'], /^tfree generate: --model .*a-file: is a file; give a folder$/],
    [['serve', '--quantized', none], /^tfree serve: --quantized .*none: no such folder$/],
    [['serve', '--kg', none], /^tfree serve: --kg .*none: no such file or folder$/],
    [['kg', 'curves', '--log', root, '--out', out], /^tfree kg curves: --log .*: is a folder; give a file$/],
  ];
  for (const [args, re] of cases) oneLine(args, re);
  assert.equal(fs.existsSync(out), false, 'nothing written');
});

test('an output that is one of the inputs (any spelling: symlink, ./, a file of the input model) is refused before the work, even with --overwrite', () => {
  const kg = join(root, 'kg-in');
  assert.equal(tfree(['kg', 'synth', '--out', kg]).code, 0);
  const llama = writeGgufFixture(join(root, 'llama-in'), { seed: 3, tied: false }).dir;
  const copy = join(root, 'model-in');
  fs.cpSync(model, copy, { recursive: true });
  const link = join(root, 'model-link');
  fs.symlinkSync(copy, link);
  const prompts = join(root, 'prompts-in.txt');
  fs.writeFileSync(prompts, 'The cat\n');
  const textCopy = join(root, 'text-in.txt');
  fs.copyFileSync(text, textCopy);
  const inputs = [join(copy, 'model.safetensors'), join(llama, 'model.safetensors'), join(llama, 'tokenizer.json'), join(kg, 'train.txt'), prompts, textCopy];
  const before = inputs.map((f) => fs.readFileSync(f));
  const cases: [string[], RegExp][] = [
    // each replaced its input (quantize / prune through a symlink, the others directly)
    [['quantize', '--format', 'int8', '--model', copy, '--out', link, '--overwrite'], /--out .*model-link: is the input .*model-in; writing there would destroy it: choose another --out$/],
    [['prune', '--sparsity', '0.5', '--model', link, '--out', `${copy}/`, '--overwrite'], /--out .*model-in\/: is the input .*model-link;/],
    [['export', 'gguf', '--model', llama, '--out', join(llama, 'model.safetensors'), '--overwrite'], /--out .*model\.safetensors: is a file of the input model .*llama-in;/],
    [['export', 'gguf', '--model', llama, '--out', join(llama, '.', 'tokenizer.json'), '--overwrite'], /is a file of the input model/],
    [['convert', 'llama-to-hat', '--model', llama, '--out', `${llama}/.`, '--overwrite'], /--out .*llama-in\/\.: is the input .*llama-in;/],
    [['kg', 'train', '--data', kg, '--out', join(kg, 'train.txt'), '--overwrite', '--dim', '8', '--epochs', '1'], /--out .*train\.txt: is the input .*train\.txt;/],
    [['llama', 'train-tokenizer', textCopy, '--out', textCopy], /--out .*text-in\.txt: is the input/],
    [['eval', 'sweep', '--model', copy, '--prompts', prompts, '--levels', 'int8', '--max-bytes', '4', '--out', join(link, 'model.safetensors')], /is a file of the input model .*model-in;/],
    [['eval', 'sweep', '--model', copy, '--prompts', prompts, '--levels', 'int8', '--max-bytes', '4', '--out', prompts], /--out .*prompts-in\.txt: is the input/],
  ];
  for (const [args, re] of cases) oneLine(args, re);
  inputs.forEach((f, i) => assert.deepEqual(fs.readFileSync(f), before[i], `${f} is untouched`));
});

test('a file output in a missing folder is written there (the folder is created), not lost after the work; export gguf and kg pack check --out first', () => {
  const ck = join(root, 'kg-ck.safetensors');
  const kg = join(root, 'kg-pack');
  assert.equal(tfree(['kg', 'synth', '--out', kg]).code, 0);
  let r = tfree(['kg', 'train', '--data', kg, '--out', join(root, 'new1', 'deep', 'm.safetensors'), '--dim', '8', '--epochs', '1', '--json']);
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.existsSync(join(root, 'new1', 'deep', 'm.safetensors')));
  fs.copyFileSync(join(root, 'new1', 'deep', 'm.safetensors'), ck);
  r = tfree(['kg', 'pack', '--model', ck, '--out', join(root, 'new2', 'p.safetensors')]);
  assert.equal(r.code, 0, r.err);
  r = tfree(['llama', 'train-tokenizer', text, '--out', join(root, 'new3', 'd', 'tokenizer.json'), '--vocab-size', '280', '--json']);
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.existsSync(join(root, 'new3', 'd', 'tokenizer.json')));
  oneLine(['kg', 'pack', '--model', ck, '--out', '/proc/tfree.safetensors'], /^tfree kg pack: --out \/proc\/tfree\.safetensors: cannot write under \/proc$/);
  oneLine(['kg', 'pack', '--model', ck, '--out', join(aFile, 'p.safetensors')], /^tfree kg pack: --out .*a-file\/p\.safetensors: .*a-file is a file, not a folder$/);
  oneLine(['export', 'gguf', '--model', model, '--out', '/proc/x.gguf'], /^tfree export gguf: --out \/proc\/x\.gguf: cannot write under \/proc$/);
  oneLine(['export', 'gguf', '--model', model, '--out', join(aFile, 'x.gguf')], /^tfree export gguf: --out .*a-file is a file, not a folder$/);
});

test('a --data file too large to read (3 GB, sparse) is one line for eval bpb (it was an internal error) as for train', () => {
  const big = join(root, 'big.txt');
  fs.writeFileSync(big, '');
  fs.truncateSync(big, 3 * 2 ** 30);
  try {
    oneLine(['eval', 'bpb', '--model', model, '--data', big], /^tfree eval bpb: .*big\.txt: cannot read \(ERR_FS_FILE_TOO_LARGE: .*greater than 2 GiB\)$/);
    oneLine(['train', ...trainArgs, '--data', big, '--out', join(root, 'big-run')], /^tfree train: .*big\.txt: cannot read \(ERR_FS_FILE_TOO_LARGE/);
  } finally {
    fs.rmSync(big);
  }
});

test('quantize / prune: a side file that cannot be copied fails the run before the weights are written (no half output, an old --out stays); a completed write equals the library one byte for byte', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tfree-side-'));
  try {
    const src = join(dir, 'model');
    saveHATModel(src, randomModel(testConfig({ window: 16 }), 3, 0.3));
    // the CLI's write (a job under runWriteJob) gives the bytes of the library's synchronous write
    const lib = join(dir, 'lib');
    quantizeCheckpoint(src, lib, parseFormat('int8'));
    const cli = join(dir, 'cli');
    const ok = tfree(['quantize', '--format', 'int8', '--model', src, '--out', cli]);
    assert.equal(ok.code, 0, ok.err);
    assert.deepEqual(fs.readdirSync(cli).sort(), fs.readdirSync(lib).sort());
    for (const n of fs.readdirSync(lib)) assert.ok(fs.readFileSync(join(cli, n)).equals(fs.readFileSync(join(lib, n))), n);
    // a dangling symlink beside the weights: copying it fails (old code: after model.safetensors was written)
    fs.symlinkSync(join(dir, 'nowhere'), join(src, 'generation_config.json'));
    const before = new Map(fs.readdirSync(cli).map((n) => [n, fs.readFileSync(join(cli, n))]));
    for (const [cmd, ...rest] of [['quantize', '--format', 'int8'], ['prune', '--sparsity', '0.5']]) {
      const out = join(dir, `${cmd}-new`);
      const r = tfree([cmd, ...rest, '--model', src, '--out', out]);
      assert.notEqual(r.code, 0, `${cmd}: ${r.err}`);
      assert.equal(fs.existsSync(out), false, `${cmd}: nothing of the failed run stays (${fs.existsSync(out) ? fs.readdirSync(out).join(', ') : ''})`);
      const o = tfree([cmd, ...rest, '--model', src, '--out', cli, '--overwrite']);
      assert.notEqual(o.code, 0, `${cmd}: ${o.err}`);
      assert.deepEqual(fs.readdirSync(cli).sort(), [...before.keys()].sort(), `${cmd}: no file of the failed run in the old --out`);
      for (const [n, b] of before) assert.ok(fs.readFileSync(join(cli, n)).equals(b), `${cmd}: ${n} unchanged`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kg export: a part that cannot be written leaves the old files byte for byte (the parts go to temp names, renamed together), and no new folder', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tfree-kgx-'));
  try {
    const ckpt = smallKgModel(dir);
    const out = join(dir, 'export');
    fs.mkdirSync(join(out, 'entities.tsv'), { recursive: true }); // a folder where the second part goes
    fs.writeFileSync(join(out, 'embeddings.safetensors'), 'old');
    fs.writeFileSync(join(out, 'relations.tsv'), 'old');
    const r = tfree(['kg', 'export', '--model', ckpt, '--out', out, '--overwrite']);
    assert.notEqual(r.code, 0, r.err);
    assert.equal(fs.readFileSync(join(out, 'embeddings.safetensors'), 'utf8'), 'old', 'the old embeddings stay (the old code had replaced them)');
    assert.equal(fs.readFileSync(join(out, 'relations.tsv'), 'utf8'), 'old');
    assert.deepEqual(fs.readdirSync(out).sort(), ['embeddings.safetensors', 'entities.tsv', 'relations.tsv'], 'no temp file left');
    // an export that completes still writes all four files
    const fresh = join(dir, 'fresh');
    const ok = tfree(['kg', 'export', '--model', ckpt, '--out', fresh]);
    assert.equal(ok.code, 0, ok.err);
    assert.ok(['embeddings.safetensors', 'entities.tsv', 'relations.tsv'].every((n) => fs.existsSync(join(fresh, n))));
    assert.ok(!fs.readdirSync(fresh).some((n) => n.includes('.tmp-')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
