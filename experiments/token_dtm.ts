/**
 * Token-level divergent token metrics (issue 6; Deiseroth et al. 2024): the BPE baseline of
 * quality.ts quantized in memory (src/compress formats, all Linear weights but embedding/head),
 * FDT/SDT over tokens with greedy teacher forcing (src/eval/token_dtm.ts), and beside it the
 * byte- and word-level FDT/SDT of the compute-matched tiny HAT (src/eval/hat_dtm.ts) under the
 * same formats, plus held-out bits per byte of every compressed model.
 *
 * Run: npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/token_dtm.js
 * Writes docs/results/token_dtm.md and token_dtm.svg.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { loadLlama, evaluateTokenText } from '../src/models/llama/index.js';
import { loadHATModel } from '../src/models/hat/checkpoint.js';
import { splitBytes } from '../src/models/hat/splitter.js';
import { DtmEvaluator, parsePrompts } from '../src/eval/hat_dtm.js';
import { TokenDtmEvaluator } from '../src/eval/token_dtm.js';
import { quantizeAllInMemory } from '../src/eval/compare.js';
import { lineSvg } from '../src/eval/svg.js';
import { LLAMA_LAYERS, ROOT, arg, brown, fmt, hatRun, llamaRun, log, mdTable, pct, splitter, writeResult, writeResultKeepingAnalysis, intArg } from './common.js';

const FORMATS = arg('formats', 'int8,int4,kmeans4,kmeans2,bin1').split(',');
const N_TOK = intArg('tokens', 28);
const N_BYTES = intArg('bytes', 100);
const HELD_CHARS = intArg('held-chars', 1024);
const BLOCK = 32;
const t0 = performance.now();
const hat = hatRun();
const lm = llamaRun();
const tok = lm.tok;
const sp = splitter();
const prompts = parsePrompts(fs.readFileSync(nodePath.join(ROOT, 'docs', 'results', 'dtm-prompts-24.txt'), 'utf8'));
const cut = (t: string, n: number): string => (t.length <= n ? t : t.slice(0, Math.max(1, t.lastIndexOf(' ', n))));
const held = brown().valTexts.map((t) => cut(t, HELD_CHARS));
const words = (b: Uint8Array): number[] => splitBytes(b, { maxWordSize: 100 }).map((w) => w.length);

log('base continuations');
const tev = new TokenDtmEvaluator(lm.model, tok, prompts, N_TOK, words);
const hev = new DtmEvaluator(hat.model, sp, prompts, { length: N_BYTES });
const contBytes = tev.refs.reduce((a, r) => a + tok.decodeBytes(r.continuation).length, 0) / tev.refs.length;
const contWordsTok = tev.refs.reduce((a, r) => a + r.wordTokens.length, 0) / tev.refs.length;

interface Row { format: string; lBits: number; hBits: number; t: ReturnType<TokenDtmEvaluator['evaluate']>; h: ReturnType<DtmEvaluator['evaluate']>; lBpb: number; hBpb: number }
const rows: Row[] = [];
for (const f of ['f32', ...FORMATS]) {
  const lmq = loadLlama(lm.run.dir).model;
  const hq = loadHATModel(hat.run.dir);
  const lBits = f === 'f32' ? 32 : quantizeAllInMemory(lmq, f, BLOCK).bitsPerWeight;
  const hBits = f === 'f32' ? 32 : quantizeAllInMemory(hq, f, BLOCK).bitsPerWeight;
  const t = tev.evaluate(lmq);
  const h = hev.evaluate(hq, { heldOut: held });
  const lBpb = evaluateTokenText(lmq, tok, sp, held).bitsPerByte;
  rows.push({ format: f, lBits, hBits, t, h, lBpb, hBpb: h.held_out?.model.bits_per_byte ?? NaN });
  log(`${f}: token FDT ${t.tokens.fdt_mean.toFixed(1)}/${N_TOK}, word ${t.words.fdt_mean.toFixed(1)}; HAT byte FDT ${h.bytes.fdt_mean.toFixed(1)}/${N_BYTES}, word ${h.words.fdt_mean.toFixed(1)}`);
}

const name = `BPE Llama ${LLAMA_LAYERS}L`;
const md: string[] = [];
md.push('# Token-level divergent token metrics, beside HAT\'s byte/word-level ones');
md.push('');
md.push('Written by `experiments/token_dtm.ts`, on the two compute-matched models of [quality.md](quality.md). Rerun:');
md.push('');
md.push('```');
md.push(`npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/token_dtm.js --formats ${FORMATS.join(',')} --tokens ${N_TOK} --bytes ${N_BYTES} --held-chars ${HELD_CHARS}`);
md.push('```');
md.push('');
md.push('## Procedure');
md.push('');
md.push(`- Prompts: the ${prompts.length} prompts of \`docs/results/dtm-prompts-24.txt\` (from held-out Brown documents, as in [dtm.md](dtm.md)).`);
md.push(`- **Token model** (src/eval/token_dtm.ts, the original paper's setting): the f32 baseline continues each prompt`);
md.push(`  greedily for N = ${N_TOK} tokens (mean ${fmt(contBytes, 1)} bytes, ${fmt(contWordsTok, 1)} HAT words); each quantized copy is run`);
md.push('  teacher-forced over prompt + continuation; FDT = first continuation token whose argmax differs from');
md.push('  the base model\'s teacher-forced argmax (N when none), SDT = number of differing tokens. Word level:');
md.push('  the continuation\'s HAT words, a word diverging when any token starting in it does.');
md.push(`- **HAT** (src/eval/hat_dtm.ts, as in dtm.md): N = ${N_BYTES} bytes, FDT/SDT over bytes and over words.`);
md.push(`- Quantization: every Linear weight but the embeddings and the output head (tied for the baseline), block ${BLOCK},`);
md.push('  in memory (`quantizeAllInMemory`, the weights a packed checkpoint would hold); k-means seeded by weight name.');
md.push(`- Held-out bpb: the first ${HELD_CHARS.toLocaleString('en-US')} characters of each of the 22 held-out documents, scored as in quality.md.`);
md.push('');
md.push('## Results');
md.push('');
md.push(mdTable(
  ['format', `${name} bits/weight`, `token FDT mean (of ${N_TOK})`, 'token FDT p25', 'token SDT share', 'word FDT mean (token model)', 'KL bits/token', `${name} held-out bpb`, 'HAT bits/weight', `HAT byte FDT mean (of ${N_BYTES})`, 'HAT byte FDT p25', 'HAT byte SDT share', 'HAT word FDT mean', 'HAT held-out bpb'],
  rows.map((r) => [
    r.format, fmt(r.lBits, 2), fmt(r.t.tokens.fdt_mean, 1), fmt(r.t.tokens.fdt_p25, 1), pct(r.t.tokens.sdt_share), fmt(r.t.words.fdt_mean, 1), r.t.kl_bits.toPrecision(2), fmt(r.lBpb),
    fmt(r.hBits, 2), fmt(r.h.bytes.fdt_mean, 1), fmt(r.h.bytes.fdt_p25, 1), pct(r.h.bytes.sdt_share), fmt(r.h.words.fdt_mean, 1), fmt(r.hBpb),
  ]),
));
md.push('');
md.push(`Base consistency (the f32 model's teacher-forced argmax equals its own greedy output): token model ${pct(rows[0].t.base_consistency)}, HAT ${pct(rows[0].h.base_consistency)}.`);
md.push('');
md.push('Base continuations of the first two prompts (greedy, f32; both tiny models fall into loops, which is what FDT is measured on):');
md.push('');
const dec = new TextDecoder();
for (let i = 0; i < 2; i++) {
  md.push(`- prompt \`${prompts[i]}\``);
  md.push(`  - token model (${N_TOK} tokens): \`${JSON.stringify(tok.decode(tev.refs[i].continuation)).slice(1, -1)}\``);
  md.push(`  - HAT (${N_BYTES} bytes): \`${JSON.stringify(dec.decode(hev.refs[i].continuation)).slice(1, -1)}\``);
}
md.push('');
md.push('To put the units side by side, FDT as a share of the continuation (FDT mean / N) and word FDT as a share of the continuation\'s words:');
md.push('');
const hatWords = hev.refs.reduce((a, r) => a + r.wordLengths.length, 0) / hev.refs.length;
md.push(mdTable(
  ['format', 'token FDT / N', 'HAT byte FDT / N', 'token-model word FDT / words', 'HAT word FDT / words'],
  rows.map((r) => [r.format, pct(r.t.tokens.fdt_mean / N_TOK), pct(r.h.bytes.fdt_mean / N_BYTES), pct(r.t.words.fdt_mean / contWordsTok), pct(r.h.words.fdt_mean / hatWords)]),
));
md.push('');
md.push(`(mean continuation words: token model ${fmt(contWordsTok, 1)}, HAT ${fmt(hatWords, 1)}.)`);
md.push('');
md.push('![FDT share vs bits per weight](token_dtm.svg)');
md.push('');
md.push(`Time: ${((performance.now() - t0) / 1e3).toFixed(0)} s (models cached), shared 2-core VM, \`TFREE_THREADS=1\`.`);
md.push('');
writeResult('token_dtm.svg', lineSvg([
  { name: 'token FDT/N', points: rows.map((r) => ({ x: Math.min(r.lBits, 9), y: r.t.tokens.fdt_mean / N_TOK })) },
  { name: 'token-model word FDT', points: rows.map((r) => ({ x: Math.min(r.lBits, 9), y: r.t.words.fdt_mean / contWordsTok })) },
  { name: 'HAT byte FDT/N', points: rows.map((r) => ({ x: Math.min(r.hBits, 9), y: r.h.bytes.fdt_mean / N_BYTES })) },
  { name: 'HAT word FDT', points: rows.map((r) => ({ x: Math.min(r.hBits, 9), y: r.h.words.fdt_mean / hatWords })) },
], { title: 'mean FDT as a share of the continuation (f32 drawn at 9 bits)', xLabel: 'bits per weight', yLabel: 'FDT / length', yFrom0: true, width: 640 }));
writeResultKeepingAnalysis('token_dtm.md', `${md.join('\n')}\n`);
process.stdout.write(`${JSON.stringify(rows.map((r) => ({ format: r.format, lBits: r.lBits, hBits: r.hBits, token: r.t.tokens, tokenWords: r.t.words, hatBytes: r.h.bytes, hatWords: r.h.words, lBpb: r.lBpb, hBpb: r.hBpb })))}\n`);
