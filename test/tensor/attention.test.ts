/**
 * attention (ops/attention.ts) on every backend: every mask kind and their combinations — causal,
 * sliding window, causal + window, KV-cache offsets (Tq < Tk, default and explicit qPos/kPos),
 * segments (packed documents), an explicit mask, GQA (Hq = 4 with Hkv = 2 and Hkv = 1), fully
 * masked query rows (output 0, no gradient) — on contiguous and strided q / k / v.
 *
 * Tolerances: forward rtol 1e-4 / atol 1e-5 vs float64; gradients: gradCheck defaults
 * (eps 1e-2, rtol 1e-2, atol 1e-3) for q, k and v.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor, type AttentionOptions } from '../../src/tensor/index.js';
import { Rng, assertClose, forEachBackend, gradCheck, randTensor } from '../helpers/numeric.js';
import { fromTensor, refAttention } from '../helpers/reference.js';

const tol = { rtol: 1e-4, atol: 1e-5 };

interface Case {
  name: string;
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
  opts: (rng: Rng) => AttentionOptions;
  /** query rows (b, i) that see no key: their outputs must be exactly 0 */
  masked?: [number, number][];
}

function randMask(rng: Rng, n: number, pOn: number): Uint8Array {
  const m = new Uint8Array(n);
  for (let i = 0; i < n; i++) m[i] = rng.next() < pOn ? 1 : 0;
  return m;
}

const cases: Case[] = [
  { name: 'no mask', B: 2, Hq: 2, Hkv: 2, Tq: 3, Tk: 3, D: 4, opts: () => ({}) },
  { name: 'no mask, Tq != Tk, odd D', B: 1, Hq: 2, Hkv: 2, Tq: 2, Tk: 5, D: 3, opts: () => ({}) },
  { name: 'causal', B: 2, Hq: 2, Hkv: 2, Tq: 4, Tk: 4, D: 4, opts: () => ({ causal: true }) },
  { name: 'window 2 (non-causal: future keys visible)', B: 1, Hq: 2, Hkv: 2, Tq: 5, Tk: 5, D: 4, opts: () => ({ window: 2 }) },
  { name: 'causal + window 2', B: 2, Hq: 2, Hkv: 1, Tq: 5, Tk: 5, D: 4, opts: () => ({ causal: true, window: 2 }) },
  { name: 'KV cache: Tq 2 < Tk 5, causal, default positions', B: 2, Hq: 2, Hkv: 2, Tq: 2, Tk: 5, D: 4, opts: () => ({ causal: true }) },
  { name: 'KV cache: Tq 1, causal + window 3', B: 1, Hq: 4, Hkv: 2, Tq: 1, Tk: 6, D: 4, opts: () => ({ causal: true, window: 3 }) },
  {
    name: 'explicit qPos/kPos (per batch), causal, Tq < Tk',
    B: 2,
    Hq: 2,
    Hkv: 2,
    Tq: 2,
    Tk: 4,
    D: 4,
    opts: () => ({ causal: true, qPos: Int32Array.from([10, 12, 3, 4]), kPos: Int32Array.from([9, 10, 11, 12, 0, 1, 2, 3]) }),
  },
  {
    name: 'qPos/kPos with window (keys out of order)',
    B: 1,
    Hq: 2,
    Hkv: 1,
    Tq: 3,
    Tk: 4,
    D: 4,
    opts: () => ({ causal: true, window: 2, qPos: Int32Array.from([5, 6, 7]), kPos: Int32Array.from([7, 4, 6, 5]) }),
  },
  {
    name: 'segments (packed documents) + causal',
    B: 2,
    Hq: 2,
    Hkv: 2,
    Tq: 5,
    Tk: 5,
    D: 4,
    opts: () => ({ causal: true, qSeg: Int32Array.from([0, 0, 1, 1, 1, 3, 3, 3, 4, 4]), kSeg: Int32Array.from([0, 0, 1, 1, 1, 3, 3, 3, 4, 4]) }),
  },
  {
    name: 'segments without causal',
    B: 1,
    Hq: 2,
    Hkv: 2,
    Tq: 4,
    Tk: 4,
    D: 4,
    opts: () => ({ qSeg: Int32Array.from([1, 2, 1, 2]), kSeg: Int32Array.from([2, 1, 1, 2]) }),
  },
  {
    name: 'explicit mask with a fully masked row',
    B: 2,
    Hq: 2,
    Hkv: 2,
    Tq: 3,
    Tk: 4,
    D: 4,
    opts: (rng) => {
      const m = randMask(rng, 2 * 3 * 4, 0.6);
      for (let j = 0; j < 4; j++) m[(1 * 3 + 2) * 4 + j] = 0; // b = 1, i = 2 sees nothing
      for (let j = 0; j < 4; j++) m[(0 * 3 + 0) * 4 + j] = j === 3 ? 1 : 0; // b = 0, i = 0 sees one key
      return { mask: m };
    },
    masked: [[1, 2]],
  },
  { name: 'GQA Hq 4 / Hkv 2, causal', B: 2, Hq: 4, Hkv: 2, Tq: 3, Tk: 3, D: 4, opts: () => ({ causal: true }) },
  { name: 'GQA Hq 4 / Hkv 1 (multi-query), causal', B: 1, Hq: 4, Hkv: 1, Tq: 3, Tk: 4, D: 4, opts: () => ({ causal: true }) },
  {
    name: 'fully masked by positions: query before every key (causal)',
    B: 1,
    Hq: 2,
    Hkv: 1,
    Tq: 2,
    Tk: 3,
    D: 4,
    opts: () => ({ causal: true, qPos: Int32Array.from([0, 5]), kPos: Int32Array.from([1, 2, 3]) }),
    masked: [[0, 0]],
  },
  {
    name: 'fully masked by segments',
    B: 1,
    Hq: 2,
    Hkv: 2,
    Tq: 3,
    Tk: 3,
    D: 4,
    opts: () => ({ qSeg: Int32Array.from([0, 9, 1]), kSeg: Int32Array.from([0, 1, 1]) }),
    masked: [[0, 1]],
  },
  { name: 'custom scale', B: 1, Hq: 2, Hkv: 2, Tq: 3, Tk: 3, D: 4, opts: () => ({ scale: 0.9, causal: true }) },
  {
    name: 'everything: GQA + causal + window + qPos/kPos + segments + mask',
    B: 2,
    Hq: 4,
    Hkv: 2,
    Tq: 3,
    Tk: 5,
    D: 4,
    opts: (rng) => ({
      causal: true,
      window: 3,
      qPos: Int32Array.from([2, 3, 4, 5, 6, 7]),
      kPos: Int32Array.from([0, 1, 2, 3, 4, 3, 4, 5, 6, 7]),
      qSeg: Int32Array.from([0, 1, 1, 2, 2, 2]),
      kSeg: Int32Array.from([0, 0, 1, 1, 1, 2, 2, 2, 2, 2]),
      mask: randMask(rng, 2 * 3 * 5, 0.8),
    }),
  },
];

/** q/k/v as given to attention: contiguous, or [B, T, H, D] leaves transposed to [B, H, T, D]. */
function qkv(c: Case, rng: Rng, strided: boolean): [Tensor, Tensor, Tensor] {
  const mk = (H: number, Tt: number): Tensor => (strided ? T.transpose(randTensor([c.B, Tt, H, c.D], rng, -1.5, 1.5), 1, 2) : randTensor([c.B, H, Tt, c.D], rng, -1.5, 1.5));
  return [mk(c.Hq, c.Tq), mk(c.Hkv, c.Tk), mk(c.Hkv, c.Tk)];
}

describe('attention forward vs float64 reference', () => {
  forEachBackend(`${cases.length} mask / GQA / position cases, contiguous and strided q/k/v`, () => {
    for (const c of cases) {
      for (const strided of [false, true]) {
        const rng = new Rng(1000 + cases.indexOf(c));
        const [q, k, v] = qkv(c, rng, strided);
        const opts = c.opts(rng);
        const y = T.attention(q, k, v, opts);
        assert.deepEqual(y.shape, [c.B, c.Hq, c.Tq, c.D]);
        const ref = refAttention(fromTensor(q), fromTensor(k), fromTensor(v), opts);
        assertClose(y, ref, { ...tol, what: `attention ${c.name}${strided ? ' (strided)' : ''}` });
        const yv = y.toArray();
        for (const [b, i] of c.masked ?? []) {
          for (let h = 0; h < c.Hq; h++) {
            for (let d = 0; d < c.D; d++) assert.equal(yv[((b * c.Hq + h) * c.Tq + i) * c.D + d], 0, `${c.name}: masked row (${b}, ${i}) head ${h} is 0`);
          }
        }
        assert.ok(yv.every((x) => Number.isFinite(x)), `${c.name}: finite outputs`);
      }
    }
  });

  forEachBackend('a single visible key copies its value; GQA heads share kv heads', () => {
    const rng = new Rng(77);
    const [B, Hq, Hkv, T_, D] = [1, 4, 2, 3, 2];
    const q = randTensor([B, Hq, T_, D], rng);
    const k = randTensor([B, Hkv, T_, D], rng);
    const v = randTensor([B, Hkv, T_, D], rng);
    // mask: query i sees only key (i + 1) % T
    const mask = new Uint8Array(T_ * T_);
    for (let i = 0; i < T_; i++) mask[i * T_ + ((i + 1) % T_)] = 1;
    const y = T.attention(q, k, v, { mask }).toArray();
    const vv = v.toArray();
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / 2);
      for (let i = 0; i < T_; i++) {
        for (let d = 0; d < D; d++) assert.equal(y[(h * T_ + i) * D + d], vv[(kh * T_ + ((i + 1) % T_)) * D + d]);
      }
    }
    // repeating the kv heads by hand gives the same result as GQA
    const rep = (t: Tensor): Tensor => T.reshape(T.expand(T.unsqueeze(t, 2), [B, Hkv, 2, T_, D]), [B, Hq, T_, D]);
    assertClose(T.attention(q, k, v, { causal: true }), T.attention(q, rep(k), rep(v), { causal: true }), { rtol: 1e-6, atol: 1e-7, what: 'GQA = repeated heads' });
  });
});

describe('attention on KV-cache views (head blocks contiguous, not adjacent)', () => {
  forEachBackend('every case: the same outputs, bit for bit, as on contiguous copies (inference)', () => {
    for (const c of cases) {
      for (const [cap, off] of [
        [c.Tk + 3, 0],
        [c.Tk + 1, 5],
      ]) {
        const rng = new Rng(3000 + cases.indexOf(c));
        const q = randTensor([c.B, c.Hq, c.Tq, c.D], rng, -1.5, 1.5);
        // k and v as a cache holds them: [B, Hkv, cap, D] buffers (after `off` unused values), viewed as [B, Hkv, Tk, D]
        const view = (): Tensor => {
          const buf = randTensor([off + c.B * c.Hkv * cap * c.D], rng, -1.5, 1.5).f32();
          return new Tensor(buf, [c.B, c.Hkv, c.Tk, c.D], [c.Hkv * cap * c.D, cap * c.D, c.D, 1], off);
        };
        const k = view();
        const v = view();
        const opts = c.opts(rng);
        const y = T.noGrad(() => T.attention(q, k, v, opts));
        const want = T.noGrad(() => T.attention(q, T.contiguous(k), T.contiguous(v), opts));
        assert.deepEqual(y.toArray(), want.toArray(), `${c.name}, capacity ${cap}, offset ${off}`);
        assertClose(y, refAttention(fromTensor(q), fromTensor(k), fromTensor(v), opts), { ...tol, what: `attention on a cache view: ${c.name}` });
      }
    }
  });
});

describe('attention gradients vs finite differences', () => {
  forEachBackend('q, k, v gradients for every case (strided inputs on alternate cases)', () => {
    for (const c of cases) {
      const rng = new Rng(2000 + cases.indexOf(c));
      const strided = cases.indexOf(c) % 2 === 1;
      const q = randTensor(strided ? [c.B, c.Tq, c.Hq, c.D] : [c.B, c.Hq, c.Tq, c.D], rng, -1.5, 1.5);
      const k = randTensor(strided ? [c.B, c.Tk, c.Hkv, c.D] : [c.B, c.Hkv, c.Tk, c.D], rng, -1.5, 1.5);
      const v = randTensor(strided ? [c.B, c.Tk, c.Hkv, c.D] : [c.B, c.Hkv, c.Tk, c.D], rng, -1.5, 1.5);
      const opts = c.opts(rng);
      const view = (t: Tensor): Tensor => (strided ? T.transpose(t, 1, 2) : t);
      const grads = gradCheck((a, b, d) => T.attention(view(a), view(b), view(d), opts), [q, k, v], { what: `attention grad ${c.name}` });
      // fully masked query rows get no gradient
      const gq = grads[0];
      assert.ok(gq !== null);
      for (const [b, i] of c.masked ?? []) {
        for (let h = 0; h < c.Hq; h++) {
          for (let d = 0; d < c.D; d++) {
            const at = strided ? ((b * c.Tq + i) * c.Hq + h) * c.D + d : ((b * c.Hq + h) * c.Tq + i) * c.D + d;
            assert.equal(gq[at], 0, `${c.name}: masked row gradient`);
          }
        }
      }
    }
  });

  forEachBackend('frozen inputs get no gradient', () => {
    const rng = new Rng(88);
    const q = randTensor([1, 2, 3, 4], rng);
    const k = randTensor([1, 1, 3, 4], rng);
    const v = randTensor([1, 1, 3, 4], rng);
    gradCheck((a, b, d) => T.attention(a, b, d, { causal: true }), [q, k, v], { wrt: [false, false, true], what: 'attention grad v only' });
    gradCheck((a, b, d) => T.attention(a, b, d, { causal: true }), [q, k, v], { wrt: [true, false, false], what: 'attention grad q only' });
  });
});

describe('attention argument errors', () => {
  forEachBackend('shape and option mismatches are reported with the shapes', () => {
    const q = Tensor.zeros([1, 4, 3, 8]);
    const k = Tensor.zeros([1, 2, 5, 8]);
    assert.throws(() => T.attention(q, k, Tensor.zeros([1, 2, 5, 4])), (e: Error) => e.message.includes('[1, 2, 5, 4]'));
    assert.throws(() => T.attention(q, Tensor.zeros([1, 3, 5, 8]), Tensor.zeros([1, 3, 5, 8])), /4 query heads are not a multiple of 3/);
    assert.throws(() => T.attention(Tensor.zeros([4, 3, 8]), k, k), (e: Error) => e.message.includes('[4, 3, 8]'));
    assert.throws(() => T.attention(q, k, k, { qPos: new Int32Array(2) }), /qPos has 2 entries, expected 3/);
    assert.throws(() => T.attention(q, k, k, { kPos: new Int32Array(3) }), /kPos has 3 entries, expected 5/);
    assert.throws(() => T.attention(q, k, k, { mask: new Uint8Array(3) }), /mask has 3 entries, expected 15/);
    assert.throws(() => T.attention(q, k, k, { qSeg: new Int32Array(3) }), /both qSeg and kSeg/);
  });
});
