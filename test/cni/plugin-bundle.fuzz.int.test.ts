/**
 * The real plugin bundle (dist/meshless-cni, run `npm run build` first)
 * under a few hundred hostile invocations from test/support/cni-fuzz.ts,
 * spawned as a runtime does with nothing but the generated environment
 * (env -i). Every path in a case points into a temp dir: the daemon socket
 * does not exist and no netns does, so ADD of a pod falls back to the
 * Kubernetes API without a kubeconfig (11). Checks the real stdout and exit
 * status; stderr is ignored.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { checkAnswer, compact, fuzzCases, spawnable, type FuzzCase } from '../support/cni-fuzz.js';

const PLUGIN = join(import.meta.dirname, '..', '..', 'dist', 'meshless-cni');
const CASES = Number(process.env['MESHLESS_FUZZ_BUNDLE_CASES'] ?? 300);
const SEED = Number(process.env['MESHLESS_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
const PARALLEL = 4;
const CASE_TIMEOUT_MS = 15_000;

const dir = mkdtempSync(join(tmpdir(), 'meshless-cni-bundle-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly stdout: string;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
}

function runPlugin(c: FuzzCase): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(PLUGIN, [], { env: c.env, stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CASE_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(chunks).toString('utf8'), exitCode, timedOut });
    });
    // A plugin that exits before reading all of stdin is fine (EPIPE).
    child.stdin.on('error', () => undefined);
    child.stdin.end(c.stdin);
  });
}

describe(
  'dist/meshless-cni under fuzzed environment and stdin',
  { skip: !existsSync(PLUGIN) },
  () => {
    test(`${CASES} spawned cases (seed ${SEED}): one valid answer each, exit status consistent, bounded`, async () => {
      const places = {
        socketPath: join(dir, 'no-daemon', 'cni.sock'),
        missingDir: join(dir, 'missing'),
        logFile: undefined,
      };
      // Real environments cannot hold NUL, nor values over 128 KiB (MAX_ARG_STRLEN).
      const fits = (c: FuzzCase): boolean =>
        spawnable(c) &&
        Object.entries(c.env).every(([k, v]) => Buffer.byteLength(`${k}=${v}`) < 100_000) &&
        c.stdin.length < 1_000_000;
      // Half fully hostile, half with a well-formed environment so the config and the verbs get exercised.
      const arb = fc.oneof(
        fuzzCases(places).filter(fits),
        fuzzCases(places).filter((c) => fits(c) && !c.why.startsWith('CNI_')),
      );
      const cases = fc.sample(arb, { numRuns: CASES, seed: SEED });
      const started = Date.now();
      const failures: string[] = [];
      const codes = new Map<string, number>();
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < cases.length; i = next++) {
          const c = cases[i];
          if (c === undefined) continue;
          const run = await runPlugin(c);
          try {
            assert.ok(!run.timedOut, `no answer within ${CASE_TIMEOUT_MS} ms`);
            checkAnswer(c, run.stdout, run.exitCode);
            assert.ok(!/\n\s+at /.test(run.stdout), 'a stack trace on stdout');
            const code =
              run.exitCode === 0 ? 'ok' : String((JSON.parse(run.stdout) as { code: number }).code);
            codes.set(code, (codes.get(code) ?? 0) + 1);
          } catch (err) {
            failures.push(`${(err as Error).message.slice(0, 600)}\n  case: ${compact(c)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      const seconds = (Date.now() - started) / 1000;
      console.log(
        `${cases.length} cases in ${seconds.toFixed(1)} s; outcomes ${compact(Object.fromEntries(codes))}`,
      );
      assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failing cases (seed ${SEED})`);
      assert.ok(seconds < 60, `took ${seconds} s`);
      assert.ok((codes.get('11') ?? 0) > 0, 'no ADD reached the Kubernetes fallback');
    });
  },
);
