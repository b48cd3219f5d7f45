/** samePath (src/io/paths.ts): one path identity for the output checks of every command. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { samePath } from '../../src/io/index.js';

const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tfree-paths-')));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('samePath: existing paths by device and inode (symlink, ./, hard link), missing ones by where they would be', () => {
  const dir = path.join(root, 'real');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  fs.symlinkSync(dir, path.join(root, 'link'));
  fs.linkSync(path.join(dir, 'f'), path.join(root, 'hard'));
  assert.ok(samePath(dir, path.join(root, 'link')));
  assert.ok(samePath(`${dir}/./`, path.relative(process.cwd(), dir)));
  assert.ok(samePath(path.join(dir, 'f'), path.join(root, 'hard')));
  assert.ok(!samePath(dir, root));
  // neither exists yet: the same place through the symlink, and a missing folder deeper down
  assert.ok(samePath(path.join(root, 'link', 'out'), path.join(dir, 'out')));
  assert.ok(samePath(path.join(root, 'link', 'a', 'b'), path.join(dir, 'a', '..', 'a', 'b')));
  assert.ok(!samePath(path.join(root, 'link', 'out'), path.join(dir, 'out2')));
  // one exists, the other does not
  assert.ok(!samePath(path.join(dir, 'f'), path.join(dir, 'g')));
});
