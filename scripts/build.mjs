#!/usr/bin/env node
// Bundles the three programs with esbuild:
//   dist/meshless-cni  the CNI plugin: one CommonJS file with a node shebang, no
//                      package.json needed beside it (it lives in /opt/cni/bin)
//   dist/meshlessd.js  the node daemon (ESM)
//   dist/meshless.js   the CLI (ESM)
import { build } from 'esbuild';
import { chmodSync, mkdirSync } from 'node:fs';

mkdirSync('dist', { recursive: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  // The native addon is loaded from disk at run time, never bundled.
  external: ['*.node'],
};

// ESM bundles of CommonJS dependencies still call require() for builtins.
const esmBanner =
  "import { createRequire as __meshlessCreateRequire } from 'node:module';\n" +
  'const require = __meshlessCreateRequire(import.meta.url);';

const results = await Promise.all([
  build({
    ...common,
    entryPoints: ['cni/main.ts'],
    outfile: 'dist/meshless-cni',
    format: 'cjs',
    minify: true,
    metafile: true,
    banner: { js: '#!/usr/bin/env node' },
  }),
  build({
    ...common,
    entryPoints: ['daemon/main.ts'],
    outfile: 'dist/meshlessd.js',
    format: 'esm',
    banner: { js: esmBanner },
  }),
  build({
    ...common,
    entryPoints: ['cli/main.ts'],
    outfile: 'dist/meshless.js',
    format: 'esm',
    banner: { js: '#!/usr/bin/env node\n' + esmBanner },
  }),
]);

for (const f of ['dist/meshless-cni', 'dist/meshless.js']) chmodSync(f, 0o755);
const cniBytes = Object.values(results[0].metafile.outputs)[0]?.bytes ?? 0;
console.log(
  `built dist/meshless-cni (${(cniBytes / 1024).toFixed(0)} KiB), dist/meshlessd.js, dist/meshless.js`,
);
