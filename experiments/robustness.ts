/**
 * Robustness (issue 6; HAT paper §4.4): the reference evaluator's perturbations (HatPaperEditor:
 * 10% of the interior alphanumeric characters permuted, replaced by random ASCII 33-126, or
 * deleted; ALL-CAPS; src/eval/perturb.ts) applied to held-out text, HAT vs the BPE baseline of
 * quality.ts (the same two cached models): change in bits per byte, word accuracy, and accuracy on
 * a small multiple-choice set built from held-out text.
 *
 * Run: npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/robustness.js
 * Writes docs/results/robustness.md and robustness.svg.
 */
import { Rng } from '../src/nn/index.js';
import { evaluateText, scoreContinuations } from '../src/models/hat/score.js';
import { evaluateTokenText, scoreTokenContinuations } from '../src/models/llama/index.js';
import { PERTURBATIONS, TextEditor, type Perturbation } from '../src/eval/perturb.js';
import { lineSvg } from '../src/eval/svg.js';
import { LLAMA_LAYERS, brown, fmt, hatRun, llamaRun, log, mdTable, pct, splitter, writeResult, writeResultKeepingAnalysis, intArg } from './common.js';

const SEED = intArg('seed', 0, 0);
const DOC_CHARS = intArg('doc-chars', 4096);
const ITEMS = intArg('items', 200);
const CTX_CHARS = 200;
const CONT_CHARS = 40;

const t0 = performance.now();
const hat = hatRun();
const lm = llamaRun();
const tok = lm.tok;
const data = brown();
const sp = splitter();

/** text cut to at most n characters, at the last space before n */
function cut(text: string, n: number): string {
  if (text.length <= n) return text;
  const k = text.lastIndexOf(' ', n);
  return text.slice(0, k > 0 ? k : n);
}
const evalDocs = data.valTexts.map((t) => cut(t, DOC_CHARS));

// ---- the multiple-choice sets -----------------------------------------------------------------
// Item: a held-out document, a position p (a space, seeded); context = the CTX_CHARS characters
// before p cut back to a space; true option = the text from p up to the first space at or after
// p + CONT_CHARS (starts with its space). Distractors:
//  - set "span": 3 spans of the same rule at random positions of other held-out documents;
//  - set "order": 3 distinct random orders of the true option's words (same bytes, other order).
// Score: log-likelihood per byte of the option given the context; the highest wins. Chance 25%.
interface Item { context: string; options: string[]; answer: number }
function spanAt(text: string, p: number): string {
  const e = text.indexOf(' ', p + CONT_CHARS);
  return text.slice(p, e < 0 ? text.length : e);
}
function randomSpace(rng: Rng, text: string, lo: number): number {
  for (let tries = 0; tries < 100; tries++) {
    const q = lo + rng.int(Math.max(1, text.length - lo - CONT_CHARS * 2));
    const p = text.indexOf(' ', q);
    if (p > 0 && p + CONT_CHARS * 2 < text.length) return p;
  }
  throw new Error('no position found');
}
function buildItems(n: number, seed: number, kind: 'span' | 'order'): Item[] {
  const rng = new Rng(`mc:${kind}:${seed}`);
  const texts = data.valTexts;
  const items: Item[] = [];
  while (items.length < n) {
    const d = rng.int(texts.length);
    const p = randomSpace(rng, texts[d], CTX_CHARS + 1);
    const ctxStart = texts[d].indexOf(' ', p - CTX_CHARS);
    const context = texts[d].slice(ctxStart + 1, p);
    const options = [spanAt(texts[d], p)];
    const words = options[0].slice(1).split(' ');
    if (kind === 'order' && words.length < 4) continue;
    let tries = 0;
    while (options.length < 4 && tries++ < 1000) {
      let s: string;
      if (kind === 'span') {
        let e = rng.int(texts.length);
        if (e === d) e = (e + 1) % texts.length;
        s = spanAt(texts[e], randomSpace(rng, texts[e], 0));
      } else s = ` ${rng.shuffle(words.slice()).join(' ')}`;
      if (!options.includes(s)) options.push(s);
    }
    if (options.length < 4) continue;
    const answer = rng.int(4);
    [options[0], options[answer]] = [options[answer], options[0]];
    items.push({ context, options, answer });
  }
  return items;
}
const spanItems = buildItems(ITEMS, SEED, 'span');
const orderItems = buildItems(ITEMS, SEED, 'order');

interface Cell { bpb: number; wordAcc: number; mcSpan: number; mcOrder: number }
const enc = new TextEncoder();
/** correct answers of HAT and the baseline on a set, contexts perturbed by `ed` */
function mc(items: readonly Item[], ed: TextEditor): { hat: number; lm: number } {
  let hr = 0;
  let lr = 0;
  for (const it of items) {
    const ctx = ed.apply(it.context);
    const hs = scoreContinuations(hat.model, sp, ctx, it.options).map((s, k) => s.logprob / enc.encode(it.options[k]).length);
    const ls = scoreTokenContinuations(lm.model, tok, ctx, it.options).map((s) => s.logprob / s.bytes);
    if (hs.indexOf(Math.max(...hs)) === it.answer) hr++;
    if (ls.indexOf(Math.max(...ls)) === it.answer) lr++;
  }
  return { hat: hr / items.length, lm: lr / items.length };
}
function run(kind: Perturbation): { hat: Cell; lm: Cell; sample: string } {
  const ed = new TextEditor(kind, SEED);
  const docs = evalDocs.map((t) => ed.apply(t));
  const h = evaluateText(hat.model, sp, docs, { contextBytes: 1024 });
  const l = evaluateTokenText(lm.model, tok, sp, docs, { contextBytes: 1024 });
  const a = mc(spanItems, new TextEditor(kind, `mc:span:${SEED}`));
  const b = mc(orderItems, new TextEditor(kind, `mc:order:${SEED}`));
  log(`${kind}: HAT bpb ${h.bitsPerByte.toFixed(3)} wacc ${h.wordAccuracy.toFixed(3)} mc ${a.hat}/${b.hat}; BPE bpb ${l.bitsPerByte.toFixed(3)} wacc ${l.wordAccuracy.toFixed(3)} mc ${a.lm}/${b.lm}`);
  return {
    hat: { bpb: h.bitsPerByte, wordAcc: h.wordAccuracy, mcSpan: a.hat, mcOrder: b.hat },
    lm: { bpb: l.bitsPerByte, wordAcc: l.wordAccuracy, mcSpan: a.lm, mcOrder: b.lm },
    sample: cut(docs[0], 160),
  };
}
const res = new Map<Perturbation, ReturnType<typeof run>>();
for (const k of PERTURBATIONS) res.set(k, run(k));
const base = res.get('none') as ReturnType<typeof run>;
const tokensPerByte = (texts: string[]): number => texts.reduce((a, t) => a + tok.encode(t).length, 0) / texts.reduce((a, t) => a + enc.encode(t).length, 0);
const wordsPerByte = (texts: string[]): number => texts.reduce((a, t) => a + sp.encode(t).length, 0) / texts.reduce((a, t) => a + enc.encode(t).length, 0);
const seqStats = PERTURBATIONS.map((k) => {
  const ed = new TextEditor(k, SEED);
  const docs = evalDocs.map((t) => ed.apply(t));
  return { k, bpt: 1 / tokensPerByte(docs), bpw: 1 / wordsPerByte(docs) };
});

const name = `BPE Llama ${LLAMA_LAYERS}L`;
const d = (x: number, b: number, digits = 3): string => `${x - b >= 0 ? '+' : ''}${(x - b).toFixed(digits)}`;
const dp = (x: number, b: number): string => `${x - b >= 0 ? '+' : ''}${(100 * (x - b)).toFixed(1)} pt`;
const md: string[] = [];
md.push('# Robustness to spelling perturbations: HAT vs a BPE token model');
md.push('');
md.push('Written by `experiments/robustness.ts`, on the two models of [quality.md](quality.md) (tiny HAT and the');
md.push('compute-matched BPE baseline, cached by that experiment). Rerun:');
md.push('');
md.push('```');
md.push(`npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/robustness.js --seed ${SEED} --doc-chars ${DOC_CHARS} --items ${ITEMS}`);
md.push('```');
md.push('');
md.push('## Perturbations (src/eval/perturb.ts, as the reference `HatPaperEditor`)');
md.push('');
md.push('Candidates are the interior characters that are alphanumeric and whose two neighbours are');
md.push('alphanumeric; floor(10%) of them are drawn without replacement (seeded `Rng`, one generator per');
md.push('perturbation, texts in order). **permute**: each drawn character is swapped with the next one (in');
md.push('draw order, on the edited text); **replace**: it becomes a random ASCII character 33-126;');
md.push('**delete**: it is removed; **uppercase**: the whole text upper-cased. Unit tests on small strings:');
md.push('`test/eval/perturb.test.ts`. Positions differ from Python\'s `random.Random(seed)` for the same seed.');
md.push('');
md.push('Example (start of the first held-out document):');
md.push('');
for (const k of PERTURBATIONS) md.push(`- ${k}: \`${(res.get(k) as ReturnType<typeof run>).sample.replace(/`/g, "'")}\``);
md.push('');
md.push('## Data');
md.push('');
md.push(`- **bpb / word accuracy**: the first ${DOC_CHARS.toLocaleString('en-US')} characters (cut at a space) of each of the 22 held-out`);
md.push(`  documents (${evalDocs.reduce((a, t) => a + enc.encode(t).length, 0).toLocaleString('en-US')} bytes), perturbed, then scored exactly as in quality.md (chunks of`);
md.push('  whole words <= 1,024 bytes; word accuracy = share of the perturbed text\'s words predicted whole by');
md.push('  greedy teacher forcing). The models are asked to predict the perturbed text itself.');
md.push(`- **multiple choice**, two sets of ${ITEMS} items built from held-out text (seed ${SEED}): a held-out document`);
md.push(`  and a random space position p; context = the ~${CTX_CHARS} characters before p (cut at a space); correct option =`);
md.push(`  the text from p to the first space at least ${CONT_CHARS} characters later. Distractors: set **span** = 3 spans`);
md.push('  of the same rule at random positions of other held-out documents; set **order** = 3 distinct random orders');
md.push('  of the correct option\'s words (the same bytes in another order, so only word order and its fit to the');
md.push('  context tell them apart). Options shuffled. Each option is scored by its log-likelihood per byte given the');
md.push('  context (HAT: `scoreContinuations`; baseline: `scoreTokenContinuations`; context and option split /');
md.push('  tokenized separately); the best wins; chance 25%. The perturbation is applied to the **context only**');
md.push('  (options stay clean), as a perturbed question with clean answers.');
md.push('');
md.push('## Results');
md.push('');
md.push(mdTable(
  ['perturbation', 'HAT bpb', `${name} bpb`, 'HAT word acc', `${name} word acc`, 'HAT MC span', `${name} MC span`, 'HAT MC order', `${name} MC order`, 'bytes/word', 'bytes/token'],
  PERTURBATIONS.map((k, i) => {
    const r = res.get(k) as ReturnType<typeof run>;
    return [k, fmt(r.hat.bpb), fmt(r.lm.bpb), pct(r.hat.wordAcc), pct(r.lm.wordAcc), pct(r.hat.mcSpan), pct(r.lm.mcSpan), pct(r.hat.mcOrder), pct(r.lm.mcOrder), fmt(seqStats[i].bpw, 2), fmt(seqStats[i].bpt, 2)];
  }),
));
md.push('');
md.push('Change against the clean text (same model):');
md.push('');
md.push(mdTable(
  ['perturbation', 'HAT Δbpb', `${name} Δbpb`, 'HAT Δword acc', `${name} Δword acc`, 'HAT ΔMC span', `${name} ΔMC span`, 'HAT ΔMC order', `${name} ΔMC order`],
  PERTURBATIONS.filter((k) => k !== 'none').map((k) => {
    const r = res.get(k) as ReturnType<typeof run>;
    return [k, d(r.hat.bpb, base.hat.bpb), d(r.lm.bpb, base.lm.bpb), dp(r.hat.wordAcc, base.hat.wordAcc), dp(r.lm.wordAcc, base.lm.wordAcc), dp(r.hat.mcSpan, base.hat.mcSpan), dp(r.lm.mcSpan, base.lm.mcSpan), dp(r.hat.mcOrder, base.hat.mcOrder), dp(r.lm.mcOrder, base.lm.mcOrder)];
  }),
));
md.push('');
md.push(`With ${ITEMS} items per set, one MC accuracy has a binomial standard error of about ${(100 * Math.sqrt(0.25 / ITEMS)).toFixed(1)} points; differences of a few points are noise.`);
md.push('');
md.push('![bpb and MC accuracy per perturbation](robustness.svg)');
md.push('');
md.push(`Time: ${((performance.now() - t0) / 1e3).toFixed(0)} s (models cached), shared 2-core VM, \`TFREE_THREADS=1\`.`);
md.push('');
const xs = PERTURBATIONS.map((_, i) => i);
writeResult('robustness.svg', lineSvg([
  { name: 'HAT bpb', points: xs.map((i) => ({ x: i, y: (res.get(PERTURBATIONS[i]) as ReturnType<typeof run>).hat.bpb })) },
  { name: `${name} bpb`, points: xs.map((i) => ({ x: i, y: (res.get(PERTURBATIONS[i]) as ReturnType<typeof run>).lm.bpb })) },
  { name: 'HAT MC order x10', points: xs.map((i) => ({ x: i, y: 10 * (res.get(PERTURBATIONS[i]) as ReturnType<typeof run>).hat.mcOrder })) },
  { name: `${name} MC order x10`, points: xs.map((i) => ({ x: i, y: 10 * (res.get(PERTURBATIONS[i]) as ReturnType<typeof run>).lm.mcOrder })) },
], { title: `x: ${PERTURBATIONS.map((k, i) => `${i} ${k}`).join(', ')}`, xLabel: 'perturbation', yLabel: 'bpb / MC (order) accuracy x10', yFrom0: true, width: 680 }));
writeResultKeepingAnalysis('robustness.md', `${md.join('\n')}\n`);
process.stdout.write(`${JSON.stringify(Object.fromEntries(res))}\n`);
