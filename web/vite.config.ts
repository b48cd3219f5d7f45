/**
 * Vite build of the playground.
 *   vite build -c web/vite.config.ts                 -> web/dist (served by `tfree serve --web`)
 *   vite build -c web/vite.config.ts --mode static   -> web/dist-static (the model runs in a Web
 *       Worker; the bundled model and the DTM report plots are copied in)
 * src/ is written for Node: in the browser bundle the native-kernel loader is replaced by one that
 * reports "no addon" (web/src/shims/native.ts) and the `node:*` modules by stubs (shims/node.ts);
 * the worker only uses src's in-memory paths.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const webDir = dirname(fileURLToPath(import.meta.url));
const repo = resolve(webDir, '..');
const nativeLoader = join(repo, 'src', 'tensor', 'kernels', 'native.ts');
const shims = join(webDir, 'src', 'shims');

/** Swaps src's Node-only modules for the browser shims. */
function browserShims(): Plugin {
  return {
    name: 'tfree-browser-shims',
    enforce: 'pre',
    async resolveId(source, importer, options) {
      if (source.startsWith('node:')) return join(shims, 'node.ts');
      if (importer !== undefined && /(^|\/)native\.js$/.test(source)) {
        const r = await this.resolve(source, importer, { ...options, skipSelf: true });
        if (r !== null && r.id === nativeLoader) return join(shims, 'native.ts');
      }
      return null;
    },
  };
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/**
 * Static build: copies models/default to model/ and the DTM report (the .svg and .md files of
 * docs/results/dtm, when present) to report/ with a report/index.json listing them.
 */
function staticAssets(): Plugin {
  return {
    name: 'tfree-static-assets',
    apply: 'build',
    generateBundle() {
      const model = join(repo, 'models', 'default');
      for (const f of ['config.json', 'model.safetensors']) this.emitFile({ type: 'asset', fileName: `model/${f}`, source: readFileSync(join(model, f)) });
      const reportDir = join(repo, 'docs', 'results', 'dtm');
      const files = filesUnder(reportDir)
        .filter((p) => p.endsWith('.svg') || p.endsWith('.md'))
        .map((p) => relative(reportDir, p).split(sep).join('/'));
      for (const f of files) this.emitFile({ type: 'asset', fileName: `report/${f}`, source: readFileSync(join(reportDir, f)) });
      this.emitFile({ type: 'asset', fileName: 'report/index.json', source: JSON.stringify({ files }) });
    },
  };
}

export default defineConfig(({ mode }) => {
  const isStatic = mode === 'static';
  return {
    root: webDir,
    base: './',
    publicDir: false,
    logLevel: 'warn',
    define: { __TFREE_STATIC__: JSON.stringify(isStatic) },
    plugins: [browserShims(), ...(isStatic ? [staticAssets()] : [])],
    worker: { format: 'es', plugins: () => [browserShims()] },
    build: { outDir: isStatic ? 'dist-static' : 'dist', emptyOutDir: true, target: 'es2022', reportCompressedSize: false, chunkSizeWarningLimit: 2048 },
  };
});
