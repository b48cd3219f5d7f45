/**
 * Command-line flags of the experiment scripts (`--name value`, repeatable). Dependency-free on
 * purpose (Node built-ins only): the A/B scripts import it in children that load another checkout's
 * dist/.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** Every value given to `--name`, in order. */
export function args(name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.argv.length - 1; i++) if (process.argv[i] === `--${name}`) out.push(process.argv[i + 1]);
  return out;
}

/** The first value given to `--name`, or `def`. */
export function arg(name: string, def: string): string {
  return args(name)[0] ?? def;
}

/**
 * The parent side of the BoxTE A/B scripts (boxte_speed_ab, boxte_phases, boxte_epoch_check): for
 * `--rounds` rounds (default `rounds`) and each `--root` in turn, runs `script` (the caller's
 * `import.meta.url`) again in a fresh process as `--child --root R --data D ...childArgs` and copies
 * its output line to stdout. `--data` defaults to ICEWS14 in ../shared beside the checkout.
 */
export function runRootsInterleaved(script: string, childArgs: string[], rounds: string, rootsHint: string): void {
  const roots = args('root');
  if (roots.length === 0) usageError(`give --root DIR (${rootsHint})`);
  const data = arg('data', fileURLToPath(new URL('../../../shared/data/icews14', import.meta.url)));
  for (let r = 0; r < Number(arg('rounds', rounds)); r++) {
    for (const root of roots) {
      const line = execFileSync(process.execPath, [fileURLToPath(script), '--child', '--root', root, '--data', data, ...childArgs], { encoding: 'utf8' });
      process.stdout.write(line);
    }
  }
}
