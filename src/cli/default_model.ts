/**
 * Where the bundled default model lives: `models/default/` at the package root (shipped in the
 * npm package through package.json `files`; see models/README.md for how it was trained).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest folder above this file that holds package.json. */
export function packageRoot(): string {
  let dir = nodePath.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(nodePath.join(dir, 'package.json'))) return dir;
    const up = nodePath.dirname(dir);
    if (up === dir) throw new Error('tfree: cannot find the package root (no package.json above the CLI)');
    dir = up;
  }
}

/** The bundled default model's folder (config.json + model.safetensors). */
export function defaultModelDir(): string {
  return nodePath.join(packageRoot(), 'models', 'default');
}
