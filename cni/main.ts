/**
 * meshless-cni: the chained CNI plugin's entry. Reads the environment and
 * stdin, runs the dispatcher, writes its one answer to stdout, exits.
 * Anything thrown, even outside the dispatcher, still becomes CNI error JSON.
 */
import { existsSync, readFileSync } from 'node:fs';
import { callDaemon } from '../src/registration/client.js';
import { childProcessRunner } from '../src/exec/command-runner.js';
import { PodRedirect } from '../src/redirect/pod-redirect.js';
import packedKubeFallback from 'meshless-embedded:kube-fallback';
import { runPlugin } from './dispatch.js';
import { loadEmbeddedModule } from './embedded-module.js';
import type * as KubeFallback from './kube-fallback.js';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

function emergency(err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err);
  process.stdout.write(
    JSON.stringify({ cniVersion: '1.1.0', code: 999, msg: `meshless-cni crashed: ${msg}` }),
  );
  process.exit(1);
}

process.on('uncaughtException', emergency);
process.on('unhandledRejection', emergency);

runPlugin(process.env, readStdin(), {
  redirect: new PodRedirect(childProcessRunner()),
  callDaemon,
  namespaceVerdict: (...args) =>
    loadEmbeddedModule<typeof KubeFallback>(
      packedKubeFallback,
      'kube-fallback.js',
    ).namespaceVerdict(...args),
  netnsExists: existsSync,
}).then(
  (output) => process.stdout.write(output.stdout, () => process.exit(output.exitCode)),
  emergency,
);
