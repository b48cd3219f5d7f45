/**
 * Relative MSE of the reference rules (1-Bit-Wonder `quantizer.py`, tfree's format names since
 * quantization rules 2) vs tfree's earlier rules, on random and on trained weights (issue 16,
 * item 21; docs/compression.md "Reference rules"):
 *   int<n>:absmean   s = mean|w| / qmax (reference)   vs  int<n>:meanstep  s = mean|w| (tfree's own)
 *   bin1             centred by each block's mean      vs  bin1:tensormean  centred by the tensor's mean
 * Ties: half to even vs half up moves a weight from one level to the other at exactly the same
 * distance, so it cannot change the MSE.
 * Relative MSE = sum (w - w^)^2 / sum w^2 over all weights of a set. Block 64 (32 where 64 does
 * not divide the row, e.g. the 352-wide MLP rows of models/default), bf16 scales.
 *
 * Run: npx tsc -p tsconfig.json && node dist/experiments/quant_rules.js   (a few seconds)
 */
import { openCheckpoint } from '../src/io/index.js';
import { Rng } from '../src/nn/index.js';
import { DEFAULT_EXCLUDE, dequantizeCodes, fitBlock, parseFormat, quantizeCodes, type QuantFormat } from '../src/compress/index.js';
import { nameFilter } from '../src/compress/modules.js';

interface Mat {
  w: Float32Array;
  rows: number;
  cols: number;
}

function sets(): [string, Mat[]][] {
  const r = new Rng(1);
  const g = r.fillNormal(new Float32Array(256 * 1024), 0, 0.02);
  const lap = new Float32Array(256 * 1024);
  for (let i = 0; i < lap.length; i++) {
    const u = r.float() - 0.5;
    lap[i] = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.02 * (r.float() < 0.002 ? 8 : 1);
  }
  const ck = openCheckpoint('models/default');
  const keep = nameFilter({ exclude: [...DEFAULT_EXCLUDE] });
  const trained: Mat[] = [];
  for (const n of ck.names()) {
    const info = ck.info(n);
    if (info.shape.length !== 2 || !n.endsWith('.weight') || !keep(n)) continue;
    trained.push({ w: ck.readAs(n, 'f32').data, rows: info.shape[0], cols: info.shape[1] });
  }
  ck.close();
  return [
    ['gaussian 256x1024', [{ w: g, rows: 256, cols: 1024 }]],
    ['Laplace + 0.2% outliers x8, 256x1024', [{ w: lap, rows: 256, cols: 1024 }]],
    [`models/default, ${trained.length} Linear weights`, trained],
  ];
}

/** Sum of squared errors under a format (the library's quantizer). */
function sse(m: Mat, f0: QuantFormat): number {
  const f = fitBlock(f0, m.cols);
  const back = dequantizeCodes(quantizeCodes(m.w, m.rows, m.cols, f, { name: 'w' }), m.rows, m.cols, f);
  let s = 0;
  for (let i = 0; i < back.length; i++) s += (m.w[i] - back[i]) ** 2;
  return s;
}

const rows: string[][] = [];
for (const [label, mats] of sets()) {
  const norm = mats.reduce((s, m) => s + m.w.reduce((a, v) => a + v * v, 0), 0);
  const rel = (fn: (m: Mat) => number): string => (mats.reduce((s, m) => s + fn(m), 0) / norm).toPrecision(4);
  for (const bits of [3, 4, 8]) {
    rows.push([label, `int${bits}:absmean (reference: s = mean|w|/${2 ** (bits - 1) - 1})`, rel((m) => sse(m, parseFormat(`int${bits}:absmean`)))]);
    rows.push([label, `int${bits}:meanstep (tfree: s = mean|w|)`, rel((m) => sse(m, parseFormat(`int${bits}:meanstep`)))]);
    rows.push([label, `int${bits} (absmax, for scale)`, rel((m) => sse(m, parseFormat(`int${bits}`)))]);
  }
  rows.push([label, 'bin1 (reference: block mean)', rel((m) => sse(m, parseFormat('bin1')))]);
  rows.push([label, 'bin1:tensormean (tfree, rules 1: tensor mean)', rel((m) => sse(m, parseFormat('bin1:tensormean')))]);
}
process.stdout.write(`| weights | format (rule) | relative MSE |\n|---|---|---|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`);
