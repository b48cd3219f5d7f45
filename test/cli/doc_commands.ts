/**
 * The documented `tfree` command lines of a Markdown file, and their check against the CLI's own
 * command table (src/cli/main.ts `commands`, the options of src/cli/args.ts): the command and
 * subcommand exist, every flag is one that (sub)command knows, and a flag that takes a value has one.
 * Nothing runs: a line is parsed, not executed.
 *
 * A command line is a line (or backslash-continued lines, or the indented `[--flag ...]`
 * continuation lines of a usage block) of a fenced code block, or an inline code span, that invokes
 * `tfree`, `npx tfree` or `node .../dist/src/cli/main.js` (after environment assignments and
 * `/usr/bin/time`). The usage notation of the docs is understood: `[--opt X]` and `(--a X | --b Y)`
 * groups, alternatives `dtm|sweep|plan`, `generate/eval` and `dtm | sweep`, `...` for elided
 * arguments, and placeholders (DIR, FILE, N, `P,..`) as values. An inline span may end with a bare
 * flag that takes a value: it names the option (`tfree prune --plan`) rather than running it.
 */
import { optionsFor, parseArgs, type CommandSpec, type OptionSpec } from '../../src/cli/args.js';
import { commands } from '../../src/cli/main.js';

export interface DocCommand {
  file: string;
  line: number;
  /** the command line as written (continuations joined) */
  text: string;
  /** the arguments after `tfree` (shell words; quotes removed) */
  args: string[];
  /** from an inline code span (not a code block) */
  inline: boolean;
}

export interface CheckResult {
  /** the command position is a placeholder (`tfree CMD --help`, `tfree ...`): nothing to check */
  skipped: boolean;
  problems: string[];
}

interface Token {
  text: string;
  /** a shell operator (|, &&, ;, &, redirections) standing alone */
  op: boolean;
}

const OPERATOR = /^(\|\||&&|\||;|&|\d?>>?(&\d)?|<)$/;
const REDIRECT = /^(\d?>>?|<)\S/;

/** Shell-like words: quotes group and are removed, `\x` escapes, standalone operators are marked. */
function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let cur = '';
  let has = false;
  let quoted = false;
  const flush = (): void => {
    if (has) out.push({ text: cur, op: !quoted && (OPERATOR.test(cur) || REDIRECT.test(cur)) });
    cur = '';
    has = false;
    quoted = false;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"') {
      const end = s.indexOf(c, i + 1);
      const stop = end < 0 ? s.length : end;
      cur += s.slice(i + 1, stop);
      has = true;
      quoted = true;
      i = stop;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) flush();
    else {
      cur += c;
      has = true;
    }
  }
  flush();
  return out;
}

/** Words that may precede the program in a documented line. */
const PREFIX = /^([A-Z_][A-Z0-9_]*=\S*|time|\/usr\/bin\/time|-v|do|then|\$)$/;
const MAIN_JS = /(^|\/)dist\/src\/cli\/main\.js$/;

/**
 * The arguments of the `tfree` invocation that starts a shell segment, or undefined: also when
 * nothing follows the program (`tfree` names the package) or its first word ends with a colon
 * (`tfree kg: training diverged ...` quotes a message).
 */
function invocation(tokens: Token[]): string[] | undefined {
  const args = (from: number): string[] | undefined => {
    const first = tokens[from];
    if (first === undefined || first.op || first.text.endsWith(':')) return undefined;
    return tokens.slice(from).map((x) => (x.op ? `\u0000${x.text}` : x.text));
  };
  for (let i = 0; i < tokens.length && !tokens[i].op; i++) {
    const t = tokens[i].text;
    if (t === 'tfree') return args(i + 1);
    if (t === 'npx' && tokens[i + 1]?.text === 'tfree') continue;
    if (t === 'node' && MAIN_JS.test(tokens[i + 1]?.text ?? '')) return args(i + 2);
    if (!PREFIX.test(t)) return undefined;
  }
  return undefined;
}

/**
 * The tfree invocation of one shell line: the first segment (the line's start, or after an
 * operator) that starts with one. Its arguments keep the operators after it (marked with a NUL),
 * since a `|` may be usage notation; checkCommand ends the arguments at a real operator.
 */
function invocationOf(line: string): string[] | undefined {
  const tokens = tokenize(line);
  for (let start = 0; start < tokens.length; start++) {
    if (start > 0 && !tokens[start - 1].op) continue;
    const args = invocation(tokens.slice(start));
    if (args !== undefined) return args;
  }
  return undefined;
}

/** Removes a trailing shell comment (` # ...` outside quotes). */
function stripComment(line: string): string {
  let q: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q !== undefined) {
      if (c === q) q = undefined;
    } else if (c === "'" || c === '"') q = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** Every documented tfree command line of one Markdown text. */
export function extractCommands(file: string, text: string): DocCommand[] {
  const lines = text.split('\n');
  const out: DocCommand[] = [];
  const prose: string[] = [];
  let fence: string | undefined;
  // code blocks: logical lines (backslash continuations; indented option lines of a usage block)
  let pending: { line: number; text: string } | undefined;
  let lastWasTfree = false;
  const emit = (): void => {
    if (pending === undefined) return;
    const args = invocationOf(pending.text);
    if (args !== undefined) out.push({ file, line: pending.line, text: pending.text.trim(), args, inline: false });
    pending = undefined;
  };
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n];
    const f = /^\s*(```+|~~~+)/.exec(raw);
    if (f !== null && (fence === undefined || raw.trim().startsWith(fence))) {
      if (fence === undefined) fence = f[1];
      else {
        emit();
        fence = undefined;
        lastWasTfree = false;
      }
      prose.push('');
      continue;
    }
    if (fence === undefined) {
      prose.push(raw);
      continue;
    }
    prose.push('');
    const code = stripComment(raw);
    if (pending !== undefined && pending.text.endsWith('\\')) {
      pending.text = `${pending.text.slice(0, -1)} ${code.trim()}`;
      continue;
    }
    if (pending !== undefined && lastWasTfree && /^\s+(\[|\(|--)/.test(code)) {
      pending.text = `${pending.text} ${code.trim()}`;
      continue;
    }
    emit();
    if (code.trim() === '') {
      lastWasTfree = false;
      continue;
    }
    pending = { line: n + 1, text: code.trimEnd() };
    lastWasTfree = invocationOf(pending.text.replace(/\\$/, '')) !== undefined;
  }
  emit();
  // inline code spans, per paragraph (a span may cross a line break)
  let para: { start: number; text: string[] } = { start: 0, text: [] };
  const flushPara = (): void => {
    const joined = para.text.join('\n');
    const re = /(`+)([\s\S]*?[^`])\1(?!`)/g;
    for (let m = re.exec(joined); m !== null; m = re.exec(joined)) {
      const span = m[2].replace(/\n/g, ' ').replace(/\\\|/g, '|').trim();
      const line = para.start + joined.slice(0, m.index).split('\n').length;
      const args = invocationOf(span);
      if (args !== undefined) out.push({ file, line, text: span, args, inline: true });
    }
    para = { start: 0, text: [] };
  };
  for (let n = 0; n < prose.length; n++) {
    if (prose[n].trim() === '') {
      flushPara();
      continue;
    }
    if (para.text.length === 0) para.start = n;
    para.text.push(prose[n]);
  }
  flushPara();
  return out.sort((a, b) => a.line - b.line);
}

const PLACEHOLDER_WORD = /^(<[^>]*>|[A-Z][A-Z0-9_]*)$/;
const ELLIPSIS = /^\.{2,3}$|^…$/;
const INT_VALUE = /^[+-]?\d+$/;
const NUM_VALUE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A placeholder value: DIR, FILE, N, `P,..`, `$act`, `<file>`, `YYYY-MM-DD|ID`, ... */
function isPlaceholder(v: string): boolean {
  return /^[A-Z]/.test(v) || v.startsWith('$') || v.startsWith('<') || v.includes('..') || ELLIPSIS.test(v);
}

/** Splits `a|b`, `a/b` into alternatives (a name position). */
function alternatives(word: string): string[] {
  return word.split(/[|/]/).filter((x) => x !== '');
}

/** The word without its notation brackets: `[--bytes]`, `(--head`, `NAME)`. */
function unbracket(word: string): string {
  return word.replace(/^[[(]+/, '').replace(/[\])]+$/, '');
}

/** Checks a value given to --name (of type number/int/boolean) with the CLI's own parser. */
function valueProblem(name: string, spec: OptionSpec, cmd: CommandSpec, sub: string | undefined, value: string): string | undefined {
  if (spec.type === 'string' && spec.choices === undefined) return undefined;
  const values = value.split('|');
  for (const v of values) {
    if (isPlaceholder(v)) continue;
    if (spec.type !== 'boolean' && spec.type !== 'string' && !(spec.type === 'int' ? INT_VALUE : NUM_VALUE).test(v)) return `--${name} takes ${spec.type === 'int' ? 'an integer' : 'a number'}, got "${v}"`;
    try {
      parseArgs([`--${name}=${v}`], cmd, sub, () => undefined);
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  }
  return undefined;
}

/** Checks one documented command line against the CLI's command table. */
export function checkCommand(doc: DocCommand, table: readonly CommandSpec[] = commands): CheckResult {
  const problems: string[] = [];
  // notation brackets go; a `|` standing alone is notation when an alternative follows (a flag, or a
  // subcommand of the command: `eval dtm | sweep`), else a pipe that ends the command (`| head -c 5`)
  const subNames = new Set<string>();
  for (const name of alternatives(unbracket(doc.args[0] ?? ''))) for (const s of Object.keys(table.find((x) => x.name === name)?.subcommands ?? {})) subNames.add(s);
  const words: string[] = [];
  for (let i = 0; i < doc.args.length; i++) {
    const raw = doc.args[i];
    if (raw.startsWith('\u0000')) {
      const next = unbracket(doc.args[i + 1] ?? '');
      if (raw === '\u0000|' && (next.startsWith('--') || subNames.has(next))) {
        words.push('|');
        continue;
      }
      break;
    }
    const w = unbracket(raw);
    if (w !== '') words.push(w);
  }
  let i = 0;
  const first = words[i];
  if (first === undefined) return { skipped: false, problems };
  if (['--help', '-h', 'help', '--version', '-v'].includes(first)) return { skipped: false, problems: words.length > 1 && first !== 'help' ? [`nothing may follow ${first}`] : [] };
  if (PLACEHOLDER_WORD.test(first) || ELLIPSIS.test(first)) return { skipped: true, problems };
  i++;
  const cmds: CommandSpec[] = [];
  for (const name of alternatives(first)) {
    const c = table.find((x) => x.name === name);
    if (c === undefined) problems.push(`unknown command "${name}"`);
    else cmds.push(c);
  }
  // subcommand position: `train`, `dtm|sweep`, `dtm | sweep | plan`
  const subWords: string[] = [];
  const hasSubs = cmds.some((c) => c.subcommands !== undefined);
  if (hasSubs) {
    while (i < words.length && !words[i].startsWith('-') && !ELLIPSIS.test(words[i])) {
      if (words[i] !== '|') subWords.push(...alternatives(words[i]));
      i++;
      if (words[i] !== '|') break;
    }
  }
  const rest = words.slice(i).filter((w) => w !== '|');
  for (const cmd of cmds) {
    const subs: (string | undefined)[] = [];
    if (cmd.subcommands === undefined) subs.push(undefined);
    else if (subWords.length === 0) subs.push(cmd.defaultSubcommand);
    else
      for (const s of subWords) {
        if (PLACEHOLDER_WORD.test(s)) subs.push(undefined);
        else if (!Object.prototype.hasOwnProperty.call(cmd.subcommands, s)) problems.push(`unknown subcommand "${cmd.name} ${s}"`);
        else subs.push(s);
      }
    for (const sub of subs) problems.push(...flagProblems(doc, cmd, sub, rest));
  }
  return { skipped: false, problems: [...new Set(problems)] };
}

/** The flags of `words` against the options of `cmd` (of subcommand `sub`; all options when undefined). */
function flagProblems(doc: DocCommand, cmd: CommandSpec, sub: string | undefined, words: string[]): string[] {
  const problems: string[] = [];
  const label = sub === undefined ? cmd.name : `${cmd.name} ${sub}`;
  const opts = optionsFor(cmd, sub);
  const alias = new Map<string, string>();
  for (const [k, s] of Object.entries(opts)) for (const a of s.aliases ?? []) alias.set(a, k);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '--help' || w === '-h' || ELLIPSIS.test(w) || w === '--') continue;
    if (!w.startsWith('-')) continue;
    if (!w.startsWith('--')) {
      if (!NUM_VALUE.test(w)) problems.push(`tfree ${label}: "${w}" is no option (options are --name)`);
      continue;
    }
    const eq = w.indexOf('=');
    const name = eq >= 0 ? w.slice(2, eq) : w.slice(2);
    let spec = opts[name];
    if (spec === undefined && alias.has(name)) {
      problems.push(`tfree ${label}: --${name} is an old name; write --${alias.get(name) ?? ''}`);
      continue;
    }
    if (spec === undefined && name.startsWith('no-') && eq < 0 && opts[name.slice(3)]?.type === 'boolean') continue;
    if (spec === undefined) {
      problems.push(`tfree ${label}: unknown option --${name}`);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = w.slice(eq + 1);
    else if (spec.type !== 'boolean') {
      const next = words[i + 1];
      if (next === undefined || (next.startsWith('--') && !ELLIPSIS.test(next))) {
        if (!(doc.inline && next === undefined)) problems.push(`tfree ${label}: --${name} needs a value`);
        continue;
      }
      value = next;
      i++;
    }
    spec = opts[name];
    const bad = value === undefined ? undefined : valueProblem(name, spec, cmd, sub, value);
    if (bad !== undefined) problems.push(`tfree ${label}: ${bad}`);
  }
  return problems;
}
