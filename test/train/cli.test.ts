/** `tfree train` input errors: one line naming the file and where, exit code 2, nothing written. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const bundled = fileURLToPath(new URL('../../../models/default', import.meta.url));

test('tfree train: bad inputs give a one-line error naming the file and offset, exit 2, no output folder', () => {
  const d = fs.mkdtempSync(join(tmpdir(), 'tfree-traincli-'));
  try {
    fs.writeFileSync(join(d, 'bad.jsonl'), '{"text": "fine"}\n{"text": "fine"}\n{"text" "oops"}\n');
    fs.writeFileSync(join(d, 'notext.jsonl'), '{"body": "x"}\n');
    // one document: whichever side its hash picks, the split falls back to tails and finds none (with two,
    // whether one was held out depended on the hash of the random temp folder's path: a flaky test)
    fs.writeFileSync(join(d, 'tiny.jsonl'), '{"text": "hello there"}\n');
    fs.writeFileSync(join(d, 'latin1.txt'), Buffer.from([0x48, 0x69, 0x20, 0xe9, 0x74, 0xe9]));
    fs.symlinkSync(d, join(d, 'link'));
    const cases: [string[], RegExp][] = [
      [['--data', join(d, 'bad.jsonl')], /bad\.jsonl:3: invalid JSON/],
      [['--data', join(d, 'notext.jsonl')], /notext\.jsonl:1: missing "text" field/],
      [['--data', join(d, 'latin1.txt')], /latin1\.txt: invalid UTF-8 at byte offset 3/],
      [['--data', join(d, 'missing.txt')], /--data .*missing\.txt: no such file or folder$/],
      [['--data', join(d, 'latin1.txt'), '--preset', 'huge'], /unknown preset "huge"/],
      [['--data', join(d, 'bad.jsonl'), '--resume'], /--resume: no checkpoint in/],
      // one source of the model's shape (--preset / --config were ignored beside --model)
      [['--data', join(d, 'latin1.txt'), '--model', bundled, '--preset', 'small'], /--model and --preset both give the model's shape; give one/],
      [['--data', join(d, 'latin1.txt'), '--config', join(bundled, 'config.json'), '--preset', 'small'], /--config and --preset both give/],
      // the packed QAT model over the f32 one in --out, or over the model it starts from (both were written, exit 0)
      [['--data', join(d, 'latin1.txt'), '--model', bundled, '--qat', 'int8', '--qat-out', join(d, 'out')], /--qat-out .*out: is --out, where the f32 model goes/],
      // the same folder spelled through a symlink, before it exists (was compared by realpath, which fails for a missing path, then as spelled)
      [['--data', join(d, 'latin1.txt'), '--model', bundled, '--qat', 'int8', '--qat-out', join(d, 'link', 'out')], /--qat-out .*link\/out: is --out, where the f32 model goes/],
      [['--data', join(d, 'latin1.txt'), '--model', bundled, '--qat', 'int8', '--qat-out', bundled], /--qat-out .*: is the input .*; writing there would destroy it/],
      [['--data', join(d, 'latin1.txt'), '--qat-block', '32', '--qat-out', join(d, 'q')], /--qat-out, --qat-block need --qat FORMAT/],
      // the flag is named (was 'missing.json: no such file or folder', 'latin1.txt/config.json: no such file or folder')
      [['--data', join(d, 'tiny.jsonl')], /too little text to hold out 5\.0% for validation; --val-fraction 0 trains on all of it without validation$/],
      [['--data', join(d, 'latin1.txt'), '--config', join(d, 'missing.json')], /^tfree train: --config .*missing\.json: no such file or folder$/],
      [['--data', join(d, 'latin1.txt'), '--model', join(d, 'latin1.txt')], /^tfree train: --model .*latin1\.txt: is a file; give a folder$/],
    ];
    for (const [extra, re] of cases) {
      const out = join(d, 'out');
      const r = spawnSync(process.execPath, [cli, 'train', '--out', out, '--steps', '2', ...extra], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line, no stack trace: ${r.stderr}`);
      assert.match(lines[0], re);
      assert.equal(fs.existsSync(join(out, 'checkpoints')), false);
    }
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('tfree train --model DIR: the first line names the model started from, not the --preset default', () => {
  const d = fs.mkdtempSync(join(tmpdir(), 'tfree-traincli-'));
  try {
    fs.writeFileSync(join(d, 'a.txt'), 'The cat sat on the mat. '.repeat(20));
    const r = spawnSync(process.execPath, [cli, 'train', '--data', join(d, 'a.txt'), '--model', bundled, '--out', join(d, 'out'), '--steps', '1', '--batch', '1', '--seq-bytes', '64'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stderr.startsWith(`HAT ${bundled}: 2,571,392 parameters;`), r.stderr);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});
