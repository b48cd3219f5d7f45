/**
 * A small, strict command-line parser: `--name value`, `--name=value`, boolean `--flag` /
 * `--no-flag`, repeated options, and positionals. Unknown options are errors that name the
 * option and list the known ones.
 *
 * Every option is declared once, with its type and range (`min` / `max` inclusive, `above`
 * exclusive): the parser rejects a value outside it (and a non-decimal or fractional integer:
 * `0x10`, `1.5`, `1e3`) before the command runs. A command with subcommands (`tfree kg train`)
 * names in each option's `subs` the subcommands that use it; the parser of a subcommand knows
 * only those options, so an option another subcommand uses is refused, not ignored. Old option
 * names stay accepted through `aliases` with a one-line deprecation note.
 */
import { UserError } from './errors.js';

export type OptionType = 'string' | 'number' | 'int' | 'boolean';

export interface OptionSpec {
  type: OptionType;
  /** one-line description for --help */
  help: string;
  default?: string | number | boolean;
  /** a value name for --help, e.g. FILE */
  meta?: string;
  /** smallest allowed value (number / int), inclusive */
  min?: number;
  /** largest allowed value (number / int), inclusive */
  max?: number;
  /** the value must be greater than this (number), e.g. a learning rate above 0 */
  above?: number;
  /** the values a string option takes (matched without regard to case; the listed spelling is kept) */
  choices?: readonly string[];
  /** the subcommands that use this option (all when absent) */
  subs?: readonly string[];
  /** old names still accepted; each use prints a one-line deprecation note */
  aliases?: readonly string[];
}

export interface SubcommandSpec {
  summary: string;
  usage: string;
  details?: string;
  /** what its positional arguments are (e.g. 'FILE...'); absent: it takes none, and one is refused */
  positionals?: string;
  run(args: ParsedArgs): Promise<number | void> | number | void;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** extra help text after the options */
  details?: string;
  /** what its positional arguments are (e.g. 'FILE'); absent: it takes none, and one is refused */
  positionals?: string;
  options: Record<string, OptionSpec>;
  /** subcommands (`tfree kg train`): the first argument picks one, which then runs instead of `run` */
  subcommands?: Record<string, SubcommandSpec>;
  /** the subcommand that runs when none is given (e.g. `tfree demo` = `tfree demo hat`) */
  defaultSubcommand?: string;
  run?(args: ParsedArgs): Promise<number | void> | number | void;
}

export interface ParsedArgs {
  options: Record<string, string | number | boolean | undefined>;
  positionals: string[];
  /** the options given on the command line (not defaults) */
  given?: ReadonlySet<string>;
}

const INT = /^[+-]?\d+$/;
const NUM = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The range of an option in words, e.g. "an integer >= 1" or "a number in (0, 1]". */
export function rangeText(spec: OptionSpec): string {
  const kind = spec.type === 'int' ? 'an integer' : 'a number';
  const lo = spec.above !== undefined ? { v: spec.above, open: true } : spec.min !== undefined ? { v: spec.min, open: false } : undefined;
  if (lo !== undefined && spec.max !== undefined) return `${kind} in ${lo.open ? '(' : '['}${lo.v}, ${spec.max}]`;
  if (lo !== undefined) return `${kind} ${lo.open ? '>' : '>='} ${lo.v}`;
  if (spec.max !== undefined) return `${kind} <= ${spec.max}`;
  return kind;
}

/**
 * Checks a number against the option's declared range (also used for values computed from several
 * flags); `raw` is the text the user typed, shown in the message (a double would print
 * 99999999999999999999 as 100000000000000000000).
 */
export function checkRange(name: string, spec: OptionSpec, v: number, raw?: string): number {
  const bad = (spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max) || (spec.above !== undefined && !(v > spec.above));
  if (bad || (spec.type === 'int' && !Number.isSafeInteger(v)) || !Number.isFinite(v)) throw new UserError(`--${name} must be ${rangeText(spec)}, got ${raw ?? v}`);
  return v;
}

function convert(name: string, spec: OptionSpec, raw: string): string | number | boolean {
  switch (spec.type) {
    case 'string': {
      if (spec.choices === undefined) return raw;
      const c = spec.choices.find((x) => x.toLowerCase() === raw.toLowerCase());
      if (c === undefined) throw new UserError(`--${name} must be one of ${spec.choices.join(', ')}; got "${raw}"`);
      return c;
    }
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new UserError(`--${name} expects true or false, got "${raw}"`);
    case 'number': {
      const t = raw.trim();
      if (!NUM.test(t)) throw new UserError(`--${name} expects ${rangeText(spec)}, got "${raw}"`);
      return checkRange(name, spec, Number(t), t);
    }
    case 'int': {
      const t = raw.trim();
      if (!INT.test(t)) throw new UserError(`--${name} expects ${rangeText(spec)}, got "${raw}"`);
      return checkRange(name, spec, Number(t), t);
    }
  }
}

/** The options of `spec` a subcommand uses (all of them when `sub` is undefined). */
export function optionsFor(spec: CommandSpec, sub?: string): Record<string, OptionSpec> {
  if (sub === undefined) return spec.options;
  const out: Record<string, OptionSpec> = {};
  for (const [k, s] of Object.entries(spec.options)) if (s.subs === undefined || s.subs.includes(sub)) out[k] = s;
  return out;
}

/**
 * Parses `argv` against the options of `spec` (of subcommand `sub` when given). `note` receives
 * deprecation notes (default: stderr).
 */
export function parseArgs(argv: readonly string[], spec: CommandSpec, sub?: string, note: (s: string) => void = (s) => void process.stderr.write(`${s}\n`)): ParsedArgs {
  const opts = optionsFor(spec, sub);
  const label = sub === undefined ? spec.name : `${spec.name} ${sub}`;
  const alias = new Map<string, string>();
  for (const [k, s] of Object.entries(opts)) for (const a of s.aliases ?? []) alias.set(a, k);
  const options: ParsedArgs['options'] = {};
  const given = new Set<string>();
  const positionals: string[] = [];
  let firstAt = -1; // argv index of the first positional
  for (const [k, s] of Object.entries(opts)) options[k] = s.default;
  const resolve = (n: string): string => {
    const to = alias.get(n);
    if (to === undefined) return n;
    note(`tfree ${label}: --${n} is deprecated; use --${to}`);
    return to;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      if (firstAt < 0 && i + 1 < argv.length) firstAt = i + 1;
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      if (firstAt < 0) firstAt = i;
      positionals.push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (opts[name] === undefined && alias.has(name)) name = resolve(name);
    let s = opts[name];
    if (s === undefined && name.startsWith('no-') && value === undefined) {
      const base = opts[name.slice(3)] === undefined && alias.has(name.slice(3)) ? resolve(name.slice(3)) : name.slice(3);
      if (opts[base]?.type === 'boolean') {
        options[base] = false;
        given.add(base);
        continue;
      }
    }
    if (s === undefined) {
      const other = sub !== undefined && spec.options[name] !== undefined;
      const known = Object.keys(opts).map((k) => `--${k}`).join(', ');
      throw new UserError(
        other
          ? `--${name} does not apply to "tfree ${label}" (it is an option of tfree ${spec.name} ${(spec.options[name].subs ?? []).join('/')}); see tfree ${label} --help`
          : `unknown option --${name} for "tfree ${label}"${known ? ` (known: ${known})` : ''}; see tfree ${label} --help`,
      );
    }
    given.add(name);
    if (s.type === 'boolean' && value === undefined) {
      options[name] = true;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UserError(`--${name} needs a value`);
      value = argv[++i];
    }
    s = opts[name];
    options[name] = convert(name, s, value);
  }
  const takes = sub !== undefined ? spec.subcommands?.[sub]?.positionals : spec.positionals;
  if (takes === undefined && positionals.length > 0) {
    // a stray word (`--overwrite false`, a path without its flag) would otherwise be dropped silently
    const flagBefore = argv[firstAt - 1];
    const hint = flagBefore?.startsWith('--') && opts[flagBefore.slice(2)]?.type === 'boolean' ? ` (${flagBefore} is a switch and takes no value; use --no-${flagBefore.slice(2)} to turn it off)` : '';
    throw new UserError(`unexpected argument "${positionals[0]}"${hint}; see tfree ${label} --help`);
  }
  return { options, positionals, given };
}

const HELP_LINE = { left: '  --help', help: 'show this help' };

/** The options table of a help text, `--help` last, in one column. */
function optionLines(opts: Record<string, OptionSpec>): string[] {
  const entries = Object.entries(opts);
  const left = entries.map(([k, s]) => `  --${k}${s.type === 'boolean' ? '' : ` ${s.meta ?? s.type.toUpperCase()}`}`);
  const w = Math.max(HELP_LINE.left.length, ...left.map((l) => l.length)) + 2;
  return [
    '',
    'options:',
    ...entries.map(([, s], i) => {
      const def = s.default !== undefined ? ` (default: ${String(s.default)})` : '';
      const al = s.aliases !== undefined && s.aliases.length > 0 ? ` [old name: ${s.aliases.map((x) => `--${x}`).join(', ')}]` : '';
      return `${left[i].padEnd(w)}${s.help}${def}${al}`;
    }),
    `${HELP_LINE.left.padEnd(w)}${HELP_LINE.help}`,
  ];
}

/** Help of a command; with `sub`, only that subcommand's usage and options. */
export function formatHelp(spec: CommandSpec, sub?: string): string {
  if (sub !== undefined && spec.subcommands?.[sub] !== undefined) {
    const s = spec.subcommands[sub];
    const lines = [`tfree ${spec.name} ${sub}: ${s.summary}`, '', `usage: ${s.usage}`, ...optionLines(optionsFor(spec, sub))];
    if (s.details) lines.push('', s.details);
    return lines.join('\n');
  }
  const lines = [`tfree ${spec.name}: ${spec.summary}`, '', `usage: ${spec.usage}`];
  if (spec.subcommands !== undefined) {
    const names = Object.keys(spec.subcommands);
    const w = Math.max(...names.map((n) => n.length)) + 2;
    lines.push('', 'subcommands (tfree ' + spec.name + ' SUB --help for the options of one):');
    for (const [n, s] of Object.entries(spec.subcommands)) lines.push(`  ${n.padEnd(w)}${s.summary}`, `  ${''.padEnd(w)}${s.usage}`);
    lines.push('', `options:`, `${HELP_LINE.left}  ${HELP_LINE.help}`);
  } else lines.push(...optionLines(spec.options));
  if (spec.details) lines.push('', spec.details);
  return lines.join('\n');
}

/** Typed getters that turn missing required options into clear errors. */
export function str(a: ParsedArgs, name: string): string {
  const v = a.options[name];
  if (v === undefined || v === '') throw new UserError(`missing required option --${name}`);
  return String(v);
}

export function num(a: ParsedArgs, name: string): number {
  const v = a.options[name];
  if (typeof v !== 'number') throw new UserError(`missing required option --${name}`);
  return v;
}

export function bool(a: ParsedArgs, name: string): boolean {
  return a.options[name] === true;
}
