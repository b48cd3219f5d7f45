/**
 * Checks made before a command starts its work: memory needs against the machine, and output
 * paths (writable, not under a file, not in /proc or /sys). Each failure is one UserError line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { UserError } from './errors.js';
import { samePath, statOrUndefined } from '../io/paths.js';

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 3 : 1)} GiB`;
}

/**
 * Refuses a job whose estimated memory (`bytes`, a lower bound of what it allocates) exceeds
 * the machine's memory (os.totalmem()), or one typed array longer than the engine allows.
 */
export function checkMemory(bytes: number, what: string, largestArray = 0): void {
  const total = os.totalmem();
  if (!Number.isFinite(bytes) || bytes > total) {
    throw new UserError(`${what} need at least ${Number.isFinite(bytes) ? gib(bytes) : 'unbounded'} of memory; this machine has ${gib(total)}`);
  }
  // V8's limit on the length of one typed array (64-bit builds)
  if (largestArray > 2 ** 32 - 1) throw new UserError(`${what} need one array of ${largestArray.toExponential(2)} elements, more than one array may hold (2^32)`);
}

/** The nearest existing ancestor of `p` (p itself when it exists). */
function existingAncestor(p: string): string {
  let cur = nodePath.resolve(p);
  while (!fs.existsSync(cur)) {
    const up = nodePath.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  return cur;
}

/**
 * Checks an output path before the work: `kind` 'dir' (a folder that will hold the output) or
 * 'file'. Refuses paths in /proc or /sys, under a file, of the wrong kind, or in a folder this
 * process cannot write (checked by creating and removing a probe). Creates nothing.
 */
export function checkOutputPath(path: string, flag: string, kind: 'dir' | 'file'): void {
  const abs = nodePath.resolve(path);
  const anc = existingAncestor(abs);
  let real = anc;
  try {
    real = fs.realpathSync(anc);
  } catch {
    // keep anc
  }
  if (/^\/(proc|sys)(\/|$)/.test(real) || /^\/(proc|sys)(\/|$)/.test(abs)) throw new UserError(`${flag} ${path}: cannot write under ${real.split('/').slice(0, 2).join('/')}`);
  const st = fs.statSync(anc);
  if (anc === abs) {
    if (kind === 'dir' && !st.isDirectory()) throw new UserError(`${flag} ${path}: exists and is not a folder`);
    if (kind === 'file' && st.isDirectory()) throw new UserError(`${flag} ${path}: is a folder; give a file name`);
  } else if (!st.isDirectory()) {
    throw new UserError(`${flag} ${path}: ${anc} is a file, not a folder`);
  }
  const probeIn = st.isDirectory() ? anc : nodePath.dirname(anc);
  let probe: string | undefined;
  try {
    probe = fs.mkdtempSync(nodePath.join(probeIn, '.tfree-probe-'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new UserError(`${flag} ${path}: cannot write in ${probeIn} (${code === 'EROFS' ? 'read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOSPC' ? 'no space left on device' : code || (e as Error).message})`);
  } finally {
    if (probe !== undefined) fs.rmSync(probe, { recursive: true, force: true });
  }
}

/**
 * Checks an input path before the work: it exists and is of the `kind` the command reads
 * ('dir': a folder, 'file': a file, 'any': either). One UserError line otherwise.
 */
export function checkInputPath(path: string, flag: string, kind: 'dir' | 'file' | 'any'): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const what = kind === 'dir' ? 'folder' : kind === 'file' ? 'file' : 'file or folder';
    throw new UserError(`${flag} ${path}: ${code === 'ENOENT' || code === 'ENOTDIR' ? `no such ${what}` : `cannot read (${code || (e as Error).message})`}`);
  }
  if (kind === 'dir' && !st.isDirectory()) throw new UserError(`${flag} ${path}: is a file; give a folder`);
  if (kind === 'file' && st.isDirectory()) throw new UserError(`${flag} ${path}: is a folder; give a file`);
}

/** Files of a model folder that an output must never replace: weights, config, tokenizer. */
const MODEL_FILE = /(\.safetensors|\.safetensors\.index\.json|^config\.json|^tokenizer(_config)?\.json)$/;

/**
 * Refuses an output path that is one of the command's inputs, however spelled (symlinks, `./`,
 * hard links: compared by device and inode), or a model file (weights, config, tokenizer) inside
 * an input folder. `inputs` may hold undefined (an input not given). One UserError line.
 */
export function refuseInputAsOutput(out: string, flag: string, inputs: readonly (string | undefined)[]): void {
  const st = statOrUndefined(out);
  for (const input of inputs) {
    if (input === undefined) continue;
    const ist = statOrUndefined(input);
    if (ist === undefined) continue;
    if (samePath(out, input)) throw new UserError(`${flag} ${out}: is the input ${input}; writing there would destroy it: choose another ${flag}`);
    if (st !== undefined && !st.isDirectory() && ist.isDirectory() && MODEL_FILE.test(nodePath.basename(out)) && samePath(nodePath.dirname(nodePath.resolve(out)), input)) {
      throw new UserError(`${flag} ${out}: is a file of the input model ${input}; writing there would destroy it: choose another ${flag}`);
    }
  }
}

/** Refuses to replace the files a command writes into folder `dir` (a dataset, an export) unless `overwrite`. */
export function refuseFileOverwrite(dir: string, files: readonly string[], overwrite: boolean, flag = '--out'): void {
  if (overwrite) return;
  const held = files.filter((f) => fs.existsSync(nodePath.join(dir, f)));
  if (held.length > 0) throw new UserError(`${flag} ${dir} already holds ${held.join(', ')}; pass --overwrite to replace ${held.length === 1 ? 'it' : 'them'}, or choose another ${flag}`);
}

/** Files that make a folder a model folder. */
const MODEL_FILES = ['config.json', 'model.safetensors', 'model.safetensors.index.json'];

/** Refuses to write a model into a folder that already holds one, unless `overwrite` (never replace a model unasked). */
export function refuseModelOverwrite(out: string, overwrite: boolean, flag = '--out'): void {
  if (overwrite) return;
  const held = MODEL_FILES.find((f) => fs.existsSync(nodePath.join(out, f)));
  if (held !== undefined) throw new UserError(`${out} already holds a model (${held}); choose another ${flag}, or pass --overwrite to replace it`);
}

/** The `--overwrite` option of commands that write a model folder. */
export const OVERWRITE_OPTION = { type: 'boolean', help: 'replace the model already in --out (a model is never replaced unasked)' } as const;

/**
 * Refuses a folder as stdin (`tfree split < DIR`): Node's stdin stream ends quietly on EISDIR,
 * so the command would read nothing and answer as if the input were empty.
 */
export function checkStdinNotFolder(): void {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(0);
  } catch {
    return; // no stdin at all: reading it gives nothing, as for an empty input
  }
  if (st.isDirectory()) throw new UserError('stdin is a folder; give a file (< FILE) or a pipe');
}

/**
 * For an output folder this run creates (`dir` does not exist yet): when the process ends, also by
 * process.exit (a closed stdout pipe, a second Ctrl-C), with no file saved anywhere under `dir`,
 * `dir` is removed, so a run that saved nothing leaves no empty folder behind.
 */
export function removeIfLeftEmpty(dir: string): void {
  if (fs.existsSync(dir)) return;
  const holdsFile = (d: string): boolean => fs.readdirSync(d, { withFileTypes: true }).some((e) => !e.isDirectory() || holdsFile(nodePath.join(d, e.name)));
  process.once('exit', () => {
    try {
      if (fs.statSync(dir).isDirectory() && !holdsFile(dir)) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // gone already, or unreadable: leave it
    }
  });
}
