/**
 * Divergent token metrics on tiny random HAT models (src/eval/hat_dtm.ts), in-memory component
 * compression, the sweep -> plan pipeline, and `tfree eval dtm` / `tfree prune|quantize --plan`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HatSplitter, saveHATModel, loadHATModel, type HATModel } from '../../src/models/hat/index.js';
import { DtmEvaluator, appendWords, greedyContinuation, parsePrompts, wordLengthsIn } from '../../src/eval/hat_dtm.js';
import { applyCompression, blockFor, componentLabel, listComponents } from '../../src/eval/components.js';
import { levelsForTargets, precisionPlan, runSweep, sparsityPlan } from '../../src/eval/sweep.js';
import { cli } from '../helpers/cli.js';
import { loadPackedHATModel } from '../../src/compress/index.js';
import { forEachPackedLinear, setPackedAct } from '../../src/compress/index.js';
import { randomModel, testConfig } from '../hat/util.js';

const splitter = new HatSplitter();
const PROMPTS = ['The cat sat', 'Once upon a time', 'x', 'Hello, world! How', 'a b c d'];

/**
 * A random model whose greedy text is ASCII: the lm_head rows of bytes >= 128 are zero, so their
 * logits are 0 and some ASCII logit is larger. (Random bytes would be mostly invalid UTF-8, where
 * an incomplete sequence later found invalid is re-split after the fact: the one case where the
 * final word split differs from the one generation saw; docs/eval.md.)
 */
function model(seed: number): HATModel {
  const m = randomModel(testConfig(), seed, 0.5);
  const w = m.lmHead.weight;
  const d = w.data as Float32Array;
  d.fill(0, w.offset + 128 * w.shape[1], w.offset + 256 * w.shape[1]);
  return m;
}

test('parsePrompts: one per line, or blocks separated by blank lines', () => {
  assert.deepEqual(parsePrompts('a b\n  c\n\n'), ['a b', 'c']);
  assert.deepEqual(parsePrompts('first\nstill first\n\n second \n \nthird\r\n'), ['first\nstill first', 'second', 'third']);
  assert.deepEqual(parsePrompts('\n\n'), []);
});

test('wordLengthsIn / appendWords: continuation words, the first may continue the prompt word', () => {
  const enc = new TextEncoder();
  const words = [enc.encode('ab'), enc.encode(' cd'), enc.encode(' e')];
  assert.deepEqual(wordLengthsIn(words, 1, 7), [1, 3, 2]);
  assert.deepEqual(wordLengthsIn(words, 2, 5), [3]);
  const grown = appendWords(splitter, splitter.encode('The ca'), enc.encode('t sat'));
  assert.deepEqual(
    grown.map((w) => new TextDecoder().decode(w)),
    splitter.encode('The cat sat').map((w) => new TextDecoder().decode(w)),
  );
});

test('identical models: FDT = N, SDT = 0, KL = 0; teacher-forced argmax is the generated text', () => {
  const base = model(1);
  const ev = new DtmEvaluator(base, splitter, PROMPTS, { length: 24, batchSize: 2 });
  const r = ev.evaluate(base);
  assert.equal(r.bytes.fdt_mean, 24);
  assert.equal(r.bytes.fdt_p25, 24);
  assert.equal(r.bytes.sdt_mean, 0);
  assert.equal(r.words.sdt_share, 0);
  assert.equal(r.kl_bits, 0);
  assert.equal(r.bpb, r.bpb_base);
  // alignment: logits at position t predict byte t + 1 (an off-by-one would not reproduce the greedy text)
  assert.equal(r.base_consistency, 1);
  for (const ref of ev.refs) assert.equal(ref.wordLengths.reduce((a, b) => a + b, 0), 24);
});

test('teacher-forced FDT equals the first mismatch of the compressed model\'s own greedy generation', () => {
  const base = model(2);
  const prompts = [...PROMPTS, 'Zebra', 'qq rr ss', 'In 1999 the'];
  const ev = new DtmEvaluator(base, splitter, prompts, { length: 30 });
  const comps = listComponents(base);
  let nontrivial = 0;
  for (const [i, plan] of [
    { [comps[3].name]: { sparsity: 0.6 } },
    Object.fromEntries(comps.map((c) => [c.name, { format: 'int4' }])),
    Object.fromEntries(comps.map((c) => [c.name, { format: 'bin1' }])),
  ].entries()) {
    const restore = applyCompression(comps, plan);
    try {
      const r = ev.evaluate(base, { freeRunning: true });
      ev.refs.forEach((ref, k) => {
        const own = greedyContinuation(base, splitter, ref.prompt, 30);
        let first = 30;
        for (let t = 0; t < 30; t++) if (own[t] !== ref.continuation[t]) {
          first = t;
          break;
        }
        assert.equal(r.fdt_bytes[k], first, `plan ${i}, prompt ${k}`);
        if (first > 0 && first < 30) nontrivial++;
        // the word holding the first divergent byte is the first divergent word
        let s = 0;
        let w = 0;
        while (w < ref.wordLengths.length && s + ref.wordLengths[w] <= first) s += ref.wordLengths[w++];
        assert.equal(r.fdt_words[k], w);
      });
      assert.equal(r.free?.fdt_bytes.fdt_mean, r.bytes.fdt_mean);
      assert.ok(r.bytes.sdt_mean >= (r.bytes.fdt_mean < 30 ? 1 : 0));
    } finally {
      restore();
    }
  }
  assert.ok(nontrivial >= 3, `only ${nontrivial} prompts diverged inside the continuation`);
  assert.equal(ev.evaluate(base).bytes.fdt_mean, 30, 'weights restored');
});

test('components: labels, block sizes, in-place compression restores exactly', () => {
  assert.deepEqual(componentLabel('encoder.layers.0.self_attn.q_proj.weight'), { group: 'encoder.0', kind: 'q' });
  assert.deepEqual(componentLabel('decoder.decoder_layers.1.cross_attention.v_proj.weight'), { group: 'decoder.1', kind: 'xv' });
  assert.deepEqual(componentLabel('decoder.decoder_layers.1.llama_layer.mlp.down_proj.weight'), { group: 'decoder.1', kind: 'down' });
  assert.deepEqual(componentLabel('encoder_connector.cross_attention_encoder_connector.o_proj.weight'), { group: 'connector', kind: 'xo' });
  assert.equal(blockFor(352, 64), 32);
  assert.equal(blockFor(128, 64), 64);
  assert.equal(blockFor(24, 64), 8);
  assert.throws(() => blockFor(12, 64), /divides the row length 12/);
  const m = model(3);
  const comps = listComponents(m);
  assert.ok(!comps.some((c) => c.name === 'lm_head.weight'));
  const before = comps.map((c) => c.linear.weight.f32().slice());
  const restore = applyCompression(comps, { [comps[0].name]: { sparsity: 0.5 }, [comps[1].name]: { format: 'bin1' } });
  const w0 = comps[0].linear.weight.f32();
  assert.equal(w0.filter((v) => v === 0).length, Math.round(0.5 * w0.length));
  assert.ok(new Set(comps[1].linear.weight.f32()).size < before[1].length);
  restore();
  comps.forEach((c, i) => assert.deepEqual(c.linear.weight.f32(), before[i]));
  assert.throws(() => applyCompression(comps, { nope: { sparsity: 0.1 } }), /no component "nope"/);
});

test('sweep -> Algorithm 1 and mixed-precision plans meet their targets; uniform baseline', () => {
  const base = model(4);
  const ev = new DtmEvaluator(base, splitter, PROMPTS.slice(0, 3), { length: 12 });
  const comps = listComponents(base, { include: ['decoder.*'] });
  const levels = [...levelsForTargets([0.4]), 'int8', 'kmeans2', 'bin1'];
  assert.deepEqual(levelsForTargets([0.4]), ['s0.2', 's0.6', 's1']);
  let calls = 0;
  const s = runSweep(ev, comps, levels, 'random', { onProgress: () => calls++ });
  assert.equal(s.rows.length, comps.length * levels.length);
  assert.equal(calls, comps.length * levels.length + 1);
  assert.equal(s.base.fdt_mean, 12);
  // decoder cross-attention q/k see a single key: softmax over one key is 1, so they cannot matter
  for (const r of s.rows.filter((x) => /cross_attention\.(q|k)_proj/.test(x.component))) assert.equal(r.fdt_mean, 12, `${r.component} ${r.level}`);
  const total = comps.reduce((a, c) => a + c.params, 0);
  for (const method of ['fdt_p25', 'bpb', 'uniform'] as const) {
    const p = sparsityPlan(s, 0.4, method);
    const achieved = comps.reduce((a, c) => a + (p.components[c.name].sparsity ?? 0) * c.params, 0) / total;
    assert.ok(achieved >= 0.4 - 1e-6, `${method}: ${achieved}`);
    const q = precisionPlan(s, 4, method);
    assert.ok(q.achieved <= 4 + 1e-9, `${method}: ${q.achieved} bits`);
  }
  // FDT plan: the free components (cross-attention q/k) take the most sparsity
  const p = sparsityPlan(s, 0.4, 'fdt_p25');
  const free = comps.filter((c) => /cross_attention\.(q|k)_proj/.test(c.name));
  for (const c of free) assert.equal(p.components[c.name].sparsity, 1);
});

test('tfree eval dtm on plain, pruned and packed folders; prune/quantize --plan', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tfree-evaldtm-'));
  try {
    const src = join(root, 'base');
    saveHATModel(src, model(5));
    const prompts = join(root, 'prompts.txt');
    writeFileSync(prompts, PROMPTS.slice(0, 3).join('\n'));
    const same = await cli(['eval', 'dtm', '--model', src, '--compressed', src, '--prompts', prompts, '--max-bytes', '10', '--json']);
    assert.equal(same.code, 0, same.err);
    const js = JSON.parse(same.out) as Record<string, number>;
    for (const k of ['fdt_mean', 'fdt_median', 'fdt_p25', 'fdt_p75', 'sdt_mean', 'sdt_share']) assert.equal(typeof js[k], 'number', k);
    assert.equal(js.fdt_mean, 10);
    assert.equal(js.sdt_share, 0);

    // plans through the CLI
    const base = loadHATModel(src);
    const comps = listComponents(base);
    const sp = { tfree_plan: 1, kind: 'sparsity', components: { [comps[0].name]: { sparsity: 0.5 }, [comps[5].name]: { sparsity: 0.25 } } };
    writeFileSync(join(root, 'sp.json'), JSON.stringify(sp));
    const pr = await cli(['prune', '--plan', join(root, 'sp.json'), '--model', src, '--out', join(root, 'pruned'), '--json']);
    assert.equal(pr.code, 0, pr.err);
    const pm = loadHATModel(join(root, 'pruned'));
    const pc = listComponents(pm);
    assert.equal(pc[0].linear.weight.f32().filter((v) => v === 0).length, Math.round(0.5 * pc[0].params));
    assert.equal(pc[5].linear.weight.f32().filter((v) => v === 0).length, Math.round(0.25 * pc[5].params));
    assert.deepEqual(pc[2].linear.weight.f32(), comps[2].linear.weight.f32());

    const qp = { tfree_plan: 1, kind: 'precision', components: Object.fromEntries(comps.map((c, i) => [c.name, i % 3 === 0 ? { format: 'f32' } : { format: i % 3 === 1 ? 'int8' : 'kmeans2', block: blockFor(c.cols, 64) }])) };
    writeFileSync(join(root, 'qp.json'), JSON.stringify(qp));
    const q = await cli(['quantize', '--plan', join(root, 'qp.json'), '--model', src, '--out', join(root, 'packed'), '--json']);
    assert.equal(q.code, 0, q.err);
    const summary = JSON.parse(q.out.trim().split('\n').pop() as string) as { quantized: number };
    assert.equal(summary.quantized, comps.filter((_, i) => i % 3 !== 0).length);

    for (const dir of ['pruned', 'packed']) {
      const r = await cli(['eval', 'dtm', '--model', src, '--compressed', join(root, dir), '--prompts', prompts, '--max-bytes', '10', '--units', 'words', '--json', '--report', join(root, `rep-${dir}`)]);
      assert.equal(r.code, 0, r.err);
      const o = JSON.parse(r.out) as { units: string; fdt_mean: number; words: { fdt_mean: number } };
      assert.equal(o.units, 'words');
      assert.equal(o.fdt_mean, o.words.fdt_mean);
      assert.match(readFileSync(join(root, `rep-${dir}`, 'report.md'), 'utf8'), /FDT mean/);
      assert.match(readFileSync(join(root, `rep-${dir}`, 'fdt_bytes.svg'), 'utf8'), /^<svg/);
    }
    // the in-memory evaluation of the plan gives the same metrics as the written checkpoint (pruning is exact)
    const ev = new DtmEvaluator(base, new HatSplitter(), PROMPTS.slice(0, 3), { length: 10 });
    const restore = applyCompression(comps, { [comps[0].name]: { sparsity: 0.5 }, [comps[5].name]: { sparsity: 0.25 } });
    const mem = ev.evaluate(base);
    restore();
    assert.deepEqual(ev.evaluate(pm).fdt_bytes, mem.fdt_bytes);

    const bad = await cli(['prune', '--plan', join(root, 'qp.json'), '--model', src, '--out', join(root, 'x')]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /a "precision" plan; this command needs a "sparsity" plan/);
    writeFileSync(join(root, 'typo.json'), JSON.stringify({ tfree_plan: 1, kind: 'sparsity', components: { 'no.such.weight': { sparsity: 0.5 } } }));
    const typo = await cli(['prune', '--plan', join(root, 'typo.json'), '--model', src, '--out', join(root, 'x')]);
    assert.equal(typo.code, 2);
    assert.match(typo.err, /component "no\.such\.weight" is not a tensor/);
    // the flag is named (was '/…/nope: no such folder'; a file was '…/config.json: no such file or folder')
    const missing = await cli(['eval', 'dtm', '--model', src, '--compressed', join(root, 'nope'), '--prompts', prompts]);
    assert.equal(missing.code, 2);
    assert.equal(missing.err, `tfree eval dtm: --compressed ${join(root, 'nope')}: no such folder\n`);
    const file = await cli(['eval', 'dtm', '--model', src, '--compressed', prompts, '--prompts', prompts]);
    assert.equal(file.err, `tfree eval dtm: --compressed ${prompts}: is a file; give a folder\n`);
    const noPrompts = await cli(['eval', 'dtm', '--model', src, '--compressed', src]);
    assert.equal(noPrompts.code, 2);
    assert.match(noPrompts.err, /--prompts/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every DTM / bpb result records the activation precision it ran with (int8 / int16 packed, f32)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tfree-act-'));
  const saved = process.env.TFREE_PACKED_ACT;
  try {
    const src = join(root, 'base');
    saveHATModel(src, model(6));
    const prompts = join(root, 'prompts.txt');
    writeFileSync(prompts, PROMPTS.slice(0, 2).join('\n'));
    const data = join(root, 'data.txt');
    writeFileSync(data, 'Some text to score, with a few words in it. '.repeat(8));
    const q = await cli(['quantize', '--format', 'int4', '--block', '32', '--in', src, '--out', join(root, 'q')]);
    assert.equal(q.code, 0, q.err);
    const runs: [string | undefined, string, string][] = [
      [undefined, join(root, 'q'), 'int8'],
      ['int16', join(root, 'q'), 'int16'],
      ['int8', join(root, 'q'), 'int8'],
      [undefined, src, 'f32'],
    ];
    for (const [env, dir, want] of runs) {
      if (env === undefined) delete process.env.TFREE_PACKED_ACT;
      else process.env.TFREE_PACKED_ACT = env;
      const d = await cli(['eval', 'dtm', '--base', src, '--compressed', dir, '--prompts', prompts, '--length', '8', '--json', '--report', join(root, 'rep')]);
      assert.equal(d.code, 0, d.err);
      assert.equal((JSON.parse(d.out) as { activations: string }).activations, want, `eval dtm ${String(env)} ${dir}`);
      assert.match(readFileSync(join(root, 'rep', 'report.md'), 'utf8'), new RegExp(`\\(activations: ${want}\\)`));
      const t = await cli(['eval', 'dtm', '--base', src, '--compressed', dir, '--prompts', prompts, '--length', '8']);
      assert.match(t.out, new RegExp(`activations of the compressed model: ${want}\\n`));
      const b = await cli(['eval', 'bpb', '--model', dir, '--data', data, '--json']);
      assert.equal(b.code, 0, b.err);
      assert.equal((JSON.parse(b.out) as { activations: string }).activations, want, `eval bpb ${String(env)} ${dir}`);
    }
    // library: the report follows the layers' act; in-memory sweeps (f32 fake quantization) say f32
    delete process.env.TFREE_PACKED_ACT;
    const base = loadHATModel(src);
    const ev = new DtmEvaluator(base, new HatSplitter(), PROMPTS.slice(0, 2), { length: 8 });
    const packed = loadPackedHATModel(join(root, 'q'));
    assert.equal(ev.evaluate(packed).activations, 'int8');
    setPackedAct(packed, 'int16');
    assert.equal(ev.evaluate(packed).activations, 'int16');
    let n = 0;
    forEachPackedLinear(packed, (l) => (l.act = n++ % 2 === 0 ? 'int8' : 'int16'));
    assert.equal(ev.evaluate(packed).activations, 'mixed');
    const sweep = runSweep(ev, listComponents(base).slice(0, 2), ['int4'], src);
    assert.equal(sweep.base.activations, 'f32');
    for (const r of sweep.rows) assert.equal(r.activations, 'f32');
  } finally {
    if (saved === undefined) delete process.env.TFREE_PACKED_ACT;
    else process.env.TFREE_PACKED_ACT = saved;
    rmSync(root, { recursive: true, force: true });
  }
});

test('tfree eval plan: a sparsity plan above its target says so in a note; --share-ties meets the target', async () => {
  // scores that tie at the maximum (as FDT does with few prompts): every component keeps the
  // maximum up to s0.75 alone, so the paper's rule gives each 0.75 for a 0.5 target
  const root = mkdtempSync(join(tmpdir(), 'tfree-plan-ties-'));
  try {
    const src = join(root, 'base');
    saveHATModel(src, model(8));
    const prompts = join(root, 'prompts.txt');
    writeFileSync(prompts, PROMPTS.slice(0, 2).join('\n'));
    const comps = listComponents(loadHATModel(src));
    const score = (fdt: number): Record<string, number> => ({ fdt_mean: fdt, fdt_median: fdt, fdt_p25: fdt, fdt_p75: fdt, sdt_mean: 0, sdt_share: 0, word_fdt_mean: 0, word_fdt_p25: 0, word_fdt_p75: 0, word_sdt_share: 0, bpb: 1, kl_bits: 0 });
    const levels = ['s0.25', 's0.75', 's1'];
    const sweep = {
      tfree_sweep: 1, model: src, prompts: 2, length: 8, block: 64, levels, base: score(8), seconds: 0,
      components: comps.map((c) => ({ name: c.name, group: c.group, kind: c.kind, rows: c.rows, cols: c.cols, params: c.params })),
      rows: comps.flatMap((c) => levels.map((l) => ({ component: c.name, level: l, sparsity: Number(l.slice(1)), ...score(l === 's1' ? 2 : 8) }))),
    };
    const sweepFile = join(root, 'sweep.json');
    writeFileSync(sweepFile, JSON.stringify(sweep));
    const run = async (...extra: string[]): Promise<{ err: string; achieved: number }> => {
      const r = await cli(['eval', 'plan', '--model', src, '--sweep', sweepFile, '--prompts', prompts, '--max-bytes', '8', '--targets', '0.5', '--budgets', '', '--guide', 'fdt_p25', '--json', ...extra]);
      assert.equal(r.code, 0, r.err);
      const plans = (JSON.parse(r.out) as { plans: { kind: string; method: string; achieved: number }[] }).plans;
      return { err: r.err, achieved: (plans.find((p) => p.method === 'fdt_p25') as { achieved: number }).achieved };
    };
    const paper = await run();
    assert.ok(Math.abs(paper.achieved - 0.75) < 1e-9, String(paper.achieved));
    assert.match(paper.err, /note: the fdt_p25 sparsity plan for target 0\.5 reaches 0\.750: components whose scores tie at its threshold \(8\).*2 prompts of 8 bytes.*--share-ties meets the target/);
    const shared = await run('--share-ties');
    assert.ok(Math.abs(shared.achieved - 0.5) < 1e-9, String(shared.achieved));
    assert.doesNotMatch(shared.err, /note:/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('tfree eval sweep / eval plan on a BF16 checkpoint (as the bundled model is) compress its Linear weights in f32', async () => {
  // the CLI loader keeps BF16 Linear weights in bf16 for generation; sweep and plan compress the
  // weights in memory, and found no component in such a model ("no components match"), or (plan
  // --sweep FILE) applied none of the plan and scored the base model as every plan
  const root = mkdtempSync(join(tmpdir(), 'tfree-sweep-bf16-'));
  try {
    const src = join(root, 'base');
    saveHATModel(src, model(7), { dtype: 'BF16' });
    const prompts = join(root, 'prompts.txt');
    writeFileSync(prompts, PROMPTS.slice(0, 2).join('\n'));
    const sweepFile = join(root, 'sweep.json');
    const s = await cli(['eval', 'sweep', '--model', src, '--prompts', prompts, '--max-bytes', '8', '--levels', 'int8', '--targets', '1', '--out', sweepFile, '--json']);
    assert.equal(s.code, 0, s.err);
    const sweep = JSON.parse(readFileSync(sweepFile, 'utf8')) as { rows: unknown[] };
    assert.equal(sweep.rows.length, 3 * listComponents(loadHATModel(src)).length); // int8, s0.5, s1
    const p = await cli(['eval', 'plan', '--model', src, '--sweep', sweepFile, '--prompts', prompts, '--max-bytes', '8', '--targets', '1', '--budgets', '32', '--json']);
    assert.equal(p.code, 0, p.err);
    const plans = JSON.parse(p.out) as { plans: { kind: string; method: string; kl_bits: number }[] };
    // every weight pruned to zero (uniform at target 1): the model is not the base model any more
    const all = plans.plans.find((x) => x.kind === 'sparsity' && x.method === 'uniform');
    assert.ok(all !== undefined && all.kl_bits > 0, p.out.slice(0, 400));
    // plans the sweep cannot give: one line, exit 2 (was an internal error with a stack trace,
    // after the sweep when there was one to run)
    const lines = (err: string): string[] => err.trim().split('\n').filter((l) => l.startsWith('tfree'));
    for (const [args, msg] of [
      [['--sweep', sweepFile, '--targets', '0.3', '--budgets', '32'], /needs the sweep level s0\.15/],
      [['--sweep', sweepFile, '--targets', '1', '--budgets', '4'], /bits budget 4 is below \d+\.\d+ bits per weight.*\(int8\)/],
      [['--levels', 's1', '--targets', '1', '--budgets', '4'], /bits budgets need format levels/],
      [['--levels', 'bin1', '--targets', '1', '--budgets', '1'], /bits budget 1 is below \d+\.\d+ bits per weight.*\(bin1\)/],
      [['--levels', 's2'], /level "s2": sparsity must be in \[0, 1\]/],
    ] as [string[], RegExp][]) {
      const bad = await cli(['eval', 'plan', '--model', src, '--prompts', prompts, '--max-bytes', '8', ...args]);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.err}`);
      assert.match(bad.err, msg);
      assert.equal(lines(bad.err).length, 1, bad.err);
      assert.doesNotMatch(bad.err, /base continuations|sweep \[/, 'refused before any work');
    }
    const packed = join(root, 'q');
    assert.equal((await cli(['quantize', '--format', 'int8', '--model', src, '--out', packed])).code, 0);
    const r = await cli(['eval', 'sweep', '--model', packed, '--prompts', prompts, '--levels', 's1']);
    assert.equal(r.code, 2);
    assert.match(r.err, /packed \(quantized\) checkpoint/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
