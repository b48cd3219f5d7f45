/**
 * Same seed, same backend -> same numbers, whatever the thread count: a Llama-style LM's logits and
 * every parameter gradient are bit-identical with the native kernels at 1 and 2 threads (sizes
 * above the kernels' parallel thresholds, so the threaded paths run). docs/design.md promises this.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crossEntropy, nativeBackend, reshape, withBackend } from '../../src/tensor/index.js';
import { ParamStore, Rng, VarBuilder } from '../../src/nn/index.js';
import { LlamaLM } from '../../src/models/llama/model.js';

const native = nativeBackend();
const skip = 'kernels' in native ? false : `native backend unavailable (${native.error})`;

const cases = [
  { B: 2, T: 192, numKvHeads: 2 },
  { B: 1, T: 160, numKvHeads: 1 }, // few (batch, kv head) groups: attention splits the keys
];

for (const { B, T, numKvHeads } of cases) test(`native: logits and all gradients are bit-identical at 1 and 2 threads (B=${B}, kv heads=${numKvHeads})`, { skip }, () => {
  if (!('kernels' in native)) return;
  const rng = new Rng(11);
  const ids = new Int32Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(256);
  const targets = new Int32Array(B * T);
  for (let i = 0; i < targets.length; i++) targets[i] = rng.int(256);
  const segments = new Int32Array(B * T);
  for (let i = 0; i < segments.length; i++) segments[i] = (i % T) < 100 ? 0 : 1;

  const run = (threads: number): { logits: Float32Array; grads: Map<string, Float32Array> } => {
    native.extras.setThreads(threads);
    const store = new ParamStore();
    const model = new LlamaLM(new VarBuilder(store, { rng: 5 }), {
      vocabSize: 256, hiddenSize: 128, intermediateSize: 352, numLayers: 2, numHeads: 4, numKvHeads, window: 64,
    });
    return withBackend('native', () => {
      const logits = model.forward(ids, B, T, { segments });
      const loss = crossEntropy(reshape(logits, [B * T, 256]), targets);
      loss.backward();
      const grads = new Map<string, Float32Array>();
      for (const [name, p] of store.entries()) {
        assert.ok(p.grad !== null, `${name} has a gradient`);
        grads.set(name, Float32Array.from(p.grad.toArray()));
      }
      return { logits: Float32Array.from(logits.toArray()), grads };
    });
  };
  const before = native.extras.getThreads();
  try {
    const a = run(1);
    const b = run(2);
    assert.equal(a.logits.length, B * T * 256);
    assert.ok(a.logits.every((v, i) => Object.is(v, b.logits[i])), 'logits differ between 1 and 2 threads');
    for (const [name, g] of a.grads) {
      const h = b.grads.get(name);
      assert.ok(h !== undefined && h.length === g.length, name);
      const bad = g.findIndex((v, i) => !Object.is(v, h[i]));
      assert.equal(bad, -1, `gradient of ${name} differs at ${bad}: ${g[bad]} vs ${h[bad]}`);
    }
  } finally {
    native.extras.setThreads(before);
  }
});

test('native: gemm / gemv results are bit-identical at 1 and 2 threads (all transposes, M = 1 paths)', { skip }, () => {
  if (!('kernels' in native)) return;
  const { kernels: k, extras } = native;
  const rng = new Rng(3);
  const rand = (n: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
    return a;
  };
  const before = extras.getThreads();
  try {
    for (const [M, N, K] of [[1, 2048, 1024], [1, 1000, 77], [3, 3000, 700], [300, 257, 513]]) {
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        const A = rand(M * K);
        const Bm = rand(K * N);
        const outs = [1, 2].map((t) => {
          extras.setThreads(t);
          const C = new Float32Array(M * N).fill(Number.NaN);
          k.gemm(1, ta, tb, M, N, K, 1, A, 0, ta ? M : K, 0, Bm, 0, tb ? K : N, 0, 0, C, 0, N, 0);
          return C;
        });
        const bad = outs[0].findIndex((v, i) => !Object.is(v, outs[1][i]));
        assert.equal(bad, -1, `gemm ${M}x${N}x${K} ta=${ta} tb=${tb} differs at ${bad}`);
      }
    }
  } finally {
    extras.setThreads(before);
  }
});
