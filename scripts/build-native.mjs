#!/usr/bin/env node
// npm `install` script: builds the native kernel addon (native/ -> native/build/Release/tfree_native.node)
// with node-gyp. The addon is optional: when the build fails for any reason (no compiler, no
// headers, no node-gyp) this prints ONE warning line, records the reason in
// native/build/BUILD_FAILED.txt (read by src/tensor/kernels/native.ts) and exits 0, so that
// `npm install` / `npm ci` still succeed and tfree runs on the pure-TypeScript kernels.
//
// Environment: TFREE_SKIP_NATIVE=1 skips the build; TFREE_BUILD_VERBOSE=1 shows node-gyp's output.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const buildDir = join(nativeDir, 'build');
const failFile = join(buildDir, 'BUILD_FAILED.txt');
const verbose = process.env.TFREE_BUILD_VERBOSE === '1';

function fail(reason, log) {
  // one-line detail for BUILD_FAILED.txt (and the runtime's message): node-gyp's first error line
  const detail = log ? /(?:gyp ERR! stack )?Error: (.+)/.exec(log)?.[1]?.trim() : undefined;
  if (detail && !reason.includes(detail)) reason = `${reason}: ${detail.slice(0, 200)}`;
  if (log) {
    const tail = log.trim().split('\n').slice(-15).join('\n');
    if (tail) process.stderr.write(`${tail}\n`);
  }
  try {
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(failFile, `${reason}\n`);
  } catch {
    // the warning below is all we can do
  }
  process.stderr.write(`tfree: native kernels unavailable (${reason}); using the pure-TypeScript kernels\n`);
  process.exit(0);
}

/** How to run node-gyp: [command, leading args]. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) {
    return fromNpm.endsWith('.js') ? [process.execPath, [fromNpm]] : [fromNpm, []];
  }
  const bundled = resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, [bundled]];
  return ['node-gyp', []];
}

if (process.env.TFREE_SKIP_NATIVE === '1') fail('build skipped: TFREE_SKIP_NATIVE=1');
if (!existsSync(join(nativeDir, 'binding.gyp'))) fail(`no ${join('native', 'binding.gyp')} in the package`);

const [cmd, pre] = findNodeGyp();
const args = [...pre, 'rebuild', '--jobs=max', verbose ? '--loglevel=info' : '--loglevel=error'];
// Headers of the running Node: <prefix>/include/node (Debian /usr, nvm, official tarballs alike).
const prefix = resolve(process.execPath, '..', '..');
// node-gyp gives npm_config_nodedir from the environment precedence over --nodedir (an empty
// value makes it download headers), so set both.
const env = { ...process.env };
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
  env.npm_config_nodedir = prefix;
} else if (env.npm_config_nodedir === '') {
  delete env.npm_config_nodedir;
}

const started = Date.now();
const res = spawnSync(cmd, args, {
  cwd: nativeDir,
  env,
  encoding: 'utf8',
  stdio: verbose ? 'inherit' : 'pipe',
  timeout: 15 * 60 * 1000,
  maxBuffer: 64 * 1024 * 1024,
});
const log = `${res.stdout ?? ''}${res.stderr ?? ''}`;
if (res.error) {
  const e = res.error;
  fail(e.code === 'ENOENT' ? `node-gyp not found (${cmd})` : `cannot run node-gyp: ${e.message}`, log);
}
if (res.status !== 0) {
  const hint = /Could not find any Python/i.test(log)
    ? 'no Python for node-gyp'
    : /not found: (make|g\+\+|c\+\+|cc)|No such file or directory.*(g\+\+|c\+\+)|gyp ERR! stack Error: not found/i.test(log)
    ? 'no C++ compiler or make'
    : /node_api\.h|common\.gypi|download|ENOTFOUND|EAI_AGAIN/i.test(log)
      ? 'Node headers not found'
      : `node-gyp exited with ${res.status ?? res.signal}`;
  fail(hint, log);
}
const addon = join(buildDir, 'Release', 'tfree_native.node');
if (!existsSync(addon)) fail(`node-gyp succeeded but ${addon} is missing`, log);
rmSync(failFile, { force: true });
process.stdout.write(`tfree: native kernels built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
