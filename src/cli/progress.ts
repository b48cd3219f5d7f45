/**
 * A terminal progress bar: `label [#####.....] 42% 420/1000 ETA 12s | extra`. Redraws at most
 * 10 times a second on a TTY; on a non-TTY stream it prints a plain line at most every 5 s, so
 * logs stay readable. Silent when disabled (e.g. --json mode).
 */
export interface ProgressOptions {
  total: number;
  label?: string;
  stream?: NodeJS.WriteStream;
  enabled?: boolean;
  /** minimum ms between plain-text lines on a non-TTY */
  plainIntervalMs?: number;
  /** count already done when this bar starts (a resumed job): the ETA uses only the rate since then */
  initial?: number;
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '?';
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m${String(Math.round(sec % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class Progress {
  private readonly total: number;
  private readonly label: string;
  private readonly stream: NodeJS.WriteStream;
  private readonly enabled: boolean;
  private readonly tty: boolean;
  private readonly plainInterval: number;
  private readonly start = Date.now();
  private lastDraw = 0;
  private done = 0;
  private readonly initial: number;
  /** the full bar is drawn (a finish() after the last update() draws it once, not twice) */
  private closed = false;

  constructor(opts: ProgressOptions) {
    this.initial = opts.initial ?? 0;
    this.done = this.initial;
    this.total = Math.max(opts.total, 1);
    this.label = opts.label ?? '';
    this.stream = opts.stream ?? process.stderr;
    this.enabled = opts.enabled ?? true;
    this.tty = Boolean(this.stream.isTTY);
    this.plainInterval = opts.plainIntervalMs ?? 5000;
  }

  /** Sets the completed count and redraws when due. */
  update(done: number, extra = ''): void {
    this.done = done;
    if (!this.enabled) return;
    const now = Date.now();
    const final = done >= this.total;
    if (!final && now - this.lastDraw < (this.tty ? 100 : this.plainInterval)) return;
    if (final && this.closed) return; // the full bar is drawn already (and ended by a newline)
    this.lastDraw = now;
    const line = this.render(extra);
    if (this.tty) this.stream.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
    else this.stream.write(`${line}\n`);
    if (final) this.closed = true;
  }

  render(extra = ''): string {
    const frac = Math.min(this.done / this.total, 1);
    const width = 24;
    const fill = Math.round(frac * width);
    const elapsed = (Date.now() - this.start) / 1000;
    const ran = this.done - this.initial;
    const eta = ran > 0 ? (elapsed / ran) * (this.total - this.done) : NaN;
    const bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`;
    const pct = `${(frac * 100).toFixed(0).padStart(3)}%`;
    return `${this.label ? `${this.label} ` : ''}${bar} ${pct} ${this.done}/${this.total} ${formatDuration(elapsed)} ETA ${formatDuration(eta)}${extra ? ` | ${extra}` : ''}`;
  }

  /**
   * Draws the bar where the job stopped short of its total (Ctrl-C): the count done (`done`, else
   * the last update's), not 100%.
   */
  stop(extra = '', done?: number): void {
    if (done !== undefined) this.done = done;
    if (!this.enabled) return;
    const line = this.render(extra);
    this.stream.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  finish(extra = ''): void {
    if (this.done < this.total) this.done = this.total;
    this.lastDraw = 0;
    this.update(this.total, extra);
  }
}
