#!/usr/bin/env node
/**
 * `npm pack` / `npm publish` hook (prepack): the tarball ships the built web playground
 * (web/dist, served by `tfree serve`), so build it when it is missing. `--force` rebuilds it.
 * The TypeScript build (dist/) is the `prepare` script, which npm runs right after this one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const index = join(root, 'web', 'dist', 'index.html');
if (process.argv.includes('--force') || !existsSync(index)) {
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  if (!existsSync(vite)) {
    process.stderr.write('prepack: web/dist is missing and vite is not installed (npm ci installs it); cannot build the playground\n');
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [vite, 'build', '-c', join(root, 'web', 'vite.config.ts'), '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(index)) {
    process.stderr.write(`prepack: building web/dist failed (exit ${String(r.status)})\n`);
    process.exit(1);
  }
  process.stdout.write('prepack: built web/dist\n');
}
