#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's built-in test runner.
// Extra arguments are passed through (e.g. a file filter: `npm test -- safetensors`).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'dist', 'test');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = walk(testDir, []);
if (filters.length > 0) files = files.filter((f) => filters.some((x) => relative(testDir, f).includes(x)));
if (files.length === 0) {
  console.error(`run-tests: no test files matched under ${testDir}`);
  process.exit(1);
}
// The playground tests need the web build and a browser: build the web part when it is missing
// (vite is a devDependency), and say in one line why they will skip when they cannot run.
const notes = [];
if (files.some((f) => relative(testDir, f).startsWith('web'))) {
  const built = () => ['dist', 'dist-static'].every((d) => existsSync(join(root, 'web', d, 'index.html')));
  if (!built()) {
    if (existsSync(join(root, 'node_modules', 'vite'))) {
      console.error('run-tests: building the web playground for test/web (npm run build:web)');
      spawnSync('npm', ['run', 'build:web', '--silent'], { cwd: root, stdio: 'inherit' });
    }
    if (!built()) notes.push('the web build is missing and could not be made (npm run build:web)');
  }
  const chromium = process.env.TFREE_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) notes.push(`${chromium} is missing (apt-get install chromium, or set TFREE_CHROMIUM)`);
  if (!existsSync(join(root, 'node_modules', 'playwright-core'))) notes.push('playwright-core is not installed');
}
const note = () => notes.length > 0 && console.error(`run-tests: the playground tests (test/web) skip: ${notes.join('; ')}`);
note();
const res = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...flags, ...files], { stdio: 'inherit' });
note();
process.exit(res.status ?? 1);
