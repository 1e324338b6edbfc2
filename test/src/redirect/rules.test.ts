import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHAINS, type IpFamily } from '../../../src/redirect/constants.js';
import { EMPTY_RULESET, parseIptablesSave } from '../../../src/redirect/iptables-state.js';
import {
  chainRules,
  familyPlan,
  renderInstall,
  renderRemoval,
  renderRemovalOfInstall,
  verifyInstalled,
} from '../../../src/redirect/rules.js';
import { assertGolden, readTestdata } from './golden.js';
import { applyRestore } from './restore-model.js';

const FAMILIES: readonly IpFamily[] = [4, 6];

/** Named starting states per family: the file holding them ('' = empty netns). */
const STATES = {
  empty: () => '',
  installed: (f: IpFamily) => readTestdata(`v${f}-installed.save`),
  doubled: (f: IpFamily) => readTestdata(`v${f}-doubled.save`),
} as const;

describe('renderInstall / renderRemoval goldens', () => {
  for (const family of FAMILIES) {
    for (const [state, load] of Object.entries(STATES)) {
      it(`IPv${family} install on the ${state} netns`, () => {
        assertGolden(
          `install-v${family}-${state}.golden`,
          renderInstall(family, parseIptablesSave(load(family))),
        );
      });
      it(`IPv${family} removal from the ${state} netns`, () => {
        const text = renderRemoval(parseIptablesSave(load(family)));
        if (state === 'empty') assert.equal(text, undefined, 'nothing of ours: nothing to do');
        else assertGolden(`remove-v${family}-${state}.golden`, text ?? '<undefined>');
      });
    }
  }

  it('dual stack: both families on an empty netns, then their removal', () => {
    const parts: string[] = [];
    for (const family of FAMILIES) {
      const tool = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
      const installed = applyRestore('', renderInstall(family, EMPTY_RULESET));
      parts.push(
        `### ${tool} --noflush (install)`,
        renderInstall(family, EMPTY_RULESET),
        `### ${tool} --noflush (removal)`,
        renderRemoval(parseIptablesSave(installed)) ?? '<undefined>',
      );
    }
    assertGolden('dual.golden', parts.join('\n'));
  });

  it('no duplicate jumps when our rules are already there', () => {
    for (const family of FAMILIES) {
      const text = renderInstall(family, parseIptablesSave(STATES.installed(family)));
      assert.ok(!/^-A (PREROUTING|OUTPUT) /m.test(text), text);
      assert.ok(!/^-D /m.test(text), text);
    }
  });

  it('trims a doubled jump to one', () => {
    const text = renderInstall(4, parseIptablesSave(STATES.doubled(4)));
    const deletes = text.split('\n').filter((l) => l.startsWith('-D '));
    assert.deepEqual(deletes, [
      `-D OUTPUT -j ${CHAINS.output}`,
      `-D OUTPUT -j ${CHAINS.output}`,
      `-D PREROUTING -j ${CHAINS.prerouting}`,
    ]);
  });
});

describe('run twice against a model of iptables-restore --noflush', () => {
  for (const family of FAMILIES) {
    for (const [state, load] of Object.entries(STATES)) {
      it(`IPv${family}, starting from the ${state} netns`, () => {
        const start = load(family);
        const once = applyRestore(start, renderInstall(family, parseIptablesSave(start)));
        assert.deepEqual(verifyInstalled(family, parseIptablesSave(once)), []);
        const twice = applyRestore(once, renderInstall(family, parseIptablesSave(once)));
        assert.equal(twice, once, 'a second install changes nothing');

        const removal = renderRemoval(parseIptablesSave(twice));
        assert.ok(removal !== undefined);
        const removed = applyRestore(twice, removal);
        assert.ok(!removed.includes('MESHLESS'), removed);
        assert.equal(renderRemoval(parseIptablesSave(removed)), undefined, 'removal is idempotent');
        // Rules that are not ours survive install and removal.
        const foreign = (text: string): string[] =>
          text.split('\n').filter((l) => l.startsWith('-A ') && !l.includes('MESHLESS'));
        assert.deepEqual(foreign(removed), foreign(applyRestore('', start)));
      });
    }
  }
});

describe('renderRemovalOfInstall (what DEL tries before reading)', () => {
  for (const family of FAMILIES) {
    for (const [state, load] of Object.entries(STATES)) {
      it(`IPv${family}: after one install on the ${state} netns it removes exactly ours`, () => {
        const start = load(family);
        const installed = applyRestore(start, renderInstall(family, parseIptablesSave(start)));
        const removed = applyRestore(installed, renderRemovalOfInstall());
        assert.equal(
          removed,
          applyRestore(installed, renderRemoval(parseIptablesSave(installed)) ?? ''),
        );
        assert.ok(!removed.includes('MESHLESS'), removed);
      });
    }
    it(`IPv${family}: fails (changing nothing, restore being atomic) where it would not be exact`, () => {
      assert.throws(() => applyRestore('', renderRemovalOfInstall()), /no such rule|no chain/);
      assert.throws(
        () => applyRestore(readTestdata(`v${family}-doubled.save`), renderRemovalOfInstall()),
        /still referenced/,
      );
    });
  }
});

describe('verifyInstalled', () => {
  for (const family of FAMILIES) {
    it(`IPv${family}: a realistic iptables-save is intact`, () => {
      assert.deepEqual(verifyInstalled(family, parseIptablesSave(STATES.installed(family))), []);
    });
  }

  it('an empty netns misses everything', () => {
    assert.deepEqual(verifyInstalled(4, EMPTY_RULESET), [
      'mangle PREROUTING: 0 jumps to MESHLESS_PRERT, want 1',
      'mangle MESHLESS_PRERT: chain missing',
      'mangle OUTPUT: 0 jumps to MESHLESS_OUTPUT, want 1',
      'mangle MESHLESS_OUTPUT: chain missing',
      'nat PREROUTING: 0 jumps to MESHLESS_PRERT, want 1',
      'nat MESHLESS_PRERT: chain missing',
      'nat OUTPUT: 0 jumps to MESHLESS_OUTPUT, want 1',
      'nat MESHLESS_OUTPUT: chain missing',
    ]);
  });

  const good = (): string => STATES.installed(4);
  const tampered: [string, () => string, string[]][] = [
    [
      'nat OUTPUT jump removed',
      () => good().replace(/^-A OUTPUT -j MESHLESS_OUTPUT\n(?=-A APP_DNS)/m, ''),
      ['nat OUTPUT: 0 jumps to MESHLESS_OUTPUT, want 1'],
    ],
    [
      'doubled jumps',
      () => STATES.doubled(4),
      [
        'mangle OUTPUT: 3 jumps to MESHLESS_OUTPUT, want 1',
        'nat PREROUTING: 2 jumps to MESHLESS_PRERT, want 1',
      ],
    ],
    [
      'redirect port changed',
      () => good().replace('--to-ports 15001', '--to-ports 15002'),
      ['nat MESHLESS_OUTPUT: rules differ from what meshless installs'],
    ],
    [
      'a rule deleted',
      () => good().replace(/^-A MESHLESS_PRERT -s 169\.254\.7\.127\/32 -p tcp -j ACCEPT\n/m, ''),
      ['nat MESHLESS_PRERT: rules differ from what meshless installs'],
    ],
    [
      'a rule appended',
      () =>
        good().replace(/(-A MESHLESS_PRERT -m mark[^\n]*\n)/, '$1-A MESHLESS_PRERT -j ACCEPT\n'),
      ['mangle MESHLESS_PRERT: rules differ from what meshless installs'],
    ],
    [
      'rules reordered',
      () =>
        good().replace(
          /(-A MESHLESS_OUTPUT -p tcp -m mark[^\n]*\n)(-A MESHLESS_OUTPUT ! -d 127[^\n]*-o lo[^\n]*\n)/,
          '$2$1',
        ),
      ['nat MESHLESS_OUTPUT: rules differ from what meshless installs'],
    ],
    [
      'mangle part missing',
      () =>
        good().replace(/\*mangle[\s\S]*?COMMIT\n/, (block) =>
          block
            .split('\n')
            .filter((l) => !l.includes('MESHLESS'))
            .join('\n'),
        ),
      [
        'mangle PREROUTING: 0 jumps to MESHLESS_PRERT, want 1',
        'mangle MESHLESS_PRERT: chain missing',
        'mangle OUTPUT: 0 jumps to MESHLESS_OUTPUT, want 1',
        'mangle MESHLESS_OUTPUT: chain missing',
      ],
    ],
  ];
  for (const [name, make, want] of tampered)
    it(`tampered: ${name}`, () => {
      assert.deepEqual(verifyInstalled(4, parseIptablesSave(make())), want);
    });

  it('IPv4 rules are not the IPv6 ones', () => {
    const problems = verifyInstalled(6, parseIptablesSave(STATES.installed(4)));
    assert.deepEqual(problems, [
      'nat MESHLESS_PRERT: rules differ from what meshless installs',
      'nat MESHLESS_OUTPUT: rules differ from what meshless installs',
    ]);
  });
});

describe('chainRules', () => {
  it('matches the in-pod rules of docs/reference/redirect-rules.md, in order', () => {
    const summary = (f: IpFamily): string[] =>
      [...chainRules(f).mangle, ...chainRules(f).nat].map((r) => `${r.chain} ${r.rule}`);
    const v4 = summary(4);
    assert.equal(v4.length, 8);
    assert.match(
      v4[3] ?? '',
      /^MESHLESS_PRERT ! -d 127\.0\.0\.1\/32 .*--dport 15008 .*--to-ports 15006$/,
    );
    assert.match(v4[7] ?? '', /^MESHLESS_OUTPUT ! -d 127\.0\.0\.1\/32 .*--to-ports 15001$/);
    for (const line of summary(6))
      assert.ok(!line.includes('127.0.0.1') && !line.includes('169.254'));
  });
});

describe('parseIptablesSave', () => {
  it('reads chains, jumps and rules per table', () => {
    const s = parseIptablesSave(STATES.doubled(4));
    assert.equal(s.jumpCount('nat', 'PREROUTING', CHAINS.prerouting), 2);
    assert.equal(s.jumpCount('mangle', 'OUTPUT', CHAINS.output), 3);
    assert.equal(s.jumpCount('filter', 'OUTPUT', CHAINS.output), 0);
    assert.equal(s.hasChain('nat', 'APP_DNS'), true);
    assert.equal(s.hasChain('filter', CHAINS.output), false);
    assert.deepEqual(s.rulesOf('nat', 'APP_DNS'), ['-j RETURN']);
    assert.deepEqual(s.rulesOf('nat', 'INPUT'), []);
    assert.equal(s.rulesOf('raw', 'OUTPUT'), undefined);
  });

  it('a jump with extra matches is not a plain jump', () => {
    const s = parseIptablesSave(
      '*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -j MESHLESS_OUTPUT\nCOMMIT\n',
    );
    assert.equal(s.jumpCount('nat', 'OUTPUT', CHAINS.output), 0);
  });

  it('tolerates CRLF line ends and surrounding blanks', () => {
    const s = parseIptablesSave(STATES.installed(4).replace(/\n/g, '\r\n'));
    assert.deepEqual(verifyInstalled(4, s), []);
  });
});

describe('refuse mode (a family the pod has no address of)', () => {
  const REFUSE_STATES = {
    empty: () => '',
    installed: () => readTestdata('v6-refuse-installed.save'),
    // A netns that was redirected for IPv6 before: the refuse rules go beside, not over, them.
    redirected: () => readTestdata('v6-installed.save'),
  } as const;

  for (const [state, load] of Object.entries(REFUSE_STATES)) {
    it(`golden: install on the ${state} netns, and removal after it`, () => {
      const text = renderInstall(6, parseIptablesSave(load()), 'refuse');
      assertGolden(`install-v6-refuse-${state}.golden`, text);
      const installed = applyRestore(load(), text);
      assertGolden(
        `remove-v6-refuse-${state}.golden`,
        renderRemoval(parseIptablesSave(installed)) ?? '<undefined>',
      );
    });

    it(`run twice from the ${state} netns: one copy, intact, removal leaves only foreign rules`, () => {
      const start = load();
      const once = applyRestore(start, renderInstall(6, parseIptablesSave(start), 'refuse'));
      assert.deepEqual(verifyInstalled(6, parseIptablesSave(once), 'refuse'), []);
      const twice = applyRestore(once, renderInstall(6, parseIptablesSave(once), 'refuse'));
      assert.equal(twice, once);
      const removed = applyRestore(twice, renderRemoval(parseIptablesSave(twice)) ?? '');
      assert.ok(!removed.includes('MESHLESS'), removed);
      const foreign = (text: string): string[] =>
        text.split('\n').filter((l) => l.startsWith('-A ') && !l.includes('MESHLESS'));
      assert.deepEqual(foreign(removed), foreign(applyRestore('', start)));
    });
  }

  it('the blind removal removes exactly one refuse install, and fails on anything else', () => {
    const installed = applyRestore('', renderInstall(6, EMPTY_RULESET, 'refuse'));
    assert.ok(!applyRestore(installed, renderRemovalOfInstall('refuse')).includes('MESHLESS'));
    assert.throws(
      () => applyRestore('', renderRemovalOfInstall('refuse')),
      /no such rule|no chain/,
    );
    // A redirect install is not a refuse install: all or nothing, nothing removed.
    assert.throws(() =>
      applyRestore(readTestdata('v6-installed.save'), renderRemovalOfInstall('refuse')),
    );
  });

  it('the rules: new TCP refused with a reset both ways, loopback and the proxy mark exempt', () => {
    const text = renderInstall(4, EMPTY_RULESET, 'refuse');
    assert.doesNotMatch(text, /\*nat|\*mangle|REDIRECT/);
    assert.match(text, /^-A MESHLESS_INPUT -i lo -j ACCEPT$/m);
    assert.match(text, /^-A MESHLESS_OUTPUT -o lo -j ACCEPT$/m);
    assert.match(
      text,
      /^-A MESHLESS_OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m mark ! --mark 0x539\/0xfff -j REJECT --reject-with tcp-reset$/m,
    );
  });

  const good = (): string => REFUSE_STATES.installed();
  const tampered: [string, () => string, string[]][] = [
    ['intact', good, []],
    [
      'INPUT jump removed',
      () => good().replace(/^-A INPUT -j MESHLESS_INPUT\n/m, ''),
      ['filter INPUT: 0 jumps to MESHLESS_INPUT, want 1'],
    ],
    [
      'REJECT turned into ACCEPT',
      () =>
        good().replace(
          /(-A MESHLESS_OUTPUT -p tcp[^\n]*)-j REJECT --reject-with tcp-reset/,
          '$1-j ACCEPT',
        ),
      ['filter MESHLESS_OUTPUT: rules differ from what meshless installs'],
    ],
    [
      'chain flushed',
      () => good().replace(/^-A MESHLESS_INPUT [^\n]*\n/gm, ''),
      ['filter MESHLESS_INPUT: rules differ from what meshless installs'],
    ],
    [
      'an ACCEPT inserted first',
      () => good().replace(/^(-A MESHLESS_OUTPUT -o lo)/m, '-A MESHLESS_OUTPUT -j ACCEPT\n$1'),
      ['filter MESHLESS_OUTPUT: rules differ from what meshless installs'],
    ],
  ];
  for (const [name, make, want] of tampered)
    it(`verify, ${name}`, () => {
      assert.deepEqual(verifyInstalled(6, parseIptablesSave(make()), 'refuse'), want);
    });
});

describe('familyPlan', () => {
  const cases: [string, IpFamily[], boolean, string[]][] = [
    ['IPv4-only pod', [4], true, ['4 redirect', '6 refuse']],
    ['IPv6-only pod', [6], true, ['4 refuse', '6 redirect']],
    ['dual-stack pod', [4, 6], true, ['4 redirect', '6 redirect']],
    ['no address in prevResult (ADD installs IPv4)', [], true, ['4 redirect', '6 refuse']],
    ['IPv4-only pod, kernel without IPv6', [4], false, ['4 redirect']],
  ];
  for (const [name, families, v6, want] of cases)
    it(name, () => {
      assert.deepEqual(
        familyPlan(families, v6).map((p) => `${p.family} ${p.mode}`),
        want,
      );
    });
});
