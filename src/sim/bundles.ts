/**
 * Where the built programs are, for the simulated cluster: the plugin
 * (`meshless-cni`), the daemon (`meshlessd.js`), the cluster signer
 * (`meshless-ca.js`) and the CLI (`meshless.js`).
 *
 * Looked for, in order: `MESHLESS_DIST_DIR`; the directory of the running
 * bundle (the CLI in `dist/` runs the demo); `<repo>/dist` from the sources
 * in `src/sim/` (tests under tsx). Never the working directory.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { MeshlessError } from '../errors.js';
import { callerModuleFile } from '../module-file.js';

/** Paths of the built programs. */
export interface Bundles {
  readonly plugin: string;
  readonly daemon: string;
  readonly signer: string;
  readonly cli: string;
}

/** The bundles in `distDir`. */
export function bundlesIn(distDir: string): Bundles {
  return {
    plugin: join(distDir, 'meshless-cni'),
    daemon: join(distDir, 'meshlessd.js'),
    signer: join(distDir, 'meshless-ca.js'),
    cli: join(distDir, 'meshless.js'),
  };
}

/** The candidate dist directories, best first. */
export function distCandidates(
  moduleFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const out: string[] = [];
  const fromEnv = env['MESHLESS_DIST_DIR'];
  if (fromEnv) out.push(resolve(fromEnv));
  if (moduleFile) {
    const dir = dirname(moduleFile);
    out.push(dir, resolve(dir, '..', '..', 'dist'));
  }
  return out;
}

/**
 * The bundles of this installation.
 * @throws MeshlessError `MESHLESS_E_SIM` when no candidate holds `meshlessd.js`
 *   (run `npm run build`).
 */
export function defaultBundles(): Bundles {
  const candidates = distCandidates(callerModuleFile());
  for (const dir of candidates)
    if (existsSync(join(dir, 'meshlessd.js')) && existsSync(join(dir, 'meshless-cni')))
      return bundlesIn(dir);
  throw new MeshlessError(
    'MESHLESS_E_SIM',
    `the built programs (meshlessd.js, meshless-cni) are not in ${candidates.join(' or ') || 'any known place'}; ` +
      'run npm run build, or set MESHLESS_DIST_DIR',
  );
}
