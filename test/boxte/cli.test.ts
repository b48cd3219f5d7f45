import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/boxte/index.js';
import { noGrad } from '../../src/tensor/index.js';
import { bf16ToF32, f32ToBf16 } from '../../src/io/dtype.js';

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

test('kg train --save-every: the state is written at the end, and resuming it continues as one run', () => {
  const data = join(dir, 'syn-save');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '3').code, 0);
  const common = ['--data', data, '--dim', '8', '--batch', '64', '--negatives', '10', '--lr', '0.01', '--valid-every', '0', '--json'];
  const losses = (out: string): number[] =>
    out.trim().split('\n').map((l) => JSON.parse(l) as { event: string; loss?: number }).filter((e) => e.event === 'epoch').map((e) => e.loss ?? NaN);
  const straight = tfree('kg', 'train', ...common, '--out', join(dir, 'straight.safetensors'), '--epochs', '6');
  assert.equal(straight.code, 0, straight.err);
  const ckpt = join(dir, 'every3.safetensors');
  // 4 epochs with the state every 3: written after epoch 3 and at the end (epoch 4)
  const first = tfree('kg', 'train', ...common, '--out', ckpt, '--epochs', '4', '--save-every', '3');
  assert.equal(first.code, 0, first.err);
  const meta = openSafetensors(`${ckpt}.last`).metadata;
  assert.equal(JSON.parse(meta.train_state ?? '{}').epoch, 4, meta.train_state);
  const rest = tfree('kg', 'train', '--data', data, '--out', ckpt, '--resume', '--epochs', '6', '--save-every', '5', '--json');
  assert.equal(rest.code, 0, rest.err);
  assert.deepEqual([...losses(first.out), ...losses(rest.out)], losses(straight.out));
  // --max-minutes pauses after the first epoch: the state is written although --save-every says 5,
  // and the summary says the run is not complete
  const paused = join(dir, 'paused.safetensors');
  const p1 = tfree('kg', 'train', ...common, '--out', paused, '--epochs', '3', '--save-every', '5', '--max-minutes', '0.00001');
  assert.equal(p1.code, 0, p1.err);
  const sum = JSON.parse(p1.out.trim().split('\n').pop() as string) as { event: string; complete: boolean; epochs: number };
  assert.deepEqual([sum.event, sum.complete, sum.epochs], ['done', false, 1]);
  assert.equal(JSON.parse(openSafetensors(`${paused}.last`).metadata.train_state ?? '{}').epoch, 1);
  const bad = tfree('kg', 'train', ...common, '--out', join(dir, 'bad.safetensors'), '--save-every', '0');
  assert.equal(bad.code, 2);
  assert.equal(bad.err.trim().split('\n').length, 1, bad.err);
});

test('kg train: a run paused by --max-minutes and resumed validates and selects as one straight run', () => {
  const data = join(dir, 'syn-pause');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '4').code, 0);
  const common = ['--data', data, '--dim', '8', '--batch', '64', '--negatives', '10', '--lr', '0.01', '--valid-every', '2', '--json'];
  type Ev = { event: string; epoch?: number; mrr?: number; best?: boolean; model?: string | null; complete?: boolean };
  const events = (out: string): Ev[] => out.trim().split('\n').map((l) => JSON.parse(l) as Ev);
  const straightPath = join(dir, 'pause-straight.safetensors');
  const straight = tfree('kg', 'train', ...common, '--out', straightPath, '--epochs', '5');
  assert.equal(straight.code, 0, straight.err);
  // the same run paused after every epoch: 5 sittings
  const pausedPath = join(dir, 'pause-sittings.safetensors');
  const all: Ev[] = [];
  for (let i = 0; i < 5; i++) {
    const r = i === 0 ? tfree('kg', 'train', ...common, '--out', pausedPath, '--epochs', '5', '--max-minutes', '0.00001') : tfree('kg', 'train', '--data', data, '--out', pausedPath, '--resume', '--max-minutes', '0.00001', '--json');
    assert.equal(r.code, 0, r.err);
    const ev = events(r.out);
    const done = ev[ev.length - 1];
    assert.equal(done.complete, i === 4);
    // paused after epoch 1, before the first validation: no model file yet, and the summary says so
    if (i === 0) assert.ok(done.model === null && !existsSync(pausedPath), JSON.stringify(done));
    all.push(...ev.filter((e) => e.event !== 'done'));
  }
  const valid = (ev: Ev[]): [number | undefined, number | undefined, boolean | undefined][] => ev.filter((e) => e.event === 'valid').map((e) => [e.epoch, e.mrr, e.best]);
  const sv = valid(events(straight.out));
  assert.deepEqual(sv.map((v) => v[0]), [2, 4, 5]);
  assert.deepEqual(valid(all), sv);
  assert.deepEqual(all.filter((e) => e.event === 'epoch').map((e) => e.epoch), [1, 2, 3, 4, 5]);
  // the chosen model is the same file, byte for byte
  assert.ok(readFileSync(pausedPath).equals(readFileSync(straightPath)));
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

test('kg train: divergence (--lr 1e30) stops with one line, exit 2, and saves no NaN model; eval refuses a NaN model', () => {
  const data = join(dir, 'div');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '2').code, 0);
  const ckpt = join(dir, 'div.safetensors');
  const r = tfree('kg', 'train', '--data', data, '--out', ckpt, '--dim', '16', '--epochs', '3', '--batch', '64', '--negatives', '20', '--lr', '1e30', '--valid-every', '1', '--json');
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /^tfree kg train: training diverged at epoch 1, step \d+: the loss is (NaN|Infinity|-Infinity) \(lower --lr\)/);
  assert.equal(r.err.trim().split('\n').length, 1);
  assert.equal(r.out.trim(), '', 'no epoch or validation event (no validation MRR of a NaN model)');
  assert.ok(!existsSync(ckpt) && !existsSync(`${ckpt}.last`), 'nothing saved');
  // a model file whose parameters hold NaN (written by hand) is refused by eval
  const good = join(dir, 'good.safetensors');
  assert.equal(tfree('kg', 'train', '--data', data, '--out', good, '--dim', '8', '--epochs', '1', '--batch', '64', '--negatives', '5', '--valid-every', '0').code, 0);
  const f = openSafetensors(good);
  const entries = f.names().map((n) => [n, f.readAs(n, 'f32')] as const);
  const meta = f.metadata;
  f.close();
  const nan = join(dir, 'nan.safetensors');
  const poisoned = entries.map(([n, t]) => {
    const data2 = Float32Array.from(t.data);
    if (n === 'entity.base') data2[3] = NaN;
    return [n, { dtype: 'F32' as const, shape: t.shape, data: data2 }] as [string, { dtype: 'F32'; shape: number[]; data: Float32Array }];
  });
  writeSafetensors(nan, poisoned, meta);
  const ev = tfree('kg', 'eval', '--model', nan, '--data', data, '--json');
  assert.equal(ev.code, 2);
  assert.match(ev.err, /^tfree kg eval: .*nan\.safetensors: refusing a model with non-finite parameters: parameter entity\.base has 1 non-finite value, e\.g\. NaN/);
  assert.equal(ev.err.trim().split('\n').length, 1);
  assert.equal(ev.out, '');
});

test('kg query: top-k tails / heads of one question equal the ranking of the evaluation kernels; one-line errors', () => {
  const data = join(dir, 'q');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '2').code, 0);
  const ckpt = join(dir, 'q.safetensors');
  assert.equal(tfree('kg', 'train', '--data', data, '--out', ckpt, '--dim', '16', '--epochs', '6', '--batch', '64', '--negatives', '20', '--lr', '0.01', '--valid-every', '6').code, 0);
  const r = tfree('kg', 'query', '--model', ckpt, '--head', 'e3', '--relation', 'r1', '--date', '4', '--top', '60', '--json');
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out) as { missing: string; answers: { entity: string; score: number; rank: number }[] };
  assert.equal(res.missing, 'tail');
  assert.equal(res.answers.length, 60);
  assert.deepEqual(res.answers.map((a) => a.rank), Array.from({ length: 60 }, (_, i) => i + 1));
  for (let i = 1; i < 60; i++) assert.ok(res.answers[i].score >= res.answers[i - 1].score, 'sorted by distance');
  assert.equal(new Set(res.answers.map((a) => a.entity)).size, 60, 'every entity once');
  // the same scores as the op-based model (BoxTE.score) for (e3, r1, x, 4)
  const { model, vocab } = loadModel(ckpt);
  const E = vocab.entities.length;
  const xs = Int32Array.from({ length: E }, (_, i) => i);
  const want = noGrad(() => model.score(new Int32Array(E).fill(vocab.entities.indexOf('e3')), new Int32Array(E).fill(vocab.relations.indexOf('r1')), xs, new Int32Array(E).fill(4))).f32();
  for (const a of res.answers) assert.ok(Math.abs(a.score - want[vocab.entities.indexOf(a.entity)]) < 1e-4, `${a.entity}: ${a.score} vs ${want[vocab.entities.indexOf(a.entity)]}`);
  const heads = tfree('kg', 'query', '--model', ckpt, '--tail', 'e3', '--relation', 'r1', '--date', '4', '--top', '3');
  assert.equal(heads.code, 0, heads.err);
  assert.match(heads.out, /^\(\?, r1, e3, 4\): top 3 heads/);
  assert.equal(heads.out.trim().split('\n').length, 4);
  for (const [args, re] of [
    [['--head', 'nobody', '--relation', 'r1', '--date', '4'], /--head: unknown entity "nobody"/],
    [['--head', 'e3', '--relation', 'r9', '--date', '4'], /--relation: unknown relation "r9"/],
    [['--head', 'e3', '--relation', 'r1', '--date', '12'], /--date: unknown date "12": the model's timestamps are 0 \.\. 11/],
    [['--head', 'e3', '--tail', 'e4', '--relation', 'r1', '--date', '1'], /exactly one of --head NAME .* and --tail NAME/],
    [['--head', 'e3', '--relation', 'r1'], /missing required option --date/],
  ] as const) {
    const e = tfree('kg', 'query', '--model', ckpt, ...args);
    assert.equal(e.code, 2, `${args.join(' ')}: ${e.err}`);
    assert.match(e.err, re);
    assert.match(e.err, /^tfree kg query: (?!kg query)/, 'the command name once');
    assert.equal(e.err.trim().split('\n').length, 1);
  }
});

test('kg pack: a bf16 model file from a training state (parameters rounded to bf16, nothing else), never overwriting', () => {
  const data = join(dir, 'p');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '3').code, 0);
  const ckpt = join(dir, 'p.safetensors');
  assert.equal(tfree('kg', 'train', '--data', data, '--out', ckpt, '--dim', '8', '--epochs', '2', '--batch', '64', '--negatives', '5', '--valid-every', '0').code, 0);
  const out = join(dir, 'p16.safetensors');
  const r = tfree('kg', 'pack', '--model', `${ckpt}.last`, '--out', out, '--bf16', '--note', 'two epochs');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /bf16, .* parameters, epoch 2/);
  const a = loadModel(`${ckpt}.last`);
  const b = loadModel(out);
  assert.equal(b.meta.epoch, '2');
  assert.equal(b.meta.note, 'two epochs');
  assert.equal(b.meta.train_state, undefined);
  for (const [name, p] of a.model.store.entries()) {
    const want = bf16ToF32(f32ToBf16(p.f32()));
    assert.deepEqual(b.model.store.get(name).f32(), want, name);
  }
  const again = tfree('kg', 'pack', '--model', `${ckpt}.last`, '--out', out);
  assert.equal(again.code, 2);
  assert.match(again.err, /^tfree kg pack: \S+ exists; remove it first/);
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
  assert.equal(done.complete, true);
  assert.equal(done.best_valid_mrr, null);
});

test('kg train --lr-schedule cosine --warmup-epochs: the epochs log their lr; bad schedule flags are one-line errors', () => {
  const data = join(dir, 'syn-sched');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '2').code, 0);
  const ckpt = join(dir, 'sched.safetensors');
  const common = ['kg', 'train', '--data', data, '--dim', '8', '--epochs', '4', '--batch', '64', '--negatives', '10', '--lr', '0.02', '--valid-every', '0'];
  const tr = tfree(...common, '--out', ckpt, '--lr-schedule', 'cosine', '--warmup-epochs', '1', '--min-lr-ratio', '0.5', '--json');
  assert.equal(tr.code, 0, tr.err);
  const lrs = tr.out.trim().split('\n').map((l) => JSON.parse(l) as { event: string; lr?: number }).filter((e) => e.event === 'epoch').map((e) => e.lr as number);
  assert.equal(lrs.length, 4);
  assert.ok(Math.abs(lrs[0] - 0.02) < 1e-15, `peak at the end of the warmup epoch: ${lrs[0]}`);
  assert.ok(lrs[1] < lrs[0] && lrs[2] < lrs[1] && lrs[3] < lrs[2] && lrs[3] > 0.01, lrs.join(' '));
  const plain = tfree(...common, '--out', join(dir, 'plain.safetensors'), '--json');
  assert.ok(plain.out.trim().split('\n').map((l) => JSON.parse(l) as { event: string; lr?: number }).filter((e) => e.event === 'epoch').every((e) => e.lr === 0.02), 'constant by default');
  for (const [args, msg] of [
    [['--lr-schedule', 'step'], /--lr-schedule must be one of constant, cosine, linear; got "step"/],
    [['--lr-schedule', 'cosine', '--min-lr-ratio', '2'], /--min-lr-ratio/],
    [['--lr-schedule', 'cosine', '--warmup-epochs', '9'], /warmup \(9 epochs\) is longer than the schedule \(4 epochs\)/],
    [['--min-lr-ratio', '0.1'], /need --lr-schedule cosine or linear/],
    [['--warmup-epochs', '-1'], /--warmup-epochs/],
  ] as const) {
    const r = tfree(...common, '--out', join(dir, 'bad-sched.safetensors'), ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, msg);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});

test('kg synth / export never replace existing files unasked (--overwrite replaces them)', () => {
  const data = join(dir, 'ow');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '5').code, 0);
  // a dataset of the user's own in the folder: synth must not replace it
  writeFileSync(join(data, 'train.txt'), 'a\tr\tb\t2014-01-01\n');
  const s = tfree('kg', 'synth', '--out', data);
  assert.equal(s.code, 2);
  assert.equal(s.err, `tfree kg synth: --out ${data} already holds train.txt, valid.txt, test.txt; pass --overwrite to replace them, or choose another --out\n`);
  assert.equal(readFileSync(join(data, 'train.txt'), 'utf8'), 'a\tr\tb\t2014-01-01\n');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '5', '--overwrite').code, 0);
  assert.notEqual(readFileSync(join(data, 'train.txt'), 'utf8'), 'a\tr\tb\t2014-01-01\n');

  const ckpt = join(dir, 'ow.safetensors');
  assert.equal(tfree('kg', 'train', '--data', data, '--out', ckpt, '--dim', '4', '--epochs', '1', '--batch', '64', '--negatives', '2', '--valid-every', '0').code, 0);
  const out = join(dir, 'ow-export');
  assert.equal(tfree('kg', 'export', '--model', ckpt, '--out', out).code, 0);
  writeFileSync(join(out, 'entities.tsv'), 'mine\n');
  const ex = tfree('kg', 'export', '--model', ckpt, '--out', out);
  assert.equal(ex.code, 2);
  assert.equal(ex.err, `tfree kg export: --out ${out} already holds embeddings.safetensors, entities.tsv, relations.tsv, times.tsv; pass --overwrite to replace them, or choose another --out\n`);
  assert.equal(readFileSync(join(out, 'entities.tsv'), 'utf8'), 'mine\n');
  assert.equal(tfree('kg', 'export', '--model', ckpt, '--out', out, '--overwrite').code, 0);
  assert.equal(readFileSync(join(out, 'entities.tsv'), 'utf8').split('\n').length, 62);
});

test('kg train --resume refuses model / optimisation flags that differ from the run (they were silently ignored)', () => {
  const data = join(dir, 'rs');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '6').code, 0);
  const ckpt = join(dir, 'rs.safetensors');
  const first = ['--data', data, '--out', ckpt, '--dim', '8', '--batch', '64', '--negatives', '5', '--lr', '0.02', '--valid-every', '0'];
  assert.equal(tfree('kg', 'train', ...first, '--epochs', '1').code, 0);
  const state = readFileSync(`${ckpt}.last`);
  const r = tfree('kg', 'train', '--data', data, '--out', ckpt, '--resume', '--epochs', '2', '--lr', '0.5', '--dim', '16', '--no-alpha');
  assert.equal(r.code, 2);
  assert.equal(
    r.err,
    `tfree kg train: --resume continues the run in ${ckpt}.last with its own settings, but --dim 16 (the run's: 8), --no-alpha (the run: --alpha), --lr 0.5 (the run's: 0.02); only --epochs, --valid-every, --valid-limit, --patience, --max-minutes and --save-every may change on resume: drop the others, or start a new run (--overwrite or another --out)\n`,
  );
  assert.deepEqual(readFileSync(`${ckpt}.last`), state, 'the state is untouched');
  // the first command line again plus --resume (the same values) continues
  const ok = tfree('kg', 'train', ...first, '--resume', '--epochs', '2', '--json');
  assert.equal(ok.code, 0, ok.err);
  assert.deepEqual(ok.out.trim().split('\n').map((l) => JSON.parse(l) as { event: string; epoch?: number }).filter((e) => e.event === 'epoch').map((e) => e.epoch), [2]);
});

test('kg query: the distance column stays one width when distances reach 10 (bundled model; the names shifted by one before)', (t) => {
  const bundled = join(process.cwd(), 'models', 'boxte-icews14', 'boxte-icews14-d154.safetensors');
  if (!existsSync(bundled)) {
    t.skip('the bundled ICEWS14 model is not in this tree');
    return;
  }
  const r = tfree('kg', 'query', '--head', 'Barack Obama', '--relation', 'Make statement', '--date', '2014-06-01', '--top', '6');
  assert.equal(r.code, 0, r.err);
  const rows = r.out.trim().split('\n').slice(1);
  assert.equal(rows.length, 6);
  const scores = rows.map((l) => Number(l.trim().split(/\s+/)[1]));
  assert.ok(scores.some((s) => s < 10) && scores.some((s) => s >= 10), `the test needs distances on both sides of 10: ${scores.join(', ')}`);
  const starts = rows.map((l) => /^\s*\d+\s+\d+\.\d{4}\s{2}/.exec(l)?.[0].length);
  assert.ok(starts.every((s) => s !== undefined && s === starts[0]), rows.join('\n'));
});

test('kg train / eval: an empty valid.txt trains with --valid-every 0 and is refused in one line where it would be evaluated', () => {
  const data = join(dir, 'novalid');
  assert.equal(tfree('kg', 'synth', '--out', data, '--seed', '4').code, 0);
  writeFileSync(join(data, 'valid.txt'), '');
  const ckpt = join(dir, 'novalid.safetensors');
  const common = ['kg', 'train', '--data', data, '--out', ckpt, '--dim', '8', '--batch', '64', '--negatives', '5', '--lr', '0.02'];
  // validation asked for (the default --valid-every 100): refused before any work, no files
  const r1 = tfree(...common, '--epochs', '2');
  assert.equal(r1.code, 2, r1.err);
  assert.match(r1.err, /valid\.txt has no facts: validation needs some \(train without it: --valid-every 0\)/);
  assert.equal(r1.err.trim().split('\n').length, 1, r1.err);
  assert.ok(!existsSync(ckpt) && !existsSync(`${ckpt}.last`));
  // without validation it trains and saves the last model
  const r2 = tfree(...common, '--epochs', '2', '--valid-every', '0', '--json');
  assert.equal(r2.code, 0, r2.err);
  assert.ok(existsSync(ckpt));
  // resuming with validation switched on is refused the same way
  const r3 = tfree('kg', 'train', '--data', data, '--out', ckpt, '--resume', '--epochs', '3', '--valid-every', '1');
  assert.equal(r3.code, 2, r3.err);
  assert.match(r3.err, /valid\.txt has no facts/);
  // eval of the empty split: one line naming the file; the test split still evaluates
  const e1 = tfree('kg', 'eval', '--model', ckpt, '--data', data, '--split', 'valid');
  assert.equal(e1.code, 2, e1.err);
  assert.match(e1.err, /--split valid: .*valid\.txt has no facts/);
  const e2 = tfree('kg', 'eval', '--model', ckpt, '--data', data, '--json');
  assert.equal(e2.code, 0, e2.err);
  assert.ok(Number.isFinite((JSON.parse(e2.out) as { mrr: number }).mrr));
});

test("kg train --date-ids reference: the reference's time ids (shared month ends), kept by the model for eval / query / resume", () => {
  // 12 entities, 2 relations, facts on every day of January 20 - February 10, 2014
  const days: string[] = [];
  for (let i = 0; i < 22; i++) days.push(new Date(Date.UTC(2014, 0, 20 + i)).toISOString().slice(0, 10));
  const line = (i: number, d: string): string => `e${i % 12}\tr${i % 2}\te${(i * 5 + 3) % 12}\t${d}\n`;
  const data = join(dir, 'refdates');
  const ids = join(dir, 'refids');
  rmSync(data, { recursive: true, force: true });
  rmSync(ids, { recursive: true, force: true });
  mkdirSync(data);
  mkdirSync(ids);
  // the same facts with the reference's integer ids (January d -> d - 20, February d -> d + 8: 01-29 = 02-01 = 9)
  const refId = (d: string): number => (d.slice(5, 7) === '01' ? Number(d.slice(8)) - 20 : Number(d.slice(8)) + 8);
  for (const [sp, n] of [['train.txt', 300], ['valid.txt', 20], ['test.txt', 20]] as const) {
    const rows = Array.from({ length: n }, (_, i) => [i + n, days[(i * 7) % days.length]] as const);
    writeFileSync(join(data, sp), rows.map(([i, d]) => line(i, d)).join(''));
    writeFileSync(join(ids, sp), rows.map(([i, d]) => line(i, String(refId(d)))).join(''));
  }
  const st = JSON.parse(tfree('kg', 'stats', '--data', data, '--date-ids', 'reference', '--json').out) as Record<string, unknown>;
  assert.equal(st.date_ids, 'reference');
  assert.deepEqual([st.timestamps, st.unused_timestamps], [19, 0], '22 days on 19 ids: 02-01..02-03 share the ids of 01-29..01-31');
  const m1 = join(dir, 'refdates.safetensors');
  const m2 = join(dir, 'refids.safetensors');
  const common = ['--dim', '8', '--epochs', '2', '--batch', '32', '--negatives', '5', '--lr', '0.02', '--valid-every', '1', '--seed', '3'];
  const t1 = tfree('kg', 'train', '--data', data, '--out', m1, '--date-ids', 'reference', ...common);
  assert.equal(t1.code, 0, t1.err);
  assert.equal(tfree('kg', 'train', '--data', ids, '--out', m2, ...common).code, 0);
  // the same training as on the reference's integer ids, bit for bit
  const a = openSafetensors(m1);
  const b = openSafetensors(m2);
  try {
    assert.deepEqual(a.names().sort(), b.names().sort());
    for (const n of a.names()) assert.deepEqual(a.readAs(n, 'f32').data, b.readAs(n, 'f32').data, n);
    assert.equal((JSON.parse(a.metadata.vocab) as { dateIds?: string }).dateIds, 'reference');
  } finally {
    a.close();
    b.close();
  }
  // eval reads the data with the model's rule; the same metrics as the integer-id model
  const e1 = tfree('kg', 'eval', '--model', m1, '--data', data, '--json');
  assert.equal(e1.code, 0, e1.err);
  assert.equal(e1.out, tfree('kg', 'eval', '--model', m2, '--data', ids, '--json').out);
  // query: both dates of a shared id give the same answers, labelled with both
  const q = (date: string): { question: { date: string }; answers: unknown } =>
    JSON.parse(tfree('kg', 'query', '--model', m1, '--head', 'e1', '--relation', 'r1', '--date', date, '--json').out) as { question: { date: string }; answers: unknown };
  assert.deepEqual(q('2014-01-29').answers, q('2014-02-01').answers);
  assert.equal(q('2014-01-29').question.date, '2014-01-29 = 2014-02-01');
  // resume keeps the run's rule; another is refused
  const r1 = tfree('kg', 'train', '--data', data, '--out', m1, '--resume', '--epochs', '3', '--date-ids', 'calendar');
  assert.equal(r1.code, 2, r1.err);
  assert.match(r1.err, /--date-ids calendar \(the run's: reference\)/);
  const r2 = tfree('kg', 'train', '--data', data, '--out', m1, '--resume', '--epochs', '3');
  assert.equal(r2.code, 0, r2.err);
});
