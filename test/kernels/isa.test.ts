/**
 * Kernel path selection: TFREE_ISA (and its older name TFREE_SIMD) at load time, setIsa, the CLI's
 * one-line error for an unknown path or one this CPU lacks, and `tfree info`'s report of the CPU
 * features and the path per kernel family.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative, type NativeExtrasInternal } from '../../src/tensor/kernels/native.js';
import { NATIVE_ISAS } from '../../src/tensor/kernels/index.js';
import { cli } from '../helpers/cli.js';

const loaded = loadNative();
const skip: string | false = 'error' in loaded ? `native addon unavailable: ${loaded.error}` : false;
const extras: NativeExtrasInternal | null = 'extras' in loaded ? (loaded.extras as NativeExtrasInternal) : null;

async function withEnv<T>(vars: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
  const old: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    old[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('an unknown TFREE_ISA / TFREE_SIMD is a one-line user error, exit 2, before any command', async () => {
  for (const [name, value] of [
    ['TFREE_ISA', 'avx9000'],
    ['TFREE_SIMD', 'sse'],
  ] as const) {
    const r = await withEnv({ TFREE_ISA: undefined, TFREE_SIMD: undefined, [name]: value }, () => cli(['info']));
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.match(r.err, new RegExp(`^tfree info: ${name} must be one of generic, avx2, avx512, neon, got "${value}"\\n$`));
  }
});

test('TFREE_ISA naming a path this CPU lacks is a one-line user error, exit 2', { skip }, async () => {
  assert.ok(extras);
  const lacking = NATIVE_ISAS.find((i) => !extras.cpuInfo().isas.includes(i));
  assert.ok(lacking !== undefined, 'no CPU has both x86 and ARM paths');
  const r = await withEnv({ TFREE_ISA: lacking }, () => cli(['info']));
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`^tfree info: TFREE_ISA=${lacking}: this CPU or build lacks that path \\(paths here: [a-z0-9, ]+\\)\\n$`));
});

test('tfree info reports the CPU features and the path per kernel family', { skip }, async () => {
  assert.ok(extras);
  const info = extras.cpuInfo();
  const r = await withEnv({ TFREE_ISA: undefined, TFREE_SIMD: undefined }, () => cli(['info', '--json']));
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { native: { isas: string[]; paths: Record<string, string>; cpu: { features: string[] } } };
  assert.deepEqual(j.native.isas, info.isas);
  assert.deepEqual(j.native.cpu.features, info.features);
  assert.deepEqual(Object.keys(j.native.paths).sort(), ['bf16', 'boxte', 'gemm', 'ops', 'packed', 'packedLut']);
  // ops and boxte name an ISA level; gemm, packed, packedLut and bf16 an implementation (e.g. avx512-vnni)
  for (const f of ['ops', 'boxte']) assert.ok(info.isas.includes(j.native.paths[f]), `${f}=${j.native.paths[f]}`);
  for (const f of ['gemm', 'packed', 'packedLut', 'bf16'] as const) assert.ok(extras.familyPaths(f).includes(j.native.paths[f]), `${f}=${j.native.paths[f]}`);
  const t = await cli(['info']);
  assert.match(t.out, /^cpu features: .*$/m);
  assert.match(t.out, /^kernel path per family: ops=[a-z0-9]+, gemm=[a-z0-9-]+, packed=[a-z0-9-]+, packedLut=[a-z0-9-]+, boxte=[a-z0-9]+, bf16=[a-z0-9-]+$/m);
  if (info.arch === 'x86_64') {
    // a feature the x86 paths need is listed exactly when its path is offered
    assert.equal(info.isas.includes('avx2'), info.features.includes('avx2') && info.features.includes('fma'));
    assert.equal(info.isas.includes('avx512'), ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => info.features.includes(f)));
  }
});

test('setIsa caps every family at the path asked for; the best path is the default', { skip }, () => {
  assert.ok(extras);
  const info = extras.cpuInfo();
  // the best path is the default unless this test run forces one (TFREE_ISA=avx2 npm test ...)
  if (process.env.TFREE_ISA === undefined && process.env.TFREE_SIMD === undefined) assert.equal(info.isa, info.best);
  try {
    for (const isa of info.isas) {
      extras.setIsa(isa);
      const now = extras.cpuInfo();
      assert.equal(now.isa, isa);
      // an implementation's level: avx512-vnni, avx512-bf16 -> avx512; avxvnni -> avx2
      const level = (p: string): string => (p.startsWith('avx512') ? 'avx512' : p === 'avxvnni' ? 'avx2' : p);
      const rank = (p: string): number => ['generic', 'avx2', 'avx512'].indexOf(level(p)) + (p === 'neon' ? 2 : 0);
      for (const [fam, p] of Object.entries(now.paths)) assert.ok(rank(p) <= rank(isa), `${fam}: ${p} above the cap ${isa}`);
      if (isa !== 'neon') assert.equal(now.paths.ops, isa, 'the ops family has every x86 path');
    }
  } finally {
    extras.setIsa(info.isa);
  }
});

test('TFREE_ISA at load time (child process) caps the paths; TFREE_SIMD=none still means generic', { skip }, () => {
  assert.ok(extras);
  const loader = fileURLToPath(new URL('../../src/tensor/kernels/native.js', import.meta.url));
  const script = `
    const m = await import(${JSON.stringify(loader)});
    const r = m.loadNative();
    if ('error' in r) { console.log('ERR ' + r.error); process.exit(1); }
    console.log(JSON.stringify(r.extras.cpuInfo()));`;
  const isas = extras.cpuInfo().isas;
  for (const [vars, want] of [
    [{ TFREE_ISA: isas[isas.length - 1] }, isas[isas.length - 1]],
    [{ TFREE_ISA: 'generic' }, 'generic'],
    [{ TFREE_SIMD: 'none' }, 'generic'],
    [{ TFREE_ISA: 'bogus' }, extras.cpuInfo().best],
  ] as const) {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.TFREE_ISA;
    delete env.TFREE_SIMD;
    Object.assign(env, vars);
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr + res.stdout);
    const info = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as { isa: string; paths: Record<string, string>; envError: string };
    assert.equal(info.isa, want, JSON.stringify(vars));
    if (want !== 'neon') assert.equal(info.paths.ops, want);
    // the gemm family follows the cap (avx512 and avx2 CPUs alike: a cap of avx2 or generic is that GEMM)
    if (want === 'generic' || want === 'avx2') assert.equal(info.paths.gemm, want);
    if ('TFREE_ISA' in vars && vars.TFREE_ISA === 'bogus') assert.match(info.envError, /TFREE_ISA=bogus is not a known path/);
    else assert.equal(info.envError, '');
  }
});

test('setKernelPath forces one implementation of the gemm / packed / packedLut / bf16 family; setIsa undoes it; bad names throw', { skip }, () => {
  assert.ok(extras);
  const info = extras.cpuInfo();
  try {
    for (const fam of ['gemm', 'packed', 'packedLut', 'bf16'] as const) {
      const paths = extras.familyPaths(fam);
      assert.equal(paths[paths.length - 1], 'generic', fam);
      assert.ok(paths.includes(info.paths[fam]), `${fam}: ${info.paths[fam]} not in ${paths.join(', ')}`);
      for (const p of paths) {
        assert.equal(extras.setKernelPath(fam, p), p);
        assert.equal(extras.cpuInfo().paths[fam], p);
      }
      extras.setIsa(info.isa);
      assert.equal(extras.cpuInfo().paths[fam], info.paths[fam], `${fam}: setIsa restores the default`);
      assert.throws(() => extras.setKernelPath(fam, 'bogus'), RangeError);
    }
    assert.throws(() => extras.setKernelPath('ops' as 'packed', 'avx2'), RangeError);
    if (!info.features.includes('avxvnni')) assert.throws(() => extras.setKernelPath('packed', 'avxvnni'), /no path "avxvnni"/);
  } finally {
    extras.setIsa(info.isa);
  }
});

test('the gemm family: avx2 is the default GEMM on AMD Zen 4 (AVX-512 as two 256-bit halves) while ops stays avx512; the AVX-512 GEMM stays listed there as avx512-zmm', { skip }, () => {
  assert.ok(extras);
  const info = extras.cpuInfo();
  const gemm = extras.familyPaths('gemm');
  assert.equal(gemm[gemm.length - 1], 'generic');
  assert.ok(!(gemm.includes('avx512') && gemm.includes('avx512-zmm')), `the AVX-512 GEMM listed twice: ${gemm.join(', ')}`);
  const zen4 = info.vendor === 'AuthenticAMD' && info.family === 0x19;
  const hasAvx512 = info.isas.includes('avx512');
  if (hasAvx512) {
    // exactly one name for the AVX-512 GEMM on every AVX-512 CPU
    assert.deepEqual(gemm.slice(0, 2), [zen4 ? 'avx512-zmm' : 'avx512', 'avx2']);
  } else {
    assert.ok(!gemm.some((p) => p.startsWith('avx512')), gemm.join(', '));
  }
  try {
    extras.setIsa(info.best);
    const now = extras.cpuInfo();
    if (hasAvx512) {
      assert.equal(now.paths.ops, 'avx512');
      assert.equal(now.paths.gemm, zen4 ? 'avx2' : 'avx512', `${info.vendor} family 0x${info.family.toString(16)}`);
    } else {
      assert.equal(now.paths.gemm, gemm[0]);
    }
    if (info.isas.includes('avx2')) {
      extras.setIsa('avx2');
      assert.equal(extras.cpuInfo().paths.gemm, 'avx2');
      // a forced path above the cap is still forced (tests, bench), until the next setIsa
      if (hasAvx512) assert.equal(extras.setKernelPath('gemm', gemm[0]), gemm[0]);
    }
    extras.setIsa('generic');
    assert.equal(extras.cpuInfo().paths.gemm, 'generic');
  } finally {
    extras.setIsa(info.isa);
  }
  if (zen4 && hasAvx512) console.log(`# ${info.brand}: AMD family 0x19 (Zen 4): gemm=avx2, ops=avx512; gemm paths ${gemm.join(', ')}`);
});
