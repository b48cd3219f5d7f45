/**
 * The shared argument parser through the real binary: every option declared with its range,
 * options of other subcommands refused, old names accepted with a note, environment checked,
 * subcommand help and errors (issue 16 items 3, 6, 12, 15, 20).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseArgs, type CommandSpec } from '../../src/cli/args.js';
import { commands } from '../../src/cli/main.js';
import { SAMPLING_DEFAULTS } from '../../src/nn/index.js';
import { errLines, tfree } from './run.js';

const root = fs.mkdtempSync(join(tmpdir(), 'tfree-flags-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const text = join(root, 't.txt');
fs.writeFileSync(text, 'some text to train on. '.repeat(20));

function oneLine(args: string[], re: RegExp, env: Record<string, string> = {}): void {
  const r = tfree(args, { env });
  assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.err}`);
  const lines = errLines(r.err);
  assert.equal(lines.length, 1, `${args.join(' ')}: ${r.err}`);
  assert.match(lines[0], re, args.join(' '));
}

test('numeric flags: non-decimal, fractional and out-of-range values are one line, exit 2, before any work', () => {
  const out = join(root, 'o');
  const train = (...a: string[]): string[] => ['train', '--data', text, '--out', out, ...a];
  for (const [args, re] of [
    [train('--steps', '0x10'), /--steps expects an integer >= 1, got "0x10"/],
    [train('--steps', '1.5'), /--steps expects an integer >= 1, got "1.5"/],
    [train('--steps', 'abc'), /--steps expects an integer/],
    [train('--steps', '0'), /--steps must be an integer >= 1, got 0/],
    [train('--steps', '-5'), /--steps must be an integer >= 1, got -5/],
    [train('--batch', '0'), /--batch must be an integer in \[1, 65536\], got 0/],
    [train('--accum', '0'), /--accum must be/],
    [train('--lr', '-1'), /--lr must be a number in \(0, 10\], got -1/],
    [train('--lr', 'Infinity'), /--lr expects a number/],
    [train('--clip', '-1'), /--clip must be a number >= 0/],
    [train('--eval-every', '-1'), /--eval-every must be an integer >= 0/],
    [train('--min-lr-ratio', '5'), /--min-lr-ratio must be a number in \[0, 1\]/],
    [train('--weight-decay', '-3'), /--weight-decay must be/],
    [train('--warmup', '999', '--steps', '2'), /--warmup must be at most --steps \(2\), got 999/],
    [train('--batch', '65536', '--seq-bytes', '100000'), /training with --batch 65536 x --seq-bytes 100000 would need at least .* GiB of memory; this machine has/],
    [['kg', 'train', '--data', root, '--out', join(root, 'k'), '--dim', '100000000'], /--dim must be an integer in \[1, 65536\], got 100000000/],
    [['kg', 'train', '--data', root, '--out', join(root, 'k'), '--negatives', '100000000'], /--negatives must be an integer in \[1, 65536\]/],
    [['generate', '--prompt', 'x', '--top-p', '0'], /--top-p must be a number in \(0, 1\], got 0/],
    [['serve', '--port', '70000'], /--port must be an integer in \[0, 65535\], got 70000/],
    [['split', '--max-word-size', '0'], /--max-word-size must be/],
  ] as [string[], RegExp][]) {
    oneLine(args, re);
  }
  assert.equal(fs.existsSync(out), false, 'nothing written');
});

test('kg train: memory needs are checked against the machine before training', () => {
  const data = join(root, 'kg');
  assert.equal(tfree(['kg', 'synth', '--out', data]).code, 0);
  oneLine(['kg', 'train', '--data', data, '--out', join(root, 'k.safetensors'), '--dim', '65536', '--batch', '1048576', '--negatives', '65536'], /kg train with d=65536, --batch 1048576, --negatives 65536 .* would need at least .* GiB of memory; this machine has/);
});

test('every command rejects options it does not use (eval dtm --compressed for bpb, kg eval --dim, llama generate --vocab-size, ...)', () => {
  oneLine(['eval', 'bpb', '--data', text, '--compressed', root], /--compressed does not apply to "tfree eval bpb" \(it is an option of tfree eval dtm\)/);
  oneLine(['kg', 'eval', '--model', 'x', '--data', root, '--dim', '5'], /--dim does not apply to "tfree kg eval"/);
  oneLine(['kg', 'train', '--data', root, '--out', 'x', '--split', 'test'], /--split does not apply to "tfree kg train"/);
  oneLine(['llama', 'generate', '--model', root, '--prompt', 'x', '--vocab-size', '300'], /--vocab-size does not apply to "tfree llama generate"/);
  oneLine(['demo', 'engine', '--prompt', 'x'], /--prompt does not apply to "tfree demo engine"/);
  oneLine(['generate', '--prompt', 'x', '--bogus', '1'], /unknown option --bogus for "tfree generate"/);
  // in every subcommand-less command and every subcommand, each declared option is known to the parser
  for (const c of commands) {
    const subs: (string | undefined)[] = c.subcommands ? Object.keys(c.subcommands) : [undefined];
    for (const s of subs) {
      const spec: CommandSpec = c;
      assert.doesNotThrow(() => parseArgs([], spec, s), `${c.name} ${s ?? ''}`);
    }
  }
});

test('old option names still work with a one-line deprecation note; one vocabulary for the input model', () => {
  const r = tfree(['quantize', '--in', join(root, 'none'), '--out', join(root, 'q'), '--format', 'int8']);
  assert.equal(r.code, 2);
  const lines = errLines(r.err);
  assert.equal(lines[0], 'tfree quantize: --in is deprecated; use --model');
  assert.match(lines[1], /none/);
  // the input model is --model in every command that reads one
  for (const [c, sub] of [['generate'], ['eval', 'bpb'], ['eval', 'dtm'], ['eval', 'sweep'], ['quantize'], ['prune'], ['train'], ['serve'], ['convert', 'llama-to-hat'], ['llama', 'generate'], ['kg', 'eval'], ['kg', 'export'], ['demo', 'hat']] as [string, string?][]) {
    const h = tfree(sub === undefined ? [c, '--help'] : [c, sub, '--help']);
    assert.equal(h.code, 0);
    assert.match(h.out, /^ {2}--model DIR|^ {2}--model CKPT/m, `${c} ${sub ?? ''}`);
  }
  // one set of sampling defaults
  for (const [c, sub] of [['generate'], ['llama', 'generate'], ['demo', 'hat']] as [string, string?][]) {
    const h = tfree(sub === undefined ? [c, '--help'] : [c, sub, '--help']).out;
    assert.match(h, new RegExp(`--temperature \\S*\\s.*\\(default: ${SAMPLING_DEFAULTS.temperature}\\)`), `${c} ${sub ?? ''}`);
    if (c !== 'demo') assert.match(h, new RegExp(`--top-p .*\\(default: ${SAMPLING_DEFAULTS.topP}\\)`), `${c} ${sub ?? ''}`);
  }
});

test('TFREE_BACKEND and TFREE_THREADS are checked like TFREE_PACKED_ACT: one line, exit 2', () => {
  oneLine(['info'], /^tfree info: TFREE_BACKEND must be native, js or auto, got "cuda"$/, { TFREE_BACKEND: 'cuda' });
  for (const v of ['abc', '-1', '0', '1000', '1.5']) oneLine(['info'], new RegExp(`^tfree info: TFREE_THREADS must be an integer in \\[1, 256\\], got "${v.replace('.', '\\.')}"$`), { TFREE_THREADS: v });
  assert.equal(tfree(['info'], { env: { TFREE_THREADS: '2', TFREE_BACKEND: 'js' } }).code, 0);
});

test('subcommands: unknown -> one line naming them; --help of a subcommand shows only its options', () => {
  oneLine(['kg', 'bogus'], /^tfree kg: unknown subcommand "bogus"; subcommands: train, eval, export, stats, synth, query, pack, curves \(see tfree kg --help\)$/);
  oneLine(['kg'], /^tfree kg: give a subcommand: train, eval, export, stats, synth, query, pack/);
  const h = tfree(['kg', 'train', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.out, /^tfree kg train: /);
  assert.match(h.out, /--negatives/);
  assert.doesNotMatch(h.out, /--split|--limit|subcommands/);
  const ev = tfree(['eval', '--help']).out;
  assert.doesNotMatch(ev, /comparea/);
  assert.match(ev, /^ {2}compare +a model beside/m);
  const dtm = tfree(['eval', 'dtm', '--help']).out;
  assert.match(dtm, /--compressed/);
  assert.doesNotMatch(dtm, /--levels|--budgets/);
});

test('demo engine with fewer --steps than its 20 warmup steps runs (it was an internal error with a stack trace, exit 70)', () => {
  for (const steps of ['1', '3']) {
    const r = tfree(['demo', 'engine', '--steps', steps]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`in ${steps} steps`));
  }
});
