/**
 * Command-line flags of the experiment scripts (`--name value`, repeatable). Dependency-free on
 * purpose: the A/B scripts import it in children that load another checkout's dist/.
 */

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
