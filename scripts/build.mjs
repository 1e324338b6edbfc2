#!/usr/bin/env node
// Bundles the three programs with esbuild:
//   dist/meshless-cni  the CNI plugin: a self-contained executable (Node's
//                      single executable application on the Node LTS binary,
//                      scripts/sea.mjs): the host needs no Node.js
//   dist/meshless-cni.js  the same plugin as one CommonJS script (node shebang),
//                      the SEA's main script; runs on any node >= 20
//   dist/meshlessd.js  the node daemon (+ dist/meshlessd-worker.js, its data-plane threads)
//   dist/meshless-ca.js the cluster signer
//   dist/meshless.js   the CLI
// All three are CommonJS: the plugin must run from /opt/cni/bin where no
// package.json says otherwise, and dist/package.json marks dist/ the same way
// so every program behaves alike wherever it is run from.
import { build } from 'esbuild';
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync, chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants as zlib } from 'node:zlib';
import { NODE_LTS_VERSION, nodeLts } from './node-lts.mjs';
import { buildSea } from './sea.mjs';

mkdirSync('dist', { recursive: true });
writeFileSync('dist/package.json', JSON.stringify({ type: 'commonjs' }) + '\n');

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

const common = {
  bundle: true,
  // The version the programs report (meshless status, /status).
  define: { 'process.env.MESHLESS_BUILD_VERSION': JSON.stringify(version) },
  platform: 'node',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  // The native addon is loaded from disk at run time, never bundled.
  external: ['*.node'],
};

// The plugin's Kubernetes fallback (the client library is ~3 MB) is bundled
// on its own and embedded in the plugin as a Brotli-compressed string: the
// plugin stays one file, and V8 only compiles the client when the daemon is
// unreachable. cni/embedded-module.ts loads it.
const fallback = await build({
  ...common,
  entryPoints: ['cni/kube-fallback.ts'],
  format: 'cjs',
  minify: true,
  write: false,
  outfile: 'kube-fallback.js',
});
const fallbackCode = fallback.outputFiles[0].contents;
const fallbackPacked = brotliCompressSync(fallbackCode, {
  params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_SIZE_HINT]: fallbackCode.length },
}).toString('base64');
const embedFallback = {
  name: 'embed-kube-fallback',
  setup(b) {
    b.onResolve({ filter: /^meshless-embedded:kube-fallback$/ }, (args) => ({
      path: args.path,
      namespace: 'meshless-embedded',
    }));
    b.onLoad({ filter: /.*/, namespace: 'meshless-embedded' }, () => ({
      contents: `export default ${JSON.stringify(fallbackPacked)};`,
      loader: 'js',
    }));
  },
};

// The daemon imports @kubernetes/client-node lazily, only for the Kubernetes
// discovery and root sources (~14 MB of the bundle's 17 MB). Bundled inline,
// V8 holds and pre-parses that source in every daemon even on the file
// source (bench: idle RSS 109 MB -> see the commit). It goes into its own
// file beside the daemon, dist/meshless-kube.js, required on first use.
const kubeBeside = {
  name: 'kube-client-beside',
  setup(b) {
    b.onResolve({ filter: /^@kubernetes\/client-node$/ }, (args) =>
      args.kind === 'dynamic-import' ? { path: './meshless-kube.js', external: true } : undefined,
    );
  },
};

const results = await Promise.all([
  build({
    ...common,
    entryPoints: ['cni/main.ts'],
    outfile: 'dist/meshless-cni.js',
    format: 'cjs',
    minify: true,
    metafile: true,
    banner: { js: '#!/usr/bin/env node' },
    plugins: [embedFallback],
  }),
  build({
    ...common,
    entryPoints: ['daemon/main.ts'],
    outfile: 'dist/meshlessd.js',
    format: 'cjs',
    plugins: [kubeBeside],
  }),
  // The daemon's data-plane worker threads (daemon/proxy/workers/), loaded
  // by dist/meshlessd.js from beside it.
  build({
    ...common,
    entryPoints: ['daemon/proxy/workers/data-plane-worker.ts'],
    outfile: 'dist/meshlessd-worker.js',
    format: 'cjs',
  }),
  build({
    ...common,
    stdin: { contents: "export * from '@kubernetes/client-node';", resolveDir: '.', loader: 'js' },
    outfile: 'dist/meshless-kube.js',
    format: 'cjs',
    minify: true,
  }),
  build({
    ...common,
    entryPoints: ['ca/main.ts'],
    outfile: 'dist/meshless-ca.js',
    format: 'cjs',
    plugins: [kubeBeside],
  }),
  build({
    ...common,
    entryPoints: ['cli/main.ts'],
    outfile: 'dist/meshless.js',
    format: 'cjs',
    banner: { js: '#!/usr/bin/env node' },
  }),
]);

for (const f of ['dist/meshless-cni.js', 'dist/meshless.js']) chmodSync(f, 0o755);
const cniBytes = Object.values(results[0].metafile.outputs)[0]?.bytes ?? 0;

// The plugin as installed: the bundle inside the LTS node binary. The running
// node serves when it is that release (the image's build stage); otherwise the
// release is fetched once from the npm registry (scripts/node-lts.mjs).
const seaNode =
  process.version === `v${NODE_LTS_VERSION}` ? process.execPath : join(nodeLts(), 'bin', 'node');
await buildSea({
  node: seaNode,
  bundle: 'dist/meshless-cni.js',
  output: 'dist/meshless-cni',
  workDir: 'build/sea',
});
console.log(
  `built dist/meshless-cni (node ${NODE_LTS_VERSION} SEA; bundle ${(cniBytes / 1024).toFixed(0)} KiB), dist/meshlessd.js (+ meshless-kube.js), dist/meshless-ca.js, dist/meshless.js`,
);

// The daemon's OpenSSL settings (no TLS session tickets), read with
// node --openssl-config=dist/openssl.cnf.
copyFileSync('daemon/openssl.cnf', 'dist/openssl.cnf');

// The daemon's native addon (node-gyp builds it at npm install) goes beside
// dist/meshlessd.js, where src/netns/native-binding.ts looks for it first.
const addon = 'build/Release/meshless_netns.node';
// Copy then rename: overwriting the file in place would crash every running
// daemon that has it mapped (a demo left running, a test in another shell).
if (existsSync(addon)) {
  copyFileSync(addon, 'dist/.meshless_netns.node.tmp');
  renameSync('dist/.meshless_netns.node.tmp', 'dist/meshless_netns.node');
} else console.warn(`warning: ${addon} is missing (run npm install): the daemon needs it`);
