/**
 * Command-line flags of the experiment scripts (`--name value`, repeatable). Dependency-free on
 * purpose (Node built-ins only): the A/B scripts import it in children that load another checkout's
 * dist/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// `--help` / `-h`: print the script's leading doc comment (its usage) and exit before it runs.
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  const m = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(process.argv[1], 'utf8'));
  const text = m ? m[1].replace(/^[ \t]*\* ?/gm, '').trim() : 'no usage text in this script';
  process.stdout.write(`${text}\n`);
  process.exit(0);
}

/** A missing or bad flag: one line on stderr and exit 2 (no stack trace). */
export function usageError(msg: string): never {
  process.stderr.write(`${process.argv[1]?.replace(/^.*\//, '') ?? 'experiment'}: ${msg} (--help for usage)\n`);
  process.exit(2);
}

/** Flags that name a checkout whose dist/ a script imports: made absolute (a relative one would resolve against the script's folder). */
const CHECKOUT_FLAGS = new Set(['root', 'old']);

/** Every value given to `--name`, in order (`--root` / `--old`: as absolute paths). */
export function args(name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.argv.length - 1; i++) if (process.argv[i] === `--${name}`) out.push(process.argv[i + 1]);
  return CHECKOUT_FLAGS.has(name) ? out.map((p) => (p === '' ? p : resolve(p))) : out;
}

/** The first value given to `--name`, or `def`. */
export function arg(name: string, def: string): string {
  return args(name)[0] ?? def;
}

/**
 * `--name` as a number (default `def`) in [min, max]; `int` requires a whole number. A value that is
 * not a number or lies outside the range is a usage error (one line, exit 2), never NaN in a loop.
 */
export function numArg(name: string, def: number, opts: { min?: number; max?: number; int?: boolean; positive?: boolean } = {}): number {
  const raw = args(name)[0];
  if (raw === undefined) return def;
  const v = raw.trim() === '' ? Number.NaN : Number(raw);
  const { min = -Infinity, max = Infinity, int = false, positive = false } = opts;
  if (!Number.isFinite(v) || (int && !Number.isInteger(v)) || v < min || v > max || (positive && v <= 0)) {
    const range = `${positive ? '> 0' : min === -Infinity ? '' : `>= ${min}`}${min !== -Infinity && max !== Infinity ? ' and ' : ''}${max === Infinity ? '' : `<= ${max}`}`;
    usageError(`--${name} must be ${int ? 'a whole number' : 'a number'}${range ? ` ${range}` : ''}, got "${raw}"`);
  }
  return v;
}

/** `--name` as a whole number >= `min` (default 1): counts of rounds, steps, repetitions, threads. */
export function intArg(name: string, def: number, min = 1, max = Infinity): number {
  return numArg(name, def, { min, max, int: true });
}

/** `--name` as one of `choices` (default `def`), else a usage error. */
export function choiceArg<T extends string>(name: string, def: T, choices: readonly T[]): T {
  const raw = args(name)[0];
  if (raw === undefined) return def;
  const hit = choices.find((c) => c === raw);
  if (hit === undefined) usageError(`--${name} must be one of ${choices.join(', ')}, got "${raw}"`);
  return hit;
}


/** The median of xs (the mean of the two middle values for an even count); NaN when empty. */
export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
/** A `--root` value `DIR` or `DIR@NAME` (a kernel path or ISA to run that build on): `{ root, at }`, `at` '' when none. */
export function rootSpec(spec: string): { root: string; at: string } {
  const i = spec.lastIndexOf('@');
  return i > 0 ? { root: spec.slice(0, i), at: spec.slice(i + 1) } : { root: spec, at: '' };
}

/**
 * The parent side of the BoxTE A/B scripts (boxte_speed_ab, boxte_phases, boxte_epoch_check): for
 * `--rounds` rounds (default `rounds`) and each `--root` in turn, runs `script` (the caller's
 * `import.meta.url`) again in a fresh process as `--child --root R --data D ...childArgs` and copies
 * its output line to stdout. `--data` defaults to ICEWS14 in ../shared beside the checkout.
 * `--root DIR@ISA` runs that entry's child with TFREE_ISA=ISA (so one build's paths can be compared:
 * `--root .@avx2 --root .@avx512`); its output lines start with `ISA ` then.
 */
export function runRootsInterleaved(script: string, childArgs: string[], rounds: string, rootsHint: string): void {
  const roots = args('root');
  if (roots.length === 0) usageError(`give --root DIR (${rootsHint})`);
  const data = arg('data', fileURLToPath(new URL('../../../shared/data/icews14', import.meta.url)));
  if (!existsSync(join(data, 'train.txt'))) usageError(`--data ${data} has no train.txt (give a dataset folder such as ../shared/data/icews14)`);
  const n = intArg('rounds', Number(rounds));
  for (let r = 0; r < n; r++) {
    for (const spec of roots) {
      const { root, at: isa } = rootSpec(spec);
      const env = isa === '' ? process.env : { ...process.env, TFREE_ISA: isa };
      const out = execFileSync(process.execPath, [fileURLToPath(script), '--child', '--root', root, '--data', data, ...childArgs], { encoding: 'utf8', env });
      process.stdout.write(isa === '' ? out : out.replace(/^(?=.)/gm, `${isa} `));
    }
  }
}
