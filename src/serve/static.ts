/**
 * Static files (the web playground, the DTM report) from one folder, with safe paths: the URL
 * path is decoded, must not hold a NUL, a backslash or a `..` segment, and the resolved file
 * (symbolic links followed) must lie inside the folder.
 */
import { createReadStream, readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, join, sep } from 'node:path';
import type { ServerResponse } from 'node:http';
import { HttpError } from './http.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.safetensors': 'application/octet-stream',
};

export function contentType(file: string): string {
  return TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The file of URL path `rel` (already without its prefix) inside `root`, or null when there is
 * none; a path that tries to leave the folder is a 400.
 */
export function resolveInside(root: string, rel: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(rel);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the path', null, 'bad_path');
  }
  if (path.includes('\0') || path.includes('\\') || path.split('/').some((s) => s === '..')) throw new HttpError(400, 'the path must stay inside the served folder', null, 'bad_path');
  let realRoot: string;
  let real: string;
  try {
    realRoot = realpathSync(root);
    real = realpathSync(join(realRoot, path));
  } catch {
    return null;
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) throw new HttpError(400, 'the path must stay inside the served folder', null, 'bad_path');
  try {
    if (statSync(real).isDirectory()) {
      const index = join(real, 'index.html');
      return statSync(index).isFile() ? index : null;
    }
  } catch {
    return null;
  }
  return real;
}

/** Streams a file (HEAD: headers only). */
export function sendFile(res: ServerResponse, file: string, head: boolean): void {
  const size = statSync(file).size;
  res.writeHead(200, { 'content-type': contentType(file), 'content-length': size, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
  if (head) {
    res.end();
    return;
  }
  const s = createReadStream(file);
  s.on('error', () => res.destroy());
  res.on('close', () => s.destroy());
  s.pipe(res);
}

/** Plain files of a folder (not recursive, no dot files), sorted. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}
