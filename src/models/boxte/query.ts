/**
 * Answering one temporal question with a trained BoxTE / BoxE model: the k most plausible tails of
 * (head, relation, ?, date), or heads of (?, relation, tail, date), ranked by the BoxTE distance
 * (lower = more plausible; scored by the same kernels as evaluation). Names and dates are checked
 * against the model's vocabulary; mistakes raise `KgQueryError` naming the field.
 */
import { noGrad } from '../../tensor/index.js';
import { boxTable } from './kernel.js';
import type { BoxTE } from './model.js';
import { boxKernels } from './ops.js';
import { dateTimeIndex, timeIndexDates } from '../../io/kg.js';
import { vocabDateIds, type KgVocab } from './train.js';

/** A question the model cannot answer as asked (unknown name or date, bad k); `field` names the input. */
export class KgQueryError extends Error {
  readonly field: string;
  constructor(message: string, field: string) {
    super(message);
    this.name = 'KgQueryError';
    this.field = field;
  }
}


/**
 * The label of timestamp tau: YYYY-MM-DD for dated data, else the index. Under the reference's
 * date ids (`vocab.dateIds`) an id shared by two dates is labelled `D1 = D2`, an unused one by its
 * index; `timeIndex` accepts every label.
 */
export function dateLabel(vocab: KgVocab, tau: number): string {
  if (vocab.timeKind !== 'date' || vocab.origin === null) return String(tau);
  const dates = timeIndexDates(tau, vocab.origin, vocabDateIds(vocab));
  return dates.length === 0 ? String(tau) : dates.join(' = ');
}

/** The time index of a date (YYYY-MM-DD for dated models) or time id; KgQueryError outside the model's axis. */
export function timeIndex(vocab: KgVocab, date: string | number): number {
  const range = `the model's timestamps are ${dateLabel(vocab, 0)} .. ${dateLabel(vocab, vocab.numTimes - 1)}`;
  // a shared id's label 'D1 = D2' (dateLabel): both dates have that id
  if (typeof date === 'string' && / = /.test(date)) date = date.split(' = ')[0];
  if (vocab.timeKind === 'date' && typeof date === 'string' && !/^\d+$/.test(date)) {
    // say what is wrong with the text, not that an in-range day such as 2014-6-1 is outside the axis
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new KgQueryError(`date ${JSON.stringify(date)} is neither YYYY-MM-DD nor a time id (${range})`, 'date');
    const ms = Date.parse(`${date}T00:00:00Z`);
    if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== date) throw new KgQueryError(`date ${JSON.stringify(date)} is not a calendar day (${range})`, 'date');
  }
  let tau: number;
  if (vocab.timeKind === 'date' && vocab.origin !== null && typeof date === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(date)) {
    tau = dateTimeIndex(date, vocab.origin, vocabDateIds(vocab)) ?? Number.NaN;
  } else tau = typeof date === 'number' ? date : /^\d+$/.test(date) ? Number(date) : Number.NaN;
  if (!Number.isInteger(tau) || tau < 0 || tau >= vocab.numTimes) {
    throw new KgQueryError(`unknown date ${JSON.stringify(date)}: ${range}`, 'date');
  }
  return tau;
}

/** Levenshtein distance of a and b, or `cap + 1` as soon as it exceeds `cap`. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      best = Math.min(best, cur[j]);
    }
    if (best > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The id of a name, or KgQueryError with up to 3 close names: case-insensitive substring matches,
 * else names within a few typing mistakes (edit distance <= max(1, length / 5); "Barak Obama").
 */
export function nameId(names: readonly string[], name: string, what: 'entity' | 'relation', field: string): number {
  const i = names.indexOf(name);
  if (i >= 0) return i;
  const low = name.toLowerCase();
  let close = low === '' ? [] : names.filter((n) => n.toLowerCase().includes(low) || (n.length > 3 && low.includes(n.toLowerCase()))).slice(0, 3);
  if (close.length === 0 && low !== '') {
    const cap = Math.max(1, Math.floor(low.length / 5));
    close = names
      .map((n) => ({ n, d: editDistance(low, n.toLowerCase(), cap) }))
      .filter((x) => x.d <= cap)
      .sort((x, y) => x.d - y.d)
      .slice(0, 3)
      .map((x) => x.n);
  }
  throw new KgQueryError(`unknown ${what} ${JSON.stringify(name)} (not among the model's ${names.length} ${what === 'entity' ? 'entities' : 'relations'})${close.length > 0 ? `; did you mean ${close.map((c) => JSON.stringify(c)).join(', ')}?` : ''}`, field);
}

export interface KgQuestion {
  /** give exactly one of head (answers are tails) and tail (answers are heads) */
  head?: string;
  tail?: string;
  relation: string;
  /** YYYY-MM-DD for dated models, else the time index */
  date: string | number;
  /** answers to return (default 10) */
  k?: number;
}

export interface KgAnswer {
  entity: string;
  /** the BoxTE distance (lower = more plausible) */
  score: number;
  rank: number;
}

/** The k most plausible answers, best first (ties: lower entity id first; non-finite scores last). */
export function answerQuestion(model: BoxTE, vocab: KgVocab, q: KgQuestion): { answers: KgAnswer[]; missing: 'head' | 'tail'; tau: number } {
  if ((q.head === undefined) === (q.tail === undefined)) throw new KgQueryError('give exactly one of head (to rank tails) and tail (to rank heads)', q.head === undefined ? 'head' : 'tail');
  const dir = q.head !== undefined ? 1 : 0; // 1: tails of (h, r, ?), 0: heads of (?, r, t)
  const fixed = nameId(vocab.entities, (dir === 1 ? q.head : q.tail) as string, 'entity', dir === 1 ? 'head' : 'tail');
  const r = nameId(vocab.relations, q.relation, 'relation', 'relation');
  const tau = timeIndex(vocab, q.date);
  const k = q.k ?? 10;
  if (!Number.isInteger(k) || k < 1) throw new KgQueryError(`k must be an integer >= 1, got ${k}`, 'k');
  const { dim: d, numEntities: E, numRelations: R } = model.cfg;
  const boxes = boxTable(noGrad(() => model.stackedBoxes()).f32(), R, d);
  const tb = noGrad(() => model.timeBumps(Int32Array.of(r), Int32Array.of(tau))).f32();
  const base = model.entityBase.f32();
  const bump = model.entityBump.f32();
  const headAdd = new Float32Array(d);
  const tailAdd = new Float32Array(d);
  for (let c = 0; c < d; c++) {
    // as filteredRanks: head query -> head point base[x] + bump[t] + tb; tail query -> head point bump[x] + base[h] + tb
    headAdd[c] = (dir === 0 ? bump : base)[fixed * d + c] + tb[c];
    tailAdd[c] = (dir === 0 ? base : bump)[fixed * d + c] + tb[c];
  }
  const out = new Float32Array(E).fill(Number.NaN);
  boxKernels().scoreBatch({ d, tanh: model.cfg.tanh, order: model.cfg.order, E, Q: 1, headTable: dir === 0 ? base : bump, headAdd, tailTable: dir === 0 ? bump : base, tailAdd, boxes, rel: Int32Array.of(r), out });
  const key = (e: number): number => (Number.isFinite(out[e]) ? out[e] : Infinity);
  const order = Array.from({ length: E }, (_, i) => i).sort((a, b) => key(a) - key(b) || a - b);
  const answers = order.slice(0, Math.min(k, E)).map((e, i) => ({ entity: vocab.entities[e], score: out[e], rank: i + 1 }));
  return { answers, missing: dir === 1 ? 'tail' : 'head', tau };
}
