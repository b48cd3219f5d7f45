import type { CommandSpec } from '../args.js';
import { availableBackends, backendName, nativeBackend } from '../../tensor/index.js';

export const infoCommand: CommandSpec = {
  name: 'info',
  summary: 'show the compute backend, CPU features, kernel path per family and threads',
  usage: 'tfree info [--json]',
  options: { json: { type: 'boolean', help: 'print one JSON object' } },
  run(args) {
    const n = nativeBackend();
    const cpu = 'kernels' in n ? n.extras.cpuInfo() : undefined;
    const info = {
      version: '0.1.0',
      node: process.version,
      backend: backendName(),
      available: availableBackends(),
      native:
        'kernels' in n && cpu !== undefined
          ? {
              simd: n.extras.simd(),
              threads: n.extras.getThreads(),
              cpu: { arch: cpu.arch, vendor: cpu.vendor, brand: cpu.brand, features: cpu.features },
              isas: cpu.isas,
              isa: cpu.isa,
              paths: cpu.paths,
            }
          : { error: 'error' in n ? n.error : 'unavailable' },
    };
    if (args.options.json) {
      process.stdout.write(`${JSON.stringify(info)}\n`);
      return;
    }
    const lines = [`tfree ${info.version} on Node ${info.node}`, `backend: ${info.backend} (available: ${info.available.join(', ')})`];
    if ('kernels' in n && cpu !== undefined) {
      lines.push(
        `cpu: ${cpu.brand || cpu.arch}${cpu.vendor ? ` (${cpu.vendor}, ${cpu.arch})` : ''}`,
        `cpu features: ${cpu.features.length > 0 ? cpu.features.join(' ') : '(none detected)'}`,
        `native paths on this CPU: ${cpu.isas.join(', ')}; in force: ${cpu.isa}${cpu.isa === cpu.best ? '' : ` (capped by ${process.env.TFREE_ISA !== undefined && process.env.TFREE_ISA !== '' ? 'TFREE_ISA' : 'TFREE_SIMD'}; best ${cpu.best})`}`,
        `kernel path per family: ${Object.entries(cpu.paths)
          .map(([f, p]) => `${f}=${p}`)
          .join(', ')}`,
        `native threads: ${n.extras.getThreads()}`,
      );
    } else {
      lines.push(`native: unavailable (${'error' in n ? n.error : 'unknown'})`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  },
};
