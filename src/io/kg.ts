/**
 * Temporal knowledge graphs: the quadruple text format, id maps, timestamps, and a seeded
 * synthetic generator with known structure.
 *
 * Format (ICEWS14, ICEWS05-15, GDELT as distributed by mmkb / de-simple): UTF-8 text, one fact per
 * line, `head<TAB>relation<TAB>tail<TAB>time`, where time is a date `YYYY-MM-DD` (converted to
 * days since the earliest date of all splits: one global origin) or a non-negative integer time
 * id (used as is). A dataset folder holds `train.txt`, `valid.txt` and `test.txt`.
 *
 * Entity and relation vocabularies are built from all three splits, in order of first appearance
 * (train, then valid, then test), like the reference code. valid.txt and test.txt may be empty
 * (evaluating an empty split is refused where it is asked for). Entities that occur in valid/test but
 * never in train are counted and reported (`unseenEntities`), never dropped.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A malformed input file; the message names the file and line. */
export class KgFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KgFormatError';
  }
}

/** Facts as parallel id arrays (column-major, so a split is 4 typed arrays). */
export interface Quads {
  h: Int32Array;
  r: Int32Array;
  t: Int32Array;
  tau: Int32Array;
}

export interface TemporalKG {
  entities: string[];
  relations: string[];
  /** number of timestamps: max time index + 1 */
  numTimes: number;
  /** 'date': time index = days since `origin` (YYYY-MM-DD); 'index': integer ids as given */
  timeKind: 'date' | 'index';
  /** the day of time index 0 (YYYY-MM-DD) when timeKind is 'date' */
  origin: string | null;
  /** how dates became time ids ('calendar' for integer times) */
  dateIds: DateIds;
  train: Quads;
  valid: Quads;
  test: Quads;
  /** entities of valid/test that never occur in train (by split) */
  unseenEntities: { valid: number; test: number };
  /** facts of valid/test with an entity unseen in train */
  unseenFacts: { valid: number; test: number };
  /** relations of valid/test that never occur in train (by split; the model cannot learn their boxes) */
  unseenRelations: { valid: number; test: number };
  /** facts of valid/test whose relation never occurs in train */
  unseenRelationFacts: { valid: number; test: number };
}

/**
 * How dates become time ids. 'calendar' (the default): days since the origin, one id per calendar
 * day. 'reference': the BoxTE reference code's conversion (data_utils.py `dates_to_days`), which
 * adds the days of months 1..m including the date's own month, so a month longer than the next
 * overlaps it (on ICEWS14 7 ids are shared by two dates and 7 are unused); for reproducing the
 * reference's (and the paper's) numbers and for models comparable with its checkpoints.
 */
export type DateIds = 'calendar' | 'reference';
export const DATE_IDS: readonly DateIds[] = ['calendar', 'reference'];

export interface ReadKgOptions {
  /** how dates become time ids (default 'calendar'); integer times are used as given either way */
  dateIds?: DateIds;
}

export type SplitName = 'train' | 'valid' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'valid', 'test'];

interface RawSplit {
  file: string;
  h: string[];
  r: string[];
  t: string[];
  time: string[];
  line: number[];
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const INT_RE = /^\d+$/;

const dayCache = new Map<string, number | null>();

/** Days since 1970-01-01 of a valid calendar date, or null (memoised: datasets repeat dates). */
function dayNumber(s: string): number | null {
  let v = dayCache.get(s);
  if (v === undefined) {
    v = parseDay(s);
    if (dayCache.size < 1_000_000) dayCache.set(s, v);
  }
  return v;
}

function parseDay(s: string): number | null {
  const m = DATE_RE.exec(s);
  if (m === null) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return null;
  return Math.round(ms / 86_400_000);
}

function dateString(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

const leapYear = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The reference code's day number of a valid YYYY-MM-DD date (up to a constant): the days of the
 * years before, plus the days of months 1..m **including the date's own month**, plus the day.
 */
export function referenceDayNumber(date: string): number {
  const y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7));
  const d = Number(date.slice(8, 10));
  const py = y - 1;
  let n = 365 * py + Math.floor(py / 4) - Math.floor(py / 100) + Math.floor(py / 400);
  for (let k = 1; k <= m; k++) n += k === 2 && leapYear(y) ? 29 : MONTH_DAYS[k];
  return n + d;
}

/** The day number of a date under a date-id rule (differences of these are time ids). */
function idDay(date: string, dateIds: DateIds): number {
  return dateIds === 'reference' ? referenceDayNumber(date) : (dayNumber(date) as number);
}

/**
 * The time id of a calendar date (YYYY-MM-DD) on an axis that starts at `origin`, or null when the
 * text is not a calendar date. May be negative or past the axis: the caller checks the range.
 */
export function dateTimeIndex(date: string, origin: string, dateIds: DateIds): number | null {
  if (dayNumber(date) === null) return null;
  return idDay(date, dateIds) - idDay(origin, dateIds);
}

/**
 * The calendar dates that map to time id `tau` on an axis starting at `origin`: one date under
 * 'calendar'; under 'reference' none, one or two (an unused or a shared id).
 */
export function timeIndexDates(tau: number, origin: string, dateIds: DateIds): string[] {
  const o = dayNumber(origin) as number;
  if (dateIds === 'calendar') return [dateString(o + tau)];
  const out: string[] = [];
  // a reference id lies within a few days of the calendar offset (months differ by <= 3 days)
  for (let c = tau - 4; c <= tau + 4; c++) {
    const date = dateString(o + c);
    if (dateTimeIndex(date, origin, 'reference') === tau) out.push(date);
  }
  return out;
}

/** Parses the text of one split (no id mapping yet). `file` names it in errors. */
export function parseQuadText(text: string, file: string): RawSplit {
  const out: RawSplit = { file, h: [], r: [], t: [], time: [], line: [] };
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let s = lines[i];
    if (s.endsWith('\r')) s = s.slice(0, -1);
    if (s === '') {
      if (i === lines.length - 1) break; // the final newline
      throw new KgFormatError(`${file}:${i + 1}: empty line (expected head<TAB>relation<TAB>tail<TAB>time)`);
    }
    const f = s.split('\t');
    if (f.length !== 4) {
      throw new KgFormatError(`${file}:${i + 1}: expected 4 tab-separated fields (head, relation, tail, time), got ${f.length}`);
    }
    for (let j = 0; j < 3; j++) {
      if (f[j] === '') throw new KgFormatError(`${file}:${i + 1}: empty ${['head', 'relation', 'tail'][j]} field`);
    }
    const time = f[3].trim();
    if (dayNumber(time) === null && !INT_RE.test(time)) {
      throw new KgFormatError(`${file}:${i + 1}: time "${f[3]}" is neither a date YYYY-MM-DD nor a non-negative integer`);
    }
    out.h.push(f[0]);
    out.r.push(f[1]);
    out.t.push(f[2]);
    out.time.push(time);
    out.line.push(i + 1);
  }
  return out;
}

/** Builds the id maps and time indices of three parsed splits. */
export function buildKG(raw: Record<SplitName, RawSplit>, opts: ReadKgOptions = {}): TemporalKG {
  const dateIds: DateIds = opts.dateIds ?? 'calendar';
  if (!DATE_IDS.includes(dateIds)) throw new KgFormatError(`unknown date-id rule "${String(dateIds)}" (calendar or reference)`);
  const ents = new Map<string, number>();
  const rels = new Map<string, number>();
  const id = (m: Map<string, number>, s: string): number => {
    let v = m.get(s);
    if (v === undefined) {
      v = m.size;
      m.set(s, v);
    }
    return v;
  };
  // time kind: all dates or all integers (mixing is an error naming the first offender)
  // the origin: the date with the smallest day number under the rule (the earliest date for
  // 'calendar'; under 'reference' a month-end date can number after the next month's first days)
  let kind: 'date' | 'index' | null = null;
  let minDay = Infinity;
  let origin: string | null = null;
  for (const sp of SPLITS) {
    const r = raw[sp];
    for (let i = 0; i < r.time.length; i++) {
      const dn = dayNumber(r.time[i]);
      const k = dn !== null ? 'date' : 'index';
      if (kind === null) kind = k;
      else if (k !== kind) {
        throw new KgFormatError(`${r.file}:${r.line[i]}: time "${r.time[i]}" is ${k === 'date' ? 'a date' : 'an integer id'}, but earlier lines use ${kind === 'date' ? 'dates' : 'integer ids'}`);
      }
      if (dn !== null) {
        const n = idDay(r.time[i], dateIds);
        if (n < minDay || (n === minDay && origin !== null && dn < (dayNumber(origin) as number))) {
          minDay = n;
          origin = r.time[i];
        }
      }
    }
  }
  const splits = {} as Record<SplitName, Quads>;
  let numTimes = 0;
  const trainEnts = new Set<number>();
  const unseenEntities = { valid: 0, test: 0 };
  const unseenFacts = { valid: 0, test: 0 };
  const trainRels = new Set<number>();
  const unseenRelations = { valid: 0, test: 0 };
  const unseenRelationFacts = { valid: 0, test: 0 };
  for (const sp of SPLITS) {
    const r = raw[sp];
    const n = r.h.length;
    const q: Quads = { h: new Int32Array(n), r: new Int32Array(n), t: new Int32Array(n), tau: new Int32Array(n) };
    const unseen = new Set<number>();
    const unseenRel = new Set<number>();
    for (let i = 0; i < n; i++) {
      q.h[i] = id(ents, r.h[i]);
      q.r[i] = id(rels, r.r[i]);
      q.t[i] = id(ents, r.t[i]);
      const tau = kind === 'date' ? idDay(r.time[i], dateIds) - minDay : Number(r.time[i]);
      if (!Number.isSafeInteger(tau) || tau > 10_000_000) throw new KgFormatError(`${r.file}:${r.line[i]}: time id ${r.time[i]} is too large`);
      q.tau[i] = tau;
      if (tau + 1 > numTimes) numTimes = tau + 1;
      if (sp === 'train') {
        trainEnts.add(q.h[i]);
        trainEnts.add(q.t[i]);
        trainRels.add(q.r[i]);
      } else {
        if (!trainRels.has(q.r[i])) {
          unseenRel.add(q.r[i]);
          unseenRelationFacts[sp]++;
        }
        let miss = false;
        for (const e of [q.h[i], q.t[i]]) {
          if (!trainEnts.has(e)) {
            unseen.add(e);
            miss = true;
          }
        }
        if (miss) unseenFacts[sp]++;
      }
    }
    if (sp !== 'train') {
      unseenEntities[sp] = unseen.size;
      unseenRelations[sp] = unseenRel.size;
    }
    splits[sp] = q;
  }
  return {
    entities: [...ents.keys()],
    relations: [...rels.keys()],
    numTimes,
    timeKind: kind ?? 'index',
    origin: kind === 'date' ? origin : null,
    dateIds: kind === 'date' ? dateIds : 'calendar',
    train: splits.train,
    valid: splits.valid,
    test: splits.test,
    unseenEntities,
    unseenFacts,
    unseenRelations,
    unseenRelationFacts,
  };
}

/** Reads `train.txt`, `valid.txt`, `test.txt` of a dataset folder. */
export function readTemporalKG(dir: string, opts: ReadKgOptions = {}): TemporalKG {
  const raw = {} as Record<SplitName, RawSplit>;
  for (const sp of SPLITS) {
    const file = join(dir, `${sp}.txt`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = e instanceof Error && 'code' in e ? String(e.code) : '';
      throw new KgFormatError(`cannot read ${file}${code ? ` (${code})` : ''}: a dataset folder needs train.txt, valid.txt and test.txt`);
    }
    raw[sp] = parseQuadText(text, file);
    // valid.txt / test.txt may be empty (training without validation: --valid-every 0); what
    // would evaluate an empty split refuses it there
    if (sp === 'train' && raw[sp].h.length === 0) throw new KgFormatError(`${file}: no facts (train.txt needs at least one; valid.txt and test.txt may be empty)`);
  }
  return buildKG(raw, opts);
}

export function numFacts(q: Quads): number {
  return q.h.length;
}

/** Writes a split in the canonical text format (time as integer ids unless an origin is given). */
export function formatQuads(kg: Pick<TemporalKG, 'entities' | 'relations' | 'origin'> & { dateIds?: DateIds }, q: Quads): string {
  if (kg.dateIds === 'reference' && kg.origin !== null) throw new KgFormatError("formatQuads: time ids under the reference's date rule do not map back to one date each");
  const origin = kg.origin === null ? null : (dayNumber(kg.origin) as number);
  const lines: string[] = [];
  for (let i = 0; i < q.h.length; i++) {
    const time = origin === null ? String(q.tau[i]) : dateString(origin + q.tau[i]);
    lines.push(`${kg.entities[q.h[i]]}\t${kg.relations[q.r[i]]}\t${kg.entities[q.t[i]]}\t${time}\n`);
  }
  return lines.join('');
}

function unusedTimes(kg: TemporalKG): number {
  const used = new Uint8Array(kg.numTimes);
  for (const sp of SPLITS) for (const t of kg[sp].tau) used[t] = 1;
  return used.reduce((n, u) => n + (u === 0 ? 1 : 0), 0);
}

/** Counts for `tfree kg stats`. */
export function kgStats(kg: TemporalKG): Record<string, number | string | null> {
  return {
    entities: kg.entities.length,
    relations: kg.relations.length,
    timestamps: kg.numTimes,
    time_kind: kg.timeKind,
    origin: kg.origin,
    date_ids: kg.dateIds,
    /** time ids that no fact uses (under the reference's date rule: the overlapped month ends) */
    unused_timestamps: unusedTimes(kg),
    train: kg.train.h.length,
    valid: kg.valid.h.length,
    test: kg.test.h.length,
    unseen_entities_valid: kg.unseenEntities.valid,
    unseen_entities_test: kg.unseenEntities.test,
    unseen_facts_valid: kg.unseenFacts.valid,
    unseen_facts_test: kg.unseenFacts.test,
    unseen_relations_valid: kg.unseenRelations.valid,
    unseen_relations_test: kg.unseenRelations.test,
    unseen_relation_facts_valid: kg.unseenRelationFacts.valid,
    unseen_relation_facts_test: kg.unseenRelationFacts.test,
  };
}

// ---- the set of known facts (filtering) ---------------------------------------------------------

/**
 * A set of quadruples. Facts are grouped by (relation, time) and keyed by h * |E| + t inside a
 * group, so every key is a small integer (V8 keeps those unboxed: fast lookups).
 */
export class QuadSet {
  private readonly groups = new Map<number, Set<number>>();
  private readonly nE: number;
  private readonly nT: number;
  private count = 0;
  constructor(nE: number, nR: number, nT: number) {
    if (nE * nE > 2 ** 31 - 1 || nR * nT > 2 ** 31 - 1) throw new Error(`QuadSet: ${nE} entities / ${nR} relations x ${nT} times are too many`);
    this.nE = nE;
    this.nT = nT;
  }
  add(h: number, r: number, t: number, tau: number): void {
    const g = r * this.nT + tau;
    let s = this.groups.get(g);
    if (s === undefined) {
      s = new Set<number>();
      this.groups.set(g, s);
    }
    const k = h * this.nE + t;
    if (!s.has(k)) {
      s.add(k);
      this.count++;
    }
  }
  has(h: number, r: number, t: number, tau: number): boolean {
    const s = this.groups.get(r * this.nT + tau);
    return s !== undefined && s.has(h * this.nE + t);
  }
  addAll(q: Quads): this {
    for (let i = 0; i < q.h.length; i++) this.add(q.h[i], q.r[i], q.t[i], q.tau[i]);
    return this;
  }
  get size(): number {
    return this.count;
  }
}

// ---- synthetic temporal KG ------------------------------------------------------------------------

export interface SyntheticOptions {
  entities?: number;
  relations?: number;
  times?: number;
  /** number of entity groups (each relation links one head group to one tail group) */
  groups?: number;
  /** facts in all splits together (before deduplication) */
  facts?: number;
  seed?: number;
}

/**
 * A temporal KG with learnable structure: entities fall into groups; relation r links heads of
 * group gh(r) to tails of group gt(r), and the tail is a fixed function of the head that shifts
 * with time: t = group gt(r) member number (index(h) + r + floor(tau / period)) mod groupSize, with
 * period 4. Every fact is therefore predictable from the head, relation and time; splits are a
 * seeded random 80/10/10 partition. Ids are names like `e17`, `r3`, times integer ids.
 */
export function syntheticKG(opts: SyntheticOptions = {}): TemporalKG {
  const nE = opts.entities ?? 60;
  const nR = opts.relations ?? 4;
  const nT = opts.times ?? 12;
  const nG = opts.groups ?? 3;
  const nF = opts.facts ?? 1500;
  let s = (opts.seed ?? 1) >>> 0 || 1;
  const rand = (): number => {
    // xorshift32: self-contained so the generator does not depend on nn
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const gsize = Math.floor(nE / nG);
  if (gsize < 2) throw new Error('syntheticKG: need at least 2 entities per group');
  const member = (g: number, i: number): number => g * gsize + (i % gsize);
  const rel = Array.from({ length: nR }, (_, r) => ({ gh: r % nG, gt: (r + 1 + Math.floor(r / nG)) % nG }));
  const seen = new Set<string>();
  const facts: [number, number, number, number][] = [];
  for (let k = 0; k < nF * 4 && facts.length < nF; k++) {
    const r = Math.floor(rand() * nR);
    const i = Math.floor(rand() * gsize);
    const tau = Math.floor(rand() * nT);
    const h = member(rel[r].gh, i);
    const t = member(rel[r].gt, i + r + Math.floor(tau / 4));
    const key = `${h},${r},${t},${tau}`;
    if (seen.has(key)) continue;
    seen.add(key);
    facts.push([h, r, t, tau]);
  }
  const raw = {} as Record<SplitName, RawSplit>;
  for (const sp of SPLITS) raw[sp] = { file: `<synthetic ${sp}>`, h: [], r: [], t: [], time: [], line: [] };
  // make sure train sees every entity and every timestamp first (so the id maps are in order)
  facts.forEach((f, i) => {
    const u = rand();
    const sp: SplitName = i < nF * 0.2 || u < 0.8 ? 'train' : u < 0.9 ? 'valid' : 'test';
    const rs = raw[sp];
    rs.h.push(`e${f[0]}`);
    rs.r.push(`r${f[1]}`);
    rs.t.push(`e${f[2]}`);
    rs.time.push(String(f[3]));
    rs.line.push(rs.h.length);
  });
  return buildKG(raw);
}

// ---- id-mapped copies -> canonical text ------------------------------------------------------------

/** Parses an `entity2id.txt` / `relation2id.txt` style map: `name<TAB>id` per line -> names by id. */
export function parseIdMap(text: string, file: string): string[] {
  const names: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (s === '') continue;
    const tab = s.lastIndexOf('\t');
    const id = Number(s.slice(tab + 1));
    if (tab <= 0 || !Number.isInteger(id) || id < 0) throw new KgFormatError(`${file}:${i + 1}: expected name<TAB>id`);
    if (names[id] !== undefined) throw new KgFormatError(`${file}:${i + 1}: id ${id} appears twice`);
    names[id] = s.slice(0, tab);
  }
  for (let i = 0; i < names.length; i++) if (names[i] === undefined) throw new KgFormatError(`${file}: no name for id ${i}`);
  return names;
}

/**
 * Rebuilds the canonical text of a split from an id-mapped copy (`h r t day` per line, whitespace
 * separated; further columns ignored): names from the maps, dates as origin + day. For ICEWS14
 * (origin 2014-01-01) and ICEWS05-15 (2005-01-01) this reproduces the mmkb files byte for byte
 * (spec §3.3).
 */
export function convertIdMapped(idText: string, entities: readonly string[], relations: readonly string[], origin: string, file: string): string {
  const o = dayNumber(origin);
  if (o === null) throw new KgFormatError(`origin "${origin}" is not a date YYYY-MM-DD`);
  const out: string[] = [];
  const lines = idText.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i].trim();
    if (s === '') continue;
    const f = s.split(/\s+/).map(Number);
    if (f.length < 4 || f.slice(0, 4).some((x) => !Number.isInteger(x) || x < 0)) throw new KgFormatError(`${file}:${i + 1}: expected four non-negative integers h r t day`);
    const [h, r, t, day] = f;
    if (h >= entities.length || t >= entities.length) throw new KgFormatError(`${file}:${i + 1}: entity id ${Math.max(h, t)} is not in the entity map (${entities.length} entities)`);
    if (r >= relations.length) throw new KgFormatError(`${file}:${i + 1}: relation id ${r} is not in the relation map (${relations.length} relations)`);
    out.push(`${entities[h]}\t${relations[r]}\t${entities[t]}\t${dateString(o + day)}\n`);
  }
  return out.join('');
}
