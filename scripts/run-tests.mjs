#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's built-in test runner.
// Extra arguments are passed through (e.g. a file filter: `npm test -- safetensors`).
import { readdirSync, statSync } from 'node:fs';
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
const res = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...flags, ...files], { stdio: 'inherit' });
process.exit(res.status ?? 1);
