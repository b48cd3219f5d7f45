/**
 * Atomic training checkpoints.
 *
 * Layout under the run folder:
 *   checkpoints/step-00000100/   model.safetensors (f32 weights under the released tensor names)
 *                                config.json       (the model config, when the model has one)
 *                                optimizer.safetensors (AdamW moments m.<param>, v.<param>)
 *                                state.json        (step, optimizer counters, data position, RNG
 *                                                   state, run settings, the log so far)
 *   checkpoints/latest.json      {"step": 100, "dir": "step-00000100"}
 *
 * A checkpoint is written into `step-XXXXXXXX.tmp-<pid>` (every file fsynced), the folder is
 * renamed to its final name, and only then is `latest.json` replaced (temp file + rename). A run
 * killed at any moment therefore leaves `latest.json` pointing at a complete checkpoint; older
 * checkpoint folders are removed after the pointer moved, leftovers of a killed write are
 * removed on the next save.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { openCheckpoint, syncFolder, writeFileAtomic, writeSafetensors, type Checkpoint, type TensorEntries } from '../io/index.js';

export interface CheckpointFiles {
  model: TensorEntries;
  optimizer: TensorEntries;
  state: unknown;
  config?: unknown;
}

export interface LoadedCheckpoint<S> {
  dir: string;
  step: number;
  state: S;
  model: Checkpoint;
  optimizer: Checkpoint;
}

const LATEST = 'latest.json';

function stepDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** Writes checkpoint `step` under `root` (the run's checkpoints folder), atomically; keeps only the newest. */
export function saveCheckpoint(root: string, step: number, files: CheckpointFiles): string {
  fs.mkdirSync(root, { recursive: true });
  const name = stepDirName(step);
  const final = nodePath.join(root, name);
  const tmp = nodePath.join(root, `${name}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    writeSafetensors(nodePath.join(tmp, 'model.safetensors'), files.model, { format: 'pt' });
    writeSafetensors(nodePath.join(tmp, 'optimizer.safetensors'), files.optimizer);
    if (files.config !== undefined) writeFileAtomic(nodePath.join(tmp, 'config.json'), `${JSON.stringify(files.config, null, 2)}\n`);
    writeFileAtomic(nodePath.join(tmp, 'state.json'), JSON.stringify(files.state));
    syncFolder(tmp);
  } catch (e) {
    // e.g. ENOSPC: no half-written folder stays behind; latest.json still points at the previous checkpoint
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fs.rmSync(final, { recursive: true, force: true }); // a stale folder of the same step from a killed run
  fs.renameSync(tmp, final);
  syncFolder(root);
  writeFileAtomic(nodePath.join(root, LATEST), `${JSON.stringify({ step, dir: name })}\n`);
  for (const n of fs.readdirSync(root)) {
    if (n !== name && n !== LATEST && n.startsWith('step-')) fs.rmSync(nodePath.join(root, n), { recursive: true, force: true });
  }
  return final;
}

/** A checkpoint that cannot be read (truncated, damaged or missing file); the message names the file. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CheckpointError(`${file}: cannot read the ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${file}: damaged ${what} (${(e as Error).message})`);
  }
}

function openPart(file: string): Checkpoint {
  if (!fs.existsSync(file)) throw new CheckpointError(`${file}: missing`);
  try {
    return openCheckpoint(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? `${file}: missing` : `${file}: damaged (${(e as Error).message.replace(`${file}: `, '')})`);
  }
}

/** The checkpoint `latest.json` points at, or null when there is none. Errors are CheckpointErrors naming the file. */
export function loadLatestCheckpoint<S>(root: string): LoadedCheckpoint<S> | null {
  const p = nodePath.join(root, LATEST);
  if (!fs.existsSync(p)) return null;
  const ptr = readJson(p, 'checkpoint pointer') as { step?: unknown; dir?: unknown } | null;
  if (ptr === null || typeof ptr !== 'object' || typeof ptr.dir !== 'string' || !/^step-\d+$/.test(ptr.dir) || typeof ptr.step !== 'number') {
    throw new CheckpointError(`${p}: bad checkpoint pointer ${JSON.stringify(ptr)}`);
  }
  const dir = nodePath.join(root, ptr.dir);
  if (!fs.existsSync(dir)) throw new CheckpointError(`${p}: points at ${dir}, which is missing`);
  const state = readJson(nodePath.join(dir, 'state.json'), 'training state');
  if (state === null || typeof state !== 'object') throw new CheckpointError(`${nodePath.join(dir, 'state.json')}: damaged training state (not an object)`);
  const model = openPart(nodePath.join(dir, 'model.safetensors'));
  let optimizer: Checkpoint;
  try {
    optimizer = openPart(nodePath.join(dir, 'optimizer.safetensors'));
  } catch (e) {
    model.close();
    throw e;
  }
  return { dir, step: ptr.step, state: state as S, model, optimizer };
}
