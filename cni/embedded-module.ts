/**
 * Loads a CommonJS module that the build embedded in the plugin as a
 * Brotli-compressed base64 string. Used for code the plugin rarely needs
 * (the Kubernetes client) so that V8 never parses it on the common path.
 */
import { runInThisContext } from 'node:vm';
import { brotliDecompressSync } from 'node:zlib';

export function loadEmbeddedModule<T>(packed: string, name: string): T {
  const code = brotliDecompressSync(Buffer.from(packed, 'base64')).toString('utf8');
  const wrapper = runInThisContext(
    `(function (exports, require, module, __filename, __dirname) {${code}\n})`,
    { filename: `meshless-cni/${name}` },
  ) as (e: unknown, r: NodeJS.Require, m: { exports: unknown }, f: string, d: string) => void;
  const mod: { exports: unknown } = { exports: {} };
  wrapper(mod.exports, require, mod, `meshless-cni/${name}`, 'meshless-cni');
  return mod.exports as T;
}
