/**
 * Learning curves of a BoxTE training run from its `tfree kg train --json` log (JSON lines:
 * `{"event":"epoch","epoch","loss","seconds",...}` after every epoch, `{"event":"valid","epoch",
 * "mrr","hits1","hits3","hits10","mr",...}` after every validation, other events ignored) as SVG
 * line charts (./svg.ts): the training loss per epoch and the validation metrics per validation.
 * A log that was appended to by resumed runs may repeat epochs (a run stopped mid-epoch repeats
 * it after the resume): the last record of an epoch wins.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../io/safetensors.js';
import { lineSvg } from './svg.js';

export interface KgEpochRecord {
  epoch: number;
  loss: number;
  seconds: number;
}

export interface KgValidRecord {
  epoch: number;
  mrr: number;
  hits1: number;
  hits3: number;
  hits10: number;
  mr: number;
}

export interface KgTrainLog {
  /** ascending epochs, one record each */
  epochs: KgEpochRecord[];
  /** ascending epochs, one record each */
  valid: KgValidRecord[];
}

/** A malformed log line (the message names the source and the line). */
export class KgLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KgLogError';
  }
}

function num(o: Record<string, unknown>, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new KgLogError(`${where}: "${key}" must be a finite number, got ${JSON.stringify(v ?? null)}`);
  return v;
}

/**
 * Parses a `kg train --json` log. Blank lines are skipped, and so is a last line without its newline
 * when it is not valid JSON (a run killed while writing it); any other line that is not a JSON object
 * is an error naming `source:line`.
 */
export function parseKgTrainLog(text: string, source = 'log'): KgTrainLog {
  const epochs = new Map<number, KgEpochRecord>();
  const valid = new Map<number, KgValidRecord>();
  const lines = text.split('\n');
  const partialLast = !text.endsWith('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${source}:${i + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      if (partialLast && i === lines.length - 1) return;
      throw new KgLogError(`${where}: not a JSON line of 'tfree kg train --json'`);
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new KgLogError(`${where}: not a JSON object`);
    const rec = o as Record<string, unknown>;
    if (rec.event === 'epoch') {
      const epoch = num(rec, 'epoch', where);
      epochs.set(epoch, { epoch, loss: num(rec, 'loss', where), seconds: num(rec, 'seconds', where) });
    } else if (rec.event === 'valid') {
      const epoch = num(rec, 'epoch', where);
      valid.set(epoch, { epoch, mrr: num(rec, 'mrr', where), hits1: num(rec, 'hits1', where), hits3: num(rec, 'hits3', where), hits10: num(rec, 'hits10', where), mr: num(rec, 'mr', where) });
    }
  });
  const byEpoch = <T extends { epoch: number }>(m: Map<number, T>): T[] => [...m.values()].sort((a, b) => a.epoch - b.epoch);
  return { epochs: byEpoch(epochs), valid: byEpoch(valid) };
}

export interface KgCurveOptions {
  /** a title prefix, e.g. the run's name */
  title?: string;
  /** reference MRR drawn as a horizontal line on the validation chart (e.g. the paper's) */
  refMrr?: { value: number; label: string };
}

/** The two charts: training loss per epoch, validation MRR / Hits@1/3/10 per validation (null without validations). */
export function kgCurvesSvg(log: KgTrainLog, opts: KgCurveOptions = {}): { loss: string; valid: string | null } {
  const pre = opts.title !== undefined && opts.title !== '' ? `${opts.title}: ` : '';
  const loss = lineSvg([{ name: 'training loss', points: log.epochs.map((e) => ({ x: e.epoch, y: e.loss })) }], {
    title: `${pre}training loss (CE + time regulariser) per epoch`,
    xLabel: 'epoch',
    yLabel: 'loss (epoch mean)',
    yFrom0: true,
    width: 640,
  });
  if (log.valid.length === 0) return { loss, valid: null };
  const v = log.valid;
  const series = [
    { name: 'MRR', points: v.map((r) => ({ x: r.epoch, y: r.mrr })) },
    { name: 'Hits@1', points: v.map((r) => ({ x: r.epoch, y: r.hits1 })) },
    { name: 'Hits@3', points: v.map((r) => ({ x: r.epoch, y: r.hits3 })) },
    { name: 'Hits@10', points: v.map((r) => ({ x: r.epoch, y: r.hits10 })) },
  ];
  if (opts.refMrr !== undefined) {
    const lo = Math.min(v[0].epoch, log.epochs[0]?.epoch ?? v[0].epoch);
    const hi = Math.max(v[v.length - 1].epoch, log.epochs[log.epochs.length - 1]?.epoch ?? 0);
    series.push({ name: opts.refMrr.label, points: [{ x: lo, y: opts.refMrr.value }, { x: hi, y: opts.refMrr.value }] });
  }
  const valid = lineSvg(series, { title: `${pre}validation (time-aware filtered) per validation`, xLabel: 'epoch', yLabel: 'metric', yFrom0: true, width: 640 });
  return { loss, valid };
}

/** Writes loss.svg (and valid.svg when the log has validations) into dir (atomically); returns the paths. */
export function writeKgCurves(log: KgTrainLog, dir: string, opts: KgCurveOptions = {}): string[] {
  const { loss, valid } = kgCurvesSvg(log, opts);
  const out = [join(dir, 'loss.svg')];
  writeFileAtomic(out[0], loss);
  if (valid !== null) {
    out.push(join(dir, 'valid.svg'));
    writeFileAtomic(out[1], valid);
  }
  return out;
}
