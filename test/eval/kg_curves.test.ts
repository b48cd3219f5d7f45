import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KgLogError, kgCurvesSvg, parseKgTrainLog } from '../../src/eval/kg_curves.js';

const dir = mkdtempSync(join(tmpdir(), 'tfree-kgcurves-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A synthetic `kg train --json` log: 30 epochs, validation every 10, resumed after epoch 12 (epoch 13 repeated). */
function syntheticLog(): string {
  const lines: string[] = [];
  const epoch = (e: number, loss: number): void => void lines.push(JSON.stringify({ event: 'epoch', epoch: e, loss, seconds: 2 + e / 100, facts_per_s: 1000 }));
  for (let e = 1; e <= 13; e++) {
    epoch(e, 3 / e);
    if (e % 10 === 0) lines.push(JSON.stringify({ event: 'valid', epoch: e, mr: 200 - e, mrr: 0.3 + e / 100, hits1: 0.2 + e / 100, hits3: 0.35 + e / 100, hits10: 0.6 + e / 200, queries: 100, best: true }));
  }
  lines.push(JSON.stringify({ event: 'stopped', epochs: 13, state: 'x.last' }));
  lines.push('');
  for (let e = 13; e <= 30; e++) {
    epoch(e, e === 13 ? 0.5 : 3 / e); // the repeated epoch 13 (after the resume) wins
    if (e % 10 === 0) lines.push(JSON.stringify({ event: 'valid', epoch: e, mr: 200 - e, mrr: 0.3 + e / 100, hits1: 0.2 + e / 100, hits3: 0.35 + e / 100, hits10: 0.6 + e / 200, queries: 100, best: true }));
  }
  lines.push(JSON.stringify({ event: 'done', epochs: 30, best_epoch: 30, best_valid_mrr: 0.6 }));
  return `${lines.join('\n')}\n`;
}

test('kg curves: a train --json log (resumed, repeated epoch) parses into one record per epoch and validation', () => {
  const log = parseKgTrainLog(syntheticLog(), 'train.jsonl');
  assert.deepEqual(log.epochs.map((e) => e.epoch), Array.from({ length: 30 }, (_, i) => i + 1));
  assert.equal(log.epochs[12].loss, 0.5, 'the last record of a repeated epoch wins');
  assert.equal(log.epochs[29].loss, 3 / 30);
  assert.deepEqual(log.valid.map((v) => [v.epoch, v.mrr]), [[10, 0.4], [20, 0.5], [30, 0.6]]);
  // a truncated last line (killed while writing) is skipped; the same text elsewhere is an error naming the line
  const cut = `${syntheticLog()}{"event":"epoch","epo`;
  assert.equal(parseKgTrainLog(cut).epochs.length, 30);
  assert.throws(() => parseKgTrainLog(`${JSON.stringify({ event: 'epoch', epoch: 1, loss: 1, seconds: 1 })}\n{"event":\n`, 'run.jsonl'), (e: unknown) => e instanceof KgLogError && /^run\.jsonl:2: /.test(e.message));
  assert.throws(() => parseKgTrainLog(`${JSON.stringify({ event: 'valid', epoch: 3, mrr: null })}\n`, 'run.jsonl'), /run\.jsonl:1: "mrr" must be a finite number/);
});

test('kg curves: the SVG charts hold one point per epoch / validation at the right place', () => {
  const log = parseKgTrainLog(syntheticLog());
  const { loss, valid } = kgCurvesSvg(log, { title: 'synthetic', refMrr: { value: 0.58, label: 'paper MRR' } });
  assert.match(loss, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((loss.match(/<circle /g) ?? []).length, 30);
  assert.match(loss, /synthetic: training loss/);
  assert.match(loss, /training loss: \(13, 0\.50\)/, 'the tooltip of epoch 13 shows the repeated record');
  assert.ok(valid !== null);
  // MRR, Hits@1, Hits@3, Hits@10 (3 points each) and the reference line (2 points)
  assert.equal((valid.match(/<circle /g) ?? []).length, 4 * 3 + 2);
  assert.match(valid, /MRR: \(20, 0\.50\)/);
  assert.match(valid, />paper MRR</);
  // without validations: only the loss chart
  assert.equal(kgCurvesSvg({ epochs: log.epochs, valid: [] }).valid, null);
});

test('tfree kg curves writes loss.svg and valid.svg; a missing or malformed log is one line, exit 2', () => {
  const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
  const run = (...args: string[]): { code: number; out: string; err: string } => {
    const r = spawnSync(process.execPath, [cli, 'kg', 'curves', ...args], { encoding: 'utf8' });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  };
  const logPath = join(dir, 'train.jsonl');
  writeFileSync(logPath, syntheticLog());
  const ok = run('--log', logPath, '--out', join(dir, 'curves'), '--ref-mrr', '0.58');
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /30 epochs, 3 validations \(last: epoch 30, MRR 0\.6000\)/);
  assert.equal((readFileSync(join(dir, 'curves', 'loss.svg'), 'utf8').match(/<circle /g) ?? []).length, 30);
  assert.match(readFileSync(join(dir, 'curves', 'valid.svg'), 'utf8'), /MRR 0\.58/);
  for (const [args, re] of [
    [['--log', join(dir, 'nope.jsonl'), '--out', join(dir, 'c2')], /--log .*nope\.jsonl: no such file/],
    [['--log', join(dir, 'bad.jsonl'), '--out', join(dir, 'c2')], /bad\.jsonl:1: not a JSON line/],
    [['--log', logPath, '--out', join(dir, 'c2'), '--ref-mrr', '2'], /ref-mrr/],
  ] as const) {
    writeFileSync(join(dir, 'bad.jsonl'), 'epoch 1 loss 3\n');
    const r = run(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});
