/**
 * matmul and linear (ops/matmul.ts) on every backend: every operand layout the GEMM call can take
 * without a copy (row-major, transposed view -> trans flag, column-sliced view -> ld > cols,
 * batch-permuted view -> batch stride != M*K, expanded batch -> stride 0) and the layouts that
 * force a copy; batched with broadcast batch dims (both ways), 1-D operands, odd / size-1 sizes.
 *
 * Tolerances: forward rtol 1e-4 / atol 1e-5 against float64 (f32 accumulation over K <= 37 with
 * |values| < 1); gradients: gradCheck defaults (eps 1e-2, rtol 1e-2, atol 1e-3; matmul is
 * bilinear, so central differences are exact up to f32 rounding).
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { Rng, assertClose, forEachBackend, gradCheck, randTensor } from '../helpers/numeric.js';
import { fromTensor, refLinear, refMatmul } from '../helpers/reference.js';

const tol = { rtol: 1e-4, atol: 1e-5 };

/** Operand layouts of a logical [..., R, C] matrix built from a leaf. */
type Layout = 'row' | 'trans' | 'colslice' | 'rowslice' | 'batchperm' | 'expandbatch' | 'allperm' | 'bcastcol';
const layouts: Layout[] = ['row', 'trans', 'colslice', 'rowslice', 'batchperm', 'expandbatch', 'allperm', 'bcastcol'];

/** Leaf shape for a logical [B, R, C] operand in the given layout. */
function leafFor(B: number, R: number, C: number, l: Layout): number[] {
  switch (l) {
    case 'row':
      return [B, R, C];
    case 'trans':
      return [B, C, R];
    case 'colslice':
      return [B, R, C + 3];
    case 'rowslice':
      return [B, R + 2, C];
    case 'batchperm':
      return [R, B, C];
    case 'expandbatch':
      return [1, R, C];
    case 'allperm':
      return [R, C, B];
    case 'bcastcol':
      return [B, R, 1];
  }
}

/** Builds the logical [B, R, C] view of a leaf. */
function view(t: Tensor, B: number, R: number, C: number, l: Layout): Tensor {
  switch (l) {
    case 'row':
      return t;
    case 'trans':
      return T.transpose(t, -2, -1);
    case 'colslice':
      return T.slice(t, 2, 2, 2 + C);
    case 'rowslice':
      return T.slice(t, 1, 1, 1 + R);
    case 'batchperm':
      return T.permute(t, [1, 0, 2]);
    case 'expandbatch':
      return T.expand(t, [B, R, C]);
    case 'allperm':
      // strides [1, C*B, B]: no unit stride in the matrix dims when B > 1, forces a copy
      return T.permute(t, [2, 0, 1]);
    case 'bcastcol':
      // column stride 0 (broadcast columns): forces a copy
      return T.expand(t, [B, R, C]);
  }
}

/** 2-D version: drops the batch dim of the view (B = 1 leaf squeezed). */
function view2(t: Tensor, R: number, C: number, l: Layout): Tensor {
  const v = view(t, 1, R, C, l);
  return T.squeeze(v, 0);
}

describe('matmul forward', () => {
  forEachBackend('2-D: all layout pairs (trans flags, ld, copies) on odd and size-1 shapes', () => {
    const rng = new Rng(41);
    const dims: [number, number, number][] = [
      [1, 1, 1],
      [1, 7, 5],
      [5, 7, 1],
      [3, 1, 4],
      [13, 17, 9],
      [4, 37, 3],
    ];
    for (const [M, K, N] of dims) {
      for (const la of layouts) {
        if (la === 'batchperm' || la === 'expandbatch') continue;
        for (const lb of layouts) {
          if (lb === 'batchperm' || lb === 'expandbatch') continue;
          const a = view2(randTensor(leafFor(1, M, K, la), rng), M, K, la);
          const b = view2(randTensor(leafFor(1, K, N, lb), rng), K, N, lb);
          assert.deepEqual([...a.shape, ...b.shape], [M, K, K, N]);
          assertClose(T.matmul(a, b), refMatmul(fromTensor(a), fromTensor(b)), { ...tol, what: `matmul ${M}x${K}x${N} ${la}@${lb}` });
        }
      }
    }
  });

  forEachBackend('batched: same batch, every layout pair incl. permuted and expanded batch', () => {
    const rng = new Rng(42);
    const [B, M, K, N] = [3, 4, 5, 2];
    for (const la of layouts) {
      for (const lb of layouts) {
        const a = view(randTensor(leafFor(B, M, K, la), rng), B, M, K, la);
        const b = view(randTensor(leafFor(B, K, N, lb), rng), B, K, N, lb);
        assertClose(T.matmul(a, b), refMatmul(fromTensor(a), fromTensor(b)), { ...tol, what: `batched ${la}@${lb}` });
      }
    }
  });

  forEachBackend('broadcast batch dims both ways, batch x matrix fold, 1-D operands', () => {
    const rng = new Rng(43);
    const cases: [number[], number[]][] = [
      [[2, 3, 4, 5], [5, 6]], // batch times one matrix (folded into one GEMM)
      [[4, 5], [3, 5, 6]], // matrix times a batch
      [[2, 1, 4, 5], [3, 5, 6]], // broadcast both ways -> [2,3]
      [[1, 3, 4, 5], [2, 1, 5, 6]],
      [[3, 1, 4, 5], [1, 5, 6]],
      [[2, 3, 4, 5], [1, 1, 5, 6]],
      [[5], [5, 6]], // vec @ mat -> [6]
      [[4, 5], [5]], // mat @ vec -> [4]
      [[5], [5]], // dot -> []
      [[5], [3, 5, 6]], // vec @ batch -> [3, 6]
      [[3, 4, 5], [5]], // batch @ vec -> [3, 4]
      [[1, 1], [1, 1]],
      [[2, 1, 1], [1, 1]],
    ];
    for (const [sa, sb] of cases) {
      const a = randTensor(sa, rng);
      const b = randTensor(sb, rng);
      const ref = refMatmul(fromTensor(a), fromTensor(b));
      const y = T.matmul(a, b);
      assertClose(y, ref, { ...tol, what: `matmul [${sa.join(',')}]@[${sb.join(',')}]` });
      // the same with a transposed-view a (not foldable) when it is a matrix batch
      if (sa.length >= 2) {
        const at = T.transpose(T.contiguous(T.transpose(a, -2, -1)), -2, -1);
        assertClose(T.matmul(at, b), ref, { ...tol, what: `matmul trans-a [${sa.join(',')}]@[${sb.join(',')}]` });
      }
    }
  });

  forEachBackend('zero-size K / M give zeros / empty results', () => {
    const y = T.matmul(Tensor.zeros([3, 0]), Tensor.zeros([0, 4]));
    assert.deepEqual(y.shape, [3, 4]);
    assert.ok(y.toArray().every((v) => v === 0));
    assert.deepEqual(T.matmul(Tensor.zeros([0, 2]), Tensor.ones([2, 3])).shape, [0, 3]);
  });

  forEachBackend('shape errors mention the shapes', () => {
    assert.throws(() => T.matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5])), (e: Error) => e.message.includes('[2, 3]') && e.message.includes('[4, 5]'));
    assert.throws(() => T.matmul(Tensor.zeros([2, 2, 3]), Tensor.zeros([3, 3, 5])), (e: Error) => e.message.includes('[2]') && e.message.includes('[3]'));
    assert.throws(() => T.matmul(Tensor.scalar(1), Tensor.zeros([1])), /scalar/);
    assert.throws(() => T.matmul(new Tensor(Int32Array.of(1), [1, 1]), Tensor.zeros([1, 1])), /f32/);
  });
});

describe('matmul gradients', () => {
  forEachBackend('2-D every layout pair (trans flags in the backward GEMMs)', () => {
    const rng = new Rng(51);
    const [M, K, N] = [2, 3, 4];
    for (const la of ['row', 'trans', 'colslice', 'bcastcol'] as Layout[]) {
      for (const lb of ['row', 'trans', 'colslice', 'bcastcol'] as Layout[]) {
        const a = randTensor(leafFor(1, M, K, la), rng);
        const b = randTensor(leafFor(1, K, N, lb), rng);
        gradCheck((x, y) => T.matmul(view2(x, M, K, la), view2(y, K, N, lb)), [a, b], { what: `matmul grad ${la}@${lb}` });
      }
    }
    // size-1 edges: GEMV (M = 1), N = 1, K = 1
    for (const [m, k, n] of [
      [1, 4, 3],
      [3, 4, 1],
      [2, 1, 3],
    ]) {
      gradCheck((x, y) => T.matmul(x, y), [randTensor([m, k], rng), randTensor([k, n], rng)], { what: `matmul grad ${m}x${k}x${n}` });
      gradCheck((x, y) => T.matmul(T.transpose(x), y), [randTensor([k, m], rng), randTensor([k, n], rng)], { what: `matmul grad trans ${m}x${k}x${n}` });
    }
  });

  forEachBackend('batched with broadcast batch dims, permuted / expanded batches, 1-D operands', () => {
    const rng = new Rng(52);
    const [B, M, K, N] = [2, 2, 3, 2];
    for (const [la, lb] of [
      ['row', 'row'],
      ['trans', 'trans'],
      ['batchperm', 'trans'],
      ['expandbatch', 'row'],
      ['row', 'expandbatch'],
      ['colslice', 'batchperm'],
      ['allperm', 'allperm'],
      ['bcastcol', 'trans'],
    ] as [Layout, Layout][]) {
      const a = randTensor(leafFor(B, M, K, la), rng);
      const b = randTensor(leafFor(B, K, N, lb), rng);
      gradCheck((x, y) => T.matmul(view(x, B, M, K, la), view(y, B, K, N, lb)), [a, b], { what: `batched grad ${la}@${lb}` });
    }
    const cases: [number[], number[]][] = [
      [[2, 3, 2, 3], [3, 2]],
      [[2, 3], [3, 3, 2]],
      [[2, 1, 2, 3], [3, 3, 2]],
      [[3], [3, 2]],
      [[2, 3], [3]],
      [[3], [3]],
      [[3], [2, 3, 2]],
      [[2, 2, 3], [3]],
    ];
    for (const [sa, sb] of cases) {
      gradCheck((x, y) => T.matmul(x, y), [randTensor(sa, rng), randTensor(sb, rng)], { what: `matmul grad [${sa.join(',')}]@[${sb.join(',')}]` });
    }
    // only one side trainable
    const a = randTensor([2, 2, 3], rng);
    const b = randTensor([3, 2], rng);
    gradCheck((x, y) => T.matmul(x, y), [a, b], { wrt: [false, true], what: 'matmul grad b only' });
    gradCheck((x, y) => T.matmul(x, y), [a, b], { wrt: [true, false], what: 'matmul grad a only' });
  });
});

describe('linear', () => {
  forEachBackend('forward: bias / no bias, transposed weight view, strided x, 1-D x, rows = 1', () => {
    const rng = new Rng(61);
    const [I, O] = [7, 5];
    const w = randTensor([O, I], rng);
    const wT = T.transpose(randTensor([I, O], rng)); // [O, I] column-major view
    const bias = randTensor([O], rng);
    const biasView = T.slice(randTensor([O + 2], rng), 0, 1, 1 + O);
    for (const [xn, x] of [
      ['[2,3,7]', randTensor([2, 3, I], rng)],
      ['[1,7]', randTensor([1, I], rng)],
      ['[7]', randTensor([I], rng)],
      ['transposed [3,7]', T.transpose(randTensor([I, 3], rng))],
      ['sliced [2,7]', T.slice(randTensor([2, I + 4], rng), 1, 2, 2 + I)],
    ] as [string, Tensor][]) {
      for (const [wn, ww] of [
        ['w', w],
        ['wT', wT],
      ] as [string, Tensor][]) {
        for (const [bn, bb] of [
          ['bias', bias],
          ['bias view', biasView],
          ['no bias', null],
        ] as [string, Tensor | null][]) {
          const y = T.linear(x, ww, bb);
          assertClose(y, refLinear(fromTensor(T.contiguous(x)), fromTensor(ww), bb ? fromTensor(bb) : null), { ...tol, what: `linear x ${xn} ${wn} ${bn}` });
        }
      }
    }
  });

  forEachBackend('gradients for x, W, bias (W plain and transposed view), frozen parts', () => {
    const rng = new Rng(62);
    const [I, O] = [3, 4];
    const x = randTensor([2, 2, I], rng);
    const w = randTensor([O, I], rng);
    const b = randTensor([O], rng);
    gradCheck((xx, ww, bb) => T.linear(xx, ww, bb), [x, w, b], { what: 'linear grad' });
    gradCheck((xx, ww) => T.linear(xx, ww), [x, w], { what: 'linear grad no bias' });
    gradCheck((xx, ww, bb) => T.linear(T.transpose(xx, 0, 1), T.transpose(ww), bb), [x, T.transpose(w).clone(), b], { what: 'linear grad transposed x and W' });
    gradCheck((xx, ww, bb) => T.linear(xx, ww, bb), [x, w, b], { wrt: [false, true, true], what: 'linear grad frozen x' });
    gradCheck((xx, ww, bb) => T.linear(xx, ww, bb), [x, w, b], { wrt: [true, false, false], what: 'linear grad frozen W, b' });
    gradCheck((xx, ww, bb) => T.linear(xx, ww, bb), [randTensor([I], rng), w, b], { what: 'linear grad 1-D x' });
    // weight views with an offset / padded leading dim (row slice, column slice of a bigger matrix)
    const big = randTensor([O + 3, I + 2], rng);
    for (const [name, wv] of [
      ['row slice', (t: Tensor) => T.slice(T.slice(t, 1, 0, I), 0, 2, 2 + O)],
      ['column slice', (t: Tensor) => T.slice(T.slice(t, 1, 1, 1 + I), 0, 0, O)],
      // column-major storage (trans flag) with an offset and ld = O + 3
      ['transposed slice', (t: Tensor) => T.slice(T.slice(T.transpose(t), 0, 1, 1 + O), 1, 2, 2 + I)],
    ] as [string, (t: Tensor) => Tensor][]) {
      const wt = name === 'transposed slice' ? randTensor([I + 2, O + 3], rng) : big;
      const ww = wv(T.transpose(T.transpose(wt)));
      assert.deepEqual(ww.shape, [O, I]);
      assertClose(T.linear(x, ww, b), refLinear(fromTensor(x), fromTensor(ww), fromTensor(b)), { ...tol, what: `linear weight ${name}` });
      gradCheck((xx, w2, bb) => T.linear(xx, wv(w2), bb), [x, wt, b], { what: `linear grad weight ${name}` });
    }
  });

  forEachBackend('shape errors mention the shapes', () => {
    const w = Tensor.zeros([4, 3]);
    assert.throws(() => T.linear(Tensor.zeros([2, 5]), w), (e: Error) => e.message.includes('[2, 5]') && e.message.includes('[4, 3]'));
    assert.throws(() => T.linear(Tensor.zeros([2, 3]), Tensor.zeros([3])), (e: Error) => e.message.includes('[3]'));
    assert.throws(() => T.linear(Tensor.zeros([2, 3]), w, Tensor.zeros([5])), (e: Error) => e.message.includes('[5]'));
  });
});

describe('matmul random shapes', () => {
  forEachBackend('30 random batched shapes and layouts vs float64', () => {
    const rng = new Rng(77);
    for (let it = 0; it < 30; it++) {
      const M = rng.int(1, 9);
      const K = rng.int(1, 9);
      const N = rng.int(1, 9);
      const rb = rng.int(0, 2);
      const full = Array.from({ length: rb }, () => rng.int(1, 3));
      const ba = full.map((d) => (rng.next() < 0.3 ? 1 : d)).slice(rng.int(0, rb));
      const bb = full.map((d) => (rng.next() < 0.3 ? 1 : d)).slice(rng.int(0, rb));
      const ta = rng.next() < 0.5;
      const tb = rng.next() < 0.5;
      const a = ta ? T.transpose(randTensor([...ba, K, M], rng), -2, -1) : randTensor([...ba, M, K], rng);
      const b = tb ? T.transpose(randTensor([...bb, N, K], rng), -2, -1) : randTensor([...bb, K, N], rng);
      assertClose(T.matmul(a, b), refMatmul(fromTensor(a), fromTensor(b)), { ...tol, what: `matmul [${a.shape.join(',')}]${ta ? 'T' : ''} @ [${b.shape.join(',')}]${tb ? 'T' : ''}` });
    }
  });

  forEachBackend('contiguous batch slices with an offset (fold path) and mixed views', () => {
    const rng = new Rng(78);
    const a = randTensor([4, 3, 5], rng);
    const b = randTensor([5, 2], rng);
    const as = T.slice(a, 0, 1, 3); // contiguous, offset 15
    assertClose(T.matmul(as, b), refMatmul(fromTensor(as), fromTensor(b)), { ...tol, what: 'offset batch slice @ matrix' });
    gradCheck((x, y) => T.matmul(T.slice(x, 0, 1, 3), y), [a, b], { what: 'grad offset batch slice @ matrix' });
    const bs = T.slice(randTensor([3, 5, 2], rng), 0, 1, 3);
    assertClose(T.matmul(as, bs), refMatmul(fromTensor(as), fromTensor(bs)), { ...tol, what: 'offset slices batched' });
  });
});
