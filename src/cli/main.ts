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
import { hugePagesEnabled, isaEnvError, nativeBackend } from '../tensor/index.js';
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
    ...ENVIRONMENT.map((e) => `  ${`${e.name}=${e.values}`.padEnd(Math.max(...ENVIRONMENT.map((x) => x.name.length + x.values.length)) + 3)}${e.help}`),
  ].join('\n');
}

/** Error codes of the file system that are not a bug: one line, exit 2 (the message names the path or the call). */
const FS_CODES = /^E(NOSPC|DQUOT|ROFS|ACCES|PERM|NOTDIR|ISDIR|NOENT|EXIST|MFILE|NFILE|IO|FBIG)$/;

/** The system error code of an error (also one wrapped by a library error as its cause or named in its message). */
function errCode(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  if ('code' in e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  const inner = e.cause !== undefined ? errCode(e.cause) : undefined;
  if (inner !== undefined) return inner;
  return /\b(ENOSPC|EDQUOT|EROFS|EPIPE)\b/.exec(e.message)?.[1];
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
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  let sub: string | undefined;
  let args = rest;
  let label = cmd.name;
  const subs = cmd.subcommands;
  if (subs !== undefined) {
    const first = rest[0];
    const names = Object.keys(subs).join(', ');
    if (first !== undefined && !first.startsWith('-')) {
      if (!Object.prototype.hasOwnProperty.call(subs, first)) {
        process.stderr.write(`tfree ${cmd.name}: unknown subcommand "${first}"; subcommands: ${names} (see tfree ${cmd.name} --help)\n`);
        return 2;
      }
      sub = first;
      args = rest.slice(1);
      label = `${cmd.name} ${sub}`;
    } else if (wantsHelp) {
      process.stdout.write(`${formatHelp(cmd)}\n`);
      return 0;
    } else if (cmd.defaultSubcommand !== undefined) sub = cmd.defaultSubcommand;
    else {
      process.stderr.write(`tfree ${cmd.name}: give a subcommand: ${names} (see tfree ${cmd.name} --help)\n`);
      return 2;
    }
  }
  if (wantsHelp) {
    process.stdout.write(`${formatHelp(cmd, sub)}\n`);
    return 0;
  }
  try {
    checkEnvironment();
    const parsed = parseArgs(args, cmd, sub);
    const run = sub !== undefined && subs !== undefined ? subs[sub].run : cmd.run;
    if (run === undefined) throw new Error(`tfree ${label}: nothing to run`);
    const code = await run.call(cmd, parsed);
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    if (e instanceof UserError) {
      // one line, also when the message quotes a file (JSON.parse's messages show the text with its newlines)
      process.stderr.write(`tfree ${label}: ${e.message.replace(/\r?\n/g, '\\n')}\n`);
      return e.exitCode;
    }
    const code = errCode(e);
    if (code === 'EPIPE') return 0;
    if (code !== undefined && FS_CODES.test(code)) {
      process.stderr.write(`tfree ${label}: ${(e as Error).message.replace(/\r?\n/g, '\\n')}\n`);
      return 2;
    }
    throw e;
  }
}

/**
 * The environment variables tfree reads, each with its check: the one-line message when the value
 * is bad (`check` gets the variable's value, undefined when unset). A bad value is the user's
 * mistake: one line, exit 2, before any work.
 */
export const ENVIRONMENT: { name: string; values: string; help: string; check(v: string | undefined): string | undefined }[] = [
  {
    name: 'TFREE_BACKEND',
    values: 'native|js|auto',
    help: 'kernels to use (default auto: native when the addon is built)',
    check(v) {
      if (v === undefined || v === '') return undefined;
      if (v !== 'native' && v !== 'js' && v !== 'auto') return `TFREE_BACKEND must be native, js or auto, got "${v}"`;
      const n = v === 'native' ? nativeBackend() : undefined;
      return n !== undefined && 'error' in n ? `TFREE_BACKEND is native, but the native kernels are unavailable (${n.error})` : undefined;
    },
  },
  {
    name: 'TFREE_THREADS',
    values: 'N',
    help: 'threads of the native kernels, 1..256 (default: all cores)',
    check: (v) => (v === undefined || v === '' || (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 256) ? undefined : `TFREE_THREADS must be an integer in [1, 256], got "${v}"`),
  },
  {
    name: 'TFREE_ISA',
    values: 'generic|avx2|avx512|neon',
    help: 'cap the native kernel path (default: the best this CPU has; see tfree info; old name TFREE_SIMD)',
    check: () => isaEnvError(),
  },
  { name: 'TFREE_PACKED_ACT', values: 'int8|int16', help: 'activation precision of packed layers (default int8)', check: () => libraryCheck(defaultPackedAct) },
  { name: 'TFREE_PACKED_LUT', values: '0|1', help: 'lookup-table path of packed layers (default 1)', check: () => libraryCheck(defaultPackedLut) },
  { name: 'TFREE_HUGE', values: '0|1', help: 'large tensors on transparent huge pages (default 1; native backend, Linux)', check: () => libraryCheck(hugePagesEnabled) },
];

/** Runs a library reader of an environment variable; its error message or undefined. */
function libraryCheck(read: () => unknown): string | undefined {
  try {
    read();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function checkEnvironment(): void {
  for (const e of ENVIRONMENT) {
    const bad = e.check(process.env[e.name]);
    if (bad !== undefined) throw new UserError(bad);
  }
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
  // a closed pipe (`tfree generate ... | head -c 5`) ends the command quietly
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
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
