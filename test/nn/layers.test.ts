import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, noGrad, sum } from '../../src/tensor/index.js';
import {
  Attention,
  CrossAttention,
  DecoderLayer,
  Embedding,
  KVCache,
  LayerKVCache,
  LayerNorm,
  Linear,
  ParamStore,
  RMSNorm,
  RotaryEmbedding,
  SwiGLU,
  VarBuilder,
  defaultInvFreq,
  init,
  llama3InvFreq,
  ropeInvFreq,
  ropeScalingFromHF,
} from '../../src/nn/index.js';
import { Rng as TRng, assertClose, forEachBackend, gradCheck, randTensor } from '../helpers/numeric.js';
import {
  fromTensor,
  refAttention,
  refLayerNorm,
  refLinear,
  refPermute,
  refReshape,
  refRmsNorm,
  refRope,
  type Arr,
} from '../helpers/reference.js';
import { TinyLlama } from './tiny_llama.js';

// ---- float64 references of the layers ------------------------------------------------------------

function map(a: Arr, f: (x: number) => number): Arr {
  return { shape: a.shape.slice(), data: a.data.map(f) };
}

function zip(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  return { shape: a.shape.slice(), data: a.data.map((x, i) => f(x, b.data[i])) };
}

const P = (t: Tensor | null): Arr | null => (t === null ? null : fromTensor(t));
const W = (t: Tensor): Arr => fromTensor(t);

function refSwiGLU(x: Arr, m: SwiGLU): Arr {
  const g = refLinear(x, W(m.gateProj.weight), P(m.gateProj.bias));
  const u = refLinear(x, W(m.upProj.weight), P(m.upProj.bias));
  const h = zip(
    map(g, (v) => v / (1 + Math.exp(-v))),
    u,
    (a, b) => a * b,
  );
  return refLinear(h, W(m.downProj.weight), P(m.downProj.bias));
}

interface RefAttnOpts {
  pos: ArrayLike<number>;
  seg?: ArrayLike<number>;
  window?: number;
  causal?: boolean;
}

function refSelfAttention(x: Arr, a: Attention, o: RefAttnOpts): Arr {
  const [B, T] = x.shape;
  const D = a.headDim;
  const heads = (lin: Linear, H: number, rot: boolean): Arr => {
    let h = refReshape(refLinear(x, W(lin.weight), P(lin.bias)), [B, T, H, D]);
    if (rot && a.rope) h = refRope(h, o.pos, a.rope.theta, a.rope.rotaryDim, a.rope.invFreq);
    return refPermute(h, [0, 2, 1, 3]);
  };
  const q = heads(a.qProj, a.numHeads, true);
  const k = heads(a.kProj, a.numKvHeads, true);
  const v = heads(a.vProj, a.numKvHeads, false);
  const att = refAttention(q, k, v, { causal: o.causal ?? true, window: o.window, qPos: o.pos, kPos: o.pos, qSeg: o.seg, kSeg: o.seg });
  const merged = refReshape(refPermute(att, [0, 2, 1, 3]), [B, T, a.numHeads * D]);
  return refLinear(merged, W(a.oProj.weight), P(a.oProj.bias));
}

function refDecoderLayer(x: Arr, l: DecoderLayer, o: RefAttnOpts): Arr {
  const eps1 = l.inputLayernorm.eps;
  const h = zip(x, refSelfAttention(refRmsNorm(x, W(l.inputLayernorm.weight), eps1), l.selfAttn, o), (a, b) => a + b);
  return zip(h, refSwiGLU(refRmsNorm(h, W(l.postAttentionLayernorm.weight), l.postAttentionLayernorm.eps), l.mlp), (a, b) => a + b);
}

/** Randomises every parameter of a store (norm weights too, so they are exercised). */
function randomise(store: ParamStore, seed: number, scale = 0.3): void {
  const r = new TRng(seed);
  for (const [n, t] of store.entries()) {
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = n.includes('norm') ? 1 + r.uniform(-0.3, 0.3) : r.uniform(-scale, scale);
  }
}

function posFor(B: number, T: number, offset = 0): Int32Array {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) p[b * T + t] = t + offset + b; // rows at different offsets
  return p;
}

const TOL = { rtol: 1e-4, atol: 2e-5 };

// ---- simple layers ---------------------------------------------------------------------------

forEachBackend('layers: Linear, Embedding, RMSNorm, LayerNorm match float64 references', () => {
  const store = new ParamStore();
  const vb = new VarBuilder(store, { rng: 1 });
  const lin = new Linear(vb.pp('lin'), 5, 3, { bias: true, biasInit: init.uniform(-1, 1) });
  const emb = new Embedding(vb.pp('emb'), 7, 5);
  const rms = new RMSNorm(vb.pp('rms'), 5, { eps: 1e-5 });
  const ln = new LayerNorm(vb.pp('ln'), 5);
  randomise(store, 2);
  const x = randTensor([2, 4, 5], new TRng(3));
  assertClose(lin.forward(x), refLinear(fromTensor(x), W(lin.weight), P(lin.bias)), { ...TOL, what: 'linear' });
  assertClose(rms.forward(x), refRmsNorm(fromTensor(x), W(rms.weight), 1e-5), { ...TOL, what: 'rmsnorm' });
  assertClose(ln.forward(x), refLayerNorm(fromTensor(x), P(ln.weight), P(ln.bias), 1e-5), { ...TOL, what: 'layernorm' });
  const ids = Int32Array.from([0, 6, 3, 3]);
  const e = emb.forward(new Tensor(ids, [2, 2]));
  assert.deepEqual(e.shape, [2, 2, 5]);
  assert.deepEqual(e.toArray().slice(5, 10), emb.weight.toArray().slice(30, 35));
  assert.deepEqual(store.names(), ['lin.weight', 'lin.bias', 'emb.weight', 'rms.weight', 'ln.weight', 'ln.bias']);
  const noAffine = new LayerNorm(vb.pp('ln2'), 5, { affine: false });
  assert.equal(noAffine.weight, null);
  assert.equal(noAffine.bias, null);
});

forEachBackend('layers: SwiGLU forward matches float64 and its input gradient matches finite differences', () => {
  const store = new ParamStore();
  const m = new SwiGLU(new VarBuilder(store, { rng: 4 }).pp('mlp'), 6, 10);
  randomise(store, 5);
  assert.deepEqual(store.names(), ['mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight']);
  const x = randTensor([2, 3, 6], new TRng(6));
  assertClose(m.forward(x), refSwiGLU(fromTensor(x), m), { ...TOL, what: 'swiglu' });
  gradCheck((xx) => m.forward(xx), [x], { what: 'swiglu dx' });
});

// ---- rotary ----------------------------------------------------------------------------------

/** Float64 transcription of HF _compute_llama3_parameters (no float32 rounding). */
function refLlama3(invFreq: Float32Array, factor: number, low: number, high: number, oldCtx: number): number[] {
  const lowW = oldCtx / low;
  const highW = oldCtx / high;
  return Array.from(invFreq, (inv) => {
    const wl = (2 * Math.PI) / inv;
    let r = wl > lowW ? inv / factor : inv;
    if (!(wl < highW) && !(wl > lowW)) {
      const s = (oldCtx / wl - low) / (high - low);
      r = ((1 - s) * r) / factor + s * r;
    }
    return r;
  });
}

test('rotary: default and Llama-3 scaled inverse frequencies', () => {
  const base = defaultInvFreq(128, 500000);
  assert.equal(base.length, 64);
  assert.equal(base[0], 1);
  assertClose(base, Array.from({ length: 64 }, (_, i) => Math.pow(500000, -(2 * i) / 128)), { rtol: 1e-6, atol: 0 });
  // Llama 3.1 8B rope_scaling
  const hf = { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' };
  const scaling = ropeScalingFromHF(hf);
  assert.deepEqual(scaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  const inv = ropeInvFreq({ headDim: 128, theta: 500000, scaling });
  assertClose(inv, refLlama3(base, 8, 1, 4, 8192), { rtol: 1e-6, atol: 0, what: 'llama3 inv_freq' });
  // high frequencies (wavelength < 8192/4) unchanged, low ones (wavelength > 8192) divided by 8
  let unchanged = 0;
  let divided = 0;
  let smoothed = 0;
  for (let i = 0; i < 64; i++) {
    const wl = (2 * Math.PI) / base[i];
    if (wl < 2048) {
      assert.equal(inv[i], base[i]);
      unchanged++;
    } else if (wl > 8192) {
      assert.equal(inv[i], Math.fround(base[i] / 8));
      divided++;
    } else {
      assert.ok(inv[i] < base[i] && inv[i] > base[i] / 8);
      smoothed++;
    }
  }
  assert.ok(unchanged > 0 && divided > 0 && smoothed > 0, `${unchanged}/${smoothed}/${divided}`);
  assert.equal(llama3InvFreq(base, { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 })[63], inv[63]);
  // linear scaling and parsing
  assert.deepEqual(ropeScalingFromHF({ type: 'linear', factor: 2 }), { type: 'linear', factor: 2 });
  assert.equal(ropeInvFreq({ headDim: 8, scaling: { type: 'linear', factor: 2 } })[1], Math.fround(defaultInvFreq(8)[1] / 2));
  assert.equal(ropeScalingFromHF(null), null);
  assert.equal(ropeScalingFromHF({ rope_type: 'default' }), null);
  assert.throws(() => ropeScalingFromHF({ rope_type: 'yarn', factor: 4 }), /not supported/);
  assert.throws(() => ropeScalingFromHF({ rope_type: 'llama3', factor: 8 }), /low_freq_factor/);
});

forEachBackend('rotary: apply (partial rotary dim, explicit inverse frequencies) matches float64', () => {
  const r = new RotaryEmbedding({ headDim: 8, rotaryDim: 4 });
  assert.equal(r.invFreq.length, 2);
  const x = randTensor([3, 2, 8], new TRng(1));
  const pos = Int32Array.from([0, 5, 9]);
  assertClose(r.apply(x, pos), refRope(fromTensor(x), pos, 10000, 4, r.invFreq), TOL);
});

// ---- attention -------------------------------------------------------------------------------

function makeAttention(opts: { window?: number; bias?: boolean } = {}): { a: Attention; store: ParamStore } {
  const store = new ParamStore();
  const rope = new RotaryEmbedding({ headDim: 4, theta: 100 });
  const a = new Attention(new VarBuilder(store, { rng: 9 }).pp('self_attn'), {
    hiddenSize: 16,
    numHeads: 4,
    numKvHeads: 2,
    rope,
    bias: opts.bias,
    window: opts.window,
  });
  randomise(store, 10, 0.5);
  return { a, store };
}

forEachBackend('attention: GQA self-attention with RoPE, biases and per-token positions matches float64', () => {
  const { a, store } = makeAttention({ bias: true });
  assert.deepEqual(store.names(), [
    'self_attn.q_proj.weight',
    'self_attn.q_proj.bias',
    'self_attn.k_proj.weight',
    'self_attn.k_proj.bias',
    'self_attn.v_proj.weight',
    'self_attn.v_proj.bias',
    'self_attn.o_proj.weight',
    'self_attn.o_proj.bias',
  ]);
  const x = randTensor([2, 5, 16], new TRng(11));
  const pos = posFor(2, 5, 3);
  assertClose(a.forward(x, { positions: pos }), refSelfAttention(fromTensor(x), a, { pos }), { ...TOL, what: 'attention' });
  const dflt = posFor(2, 5).map((p, i) => i % 5);
  assertClose(a.forward(x), refSelfAttention(fromTensor(x), a, { pos: dflt }), { ...TOL, what: 'attention (default positions)' });
  gradCheck((xx) => a.forward(xx, { positions: pos }), [x], { what: 'attention dx' });
});

forEachBackend('attention: sliding window and segment ids change exactly the affected outputs', () => {
  const T = 8;
  const x = randTensor([1, T, 16], new TRng(12));
  const full = makeAttention().a;
  const win = makeAttention({ window: 3 }).a; // same seed: same weights
  const yf = full.forward(x).toArray();
  const yw = win.forward(x).toArray();
  // tokens 0..2 see the same keys either way; later ones lose keys outside the window
  assert.deepEqual(yw.slice(0, 3 * 16), yf.slice(0, 3 * 16));
  for (let t = 3; t < T; t++) {
    const d = Math.max(...yw.slice(t * 16, (t + 1) * 16).map((v, i) => Math.abs(v - yf[t * 16 + i])));
    assert.ok(d > 1e-4, `token ${t} should change with the window (diff ${d})`);
  }
  const pos = posFor(1, T);
  assertClose(win.forward(x), refSelfAttention(fromTensor(x), win, { pos, window: 3 }), { ...TOL, what: 'windowed' });

  // packed documents: [doc A (3 tokens) | doc B (5 tokens)] with positions restarting at 0
  const seg = Int32Array.from([0, 0, 0, 1, 1, 1, 1, 1]);
  const ppos = Int32Array.from([0, 1, 2, 0, 1, 2, 3, 4]);
  const packed = full.forward(x, { positions: ppos, segments: seg }).toArray();
  assertClose(packed, refSelfAttention(fromTensor(x), full, { pos: ppos, seg }).data, { ...TOL, what: 'segments' });
  const xa = new Tensor(x.f32().slice(0, 3 * 16), [1, 3, 16]);
  const xb = new Tensor(x.f32().slice(3 * 16), [1, 5, 16]);
  assertClose(packed.slice(0, 48), full.forward(xa).toArray(), { ...TOL, what: 'doc A alone' });
  assertClose(packed.slice(48), full.forward(xb).toArray(), { ...TOL, what: 'doc B alone' });
  // without segments, doc B's tokens see doc A: different result
  const mixed = full.forward(x, { positions: ppos }).toArray();
  assert.ok(Math.abs(mixed[60] - packed[60]) > 1e-5);
});

forEachBackend('attention: KV-cache decoding token by token equals the full forward (tiny Llama stack)', () => {
  for (const window of [0, 3]) {
    const store = new ParamStore();
    const model = new TinyLlama(new VarBuilder(store, { rng: 21, defaultInit: init.normal(0.2) }), {
      vocabSize: 16,
      hiddenSize: 32,
      intermediateSize: 48,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      window,
    });
    const B = 2;
    const T = 9;
    const r = new TRng(22);
    const ids = Int32Array.from({ length: B * T }, () => r.int(0, 15));
    const full = noGrad(() => model.forward(ids, B, T)).toArray();
    const V = 16;
    // prefill 4 tokens, then one at a time
    const cache = new KVCache(2);
    const got = new Float64Array(B * T * V);
    const put = (y: number[], t0: number, n: number): void => {
      for (let b = 0; b < B; b++) for (let t = 0; t < n; t++) for (let v = 0; v < V; v++) got[(b * T + t0 + t) * V + v] = y[(b * n + t) * V + v];
    };
    const slice = (t0: number, n: number): Int32Array => {
      const out = new Int32Array(B * n);
      for (let b = 0; b < B; b++) for (let t = 0; t < n; t++) out[b * n + t] = ids[b * T + t0 + t];
      return out;
    };
    put(noGrad(() => model.forward(slice(0, 4), B, 4, { cache })).toArray(), 0, 4);
    assert.equal(cache.length, 4);
    for (let t = 4; t < T; t++) put(noGrad(() => model.forward(slice(t, 1), B, 1, { cache })).toArray(), t, 1);
    assert.equal(cache.length, T);
    let maxDiff = 0;
    for (let i = 0; i < full.length; i++) maxDiff = Math.max(maxDiff, Math.abs(full[i] - got[i]));
    assert.ok(maxDiff < 1e-5, `window ${window}: max |full - incremental| = ${maxDiff}`);
    assert.deepEqual(Array.from(cache.layer(1).positions().slice(0, T)), Array.from({ length: T }, (_, i) => i));
    // truncate + re-decode gives the same result again
    cache.truncate(6);
    const again = noGrad(() => model.forward(slice(6, 1), B, 1, { cache })).toArray();
    for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) assert.ok(Math.abs(again[b * V + v] - full[(b * T + 6) * V + v]) < 1e-5);
    if (window > 0) {
      // keys that left the window can be dropped: decoding continues with the same result
      cache.truncate(6);
      cache.dropOldest(6 - (window - 1));
      assert.equal(cache.length, window - 1);
      assert.deepEqual(Array.from(cache.layer(0).positions()), [4, 5, 4, 5]);
      for (let t = 6; t < T; t++) {
        const y = noGrad(() => model.forward(slice(t, 1), B, 1, { cache, positions: Int32Array.from([t, t]) })).toArray();
        for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) assert.ok(Math.abs(y[b * V + v] - full[(b * T + t) * V + v]) < 1e-5, `after dropOldest, t = ${t}`);
      }
      assert.throws(() => cache.dropOldest(99), /dropOldest: 99 is not in \[0, 5\]/);
    }
  }
});

forEachBackend('attention: KV cache with explicit positions and segment ids matches the packed full forward', () => {
  const { a } = makeAttention();
  const T = 7;
  const x = randTensor([1, T, 16], new TRng(30));
  const seg = Int32Array.from([4, 4, 4, 7, 7, 7, 7]);
  const pos = Int32Array.from([0, 1, 2, 0, 1, 2, 3]);
  const full = a.forward(x, { positions: pos, segments: seg }).toArray();
  const cache = new KVCache(1);
  const out: number[] = [];
  for (let t = 0; t < T; t++) {
    const xt = new Tensor(x.f32().slice(t * 16, (t + 1) * 16), [1, 1, 16]);
    out.push(...noGrad(() => a.forward(xt, { positions: pos.subarray(t, t + 1), segments: seg.subarray(t, t + 1), cache: cache.layer(0) })).toArray());
  }
  assertClose(out, full, { rtol: 0, atol: 1e-5, what: 'cached packed decode' });
  // with gradients on, the current step stays differentiable through a non-empty cache
  const prefix = new Tensor(x.f32().slice(0, 3 * 16), [1, 3, 16]);
  const last = new Tensor(x.f32().slice(3 * 16, 5 * 16), [1, 2, 16]);
  gradCheck(
    (xx) => {
      const c = new LayerKVCache();
      noGrad(() => a.forward(prefix, { cache: c }));
      return a.forward(xx, { cache: c });
    },
    [last],
    { what: 'attention dx through a KV cache' },
  );
  assert.throws(() => a.forward(new Tensor(new Float32Array(16), [1, 1, 16]), { cache: cache.layer(0) }), /segment ids must be given on every step/);
});

forEachBackend('cross-attention: separate query/key positions, RoPE, GQA, kvDim != queryDim and masks match float64', () => {
  const store = new ParamStore();
  const rope = new RotaryEmbedding({ headDim: 4, theta: 50 });
  const ca = new CrossAttention(new VarBuilder(store, { rng: 40 }).pp('cross'), {
    queryDim: 8,
    kvDim: 12,
    outDim: 6,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 4,
    rope,
    bias: true,
    oBias: false,
  });
  randomise(store, 41, 0.5);
  assert.deepEqual(
    store.entries().map(([n, t]) => [n, t.shape]),
    [
      ['cross.q_proj.weight', [8, 8]],
      ['cross.q_proj.bias', [8]],
      ['cross.k_proj.weight', [4, 12]],
      ['cross.k_proj.bias', [4]],
      ['cross.v_proj.weight', [4, 12]],
      ['cross.v_proj.bias', [4]],
      ['cross.o_proj.weight', [6, 8]],
    ],
  );
  const B = 2;
  const Tq = 3;
  const Tk = 5;
  const xq = randTensor([B, Tq, 8], new TRng(42));
  const xkv = randTensor([B, Tk, 12], new TRng(43));
  const qPos = Int32Array.from([2, 4, 6, 1, 3, 5]);
  const kPos = Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
  const mask = new Uint8Array(B * Tq * Tk).map((_, i) => (i % 3 === 0 ? 0 : 1));
  const ref = (causal: boolean, useMask: boolean): Arr => {
    const heads = (x: Tensor, lin: Linear, H: number, pos: Int32Array | null, T: number): Arr => {
      let h = refReshape(refLinear(fromTensor(x), W(lin.weight), P(lin.bias)), [B, T, H, 4]);
      if (pos) h = refRope(h, pos, 50, 4, rope.invFreq);
      return refPermute(h, [0, 2, 1, 3]);
    };
    const att = refAttention(heads(xq, ca.qProj, 2, qPos, Tq), heads(xkv, ca.kProj, 1, kPos, Tk), heads(xkv, ca.vProj, 1, null, Tk), {
      causal,
      qPos,
      kPos,
      mask: useMask ? mask : undefined,
    });
    return refLinear(refReshape(refPermute(att, [0, 2, 1, 3]), [B, Tq, 8]), W(ca.oProj.weight), null);
  };
  assertClose(ca.forward(xq, xkv, { qPos, kPos }), ref(false, false), { ...TOL, what: 'cross' });
  assertClose(ca.forward(xq, xkv, { qPos, kPos, causal: true }), ref(true, false), { ...TOL, what: 'cross causal' });
  assertClose(ca.forward(xq, xkv, { qPos, kPos, mask }), ref(false, true), { ...TOL, what: 'cross masked' });
  gradCheck((a, b) => ca.forward(a, b, { qPos, kPos }), [xq, xkv], { what: 'cross dx' });
  assert.throws(() => ca.forward(xq, randTensor([B, Tk, 8], new TRng(1))), /expected input \[B, T, 12\]/);
});

forEachBackend('cross-attention: q/k RMSNorm (per head and over the full width) matches float64 and backpropagates', () => {
  for (const perHead of [false, true]) {
    const store = new ParamStore();
    const rope = new RotaryEmbedding({ headDim: 4, theta: 30 });
    const ca = new CrossAttention(new VarBuilder(store, { rng: 44 }).pp('x'), {
      queryDim: 6,
      kvDim: 10,
      numHeads: 2,
      numKvHeads: 1,
      headDim: 4,
      rope,
      qkNorm: { perHead, eps: 1e-5 },
    });
    randomise(store, 45, 0.6);
    const nq = perHead ? 4 : 8;
    const nk = 4;
    assert.deepEqual(
      store.entries().filter(([n]) => n.includes('norm')).map(([n, t]) => [n, t.shape]),
      [
        ['x.norm_query.weight', [nq]],
        ['x.norm_key.weight', [nk]],
      ],
    );
    const B = 2;
    const Tq = 3;
    const Tk = 4;
    const xq = randTensor([B, Tq, 6], new TRng(46));
    const xkv = randTensor([B, Tk, 10], new TRng(47));
    const qPos = Int32Array.from([0, 3, 5, 1, 2, 7]);
    const kPos = Int32Array.from([0, 1, 2, 3, 2, 4, 6, 8]);
    const normed = (x: Arr, w: Tensor, T: number, H: number): Arr => {
      if (perHead) return refRmsNorm(refReshape(x, [B, T, H, 4]), W(w), 1e-5);
      return refReshape(refRmsNorm(x, W(w), 1e-5), [B, T, H, 4]);
    };
    const q = refRope(normed(refLinear(fromTensor(xq), W(ca.qProj.weight), null), (ca.normQuery as RMSNorm).weight, Tq, 2), qPos, 30, 4, rope.invFreq);
    const k = refRope(normed(refLinear(fromTensor(xkv), W(ca.kProj.weight), null), (ca.normKey as RMSNorm).weight, Tk, 1), kPos, 30, 4, rope.invFreq);
    const v = refReshape(refLinear(fromTensor(xkv), W(ca.vProj.weight), null), [B, Tk, 1, 4]);
    const att = refAttention(refPermute(q, [0, 2, 1, 3]), refPermute(k, [0, 2, 1, 3]), refPermute(v, [0, 2, 1, 3]), { qPos, kPos });
    const ref = refLinear(refReshape(refPermute(att, [0, 2, 1, 3]), [B, Tq, 8]), W(ca.oProj.weight), null);
    assertClose(ca.forward(xq, xkv, { qPos, kPos }), ref, { ...TOL, what: `qk-norm cross (perHead ${perHead})` });
    gradCheck((a, b) => ca.forward(a, b, { qPos, kPos }), [xq, xkv], { what: `qk-norm cross dx (perHead ${perHead})` });
  }
});

forEachBackend('decoder layer: forward matches float64 reference; stack of 2 layers backpropagates to every parameter', () => {
  const store = new ParamStore();
  const vb = new VarBuilder(store, { rng: 50 });
  const rope = new RotaryEmbedding({ headDim: 8, theta: 10000 });
  const layer = new DecoderLayer(vb.pp('model').pp('layers').pp(0), {
    hiddenSize: 16,
    intermediateSize: 24,
    numHeads: 2,
    numKvHeads: 1,
    rmsNormEps: 1e-5,
    rope,
  });
  randomise(store, 51, 0.4);
  const x = randTensor([2, 6, 16], new TRng(52));
  const pos = posFor(2, 6);
  assertClose(layer.forward(x, { positions: pos }), refDecoderLayer(fromTensor(x), layer, { pos }), { ...TOL, what: 'decoder layer' });
  gradCheck((xx) => layer.forward(xx, { positions: pos }), [x], { what: 'decoder dx' });
  // every parameter of a 2-layer stack receives a finite, nonzero gradient
  const s2 = new ParamStore();
  const model = new TinyLlama(new VarBuilder(s2, { rng: 53, defaultInit: init.normal(0.1) }), {
    vocabSize: 16,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
  });
  const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 5) % 16);
  sum(model.forward(ids, 2, 6)).backward();
  for (const [n, t] of s2.entries()) {
    assert.ok(t.grad !== null, `${n} has no grad`);
    const g = t.grad.toArray();
    assert.ok(g.every(Number.isFinite) && g.some((v) => v !== 0), `${n} grad`);
  }
});
