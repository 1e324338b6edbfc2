/**
 * The plugin's dispatcher in-process, with fake side effects: every verb,
 * every outcome of the daemon call, and the error JSON contract (right code,
 * exit status 1, nothing else on stdout).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../cni/dispatch.js';
import type { PluginDeps } from '../../cni/plugin-context.js';
import type { NamespaceVerdict } from '../../cni/kube-fallback.js';
import type { DaemonOutcome } from '../../src/registration/client.js';
import { SUPPORTED_VERSIONS } from '../../src/cni/versions.js';

const PREV_1_0 = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'mlbr0', mac: '00:11:22:33:44:55' },
    { name: 'eth0', mac: '00:11:22:33:44:66', sandbox: '/var/run/netns/p' },
  ],
  ips: [
    { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: {},
};

interface Recorder {
  calls: { path: string; body: unknown }[];
  /** Side effects in order: `prepare`, `apply`, `remove`, `daemon <path>`. */
  events: string[];
  installs: { netns: string; families: readonly number[] }[];
  removes: { netns: string; families: readonly number[] | undefined }[];
}

function fakeDeps(
  answer: (path: string, body: unknown) => DaemonOutcome<unknown>,
  opts: {
    verdict?: NamespaceVerdict;
    installFails?: boolean;
    removeFails?: boolean;
    problems?: string[];
    netnsExists?: boolean;
  } = {},
): { deps: PluginDeps; rec: Recorder } {
  const rec: Recorder = { calls: [], events: [], installs: [], removes: [] };
  const deps: PluginDeps = {
    redirect: {
      prepareInstall: (netns, families) => {
        rec.events.push('prepare');
        return {
          apply: async () => {
            rec.events.push('apply');
            rec.installs.push({ netns, families });
            if (opts.installFails) throw new Error('iptables-restore: exit 4');
          },
        };
      },
      remove: async (netns, families) => {
        rec.events.push('remove');
        rec.removes.push({ netns, families });
        if (opts.removeFails) throw new Error('iptables-restore: exit 1');
      },
      verify: async () => opts.problems ?? [],
    },
    callDaemon: async <T>(_s: string, _m: string, path: string, body: unknown) => {
      rec.events.push(`daemon ${path}`);
      rec.calls.push({ path, body });
      return answer(path, body) as DaemonOutcome<T>;
    },
    namespaceVerdict: async () => opts.verdict ?? { kind: 'unknown', reason: 'no kubeconfig' },
    netnsExists: () => opts.netnsExists ?? true,
  };
  return { deps, rec };
}

const ok = (body: unknown): DaemonOutcome<unknown> => ({ kind: 'ok', body });
const unreachable: DaemonOutcome<unknown> = {
  kind: 'unreachable',
  reason: 'socket does not exist',
};

function env(command: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'abc123',
    CNI_NETNS: '/var/run/netns/p',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS:
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=secure;K8S_POD_NAME=web;K8S_POD_UID=u1;K8S_POD_INFRA_CONTAINER_ID=abc123',
    ...extra,
  };
}

function conf(version: string, extra: Record<string, unknown> = {}): string {
  const prev = version.startsWith('0.')
    ? {
        ...PREV_1_0,
        cniVersion: version,
        ips: PREV_1_0.ips.map((i) => ({ version: i.address.includes(':') ? '6' : '4', ...i })),
      }
    : { ...PREV_1_0, cniVersion: version };
  return JSON.stringify({
    cniVersion: version,
    name: 'net',
    type: 'meshless-cni',
    prevResult: prev,
    ...extra,
  });
}

function parseError(stdout: string): { code: number; msg: string; cniVersion: string } {
  const doc = JSON.parse(stdout) as { code: number; msg: string; cniVersion: string };
  assert.equal(typeof doc.code, 'number');
  assert.equal(typeof doc.msg, 'string');
  return doc;
}

describe('ADD', () => {
  for (const version of SUPPORTED_VERSIONS) {
    test(`enrolled pod, cniVersion ${version}: registers, installs both families, prints prevResult`, async () => {
      const { deps, rec } = fakeDeps(() => ok({ enrolled: true, reason: 'labelled' }));
      const input = conf(version);
      const out = await runPlugin(env('ADD'), input, deps);
      assert.equal(out.exitCode, 0, out.stdout);
      assert.deepEqual(
        JSON.parse(out.stdout),
        (JSON.parse(input) as { prevResult: unknown }).prevResult,
      );
      assert.deepEqual(rec.installs, [{ netns: '/var/run/netns/p', families: [4, 6] }]);
      const body = rec.calls[0]?.body as {
        pod: { namespace: string; name: string; uid: string };
        addresses: unknown[];
      };
      assert.equal(rec.calls[0]?.path, '/v1/add');
      assert.deepEqual(body.pod, {
        namespace: 'secure',
        name: 'web',
        uid: 'u1',
        infraContainerId: 'abc123',
      });
      assert.equal(body.addresses.length, 2);
    });
  }

  test('prevResult of another version is converted to the config version', async () => {
    const { deps } = fakeDeps(() => ok({ enrolled: false, reason: 'plain' }));
    const input = JSON.stringify({
      cniVersion: '0.4.0',
      name: 'n',
      type: 'meshless-cni',
      prevResult: PREV_1_0,
    });
    const out = await runPlugin(env('ADD'), input, deps);
    const result = JSON.parse(out.stdout) as { cniVersion: string; ips: { version: string }[] };
    assert.equal(result.cniVersion, '0.4.0');
    assert.deepEqual(
      result.ips.map((i) => i.version),
      ['4', '6'],
    );
  });

  test('the rules are read while the daemon decides and written only after it said enrolled', async () => {
    const { deps, rec } = fakeDeps(() => ok({ enrolled: true, reason: 'labelled' }));
    const out = await runPlugin(env('ADD'), conf('1.0.0'), deps);
    assert.equal(out.exitCode, 0, out.stdout);
    assert.deepEqual(rec.events, ['daemon /v1/add', 'prepare', 'apply']);
  });

  test('a pod without addresses gets the IPv4 rules', async () => {
    const { deps, rec } = fakeDeps(() => ok({ enrolled: true, reason: 'labelled' }));
    const input = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'net',
      type: 'meshless-cni',
      prevResult: { ...PREV_1_0, ips: [] },
    });
    assert.equal((await runPlugin(env('ADD'), input, deps)).exitCode, 0);
    assert.deepEqual(rec.installs, [{ netns: '/var/run/netns/p', families: [4] }]);
  });

  const table: {
    name: string;
    answer: DaemonOutcome<unknown>;
    verdict?: NamespaceVerdict;
    installFails?: boolean;
    code: number | 0;
    msg?: RegExp;
    installs: number;
  }[] = [
    {
      name: 'not enrolled: pass through',
      answer: ok({ enrolled: false, reason: 'plain' }),
      code: 0,
      installs: 0,
    },
    {
      name: 'daemon not ready: 11',
      answer: {
        kind: 'error',
        status: 503,
        code: 'MESHLESS_E_NOT_READY',
        message: 'discovery has not synced',
      },
      code: 11,
      msg: /not ready/,
      installs: 0,
    },
    {
      name: 'daemon refuses: 100',
      answer: { kind: 'error', status: 409, code: 'MESHLESS_E_WRONG_NODE', message: 'other node' },
      code: 100,
      msg: /refused/,
      installs: 0,
    },
    {
      name: 'unreachable, namespace enrolled: 11',
      answer: unreachable,
      verdict: { kind: 'enrolled' },
      code: 11,
      msg: /is enrolled/,
      installs: 0,
    },
    {
      name: 'unreachable, namespace unknown: 11',
      answer: unreachable,
      verdict: { kind: 'unknown', reason: 'API down' },
      code: 11,
      msg: /API down/,
      installs: 0,
    },
    {
      name: 'unreachable, namespace plain: pass through',
      answer: unreachable,
      verdict: { kind: 'not-enrolled' },
      code: 0,
      installs: 0,
    },
    {
      name: 'rule install fails: 101 and deregistered',
      answer: ok({ enrolled: true, reason: 'x' }),
      installFails: true,
      code: 101,
      msg: /redirect rules/,
      installs: 1,
    },
  ];
  for (const c of table) {
    test(c.name, async () => {
      const { deps, rec } = fakeDeps(() => c.answer, {
        verdict: c.verdict,
        installFails: c.installFails,
      });
      const out = await runPlugin(env('ADD'), conf('1.0.0'), deps);
      assert.equal(rec.installs.length, c.installs);
      // Nothing is written unless the daemon said enrolled (reading is harmless).
      assert.equal(rec.events.filter((e) => e === 'apply').length, c.installs);
      if (c.code === 0) {
        assert.equal(out.exitCode, 0);
        assert.equal((JSON.parse(out.stdout) as { cniVersion: string }).cniVersion, '1.0.0');
      } else {
        assert.equal(out.exitCode, 1);
        const e = parseError(out.stdout);
        assert.equal(e.code, c.code);
        assert.equal(e.cniVersion, '1.0.0');
        if (c.msg) assert.match(e.msg, c.msg);
      }
      if (c.installFails)
        assert.deepEqual(
          rec.calls.map((x) => x.path),
          ['/v1/add', '/v1/del'],
        );
    });
  }

  test('no K8S_POD_* args (a plain runtime): pass through without asking the daemon', async () => {
    const { deps, rec } = fakeDeps(() => ok({ enrolled: true, reason: '' }));
    const out = await runPlugin(env('ADD', { CNI_ARGS: 'IgnoreUnknown=1' }), conf('1.1.0'), deps);
    assert.equal(out.exitCode, 0);
    assert.equal(rec.calls.length, 0);
  });

  test('excluded namespace: pass through without asking the daemon', async () => {
    const { deps, rec } = fakeDeps(() => ok({ enrolled: true, reason: '' }));
    const out = await runPlugin(env('ADD'), conf('1.1.0', { excludeNamespaces: ['secure'] }), deps);
    assert.equal(out.exitCode, 0);
    assert.equal(rec.calls.length, 0);
  });

  test('no prevResult: 7, we are a chained plugin', async () => {
    const { deps } = fakeDeps(() => ok({}));
    const out = await runPlugin(
      env('ADD'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshless-cni' }),
      deps,
    );
    assert.equal(parseError(out.stdout).code, 7);
  });
});

describe('input errors map to the spec codes', () => {
  const { deps } = fakeDeps(() => ok({}));
  const cases: {
    name: string;
    env: NodeJS.ProcessEnv;
    stdin: string;
    code: number;
    msg: RegExp;
  }[] = [
    { name: 'no CNI_COMMAND', env: {}, stdin: conf('1.0.0'), code: 4, msg: /CNI_COMMAND/ },
    { name: 'unknown command', env: env('FROB'), stdin: conf('1.0.0'), code: 4, msg: /FROB/ },
    {
      name: 'ADD without CNI_NETNS',
      env: env('ADD', { CNI_NETNS: '' }),
      stdin: conf('1.0.0'),
      code: 4,
      msg: /CNI_NETNS/,
    },
    {
      name: 'bad container ID',
      env: env('ADD', { CNI_CONTAINERID: '-x;' }),
      stdin: conf('1.0.0'),
      code: 4,
      msg: /CNI_CONTAINERID/,
    },
    {
      name: 'garbage stdin',
      env: env('ADD'),
      stdin: '{"cniVersion":',
      code: 6,
      msg: /not valid JSON/,
    },
    { name: 'stdin is an array', env: env('ADD'), stdin: '[]', code: 6, msg: /object/ },
    { name: 'unsupported version', env: env('ADD'), stdin: conf('0.2.0'), code: 1, msg: /0\.2\.0/ },
    {
      name: 'wrong type',
      env: env('ADD'),
      stdin: conf('1.0.0', { type: 'other' }),
      code: 7,
      msg: /"type"/,
    },
    {
      name: 'relative socketPath',
      env: env('ADD'),
      stdin: conf('1.0.0', { socketPath: 'x.sock' }),
      code: 7,
      msg: /socketPath/,
    },
    { name: 'CHECK on 0.3.1', env: env('CHECK'), stdin: conf('0.3.1'), code: 1, msg: /CHECK/ },
    { name: 'STATUS on 1.0.0', env: env('STATUS'), stdin: conf('1.0.0'), code: 1, msg: /STATUS/ },
    {
      name: 'GC without valid-attachments',
      env: env('GC'),
      stdin: conf('1.1.0'),
      code: 7,
      msg: /valid-attachments/,
    },
  ];
  for (const c of cases) {
    test(`${c.name} -> ${c.code}`, async () => {
      const out = await runPlugin(c.env, c.stdin, deps);
      assert.equal(out.exitCode, 1);
      const e = parseError(out.stdout);
      assert.equal(e.code, c.code);
      assert.match(e.msg, c.msg);
    });
  }

  test('an unexpected exception becomes error 999 JSON, never a stack trace', async () => {
    const { deps: broken } = fakeDeps(() => {
      throw new TypeError('boom');
    });
    const out = await runPlugin(env('ADD'), conf('1.0.0'), broken);
    assert.equal(out.exitCode, 1);
    const e = parseError(out.stdout);
    assert.equal(e.code, 999);
    assert.match(e.msg, /boom/);
    assert.equal(out.stdout.split('\n').length, 1);
  });
});

describe('VERSION, DEL, CHECK, STATUS, GC', () => {
  test('VERSION answers in the asked version and lists every supported one', async () => {
    const { deps } = fakeDeps(() => ok({}));
    const out = await runPlugin({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}', deps);
    assert.deepEqual(JSON.parse(out.stdout), {
      cniVersion: '0.4.0',
      supportedVersions: [...SUPPORTED_VERSIONS],
    });
    const bare = await runPlugin({ CNI_COMMAND: 'VERSION' }, '', deps);
    assert.equal((JSON.parse(bare.stdout) as { cniVersion: string }).cniVersion, '1.1.0');
  });

  test('DEL removes rules and deregisters; succeeds with the daemon gone or the netns gone', async () => {
    for (const [answer, exists, removes] of [
      [ok({}), true, 1],
      [unreachable, true, 1],
      [unreachable, false, 0],
    ] as const) {
      const { deps, rec } = fakeDeps(() => answer, { netnsExists: exists });
      const out = await runPlugin(env('DEL'), conf('1.0.0'), deps);
      assert.equal(out.exitCode, 0);
      assert.equal(out.stdout, '');
      assert.equal(rec.removes.length, removes);
    }
    const { deps, rec } = fakeDeps(() => ok({}));
    const noNetns = await runPlugin(
      env('DEL', { CNI_NETNS: '' }),
      JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'meshless-cni' }),
      deps,
    );
    assert.equal(noNetns.exitCode, 0);
    assert.equal(rec.removes.length, 0);
  });

  test("DEL removes the rules of prevResult's families, both without prevResult", async () => {
    const v4only = { ...PREV_1_0, ips: PREV_1_0.ips.slice(0, 1) };
    for (const [prevResult, families] of [
      [PREV_1_0, [4, 6]],
      [v4only, [4]],
      [undefined, [4, 6]],
      [{ ...PREV_1_0, ips: [] }, [4, 6]],
    ] as const) {
      const { deps, rec } = fakeDeps(() => ok({}));
      const input = JSON.stringify({
        cniVersion: '1.0.0',
        name: 'n',
        type: 'meshless-cni',
        prevResult,
      });
      assert.equal((await runPlugin(env('DEL'), input, deps)).exitCode, 0);
      assert.deepEqual(rec.removes, [{ netns: '/var/run/netns/p', families }]);
    }
  });

  test('DEL: removing the rules fails, the daemon still forgets the pod, DEL succeeds', async () => {
    const { deps, rec } = fakeDeps(() => ok({}), { removeFails: true });
    const out = await runPlugin(env('DEL'), conf('1.0.0'), deps);
    assert.equal(out.exitCode, 0);
    assert.equal(out.stdout, '');
    assert.deepEqual([...rec.events].sort(), ['daemon /v1/del', 'remove']);
  });

  test('CHECK: intact passes; broken rules 102; unknown container 3; daemon down 11', async () => {
    const run = async (answer: DaemonOutcome<unknown>, problems: string[] = []) =>
      runPlugin(env('CHECK'), conf('1.0.0'), fakeDeps(() => answer, { problems }).deps);
    assert.equal((await run(ok({ registered: true, enrolled: true }))).exitCode, 0);
    assert.equal(
      parseError((await run(ok({ registered: true, enrolled: true }), ['nat jump missing'])).stdout)
        .code,
      102,
    );
    assert.equal(
      parseError((await run(ok({ registered: false, enrolled: false }))).stdout).code,
      3,
    );
    assert.equal(parseError((await run(unreachable)).stdout).code, 11);
    assert.equal((await run(ok({ registered: true, enrolled: false }), ['ignored'])).exitCode, 0);
  });

  test('STATUS: available with the daemon, or with the Kubernetes fallback; else 50', async () => {
    const up = await runPlugin(
      env('STATUS'),
      conf('1.1.0'),
      fakeDeps(() => ok({ ready: true })).deps,
    );
    assert.equal(up.exitCode, 0);
    assert.equal(up.stdout, '');
    const withKube = await runPlugin(
      env('STATUS'),
      conf('1.1.0', { kubeconfig: '/etc/kube.conf' }),
      fakeDeps(() => unreachable).deps,
    );
    assert.equal(withKube.exitCode, 0);
    const down = await runPlugin(env('STATUS'), conf('1.1.0'), fakeDeps(() => unreachable).deps);
    assert.equal(parseError(down.stdout).code, 50);
  });

  test('GC forwards the valid attachments of this network', async () => {
    const { deps, rec } = fakeDeps(() => ok({ removed: ['old'] }));
    const out = await runPlugin(
      env('GC'),
      conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'abc123', ifname: 'eth0' }] }),
      deps,
    );
    assert.equal(out.exitCode, 0);
    assert.deepEqual(rec.calls[0]?.body, {
      apiVersion: 'meshless.dev/cni/v1',
      network: 'net',
      validAttachments: [{ containerId: 'abc123', ifname: 'eth0' }],
    });
    const down = await runPlugin(
      env('GC'),
      conf('1.1.0', { 'cni.dev/valid-attachments': [] }),
      fakeDeps(() => unreachable).deps,
    );
    assert.equal(parseError(down.stdout).code, 11);
  });
});
