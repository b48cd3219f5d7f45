import * as fs from 'node:fs';
import { basename } from 'node:path';
import type { CommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { SafetensorsError, openCheckpoint } from '../../io/index.js';

/** Whether `path` is a file that starts with the GGUF magic. */
function isGguf(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'r');
    const head = Buffer.alloc(4);
    return fs.readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === 'GGUF';
  } catch {
    return false; // a folder, or unreadable: openCheckpoint says what is wrong
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export const inspectCommand: CommandSpec = {
  name: 'inspect',
  positionals: 'FILE.safetensors|DIR',
  summary: 'list the tensors (name, dtype, shape, size) of a safetensors file or checkpoint folder',
  usage: 'tfree inspect FILE.safetensors|DIR [--json] [--filter TEXT]',
  options: {
    json: { type: 'boolean', help: 'one JSON object per tensor, then a summary object' },
    filter: { type: 'string', help: 'only tensors whose name contains TEXT', meta: 'TEXT' },
  },
  run(args) {
    const path = args.positionals[0];
    if (path === undefined) throw new UserError('give a safetensors file or a checkpoint folder (see tfree inspect --help)');
    if (isGguf(path)) throw new UserError(`${path}: a GGUF file (llama.cpp's format, as tfree export gguf writes it); tfree inspect lists safetensors files and checkpoint folders`);
    let ckpt;
    try {
      ckpt = openCheckpoint(path);
    } catch (e) {
      if (e instanceof SafetensorsError) throw new UserError(e.message);
      if (e instanceof Error && 'code' in e && (e.code === 'ENOENT' || e.code === 'EISDIR' || e.code === 'EACCES')) throw new UserError(`cannot open ${path}: ${e.message}`);
      throw e;
    }
    try {
      const filter = typeof args.options.filter === 'string' ? args.options.filter : '';
      let params = 0;
      let bytes = 0;
      let tensors = 0;
      const rows: string[][] = [];
      for (const name of ckpt.names()) {
        if (filter && !name.includes(filter)) continue;
        const info = ckpt.info(name);
        const n = info.shape.reduce((a, b) => a * b, 1);
        params += n;
        bytes += info.byteLength;
        tensors++;
        if (args.options.json) {
          process.stdout.write(`${JSON.stringify({ name, dtype: info.dtype, shape: info.shape, bytes: info.byteLength, file: basename(info.file) })}\n`);
        } else rows.push([name, info.dtype, `[${info.shape.join(', ')}]`, String(n)]);
      }
      if (args.options.json) {
        process.stdout.write(`${JSON.stringify({ files: ckpt.files.length, tensors, params, bytes, metadata: ckpt.metadata })}\n`);
        return;
      }
      const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), 4));
      for (const r of rows) process.stdout.write(`${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3].padStart(w[3])}\n`);
      process.stdout.write(`${rows.length} tensors, ${params.toLocaleString('en-US')} values, ${(bytes / 2 ** 20).toFixed(2)} MiB in ${ckpt.files.length} file(s)\n`);
      const meta = Object.entries(ckpt.metadata);
      if (meta.length > 0) process.stdout.write(`metadata: ${meta.map(([k, v]) => `${k}=${v.length > 60 ? `${v.slice(0, 57)}...` : v}`).join(', ')}\n`);
    } finally {
      ckpt.close();
    }
  },
};
