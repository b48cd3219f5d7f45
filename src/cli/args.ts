/**
 * A small, strict command-line parser: `--name value`, `--name=value`, boolean `--flag` /
 * `--no-flag`, repeated options, and positionals. Unknown options are errors that name the
 * option and list the known ones.
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
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** extra help text after the options */
  details?: string;
  options: Record<string, OptionSpec>;
  run(args: ParsedArgs): Promise<number | void> | number | void;
}

export interface ParsedArgs {
  options: Record<string, string | number | boolean | undefined>;
  positionals: string[];
}

function convert(name: string, spec: OptionSpec, raw: string): string | number | boolean {
  switch (spec.type) {
    case 'string':
      return raw;
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new UserError(`--${name} expects true or false, got "${raw}"`);
    case 'number': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UserError(`--${name} expects a number, got "${raw}"`);
      return v;
    }
    case 'int': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isInteger(v)) throw new UserError(`--${name} expects an integer, got "${raw}"`);
      return v;
    }
  }
}

export function parseArgs(argv: readonly string[], spec: CommandSpec): ParsedArgs {
  const options: ParsedArgs['options'] = {};
  const positionals: string[] = [];
  for (const [k, s] of Object.entries(spec.options)) options[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '--') {
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
    let s = spec.options[name];
    if (s === undefined && name.startsWith('no-') && spec.options[name.slice(3)]?.type === 'boolean' && value === undefined) {
      options[name.slice(3)] = false;
      continue;
    }
    if (s === undefined) {
      const known = Object.keys(spec.options).map((k) => `--${k}`).join(', ');
      throw new UserError(`unknown option --${name} for "tfree ${spec.name}"${known ? ` (known: ${known})` : ''}; see tfree ${spec.name} --help`);
    }
    if (s.type === 'boolean' && value === undefined) {
      options[name] = true;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UserError(`--${name} needs a value`);
      value = argv[++i];
    }
    s = spec.options[name];
    options[name] = convert(name, s, value);
  }
  return { options, positionals };
}

export function formatHelp(spec: CommandSpec): string {
  const lines = [`tfree ${spec.name}: ${spec.summary}`, '', `usage: ${spec.usage}`];
  const opts = Object.entries(spec.options);
  if (opts.length > 0) {
    lines.push('', 'options:');
    const left = opts.map(([k, s]) => `  --${k}${s.type === 'boolean' ? '' : ` ${s.meta ?? s.type.toUpperCase()}`}`);
    const w = Math.max(...left.map((l) => l.length)) + 2;
    opts.forEach(([, s], i) => {
      const def = s.default !== undefined ? ` (default: ${String(s.default)})` : '';
      lines.push(`${left[i].padEnd(w)}${s.help}${def}`);
    });
  }
  lines.push('  --help  show this help');
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
