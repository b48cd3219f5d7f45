import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng, type RngState } from '../../src/nn/index.js';

function draw(r: Rng, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.nextU32());
  return out;
}

test('rng: same seed gives the same stream, different seeds differ', () => {
  assert.deepEqual(draw(new Rng(42), 100), draw(new Rng(42), 100));
  assert.notDeepEqual(draw(new Rng(42), 100), draw(new Rng(43), 100));
  assert.deepEqual(draw(new Rng('run-a'), 20), draw(new Rng('run-a'), 20));
  assert.notDeepEqual(draw(new Rng('run-a'), 20), draw(new Rng('run-b'), 20));
  // large and negative seeds are distinct
  assert.notDeepEqual(draw(new Rng(2 ** 40), 8), draw(new Rng(0), 8));
  assert.notDeepEqual(draw(new Rng(-5), 8), draw(new Rng(5), 8));
  assert.throws(() => new Rng(1.5), /safe integer/);
  for (const x of draw(new Rng(7), 1000)) assert.ok(Number.isInteger(x) && x >= 0 && x < 2 ** 32);
});

test('rng: xoshiro128** output matches the reference algorithm from a known state', () => {
  // reference implementation of xoshiro128** next() on explicit state words (Blackman & Vigna)
  const s = [1, 2, 3, 4];
  const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;
  const ref = (): number => {
    const result = rotl(Number((BigInt(s[1]) * 5n) & 0xffffffffn), 7);
    const out = Number((BigInt(result) * 9n) & 0xffffffffn);
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return out;
  };
  const r = Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 4], spare: null });
  for (let i = 0; i < 50; i++) assert.equal(r.nextU32(), ref());
  // first output from state (1, 2, 3, 4): rotl(2 * 5, 7) * 9 = 1280 * 9
  assert.equal(Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 4], spare: null }).nextU32(), 11520);
});

test('rng: state save/restore (through JSON) continues identically, including the cached normal', () => {
  const r = new Rng(123);
  for (let i = 0; i < 37; i++) r.normal(); // an odd count leaves the pair's second value cached
  const saved = JSON.parse(JSON.stringify(r.state())) as RngState;
  assert.notEqual(saved.spare, null);
  const a: number[] = [];
  for (let i = 0; i < 25; i++) a.push(r.normal(), r.uniform(-1, 1), r.int(1000), r.nextU32());
  const r2 = Rng.fromState(saved);
  const b: number[] = [];
  for (let i = 0; i < 25; i++) b.push(r2.normal(), r2.uniform(-1, 1), r2.int(1000), r2.nextU32());
  assert.deepEqual(a, b);
  const r3 = new Rng(0);
  r3.setState(saved);
  assert.equal(r3.normal(), a[0]);
  assert.throws(() => r3.setState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0], spare: null }), /all-zero/);
  assert.throws(() => r3.setState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 2 ** 32], spare: null }), /32-bit/);
  // clone is an exact copy
  const c = r.clone();
  assert.deepEqual(draw(c, 10), draw(r, 10));
});

test('rng: distribution sanity (1e5 normals and uniforms)', () => {
  const r = new Rng(2024);
  const n = 100_000;
  let s = 0;
  let s2 = 0;
  let s3 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal(1.5, 2);
    s += x;
    s2 += x * x;
    const z = (x - 1.5) / 2;
    s3 += z * z * z;
  }
  const mean = s / n;
  const std = Math.sqrt(s2 / n - mean * mean);
  assert.ok(Math.abs(mean - 1.5) < 0.03, `normal mean ${mean}`);
  assert.ok(Math.abs(std - 2) < 0.03, `normal std ${std}`);
  assert.ok(Math.abs(s3 / n) < 0.05, `normal skew ${s3 / n}`);
  let u = 0;
  let u2 = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = r.uniform(-2, 3);
    u += x;
    u2 += x * x;
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const um = u / n;
  assert.ok(Math.abs(um - 0.5) < 0.03, `uniform mean ${um}`);
  assert.ok(Math.abs(u2 / n - um * um - 25 / 12) < 0.05, 'uniform variance');
  assert.ok(lo >= -2 && hi < 3);
  // int(n): all residues hit with roughly equal frequency
  const counts = new Array<number>(7).fill(0);
  for (let i = 0; i < 70_000; i++) counts[r.int(7)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 500, `int(7) counts ${counts.join(',')}`);
  assert.throws(() => r.int(0), /integer/);
  // float() in [0, 1)
  for (let i = 0; i < 1000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
  }
});

test('rng: shuffle and permutation are permutations and reproducible', () => {
  const a = Array.from({ length: 50 }, (_, i) => i);
  const s1 = new Rng(9).shuffle(a.slice());
  const s2 = new Rng(9).shuffle(a.slice());
  assert.deepEqual(s1, s2);
  assert.notDeepEqual(s1, a);
  assert.deepEqual(s1.slice().sort((x, y) => x - y), a);
  const p = new Rng(3).permutation(20);
  assert.deepEqual(Array.from(p).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
});

test('rng: fork(label) is deterministic, independent of the parent and does not advance it; split() advances', () => {
  const r = new Rng(5);
  const before = r.state();
  const f1 = draw(r.fork('layer.0'), 10);
  const f2 = draw(r.fork('layer.0'), 10);
  const f3 = draw(r.fork('layer.1'), 10);
  assert.deepEqual(r.state(), before, 'fork must not advance the parent');
  assert.deepEqual(f1, f2);
  assert.notDeepEqual(f1, f3);
  assert.notDeepEqual(f1, draw(new Rng(5), 10));
  assert.notDeepEqual(draw(r.fork(1), 5), draw(r.fork('2'), 5));
  const s1 = r.split();
  assert.notDeepEqual(r.state(), before, 'split advances the parent');
  const s2 = r.split();
  assert.notDeepEqual(draw(s1, 10), draw(s2, 10));
  // forked streams are uncorrelated with the parent: sample correlation near 0
  const p = new Rng(77);
  const q = p.fork('x');
  let sxy = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) sxy += (p.float() - 0.5) * (q.float() - 0.5);
  assert.ok(Math.abs(sxy / n / (1 / 12)) < 0.05, 'fork correlation');
});
