import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withBackend } from '../../src/tensor/index.js';
import { EmptySplitError, KnownFacts, evaluateSplit, filteredRank, filteredRanks, metricsFromRanks, subsample } from '../../src/models/boxte/index.js';
import type { Quads } from '../../src/io/kg.js';
import { hasNative } from '../helpers/numeric.js';
import { paramsOf, refScore } from './reference.js';
import { tinyModel } from './tiny.js';

test('filteredRank: known candidates are skipped, ties count in the model\'s favour', () => {
  const s = Float32Array.of(0.5, 0.1, 0.3, 0.3, 0.9, 0.2);
  // gold 2 (0.3): strictly better are 1 (0.1) and 5 (0.2); 3 ties
  assert.equal(filteredRank(s, 2, []), 3);
  assert.equal(filteredRank(s, 2, [2]), 3);
  assert.equal(filteredRank(s, 2, [1, 2]), 2);
  assert.equal(filteredRank(s, 2, [1, 5, 2, 4]), 1);
  assert.equal(filteredRank(s, 4, [0]), 5);
  assert.equal(filteredRank(s, 1, []), 1);
});

test('filteredRank: a non-finite score ranks as the worst (NaN never ties in the model\'s favour)', () => {
  // gold NaN: worst rank among the unfiltered candidates (6 candidates, 1 other filtered -> 5)
  const s = Float32Array.of(0.5, 0.1, NaN, 0.3, 0.9, 0.2);
  assert.equal(filteredRank(s, 2, []), 6);
  assert.equal(filteredRank(s, 2, [2, 4]), 5);
  assert.equal(filteredRank(Float32Array.of(Infinity, 1, 2), 0, []), 3);
  assert.equal(filteredRank(Float32Array.of(NaN, NaN, NaN), 1, []), 3);
  // non-finite candidates rank after a finite gold score
  assert.equal(filteredRank(Float32Array.of(0.4, NaN, -Infinity, Infinity, 0.1), 0, []), 2);
  assert.equal(filteredRank(Float32Array.of(0.4, NaN, -Infinity, Infinity, 0.1), 0, [4]), 1);
});

test('a model with a non-finite parameter is refused by evaluation', () => {
  const m = tinyModel();
  const q = quads([[0, 1, 2, 1]]);
  const known = new KnownFacts(5, 2, 3, [q]);
  assert.ok(filteredRanks(m, q, known)[0] >= 1);
  m.entityBump.f32()[4] = NaN;
  assert.throws(() => filteredRanks(m, q, known), /non-finite parameters|entity\.bump has 1 non-finite value, e\.g\. NaN/);
  m.entityBump.f32()[4] = 0.1;
  m.timeBumpTable!.f32()[2] = -Infinity;
  assert.throws(() => filteredRanks(m, q, known), /time\.bumps has 1 non-finite value, e\.g\. -Infinity/);
});

test('evaluating an empty split is refused (its metrics would be 0 / 0 = NaN)', () => {
  const m = tinyModel();
  const q = quads([[0, 1, 2, 1]]);
  const known = new KnownFacts(5, 2, 3, [q]);
  assert.ok(Number.isFinite(evaluateSplit(m, q, known).mrr));
  assert.throws(() => evaluateSplit(m, quads([]), known), (e: unknown) => e instanceof EmptySplitError && /no facts to evaluate/.test(e.message));
});

test('metrics from known ranks', () => {
  const m = metricsFromRanks([1, 2, 4, 20]);
  assert.equal(m.mr, 6.75);
  assert.ok(Math.abs(m.mrr - (1 + 0.5 + 0.25 + 0.05) / 4) < 1e-12);
  assert.deepEqual([m.hits1, m.hits3, m.hits10, m.queries], [0.25, 0.5, 0.75, 4]);
});

function quads(rows: number[][]): Quads {
  return {
    h: Int32Array.from(rows.map((x) => x[0])),
    r: Int32Array.from(rows.map((x) => x[1])),
    t: Int32Array.from(rows.map((x) => x[2])),
    tau: Int32Array.from(rows.map((x) => x[3])),
  };
}

test('time-aware filtered ranks on a hand-made KG equal a brute-force float64 ranking (head and tail, both kernels)', () => {
  const m = tinyModel({ numEntities: 6, numRelations: 2, numTimes: 3, dim: 5 }, 4, 0.9);
  const P = paramsOf(m);
  // the same (h, r, t) at several times, and several true tails for one (h, r, tau)
  const train = quads([[0, 0, 1, 0], [0, 0, 2, 1], [0, 0, 3, 1], [4, 1, 5, 2], [1, 1, 0, 1]]);
  const valid = quads([[0, 0, 4, 1], [2, 1, 5, 2]]);
  const test_ = quads([[0, 0, 5, 1], [3, 1, 5, 2], [0, 0, 1, 2], [5, 0, 5, 0]]);
  const known = new KnownFacts(6, 2, 3, [train, valid, test_]);
  const all = new Set<string>();
  for (const q of [train, valid, test_]) for (let i = 0; i < q.h.length; i++) all.add(`${q.h[i]},${q.r[i]},${q.t[i]},${q.tau[i]}`);
  const want: number[] = [];
  for (let i = 0; i < test_.h.length; i++) {
    const [h, r, t, tau] = [test_.h[i], test_.r[i], test_.t[i], test_.tau[i]];
    for (const dir of [0, 1]) {
      const gold = refScore(P, m.cfg, h, r, t, tau);
      let rank = 1;
      for (let x = 0; x < 6; x++) {
        const [hh, tt] = dir === 0 ? [x, t] : [h, x];
        if (all.has(`${hh},${r},${tt},${tau}`)) continue;
        if (refScore(P, m.cfg, hh, r, tt, tau) < gold - 1e-9) rank++;
      }
      want.push(rank);
    }
  }
  // the filter matters here: (0, 0, ?, 1) has four known tails
  assert.ok(known.tailsOf(0, 0, 1).length === 4 && known.headsOf(0, 5, 1).length === 1);
  for (const b of hasNative() && process.env.TFREE_BACKEND !== 'js' ? (['js', 'native'] as const) : (['js'] as const)) {
    const got = withBackend(b, () => filteredRanks(m, test_, known, { batch: 3 }));
    assert.deepEqual(Array.from(got), want, `backend ${b}`);
  }
  assert.ok(want.some((x) => x > 1), 'the hand-made case has ranks above 1');
});

test('subsample spreads evenly and keeps all when the limit is large', () => {
  const q = quads(Array.from({ length: 10 }, (_, i) => [i, 0, i, 0]));
  assert.deepEqual(Array.from(subsample(q, 3).h), [0, 3, 6]);
  assert.equal(subsample(q, 0), q);
  assert.equal(subsample(q, 20), q);
});
