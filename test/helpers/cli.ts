import { main } from '../../src/cli/main.js';

/** Runs the CLI in-process with stdout/stderr captured; returns its exit code and both streams. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  // Only strings are the CLI's output: node's test runner writes its own (binary) messages to the
  // same stream while an async command awaits, and those must still reach the runner.
  process.stdout.write = ((s: string | Uint8Array, ...rest: unknown[]) => (typeof s === 'string' ? ((out += s), true) : o(s, ...(rest as [])))) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...rest: unknown[]) => (typeof s === 'string' ? ((err += s), true) : e(s, ...(rest as [])))) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}
