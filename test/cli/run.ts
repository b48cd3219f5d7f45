/** Helpers of the CLI process tests: the real binary (dist/src/cli/main.js), spawned. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Runs `tfree ...args` to its end. */
export function tfree(args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Result {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, ...opts.env }, input: opts.input, timeout: opts.timeoutMs ?? 120_000 });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

/** Asserts-friendly: the stderr lines that are not the "native kernels unavailable" note of a build without the addon. */
export function errLines(err: string): string[] {
  return err
    .trim()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('tfree: native kernels unavailable'));
}

/** A running `tfree` process with its output collected. */
export class Running {
  readonly child: ChildProcess;
  out = '';
  err = '';
  readonly done: Promise<Result>;
  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.err += d.toString()));
    this.done = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal, out: this.out, err: this.err })));
  }

  /** Resolves once `pred(stdout, stderr)` holds (polled every 20 ms); rejects after `ms`. */
  async until(pred: (out: string, err: string) => boolean, ms = 60_000): Promise<void> {
    const t0 = Date.now();
    while (!pred(this.out, this.err)) {
      if (this.child.exitCode !== null) throw new Error(`the process ended first (code ${this.child.exitCode}): ${this.err}`);
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting; stderr: ${this.err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A small trained BoxTE model file under `dir` (kg synth, then one epoch of kg train at d=8); returns its path. */
export function smallKgModel(dir: string): string {
  const data = join(dir, 'kg-data');
  assert.equal(tfree(['kg', 'synth', '--out', data]).code, 0);
  const ckpt = join(dir, 'kg-model.safetensors');
  const t = tfree(['kg', 'train', '--data', data, '--out', ckpt, '--dim', '8', '--epochs', '1', '--batch', '16', '--negatives', '4', '--valid-every', '0', '--json']);
  assert.equal(t.code, 0, t.err);
  return ckpt;
}
