/** `npm test` (scripts/run-tests.mjs) says why the playground tests skip instead of skipping silently (issue 16 item 18). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const script = fileURLToPath(new URL('../../../scripts/run-tests.mjs', import.meta.url));

test('run-tests names the reason the playground tests skip (here: no browser)', () => {
  const r = spawnSync(process.execPath, [script, 'web/playground'], { encoding: 'utf8', env: { ...process.env, TFREE_CHROMIUM: '/nonexistent/chromium' }, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^run-tests: the playground tests \(test\/web\) skip: \/nonexistent\/chromium is missing/m);
});
