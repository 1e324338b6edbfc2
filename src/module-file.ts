/**
 * Where the running code is on disk, to find files shipped beside it (the
 * native addon, the other bundles) and never from the working directory.
 */
import { fileURLToPath } from 'node:url';

/**
 * The file of the function that calls this one: the bundle it was built
 * into (`dist/meshlessd.js`, `dist/meshless.js`), or its source file when
 * run from the sources (tsx). The bundles are CommonJS, where esbuild leaves
 * `import.meta` empty, ESM has no `__filename`, and this module's own
 * `__filename` would name this file, not the caller's; V8's call site of
 * the caller knows the file in every case. `undefined` when V8 cannot tell.
 */
export function callerModuleFile(): string | undefined {
  const saved = Error.prepareStackTrace;
  let file: string | null | undefined;
  try {
    Error.prepareStackTrace = (_err, sites) => sites;
    const trace: { stack?: unknown } = {};
    // Leaves out this function's frame: the first site is the caller's.
    Error.captureStackTrace(trace, callerModuleFile);
    file = (trace.stack as NodeJS.CallSite[] | undefined)?.[0]?.getFileName();
  } finally {
    Error.prepareStackTrace = saved;
  }
  if (file === undefined || file === null) return undefined;
  return file.startsWith('file:') ? fileURLToPath(file) : file;
}
