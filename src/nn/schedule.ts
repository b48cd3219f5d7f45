/**
 * Learning-rate schedules: pure functions from the optimizer step (0-based: the number of updates
 * already taken) to the learning rate of the next update.
 *
 * Warmup (all schedules): for step < warmupSteps, lr * (step + 1) / warmupSteps, so the first
 * update is already non-zero and step warmupSteps - 1 reaches the peak.
 */

export type Schedule = (step: number) => number;

export interface WarmupDecayOptions {
  /** peak learning rate */
  lr: number;
  warmupSteps?: number;
  /** step at which the decay reaches its floor (the floor holds afterwards) */
  totalSteps: number;
  /** floor as a fraction of lr (default 0) */
  minLrRatio?: number;
}

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) throw new Error(`schedule: step must be a non-negative integer, got ${step}`);
}

function warmup(step: number, lr: number, w: number): number | null {
  return step < w ? (lr * (step + 1)) / w : null;
}

function validate(o: WarmupDecayOptions): { w: number; minLr: number } {
  const w = o.warmupSteps ?? 0;
  const ratio = o.minLrRatio ?? 0;
  if (!(o.lr >= 0)) throw new Error(`schedule: lr must be non-negative, got ${o.lr}`);
  if (!Number.isInteger(w) || w < 0) throw new Error(`schedule: warmupSteps must be a non-negative integer, got ${w}`);
  if (!(o.totalSteps >= w)) throw new Error(`schedule: totalSteps (${o.totalSteps}) must be >= warmupSteps (${w})`);
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`schedule: minLrRatio must lie in [0, 1], got ${ratio}`);
  return { w, minLr: o.lr * ratio };
}

/** Cosine learning rate at `step`: warmup, then minLr + (lr - minLr) (1 + cos(pi p)) / 2, p from 0 at warmupSteps to 1 at totalSteps. */
export function cosineLr(step: number, o: WarmupDecayOptions): number {
  checkStep(step);
  const { w, minLr } = validate(o);
  const wu = warmup(step, o.lr, w);
  if (wu !== null) return wu;
  if (step >= o.totalSteps) return minLr;
  const p = (step - w) / Math.max(1, o.totalSteps - w);
  return minLr + (o.lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * p));
}

/** Linear decay from lr at warmupSteps to minLr at totalSteps. */
export function linearLr(step: number, o: WarmupDecayOptions): number {
  checkStep(step);
  const { w, minLr } = validate(o);
  const wu = warmup(step, o.lr, w);
  if (wu !== null) return wu;
  if (step >= o.totalSteps) return minLr;
  const p = (step - w) / Math.max(1, o.totalSteps - w);
  return o.lr + (minLr - o.lr) * p;
}

/** Constant lr after an optional warmup. */
export function constantLr(step: number, o: { lr: number; warmupSteps?: number }): number {
  checkStep(step);
  const w = o.warmupSteps ?? 0;
  return warmup(step, o.lr, w) ?? o.lr;
}

export type ScheduleConfig =
  | ({ kind: 'cosine' } & WarmupDecayOptions)
  | ({ kind: 'linear' } & WarmupDecayOptions)
  | { kind: 'constant'; lr: number; warmupSteps?: number };

/** A schedule function from a (JSON) config. */
export function makeSchedule(cfg: ScheduleConfig): Schedule {
  switch (cfg.kind) {
    case 'cosine':
      validate(cfg);
      return (s) => cosineLr(s, cfg);
    case 'linear':
      validate(cfg);
      return (s) => linearLr(s, cfg);
    case 'constant':
      return (s) => constantLr(s, cfg);
    default: {
      const k: never = cfg;
      throw new Error(`schedule: unknown kind ${JSON.stringify(k)}`);
    }
  }
}
