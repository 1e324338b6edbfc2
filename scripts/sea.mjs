// Turns the plugin bundle into a self-contained executable: Node's single
// executable application (SEA) support, on the LTS binary of node-lts.mjs.
// The kubelet's runtime runs /opt/cni/bin/meshless-cni on the host, and
// Kubernetes node images (AKS, EKS, GKE, Bottlerocket, Flatcar) have no
// Node.js: a `#!/usr/bin/env node` script fails every pod sandbox there.
//
// Steps (nodejs.org/api/single-executable-applications.html): the bundle
// without its shebang is the SEA's main script; `node --experimental-sea-config`
// of the *same* binary writes the preparation blob (with V8's code cache for
// the bundle: measured ~3 ms faster start, see bench), postject injects it
// into a copy of that binary as the NODE_SEA_BLOB note and flips the fuse.
// The main script's require() loads built-in modules only: the plugin bundle
// needs nothing else (no native addon; esbuild inlines every dependency).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'postject';

const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Builds `output` from the CommonJS `bundle` on the Node binary `node`.
 * Writes beside `output` and renames, so a plugin being run is never torn.
 */
export async function buildSea({ node, bundle, output, workDir }) {
  mkdirSync(workDir, { recursive: true });
  const main = join(workDir, 'main.cjs');
  const blob = join(workDir, 'sea.blob');
  const config = join(workDir, 'sea-config.json');
  writeFileSync(main, readFileSync(bundle, 'utf8').replace(/^#![^\n]*\n/, ''));
  writeFileSync(
    config,
    JSON.stringify({
      main,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
    }),
  );
  execFileSync(node, ['--experimental-sea-config', config], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const tmp = `${output}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, readFileSync(node));
  // postject prints a warning per ELF note it cannot name; they are harmless.
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    await inject(tmp, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: FUSE });
  } finally {
    console.warn = warn;
  }
  chmodSync(tmp, 0o755);
  renameSync(tmp, output);
}
