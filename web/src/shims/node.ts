/**
 * Browser stand-in for the `node:*` modules that src/ imports in its file-system paths (checkpoint
 * loading from a folder, atomic writes, ...), swapped in by web/vite.config.ts. The page only uses
 * the in-memory paths (openSafetensorsBuffer etc.), so every file-system function throws a clear
 * error if reached; the path helpers work on POSIX-style strings.
 */
function unavailable(name: string): () => never {
  return () => {
    throw new Error(`${name} is not available in the browser`);
  };
}

export const closeSync = unavailable('fs.closeSync');
export const copyFileSync = unavailable('fs.copyFileSync');
export const existsSync = (): boolean => false;
export const fstatSync = unavailable('fs.fstatSync');
export const fsyncSync = unavailable('fs.fsyncSync');
export const mkdirSync = unavailable('fs.mkdirSync');
export const mkdtempSync = unavailable('fs.mkdtempSync');
export const openSync = unavailable('fs.openSync');
export const readFileSync = unavailable('fs.readFileSync');
export const readSync = unavailable('fs.readSync');
export const readdirSync = unavailable('fs.readdirSync');
export const realpathSync = unavailable('fs.realpathSync');
export const renameSync = unavailable('fs.renameSync');
export const rmSync = unavailable('fs.rmSync');
export const statSync = unavailable('fs.statSync');
export const statfsSync = unavailable('fs.statfsSync');
export const unlinkSync = unavailable('fs.unlinkSync');
export const writeSync = unavailable('fs.writeSync');
export class Stats {}

export const createRequire = unavailable('module.createRequire');
export const fileURLToPath = unavailable('url.fileURLToPath');
export const tmpdir = (): string => '/tmp';

export function normalize(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (part !== '..' || !abs) out.push(part);
  }
  const s = out.join('/');
  return abs ? `/${s}` : s === '' ? '.' : s;
}
export const join = (...parts: string[]): string => normalize(parts.filter((x) => x !== '').join('/'));
export const resolve = (...parts: string[]): string => normalize(parts.join('/'));
export const isAbsolute = (p: string): boolean => p.startsWith('/');
export function basename(p: string, ext?: string): string {
  const b = p.replace(/\/+$/, '').split('/').pop() ?? '';
  return ext !== undefined && b.endsWith(ext) ? b.slice(0, -ext.length) : b;
}
export function dirname(p: string): string {
  const i = p.replace(/\/+$/, '').lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : p.slice(0, i);
}
export function extname(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i);
}
