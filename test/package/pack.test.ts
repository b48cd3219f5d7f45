/**
 * The package as a user gets it: `npm pack` the repository, install the tarball into a scratch
 * package outside the repository (offline), import every `exports` subpath in ESM, type-check a
 * small TypeScript file against the installed declarations with the repository's tsc, and run
 * `tfree serve` from the installed package to fetch the playground page (web/dist is shipped).
 *
 * Offline install: the runtime dependency @huggingface/tokenizers is tried from the npm cache
 * first; when the cache does not hold it (ENOTCACHED), the repository's installed copy
 * (node_modules/@huggingface/tokenizers) is packed and installed beside the tarball. Skips only
 * when npm itself is unavailable.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SUBPATHS = ['tfree', 'tfree/tensor', 'tfree/nn', 'tfree/io', 'tfree/hat', 'tfree/llama', 'tfree/boxte', 'tfree/train', 'tfree/compress', 'tfree/convert', 'tfree/eval', 'tfree/serve'];

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  // npm_config_* from an outer `npm test` must not leak into the scratch installs
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env, timeout: 120_000 });
}

const t0 = Date.now();

function ok(r: SpawnSyncReturns<string>, what: string): string {
  process.stdout.write(`# ${what}: done at ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  assert.equal(r.status, 0, `${what} failed (exit ${String(r.status)}${r.error ? `, ${r.error.message}` : ''}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const CHECK_MJS = `
import assert from 'node:assert/strict';
const subpaths = ${JSON.stringify(SUBPATHS)};
for (const p of subpaths) {
  const m = await import(p);
  assert.ok(Object.keys(m).length > 0, p + ' exports nothing');
}
const { parseFormat, quantizeMatrix, dequantize } = await import('tfree/compress');
const w = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i));
const back = dequantize(quantizeMatrix(w, 2, 64, parseFormat('int8')));
assert.ok(Math.abs(back[5] - w[5]) < 0.01);
const { HATModel, presetConfig, HatSplitter } = await import('tfree/hat');
assert.equal(typeof HATModel, 'function');
assert.equal(presetConfig('tiny').model_type, 'hierarchical_autoregressive_transformer');
assert.deepEqual(new HatSplitter().encode('hi there').length, 2);
const { TfreeServer } = await import('tfree/serve');
assert.equal(typeof TfreeServer, 'function');
const { DtmEvaluator } = await import('tfree/eval');
assert.equal(typeof DtmEvaluator, 'function');
const { convertLlamaToHAT } = await import('tfree/convert');
assert.equal(typeof convertLlamaToHAT, 'function');
const { BoxTE } = await import('tfree/boxte');
assert.equal(typeof BoxTE, 'function');
const { LlamaLM } = await import('tfree/llama');
assert.equal(typeof LlamaLM, 'function');
const { Trainer } = await import('tfree/train');
assert.equal(typeof Trainer, 'function');
await assert.rejects(import('tfree/dist/src/compress/kmeans.js'), (e) => e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED');
console.log('imports ok');
`;

const CHECK_TS = `
import { Tensor } from 'tfree/tensor';
import { ParamStore } from 'tfree/nn';
import { openCheckpoint } from 'tfree/io';
import { HATModel, presetConfig, type HATConfig } from 'tfree/hat';
import { LlamaLM, type LlamaLMConfig } from 'tfree/llama';
import { BoxTE, type BoxTEConfig } from 'tfree/boxte';
import { Trainer, type TrainSettings } from 'tfree/train';
import { parseFormat, quantizeModel, type QuantFormat, type PackedMatrix } from 'tfree/compress';
import { convertLlamaToHAT } from 'tfree/convert';
import { DtmEvaluator, type DtmReport } from 'tfree/eval';
import { TfreeServer, type ServerOptions } from 'tfree/serve';

const cfg: HATConfig = presetConfig('tiny');
const model = new HATModel(cfg, { seed: 1 });
const f: QuantFormat = parseFormat('kmeans4', { blockSize: 32 });
const packed: Map<string, PackedMatrix> = quantizeModel(model, f);
const bits: number = f.bits;
// @ts-expect-error blockSize is a number: the declarations are real types, not any
parseFormat('int4', { blockSize: 'x' });
export type Used = [Tensor, ParamStore, typeof openCheckpoint, LlamaLM, LlamaLMConfig, BoxTE, BoxTEConfig, Trainer, TrainSettings, typeof convertLlamaToHAT, DtmEvaluator, DtmReport, TfreeServer, ServerOptions];
export { packed, bits };
`;

test('npm pack -> offline install in a scratch package -> every subpath imports (ESM) and type-checks; tfree serve serves the shipped playground', { timeout: 300_000 }, async (t) => {
  const npmV = run('npm', ['--version'], root);
  if (npmV.error !== undefined || npmV.status !== 0) {
    t.skip(`npm is not available (${npmV.error?.message ?? npmV.stderr.trim()})`);
    return;
  }
  const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'tfree-pack-')));
  try {
    // the playground build is part of the package (prepack builds it when missing)
    ok(run(process.execPath, [join(root, 'scripts', 'prepack.mjs')], root), 'scripts/prepack.mjs');
    // dist/ is what this test runs from, so it is built; the prepare script (tsc) is not rerun here
    const packOut = ok(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], root), 'npm pack');
    const info = JSON.parse(packOut.slice(packOut.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const files = new Set(info[0].files.map((x) => x.path));
    assert.ok(files.has('web/dist/index.html'), 'the tarball ships the built playground web/dist/index.html');
    assert.ok(files.has('models/default/config.json') && files.has('models/default/model.safetensors'), 'the bundled model');
    for (const p of ['tensor', 'nn', 'io', 'models/hat', 'models/llama', 'models/boxte', 'train', 'compress', 'convert', 'eval', 'serve']) {
      assert.ok(files.has(`dist/src/${p}/index.js`) && files.has(`dist/src/${p}/index.d.ts`), `dist/src/${p}/index.{js,d.ts} in the tarball`);
    }
    assert.ok(![...files].some((x) => x.startsWith('dist/test/')), 'no compiled tests in the tarball');
    const tarball = join(tmp, info[0].filename);

    const scratch = join(tmp, 'scratch');
    mkdirSync(scratch);
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true, type: 'module' }));
    const install = ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'];
    let r = run('npm', [...install, tarball], scratch);
    if (r.status !== 0 && /ENOTCACHED/.test(r.stderr)) {
      // the npm cache does not hold @huggingface/tokenizers: install the repository's copy beside the tarball
      t.diagnostic('@huggingface/tokenizers is not in the npm cache; installing the copy from the repository node_modules');
      const dep = realpathSync(join(root, 'node_modules', '@huggingface', 'tokenizers'));
      const depOut = ok(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp, dep], tmp), 'npm pack @huggingface/tokenizers');
      const depTar = join(tmp, (JSON.parse(depOut.slice(depOut.indexOf('['))) as { filename: string }[])[0].filename);
      r = run('npm', [...install, tarball, depTar], scratch);
    }
    ok(r, 'npm install --offline of the tarball');
    assert.ok(existsSync(join(scratch, 'node_modules', 'tfree', 'web', 'dist', 'index.html')));

    writeFileSync(join(scratch, 'check.mjs'), CHECK_MJS);
    assert.match(ok(run(process.execPath, ['check.mjs'], scratch), 'ESM imports'), /imports ok/);

    writeFileSync(join(scratch, 'check.ts'), CHECK_TS);
    // every ts example of docs/api.md compiles against the installed package (each as its own module)
    const examples = [...readFileSync(join(root, 'docs', 'api.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    assert.ok(examples.length >= 8, `docs/api.md has ${examples.length} ts examples`);
    examples.forEach((code, i) => writeFileSync(join(scratch, `api_example_${i}.ts`), `${code}\nexport {};\n`));
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] },
        files: ['check.ts', ...examples.map((_, i) => `api_example_${i}.ts`)],
      }),
    );
    ok(run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], scratch), 'tsc on check.ts against the installed types');

    // `npx tfree serve` from the installed package serves the playground
    const bin = join(scratch, 'node_modules', '.bin', 'tfree');
    const child = spawn(bin, ['serve', '--port', '0'], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        let err = '';
        const timer = setTimeout(() => reject(new Error(`tfree serve did not start:\n${out}\n${err}`)), 60_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m !== null) {
            clearTimeout(timer);
            resolve(m[1].replace(/\/$/, ''));
          }
        });
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (code) => reject(new Error(`tfree serve exited ${String(code)}:\n${out}\n${err}`)));
      });
      const res = await fetch(`${url}/`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), readFileSync(join(root, 'web', 'dist', 'index.html'), 'utf8'));
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on('exit', resolve)));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
