/**
 * Divergent token metrics core (src/eval/dtm.ts), plans (src/eval/plan.ts) and SVG plots.
 * Pure arithmetic: backend-independent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmaxRows, divergence, matchingBlocks, meanKl, percentile, summarize, textLevelDivergence, wordDivergence } from '../../src/eval/dtm.js';
import { fdtPrecisionPlan, fdtSparsityPlan, maxLevelAtScore } from '../../src/eval/plan.js';
import { heatmapSvg, histogramSvg, lineSvg } from '../../src/eval/svg.js';
import { Rng } from '../../src/nn/index.js';

test('divergence: FDT is the first mismatch (N when none), SDT counts all mismatches', () => {
  assert.deepEqual(divergence([1, 2, 3, 4], [1, 2, 3, 4]), { fdt: 4, sdt: 0, length: 4 });
  assert.deepEqual(divergence([1, 2, 3, 4], [9, 2, 3, 4]), { fdt: 0, sdt: 1, length: 4 });
  assert.deepEqual(divergence([1, 2, 3, 4, 5], [1, 2, 7, 4, 8]), { fdt: 2, sdt: 2, length: 5 });
  assert.deepEqual(divergence([], []), { fdt: 0, sdt: 0, length: 0 });
  assert.throws(() => divergence([1], [1, 2]), /1 units, prediction 2/);
});

test('divergence: random sequences agree with a direct definition', () => {
  const rng = new Rng(1);
  for (let it = 0; it < 200; it++) {
    const n = rng.int(40);
    const ref = Array.from({ length: n }, () => rng.int(4));
    const pred = ref.map((v) => (rng.uniform(0, 1) < 0.2 ? rng.int(4) : v));
    const d = divergence(ref, pred);
    const mism = ref.map((v, i) => (v !== pred[i] ? i : -1)).filter((i) => i >= 0);
    assert.equal(d.fdt, mism.length ? mism[0] : n);
    assert.equal(d.sdt, mism.length);
  }
});

test('wordDivergence: a word diverges when any of its bytes does', () => {
  // words of lengths 2, 3, 1: bytes 0-1 | 2-4 | 5
  const ref = [1, 2, 3, 4, 5, 6];
  assert.deepEqual(wordDivergence(ref, [1, 2, 3, 4, 5, 6], [2, 3, 1]), { fdt: 3, sdt: 0, length: 3 });
  assert.deepEqual(wordDivergence(ref, [1, 2, 3, 9, 5, 6], [2, 3, 1]), { fdt: 1, sdt: 1, length: 3 });
  assert.deepEqual(wordDivergence(ref, [1, 0, 3, 9, 5, 0], [2, 3, 1]), { fdt: 0, sdt: 3, length: 3 });
  assert.throws(() => wordDivergence(ref, ref, [2, 3]), /sum to 5, expected 6/);
});

test('argmaxRows: lowest index wins ties', () => {
  assert.deepEqual([...argmaxRows([1, 3, 3, 0, 5, 5, 5, 2, -1], 3, 3)], [1, 1, 0]);
});

test('meanKl: matches a direct float64 computation, zero for equal logits, positive otherwise', () => {
  const rng = new Rng(2);
  const rows = 5;
  const cols = 7;
  const p = Array.from({ length: rows * cols }, () => rng.uniform(-3, 3));
  const q = p.map((v) => v + rng.uniform(-1, 1));
  let expect = 0;
  for (let r = 0; r < rows; r++) {
    const P = p.slice(r * cols, r * cols + cols).map(Math.exp);
    const Q = q.slice(r * cols, r * cols + cols).map(Math.exp);
    const ps = P.reduce((a, b) => a + b, 0);
    const qs = Q.reduce((a, b) => a + b, 0);
    expect += P.reduce((a, v, i) => a + (v / ps) * Math.log(v / ps / (Q[i] / qs)), 0);
  }
  expect /= rows;
  assert.ok(Math.abs(meanKl(p, q, rows, cols) - expect) < 1e-12);
  assert.ok(meanKl(p, p, rows, cols) < 1e-15);
  assert.ok(expect > 0);
});

test('percentile: linear interpolation between closest ranks (numpy default); summary', () => {
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.equal(percentile([4, 1, 3, 2], 25), 1.75);
  assert.equal(percentile([4, 1, 3, 2], 75), 3.25);
  assert.equal(percentile([7], 90), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile([1], 101), /\[0, 100\]/);
  const s = summarize([
    { fdt: 0, sdt: 5, length: 10 },
    { fdt: 10, sdt: 0, length: 10 },
    { fdt: 4, sdt: 1, length: 10 },
  ]);
  assert.equal(s.samples, 3);
  assert.ok(Math.abs(s.fdt_mean - 14 / 3) < 1e-12);
  assert.equal(s.fdt_median, 4);
  assert.equal(s.fdt_p25, 2);
  assert.equal(s.fdt_p75, 7);
  assert.equal(s.sdt_mean, 2);
  assert.equal(s.sdt_share, 0.2);
});

test('text-level variant: difflib-style matching blocks, FDT = first block at (0, 0)', () => {
  const a = [...'abxcd'].map((c) => c.charCodeAt(0));
  const b = [...'abcd'].map((c) => c.charCodeAt(0));
  // difflib.SequenceMatcher(None, 'abxcd', 'abcd').get_matching_blocks() -> (0,0,2), (3,2,2)
  assert.deepEqual(
    matchingBlocks(a, b).map((m) => [m.a, m.b, m.size]),
    [
      [0, 0, 2],
      [3, 2, 2],
    ],
  );
  assert.deepEqual(textLevelDivergence(a, b), { fdt: 2, sdt: 0, length: 4 });
  assert.deepEqual(textLevelDivergence([1, 2, 3], [4, 1, 2]), { fdt: 0, sdt: 1, length: 3 });
  assert.deepEqual(textLevelDivergence([5, 6], [5, 6]), { fdt: 2, sdt: 0, length: 2 });
});

test('Algorithm 1: interpolation inverse, water-filling reaches the target with the largest shared threshold', () => {
  const pts = [
    { x: 0, score: 100 },
    { x: 0.25, score: 80 },
    { x: 0.75, score: 20 },
    { x: 1, score: 0 },
  ];
  assert.equal(maxLevelAtScore(pts, 100), 0);
  assert.ok(Math.abs(maxLevelAtScore(pts, 90) - 0.125) < 1e-12);
  assert.ok(Math.abs(maxLevelAtScore(pts, 50) - 0.5) < 1e-12);
  assert.equal(maxLevelAtScore(pts, 0), 1);
  // non-monotone measurements are made monotone (running minimum) before inverting
  assert.ok(Math.abs(maxLevelAtScore([{ x: 0, score: 100 }, { x: 0.5, score: 40 }, { x: 0.7, score: 60 }, { x: 1, score: 0 }], 50) - 0.5 * (50 / 60)) < 1e-12);

  // a robust component (score stays high) and a sensitive one (collapses early)
  const components = [
    { name: 'robust', params: 300, points: [{ x: 0, score: 100 }, { x: 0.25, score: 98 }, { x: 0.75, score: 90 }, { x: 1, score: 0 }] },
    { name: 'fragile', params: 100, points: [{ x: 0, score: 100 }, { x: 0.25, score: 30 }, { x: 0.75, score: 5 }, { x: 1, score: 0 }] },
  ];
  const plan = fdtSparsityPlan(components, 0.5);
  assert.ok(plan.achieved >= 0.5 - 1e-9 && plan.achieved < 0.5 + 1e-6, `achieved ${plan.achieved}`);
  assert.ok(plan.sparsity.robust > plan.sparsity.fragile, JSON.stringify(plan));
  // the threshold is the largest one: a slightly higher threshold misses the target
  const higher = fdtSparsityPlan(components, 0.5 + 1e-3);
  assert.ok(higher.threshold <= plan.threshold);
  // the paper's integer grid gives a threshold at most one step below the exact one
  const grid = fdtSparsityPlan(components, 0.5, { step: 1 });
  assert.ok(grid.achieved >= 0.5 && plan.threshold - grid.threshold < 1 + 1e-9 && grid.threshold <= plan.threshold + 1e-9);
  assert.throws(() => fdtSparsityPlan([components[0], components[0]], 0.5), /appears twice/);
});

test('Algorithm 1 with tied scores (FDT saturated at its maximum, few prompts): the paper\'s rule overshoots, ties: share meets the target', () => {
  // as with 2 prompts on the bundled model: a free component keeps the maximum (32) up to 100%,
  // a robust one up to 75%, a fragile one up to 25%; at f = 32 the mean jumps from 0 to 0.6875
  const pts = (x: number, after: number): { x: number; score: number }[] => [{ x: 0, score: 32 }, { x: 0.25, score: 32 }, { x: 0.75, score: x >= 0.75 ? 32 : after }, { x: 1, score: x >= 1 ? 32 : after }];
  const components = [
    { name: 'free', params: 100, points: pts(1, 0) },
    { name: 'robust', params: 200, points: pts(0.75, 27.5) },
    { name: 'fragile', params: 100, points: pts(0.25, 11) },
  ];
  // the paper's stopping rule (the default, and its integer grid): the first threshold that reaches the target
  for (const opts of [{}, { ties: 'paper' as const }, { step: 1 }]) {
    const p = fdtSparsityPlan(components, 0.5, opts);
    assert.equal(p.threshold, 32);
    assert.ok(Math.abs(p.achieved - 0.6875) < 1e-12, `${JSON.stringify(opts)}: ${p.achieved}`);
  }
  const plan = fdtSparsityPlan(components, 0.5, { ties: 'share' });
  assert.equal(plan.threshold, 32);
  assert.ok(Math.abs(plan.achieved - 0.5) < 1e-12, `achieved ${plan.achieved} for a 0.5 target`);
  const share = 0.5 / 0.6875;
  assert.ok(Math.abs(plan.sparsity.free - share) < 1e-12 && Math.abs(plan.sparsity.robust - 0.75 * share) < 1e-12 && Math.abs(plan.sparsity.fragile - 0.25 * share) < 1e-12, JSON.stringify(plan));
  for (const c of components) assert.ok(maxLevelAtScore(c.points, plan.threshold) >= plan.sparsity[c.name], c.name);
  // a tie below the top: the bisection's threshold lands on one component's plateau (score 20
  // from 0.25 to 0.75) while the other changes continuously; sharing still meets the target
  const mid = [
    { name: 'plateau', params: 300, points: [{ x: 0, score: 40 }, { x: 0.25, score: 20 }, { x: 0.75, score: 20 }, { x: 1, score: 0 }] },
    { name: 'smooth', params: 100, points: [{ x: 0, score: 40 }, { x: 1, score: 0 }] },
  ];
  assert.ok(fdtSparsityPlan(mid, 0.5).achieved > 0.6);
  const m = fdtSparsityPlan(mid, 0.5, { ties: 'share' });
  assert.ok(Math.abs(m.threshold - 20) < 1e-9, `threshold ${m.threshold}`);
  assert.ok(Math.abs(m.achieved - 0.5) < 1e-9, `achieved ${m.achieved}`);
  // no tie: both rules give the same plan
  const smooth = [{ name: 'a', params: 1, points: [{ x: 0, score: 10 }, { x: 1, score: 0 }] }, { name: 'b', params: 3, points: [{ x: 0, score: 10 }, { x: 0.5, score: 2 }, { x: 1, score: 0 }] }];
  assert.deepEqual(fdtSparsityPlan(smooth, 0.4, { ties: 'share' }), fdtSparsityPlan(smooth, 0.4));
});

test('mixed precision plan: fewest bits per component within the shared threshold, budget met', () => {
  const opts = (s8: number, s4: number, s1: number): { format: string; bits: number; score: number }[] => [
    { format: 'int8', bits: 8.25, score: s8 },
    { format: 'int4', bits: 4.25, score: s4 },
    { format: 'bin1', bits: 1.25, score: s1 },
  ];
  const comps = [
    { name: 'a', params: 100, options: opts(100, 95, 60) },
    { name: 'b', params: 100, options: opts(100, 40, 5) },
  ];
  const p = fdtPrecisionPlan(comps, 5);
  assert.ok(p.bits <= 5);
  assert.deepEqual(p.format, { a: 'bin1', b: 'int8' });
  const q = fdtPrecisionPlan(comps, 7);
  assert.deepEqual(q.format, { a: 'int4', b: 'int8' });
  assert.throws(() => fdtPrecisionPlan(comps, 1), /above the budget/);
});

test('svg plots are well-formed standalone documents', () => {
  const docs = [
    histogramSvg([0, 1, 1, 5, 100, 100], { title: 'FDT <dist>', xLabel: 'FDT', lo: 0, hi: 100 }),
    lineSvg([{ name: 'k-means', points: [{ x: 1, y: 2 }, { x: 2, y: 1.5 }] }, { name: 'int', points: [{ x: 2, y: 1.8 }] }], { title: 't', xLabel: 'bits', yLabel: 'bpb' }),
    heatmapSvg(['layer 0', 'layer 1'], ['q', 'k'], [[1, 2], [Number.NaN, 4]], { title: 'h' }),
  ];
  for (const d of docs) {
    assert.match(d, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(d, /<\/svg>\n$/);
    assert.ok(!/NaN|undefined/.test(d.replace(/<title>[^<]*<\/title>/g, '')), d);
    // tags nest properly: every opened tag is closed in order or self-closed
    const stack: string[] = [];
    for (const m of d.matchAll(/<(\/?)([a-z]+)\b[^>]*?(\/?)>/g)) {
      if (m[1] === '/') assert.equal(stack.pop(), m[2], `unbalanced </${m[2]}>`);
      else if (m[3] !== '/') stack.push(m[2]);
    }
    assert.deepEqual(stack, []);
  }
  assert.match(docs[0], /FDT &lt;dist&gt;/);
});

test('fdtPrecisionPlan: with coarse (shared) scores the leftover budget is spent on the most damaged components', () => {
  // four equal components; every 2-bit option scores 10, every 8-bit option 100: at threshold 100
  // all take 8 bits (over a 5-bit budget), at threshold 10 all take 2 bits (2 bits: budget unused)
  const comps = ['a', 'b', 'c', 'd'].map((name) => ({
    name,
    params: 100,
    options: [
      { format: 'q2', bits: 2, score: 10 },
      { format: 'q8', bits: 8, score: 100 },
    ],
  }));
  const p = fdtPrecisionPlan(comps, 5);
  // two components at 8 bits: (8 + 8 + 2 + 2) / 4 = 5, exactly the budget
  assert.equal(p.bits, 5);
  assert.equal(Object.values(p.format).filter((f) => f === 'q8').length, 2);
});
