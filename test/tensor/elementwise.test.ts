/**
 * Elementwise ops (ops/elementwise.ts) on every backend: forward vs float64 references with
 * broadcasting both ways, scalar operands and non-contiguous (transposed / sliced / expanded)
 * inputs; gradients vs central finite differences for every differentiable input.
 *
 * Tolerances: forward binary ops rtol 1e-6 / atol 1e-7 (one f32 rounding); unary ops rtol 2e-5 /
 * atol 2e-6 (room for vectorised exp/tanh/erf approximations); gradients: gradCheck defaults
 * (eps 1e-2, rtol 1e-2, atol 1e-3) unless a case states otherwise.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { Rng, assertClose, forEachBackend, gradCheck, hasNative, randTensor, randTensorAwayFromZero, randInts } from '../helpers/numeric.js';
import { fromTensor, refBinary, refMap, refWhere, unaryRef, unaryDerivRef, arr, type Arr } from '../helpers/reference.js';

type BinName = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum';
const binOps: Record<BinName, (a: T.Operand, b: T.Operand) => Tensor> = {
  add: T.add,
  sub: T.sub,
  mul: T.mul,
  div: T.div,
  maximum: T.maximum,
  minimum: T.minimum,
};
const binRef: Record<BinName | 'gt' | 'eq', (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  maximum: (x, y) => Math.max(x, y),
  minimum: (x, y) => Math.min(x, y),
  gt: (x, y) => (x > y ? 1 : 0),
  eq: (x, y) => (x === y ? 1 : 0),
};

/** How an operand is produced from its contiguous leaf (exercises strided kernel paths). */
type View = 'plain' | 'transposed' | 'sliced' | 'expanded';

interface BinCase {
  a: readonly number[];
  b: readonly number[];
  va?: View;
  vb?: View;
}

/** Leaf shape needed to produce `shape` through `view`. */
function leafShape(shape: readonly number[], view: View): number[] {
  const s = shape.slice();
  if (view === 'transposed') {
    const r = s.length;
    [s[r - 2], s[r - 1]] = [s[r - 1], s[r - 2]];
  } else if (view === 'sliced') s[s.length - 1] += 3;
  else if (view === 'expanded') s[0] = 1;
  return s;
}

function applyView(t: Tensor, shape: readonly number[], view: View): Tensor {
  if (view === 'transposed') return T.transpose(t, -2, -1);
  if (view === 'sliced') return T.slice(t, -1, 1, 1 + shape[shape.length - 1]);
  if (view === 'expanded') return T.expand(t, shape);
  return t;
}

const binCases: BinCase[] = [
  { a: [3, 5], b: [3, 5] },
  { a: [3, 5], b: [5] },
  { a: [5], b: [3, 5] },
  { a: [4, 1, 3], b: [2, 1] },
  { a: [2, 1], b: [4, 1, 3] },
  { a: [1], b: [2, 3, 1] },
  { a: [], b: [2, 3] },
  { a: [2, 3], b: [] },
  { a: [2, 1, 7], b: [1, 6, 7] },
  { a: [1, 1], b: [1, 1] },
  { a: [3, 4], b: [3, 4], va: 'transposed' },
  { a: [3, 4], b: [4], va: 'transposed', vb: 'sliced' },
  { a: [2, 5], b: [2, 5], va: 'sliced', vb: 'transposed' },
  { a: [3, 2, 4], b: [2, 4], va: 'expanded' },
  { a: [3, 4], b: [3, 4], va: 'expanded', vb: 'expanded' },
  { a: [2, 3, 5], b: [1, 5], va: 'transposed', vb: 'expanded' },
];

function caseName(c: BinCase): string {
  return `[${c.a.join(',')}]${c.va && c.va !== 'plain' ? `(${c.va})` : ''} op [${c.b.join(',')}]${c.vb && c.vb !== 'plain' ? `(${c.vb})` : ''}`;
}

/** Operand leaves for a case; for div the divisor stays in [0.5, 1.5] in magnitude. */
function makeLeaves(c: BinCase, rng: Rng, op: BinName | 'gt' | 'eq'): [Tensor, Tensor] {
  const la = randTensor(leafShape(c.a, c.va ?? 'plain'), rng, -1, 1);
  const lb = op === 'div' ? randTensorAwayFromZero(leafShape(c.b, c.vb ?? 'plain'), rng, 0.5, 1.5) : randTensor(leafShape(c.b, c.vb ?? 'plain'), rng, -1, 1);
  return [la, lb];
}

/** Minimum |a - b| over the broadcast pairs (max/min gradients need no near-ties). */
function minGap(a: Arr, b: Arr): number {
  const d = refBinary(a, b, (x, y) => Math.abs(x - y));
  let m = Infinity;
  for (const v of d.data) m = Math.min(m, v);
  return m;
}

describe('binary ops: forward vs float64 reference', () => {
  for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'gt', 'eq'] as const) {
    forEachBackend(`${op} forward over ${binCases.length} broadcast/view cases`, () => {
      const rng = new Rng(101);
      for (const c of binCases) {
        const [la, lb] = makeLeaves(c, rng, op);
        const a = applyView(la, c.a, c.va ?? 'plain');
        const b = applyView(lb, c.b, c.vb ?? 'plain');
        assert.deepEqual(a.shape, c.a);
        assert.deepEqual(b.shape, c.b);
        const f = op === 'gt' ? T.gt : op === 'eq' ? T.eq : binOps[op];
        const y = f(a, b);
        assertClose(y, refBinary(fromTensor(a), fromTensor(b), binRef[op]), { rtol: 1e-6, atol: 1e-7, what: `${op} ${caseName(c)}` });
        // inputs are untouched
        assertClose(a, fromTensor(applyView(la, c.a, c.va ?? 'plain')), { rtol: 0, atol: 0, what: 'input a unchanged' });
      }
    });
  }

  forEachBackend('number operands on either side', () => {
    const rng = new Rng(7);
    const x = randTensorAwayFromZero([2, 3], rng, 0.5, 1.5);
    const xr = fromTensor(x);
    const s = 1.75;
    const sr = arr([], [s]);
    for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const) {
      assertClose(binOps[op](x, s), refBinary(xr, sr, binRef[op]), { rtol: 1e-6, atol: 1e-7, what: `${op}(x, ${s})` });
      assertClose(binOps[op](s, x), refBinary(sr, xr, binRef[op]), { rtol: 1e-6, atol: 1e-7, what: `${op}(${s}, x)` });
    }
    assert.deepEqual(T.add(x, 1).shape, [2, 3]);
  });

  forEachBackend('eq finds exactly equal elements, gt is strict', () => {
    const a = Tensor.from([1, 2, 3, 4, -0, 5], [2, 3]);
    const b = Tensor.from([1, 0, 3, 5, 0, 5], [2, 3]);
    assert.deepEqual(T.eq(a, b).toArray(), [1, 0, 1, 0, 1, 1]);
    assert.deepEqual(T.gt(a, b).toArray(), [0, 1, 0, 0, 0, 0]);
    assert.deepEqual(T.gt(a, 2).toArray(), [0, 0, 1, 1, 0, 1]);
  });

  forEachBackend('broadcast shape mismatch error names both shapes', () => {
    const a = Tensor.zeros([2, 3]);
    const b = Tensor.zeros([4, 3]);
    for (const f of [T.add, T.sub, T.mul, T.div, T.maximum, T.minimum, T.gt, T.eq]) {
      assert.throws(() => f(a, b), (e: Error) => e.message.includes('[2, 3]') && e.message.includes('[4, 3]'));
    }
  });
});

describe('binary ops: gradients vs finite differences', () => {
  for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const) {
    forEachBackend(`${op} gradient over broadcast/view cases`, () => {
      const rng = new Rng(202);
      for (const c of binCases) {
        let la: Tensor;
        let lb: Tensor;
        let tries = 0;
        do {
          [la, lb] = makeLeaves(c, rng, op);
          tries++;
        } while ((op === 'maximum' || op === 'minimum') && tries < 50 && minGap(fromTensor(applyView(la, c.a, c.va ?? 'plain')), fromTensor(applyView(lb, c.b, c.vb ?? 'plain'))) < 0.05);
        gradCheck((x, y) => binOps[op](applyView(x, c.a, c.va ?? 'plain'), applyView(y, c.b, c.vb ?? 'plain')), [la, lb], {
          what: `${op} grad ${caseName(c)}`,
        });
        // one side frozen: it gets no gradient, the other still does
        gradCheck((x, y) => binOps[op](applyView(x, c.a, c.va ?? 'plain'), applyView(y, c.b, c.vb ?? 'plain')), [la, lb], {
          wrt: [false, true],
          what: `${op} grad (a frozen) ${caseName(c)}`,
        });
      }
    });
  }

  forEachBackend('scalar number operand: gradient to the tensor side', () => {
    const rng = new Rng(9);
    const x = randTensorAwayFromZero([3, 2], rng, 0.5, 1.5);
    for (const op of ['add', 'sub', 'mul', 'div'] as const) {
      gradCheck((t) => binOps[op](t, 0.7), [x], { what: `${op}(x, 0.7)` });
      gradCheck((t) => binOps[op](0.7, t), [x], { what: `${op}(0.7, x)` });
    }
  });

  forEachBackend('maximum/minimum ties send the whole gradient to the first operand', () => {
    const a = Tensor.from([1, 2, 3]).requireGrad();
    const b = Tensor.from([1, 5, 3]).requireGrad();
    T.maximum(a, b).backward(Float32Array.from([1, 1, 1]));
    assert.deepEqual(a.grad?.toArray(), [1, 0, 1]);
    assert.deepEqual(b.grad?.toArray(), [0, 1, 0]);
    const c = Tensor.from([1, 2, 3]).requireGrad();
    const d = Tensor.from([1, 0, 4]).requireGrad();
    T.minimum(c, d).backward(Float32Array.from([2, 3, 4]));
    assert.deepEqual(c.grad?.toArray(), [2, 0, 4]);
    assert.deepEqual(d.grad?.toArray(), [0, 3, 0]);
  });
});

// ---- unary -----------------------------------------------------------------------------------

type UnaryName = 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'silu' | 'gelu' | 'geluTanh' | 'tanh' | 'elu' | 'relu' | 'sigmoid' | 'abs' | 'square' | 'reciprocal';
const unaryOps: Record<UnaryName, (x: Tensor) => Tensor> = {
  neg: T.neg,
  exp: T.exp,
  log: T.log,
  sqrt: T.sqrt,
  rsqrt: T.rsqrt,
  silu: T.silu,
  gelu: T.gelu,
  geluTanh: T.geluTanh,
  tanh: T.tanh,
  elu: T.elu,
  relu: T.relu,
  sigmoid: T.sigmoid,
  abs: T.abs,
  square: T.square,
  reciprocal: T.reciprocal,
};

/** Input domain per op: positive for log/sqrt/rsqrt, away from 0 for kinks and poles. */
function unaryInput(op: UnaryName, shape: readonly number[], rng: Rng): Tensor {
  switch (op) {
    case 'log':
    case 'sqrt':
    case 'rsqrt':
      return randTensor(shape, rng, 0.2, 3);
    case 'reciprocal':
      return randTensorAwayFromZero(shape, rng, 0.3, 2);
    case 'relu':
    case 'abs':
    case 'elu':
      return randTensorAwayFromZero(shape, rng, 0.05, 3);
    case 'gelu':
    case 'geluTanh':
    case 'silu':
    case 'sigmoid':
    case 'tanh':
      return randTensor(shape, rng, -5, 5);
    default:
      return randTensor(shape, rng, -2, 2);
  }
}

describe('unary ops', () => {
  for (const op of Object.keys(unaryOps) as UnaryName[]) {
    forEachBackend(`${op} forward (contiguous, transposed, sliced, odd sizes) vs float64`, () => {
      const rng = new Rng(303);
      for (const shape of [[1], [7], [3, 5], [2, 3, 17], [1, 1, 1]] as number[][]) {
        const x = unaryInput(op, shape, rng);
        const before = x.toArray();
        const y = unaryOps[op](x);
        assert.deepEqual(y.shape, shape);
        assertClose(y, refMap(fromTensor(x), unaryRef[op]), { rtol: 2e-5, atol: 2e-6, what: `${op} [${shape.join(',')}]` });
        assert.deepEqual(x.toArray(), before, `${op} must not modify its input`);
      }
      const base = unaryInput(op, [5, 6], rng);
      const xt = T.transpose(base);
      assertClose(unaryOps[op](xt), refMap(fromTensor(xt), unaryRef[op]), { rtol: 2e-5, atol: 2e-6, what: `${op} transposed` });
      const xs = T.slice(base, 1, 1, 4);
      assertClose(unaryOps[op](xs), refMap(fromTensor(xs), unaryRef[op]), { rtol: 2e-5, atol: 2e-6, what: `${op} sliced` });
    });

    forEachBackend(`${op} gradient vs finite differences and analytic derivative`, () => {
      const rng = new Rng(404);
      const x = unaryInput(op, [3, 4], rng);
      // smaller step for the fast-varying ops over wide inputs
      const eps = op === 'exp' || op === 'square' ? 1e-3 : 1e-2;
      gradCheck((t) => unaryOps[op](t), [x], { eps, what: `${op} grad` });
      gradCheck((t) => unaryOps[op](T.transpose(t)), [x], { eps, what: `${op} grad through transpose` });
      // analytic derivative in float64
      const leaf = x.clone().requireGrad();
      unaryOps[op](leaf).backward(Tensor.ones(leaf.shape));
      assertClose(leaf.grad ?? [], refMap(fromTensor(x), unaryDerivRef[op]), { rtol: 1e-4, atol: 1e-5, what: `${op}' analytic` });
    });
  }

  forEachBackend('special values: overflow / underflow / zero / infinities / NaN follow the float64 definitions', () => {
    const xs = [-1000, -100, -88.8, -87, -20, -10, -1e-30, -0, 0, 1e-30, 1e-7, 10, 20, 87, 88.8, 89, 100, 1000, -Infinity, NaN];
    const x = Tensor.from(xs);
    for (const op of Object.keys(unaryOps) as UnaryName[]) {
      // the float64 result rounded to f32 (overflow -> Infinity); tiny results (f32 denormals,
      // gelu's far negative tail ~1e-23) may flush to zero: absolute floor 1e-20
      const ref = refMap(fromTensor(x), (v) => Math.fround(unaryRef[op](v)));
      assertClose(unaryOps[op](x), ref, { rtol: 2e-5, atol: 1e-20, what: `${op} special values` });
    }
    for (const op of ['neg', 'exp', 'sqrt', 'rsqrt', 'silu', 'geluTanh', 'tanh', 'elu', 'relu', 'sigmoid', 'abs', 'square', 'reciprocal', 'log'] as UnaryName[]) {
      const inf = Tensor.from([Infinity]);
      assertClose(unaryOps[op](inf), refMap(fromTensor(inf), unaryRef[op]), { rtol: 0, atol: 0, what: `${op}(+Infinity)` });
    }
  });

  // gelu(+Infinity) = +Infinity on both backends (the native kernel once returned NaN there)
  for (const b of ['js', 'native'] as const) {
    const run = (): void => {
      assert.equal(T.withBackend(b, () => T.gelu(Tensor.from([Infinity])).toArray()[0]), Infinity);
    };
    if (b === 'js') test('gelu(+Infinity) is +Infinity [js]', run);
    else if (hasNative()) test('gelu(+Infinity) is +Infinity [native]', run);
    else test('gelu(+Infinity) is +Infinity [native]', { skip: 'native backend unavailable' }, () => {});
  }

  forEachBackend('gelu matches the exact-erf definition deep in the tails', () => {
    const x = Tensor.from([-8, -6, -4.5, -3, -1e-3, 0, 1e-3, 3, 4.5, 6, 8]);
    assertClose(T.gelu(x), refMap(fromTensor(x), unaryRef.gelu), { rtol: 1e-5, atol: 1e-7, what: 'gelu tails' });
  });
});

// ---- affine, where, pow, cast ----------------------------------------------------------------

describe('affine / scale / where / pow / castF32', () => {
  forEachBackend('affine and scale forward + gradient, including alpha = 0', () => {
    const rng = new Rng(505);
    const x = randTensor([4, 3], rng);
    for (const [al, be] of [
      [2.5, -0.5],
      [-1, 0],
      [0, 3],
      [1, 0],
    ] as const) {
      assertClose(T.affine(x, al, be), refMap(fromTensor(x), (v) => v * al + be), { rtol: 1e-6, atol: 1e-7, what: `affine ${al},${be}` });
      gradCheck((t) => T.affine(T.transpose(t), al, be), [x], { what: `affine grad ${al},${be}` });
    }
    assertClose(T.scale(T.transpose(x), -3), refMap(fromTensor(T.transpose(x)), (v) => -3 * v), { rtol: 1e-6, atol: 1e-7, what: 'scale' });
  });

  forEachBackend('where: broadcast condition (f32, i32, u8), unselected -Infinity/NaN do not leak, gradients', () => {
    const rng = new Rng(606);
    const condF = Tensor.from([1, 0, 0, 1, 1, 0], [2, 1, 3]);
    const condI = new Tensor(Int32Array.from([0, 7, -1]), [3]);
    const condU = new Tensor(Uint8Array.from([1, 0]), [2, 1, 1]);
    const a = randTensor([2, 4, 3], rng);
    const b = randTensor([4, 1], rng);
    for (const [name, c] of [
      ['f32', condF],
      ['i32', condI],
      ['u8', condU],
    ] as const) {
      const cr = fromTensor(T.castF32(c));
      assertClose(T.where(c, a, b), refWhere(cr, fromTensor(a), fromTensor(b)), { rtol: 0, atol: 0, what: `where ${name}` });
      gradCheck((x, y) => T.where(c, x, y), [a, b], { what: `where grad ${name}` });
      gradCheck((x, y) => T.where(c, T.transpose(x, 0, 1), y), [T.transpose(a, 0, 1).clone(), b], { what: `where grad transposed ${name}` });
    }
    const ninf = Tensor.full([2, 4, 3], -Infinity);
    const nan = Tensor.full([1], NaN);
    const y = T.where(condF, a, ninf);
    const yr = refWhere(fromTensor(condF), fromTensor(a), fromTensor(ninf));
    assertClose(y, yr, { rtol: 0, atol: 0, what: 'where with -Infinity' });
    const z = T.where(condF, nan, a).toArray();
    const zr = refWhere(fromTensor(condF), fromTensor(nan), fromTensor(a)).data;
    for (let i = 0; i < z.length; i++) assert.ok(Object.is(z[i], zr[i]) || (Number.isNaN(z[i]) && Number.isNaN(zr[i])), `where NaN branch at ${i}`);
    // scalar operands
    assertClose(T.where(condF, 2, -2), refWhere(fromTensor(condF), arr([], [2]), arr([], [-2])), { rtol: 0, atol: 0, what: 'where scalars' });
    // gradient never reaches the unselected -Infinity branch as NaN
    const al = a.clone().requireGrad();
    T.where(condF, al, ninf).backward(Tensor.ones([2, 4, 3]));
    for (const v of al.grad?.toArray() ?? []) assert.ok(v === 0 || v === 1);
  });

  forEachBackend('pow forward + gradient for several exponents', () => {
    const rng = new Rng(707);
    const x = randTensor([3, 4], rng, 0.3, 2);
    for (const p of [2, 3, 0.5, -1, 1.5, 0, 1]) {
      assertClose(T.pow(x, p), refMap(fromTensor(x), (v) => Math.pow(v, p)), { rtol: 1e-6, atol: 1e-7, what: `pow ${p}` });
      gradCheck((t) => T.pow(T.transpose(t), p), [x], { eps: 1e-3, what: `pow grad ${p}` });
    }
    // x ** 0 is constant: zero gradient, also at x = 0 (0 * 0^-1 must not give NaN)
    const z = Tensor.from([0, 1, -2]).requireGrad();
    T.pow(z, 0).backward(Tensor.ones([3]));
    assert.deepEqual(z.grad?.toArray().map((v) => Math.abs(v)), [0, 0, 0]);
    const neg = randTensor([5], rng, -2, 2);
    assertClose(T.pow(neg, 3), refMap(fromTensor(neg), (v) => v ** 3), { rtol: 1e-6, atol: 1e-7, what: 'pow of negatives' });
  });

  forEachBackend('castF32 converts integer tensors and is identity on f32', () => {
    const rng = new Rng(808);
    const i = randInts([2, 3], rng, -50, 50);
    const f = T.castF32(i);
    assert.equal(f.dtype, 'f32');
    assert.deepEqual(f.toArray(), i.toArray());
    const x = randTensor([2], rng);
    assert.equal(T.castF32(x), x);
  });

  forEachBackend('ops reject integer tensors with a clear error', () => {
    const i = new Tensor(Int32Array.from([1, 2]), [2]);
    assert.throws(() => T.add(i, 1), /add: expected f32/);
    assert.throws(() => T.exp(i), /exp: expected f32/);
    assert.throws(() => T.pow(i, 2), /pow: expected f32/);
  });
});

describe('random broadcast shapes', () => {
  /** Two random broadcast-compatible shapes (ranks 0..4, dims 1..7, 1s on either side). */
  function randomPair(rng: Rng): [number[], number[]] {
    const r = rng.int(0, 4);
    const full = Array.from({ length: r }, () => rng.int(1, 7));
    const a = full.map((d) => (rng.next() < 0.3 ? 1 : d));
    const b = full.map((d) => (rng.next() < 0.3 ? 1 : d));
    return [a.slice(rng.int(0, a.length)), b.slice(rng.int(0, b.length))];
  }

  forEachBackend('40 random shape pairs, random views: forward of every binary op', () => {
    const rng = new Rng(909);
    for (let it = 0; it < 40; it++) {
      const [sa, sb] = randomPair(rng);
      const va: View = sa.length >= 2 ? rng.pick(['plain', 'transposed', 'sliced', 'expanded'] as View[]) : 'plain';
      const vb: View = sb.length >= 1 ? rng.pick(['plain', 'sliced'] as View[]) : 'plain';
      const c: BinCase = { a: sa, b: sb, va, vb };
      for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'gt', 'eq'] as const) {
        const [la, lb] = makeLeaves(c, rng, op);
        const a = applyView(la, sa, va);
        const b = applyView(lb, sb, vb);
        const f = op === 'gt' ? T.gt : op === 'eq' ? T.eq : binOps[op];
        assertClose(f(a, b), refBinary(fromTensor(a), fromTensor(b), binRef[op]), { rtol: 1e-6, atol: 1e-7, what: `${op} ${caseName(c)}` });
      }
    }
  });

  forEachBackend('12 random shape pairs: gradients of add / mul / div', () => {
    const rng = new Rng(910);
    for (let it = 0; it < 12; it++) {
      const [sa, sb] = randomPair(rng);
      const c: BinCase = { a: sa, b: sb };
      for (const op of ['add', 'mul', 'div'] as const) {
        const [la, lb] = makeLeaves(c, rng, op);
        gradCheck((x, y) => binOps[op](x, y), [la, lb], { what: `${op} grad ${caseName(c)}` });
      }
    }
  });
});
