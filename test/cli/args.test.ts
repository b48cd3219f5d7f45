/** The shared option parser (src/cli/args.ts) in process: ranges, strict numbers, subcommand options, aliases. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHelp, parseArgs, type CommandSpec } from '../../src/cli/args.js';
import { UserError } from '../../src/cli/errors.js';

const spec: CommandSpec = {
  name: 'x',
  summary: 's',
  usage: 'u',
  options: {
    n: { type: 'int', help: 'n', default: 3, min: 1, max: 10 },
    lr: { type: 'number', help: 'lr', default: 0.1, above: 0, max: 1 },
    model: { type: 'string', help: 'm', aliases: ['in'], subs: ['a'] },
    flag: { type: 'boolean', help: 'f', subs: ['b'] },
  },
  subcommands: { a: { summary: 'A', usage: 'x a', run: () => 0 }, b: { summary: 'B', usage: 'x b', run: () => 0 } },
};

const fails = (argv: string[], re: RegExp, sub?: string): void => assert.throws(() => parseArgs(argv, spec, sub, () => {}), (e: unknown) => e instanceof UserError && re.test(e.message));

test('integers are decimal integers inside their range; numbers are finite decimals inside theirs', () => {
  assert.equal(parseArgs(['--n', '7'], spec, 'a').options.n, 7);
  assert.equal(parseArgs(['--n=+10'], spec, 'a').options.n, 10);
  for (const bad of ['0x10', '1.5', '1e1', 'abc', '', ' ', '0b1', 'Infinity']) fails(['--n', bad], /--n expects an integer in \[1, 10\]/, 'a');
  fails(['--n', '0'], /--n must be an integer in \[1, 10\], got 0/, 'a');
  fails(['--n', '11'], /got 11/, 'a');
  // the value as typed, not as a double prints it (was 'got 100000000000000000000', 'got 9007199254740992', 'got Infinity')
  fails(['--n', '99999999999999999999'], /got 99999999999999999999$/, 'a');
  fails(['--n', '9007199254740993'], /got 9007199254740993$/, 'a');
  fails(['--lr', '1e400'], /got 1e400$/, 'a');
  assert.equal(parseArgs(['--lr', '1e-3'], spec, 'a').options.lr, 0.001);
  assert.equal(parseArgs(['--lr', '.5'], spec, 'a').options.lr, 0.5);
  fails(['--lr', '0'], /--lr must be a number in \(0, 1\], got 0/, 'a');
  for (const bad of ['NaN', '0x1', '1/2', '-Infinity']) fails(['--lr', bad], /--lr expects a number in \(0, 1\]/, 'a');
});

test('a subcommand knows only its options; old names map with a note; defaults are kept', () => {
  const notes: string[] = [];
  const a = parseArgs(['--in', 'dir'], spec, 'a', (s) => notes.push(s));
  assert.equal(a.options.model, 'dir');
  assert.deepEqual(notes, ['tfree x a: --in is deprecated; use --model']);
  assert.equal(a.options.n, 3);
  fails(['--flag'], /--flag does not apply to "tfree x a" \(it is an option of tfree x b\)/, 'a');
  fails(['--model', 'd'], /--model does not apply to "tfree x b"/, 'b');
  fails(['--nope'], /unknown option --nope for "tfree x b"/, 'b');
  assert.equal(parseArgs(['--no-flag'], spec, 'b').options.flag, false);
  assert.ok(parseArgs(['--n', '2'], spec, 'b').given?.has('n'));
});

test('help of one subcommand lists only its options', () => {
  const h = formatHelp(spec, 'b');
  assert.match(h, /^tfree x b: B/);
  assert.match(h, /--flag/);
  assert.doesNotMatch(h, /--model/);
  assert.match(formatHelp(spec), /subcommands/);
});

test('a stray argument is refused unless the command takes positionals; a value after a switch gets a hint', () => {
  fails(['extra'], /^unexpected argument "extra"; see tfree x a --help$/, 'a');
  fails(['--flag', 'false'], /unexpected argument "false" \(--flag is a switch and takes no value; use --no-flag to turn it off\)/, 'b');
  fails(['--', 'p'], /unexpected argument "p"/, 'b');
  // the hint names the switch before the stray word, not an earlier option whose value reads the same
  fails(['--n', '4', '--flag', '4'], /unexpected argument "4" \(--flag is a switch/, 'b');
  const withFiles: CommandSpec = { ...spec, subcommands: { ...spec.subcommands, a: { summary: 'A', usage: 'x a FILE...', positionals: 'FILE...', run: () => 0 } } };
  assert.deepEqual(parseArgs(['f1', '--n', '4', 'f2'], withFiles, 'a').positionals, ['f1', 'f2']);
  fails(['f1'], /unexpected argument "f1"/, 'b');
  const top: CommandSpec = { name: 'y', summary: 's', usage: 'u', options: { json: { type: 'boolean', help: 'j' } } };
  assert.throws(() => parseArgs(['--json', 'yes'], top, undefined, () => {}), /unexpected argument "yes" \(--json is a switch/);
  assert.deepEqual(parseArgs(['a', 'b'], { ...top, positionals: 'WORD...' }).positionals, ['a', 'b']);
});

test('a string option with choices takes one of them, in any case, and keeps the listed spelling', () => {
  const c: CommandSpec = { name: 'z', summary: 's', usage: 'u', options: { kind: { type: 'string', help: 'k', default: 'bf16', choices: ['bf16', 'f16'] } } };
  assert.equal(parseArgs(['--kind', 'F16'], c).options.kind, 'f16');
  assert.equal(parseArgs([], c).options.kind, 'bf16');
  assert.throws(() => parseArgs(['--kind=f32'], c), /^UserError: --kind must be one of bf16, f16; got "f32"$|--kind must be one of bf16, f16; got "f32"/);
});
