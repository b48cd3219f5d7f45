/**
 * Stopping long jobs cleanly (Ctrl-C). A long job (training loop, sweep) is written once as a
 * generator that yields at its safe points (after a step, after a cell) and polls a StopFlag
 * there; `runToEnd` runs it synchronously (library callers, tests), `runYielding` runs it while
 * letting the event loop turn between safe points, so a SIGINT handler installed by the caller
 * can set the flag while the job runs (a synchronous loop never lets a signal handler run).
 */

/** Set by the caller (e.g. a SIGINT handler); the job checks it at its safe points. */
export class StopFlag {
  private why: string | undefined;
  get requested(): boolean {
    return this.why !== undefined;
  }
  get reason(): string | undefined {
    return this.why;
  }
  request(reason = 'stop requested'): void {
    this.why ??= reason;
  }
}

/** Runs a job generator to its end without yielding to the event loop; returns its result. */
export function runToEnd<T>(job: Generator<unknown, T, void>): T {
  for (;;) {
    const r = job.next();
    if (r.done === true) return r.value;
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** When the event loop last turned inside runYielding (shared by all calls: a job run as many short
 * runYielding calls, e.g. one per epoch of a fast epoch loop, still lets it turn every `everyMs`). */
let lastTurn = Date.now();

/**
 * Runs a job generator, letting the event loop turn (signal handlers, timers, I/O) at a safe
 * point whenever `everyMs` passed since the last turn (0: at every safe point).
 */
export async function runYielding<T>(job: Generator<unknown, T, void>, everyMs = 20): Promise<T> {
  for (;;) {
    const r = job.next();
    if (Date.now() - lastTurn >= everyMs) {
      await turn();
      lastTurn = Date.now();
    }
    if (r.done === true) return r.value;
  }
}
