/**
 * Ctrl-C for the CLI's long jobs: the first SIGINT (or SIGTERM) sets the job's StopFlag (the job
 * stops at its next safe point, saves, and the command exits 130); a second one exits 130 at
 * once (checkpoints are atomic, so the last complete one stays). The job must run with
 * `runYielding` (src/io/interrupt.ts) so the handler gets to run.
 */
import { StopFlag } from '../io/index.js';

export const EXIT_INTERRUPTED = 130;

export async function withInterrupt<T>(label: string, what: string, job: (stop: StopFlag) => Promise<T>): Promise<T> {
  const stop = new StopFlag();
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
