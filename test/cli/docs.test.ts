/**
 * Every documented command line works as written: each `tfree ...` line of README.md and
 * docs/**\/*.md (code blocks and inline code) names a command and subcommand the CLI has, and only
 * flags that (sub)command knows, with a value where the flag takes one (doc_commands.ts says what
 * counts and the notation it understands). Nothing runs; the docs are parsed against the CLI's own
 * command table (src/cli/main.ts `commands`).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { optionsFor } from '../../src/cli/args.js';
import { commands } from '../../src/cli/main.js';
import { checkCommand, extractCommands, type DocCommand } from './doc_commands.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function markdown(dir: string, out: string[]): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) markdown(p, out);
    else if (e.name.endsWith('.md')) out.push(p);
  }
  return out;
}

function documented(): DocCommand[] {
  const files = [join(root, 'README.md'), ...markdown(join(root, 'docs'), []).sort()];
  return files.flatMap((f) => extractCommands(relative(root, f), fs.readFileSync(f, 'utf8')));
}

/**
 * Lines the docs show as refused by the parser (an example of an error): they must still be refused,
 * else the doc's example is wrong.
 */
const REFUSED: { file: string; text: string; problem: RegExp }[] = [
  { file: 'docs/cli.md', text: 'tfree eval bpb --compressed X', problem: /tfree eval bpb: unknown option --compressed/ },
];

test('every documented tfree command line parses: known command, subcommand and flags, values given', (t) => {
  const docs = documented();
  const bad: string[] = [];
  let checked = 0;
  const refused = new Set<string>();
  for (const d of docs) {
    const r = checkCommand(d);
    if (!r.skipped) checked++;
    const shown = REFUSED.find((x) => x.file === d.file && x.text === d.text);
    if (shown !== undefined) {
      assert.ok(r.problems.some((p) => shown.problem.test(p)), `${d.file}:${d.line}: the docs show "${d.text}" refused, but it parses (${r.problems.join('; ')})`);
      refused.add(`${d.file}: ${d.text}`);
      continue;
    }
    for (const p of r.problems) bad.push(`${d.file}:${d.line}: ${p}\n    ${d.text}`);
  }
  // TFREE_DOC_COMMANDS=1 lists every command line found
  if (process.env.TFREE_DOC_COMMANDS === '1') for (const d of docs) t.diagnostic(`${d.file}:${d.line}: ${d.inline ? 'inline' : 'block '} ${d.args.join(' ')}`);
  assert.deepEqual(bad, [], `documented command lines that do not parse:\n${bad.join('\n')}`);
  assert.deepEqual([...refused].sort(), REFUSED.map((x) => `${x.file}: ${x.text}`).sort(), 'every listed refusal example is still in the docs');
  // a broken extractor that finds few lines must not pass quietly
  assert.ok(checked >= 150, `only ${checked} documented command lines found`);
  const blocks = docs.filter((d) => !d.inline).length;
  t.diagnostic(`${checked} documented command lines checked (${blocks} in code blocks, ${docs.length - blocks} inline; ${docs.length - checked} with a placeholder command skipped)`);
});

test('the usage lines of every --help parse the same way', () => {
  let n = 0;
  for (const c of commands) {
    for (const [where, usage] of [[c.name, c.usage], ...Object.entries(c.subcommands ?? {}).map(([k, s]) => [`${c.name} ${k}`, s.usage])]) {
      const found = extractCommands(`tfree ${where} --help`, `\`\`\`\n${usage}\n\`\`\`\n`);
      assert.ok(found.length >= 1, `tfree ${where} --help: no command line in its usage "${usage}"`);
      for (const d of found) {
        n++;
        assert.deepEqual(checkCommand(d).problems, [], `tfree ${where} --help: usage "${d.text}"`);
      }
    }
  }
  assert.ok(n >= commands.length);
});

/** One Markdown text through the extractor and the checker: the problems of each command line found. */
function problemsOf(md: string): string[][] {
  return extractCommands('t.md', md).map((d) => checkCommand(d).problems);
}

test('the checker refuses what the CLI refuses: unknown commands, subcommands and flags, flags of another subcommand, old names, missing and bad values', () => {
  const block = (line: string): string => `\`\`\`sh\n${line}\n\`\`\`\n`;
  const one = (md: string, re: RegExp): void => {
    const p = problemsOf(md);
    assert.equal(p.length, 1, `one command line in ${md}`);
    assert.ok(p[0].some((x) => re.test(x)), `${md}: ${JSON.stringify(p[0])} should match ${re}`);
  };
  one(block('npx tfree train --data X --out DIR --bogus 1'), /tfree train: unknown option --bogus/);
  one(block('npx tfree trian --data X'), /unknown command "trian"/);
  one(block('npx tfree eval bpx --data X'), /unknown subcommand "eval bpx"/);
  one(block('npx tfree kg train|evall ...'), /unknown subcommand "kg evall"/);
  one(block('tfree eval bpb --compressed DIR'), /tfree eval bpb: unknown option --compressed/);
  one(block('tfree quantize --in DIR --out DIR --format int8'), /--in is an old name; write --model/);
  one(block('tfree generate --prompt'), /--prompt needs a value/);
  one(block('tfree train --data X --steps 1.5'), /--steps takes an integer, got "1.5"/);
  one(block('tfree train --data X --steps 0'), /--steps must be an integer >= 1/);
  one(block('TFREE_THREADS=2 /usr/bin/time -v node dist/src/cli/main.js serve --prot 8080 &'), /unknown option --prot/);
  // usage notation: an indented continuation line, brackets, groups, alternatives
  one('```\ntfree chat [--model DIR]\n           [--greedy] [--bogus N]\n```\n', /unknown option --bogus/);
  one(block('tfree kg query (--head NAME | --taill NAME) --relation R --date D'), /unknown option --taill/);
  one(block('tfree prune --sparsity 0.5 \\\n  --bogus'), /unknown option --bogus/);
  one('Run `tfree generate --model DIR --seed S --topk 5` to see.\n', /unknown option --topk/);
  one('A span across lines: `tfree generate --model DIR\n--bogus`.\n', /unknown option --bogus/);
  // what is fine
  for (const ok of [
    block('npx tfree --help'),
    block('tfree generate --prompt "The jury said" --max-bytes N --seed S   # a comment --bogus'),
    block('tfree generate ... | head -c 5'),
    block('tfree eval dtm|sweep|plan|compare ...'),
    block('tfree llama generate --model DIR --prompt T --no-cache'),
    block('tfree quantize --format kmeans4 --model DIR --out DIR [--include P,..] [--seed S]'),
    block('TFREE_THREADS=1 TFREE_PACKED_ACT=$act npx tfree eval dtm --model M --compressed C --prompts P --json >> log.jsonl'),
    'Inline names an option: `tfree prune --plan`, `tfree eval dtm | sweep | plan`, `tfree generate/eval --model DIR`.\n',
  ]) {
    const p = problemsOf(ok);
    assert.ok(p.length >= 1, `a command line in ${ok}`);
    assert.deepEqual(p.flat(), [], ok);
  }
  // not command lines: the package name, messages, imports, a bare mention in prose
  for (const none of ['`tfree`, `tfree/io`\n', '`tfree kg: training diverged`\n', block("import { x } from 'tfree/hat';"), 'tfree serve answers clients\n']) {
    assert.deepEqual(problemsOf(none), [], none);
    assert.equal(extractCommands('t.md', none).length, 0, none);
  }
  // a placeholder command is skipped, not checked
  assert.equal(checkCommand(extractCommands('t.md', '`tfree CMD --help`\n')[0]).skipped, true);
  assert.equal(checkCommand(extractCommands('t.md', '`tfree ...`\n')[0]).skipped, true);
});

/**
 * The (command, subcommand) pairs a cell of docs/cli.md's tables names for the option --name (of
 * that name, or an old name when `alias`): `generate, eval (all; ...), kg eval/export, folder:
 * train, ...`; a command named without a subcommand stands for its subcommands that take the option
 * (at least one). Parenthesised notes go, except that `serve (`temperature`)` names a request
 * field, not a flag.
 */
function namedPairs(cell: string, name: string, alias: boolean): { pairs: string[]; fields: string[] } {
  const pairs: string[] = [];
  const fields: string[] = [];
  for (const raw of cell.replace(/^(folder|file):\s*/, '').replace(/;\s*(folder|file):\s*/g, ', ').split(',')) {
    const item = raw.trim();
    const field = /^([\w-]+) \(`\w+`\)$/.exec(item);
    if (field !== null) {
      fields.push(field[1]);
      continue;
    }
    const [cmd, subs] = item.replace(/\(.*\)/, '').trim().split(/\s+/);
    const spec = commands.find((c) => c.name === cmd);
    assert.ok(spec !== undefined, `docs/cli.md names "${cmd}" (in "${cell}"), no such command`);
    if (subs === undefined && spec.subcommands !== undefined) {
      const taking = pairsWith(name, alias).filter((p) => p.startsWith(`${cmd} `));
      assert.ok(taking.length > 0, `docs/cli.md names "${cmd}" for --${name}, and none of its subcommands takes it`);
      pairs.push(...taking);
    } else if (subs === undefined) pairs.push(cmd);
    else for (const s of subs.split('/')) pairs.push(`${cmd} ${s}`);
  }
  return { pairs, fields };
}

/** The (command, subcommand) pairs whose parser knows --name (as itself, or as an old name when `alias`). */
function pairsWith(name: string, alias: boolean): string[] {
  const out: string[] = [];
  for (const c of commands) {
    for (const s of c.subcommands !== undefined ? Object.keys(c.subcommands) : [undefined]) {
      const opts = optionsFor(c, s);
      const has = alias ? Object.values(opts).some((o) => (o.aliases ?? []).includes(name)) : opts[name] !== undefined;
      if (has) out.push(s === undefined ? c.name : `${c.name} ${s}`);
    }
  }
  return out;
}

function tableRows(md: string, heading: string): string[][] {
  const section = md.slice(md.indexOf(`\n## ${heading}\n`));
  assert.ok(section.length < md.length, `docs/cli.md has a "## ${heading}" section`);
  const rows: string[][] = [];
  for (const line of section.split('\n').slice(2)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('| `')) continue;
    rows.push(line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

test("docs/cli.md's tables name exactly the commands that take each shared flag and each old name", () => {
  const md = fs.readFileSync(join(root, 'docs/cli.md'), 'utf8');
  const shared = tableRows(md, 'Flags that mean the same everywhere');
  assert.ok(shared.length >= 10, 'the shared-flags table');
  for (const [flag, , cell] of shared) {
    const name = /^`--([\w-]+)/.exec(flag)?.[1];
    assert.ok(name !== undefined, flag);
    if (/^(most|all)\b/.test(cell)) continue;
    const { pairs, fields } = namedPairs(cell, name, false);
    assert.deepEqual([...new Set(pairs)].sort(), pairsWith(name, false).sort(), `docs/cli.md: the commands of --${name}`);
    for (const f of fields) assert.ok(pairsWith(name, false).every((p) => !p.startsWith(`${f}`)), `--${name}: ${f} is named as a request field, yet takes the flag`);
  }
  const old = tableRows(md, 'Old names');
  const seen = new Set<string>();
  for (const [from, to, cell] of old) {
    const name = /^`--([\w-]+)/.exec(from)?.[1];
    const target = /^`--([\w-]+)/.exec(to)?.[1];
    assert.ok(name !== undefined && target !== undefined, `${from} | ${to}`);
    const { pairs } = namedPairs(cell.replace(/\(.*\)/, ''), name, true);
    const where = pairsWith(name, true).filter((p) => {
      const [c, s] = p.split(' ');
      return commands.some((x) => x.name === c && optionsFor(x, s)[target]?.aliases?.includes(name) === true);
    });
    assert.deepEqual([...new Set(pairs)].sort(), where.sort(), `docs/cli.md: the commands where --${name} is an old name of --${target}`);
    seen.add(`${name}>${target}`);
  }
  // every old name of the CLI has its row
  for (const c of commands) for (const [k, o] of Object.entries(c.options)) for (const a of o.aliases ?? []) assert.ok(seen.has(`${a}>${k}`), `docs/cli.md's old names table lacks --${a} (tfree ${c.name} --${k})`);
});

test('every option with choices has its default among them', () => {
  let n = 0;
  for (const c of commands)
    for (const [k, s] of Object.entries(c.options)) {
      if (s.choices === undefined) continue;
      n++;
      assert.equal(s.type, 'string', `tfree ${c.name} --${k}: choices on a ${s.type} option`);
      if (s.default !== undefined) assert.ok(s.choices.includes(String(s.default)), `tfree ${c.name} --${k}: default "${String(s.default)}" not among ${s.choices.join(', ')}`);
    }
  assert.ok(n >= 10, `only ${n} options with choices`);
});
