import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IpFamily } from '../../../src/redirect/constants.js';
import {
  inspectCommands,
  installBatch,
  installCommands,
  onlyAlreadyExists,
  removeCommands,
  verifyPolicyRoutes,
} from '../../../src/redirect/policy-routes.js';

// What iproute2 prints (`ip -4 rule list pref 32764`, `ip -N route show table 100`).
const RULE = '32764:\tfrom all fwmark 0x111/0xfff lookup 100\n';
const ROUTE: Record<IpFamily, string> = {
  4: 'local default dev lo scope host \n',
  6: 'local default dev lo metric 1024 pref medium\n',
};
const OLD_STYLE_ROUTE: Record<IpFamily, string> = {
  4: 'local 0.0.0.0/0 dev lo scope host\n',
  6: 'local ::/0 dev lo metric 1024 pref medium\n',
};

const rule = (f: IpFamily, verb: 'add' | 'del'): string[] => [
  `-${f}`,
  'rule',
  verb,
  'fwmark',
  '0x111/0xfff',
  'pref',
  '32764',
  'lookup',
  '100',
];
const route = (f: IpFamily, verb: 'replace' | 'del'): string[] => [
  `-${f}`,
  'route',
  verb,
  'local',
  f === 4 ? '0.0.0.0/0' : '::/0',
  'dev',
  'lo',
  'table',
  '100',
];

for (const f of [4, 6] as const) {
  describe(`policy routes, IPv${f}`, () => {
    it('inspects pref 32764 and table 100', () => {
      assert.deepEqual(inspectCommands(f), {
        rules: [`-${f}`, 'rule', 'list', 'pref', '32764'],
        routes: [`-${f}`, 'route', 'show', 'table', '100'],
      });
    });

    const table: {
      name: string;
      rules: string;
      routes: string;
      install: string[][];
      remove: string[][];
      problems: number;
    }[] = [
      {
        name: 'absent',
        rules: '',
        routes: '',
        install: [rule(f, 'add'), route(f, 'replace')],
        remove: [],
        problems: 2,
      },
      {
        name: 'present',
        rules: RULE,
        routes: ROUTE[f],
        install: [],
        remove: [rule(f, 'del'), route(f, 'del')],
        problems: 0,
      },
      {
        name: 'present, route printed as a prefix',
        rules: RULE,
        routes: OLD_STYLE_ROUTE[f],
        install: [],
        remove: [rule(f, 'del'), route(f, 'del')],
        problems: 0,
      },
      {
        name: 'rule doubled',
        rules: RULE + RULE,
        routes: ROUTE[f],
        install: [rule(f, 'del')],
        remove: [rule(f, 'del'), rule(f, 'del'), route(f, 'del')],
        problems: 1,
      },
      {
        name: 'rule tripled, route missing',
        rules: RULE + RULE + RULE,
        routes: '',
        install: [rule(f, 'del'), rule(f, 'del'), route(f, 'replace')],
        remove: [rule(f, 'del'), rule(f, 'del'), rule(f, 'del')],
        problems: 2,
      },
      {
        name: 'route only',
        rules: '',
        routes: ROUTE[f],
        install: [rule(f, 'add')],
        remove: [route(f, 'del')],
        problems: 1,
      },
      {
        name: 'foreign rule and route at the same pref/table',
        rules:
          '32764:\tfrom all fwmark 0x222/0xfff lookup 100\n32764:\tfrom all fwmark 0x111/0xfff lookup 1000\n',
        routes:
          f === 4
            ? 'local 10.0.0.0/8 dev lo scope host\n'
            : 'local fd00::/8 dev lo metric 1024 pref medium\n',
        install: [rule(f, 'add'), route(f, 'replace')],
        remove: [],
        problems: 2,
      },
    ];
    for (const c of table) {
      it(`${c.name}: install`, () => {
        assert.deepEqual(installCommands(f, c.rules, c.routes), c.install);
      });
      it(`${c.name}: remove`, () => {
        assert.deepEqual(removeCommands(f, c.rules, c.routes), c.remove);
      });
      it(`${c.name}: verify`, () => {
        const problems = verifyPolicyRoutes(f, c.rules, c.routes);
        assert.equal(problems.length, c.problems, problems.join('; '));
        for (const p of problems) assert.ok(p.startsWith(`IPv${f} `), p);
      });
    }
  });
}

describe('policy routes: rule lines with trailing attributes', () => {
  it('counts "lookup 100 proto static" as ours', () => {
    const withProto = '32764:\tfrom all fwmark 0x111/0xfff lookup 100 proto static\n';
    assert.deepEqual(installCommands(4, withProto, ROUTE[4]), []);
  });
});

describe('policy routes: the one-exec install batch', () => {
  for (const f of [4, 6] as const) {
    it(`IPv${f}: a rule add and a route replace, as ip -batch lines`, () => {
      const lines = installBatch(f).trim().split('\n');
      assert.deepEqual(lines, [
        'rule add fwmark 0x111/0xfff pref 32764 lookup 100',
        `route replace local ${f === 4 ? '0.0.0.0/0' : '::/0'} dev lo table 100`,
      ]);
    });
  }
  const cases: [string, boolean][] = [
    ['RTNETLINK answers: File exists\nCommand failed -:1\n', true],
    ['RTNETLINK answers: Operation not permitted\nCommand failed -:1\n', false],
    [
      'RTNETLINK answers: File exists\nError: Nexthop device is not up.\nCommand failed -:2\n',
      false,
    ],
    ['', false],
  ];
  for (const [stderr, ok] of cases)
    it(`${JSON.stringify(stderr.split('\n')[0])} -> ${ok ? 'already there' : 'a failure'}`, () => {
      assert.equal(onlyAlreadyExists(stderr), ok);
    });
});
