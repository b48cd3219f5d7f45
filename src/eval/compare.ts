/**
 * Side-by-side comparison of a HAT model and in-memory quantized copies of it (the demo after
 * generation, and `tfree eval compare`): bits per weight, bits per byte on held-out text, FDT/SDT
 * against the base model's greedy continuations, and greedy generation speed. The quantized
 * copies run from packed weights (PackedLinear, as a `tfree quantize` checkpoint would).
 */
import { quantizeModel, parseFormat, formatSize, type PackedMatrix } from '../compress/index.js';
import { generate, type HATModel, type WordSplitter } from '../models/hat/index.js';
import { blockFor, listComponents } from './components.js';
import { DtmEvaluator, type DtmReport } from './hat_dtm.js';

/** Quantizes every component (all Linear weights but embeddings and the output head) of any model (HAT, Llama) in place to `format`, block reduced per row length as needed. */
export function quantizeAllInMemory(model: object, format: string, block = 64, maxSamples?: number): { packed: Map<string, PackedMatrix>; bitsPerWeight: number } {
  const comps = listComponents(model);
  const byBlock = new Map<number, string[]>();
  for (const c of comps) {
    const b = blockFor(c.cols, block);
    byBlock.set(b, [...(byBlock.get(b) ?? []), c.name]);
  }
  const packed = new Map<string, PackedMatrix>();
  for (const [b, names] of byBlock) {
    const f = parseFormat(format, { blockSize: b });
    for (const [n, p] of quantizeModel(model, f, { include: names, maxSamples })) packed.set(n, p);
  }
  let bits = 0;
  let n = 0;
  for (const p of packed.values()) {
    const s = formatSize(p.format, p.rows, p.cols);
    bits += 8 * s.totalBytes;
    n += s.numel;
  }
  return { packed, bitsPerWeight: n > 0 ? bits / n : 32 };
}

export interface CompareRow {
  name: string;
  /** activation precision the row's model ran with (int8 / int16 for packed copies, f32 for the base) */
  activations: string;
  bits_per_weight: number;
  /** held-out bits per byte (or on the base continuations when no text was given) */
  bpb: number;
  fdt_mean: number;
  fdt_p25: number;
  fdt_p75: number;
  sdt_share: number;
  word_fdt_mean: number;
  kl_bits: number;
  /** greedy generation speed, bytes per second */
  bytes_per_second: number;
  /** seconds spent quantizing */
  quantize_seconds: number;
}

function speed(model: HATModel, splitter: WordSplitter, prompt: string, bytes: number): number {
  const t0 = process.hrtime.bigint();
  const r = generate(model, splitter, prompt, { greedy: true, maxBytes: bytes, eos: -1 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return r.bytes.length / s;
}

function row(name: string, bits: number, r: DtmReport, bps: number, qs: number): CompareRow {
  return {
    name,
    activations: r.activations,
    bits_per_weight: bits,
    bpb: r.held_out?.model.bits_per_byte ?? r.bpb,
    fdt_mean: r.bytes.fdt_mean,
    fdt_p25: r.bytes.fdt_p25,
    fdt_p75: r.bytes.fdt_p75,
    sdt_share: r.bytes.sdt_share,
    word_fdt_mean: r.words.fdt_mean,
    kl_bits: r.kl_bits,
    bytes_per_second: bps,
    quantize_seconds: qs,
  };
}

export interface CompareOptions {
  prompts: readonly string[];
  formats: readonly string[];
  /** held-out documents for bits per byte */
  heldOut?: readonly string[];
  length?: number;
  block?: number;
  /** bytes generated for the speed measurement (default 200) */
  speedBytes?: number;
  /** k-means: fit the centroids on at most this many values per tensor */
  maxSamples?: number;
  onStep?: (what: string) => void;
}

/**
 * `load()` must return a fresh copy of the base model each call (each format quantizes its own
 * copy in place).
 */
export function compareQuantized(load: () => HATModel, splitter: WordSplitter, opts: CompareOptions): CompareRow[] {
  const base = load();
  opts.onStep?.('base continuations');
  const ev = new DtmEvaluator(base, splitter, opts.prompts, { length: opts.length ?? 100 });
  const ev0 = ev.evaluate(base, { heldOut: opts.heldOut });
  const sb = opts.speedBytes ?? 200;
  const rows = [row('f32', 32, ev0, speed(base, splitter, opts.prompts[0], sb), 0)];
  for (const f of opts.formats) {
    opts.onStep?.(f);
    const m = load();
    const t0 = process.hrtime.bigint();
    const { bitsPerWeight } = quantizeAllInMemory(m, f, opts.block ?? 64, opts.maxSamples);
    const qs = Number(process.hrtime.bigint() - t0) / 1e9;
    rows.push(row(f, bitsPerWeight, ev.evaluate(m, { heldOut: opts.heldOut }), speed(m, splitter, opts.prompts[0], sb), qs));
  }
  return rows;
}

export function compareTable(rows: readonly CompareRow[]): string {
  const head = ['weights', 'act', 'bits/w', 'bpb', 'FDT mean', 'FDT p25', 'FDT p75', 'SDT share', 'word FDT', 'KL bits', 'bytes/s'];
  const lines = rows.map((r) => [r.name, r.activations, r.bits_per_weight.toFixed(2), r.bpb.toFixed(3), r.fdt_mean.toFixed(1), r.fdt_p25.toFixed(1), r.fdt_p75.toFixed(1), `${(100 * r.sdt_share).toFixed(1)}%`, r.word_fdt_mean.toFixed(1), r.kl_bits.toFixed(4), r.bytes_per_second.toFixed(0)]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l: string[]): string => l.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [fmt(head), ...lines.map(fmt)].join('\n');
}

/** Prompts of the demo comparison (when no prompts file is given). */
export const DEMO_PROMPTS: readonly string[] = Object.freeze([
  'The jury said that the city',
  'In the morning, she',
  'The results of the experiment',
  'He walked into the room and',
  'After the war, the government',
  'It was the first time that',
  'The committee will meet on',
  'Most of the students in the',
]);

/** A short held-out paragraph for the demo's bits per byte (written for this toolkit). */
export const DEMO_TEXT = `The meeting began late in the afternoon, after most of the members had returned from lunch. The chairman opened with a short report on the budget, which had been discussed at length the week before. Several members asked whether the new rules would apply to the schools in the county, and he said that they would. The discussion then turned to the question of roads. It was agreed that the state should be asked for more money, since the present funds would not last through the winter. When the vote was taken, the motion passed without a single objection, and the meeting was adjourned shortly before six o'clock.
`;
