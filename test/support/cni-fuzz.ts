/**
 * Generators of hostile CNI invocations (environment + stdin) for the
 * plugin's fuzz tests, and the checks every answer must pass. Each case
 * carries the CNI error code its input problem determines, worked out from
 * the spec (containernetworking/cni SPEC.md, docs/reference/cni.md), not from
 * the plugin's own parsers: env problem 4, undecodable stdin 6, invalid
 * field 7, unsupported version 1. Cases whose outcome depends on the daemon
 * carry no expected code; their answer must still be valid.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';

export const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
const LATEST = '1.1.0';

/** Where a generated case may point the plugin: never at anything real. */
export interface FuzzPlaces {
  /** A socket path where no daemon listens. */
  readonly socketPath: string;
  /** A directory that does not exist, for netns paths. */
  readonly missingDir: string;
  /** A log file the plugin may append to, or undefined for none. */
  readonly logFile: string | undefined;
}

export interface FuzzCase {
  readonly env: Record<string, string>;
  readonly stdin: string;
  readonly command: string;
  /** The CNI error code the input determines, when it does. */
  readonly expectCode: number | undefined;
  /** Why (for failure messages). */
  readonly why: string;
}

interface Part<T> {
  readonly value: T;
  /** undefined when fine, else what is wrong. */
  readonly problem: string | undefined;
}

const fine = <T>(value: T): Part<T> => ({ value, problem: undefined });
const bad =
  (problem: string) =>
  <T>(value: T): Part<T> => ({ value, problem });

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Any text: ASCII, full Unicode (astral planes, lone surrogates excluded by JSON), control chars. */
const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('', ' ', '\n', '\t', '\u0000', '=', ';', '/', '..', '-x', '\u202e', 'é'),
);
const huge = fc
  .tuple(fc.constantFrom('a', '\u00e9', '=', ';', '/'), fc.integer({ min: 10_000, max: 200_000 }))
  .map(([c, n]) => c.repeat(n));

const command: fc.Arbitrary<Part<string | undefined>> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...COMMANDS).map(fine) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.constant(undefined),
        fc.constantFrom('', 'add', ' ADD', 'ADD ', 'DELETE', 'ADD\n', 'VERSION;ADD'),
        anyText,
      )
      .filter((c) => c === undefined || !(COMMANDS as readonly string[]).includes(c))
      .map(bad('CNI_COMMAND')),
  },
);

const containerId: fc.Arbitrary<Part<string | undefined>> = fc.oneof(
  { weight: 10, arbitrary: fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,70}$/).map(fine) },
  { weight: 1, arbitrary: fc.constant('a'.repeat(100_000)).map(fine) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(fc.constant(undefined), anyText, huge)
      .filter((v) => v === undefined || !CONTAINER_ID.test(v))
      .map(bad('CNI_CONTAINERID')),
  },
);

const ifname = (): fc.Arbitrary<Part<string | undefined>> =>
  fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom('eth0', 'net1', 'e', 'x'.repeat(15)).map(fine) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(undefined, '', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\tb', '.', '..', 'e\n')
        .map(bad('CNI_IFNAME')),
    },
  );

const netns = (p: FuzzPlaces): fc.Arbitrary<Part<string | undefined>> =>
  fc.oneof(
    {
      weight: 10,
      arbitrary: fc
        .oneof(anyText, fc.constant('x'.repeat(5000)))
        .map((s) => fine(`${p.missingDir}/${s.replaceAll('\0', '')}`)),
    },
    { weight: 1, arbitrary: fc.constantFrom(undefined, '').map(bad('CNI_NETNS missing')) },
    {
      weight: 1,
      arbitrary: fc
        .oneof(anyText, fc.constantFrom('proc/1/ns/net', 'netns', '~/x'))
        .filter((s) => s !== '' && !s.startsWith('/'))
        .map(bad('CNI_NETNS relative')),
    },
  );

/** One CNI_ARGS pair: well formed (maybe a pod arg) or malformed the way libcni's LoadArgs refuses. */
const argPair: fc.Arbitrary<Part<string>> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          'K8S_POD_NAMESPACE',
          'K8S_POD_NAME',
          'K8S_POD_UID',
          'K8S_POD_INFRA_CONTAINER_ID',
          'IgnoreUnknown',
          '__proto__',
          'constructor',
          'toString',
          'prototype',
        ),
        fc.oneof(
          fc.constantFrom('demo', 'web-0', 'kube-system', '1', 'x.y', 'A_B', '$(reboot)', '`id`'),
          fc.constantFrom('a && rm -rf /', '-j ACCEPT', '../../etc', '\'"', '\n-A OUTPUT -j DROP'),
          anyText.map((s) => s.replaceAll('=', '').replaceAll(';', '')),
          huge.map((s) => s.replaceAll('=', 'e').replaceAll(';', 's')),
        ),
      )
      .map(([k, v]) => fine(`${k}=${v}`)),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.constantFrom('novalue', '=v', 'a=b=c', 'K8S_POD_NAME', '==', 'a==b'),
        anyText.filter((s) => s !== '' && !s.includes(';')),
      )
      .filter((pair) => {
        const eq = pair.indexOf('=');
        return eq <= 0 || pair.includes('=', eq + 1);
      })
      .map(bad('CNI_ARGS')),
  },
);

/** A value a pod name or namespace could hold, hostile ones included (never ";" or "="). */
const podArgValue = fc.oneof(
  fc.constantFrom('demo', 'web-0', 'kube-system', 'plain', 'Web', '-x', 'a.b', '$(reboot)', '`id`'),
  fc.constantFrom('a && rm -rf /', '-j ACCEPT', '../../etc', '\'"', '\n-A OUTPUT -j DROP', ''),
  fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s.replace(/[;=\0]/g, '')),
);

const cniArgs: fc.Arbitrary<Part<string | undefined>> = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(undefined, '', ';', ';;').map(fine) },
  {
    weight: 6,
    // What kubelet passes, with hostile values.
    arbitrary: fc
      .tuple(podArgValue, podArgValue, podArgValue)
      .map(([ns, name, uid]) =>
        fine(
          `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name};` +
            `K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=${uid}`,
        ),
      ),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.array(argPair, { maxLength: 6 }),
        fc.constantFrom(';', ';', ';', ';;'),
        fc.boolean(),
      )
      .map(([pairs, sep, trailing]) => {
        const problem = pairs.find((p) => p.problem !== undefined)?.problem;
        const text = pairs.map((p) => p.value).join(sep) + (trailing ? ';' : '');
        return { value: text, problem };
      }),
  },
  {
    weight: 1,
    // Separators libcni does not know (",", "&", newline) glue pairs into one with two "=".
    arbitrary: fc
      .constantFrom(
        'K8S_POD_NAMESPACE=demo,K8S_POD_NAME=web',
        'K8S_POD_NAMESPACE=demo&K8S_POD_NAME=web',
        'K8S_POD_NAMESPACE=demo\nK8S_POD_NAME=web',
      )
      .map(bad('CNI_ARGS separator')),
  },
);

/** A prevResult as the primary plugin (bridge + host-local) prints it in `version`. */
function prevResult(version: string): Record<string, unknown> {
  const legacy = version.startsWith('0.');
  return {
    cniVersion: version,
    interfaces: [
      { name: 'mlbr0', mac: '00:11:22:33:44:55' },
      { name: 'eth0', mac: '00:11:22:33:44:66', sandbox: '/var/run/netns/p' },
    ],
    ips: [
      {
        address: '10.1.0.5/24',
        gateway: '10.1.0.1',
        interface: 1,
        ...(legacy ? { version: '4' } : {}),
      },
      { address: 'fd00::5/64', interface: 1, ...(legacy ? { version: '6' } : {}) },
    ],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: {},
  };
}

/** Any JSON value, nested a little. */
const jsonish = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -0, 0.5, Number.MAX_SAFE_INTEGER),
);

/** A value nested `depth` levels, as text (JSON.stringify would overflow the stack itself). */
const deepText = fc
  .tuple(fc.integer({ min: 300, max: 60_000 }), fc.constantFrom('[]', '{}'))
  .map(([depth, kind]) =>
    kind === '[]'
      ? '['.repeat(depth) + ']'.repeat(depth)
      : '{"a":'.repeat(depth) + '{}' + '}'.repeat(depth),
  );

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];

type Mutation =
  | { readonly kind: 'none' }
  | { readonly kind: 'set'; readonly field: string; readonly value: unknown; readonly code: number }
  | { readonly kind: 'delete'; readonly field: string; readonly code: number }
  | { readonly kind: 'extra'; readonly field: string; readonly value: unknown }
  | { readonly kind: 'deep'; readonly field: string; readonly text: string };

const notString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant([] as unknown[]),
  fc.constant({}),
  fc.array(fc.string(), { minLength: 1, maxLength: 2 }),
);
const notAbsolute = fc.oneof(
  notString,
  fc.constant(''),
  anyText.filter((s) => s !== '' && !s.startsWith('/')),
);
const set = (field: string, arb: fc.Arbitrary<unknown>, code = 7): fc.Arbitrary<Mutation> =>
  arb.map((value) => ({ kind: 'set', field, value, code }));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  set('cniVersion', fc.oneof(notString, fc.constant(''), fc.constant(null))),
  set(
    'cniVersion',
    fc
      .oneof(fc.constantFrom('0.2.0', '1.2.0', '2.0.0', '1.0', 'v1.0.0', '1.0.0 '), anyText)
      .filter((v) => v !== '' && !(VERSIONS as readonly string[]).includes(v)),
    1,
  ),
  fc.constantFrom<Mutation>(
    { kind: 'delete', field: 'cniVersion', code: 7 },
    { kind: 'delete', field: 'name', code: 7 },
    { kind: 'delete', field: 'type', code: 7 },
  ),
  set('name', fc.oneof(notString, fc.constant(''))),
  set('type', fc.oneof(notString, fc.constantFrom('', 'bridge', 'MESHLESS-CNI', null))),
  set(
    'excludeNamespaces',
    fc.oneof(
      fc.integer(),
      fc.string(),
      fc.constant({}),
      fc.constant(['ok', '']),
      fc.constant(['ok', 3]),
    ),
  ),
  set('enrolmentLabel', fc.oneof(notString, fc.constantFrom('', 'no-equals', '=v', 'k=v=w'))),
  set(
    'logLevel',
    fc.oneof(notString, fc.constantFrom('', 'trace', 'DEBUG', 'verbose')).filter((v) => v !== null),
  ),
  set(
    'daemonTimeoutMs',
    fc.oneof(
      fc.constantFrom(99, 60001, 0, -1, 0.5, 1e308, -1e308, '5000', true, [], {}),
      fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }),
    ),
  ),
  set('prevResult', fc.oneof(fc.integer(), fc.string(), fc.constant([]), fc.boolean())),
  set('socketPath', notAbsolute),
  set('kubeconfig', notAbsolute),
  set('logFile', notAbsolute),
  set(
    'cni.dev/valid-attachments',
    fc.oneof(
      fc.integer(),
      fc.string(),
      fc.constant({}),
      fc.constant([{ containerID: 1, ifname: 'eth0' }]),
      fc.constant([null]),
      fc.constant([{ containerID: 'a' }]),
    ),
  ),
  fc
    .tuple(fc.constantFrom(...PROTO_KEYS, 'unknownField', 'ipam', 'args'), jsonish)
    .map(([field, value]): Mutation => ({ kind: 'extra', field, value })),
  fc
    .tuple(fc.constantFrom('prevResult', 'args', 'runtimeConfig', '__proto__'), deepText)
    .map(([field, text]): Mutation => ({ kind: 'deep', field, text })),
);

type Stdin = { readonly text: string; readonly version: string; readonly mutation: Mutation };

function configStdin(
  p: FuzzPlaces,
  version: string,
  m: Mutation,
  withPrev: boolean,
  withAttachments: boolean,
): string {
  const doc: Record<string, unknown> = {
    cniVersion: version,
    name: 'k8s-pod-network',
    type: 'meshless-cni',
    socketPath: p.socketPath,
    daemonTimeoutMs: 200,
  };
  if (p.logFile !== undefined) {
    doc['logFile'] = p.logFile;
    doc['logLevel'] = 'debug';
  }
  if (withPrev) doc['prevResult'] = prevResult(version);
  if (withAttachments) doc['cni.dev/valid-attachments'] = [{ containerID: 'c1', ifname: 'eth0' }];
  if (m.kind === 'set') doc[m.field] = m.value;
  if (m.kind === 'delete') Reflect.deleteProperty(doc, m.field);
  if (m.kind === 'extra' || m.kind === 'deep') {
    // Own data properties (as JSON.parse makes them), even for "__proto__".
    Object.defineProperty(doc, m.field, {
      value: m.kind === 'extra' ? m.value : '\u0001DEEP\u0001',
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const text = JSON.stringify(doc);
  return m.kind === 'deep' ? text.replace('"\\u0001DEEP\\u0001"', m.text) : text;
}

const stdinOf = (p: FuzzPlaces): fc.Arbitrary<Stdin> =>
  fc.oneof(
    {
      weight: 12,
      arbitrary: fc
        .tuple(fc.constantFrom(...VERSIONS), mutation, fc.boolean(), fc.boolean(), fc.boolean())
        .map(([version, m, withPrev, withAtt, keepPrev]) => ({
          text: configStdin(p, version, m, withPrev || keepPrev, withAtt),
          version,
          mutation: m,
        })),
    },
    {
      weight: 1,
      // Truncated somewhere inside.
      arbitrary: fc
        .tuple(fc.constantFrom(...VERSIONS), fc.double({ min: 0, max: 0.999, noNaN: true }))
        .map(([version, at]) => {
          const full = configStdin(p, version, { kind: 'none' }, true, true);
          return {
            text: full.slice(0, Math.floor(full.length * at)),
            version,
            mutation: { kind: 'none' } as Mutation,
          };
        }),
    },
    {
      weight: 1,
      // Random bytes, decoded as the plugin decodes stdin (UTF-8, lossy).
      arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({
        text: Buffer.from(b).toString('utf8'),
        version: '',
        mutation: { kind: 'none' } as Mutation,
      })),
    },
    {
      weight: 1,
      // Valid JSON that is not an object, a deep document, BOMs and doubled documents.
      arbitrary: fc
        .oneof(
          jsonish
            .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
            .map((v) => JSON.stringify(v)),
          deepText,
          fc.constantFrom(
            '',
            'null',
            '1e999',
            '"{}"',
            '{} {}',
            '{}{}',
            '\ufeff{}',
            '{"cniVersion":"1.0.0"}\n{"x":1}',
            'NaN',
            '{"a":1,}',
          ),
        )
        .map((text) => ({ text, version: '', mutation: { kind: 'none' } as Mutation })),
    },
  );

function decodable(text: string): Record<string, unknown> | undefined {
  try {
    const doc: unknown = JSON.parse(text);
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc)
      ? (doc as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const older = (v: string, than: string): boolean =>
  VERSIONS.indexOf(v as (typeof VERSIONS)[number]) <
  VERSIONS.indexOf(than as (typeof VERSIONS)[number]);

/** The expected outcome class of one invocation, from the spec. */
function expected(
  cmd: Part<string | undefined>,
  envParts: readonly Part<string | undefined>[],
  stdin: Stdin,
  env: Record<string, string>,
): { code: number | undefined; why: string } {
  if (cmd.problem !== undefined) return { code: 4, why: cmd.problem };
  const c = cmd.value ?? '';
  const perContainer = c === 'ADD' || c === 'DEL' || c === 'CHECK';
  for (const part of envParts) {
    if (part.problem === undefined) continue;
    if (part.problem === 'CNI_ARGS' || part.problem === 'CNI_ARGS separator')
      return { code: 4, why: part.problem };
    if (!perContainer) continue;
    if (part.problem === 'CNI_NETNS missing' && c === 'DEL') continue;
    return { code: 4, why: part.problem };
  }
  if (c === 'VERSION') return { code: undefined, why: 'VERSION' };
  const doc = decodable(stdin.text);
  if (doc === undefined) return { code: 6, why: 'stdin is not a JSON object' };
  if (stdin.mutation.kind === 'deep') return { code: 6, why: 'nested too deep' };
  const m = stdin.mutation;
  if (m.kind === 'set' || m.kind === 'delete') return { code: m.code, why: `field ${m.field}` };
  if (stdin.version === '') return { code: undefined, why: 'decodable random document' };
  if (c === 'CHECK' && older(stdin.version, '0.4.0')) return { code: 1, why: 'CHECK < 0.4.0' };
  if ((c === 'STATUS' || c === 'GC') && older(stdin.version, '1.1.0'))
    return { code: 1, why: `${c} < 1.1.0` };
  if ((c === 'ADD' || c === 'CHECK') && !('prevResult' in doc))
    return { code: 7, why: 'no prevResult' };
  if (c === 'GC' && !('cni.dev/valid-attachments' in doc))
    return { code: 7, why: 'no valid-attachments' };
  void env;
  return { code: undefined, why: 'depends on the daemon' };
}

/** Hostile invocations; every path in them points at `places`, nothing real. */
export function fuzzCases(places: FuzzPlaces): fc.Arbitrary<FuzzCase> {
  return fc
    .tuple(
      command,
      containerId,
      netns(places),
      ifname(),
      cniArgs,
      stdinOf(places),
      fc.dictionary(
        fc.constantFrom('CNI_PATH', 'CNI_EXTRA', 'PATH_X', 'K8S_POD_NAME', 'cni_command'),
        fc.string({ maxLength: 20 }),
        { maxKeys: 2 },
      ),
    )
    .map(([cmd, cid, ns, ifn, args, stdin, extra]) => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(extra)) env[k] = v.replaceAll('\0', '');
      const put = (k: string, part: Part<string | undefined>): void => {
        if (part.value !== undefined) env[k] = part.value;
      };
      put('CNI_COMMAND', cmd);
      put('CNI_CONTAINERID', cid);
      put('CNI_NETNS', ns);
      put('CNI_IFNAME', ifn);
      put('CNI_ARGS', args);
      const { code, why } = expected(cmd, [cid, ifn, ns, args], stdin, env);
      return {
        env,
        stdin: stdin.text,
        command: cmd.value ?? '',
        expectCode: code,
        why,
      };
    });
}

/** True when a real process environment can carry the case (no NUL, no "=" in names). */
export function spawnable(c: FuzzCase): boolean {
  return (
    !c.stdin.includes('\0') &&
    Object.entries(c.env).every(
      ([k, v]) => !k.includes('=') && !k.includes('\0') && !v.includes('\0'),
    )
  );
}

/**
 * Checks one answer: exactly one JSON document or nothing, errors in the
 * spec's shape with the determined code, exit status consistent.
 */
export function checkAnswer(c: FuzzCase, stdout: string, exitCode: number | null): void {
  const ctx = `${c.command} (${c.why}); stdout ${stdout.slice(0, 300)}`;
  assert.ok(exitCode === 0 || exitCode === 1, `exit status ${String(exitCode)}: ${ctx}`);
  if (stdout === '') {
    assert.equal(exitCode, 0, `empty stdout must mean success: ${ctx}`);
    assert.ok(
      ['DEL', 'CHECK', 'STATUS', 'GC'].includes(c.command),
      `only DEL, CHECK, STATUS and GC succeed silently: ${ctx}`,
    );
    assert.equal(c.expectCode, undefined, `expected error ${String(c.expectCode)}: ${ctx}`);
    return;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    assert.fail(`stdout is not one JSON document: ${ctx}`);
  }
  assert.ok(typeof doc === 'object' && doc !== null && !Array.isArray(doc), ctx);
  const d = doc as Record<string, unknown>;
  const stdinDoc = decodable(c.stdin);
  const stdinVersion = stdinDoc?.['cniVersion'];
  const answerVersion = (VERSIONS as readonly unknown[]).includes(stdinVersion)
    ? stdinVersion
    : LATEST;
  if (exitCode === 1) {
    for (const k of Object.keys(d))
      assert.ok(['cniVersion', 'code', 'msg', 'details'].includes(k), `key ${k}: ${ctx}`);
    assert.equal(d['cniVersion'], answerVersion, ctx);
    assert.ok(Number.isInteger(d['code']) && (d['code'] as number) > 0, ctx);
    assert.ok(typeof d['msg'] === 'string' && d['msg'] !== '', ctx);
    assert.ok(d['details'] === undefined || typeof d['details'] === 'string', ctx);
    assert.notEqual(d['code'], 999, `an unexpected error (999): ${ctx}`);
    if (c.expectCode !== undefined) assert.equal(d['code'], c.expectCode, ctx);
    return;
  }
  assert.equal(c.expectCode, undefined, `expected error ${String(c.expectCode)}: ${ctx}`);
  if (c.command === 'VERSION') {
    assert.deepEqual(d, { cniVersion: answerVersion, supportedVersions: [...VERSIONS] }, ctx);
    return;
  }
  assert.equal(c.command, 'ADD', `only ADD and VERSION print a result: ${ctx}`);
  assert.equal(d['cniVersion'], stdinVersion, `the result is in the config's version: ${ctx}`);
}

/** JSON of a value with every long string cut, for failure reports. */
export function compact(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'string' && v.length > 160 ? `${v.slice(0, 160)}...(${v.length} chars)` : v,
  );
}

/** fast-check parameters that report a failure in a few readable lines. */
export function readableReport<T>(): Pick<fc.Parameters<T>, 'reporter' | 'asyncReporter'> {
  const reporter = (d: fc.RunDetails<T>): void => {
    if (!d.failed) return;
    const error =
      d.errorInstance instanceof Error ? d.errorInstance.message : String(d.errorInstance);
    throw new Error(
      `property failed (seed ${d.seed}, path "${d.counterexamplePath ?? ''}"):\n` +
        `${error.slice(0, 2000)}\ncounterexample: ${compact(d.counterexample)}`,
    );
  };
  return { reporter };
}
