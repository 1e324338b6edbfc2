/**
 * Property-based fuzzing of the plugin's dispatcher in-process (fast-check):
 * thousands of hostile environments and stdins (test/support/cni-fuzz.ts)
 * against fake side effects that answer every way the daemon, the
 * Kubernetes fallback and the rule applier can. Every case must end in one
 * valid result or one CNI error JSON with the code its input determines,
 * with a consistent exit status, without throwing or hanging, and without
 * polluting Object.prototype.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { runPlugin, type PluginOutput } from '../../cni/dispatch.js';
import type { NamespaceVerdict } from '../../cni/kube-fallback.js';
import type { PluginDeps } from '../../cni/plugin-context.js';
import type { DaemonOutcome } from '../../src/registration/client.js';
import { checkAnswer, fuzzCases, readableReport } from '../support/cni-fuzz.js';

const RUNS = Number(process.env['MESHLESS_FUZZ_RUNS'] ?? 3000);
const CASE_TIMEOUT_MS = 2000;

const dir = mkdtempSync(join(tmpdir(), 'meshless-cni-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** How the fakes behave in one case. */
interface World {
  readonly daemon: 'ok' | 'error' | 'unavailable' | 'unreachable';
  readonly enrolled: boolean;
  readonly registered: boolean;
  readonly verdict: NamespaceVerdict['kind'];
  readonly installFails: boolean;
  readonly problems: readonly string[];
  readonly netnsExists: boolean;
}

const world: fc.Arbitrary<World> = fc.record({
  daemon: fc.constantFrom('ok', 'ok', 'error', 'unavailable', 'unreachable'),
  enrolled: fc.boolean(),
  registered: fc.boolean(),
  verdict: fc.constantFrom('enrolled', 'not-enrolled', 'unknown'),
  installFails: fc.boolean(),
  problems: fc.array(fc.string({ maxLength: 10 }), { maxLength: 2 }),
  netnsExists: fc.boolean(),
});

function fakeDeps(w: World): PluginDeps {
  const body = (path: string): unknown => {
    switch (path) {
      case '/v1/add':
        return { enrolled: w.enrolled, reason: 'fuzz' };
      case '/v1/check':
        return { registered: w.registered, enrolled: w.enrolled };
      case '/v1/gc':
        return { removed: [] };
      default:
        return {
          ready: true,
          nodeName: 'n',
          workloads: 0,
          discovery: { namespaces: 0, pods: 0, addresses: 0 },
        };
    }
  };
  const outcome = (path: string): DaemonOutcome<unknown> => {
    switch (w.daemon) {
      case 'ok':
        return { kind: 'ok', body: body(path) };
      case 'error':
        return { kind: 'error', status: 400, code: 'MESHLESS_E_API_REQUEST', message: 'no' };
      case 'unavailable':
        return { kind: 'error', status: 503, code: 'MESHLESS_E_NOT_READY', message: 'later' };
      default:
        return { kind: 'unreachable', reason: 'connect ENOENT' };
    }
  };
  return {
    redirect: {
      prepareInstall: () => ({
        apply: async () => {
          await Promise.resolve();
          if (w.installFails) throw new Error('iptables-restore: exit status 4');
        },
      }),
      remove: async () => undefined,
      verify: async () => [...w.problems],
    },
    callDaemon: async <T>(_s: string, _m: string, path: string) =>
      outcome(path) as DaemonOutcome<T>,
    namespaceVerdict: async () =>
      w.verdict === 'unknown' ? { kind: 'unknown', reason: 'fuzz' } : { kind: w.verdict },
    netnsExists: () => w.netnsExists,
  };
}

async function bounded(p: Promise<PluginOutput>): Promise<PluginOutput> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`runPlugin hung for ${CASE_TIMEOUT_MS} ms`)),
      CASE_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe('runPlugin under fuzzed environment and stdin', () => {
  for (const logged of [false, true]) {
    test(`${RUNS} cases${logged ? ', logging to a file' : ''}: one valid answer each, the right code, no throw, no hang`, async () => {
      const places = {
        socketPath: join(dir, 'no-daemon.sock'),
        missingDir: join(dir, 'missing'),
        logFile: logged ? join(dir, 'plugin.log') : undefined,
      };
      const codes = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(fuzzCases(places), world, async (c, w) => {
          const out = await bounded(runPlugin(c.env, c.stdin, fakeDeps(w)));
          checkAnswer(c, out.stdout, out.exitCode);
          if (out.exitCode !== 0) {
            const code = (JSON.parse(out.stdout) as { code: number }).code;
            codes.set(code, (codes.get(code) ?? 0) + 1);
          }
          assert.deepEqual(Object.keys(Object.prototype), [], 'Object.prototype polluted');
          assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
        }),
        { numRuns: logged ? Math.ceil(RUNS / 3) : RUNS, ...readableReport() },
      );
      // Every class of input problem was exercised.
      for (const code of [1, 4, 6, 7])
        assert.ok((codes.get(code) ?? 0) > 0, `no case gave ${code}`);
    });
  }
});
