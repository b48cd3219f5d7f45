import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KgFormatError, QuadSet, buildKG, convertIdMapped, dateTimeIndex, formatQuads, kgStats, parseIdMap, parseQuadText, readTemporalKG, referenceDayNumber, syntheticKG, timeIndexDates } from '../../src/io/kg.js';

const ICEWS = join(process.cwd(), '..', 'shared', 'data', 'icews14');

function withDir(files: Record<string, string>, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tfree-kg-'));
  try {
    for (const [n, text] of Object.entries(files)) writeFileSync(join(dir, n), text);
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ok = {
  'train.txt': 'A\tlikes\tB\t2014-01-03\nB\thates\tC\t2014-01-01\nC\tlikes\tA\t2014-02-01\n',
  'valid.txt': 'A\tlikes\tC\t2014-01-02\n',
  'test.txt': 'D\tlikes\tA\t2014-12-31\n',
};

test('reader: id maps in order of first appearance, one global day origin, counts, unseen entities reported', () => {
  withDir(ok, (dir) => {
    const kg = readTemporalKG(dir);
    assert.deepEqual(kg.entities, ['A', 'B', 'C', 'D']);
    assert.deepEqual(kg.relations, ['likes', 'hates']);
    assert.equal(kg.timeKind, 'date');
    assert.equal(kg.origin, '2014-01-01');
    assert.deepEqual(Array.from(kg.train.tau), [2, 0, 31]);
    assert.deepEqual(Array.from(kg.valid.tau), [1]);
    assert.deepEqual(Array.from(kg.test.tau), [364]);
    assert.equal(kg.numTimes, 365);
    assert.deepEqual(Array.from(kg.test.h), [3]);
    assert.deepEqual(kg.unseenEntities, { valid: 0, test: 1 });
    assert.deepEqual(kg.unseenFacts, { valid: 0, test: 1 });
    assert.deepEqual(kg.unseenRelations, { valid: 0, test: 0 });
    const s = kgStats(kg);
    assert.equal(s.train, 3);
    assert.equal(s.unseen_entities_test, 1);
    // round trip through the text format
    const again = parseQuadText(formatQuads(kg, kg.train), 'x');
    assert.deepEqual(again.time, ['2014-01-03', '2014-01-01', '2014-02-01']);
    assert.deepEqual(again.h, ['A', 'B', 'C']);
  });
});

test('reader: relations that occur only in valid/test are counted (kg stats), by split, with their facts', () => {
  const files = {
    'train.txt': 'A\tlikes\tB\t3\nB\thates\tC\t1\n',
    'valid.txt': 'A\tfears\tC\t2\nA\tfears\tB\t2\nA\tlikes\tC\t0\n',
    'test.txt': 'C\tfears\tA\t5\nC\tadmires\tA\t4\nC\thates\tA\t4\n',
  };
  withDir(files, (dir) => {
    const kg = readTemporalKG(dir);
    assert.deepEqual(kg.relations, ['likes', 'hates', 'fears', 'admires']);
    // valid: fears (2 facts); test: fears and admires (1 fact each)
    assert.deepEqual(kg.unseenRelations, { valid: 1, test: 2 });
    assert.deepEqual(kg.unseenRelationFacts, { valid: 2, test: 2 });
    const s = kgStats(kg);
    assert.equal(s.unseen_relations_valid, 1);
    assert.equal(s.unseen_relations_test, 2);
    assert.equal(s.unseen_relation_facts_test, 2);
  });
});

test('dates map to true calendar days (no shared ids), unlike the reference code\'s conversion (7 shared ids on ICEWS14)', () => {
  // every day of 2014 once: tfree gives ids 0..364 in calendar order
  const days: string[] = [];
  for (let i = 0; i < 365; i++) days.push(new Date(Date.UTC(2014, 0, 1 + i)).toISOString().slice(0, 10));
  withDir({ 'train.txt': days.map((d) => `A\tr\tB\t${d}\n`).join(''), 'valid.txt': 'A\tr\tB\t2014-06-01\n', 'test.txt': 'A\tr\tB\t2014-06-02\n' }, (dir) => {
    const kg = readTemporalKG(dir);
    assert.deepEqual(Array.from(kg.train.tau), Array.from({ length: 365 }, (_, i) => i));
    assert.equal(kg.numTimes, 365);
  });
  // the reference code (data_utils.py dates_to_days) adds the days of months 1..m INCLUSIVE of the
  // date's own month, so a month longer than the next one overlaps it: written out here only to
  // count its collisions (spec §1.6)
  const leap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const dpm = (y: number, m: number): number => (m === 2 && leap(y) ? 29 : [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m]);
  const refDay = (s: string): number => {
    const [y, m, d] = s.split('-').map(Number);
    let n = 0;
    for (let k = 1; k < y; k++) n += leap(k) ? 366 : 365;
    for (let k = 1; k <= m; k++) n += dpm(y, k);
    return n + d;
  };
  const byId = new Map<number, string[]>();
  for (const d of days) byId.set(refDay(d), [...(byId.get(refDay(d)) ?? []), d]);
  const shared = [...byId.values()].filter((v) => v.length > 1).map((v) => v.join('='));
  assert.equal(shared.length, 7);
  assert.ok(shared.includes('2014-01-29=2014-02-01') && shared.includes('2014-10-31=2014-11-01'), shared.join(', '));
  assert.equal(byId.size, 358);
  // --date-ids reference reads the same dates with exactly that rule: ids = refDay - min refDay
  withDir({ 'train.txt': days.map((d) => `A\tr\tB\t${d}\n`).join(''), 'valid.txt': 'A\tr\tB\t2014-06-01\n', 'test.txt': 'A\tr\tB\t2014-01-30\n' }, (dir) => {
    const kg = readTemporalKG(dir, { dateIds: 'reference' });
    const base = Math.min(...days.map(refDay));
    assert.deepEqual(Array.from(kg.train.tau), days.map((d) => refDay(d) - base));
    assert.equal(kg.test.tau[0], kg.train.tau[days.indexOf('2014-02-02')], '01-30 and 02-02 share an id');
    assert.equal(kg.numTimes, 365);
    assert.equal(kg.origin, '2014-01-01');
    assert.equal(kg.dateIds, 'reference');
    const st = kgStats(kg);
    assert.equal(st.date_ids, 'reference');
    assert.equal(st.unused_timestamps, 7);
    assert.equal(kgStats(readTemporalKG(dir)).unused_timestamps, 0);
    // every id maps back to its dates: shared ids to two, the 7 unused to none
    let two = 0;
    let none = 0;
    for (let tau = 0; tau < kg.numTimes; tau++) {
      const ds = timeIndexDates(tau, '2014-01-01', 'reference');
      for (const d of ds) assert.equal(dateTimeIndex(d, '2014-01-01', 'reference'), tau);
      two += ds.length === 2 ? 1 : 0;
      none += ds.length === 0 ? 1 : 0;
    }
    assert.deepEqual([two, none], [7, 7]);
    assert.deepEqual(timeIndexDates(28, '2014-01-01', 'reference'), ['2014-01-29', '2014-02-01']);
    assert.throws(() => formatQuads(kg, kg.train), /do not map back/);
  });
  // the closed form equals the reference's year-by-year sum (up to its constant) over leap-year rules
  for (const d of ['1600-02-29', '1900-03-01', '2000-12-31', '2004-02-29', '2100-03-01', '2014-07-04']) {
    assert.equal(referenceDayNumber(d) - referenceDayNumber('1500-01-01'), refDay(d) - refDay('1500-01-01'), d);
  }
  // a data set that starts on a month's last day: the origin is the date with the smallest id (as the reference's min)
  withDir({ 'train.txt': 'A\tr\tB\t2014-01-31\nA\tr\tB\t2014-02-01\n', 'valid.txt': '', 'test.txt': 'A\tr\tB\t2014-02-04\n' }, (dir) => {
    const kg = readTemporalKG(dir, { dateIds: 'reference' });
    assert.equal(kg.origin, '2014-02-01');
    assert.deepEqual([...kg.train.tau, ...kg.test.tau], [2, 0, 3]);
  });
});

test('reader: integer time ids are used as given; CRLF and a missing final newline are accepted', () => {
  withDir({ 'train.txt': 'a\tr\tb\t3\r\nb\tr\ta\t0', 'valid.txt': 'a\tr\tb\t7\n', 'test.txt': 'a\tr\tb\t1\n' }, (dir) => {
    const kg = readTemporalKG(dir);
    assert.equal(kg.timeKind, 'index');
    assert.equal(kg.origin, null);
    assert.deepEqual(Array.from(kg.train.tau), [3, 0]);
    assert.equal(kg.numTimes, 8);
  });
});

test('reader: malformed input gives one clear error naming file and line', () => {
  const cases: [string, RegExp][] = [
    ['A\tlikes\tB\t2014-01-03\nA\tlikes\tB\n', /train\.txt:2: expected 4 tab-separated fields .* got 3/],
    ['A\tlikes\tB\t2014-01-03\n\nA\tlikes\tB\t2014-01-03\n', /train\.txt:2: empty line/],
    ['A\tlikes\tB\t2014-02-30\n', /train\.txt:1: time "2014-02-30" is neither a date/],
    ['A\tlikes\tB\tyesterday\n', /train\.txt:1: time "yesterday"/],
    ['A\t\tB\t2014-01-03\n', /train\.txt:1: empty relation field/],
    ['A\tlikes\tB\t2014-01-03\nA\tlikes\tB\t5\n', /train\.txt:2: time "5" is an integer id, but earlier lines use dates/],
  ];
  for (const [text, re] of cases) {
    withDir({ ...ok, 'train.txt': text }, (dir) => {
      assert.throws(() => readTemporalKG(dir), (e: unknown) => e instanceof KgFormatError && re.test(e.message) && e.message.includes(dir));
    });
  }
  withDir({ 'train.txt': ok['train.txt'], 'valid.txt': ok['valid.txt'] }, (dir) => {
    assert.throws(() => readTemporalKG(dir), /cannot read .*test\.txt \(ENOENT\)/);
  });
  withDir({ ...ok, 'train.txt': '' }, (dir) => {
    assert.throws(() => readTemporalKG(dir), /train\.txt: no facts/);
  });
  // valid.txt / test.txt may be empty (training without validation); evaluating them is refused there
  withDir({ ...ok, 'valid.txt': '', 'test.txt': '' }, (dir) => {
    const kg = readTemporalKG(dir);
    assert.equal(kg.valid.h.length, 0);
    assert.equal(kg.test.h.length, 0);
    assert.ok(kg.train.h.length > 0);
  });
});

test('QuadSet keys are exact and distinct', () => {
  const s = new QuadSet(7128, 230, 365);
  s.add(7127, 229, 7127, 364);
  s.add(0, 0, 0, 0);
  assert.ok(s.has(7127, 229, 7127, 364) && s.has(0, 0, 0, 0));
  assert.ok(!s.has(7127, 229, 7126, 364) && !s.has(0, 0, 0, 1) && !s.has(1, 0, 0, 0));
  assert.equal(s.size, 2);
});

test('synthetic KG: seeded, deterministic, every fact follows the generating rule', () => {
  const a = syntheticKG({ seed: 3 });
  const b = syntheticKG({ seed: 3 });
  const c = syntheticKG({ seed: 4 });
  assert.deepEqual(Array.from(a.train.t), Array.from(b.train.t));
  assert.notDeepEqual(Array.from(a.train.t), Array.from(c.train.t));
  const nE = 60;
  const gsize = 20;
  for (const q of [a.train, a.valid, a.test]) {
    for (let i = 0; i < q.h.length; i++) {
      const h = Number(a.entities[q.h[i]].slice(1));
      const r = Number(a.relations[q.r[i]].slice(1));
      const t = Number(a.entities[q.t[i]].slice(1));
      const tau = q.tau[i];
      const gt = (r + 1 + Math.floor(r / 3)) % 3;
      assert.equal(t, gt * gsize + ((h % gsize) + r + Math.floor(tau / 4)) % gsize);
      assert.ok(h < nE);
    }
  }
  assert.ok(a.valid.h.length > 30 && a.test.h.length > 30 && a.train.h.length > 600);
});

test('buildKG rejects mixing dates and ids across splits', () => {
  const raw = { train: parseQuadText('a\tr\tb\t2014-01-01\n', 'tr'), valid: parseQuadText('a\tr\tb\t4\n', 'va'), test: parseQuadText('a\tr\tb\t2014-01-01\n', 'te') };
  assert.throws(() => buildKG(raw), /va:1: time "4" is an integer id/);
});

test('ICEWS14 (../shared): canonical files by git blob hash, counts of the spec', { skip: existsSync(ICEWS) ? false : 'no ../shared/data/icews14' }, () => {
  const blobs: Record<string, string> = {
    'train.txt': 'c11643a07a2dd70c26131a6c660f9c4115fb0f0b',
    'valid.txt': '73d385953f2d813ec19f43fe11341f6974e88a6e',
    'test.txt': '31c99abed9094d6e9d486e4675aeacf3a665cad9',
  };
  for (const [f, sha] of Object.entries(blobs)) {
    let got: string;
    try {
      got = execFileSync('git', ['hash-object', join(ICEWS, f)], { encoding: 'utf8' }).trim();
    } catch {
      continue; // no git on PATH: the counts below still check the files
    }
    assert.equal(got, sha, f);
  }
  const kg = readTemporalKG(ICEWS);
  assert.equal(kg.entities.length, 7128);
  assert.equal(kg.relations.length, 230);
  assert.equal(kg.numTimes, 365);
  assert.equal(kg.origin, '2014-01-01');
  assert.deepEqual([kg.train.h.length, kg.valid.h.length, kg.test.h.length], [72826, 8941, 8963]);
  // spec: facts on day 0 (no time bump in the reference code): 91 train, 12 valid, 10 test
  const day0 = (q: { tau: Int32Array }): number => q.tau.filter((x) => x === 0).length;
  assert.deepEqual([day0(kg.train), day0(kg.valid), day0(kg.test)], [91, 12, 10]);
  // spec: 259 entities never occur in train
  const trainEnts = new Set([...kg.train.h, ...kg.train.t]);
  assert.equal(kg.entities.length - trainEnts.size, 259);
  assert.ok(readFileSync(join(ICEWS, 'train.txt'), 'utf8').startsWith('South Korea\tCriticize or denounce\tNorth Korea\t2014-05-13\n'));
});

function gitBlobSha1(text: string): string {
  const body = Buffer.from(text, 'utf8');
  return createHash('sha1').update(Buffer.concat([Buffer.from(`blob ${body.length}\0`), body])).digest('hex');
}

test('id-mapped copies convert back to the canonical text; errors name file:line', () => {
  const ents = parseIdMap('Alpha\t1\nBeta Gamma\t0\n', 'entity2id.txt');
  assert.deepEqual(ents, ['Beta Gamma', 'Alpha']);
  const rels = parseIdMap('Consult\t0\n', 'relation2id.txt');
  assert.equal(convertIdMapped('1 0 0 0\n0\t0\t1\t59\t-1\n', ents, rels, '2014-01-01', 'x.txt'), 'Alpha\tConsult\tBeta Gamma\t2014-01-01\nBeta Gamma\tConsult\tAlpha\t2014-03-01\n');
  assert.throws(() => convertIdMapped('1 0 2 0\n', ents, rels, '2014-01-01', 'x.txt'), /x\.txt:1: entity id 2 is not in the entity map/);
  assert.throws(() => convertIdMapped('1 0 x 0\n', ents, rels, '2014-01-01', 'x.txt'), /x\.txt:1: expected four/);
  assert.throws(() => parseIdMap('A\t0\nB\t0\n', 'e.txt'), /e\.txt:2: id 0 appears twice/);
  assert.throws(() => parseIdMap('A\t1\n', 'e.txt'), /no name for id 0/);
});

test('ICEWS14 (../shared): writing the parsed facts back, and converting an id-mapped copy, reproduce the canonical blobs', { skip: existsSync(ICEWS) ? false : 'no ../shared/data/icews14' }, () => {
  const kg = readTemporalKG(ICEWS);
  const sha = { train: 'c11643a07a2dd70c26131a6c660f9c4115fb0f0b', valid: '73d385953f2d813ec19f43fe11341f6974e88a6e', test: '31c99abed9094d6e9d486e4675aeacf3a665cad9' };
  for (const sp of ['train', 'valid', 'test'] as const) {
    assert.equal(gitBlobSha1(formatQuads(kg, kg[sp])), sha[sp], `${sp} written back`);
    // an id-mapped copy (ids and day offsets, as TEILP/TeMP distribute it) converts back byte for byte
    const q = kg[sp];
    const idLines = Array.from(q.h, (h, i) => `${h}\t${q.r[i]}\t${q.t[i]}\t${q.tau[i]}\n`).join('');
    const entMap = kg.entities.map((n, i) => `${n}\t${i}\n`).join('');
    const relMap = kg.relations.map((n, i) => `${n}\t${i}\n`).join('');
    const text = convertIdMapped(idLines, parseIdMap(entMap, 'e'), parseIdMap(relMap, 'r'), '2014-01-01', sp);
    assert.equal(gitBlobSha1(text), sha[sp], `${sp} converted`);
  }
});
