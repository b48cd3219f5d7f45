import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, noGrad, sum, mul, withBackend } from '../../src/tensor/index.js';
import { kernelVariants, restoreNative } from '../helpers/kernel_variants.js';
import { ParamStore, Rng, VarBuilder } from '../../src/nn/index.js';
import {
  boxTableStep,
  cornerGradStep,
  cornersBackward,
  cornersForward,
  timeBumpsBackward,
  timeBumpsForward,
  timeRegulariserStep,
  BoxTE,
  boxDistance,
  boxTable,
  cornerGrad,
  defaultConfig,
  jsBoxKernels,
  nativeBoxKernels,
  paramCount,
  filteredRank,
  rankFromComparisons,
  scoreBatchJs,
  type AdamRowsArgs,
  type BoxKernels,
  type BoxTEConfig,
} from '../../src/models/boxte/index.js';
import { assertClose, forEachBackend, hasNative } from '../helpers/numeric.js';
import { paramsOf, refDist, refLoss, refScore, refTimeReg, type RefParams } from './reference.js';
import { tinyModel } from './tiny.js';

function allFacts(cfg: BoxTEConfig): { h: Int32Array; r: Int32Array; t: Int32Array; tau: Int32Array } {
  const h: number[] = [];
  const r: number[] = [];
  const t: number[] = [];
  const tau: number[] = [];
  for (let a = 0; a < cfg.numEntities; a++)
    for (let b = 0; b < cfg.numRelations; b++)
      for (let c = 0; c < cfg.numEntities; c++)
        for (let s = 0; s < cfg.numTimes; s++) {
          h.push(a);
          r.push(b);
          t.push(c);
          tau.push(s);
        }
  return { h: Int32Array.from(h), r: Int32Array.from(r), t: Int32Array.from(t), tau: Int32Array.from(tau) };
}

test('distance: formulas inside/outside and continuity at both box borders', () => {
  const l = 0.2;
  const u = 1.4;
  // continuity at the border: the outside branch evaluated at p = l and p = u equals the inside one
  for (const p of [l, u]) {
    const w = u - l + 1;
    const c = (l + u) / 2;
    const outside = Math.abs(p - c) * w - 0.5 * (w - 1) * (w - 1 / w);
    assert.ok(Math.abs(outside - Math.abs(p - c) / w) < 1e-12, `continuity at ${p}`);
    for (const eps of [1e-4, -1e-4]) assert.ok(Math.abs(refDist(p + eps, l, u) - refDist(p, l, u)) < 1e-3);
  }
  const ps = [-1, 0.1, 0.2, 0.5, 0.8, 1.4, 1.5, 3];
  const P = Tensor.from(ps, [ps.length]);
  const got = boxDistance(P, Tensor.full([ps.length], l), Tensor.full([ps.length], u));
  assertClose(got, ps.map((p) => refDist(p, l, u)), { atol: 1e-6 });
  // inside is at most the half-width / w, outside grows with the distance
  assert.ok(refDist(0.8, l, u) < refDist(1.5, l, u) && refDist(1.5, l, u) < refDist(3, l, u));
});

test('hand-computed scores of a 2-d toy (no tanh), with and without a time bump', () => {
  const cfg = defaultConfig({ numEntities: 2, numRelations: 1, numTimes: 2, dim: 2, k: 2, tanh: false });
  const values: Record<string, number[]> = {
    'entity.base': [2.0, -0.5, 3, 2],
    'entity.bump': [0.25, 0.5, -0.5, 0],
    'relation.head.base': [0, 0],
    'relation.head.shape': [1, 1],
    'relation.head.size': [0],
    'relation.tail.base': [2, 0],
    'relation.tail.shape': [2, 0.5],
    'relation.tail.size': [0],
    'time.bumps': [5, 5, 5, 5, 0.1, 0.2, 0.3, -0.1],
    'relation.alpha': [1, 2],
  };
  const m = new BoxTE(cfg, new VarBuilder(new ParamStore(), { source: (name) => Float32Array.from(values[name]) }));
  // head box [-1, 1]^2 (w = 3, c = 0); tail box [0, 4] x [-0.5, 0.5] (w = (5, 2), c = (2, 0))
  // day 0 (no bump): p_h = e0 + b1 = (1.5, -0.5), p_t = e1 + b0 = (3.25, 2.5)
  const head0 = Math.hypot(1.5 * 3 - 0.5 * 2 * (3 - 1 / 3), 0.5 / 3);
  const tail0 = Math.hypot(1.25 / 5, 2.5 * 2 - 0.5 * 1 * (2 - 1 / 2));
  // day 1: tb = 1 * (0.1, 0.2) + 2 * (0.3, -0.1) = (0.7, 0): p_h = (2.2, -0.5), p_t = (3.95, 2.5)
  const head1 = Math.hypot(2.2 * 3 - 0.5 * 2 * (3 - 1 / 3), 0.5 / 3);
  const tail1 = Math.hypot(1.95 / 5, 2.5 * 2 - 0.5 * 1 * (2 - 1 / 2));
  assert.ok(Math.abs(head0 - Math.sqrt(122) / 6) < 1e-12 && Math.abs(tail0 - Math.sqrt(18.125)) < 1e-12);
  const s = noGrad(() => m.score(Int32Array.of(0, 0), Int32Array.of(0, 0), Int32Array.of(1, 1), Int32Array.of(0, 1))).toArray();
  assertClose(s, [head0 + tail0, head1 + tail1], { atol: 1e-5 });
});

forEachBackend('score matches the float64 reference (BoxTE, BoxE, L1, no tanh, no alpha, bump on day 0)', () => {
  const variants: Partial<BoxTEConfig>[] = [{}, { model: 'boxe', k: 0 }, { order: 1 }, { tanh: false }, { useAlpha: false }, { noBumpDay0: false }];
  variants.forEach((v, vi) => {
    const m = tinyModel(v, 10 + vi);
    const P = paramsOf(m);
    const f = allFacts(m.cfg);
    const got = noGrad(() => m.score(f.h, f.r, f.t, f.tau)).toArray();
    const want = got.map((_, i) => refScore(P, m.cfg, f.h[i], f.r[i], f.t[i], f.tau[i]));
    assertClose(got, want, { atol: 2e-5, rtol: 1e-5 });
  });
});

/** Central differences of a float64 function of the parameters. */
function numericGrad(P: RefParams, f: () => number, name: string, eps = 1e-6): Float64Array {
  const a = P[name];
  const g = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    a[i] = x + eps;
    const up = f();
    a[i] = x - eps;
    const down = f();
    a[i] = x;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

forEachBackend('gradient of the score (autograd) matches finite differences of the float64 reference', () => {
  for (const v of [{}, { model: 'boxe', k: 0 } as const, { order: 1 } as const]) {
    const m = tinyModel(v, 3);
    const P = paramsOf(m);
    const f = allFacts(m.cfg);
    const rng = new Rng(7);
    const wts = Float64Array.from({ length: f.h.length }, () => rng.uniform(-1, 1));
    const s = m.score(f.h, f.r, f.t, f.tau);
    sum(mul(s, new Tensor(Float32Array.from(wts), [wts.length]))).backward();
    const fn = (): number => {
      let acc = 0;
      for (let i = 0; i < wts.length; i++) acc += wts[i] * refScore(P, m.cfg, f.h[i], f.r[i], f.t[i], f.tau[i]);
      return acc;
    };
    for (const [name, p] of m.store.entries()) {
      if (!p.requiresGrad) continue;
      const num = numericGrad(P, fn, name);
      assert.ok(p.grad !== null, `${name} has a gradient`);
      assertClose(p.grad, num, { atol: 2e-3, rtol: 2e-3 });
    }
  }
});

test('time regulariser matches the float64 reference (the paper form divided by k) and its gradient', () => {
  const m = tinyModel({ numTimes: 4, k: 3 }, 5);
  const P = paramsOf(m);
  const reg = m.timeRegulariser();
  assertClose([reg.item()], [refTimeReg(P, m.cfg)], { rtol: 1e-5 });
  reg.backward();
  assertClose(m.timeBumpTable!.grad!, numericGrad(P, () => refTimeReg(P, m.cfg), 'time.bumps'), { atol: 1e-4, rtol: 1e-3 });
});

/** B random training facts (time ids 0, 1, 2, ...) with n random negatives each, both sides mixed. */
function randomGroups(rng: Rng, B: number, n: number, R: number, E: number): { h: Int32Array; r: Int32Array; t: Int32Array; tau: Int32Array; negEnt: Int32Array; negTail: Uint8Array } {
  const h = Int32Array.from({ length: B }, () => rng.int(E));
  const r = Int32Array.from({ length: B }, () => rng.int(R));
  const t = Int32Array.from({ length: B }, () => rng.int(E));
  const tau = Int32Array.from({ length: B }, (_, i) => i % 3);
  const negEnt = Int32Array.from({ length: B * n }, () => rng.int(E));
  const negTail = Uint8Array.from({ length: B * n }, () => (rng.float() < 0.5 ? 1 : 0));
  return { h, r, t, tau, negEnt, negTail };
}

/** The TypeScript kernels, and the native ones at every path the CPU has, 1 and 2 threads. */
function kernelsUnderTest(): [string, BoxKernels, () => void][] {
  const out: [string, BoxKernels, () => void][] = [['js', jsBoxKernels, () => undefined]];
  const n = nativeBoxKernels();
  if (n === null || process.env.TFREE_BACKEND === 'js') return out;
  for (const v of kernelVariants()) {
    if (v.name === 'js') continue;
    out.push([v.name, n, v.setup]);
  }
  return out;
}

function restoreBoxKernels(): void {
  restoreNative();
}

test('fused training kernels: loss and every gradient equal autograd of the op-based loss', () => {
  for (const v of [{}, { model: 'boxe', k: 0 } as const, { order: 1 } as const, { dim: 37 }]) {
    const m = tinyModel({ numEntities: 7, dim: 11, ...v }, 21, 0.8);
    const { dim: d, numRelations: R, numEntities: E } = m.cfg;
    const rng = new Rng(3);
    const B = 4;
    const n = 5;
    const G = n + 1;
    const { h, r, t, tau, negEnt, negTail } = randomGroups(rng, B, n, R, E);
    // expanded candidate lists for the op-based loss
    const H = new Int32Array(B * G);
    const Rr = new Int32Array(B * G);
    const T = new Int32Array(B * G);
    const Tau = new Int32Array(B * G);
    for (let i = 0; i < B; i++)
      for (let j = 0; j < G; j++) {
        const q = i * G + j;
        H[q] = h[i];
        T[q] = t[i];
        Rr[q] = r[i];
        Tau[q] = tau[i];
        if (j > 0) {
          if (negTail[i * n + j - 1] === 1) T[q] = negEnt[i * n + j - 1];
          else H[q] = negEnt[i * n + j - 1];
        }
      }
    const ref = m.loss(H, Rr, T, Tau, G);
    assertClose([ref.item()], [refLoss(paramsOf(m), m.cfg, H, Rr, T, Tau, G)], { rtol: 1e-5 });
    ref.backward();
    const want = new Map(m.store.entries().map(([nme, p]) => [nme, p.grad === null ? null : Float32Array.from(p.grad.f32())]));
    for (const [kname, k, setup] of kernelsUnderTest()) {
      setup();
      m.store.zeroGrad();
      const boxesT = m.stackedBoxes();
      const tbT = m.timeBumps(r, tau);
      const gc = new Float32Array(2 * R * d);
      const gw = new Float32Array(2 * R * d);
      const gTb = new Float32Array(B * d).fill(Number.NaN); // must be overwritten
      const gBase = new Float32Array(E * d);
      const gBump = new Float32Array(E * d);
      const loss = k.trainGroups({
        B, n, d, tanh: m.cfg.tanh, order: m.cfg.order, base: m.entityBase.f32(), bump: m.entityBump.f32(),
        boxes: boxTable(boxesT.f32(), R, d), tb: tbT.f32(), h, r, t, negEnt, negTail, gradScale: 1 / B,
        gBase, gBump, gc, gw, gTb,
      });
      assertClose([loss / B], [ref.item()], { rtol: 1e-5, what: `${kname} loss` });
      if (k.name === 'native') {
        // with one extra slot, chunk 1's entity gradients stay in the slot: g0 + slot is the same sum
        const slot = new Float32Array(2 * E * d);
        const g0 = new Float32Array(E * d);
        const g1 = new Float32Array(E * d);
        const loss2 = k.trainGroups({
          B, n, d, tanh: m.cfg.tanh, order: m.cfg.order, base: m.entityBase.f32(), bump: m.entityBump.f32(),
          boxes: boxTable(boxesT.f32(), R, d), tb: tbT.f32(), h, r, t, negEnt, negTail, gradScale: 1 / B,
          gBase: g0, gBump: g1, gc: new Float32Array(2 * R * d), gw: new Float32Array(2 * R * d), gTb: new Float32Array(B * d), slots: { data: slot, count: 1 },
        });
        assert.equal(loss2, loss, `${kname}: same loss with slots`);
        assert.deepEqual(g0.map((x, i) => x + slot[i]), gBase, `${kname}: base gradient = g0 + slot`);
        assert.deepEqual(g1.map((x, i) => x + slot[E * d + i]), gBump, `${kname}: bump gradient = g0 + slot`);
      }
      m.entityBase.grad = new Tensor(gBase, m.entityBase.shape);
      m.entityBump.grad = new Tensor(gBump, m.entityBump.shape);
      boxesT.backward(cornerGrad(gc, gw, R, d));
      if (tbT.requiresGrad) tbT.backward(gTb);
      for (const [nme, p] of m.store.entries()) {
        const w = want.get(nme) ?? null;
        if (w === null) {
          assert.equal(p.grad, null, `${kname}: ${nme} should have no gradient`);
          continue;
        }
        assert.ok(p.grad !== null, `${kname}: ${nme} has a gradient`);
        assertClose(p.grad, w, { atol: 2e-6, rtol: 1e-4, what: `${kname} grad ${nme}` });
      }
    }
  }
  restoreBoxKernels();
});

test('training forward through the exponentials (AVX-512 and AVX2, tanh): rows beyond |x| = 40 fall back, NaN stays NaN, close to the TypeScript kernels, same bits when run again', () => {
  const m = tinyModel({ numEntities: 9, dim: 37 }, 5, 0.8);
  const { dim: d, numRelations: R, numEntities: E } = m.cfg;
  const base = Float32Array.from(m.entityBase.f32());
  const bump = Float32Array.from(m.entityBump.f32());
  base[2 * d + 5] = 45; // candidate row 2 beyond the exp range: tanh16 of the float sum
  bump[3 * d + 36] = -41; // candidate row 3 (masked tail lane)
  base[1 * d + 7] = 39.9; // true head 1: base + time bump beyond 40 in some groups (fixed part falls back)
  const rng = new Rng(8);
  const B = 6;
  const n = 8;
  const h = Int32Array.from({ length: B }, (_, i) => (i % 2 === 0 ? 1 : rng.int(E)));
  const r = Int32Array.from({ length: B }, () => rng.int(R));
  const t = Int32Array.from({ length: B }, () => rng.int(E));
  const tau = Int32Array.from({ length: B }, (_, i) => i % 3);
  const negEnt = Int32Array.from({ length: B * n }, (_, q) => (q % 4 === 0 ? 2 + (q % 8 === 0 ? 1 : 0) : rng.int(E)));
  const negTail = Uint8Array.from({ length: B * n }, () => (rng.float() < 0.5 ? 1 : 0));
  const boxes = boxTable(m.stackedBoxes().f32(), R, d);
  const tb = m.timeBumps(r, tau).f32();
  const run = (k: BoxKernels, b: Float32Array): { loss: number; g: Float32Array[] } => {
    const g = [new Float32Array(E * d), new Float32Array(E * d), new Float32Array(2 * R * d), new Float32Array(2 * R * d), new Float32Array(B * d)];
    const loss = k.trainGroups({
      B, n, d, tanh: true, order: m.cfg.order, base: b, bump, boxes, tb, h, r, t, negEnt, negTail, gradScale: 1 / B,
      gBase: g[0], gBump: g[1], gc: g[2], gw: g[3], gTb: g[4],
    });
    return { loss, g };
  };
  const want = run(jsBoxKernels, base);
  assert.ok(Number.isFinite(want.loss) && want.loss > 0);
  const nanBase = Float32Array.from(base);
  nanBase[4 * d + 3] = Number.NaN;
  for (const [kname, k, setup] of kernelsUnderTest()) {
    if (k.name !== 'native') continue;
    setup();
    const res = run(k, base);
    assertClose([res.loss], [want.loss], { rtol: 2e-6, what: `${kname} loss` });
    for (let i = 0; i < 5; i++) assertClose(res.g[i], want.g[i], { atol: 2e-6, rtol: 1e-4, what: `${kname} gradient ${i}` });
    assert.deepEqual(run(k, base), res, `${kname}: same bits when run again`);
    // a NaN coordinate of a candidate's row (row 4 is a negative of some group) makes the loss NaN
    assert.ok(negEnt.includes(4) || h.includes(4) || t.includes(4));
    assert.ok(Number.isNaN(run(k, nanBase).loss), `${kname}: NaN in, NaN loss`);
  }
  restoreBoxKernels();
});

test('fused entity Adam (adamRows): the AdamW rule (weight decay 0) on g0 + slots at every native path and thread count; buffers zeroed', { skip: nativeBoxKernels() === null ? 'native kernels unavailable' : false }, () => {
  const n = 16 * 70 + 7; // a masked / scalar tail
  const rng = new Rng(11);
  const rand = (scale: number): Float32Array => Float32Array.from({ length: n }, () => (rng.float() * 2 - 1) * scale);
  const p0 = rand(0.5);
  const g0 = rand(0.1);
  const slots = new Float32Array(2 * 2 * n); // [count 2][2 tables][n]; this table at offset n
  for (let i = 0; i < n; i++) {
    slots[n + i] = (rng.float() * 2 - 1) * 0.1;
    slots[3 * n + i] = (rng.float() * 2 - 1) * 0.1;
  }
  const m0 = rand(0.01);
  const v0 = rand(1e-4).map(Math.abs);
  const [lr, b1, b2, eps, step] = [1e-2, 0.9, 0.999, 1e-8, 3];
  const bc1 = 1 - b1 ** step;
  const bc2 = 1 - b2 ** step;
  // float64 reference of the rule
  const want = { p: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const g = Math.fround(Math.fround(g0[i] + slots[n + i]) + slots[3 * n + i]); // summed in f32, slot order
    // the constants as the kernel holds them (f32; 1 - b2 in f32 differs from 0.001 by 1e-5 relative)
    const m = Math.fround(b1) * m0[i] + Math.fround(1 - Math.fround(b1)) * g;
    const v = Math.fround(b2) * v0[i] + Math.fround(1 - Math.fround(b2)) * g * g;
    want.m[i] = m;
    want.v[i] = v;
    want.p[i] = p0[i] - (lr * (m / bc1)) / (Math.sqrt(v / bc2) + eps);
  }
  const results = new Map<string, Float32Array>();
  const k = nativeBoxKernels()!;
  for (const v of kernelVariants()) {
    if (v.name === 'js') continue;
    v.setup();
    const p = p0.slice();
    const m = m0.slice();
    const vv = v0.slice();
    const g = g0.slice();
    const sl = slots.slice();
    k.adamRows!({ p, g0: g, slots: { data: sl, count: 2, offset: n }, m, v: vv, lr, b1, b2, eps, bc1, bc2 });
    assertClose(m, want.m, { atol: 1e-8, rtol: 1e-5, what: `${v.name} m` });
    assertClose(vv, want.v, { atol: 1e-10, rtol: 1e-5, what: `${v.name} v` });
    assertClose(p, want.p, { atol: 1e-7, rtol: 1e-5, what: `${v.name} p` });
    assert.ok(g.every((x) => x === 0), `${v.name}: g0 zeroed`);
    assert.ok(sl.subarray(n, 2 * n).every((x) => x === 0) && sl.subarray(3 * n).every((x) => x === 0), `${v.name}: this table's slots zeroed`);
    assert.deepEqual(sl.subarray(0, n), slots.subarray(0, n), `${v.name}: the other table's slots untouched`);
    results.set(v.name, Float32Array.from([...p, ...m, ...vv]));
  }
  // elementwise: the thread count never matters; the FMA paths (AVX-512 and AVX2) run one rule
  const same = (a: string, b: string): void => {
    if (results.has(a) && results.has(b)) assert.deepEqual(results.get(a), results.get(b), `${a} = ${b}`);
  };
  for (const isa of ['avx512', 'avx2', 'generic']) same(`native ${isa} 1T`, `native ${isa} 2T`);
  same('native avx512 1T', 'native avx2 1T');
  restoreBoxKernels();
});

test('training kernel above d = 256 (AVX2: forward and backward in tiles of 128 dimensions, the last with the d mod 8 remainder; rows beyond the exp range fall back): close to the TypeScript kernel, same bits when run again, every native path', () => {
  const m = tinyModel({ numEntities: 9, dim: 300 }, 5, 0.8);
  const { dim: d, numRelations: R, numEntities: E } = m.cfg;
  const rng = new Rng(23);
  const B = 5;
  const n = 6;
  const { h, r, t, tau, negEnt, negTail } = randomGroups(rng, B, n, R, E);
  const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
  const tb = noGrad(() => m.timeBumps(r, tau)).f32();
  const base = Float32Array.from(m.entityBase.f32());
  const bump = Float32Array.from(m.entityBump.f32());
  base[negEnt[1] * d + 200] = 45; // a negative's row beyond the exp range (its candidate falls back)
  bump[h[0] * d + 299] = -41; // a true head's row (the group's fixed part falls back), remainder lane
  const run = (k: BoxKernels): { loss: number; g: Float32Array[] } => {
    const g = [new Float32Array(E * d), new Float32Array(E * d), new Float32Array(2 * R * d), new Float32Array(2 * R * d), new Float32Array(B * d)];
    const loss = k.trainGroups({
      B, n, d, tanh: true, order: 2, base, bump, boxes, tb, h, r, t, negEnt, negTail, gradScale: 1 / B,
      gBase: g[0], gBump: g[1], gc: g[2], gw: g[3], gTb: g[4],
    });
    return { loss, g };
  };
  const want = run(jsBoxKernels);
  for (const [kname, k, setup] of kernelsUnderTest()) {
    if (k.name !== 'native') continue;
    setup();
    const res = run(k);
    assertClose([res.loss], [want.loss], { rtol: 2e-6, what: `${kname} loss` });
    for (let i = 0; i < 5; i++) assertClose(res.g[i], want.g[i], { atol: 2e-6, rtol: 1e-4, what: `${kname} gradient ${i}` });
    assert.deepEqual(run(k), res, `${kname}: same bits when run again`);
  }
  restoreBoxKernels();
});

test('lazy zeroing of the entity gradients (trainGroups + adamRows `lazy`): three steps on stale buffers give the bits of zeroed buffers, every kernel variant, 1 and 2 chunks; the same through adamRowsStart / adamRowsWait (both tables in the background, another kernel and an adamRows on other arrays run meanwhile), and pipelined (adamRowsStart with expD left running, the next step\'s expTableStart takes its table, trainGroups waits)', () => {
  // d = 13 (a masked tail in every row), repeated entities within groups
  const m = tinyModel({ numEntities: 9, dim: 13 }, 5, 0.8);
  const { dim: d, numRelations: R, numEntities: E } = m.cfg;
  const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
  const B = 6;
  const n = 4;
  const rng = new Rng(17);
  const steps = [0, 1, 2].map(() => ({
    h: Int32Array.from({ length: B }, () => rng.int(E)),
    r: Int32Array.from({ length: B }, () => rng.int(R)),
    t: Int32Array.from({ length: B }, () => rng.int(E)),
    negEnt: Int32Array.from({ length: B * n }, () => rng.int(5)), // entities 5..8 stay out of the negatives
    negTail: Uint8Array.from({ length: B * n }, () => (rng.float() < 0.5 ? 1 : 0)),
    tb: Float32Array.from({ length: B * d }, () => (rng.float() * 2 - 1) * 0.1),
  }));
  const [lr, b1, b2, eps] = [1e-2, 0.9, 0.999, 1e-8];
  // a kernel run while the pool is held by the background Adam (on one thread then): same value and gradient
  const K = Float32Array.from({ length: 40 * 16 }, () => rng.float() - 0.5);
  const regOf = (k: BoxKernels): Float32Array => {
    const gK = new Float32Array(K.length);
    const v = k.small === null ? 0 : k.small.timeReg(40, 16, K, 0.3, gK);
    return Float32Array.from([v, ...gK]);
  };
  // an adamRows on other arrays while the pool is held: same bits as alone
  const small = (k: BoxKernels): Float32Array => {
    const p = Float32Array.from({ length: 3 * d }, (_, i) => Math.sin(i));
    const g = Float32Array.from(p, (x) => x * 0.5 - 0.1);
    k.adamRows?.({ p, g0: g, slots: null, m: new Float32Array(p.length), v: new Float32Array(p.length), lr: 1e-2, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001 });
    return p;
  };
  const run = (k: BoxKernels, lazy: boolean, count: number, background = false, pipelined = false, armed = false): Float32Array => {
    const base = m.entityBase.f32().slice();
    const bump = m.entityBump.f32().slice();
    const mom = [0, 1, 2, 3].map(() => new Float32Array(E * d));
    const gBase = new Float32Array(E * d);
    const gBump = new Float32Array(E * d);
    const slots = { data: new Float32Array(count * 2 * E * d), count };
    const stamps = new Int32Array((count + 1) * 2 * E);
    if (lazy) {
      // stale garbage everywhere: only stamped rows may be read
      for (const a of [gBase, gBump, slots.data]) a.fill(7.5);
    }
    const losses: number[] = [];
    steps.forEach((st, si) => {
      const step = si + 1;
      // pipelined: the last step's Adam may still run; this takes the table it makes (trainGroups waits)
      if (pipelined) k.expTableStart?.(base, bump, d);
      const bc1 = 1 - b1 ** step;
      const bc2 = 1 - b2 ** step;
      const args = ([[base, gBase, 0, 0], [bump, gBump, E * d, 1]] as const).map(([p, g0, offset, table]) => ({
        p, g0, slots: count === 0 ? null : { data: slots.data, count, offset }, m: mom[2 * table], v: mom[2 * table + 1], lr, b1, b2, eps, bc1, bc2,
        lazy: lazy ? { stamps, step, d, table } : undefined,
      }));
      const last = si + 1 === steps.length;
      // armed: trainGroups starts the updates after its parallel part (as adamRowsStart right after it)
      const armReg = armed ? regOf(k) : null;
      const armSmall = armed ? small(k) : null;
      if (armed && k.adamRowsArm !== null) k.adamRowsArm(args, pipelined && !last ? d : undefined);
      const loss = k.trainGroups({
        B, n, d, tanh: true, order: 2, base, bump, boxes, tb: st.tb, h: st.h, r: st.r, t: st.t, negEnt: st.negEnt, negTail: st.negTail,
        gradScale: 1 / B, gBase, gBump, gc: new Float32Array(2 * R * d), gw: new Float32Array(2 * R * d), gTb: new Float32Array(B * d),
        slots: k.name === 'native' ? slots : undefined, lazy: lazy ? { stamps, step } : undefined,
      });
      losses.push(loss);
      if (k.adamRows === null) {
        // the TypeScript kernel: the stamped rows hold the sums, every row the kernel added to is stamped
        return;
      }
      if (armed && k.adamRowsArm !== null) {
        assert.deepEqual(regOf(k), armReg, 'a kernel run during the armed Adam');
        assert.deepEqual(small(k), armSmall, 'an adamRows on other arrays during the armed Adam');
        if (!pipelined || last) k.adamRowsWait();
      } else if (background && k.adamRowsStart !== null) {
        const reg = regOf(k);
        const sm = small(k);
        k.adamRowsStart(args, pipelined && !last ? d : undefined);
        assert.deepEqual(regOf(k), reg, 'a kernel run during the background Adam');
        assert.deepEqual(small(k), sm, 'an adamRows on other arrays during the background Adam');
        if (!pipelined || last) {
          k.adamRowsWait();
          k.adamRowsWait(); // (nothing left to wait for)
        }
      } else for (const a of args) k.adamRows(a);
    });
    if (k.adamRows === null) {
      const rows = (g: Float32Array, q: number): Float32Array => Float32Array.from(g, (x, i) => (!lazy || stamps[q * E + Math.floor(i / d)] === steps.length ? x : 0));
      return Float32Array.from([...losses, ...rows(gBase, 0), ...rows(gBump, 1)]);
    }
    return Float32Array.from([...losses, ...base, ...bump, ...mom.flatMap((x) => [...x])]);
  };
  // the TypeScript kernel (no adamRows): the last step's gradients, stale rows masked, equal those of zeroed buffers
  {
    const zeroedJs = (): Float32Array => {
      const gBase = new Float32Array(E * d);
      const gBump = new Float32Array(E * d);
      const st = steps[steps.length - 1];
      const loss = jsBoxKernels.trainGroups({
        B, n, d, tanh: true, order: 2, base: m.entityBase.f32(), bump: m.entityBump.f32(), boxes, tb: st.tb, h: st.h, r: st.r, t: st.t,
        negEnt: st.negEnt, negTail: st.negTail, gradScale: 1 / B, gBase, gBump, gc: new Float32Array(2 * R * d), gw: new Float32Array(2 * R * d), gTb: new Float32Array(B * d),
      });
      return Float32Array.from([loss, ...gBase, ...gBump]);
    };
    const lazyJs = run(jsBoxKernels, true, 0);
    assert.deepEqual(lazyJs.subarray(steps.length - 1), zeroedJs(), 'js: stamped rows = the zeroed buffers\' sums, the rest 0');
  }
  const nk = nativeBoxKernels();
  if (nk !== null && process.env.TFREE_BACKEND !== 'js') {
    for (const v of kernelVariants()) {
      if (v.name === 'js') continue;
      v.setup();
      // no slot: the lazy kernel runs one chunk (documented), so 0 slots only at 1 thread
      for (const count of v.name.endsWith('1T') ? [0, 1] : [1]) {
        const want = run(nk, false, count);
        assert.ok(want.every(Number.isFinite));
        assert.deepEqual(run(nk, true, count), want, `${v.name}, ${count} slot(s): lazy = zeroed, bit for bit`);
        assert.ok(nk.adamRowsStart !== null, 'the addon has adamRowsStart');
        assert.deepEqual(run(nk, true, count, true), want, `${v.name}, ${count} slot(s): background = zeroed, bit for bit`);
        assert.deepEqual(run(nk, false, count, true), want, `${v.name}, ${count} slot(s): background without stamps = zeroed, bit for bit`);
        assert.deepEqual(run(nk, true, count, true, true), want, `${v.name}, ${count} slot(s): pipelined = zeroed, bit for bit`);
        assert.ok(nk.adamRowsArm !== null, 'the addon has adamRowsArm');
        assert.deepEqual(run(nk, true, count, true, false, true), want, `${v.name}, ${count} slot(s): armed (started by trainGroups) = zeroed, bit for bit`);
        assert.deepEqual(run(nk, true, count, true, true, true), want, `${v.name}, ${count} slot(s): armed and pipelined = zeroed, bit for bit`);
        assert.deepEqual(run(nk, false, count, true, false, true), want, `${v.name}, ${count} slot(s): armed without stamps = zeroed, bit for bit`);
      }
    }
  }
  restoreBoxKernels();
});

test('expTableStart: trainGroups after it gives the bits of trainGroups alone (d = 13 and 300), another call in between equal to its value outside; a start on other tables or before adamRows is not used', { skip: nativeBoxKernels() === null ? 'native kernels unavailable' : false }, () => {
  const k = nativeBoxKernels()!;
  for (const dim of [13, 300]) {
    const m = tinyModel({ numEntities: 9, dim }, 5, 0.8);
    const { dim: d, numRelations: R, numEntities: E } = m.cfg;
    const rng = new Rng(29);
    const B = 5;
    const n = 6;
    const { h, r, t, negEnt, negTail } = randomGroups(rng, B, n, R, E);
    const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
    const tb = Float32Array.from({ length: B * d }, () => (rng.float() * 2 - 1) * 0.1);
    const base = Float32Array.from(m.entityBase.f32());
    const bump = Float32Array.from(m.entityBump.f32());
    const run = (): Float32Array => {
      const g = [new Float32Array(E * d), new Float32Array(E * d), new Float32Array(2 * R * d), new Float32Array(2 * R * d), new Float32Array(B * d)];
      const loss = k.trainGroups({ B, n, d, tanh: true, order: 2, base, bump, boxes, tb, h, r, t, negEnt, negTail, gradScale: 1 / B, gBase: g[0], gBump: g[1], gc: g[2], gw: g[3], gTb: g[4] });
      return Float32Array.from([loss, ...g.flatMap((x) => [...x])]);
    };
    const K = Float32Array.from({ length: 40 * 16 }, () => rng.float() - 0.5);
    const reg = (): number => k.small!.timeReg(40, 16, K, 0.3, new Float32Array(K.length));
    for (const v of kernelVariants()) {
      if (v.name === 'js') continue;
      v.setup();
      const want = run();
      const regWant = reg();
      assert.ok(k.expTableStart !== null, 'the addon has expTableStart');
      k.expTableStart(base, bump, d);
      assert.equal(reg(), regWant, `${v.name} d=${d}: a kernel run while the table is computed`);
      assert.deepEqual(run(), want, `${v.name} d=${d}: with the table started before`);
      // started on copies (other tables): not used, the kernel computes its own
      const other = base.map((x) => x + 0.5);
      k.expTableStart(other, bump, d);
      assert.deepEqual(run(), want, `${v.name} d=${d}: a start on other tables`);
      // started, then adamRows changes base: the kernel must not use the stale table
      k.expTableStart(base, bump, d);
      const saved = base.slice();
      const z = new Float32Array(base.length);
      k.adamRows!({ p: base, g0: Float32Array.from(base, () => 0.3), slots: null, m: z.slice(), v: z.slice(), lr: 0.5, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001 });
      assert.notDeepEqual(base, saved);
      const moved = run();
      k.expTableStart(base, bump, d);
      assert.deepEqual(moved, run(), `${v.name} d=${d}: a start before adamRows is not used`);
      base.set(saved);
      // adamRowsStart with expD (its job makes the table of the updated tables), then adamRows changes
      // base again: the next expTableStart must not take the stale table; unchanged, it takes it
      const stamps = new Int32Array(2 * E);
      const lazyArgs = (p: Float32Array, table: 0 | 1): AdamRowsArgs => ({
        p, g0: new Float32Array(E * d), slots: null, m: Float32Array.from(p, () => 0.01), v: Float32Array.from(p, () => 1e-4), lr: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001,
        lazy: { stamps, step: 1, d, table },
      });
      const savedBump = bump.slice();
      for (const change of [true, false]) {
        k.adamRowsStart!([lazyArgs(base, 0), lazyArgs(bump, 1)], d);
        if (change) k.adamRows!({ p: base, g0: Float32Array.from(base, () => 0.3), slots: null, m: z.slice(), v: z.slice(), lr: 0.5, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001 });
        k.expTableStart(base, bump, d);
        const got = run();
        k.adamRowsWait();
        assert.notDeepEqual(base, saved);
        k.expTableStart(other, bump, d); // (computes its own table for other tables: the reference below starts fresh)
        k.adamRowsWait();
        assert.deepEqual(got, run(), `${v.name} d=${d}: after adamRowsStart with expD${change ? ' and an adamRows on base' : ''}`);
        base.set(saved);
        bump.set(savedBump);
      }
    }
  }
  restoreBoxKernels();
});

test('adamRowsArm: a trainGroups that throws drops the armed updates (the tables stay as they were, a later trainGroups starts nothing); a second arm replaces the first', { skip: nativeBoxKernels() === null ? 'native kernels unavailable' : false }, () => {
  const k = nativeBoxKernels()!;
  assert.ok(k.adamRowsArm !== null, 'the addon has adamRowsArm');
  const m = tinyModel({ numEntities: 9, dim: 13 }, 5, 0.8);
  const { dim: d, numRelations: R, numEntities: E } = m.cfg;
  const rng = new Rng(31);
  const B = 4;
  const n = 3;
  const { h, r, t, negEnt, negTail } = randomGroups(rng, B, n, R, E);
  const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
  const tb = Float32Array.from({ length: B * d }, () => (rng.float() * 2 - 1) * 0.1);
  const base = Float32Array.from(m.entityBase.f32());
  const bump = Float32Array.from(m.entityBump.f32());
  const saved = [base.slice(), bump.slice()];
  const g = [new Float32Array(E * d), new Float32Array(E * d)];
  const adamOf = (p: Float32Array, g0: Float32Array, lr: number): AdamRowsArgs => ({
    p, g0, slots: null, m: new Float32Array(E * d), v: new Float32Array(E * d), lr, b1: 0.9, b2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001,
  });
  const groups = (hh: Int32Array): Parameters<BoxKernels['trainGroups']>[0] => ({
    B, n, d, tanh: true, order: 2, base, bump, boxes, tb, h: hh, r, t, negEnt, negTail, gradScale: 1 / B, gBase: g[0], gBump: g[1],
    gc: new Float32Array(2 * R * d), gw: new Float32Array(2 * R * d), gTb: new Float32Array(B * d),
  });
  for (const v of kernelVariants()) {
    if (v.name === 'js') continue;
    v.setup();
    base.set(saved[0]);
    bump.set(saved[1]);
    k.adamRowsArm([adamOf(base, g[0], 0.5), adamOf(bump, g[1], 0.5)]);
    assert.throws(() => k.trainGroups(groups(Int32Array.from(h, () => E + 3))), /out of range/, `${v.name}: ids out of range`);
    k.adamRowsWait();
    assert.deepEqual([base, bump], saved, `${v.name}: nothing updated after the throw`);
    k.trainGroups(groups(h));
    k.adamRowsWait();
    assert.deepEqual([base, bump], saved, `${v.name}: the dropped updates do not start later`);
    // armed twice: only the second runs (it updates bump alone)
    k.adamRowsArm([adamOf(base, g[0], 0.5)]);
    k.adamRowsArm([adamOf(bump, g[1], 0.5)]);
    k.trainGroups(groups(h));
    k.adamRowsWait();
    assert.deepEqual(base, saved[0], `${v.name}: the first arm was replaced`);
    assert.notDeepEqual(bump, saved[1], `${v.name}: the second arm ran`);
  }
  restoreBoxKernels();
});

test('fused scoring of all entities equals the op-based score, both directions, every kernel variant', () => {
  for (const dim of [13, 37]) {
  const m = tinyModel({ numEntities: 9, dim }, 8, 0.8);
  const { dim: d, numRelations: R, numEntities: E } = m.cfg;
  const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
  const base = m.entityBase.f32();
  const bump = m.entityBump.f32();
  const queries = [
    [2, 1, 4, 2],
    [0, 0, 8, 0],
    [5, 1, 5, 1],
  ];
  for (const [kname, k, setup] of kernelsUnderTest()) {
      setup();
    for (const dir of [0, 1]) {
      const Q = queries.length;
      const headAdd = new Float32Array(Q * d);
      const tailAdd = new Float32Array(Q * d);
      const rel = new Int32Array(Q);
      queries.forEach(([hq, rq, tq, tauq], qi) => {
        const tb = noGrad(() => m.timeBumps(Int32Array.of(rq), Int32Array.of(tauq))).f32();
        const fixed = dir === 0 ? tq : hq;
        rel[qi] = rq;
        for (let c = 0; c < d; c++) {
          headAdd[qi * d + c] = (dir === 0 ? bump : base)[fixed * d + c] + tb[c];
          tailAdd[qi * d + c] = (dir === 0 ? base : bump)[fixed * d + c] + tb[c];
        }
      });
      const out = new Float32Array(Q * E).fill(Number.NaN);
      const args = { d, tanh: true, order: 2 as const, E, Q, headTable: dir === 0 ? base : bump, headAdd, tailTable: dir === 0 ? bump : base, tailAdd, boxes, rel, out };
      k.scoreBatch(args);
      queries.forEach(([hq, rq, tq, tauq], qi) => {
        const xs = Int32Array.from({ length: E }, (_, x) => x);
        const H = dir === 0 ? xs : new Int32Array(E).fill(hq);
        const T = dir === 0 ? new Int32Array(E).fill(tq) : xs;
        const want = noGrad(() => m.score(H, new Int32Array(E).fill(rq), T, new Int32Array(E).fill(tauq)));
        assertClose(out.subarray(qi * E, (qi + 1) * E), want, { atol: 1e-5, rtol: 1e-5, what: `${kname} d=${dim} dir ${dir} query ${qi}` });
      });
    }
  }
  }
  restoreBoxKernels();
  assert.equal(typeof scoreBatchJs, 'function');
});

test('NaN in, NaN out: a NaN coordinate gives a NaN score and NaN box corners on every path (the vector tanh keeps NaN)', () => {
  for (const dim of [13, 37]) {
    const m = tinyModel({ numEntities: 9, dim }, 8, 0.8);
    const { dim: d, numRelations: R, numEntities: E } = m.cfg;
    const base = m.entityBase.f32().slice();
    const bump = m.entityBump.f32();
    // entity 3: NaN in its last coordinate (the masked tail lanes of the vector paths), entity 6: in its first
    base[3 * d + d - 1] = Number.NaN;
    base[6 * d] = Number.NaN;
    const Q = 2;
    const headAdd = Float32Array.from({ length: Q * d }, (_, i) => 0.3 * Math.sin(i + 1));
    const tailAdd = Float32Array.from({ length: Q * d }, (_, i) => 0.2 * Math.cos(i));
    const rel = Int32Array.from({ length: Q }, (_, q) => q % R);
    const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
    for (const [kname, k, setup] of kernelsUnderTest()) {
      setup();
      const out = new Float32Array(Q * E).fill(7);
      k.scoreBatch({ d, tanh: true, order: 2, E, Q, headTable: base, headAdd, tailTable: bump, tailAdd, boxes, rel, out });
      for (let q = 0; q < Q; q++)
        for (let x = 0; x < E; x++) {
          const v = out[q * E + x];
          if (x === 3 || x === 6) assert.ok(Number.isNaN(v), `${kname} d=${dim}: entity ${x} scores ${v}, want NaN`);
          else assert.ok(Number.isFinite(v), `${kname} d=${dim}: entity ${x} scores ${v}`);
        }
      // box corners through the kernels' tanh: a NaN centre coordinate gives NaN corners there only
      if (k.small !== null) {
        const hb = m.headBase.f32().slice();
        hb[d - 1] = Number.NaN;
        const stacked = new Float32Array(4 * R * d).fill(7);
        k.small.corners(R, d, 1, true, [hb, m.headShape.f32(), m.headSize.f32()], [m.tailBase.f32(), m.tailShape.f32(), m.tailSize.f32()], stacked, new Float64Array(2 * R), new Float64Array(2 * R));
        for (let i = 0; i < 4 * R * d; i++) {
          const atNaN = (i === d - 1 || i === R * d + d - 1);
          assert.equal(Number.isNaN(stacked[i]), atNaN, `${kname} d=${dim}: corner ${i} = ${stacked[i]}`);
        }
      }
    }
  }
  restoreBoxKernels();
});

test('native rankBatch: the same comparisons, counts and filtered ranks as scoreBatch + filteredRank (ties, NaN gold, early exit; tanh on and off), every path', { skip: nativeBoxKernels() === null ? 'native kernels unavailable' : false }, () => {
  // d = 13, 37, 154: none a multiple of 8 or 16 (the AVX2 / AVX-512 paths' masked last block); k = 1 and 2
  for (const dim of [13, 37, 154]) {
    for (const order of [2, 1] as const) {
      const m = tinyModel({ numEntities: 23, dim, order, k: dim === 37 ? 1 : 2 }, 8, 0.8);
      const { dim: d, numRelations: R, numEntities: E } = m.cfg;
      const base = m.entityBase.f32().slice();
      const bump = m.entityBump.f32().slice();
      // entity 5 duplicates entity 4 (exact ties with it)
      base.copyWithin(5 * d, 4 * d, 5 * d);
      bump.copyWithin(5 * d, 4 * d, 5 * d);
      const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
      const rng = new Rng(dim + order);
      const Q = 12;
      const headAdd = Float32Array.from({ length: Q * d }, () => (rng.float() * 2 - 1) * 0.7);
      const tailAdd = Float32Array.from({ length: Q * d }, () => (rng.float() * 2 - 1) * 0.7);
      const rel = Int32Array.from({ length: Q }, () => rng.int(R));
      // beyond the AVX-512 tanh's exponential range (|x| <= 40): entity 7's head-side row, entity 8's
      // tail-side row and query 2's tail part (they take the fallback; ranked consistently all the same)
      base[7 * d + 1] = 45;
      bump[8 * d + d - 1] = -41;
      tailAdd[2 * d] = 60;
      // a NaN in entity 6's head-side row: NaN scores, never better than the gold (ranked worst)
      base[6 * d + d - 1] = Number.NaN;
      // (never entity 6: the gold scores stay finite)
      const gold = Int32Array.from({ length: Q }, (_, q) => (q === 0 ? 4 : q === 1 ? 7 : q === 2 ? 8 : 9 + rng.int(E - 9)));
      for (const tanh of [true, false]) {
        const args = { d, tanh, order, E, Q, headTable: base, headAdd, tailTable: bump, tailAdd, boxes, rel };
        for (const [kname, k, setup] of kernelsUnderTest()) {
          if (k.rankBatch === null) continue;
          setup();
          // with and without the tables' exponentials computed beforehand
          for (const pre of [false, true]) {
            const exps = pre ? { headExp: k.expRows(E, d, base), tailExp: k.expRows(E, d, bump) } : {};
            const out = new Float32Array(Q * E).fill(Number.NaN);
            k.scoreBatch({ ...args, out, ...exps });
            const better = new Uint8Array(Q * E).fill(7);
            const count = new Int32Array(Q).fill(-1);
            const goldScore = new Float32Array(Q).fill(Number.NaN);
            k.rankBatch({ ...args, gold, better, count, goldScore, ...exps });
            for (let q = 0; q < Q; q++) {
              const sc = out.subarray(q * E, (q + 1) * E);
              const what = `${kname} d=${dim} order ${order} tanh ${tanh} query ${q}`;
              assert.ok(Object.is(goldScore[q], sc[gold[q]]), `${what}: gold score`);
              const want = Uint8Array.from(sc, (v) => (v < sc[gold[q]] ? 1 : 0));
              assert.deepEqual(better.subarray(q * E, (q + 1) * E), want, `${what}: comparisons`);
              assert.equal(count[q], want.reduce((a, b) => a + b, 0), `${what}: count`);
              const known = [gold[q], (gold[q] + 3) % E, 5];
              assert.equal(rankFromComparisons(goldScore[q], count[q], better.subarray(q * E, (q + 1) * E), gold[q], known), filteredRank(sc, gold[q], known), `${what}: rank`);
            }
            assert.equal(better[0 * E + 5], 0, 'an exact tie with the gold is not better');
            for (let q = 0; q < Q; q++) assert.equal(better[q * E + 6], 0, `${kname}: a NaN score is not better`);
            // a non-finite gold score ranks last, as in filteredRank
            const sc = out.slice(0, E);
            sc[gold[0]] = Number.NaN;
            assert.equal(rankFromComparisons(Number.NaN, count[0], better.subarray(0, E), gold[0], [gold[0], 1, 2]), filteredRank(sc, gold[0], [gold[0], 1, 2]));
          }
        }
      }
    }
  }
  restoreBoxKernels();
});

test('native scoring with the tables\' exponentials: the same bits given or computed inside, close to the float64 twin in and beyond the exponential range, NaN kept', { skip: nativeBoxKernels() === null ? 'native kernels unavailable' : false }, () => {
  for (const dim of [13, 37, 154]) {
    const m = tinyModel({ numEntities: 11, dim }, 5, 0.8);
    const { dim: d, numRelations: R, numEntities: E } = m.cfg;
    const rng = new Rng(dim);
    // entries up to +-6 (the points reach +-1 in f32), one row beyond the exponential range each side
    const base = Float32Array.from({ length: E * d }, () => (rng.float() * 2 - 1) * 6);
    const bump = Float32Array.from({ length: E * d }, () => (rng.float() * 2 - 1) * 0.8);
    base[3 * d + 2] = -40.5;
    bump[9 * d] = 1000;
    const Q = 5;
    const headAdd = Float32Array.from({ length: Q * d }, () => (rng.float() * 2 - 1) * 3);
    const tailAdd = Float32Array.from({ length: Q * d }, () => (rng.float() * 2 - 1) * 0.5);
    headAdd[4 * d + d - 1] = 39.75; // inside the range: large exponentials whose product overflows to +inf
    const boxes = boxTable(noGrad(() => m.stackedBoxes()).f32(), R, d);
    const rel = Int32Array.from({ length: Q }, () => rng.int(R));
    const args = { d, tanh: true, order: 2 as const, E, Q, headTable: base, headAdd, tailTable: bump, tailAdd, boxes, rel };
    const want = new Float32Array(Q * E);
    scoreBatchJs({ ...args, out: want });
    for (const [kname, k, setup] of kernelsUnderTest()) {
      if (k.name === 'js') continue;
      setup();
      const inside = new Float32Array(Q * E).fill(Number.NaN);
      k.scoreBatch({ ...args, out: inside });
      const hx = k.expRows(E, d, base);
      const tx = k.expRows(E, d, bump);
      assert.equal(hx !== null, k.isa === 'avx512' || k.isa === 'avx2', `${kname}: exponentials where the kernels use them`);
      if (hx !== null) {
        assert.deepEqual([hx.ok[3], hx.ok[0], tx?.ok[9], tx?.ok[0]], [0, 1, 0, 1], `${kname}: rows beyond |x| <= 40 flagged`);
        const given = new Float32Array(Q * E).fill(Number.NaN);
        k.scoreBatch({ ...args, out: given, headExp: hx, tailExp: tx });
        assert.deepEqual(given, inside, `${kname} d=${dim}: the same bits with the exponentials given`);
      }
      assertClose(inside, want, { atol: 1e-5, rtol: 1e-6, what: `${kname} d=${dim}` });
      // a NaN in a row inside the range and in a query part: NaN scores there only
      const nb = base.slice();
      nb[5 * d + d - 1] = Number.NaN;
      const na = headAdd.slice();
      na[d] = Number.NaN;
      const out = new Float32Array(Q * E).fill(7);
      k.scoreBatch({ ...args, headTable: nb, headAdd: na, out, headExp: k.expRows(E, d, nb), tailExp: tx });
      for (let q = 0; q < Q; q++) for (let x = 0; x < E; x++) assert.equal(Number.isNaN(out[q * E + x]), q === 1 || x === 5, `${kname} d=${dim} q ${q} x ${x}`);
    }
  }
  restoreBoxKernels();
});

test('parameter count: formula equals the store, and ICEWS14 at d=1000, k=2 has 15,906,920 (spec §1.2)', () => {
  for (const v of [{}, { model: 'boxe', k: 0 } as const]) {
    const m = tinyModel(v);
    assert.equal(m.store.numParams(), paramCount(m.cfg));
  }
  const icews = defaultConfig({ numEntities: 7128, numRelations: 230, numTimes: 365, dim: 1000, k: 2 });
  assert.equal(paramCount(icews), 14_256_000 + 920_460 + 730_000 + 460);
  // the paper's Table 6 formula d(2|E| + k|T| + 2|R|) + k|R| undercounts the code's relations by 2|R|d + 2|R|
  assert.equal(paramCount(icews) - (1000 * (2 * 7128 + 2 * 365 + 2 * 230) + 2 * 230), 2 * 230 * 1000 + 2 * 230);
});

test('initialisation follows the reference ranges (seeded, reproducible)', () => {
  const d = 16;
  const make = (seed: number): BoxTE => new BoxTE(defaultConfig({ numEntities: 50, numRelations: 20, numTimes: 10, dim: d, k: 2 }), new VarBuilder(new ParamStore(), { rng: seed }));
  const a = make(4);
  const b = make(4);
  const c = make(5);
  assert.deepEqual(a.entityBase.toArray(), b.entityBase.toArray());
  assert.notDeepEqual(a.entityBase.toArray(), c.entityBase.toArray());
  const lim = 0.5 / Math.sqrt(d);
  for (const p of [a.entityBase, a.entityBump, a.headBase, a.tailShape, a.timeBumpTable!]) {
    const v = p.toArray();
    assert.ok(v.every((x) => Math.abs(x) <= lim) && Math.max(...v.map(Math.abs)) > lim * 0.8, `${p.name} in U(-${lim}, ${lim})`);
  }
  const sizes = a.headSize.toArray();
  assert.ok(sizes.every((x) => Math.abs(x) <= 1) && Math.max(...sizes.map(Math.abs)) > 0.5);
  const al = a.alpha!.toArray();
  const mean = al.reduce((s, x) => s + x, 0) / al.length;
  assert.ok(Math.abs(mean - 1) < 0.06 && al.some((x) => x !== 1), `alpha ~ N(1, 0.1), mean ${mean}`);
});

test('plain-loop small parts (corners, time bumps, regulariser) and their native twins at every path equal the op-based ones, forward and backward', () => {
  const variants: Partial<BoxTEConfig>[] = [{}, { model: 'boxe', k: 0 }, { tanh: false }, { useAlpha: false }, { noBumpDay0: false }, { dim: 37, k: 3 }];
  for (const v of variants) {
    const m = tinyModel({ numEntities: 6, numRelations: 3, numTimes: 4, dim: 9, ...v }, 5, 0.9);
    const { dim: d, numRelations: R } = m.cfg;
    const rng = new Rng(11);
    const r = Int32Array.from({ length: 7 }, () => rng.int(R));
    const tau = Int32Array.from({ length: 7 }, (_, i) => i % 4);
    const gCorners = Float32Array.from({ length: 4 * R * d }, () => rng.uniform(-1, 1));
    const gTb = Float32Array.from({ length: 7 * d }, () => rng.uniform(-1, 1));
    const lambda = 0.7;
    // op-based reference
    m.store.zeroGrad();
    const boxesT = m.stackedBoxes();
    const tbT = m.timeBumps(r, tau);
    boxesT.backward(gCorners);
    if (tbT.requiresGrad) tbT.backward(gTb);
    const regT = m.timeRegulariser();
    if (regT.requiresGrad) mul(regT, Tensor.scalar(lambda)).backward();
    const want = new Map(m.store.entries().map(([n, p]) => [n, p.grad === null ? null : Float32Array.from(p.grad.f32())]));
    // the TypeScript loops, and their native twins at every path the CPU has, 1 and 2 threads
    const runs: [string, 'js' | 'native', () => void][] = [['js', 'js', () => undefined]];
    if (hasNative()) for (const kv of kernelVariants()) if (kv.name !== 'js') runs.push([kv.name, 'native', kv.setup]);
    for (const [label, be, setup] of runs) {
    setup();
    withBackend(be, () => {
    m.store.zeroGrad();
    const c = cornersForward(m);
    assertClose(c.stacked, boxesT.f32(), { atol: 1e-6, rtol: 1e-5, what: `corners ${JSON.stringify(v)}` });
    const tbv = timeBumpsForward(m, r, tau);
    assertClose(tbv, tbT.f32(), { atol: 1e-6, rtol: 1e-5, what: 'time bumps' });
    // the native time bumps run the TypeScript loop's double arithmetic: the same bits
    if (be === 'native') assert.deepEqual(tbv, withBackend('js', () => timeBumpsForward(m, r, tau)), `${label}: time bumps = the TypeScript loop`);
    // box table and corner gradient of the training step: native twins with the same bits
    assert.deepEqual(boxTableStep(c.stacked, R, d), boxTable(c.stacked, R, d), `${label}: box table`);
    const gcw = gCorners.subarray(0, 2 * R * d);
    const gww = gCorners.subarray(2 * R * d);
    assert.deepEqual(cornerGradStep(gcw, gww, R, d), cornerGrad(gcw, gww, R, d), `${label}: corner gradient`);
    cornersBackward(m, c, gCorners);
    if (be === 'native') {
      // the native corners backward (scalar, AVX2 and AVX-512 rows) runs the TypeScript loop's double arithmetic: the same bits
      const got = [m.headBase, m.headShape, m.headSize, m.tailBase, m.tailShape, m.tailSize].map((p) => Float32Array.from(p.grad?.f32() ?? []));
      const ref = withBackend('js', () => {
        m.store.zeroGrad();
        cornersBackward(m, c, gCorners);
        return [m.headBase, m.headShape, m.headSize, m.tailBase, m.tailShape, m.tailSize].map((p) => Float32Array.from(p.grad?.f32() ?? []));
      });
      assert.deepEqual(got, ref, `${label} ${JSON.stringify(v)}: corners backward = the TypeScript loop`);
      m.store.zeroGrad();
      cornersBackward(m, c, gCorners);
    }
    timeBumpsBackward(m, r, tau, gTb);
    const reg = timeRegulariserStep(m, lambda);
    assertClose([reg], [lambda * regT.item()], { rtol: 1e-5, what: 'regulariser' });
    for (const [n, p] of m.store.entries()) {
      const w = want.get(n) ?? null;
      if (w === null || !p.requiresGrad) {
        assert.ok(p.grad === null || !p.requiresGrad, `${n}: no gradient expected`);
        continue;
      }
      assert.ok(p.grad !== null, `${n} has a gradient`);
      assertClose(p.grad, w, { atol: 1e-6, rtol: 1e-4, what: `${label} ${JSON.stringify(v)} grad ${n}` });
    }
    });
    }
  }
  restoreBoxKernels();
});
