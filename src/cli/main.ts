#!/usr/bin/env node
/**
 * The `tfree` command line. Each command lives in `commands/` as a CommandSpec; this file only
 * dispatches, prints help, and turns user mistakes (UserError) into one-line messages.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatHelp, parseArgs, type CommandSpec } from './args.js';
import { UserError } from './errors.js';
import { defaultPackedAct, defaultPackedLut } from '../compress/packed_linear.js';
import { isaEnvError } from '../tensor/index.js';
import { chatCommand } from './commands/chat.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { generateCommand } from './commands/generate.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import { kgCommand } from './commands/kg.js';
import { llamaCommand } from './commands/llama.js';
import { pruneCommand } from './commands/prune.js';
import { quantizeCommand } from './commands/quantize.js';
import { serveCommand } from './commands/serve.js';
import { splitCommand } from './commands/split.js';
import { synthModelCommand } from './commands/synth_model.js';
import { trainCommand } from './commands/train.js';

export const commands: CommandSpec[] = [
  demoCommand,
  infoCommand,
  inspectCommand,
  splitCommand,
  trainCommand,
  generateCommand,
  chatCommand,
  evalCommand,
  quantizeCommand,
  pruneCommand,
  llamaCommand,
  convertCommand,
  exportCommand,
  kgCommand,
  serveCommand,
  synthModelCommand,
];

function topHelp(): string {
  const w = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'tfree: tokenizer-free language models, compression and divergent-token evaluation',
    '',
    'usage: tfree <command> [options]     (tfree <command> --help for its options)',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
    '',
    'environment:',
    '  TFREE_BACKEND=native|js   kernels to use (default: native when the addon is built)',
    '  TFREE_THREADS=N           threads of the native kernels (default: all cores)',
    '  TFREE_ISA=generic|avx2|avx512|neon  cap the native kernel path (default: the best this CPU has; see tfree info)',
  ].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${topHelp()}\n`);
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write('tfree 0.1.0\n');
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (cmd === undefined) {
    process.stderr.write(`tfree: unknown command "${name}"; commands: ${commands.map((c) => c.name).join(', ')} (see tfree --help)\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${formatHelp(cmd)}\n`);
    return 0;
  }
  try {
    checkEnvironment();
    const code = await cmd.run(parseArgs(rest, cmd));
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(`tfree ${cmd.name}: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}

/** A bad value in a tfree environment variable is the user's mistake: one line, before any work. */
function checkEnvironment(): void {
  try {
    defaultPackedAct();
    defaultPackedLut();
  } catch (e) {
    throw new UserError(e instanceof Error ? e.message : String(e));
  }
  const isa = isaEnvError();
  if (isa !== undefined) throw new UserError(isa);
}

function isEntry(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`tfree: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 70;
    },
  );
}
