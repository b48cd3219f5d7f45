/**
 * Multi-file outputs written all or nothing (a model folder: weights + config.json + tokenizer
 * files; `kg export`'s four files). Every part is written under a temp name in the output folder
 * first (`NAME.tmp-PID-part`); only when all are written does `commit` rename them into place,
 * together: a failure or a stop (Ctrl-C) before that removes the parts and leaves the folder as it
 * was. A rename that fails during the commit (after others were done) is undone: the files already
 * replaced get their old version back (kept as a hard link, `NAME.tmp-PID-old`, until the commit
 * ends), the ones this output added are removed, so the folder holds the complete old output, and
 * the error says so (or, should the undo itself fail, which files it could not restore). A process
 * killed during the commit itself (SIGKILL, a crash: a few renames) can still leave a mix; the
 * kept old files are then removed as stale temps by the next write of the same file.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { runToEnd } from './interrupt.js';
import { SafetensorsError, removeStaleTemps, syncFolder } from './safetensors.js';

/** The temp name a part of a multi-file output is written to before the commit renames it. */
export function partPath(path: string): string {
  return `${path}.tmp-${process.pid}-part`;
}

/** Where the commit keeps the old version of a file it replaces, until the commit ends. */
function oldPath(path: string): string {
  return `${path}.tmp-${process.pid}-old`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** One file of the commit: what it did so far (for the undo). */
interface Step {
  dst: string;
  /** the old file is kept at oldPath(dst) */
  kept: boolean;
  /** the old file is no longer at dst (moved to oldPath: the fallback where hard links fail, or a removed file) */
  moved: boolean;
  /** the new part is at dst */
  placed: boolean;
}

/** The parts of one multi-file output in folder `dir` (see the file's comment). */
export class StagedOutput {
  private readonly parts: string[] = [];
  private readonly removals: string[] = [];

  constructor(readonly dir: string) {}

  /**
   * The path to write part `name` (a file of `dir`) to; the commit renames it to `dir/name`.
   * Creates `dir` when missing, and removes the temp files of `dir/name` that killed runs left.
   */
  part(name: string): string {
    const dst = nodePath.join(this.dir, name);
    fs.mkdirSync(this.dir, { recursive: true });
    removeStaleTemps(dst);
    if (!this.parts.includes(dst)) this.parts.push(dst);
    return partPath(dst);
  }

  /** A file of `dir` that the new output does not have: the commit removes it (and the undo restores it). */
  remove(name: string): void {
    const dst = nodePath.join(this.dir, name);
    if (!this.removals.includes(dst) && !this.parts.includes(dst)) this.removals.push(dst);
  }

  /** The names of the parts, in the order they were staged. */
  get names(): string[] {
    return this.parts.map((p) => nodePath.basename(p));
  }

  /** Removes the parts written so far (a failure or a stop before the commit). */
  discard(): void {
    for (const dst of this.parts) fs.rmSync(partPath(dst), { force: true });
  }

  /**
   * Renames every part into place, all of them or none: a destination that is a folder fails
   * before any rename; a rename that fails later is undone (see the file's comment). Either way the
   * parts not renamed are removed and the error (a SafetensorsError naming the file) says what the
   * folder holds.
   */
  commit(): void {
    for (const dst of [...this.parts, ...this.removals]) {
      if (fs.statSync(dst, { throwIfNoEntry: false })?.isDirectory() === true) {
        this.discard();
        throw new SafetensorsError('IO', dst, undefined, 'write failed: it is a folder; no file was replaced');
      }
    }
    const steps: Step[] = [];
    try {
      for (const dst of this.parts) {
        const step: Step = { dst, kept: false, moved: false, placed: false };
        steps.push(step);
        if (fs.lstatSync(dst, { throwIfNoEntry: false }) !== undefined) keepOld(step);
        fs.renameSync(partPath(dst), dst);
        step.placed = true;
      }
      for (const dst of this.removals) {
        if (fs.lstatSync(dst, { throwIfNoEntry: false }) === undefined) continue;
        const step: Step = { dst, kept: false, moved: false, placed: false };
        steps.push(step);
        fs.renameSync(dst, oldPath(dst));
        step.kept = step.moved = true;
      }
    } catch (e) {
      this.discard();
      const unrestored = undo(steps);
      const state =
        unrestored.length > 0
          ? `could not restore ${unrestored.join(', ')}: ${this.dir} holds a mix of old and new files`
          : steps.some((s) => s.kept)
            ? `no file was replaced: ${this.dir} holds its old files, unchanged`
            : 'no file of the new output was kept';
      throw new SafetensorsError('IO', steps.length > 0 ? steps[steps.length - 1].dst : this.dir, undefined, `write failed: ${errorText(e)}; ${state}`, { cause: e });
    }
    for (const s of steps) if (s.kept) fs.rmSync(oldPath(s.dst), { force: true });
    syncFolder(this.dir);
  }
}

/** Keeps the old file at dst as oldPath(dst): a hard link (dst stays in place until the part replaces it), else a rename. */
function keepOld(step: Step): void {
  const old = oldPath(step.dst);
  fs.rmSync(old, { force: true });
  try {
    fs.linkSync(step.dst, old);
  } catch {
    fs.renameSync(step.dst, old); // a file system without hard links
    step.moved = true;
  }
  step.kept = true;
}

/** Undoes the steps of a failed commit, last first; returns the files it could not restore. */
function undo(steps: readonly Step[]): string[] {
  const failed: string[] = [];
  for (const s of [...steps].reverse()) {
    try {
      if (s.kept && (s.placed || s.moved)) fs.renameSync(oldPath(s.dst), s.dst);
      else if (s.kept) fs.rmSync(oldPath(s.dst), { force: true });
      else if (s.placed) fs.rmSync(s.dst, { force: true });
    } catch (e) {
      failed.push(`${nodePath.basename(s.dst)} (${errorText(e)})`);
    }
  }
  return failed;
}

/** Writes a multi-file output in `dir`: `write` writes each part to `out.part(name)`; then all are committed (see StagedOutput). A failure removes every part. */
export function writeStaged<T>(dir: string, write: (out: StagedOutput) => T): T {
  // eslint-disable-next-line require-yield -- a job with no safe point: writeStagedJob run to its end
  return runToEnd(writeStagedJob(dir, function* (out) {
    return write(out);
  }));
}

/** `writeStaged` as a job (`write` yields at its safe points); a failure or a stop (WriteInterrupted) removes every part. */
export function* writeStagedJob<T>(dir: string, write: (out: StagedOutput) => Generator<void, T, void>): Generator<void, T, void> {
  const out = new StagedOutput(dir);
  try {
    const r = yield* write(out);
    out.commit();
    return r;
  } catch (e) {
    out.discard();
    throw e;
  }
}
