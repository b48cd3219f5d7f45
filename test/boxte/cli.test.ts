import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'tfree-kgcli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tfree(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('kg synth -> train -> eval --json -> export -> stats; resume continues', () => {
  const data = join(dir, 'syn');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '2').code, 0);
  const ckpt = join(dir, 'm.safetensors');
  const tr = tfree('kg', 'train', '--data', data, '--out', ckpt, '--dim', '16', '--epochs', '12', '--batch', '64', '--negatives', '20', '--lr', '0.01', '--valid-every', '6', '--json');
  assert.equal(tr.code, 0, tr.err);
  const events = tr.out.trim().split('\n').map((l) => JSON.parse(l) as { event: string; epoch?: number });
  assert.equal(events.filter((e) => e.event === 'epoch').length, 12);
  assert.equal(events.filter((e) => e.event === 'valid').length, 2);
  assert.ok(existsSync(ckpt) && existsSync(`${ckpt}.last`));
  const ev = tfree('kg', 'eval', '--model', ckpt, '--data', data, '--split', 'test', '--json');
  assert.equal(ev.code, 0, ev.err);
  const m = JSON.parse(ev.out) as Record<string, number>;
  assert.deepEqual(Object.keys(m), ['mr', 'mrr', 'hits1', 'hits3', 'hits10']);
  assert.ok(m.mrr > 0.3 && m.mrr <= 1 && m.mr >= 1 && m.hits1 <= m.hits3 && m.hits3 <= m.hits10, ev.out);
  // resume to 14 epochs
  const re = tfree('kg', 'train', '--data', data, '--out', ckpt, '--resume', '--epochs', '14', '--json');
  assert.equal(re.code, 0, re.err);
  const ep = re.out.trim().split('\n').map((l) => JSON.parse(l) as { event: string; epoch?: number }).filter((e) => e.event === 'epoch');
  assert.deepEqual(ep.map((e) => e.epoch), [13, 14]);
  const out = join(dir, 'export');
  const ex = tfree('kg', 'export', '--model', ckpt, '--out', out);
  assert.equal(ex.code, 0, ex.err);
  assert.deepEqual(readdirSync(out).sort(), ['embeddings.safetensors', 'entities.tsv', 'relations.tsv', 'times.tsv']);
  const ents = readFileSync(join(out, 'entities.tsv'), 'utf8').trim().split('\n');
  assert.equal(ents.length, 61);
  assert.equal(ents[1].split('\t').length, 1 + 32);
  assert.equal(readFileSync(join(out, 'times.tsv'), 'utf8').trim().split('\n').length, 1 + 12 * 2);
  const st = tfree('kg', 'stats', '--data', data, '--json');
  assert.equal((JSON.parse(st.out) as { entities: number }).entities, 60);
});

test('kg: bad input gives a one-line error with file:line and exit code 2, no stack trace', () => {
  const bad = join(dir, 'bad');
  tfree('kg', 'synth', '--out', bad);
  writeFileSync(join(bad, 'valid.txt'), 'e1\tr1\te2\t3\ne1\tr1\n');
  const r = tfree('kg', 'stats', '--data', bad);
  assert.equal(r.code, 2);
  assert.match(r.err, /^tfree kg stats: .*valid\.txt:2: expected 4 tab-separated fields/);
  assert.equal(r.err.trim().split('\n').length, 1);
  const missing = tfree('kg', 'eval', '--model', join(dir, 'nope.safetensors'), '--data', bad);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /cannot open/);
  assert.equal(tfree('kg', 'frobnicate').code, 2);
  assert.match(tfree('kg', 'train', '--data', bad).err, /missing required option --out/);
});

test('kg synth prints a train command that reaches the documented test MRR (docs/boxte.md: 0.80); best_valid_mrr is null without validation', () => {
  const data = join(dir, 'syn-doc');
  const s = tfree('kg', 'synth', '--out', data);
  assert.equal(s.code, 0, s.err);
  const cmd = /tfree (kg train .*)$/m.exec(s.out);
  assert.ok(cmd !== null, s.out);
  const tr = tfree(...cmd[1].split(' '), '--json');
  assert.equal(tr.code, 0, tr.err);
  const ev = JSON.parse(tfree('kg', 'eval', '--model', join(data, 'model.safetensors'), '--data', data, '--json').out) as { mrr: number };
  assert.ok(ev.mrr > 0.75, `test MRR ${ev.mrr}`);
  const nv = tfree('kg', 'train', '--data', data, '--out', join(dir, 'nv.safetensors'), '--dim', '8', '--epochs', '1', '--valid-every', '0', '--json');
  assert.equal(nv.code, 0, nv.err);
  const done = JSON.parse(nv.out.trim().split('\n').pop() as string) as Record<string, unknown>;
  assert.equal(done.event, 'done');
  assert.equal(done.best_valid_mrr, null);
});
