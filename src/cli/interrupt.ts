/**
 * Ctrl-C for the CLI's long jobs: the first SIGINT (or SIGTERM) sets the job's StopFlag (the job
 * stops at its next safe point, saves, and the command exits 130); a second one exits 130 at
 * once (checkpoints are atomic, so the last complete one stays). The job must run with
 * `runYielding` (src/io/interrupt.ts) so the handler gets to run.
 */
import * as fs from 'node:fs';
import { StopFlag, WriteInterrupted, runYielding } from '../io/index.js';

export const EXIT_INTERRUPTED = 130;

export async function withInterrupt<T>(label: string, what: string, job: (stop: StopFlag) => Promise<T>, stop = new StopFlag()): Promise<T> {
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop.requested) {
      process.stderr.write(`\ntfree ${label}: ${sig} again, stopping now\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    stop.request(sig);
    process.stderr.write(`\ntfree ${label}: ${sig}: stopping ${what}; Ctrl-C again to stop at once\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await job(stop);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** What runWriteJob returns when Ctrl-C stopped the write (the command then exits EXIT_INTERRUPTED). */
export const INTERRUPTED: unique symbol = Symbol('interrupted');

/**
 * The write of a command's output (quantize, prune, kg pack, train's export, synth-model), one
 * path for all. `makeJob(stop)` is a job whose work up to its first yield (the computation) runs
 * first with SIGINT's default action (nothing is written yet, so the process just ends); its
 * writes follow under withInterrupt with runYielding: Ctrl-C stops after the current tensor, the
 * write removes its temp file and the files of this run (WriteInterrupted), `out` is removed when
 * this run created it, one line is printed and INTERRUPTED returned. Any other failure also
 * removes `out` when this run created it (nothing of an unfinished output stays), then rethrows.
 */
export async function runWriteJob<T>(label: string, out: string, makeJob: (stop: StopFlag) => Generator<void, T, void>, onStopped?: () => void): Promise<T | typeof INTERRUPTED> {
  const existed = fs.existsSync(out);
  const stop = new StopFlag();
  try {
    const job = slowedForTests(makeJob(stop));
    const first = job.next();
    if (first.done === true) return first.value;
    return await withInterrupt(label, 'after this tensor (the partial files are removed)', () => runYielding(job), stop);
  } catch (e) {
    const created = !existed && fs.existsSync(out);
    if (created) fs.rmSync(out, { recursive: true, force: true }); // the folder (or file) this run created: nothing else is in it
    if (!(e instanceof WriteInterrupted)) throw e;
    onStopped?.(); // e.g. end a progress bar's line
    process.stderr.write(`tfree ${label}: interrupted; the partial files were removed${created ? ` (and ${out})` : ''}\n`);
    return INTERRUPTED;
  }
}

/**
 * TFREE_TEST_WRITE_PAUSE_MS=N (tests only): sleep N ms at each safe point of a write, as a very slow
 * disk would, so a test's SIGINT lands mid-write however fast the machine. Unset: the job itself.
 */
function slowedForTests<T>(job: Generator<void, T, void>): Generator<void, T, void> {
  const ms = Number(process.env.TFREE_TEST_WRITE_PAUSE_MS ?? 0);
  if (!(ms > 0)) return job;
  return (function* () {
    for (let first = true; ; first = false) {
      const r = job.next();
      if (r.done === true) return r.value;
      if (!first) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      yield;
    }
  })();
}
