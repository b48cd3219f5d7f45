/** Multi-file outputs written all or nothing (src/io/staged.ts). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fsMod from 'node:fs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { syncBuiltinESMExports } from 'node:module';
import { SafetensorsError, StagedOutput, writeStaged, writeStagedJob, runToEnd } from '../../src/io/index.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfree-staged-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const NAMES = ['weights.bin', 'config.json', 'vocab.tsv', 'extra.txt'];

/** The folder's files and their text. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .sort()
      .map((n) => [n, fs.readFileSync(path.join(dir, n), 'utf8')]),
  );
}

/** Runs `fn` with fs.renameSync failing (EIO) once, for the first rename onto a file named `name`. */
function withFailingRename<T>(name: string, fn: () => T): T {
  const orig = fsMod.renameSync;
  let failed = false;
  fsMod.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
    if (!failed && path.basename(String(to)) === name) {
      failed = true;
      throw Object.assign(new Error(`EIO: i/o error, rename '${String(from)}' -> '${String(to)}'`), { code: 'EIO' });
    }
    orig(from, to);
  }) as typeof fsMod.renameSync;
  syncBuiltinESMExports();
  try {
    return fn();
  } finally {
    fsMod.renameSync = orig;
    syncBuiltinESMExports();
  }
}

const writeAll = (tag: string) => (out: StagedOutput) => {
  for (const n of NAMES) fs.writeFileSync(out.part(n), `${tag} ${n}`);
  return out.names;
};

function oldOutput(name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  for (const n of NAMES) fs.writeFileSync(path.join(dir, n), `old ${n}`);
  fs.writeFileSync(path.join(dir, 'notes.md'), 'not part of the output');
  return dir;
}

test('writeStaged: every part is renamed into place; no temp or kept old file stays', () => {
  const dir = oldOutput('replace');
  assert.deepEqual(writeStaged(dir, writeAll('new')), NAMES);
  assert.deepEqual(contents(dir), { ...Object.fromEntries(NAMES.map((n) => [n, `new ${n}`])), 'notes.md': 'not part of the output' });
  const fresh = path.join(root, 'fresh', 'out');
  writeStaged(fresh, writeAll('new'));
  assert.deepEqual(Object.keys(contents(fresh)), [...NAMES].sort());
});

test('writeStaged: a rename that fails after others were done gives the old output back, complete, and says so', () => {
  const dir = oldOutput('undo');
  const before = contents(dir);
  // the third rename fails: weights.bin and config.json were already replaced
  assert.throws(
    () => withFailingRename('vocab.tsv', () => writeStaged(dir, writeAll('new'))),
    (e: unknown) => e instanceof SafetensorsError && e.message === `${path.join(dir, 'vocab.tsv')}: write failed: EIO: i/o error, rename '${path.join(dir, 'vocab.tsv')}.tmp-${process.pid}-part' -> '${path.join(dir, 'vocab.tsv')}'; no file was replaced: ${dir} holds its old files, unchanged`,
  );
  assert.deepEqual(contents(dir), before, 'the old files, byte for byte, and no temp file');
  // a fresh folder: the files this output had placed are removed
  const fresh = path.join(root, 'undo-fresh');
  assert.throws(() => withFailingRename('extra.txt', () => writeStaged(fresh, writeAll('new'))), /extra\.txt: write failed: EIO.*; no file of the new output was kept$/);
  assert.deepEqual(contents(fresh), {});
});

test('writeStaged: a destination that is a folder fails before any rename; a failing writer leaves no part', () => {
  const dir = oldOutput('folder');
  fs.rmSync(path.join(dir, 'extra.txt'));
  fs.mkdirSync(path.join(dir, 'extra.txt', 'inside'), { recursive: true });
  const files = (): string[] => fs.readdirSync(dir).sort();
  const before = files();
  assert.throws(() => writeStaged(dir, writeAll('new')), /extra\.txt: write failed: it is a folder; no file was replaced$/);
  assert.deepEqual(files(), before);
  for (const n of NAMES.slice(0, 3)) assert.equal(fs.readFileSync(path.join(dir, n), 'utf8'), `old ${n}`);
  assert.throws(
    () =>
      writeStaged(dir, (out) => {
        fs.writeFileSync(out.part('weights.bin'), 'new');
        throw new Error('the writer failed');
      }),
    /the writer failed/,
  );
  assert.deepEqual(files(), before);
});

test('StagedOutput.remove: a file of the old output that the new one lacks is removed by the commit, and restored by an undo', () => {
  const dir = oldOutput('remove');
  const before = contents(dir);
  const write = (out: StagedOutput): void => {
    for (const n of NAMES.slice(0, 3)) fs.writeFileSync(out.part(n), `new ${n}`);
    out.remove('extra.txt');
  };
  assert.throws(() => withFailingRename('config.json', () => writeStaged(dir, write)), /no file was replaced/);
  assert.deepEqual(contents(dir), before);
  writeStaged(dir, write);
  assert.deepEqual(contents(dir), { ...Object.fromEntries(NAMES.slice(0, 3).map((n) => [n, `new ${n}`])), 'notes.md': 'not part of the output' });
});

test('writeStagedJob: a stop (an error thrown at a safe point) removes the parts written so far', () => {
  const dir = oldOutput('job');
  const before = contents(dir);
  const job = writeStagedJob(dir, function* (out) {
    for (const n of NAMES) {
      fs.writeFileSync(out.part(n), `new ${n}`);
      yield;
      if (n === 'config.json') throw new Error('stopped');
    }
  });
  assert.throws(() => runToEnd(job), /stopped/);
  assert.deepEqual(contents(dir), before);
});

test('writeStaged: where hard links fail, the old files are moved aside instead, and an undo still gives them back', () => {
  const dir = oldOutput('nolink');
  const before = contents(dir);
  const link = fsMod.linkSync;
  fsMod.linkSync = (() => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  }) as typeof fsMod.linkSync;
  syncBuiltinESMExports();
  try {
    assert.throws(() => withFailingRename('vocab.tsv', () => writeStaged(dir, writeAll('new'))), /no file was replaced/);
    assert.deepEqual(contents(dir), before);
    writeStaged(dir, writeAll('new'));
    assert.deepEqual(contents(dir), { ...Object.fromEntries(NAMES.map((n) => [n, `new ${n}`])), 'notes.md': 'not part of the output' });
  } finally {
    fsMod.linkSync = link;
    syncBuiltinESMExports();
  }
});
