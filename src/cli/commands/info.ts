import type { CommandSpec } from '../args.js';
import { availableBackends, backendName, nativeBackend } from '../../tensor/index.js';

export const infoCommand: CommandSpec = {
  name: 'info',
  summary: 'show the compute backend, SIMD path and threads in use',
  usage: 'tfree info [--json]',
  options: { json: { type: 'boolean', help: 'print one JSON object' } },
  run(args) {
    const n = nativeBackend();
    const info = {
      version: '0.1.0',
      node: process.version,
      backend: backendName(),
      available: availableBackends(),
      native: 'kernels' in n ? { simd: n.extras.simd(), threads: n.extras.getThreads() } : { error: n.error },
    };
    if (args.options.json) {
      process.stdout.write(`${JSON.stringify(info)}\n`);
      return;
    }
    process.stdout.write(
      [
        `tfree ${info.version} on Node ${info.node}`,
        `backend: ${info.backend} (available: ${info.available.join(', ')})`,
        'kernels' in n ? `native: ${n.extras.simd()} path, ${n.extras.getThreads()} threads` : `native: unavailable (${n.error})`,
      ].join('\n') + '\n',
    );
  },
};
