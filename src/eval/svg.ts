/**
 * Small dependency-free SVG plots for evaluation reports: histogram, heatmap, line chart. Each
 * returns a complete standalone `<svg>` document (readable in any browser, embeddable in Markdown).
 */

const FONT = 'font-family="sans-serif" font-size="11"';

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

function fmtTick(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e4 || a < 1e-2)) return x.toExponential(1);
  return Number.isInteger(x) ? String(x) : x.toFixed(a >= 10 ? 1 : 2);
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

interface Frame {
  w: number;
  h: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(w: number, h: number): Frame {
  return { w, h, left: 56, right: 16, top: 28, bottom: 44 };
}

function axes(f: Frame, title: string, xLabel: string, yLabel: string, x: { lo: number; hi: number; ticks?: number[] }, y: { lo: number; hi: number }): string[] {
  const pw = f.w - f.left - f.right;
  const ph = f.h - f.top - f.bottom;
  const sx = (v: number): number => f.left + ((v - x.lo) / (x.hi - x.lo || 1)) * pw;
  const sy = (v: number): number => f.top + ph - ((v - y.lo) / (y.hi - y.lo || 1)) * ph;
  const parts = [
    `<text x="${f.w / 2}" y="16" text-anchor="middle" ${FONT} font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${f.left}" y1="${f.top + ph}" x2="${f.left + pw}" y2="${f.top + ph}" stroke="#333"/>`,
    `<line x1="${f.left}" y1="${f.top}" x2="${f.left}" y2="${f.top + ph}" stroke="#333"/>`,
    `<text x="${f.left + pw / 2}" y="${f.h - 6}" text-anchor="middle" ${FONT}>${escapeXml(xLabel)}</text>`,
    `<text x="12" y="${f.top + ph / 2}" text-anchor="middle" ${FONT} transform="rotate(-90 12 ${f.top + ph / 2})">${escapeXml(yLabel)}</text>`,
  ];
  for (const t of x.ticks ?? niceTicks(x.lo, x.hi)) {
    parts.push(`<line x1="${sx(t)}" y1="${f.top + ph}" x2="${sx(t)}" y2="${f.top + ph + 4}" stroke="#333"/>`);
    parts.push(`<text x="${sx(t)}" y="${f.top + ph + 16}" text-anchor="middle" ${FONT}>${fmtTick(t)}</text>`);
  }
  for (const t of niceTicks(y.lo, y.hi)) {
    parts.push(`<line x1="${f.left - 4}" y1="${sy(t)}" x2="${f.left + pw}" y2="${sy(t)}" stroke="#ddd"/>`);
    parts.push(`<text x="${f.left - 6}" y="${sy(t) + 4}" text-anchor="end" ${FONT}>${fmtTick(t)}</text>`);
  }
  return parts;
}

function svg(w: number, h: number, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">\n<rect width="100%" height="100%" fill="white"/>\n${body.join('\n')}\n</svg>\n`;
}

/** Histogram of integer-ish values in [lo, hi] with `bins` equal bins. */
export function histogramSvg(values: readonly number[], opts: { title: string; xLabel: string; lo: number; hi: number; bins?: number; width?: number; height?: number }): string {
  const bins = opts.bins ?? 20;
  const f = frame(opts.width ?? 520, opts.height ?? 300);
  const counts = new Array<number>(bins).fill(0);
  const span = opts.hi - opts.lo || 1;
  for (const v of values) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(((v - opts.lo) / span) * bins)));
    counts[b]++;
  }
  const ymax = Math.max(1, ...counts);
  const body = axes(f, opts.title, opts.xLabel, 'samples', { lo: opts.lo, hi: opts.hi }, { lo: 0, hi: ymax });
  const pw = f.w - f.left - f.right;
  const ph = f.h - f.top - f.bottom;
  counts.forEach((c, i) => {
    const x = f.left + (i / bins) * pw;
    const hgt = (c / ymax) * ph;
    body.push(`<rect x="${x + 1}" y="${f.top + ph - hgt}" width="${Math.max(1, pw / bins - 2)}" height="${hgt}" fill="#4c78a8"><title>${c}</title></rect>`);
  });
  return svg(f.w, f.h, body);
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

const COLORS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#ff9da6', '#9d755d'];

/** Line chart of one or more series (markers at the points), with a legend. */
export function lineSvg(series: readonly Series[], opts: { title: string; xLabel: string; yLabel: string; width?: number; height?: number; yFrom0?: boolean }): string {
  const f = frame(opts.width ?? 560, opts.height ?? 320);
  f.right = 130;
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const x = { lo: xs.length ? Math.min(...xs) : 0, hi: xs.length ? Math.max(...xs) : 1 };
  const y = { lo: opts.yFrom0 || !ys.length ? Math.min(0, ...ys) : Math.min(...ys), hi: ys.length ? Math.max(...ys) : 1 };
  if (y.hi === y.lo) y.hi = y.lo + 1;
  if (x.hi === x.lo) x.hi = x.lo + 1;
  const body = axes(f, opts.title, opts.xLabel, opts.yLabel, x, y);
  const pw = f.w - f.left - f.right;
  const ph = f.h - f.top - f.bottom;
  const sx = (v: number): number => f.left + ((v - x.lo) / (x.hi - x.lo)) * pw;
  const sy = (v: number): number => f.top + ph - ((v - y.lo) / (y.hi - y.lo)) * ph;
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const good = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (good.length > 1) body.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${good.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}"/>`);
    for (const p of good) body.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="3" fill="${c}"><title>${escapeXml(s.name)}: (${fmtTick(p.x)}, ${fmtTick(p.y)})</title></circle>`);
    const ly = f.top + 10 + i * 16;
    body.push(`<rect x="${f.w - f.right + 10}" y="${ly - 8}" width="10" height="10" fill="${c}"/>`);
    body.push(`<text x="${f.w - f.right + 24}" y="${ly + 1}" ${FONT}>${escapeXml(s.name)}</text>`);
  });
  return svg(f.w, f.h, body);
}

/** Heatmap: rows x cols matrix of values (NaN = not measured), colour scale from lo (red) to hi (green). */
export function heatmapSvg(rows: readonly string[], cols: readonly string[], values: readonly (readonly number[])[], opts: { title: string; lo?: number; hi?: number; cell?: number }): string {
  const cell = opts.cell ?? 44;
  const left = 16 + 7 * Math.max(4, ...rows.map((r) => r.length));
  const top = 56;
  const w = left + cols.length * cell + 16;
  const h = top + rows.length * cell + 40;
  const finite = values.flat().filter(Number.isFinite);
  const lo = opts.lo ?? (finite.length ? Math.min(...finite) : 0);
  const hi = opts.hi ?? (finite.length ? Math.max(...finite) : 1);
  const colour = (v: number): string => {
    if (!Number.isFinite(v)) return '#eeeeee';
    const t = Math.min(1, Math.max(0, (v - lo) / (hi - lo || 1)));
    const r = Math.round(215 - 150 * t);
    const g = Math.round(60 + 130 * t);
    const b = Math.round(60 + 20 * t);
    return `rgb(${r},${g},${b})`;
  };
  const body = [`<text x="${w / 2}" y="16" text-anchor="middle" ${FONT} font-weight="bold">${escapeXml(opts.title)}</text>`];
  cols.forEach((c, j) => body.push(`<text x="${left + j * cell + cell / 2}" y="${top - 8}" text-anchor="middle" ${FONT}>${escapeXml(c)}</text>`));
  rows.forEach((r, i) => {
    body.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end" ${FONT}>${escapeXml(r)}</text>`);
    cols.forEach((c, j) => {
      const v = values[i]?.[j] ?? Number.NaN;
      body.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell - 2}" height="${cell - 2}" fill="${colour(v)}"><title>${escapeXml(r)} ${escapeXml(c)}: ${fmtTick(v)}</title></rect>`);
      if (Number.isFinite(v)) body.push(`<text x="${left + j * cell + cell / 2 - 1}" y="${top + i * cell + cell / 2 + 3}" text-anchor="middle" ${FONT} fill="white">${fmtTick(v)}</text>`);
    });
  });
  body.push(`<text x="${left}" y="${h - 14}" ${FONT}>colour: ${fmtTick(lo)} (red) .. ${fmtTick(hi)} (green)</text>`);
  return svg(w, h, body);
}
